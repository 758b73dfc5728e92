"""lmcourse.apps.questions: the book's questions match the test passages and follow the rules they
were written by (see data/README.md), and the loader and checker fail clearly."""

import dataclasses
import re
from collections import Counter

import pytest

from lmcourse.apps.passages import load_passages, passage_index
from lmcourse.apps.questions import SPLITS, TYPES, Question, check_questions, load_questions

ARTICLES = ["Alabama", "Aikido", "Animation", "Alphabet", "Abacus", "Android (robot)", "A Modest Proposal",
            "Aardwolf", "Politics of Angola", "Adventure"]


@pytest.fixture(scope="module")
def questions() -> list[Question]:
    return load_questions()


@pytest.fixture(scope="module")
def passages():
    return load_passages("test")


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def _runs(words: list[str], n: int = 4) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for i in range(len(words) - n + 1)}


def test_every_question_matches_its_passages(questions, passages):
    check_questions(questions, passages)
    index = passage_index(passages)
    for q in questions:
        assert all(a.strip() == a and a for a in q.answers), q.id
        assert q.passage_id not in q.also_in, q.id
        assert q.passage_id.split("#")[0] == index[q.passage_id].title


def test_ids_splits_and_types(questions):
    assert len(questions) >= 80
    assert [q.id for q in questions] == [f"q{i:03d}" for i in range(1, len(questions) + 1)]
    assert {q.split for q in questions} <= set(SPLITS) and {q.type for q in questions} <= set(TYPES)
    dev = load_questions("dev")
    assert len(dev) == 10 and all(q.split == "dev" for q in dev)
    assert len({q.passage_id.split("#")[0] for q in dev}) >= 8  # spread over the articles
    assert len(load_questions("test")) == len(questions) - 10


def test_spread_over_articles_and_passages(questions):
    per_article = Counter(q.passage_id.split("#")[0] for q in questions)
    assert set(per_article) == set(ARTICLES)
    assert min(per_article.values()) >= 3
    assert max(Counter(q.passage_id for q in questions).values()) <= 2


def test_form_of_questions_and_answers(questions):
    for q in questions:
        assert q.question.endswith("?"), q.id
        assert all(1 <= len(a.split()) <= 6 for a in q.answers), q.id
        assert len(set(q.answers)) == len(q.answers), q.id


def test_no_question_copies_four_words_of_its_passage(questions, passages):
    index = passage_index(passages)
    for q in questions:
        copied = _runs(_words(q.question)) & _runs(_words(index[q.passage_id].text))
        assert not copied, f"{q.id} copies {sorted(copied)} from {q.passage_id}"


def test_relevant_is_the_gold_passage_and_also_in(questions):
    q = next(q for q in questions if q.also_in)
    assert q.relevant == {q.passage_id, *q.also_in}
    assert questions[0].relevant == frozenset({questions[0].passage_id})


def test_unknown_split_is_an_error():
    with pytest.raises(ValueError, match="'dev', 'test'"):
        load_questions("train")


def test_check_questions_rejects_bad_records(questions, passages):
    good = questions[0]
    wrong_passage = dataclasses.replace(good, passage_id="Alabama#9999")
    with pytest.raises(ValueError, match="q001.*Alabama#9999"):
        check_questions([wrong_passage], passages)
    wrong_also_in = dataclasses.replace(good, also_in=("Atlantis#0",))
    with pytest.raises(ValueError, match="Atlantis#0"):
        check_questions([wrong_also_in], passages)
    wrong_answer = dataclasses.replace(good, answers=("the dandelion",))
    with pytest.raises(ValueError, match="q001.*not a verbatim"):
        check_questions([wrong_answer], passages)
    check_questions([good], passages)  # the untouched record passes
