"""lmcourse.apps.summarise: the lead/body pairs follow their rules, the baselines and the centroid ranking
by hand, the extract of MiniLM stays on topic and in order, the prompt fits its token budget, ROUGE
equals an F1 worked by hand, and the entity check on hand-worked cases."""

import pytest

from lmcourse.apps.summarise import (INSTRUCTION, body_lead, centroid_ranking, entities, extractive_summary,
                                     fill_budget, rouge_scores, skipped_articles, summary_messages, summary_pairs,
                                     unsupported_entities, unsupported_rate)
from lmcourse.data import load_documents, sentences
from tests.test_sft import byte_chat_tokenizer

CHATML = ("{% for message in messages %}"
          "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
BODY = ("Cats are small furry animals that people keep as pets. A cat likes to sleep most of the day. "
        "The tax code of Delaware was amended in 1987 by the General Assembly.\n"
        "Many cats purr when they are content and rub against their owners. Kittens play with string.")


@pytest.fixture(scope="module")
def minilm():
    from lmcourse.bert import load_minilm

    return load_minilm()


def test_pairs_take_the_first_paragraph_as_reference_and_cut_the_body_at_a_sentence():
    documents = dict(load_documents("wiki", "test"))
    pairs = summary_pairs("test", max_body_words=120)
    assert [p.title for p in pairs] == list(documents)  # every test article has 3+ body paragraphs
    for title, body, reference in pairs:
        paragraphs = documents[title]
        assert reference == paragraphs[0]
        assert "\n".join(paragraphs[1:]).startswith(body)  # a prefix of the body, paragraphs kept
        kept = sentences(body.split("\n"))
        assert len(body.split()) <= 120 or len(kept) == 1  # the first sentence is kept whatever its length
        assert kept[-1] in sentences(paragraphs[1:])  # cut after a whole sentence
    full = summary_pairs("test", max_body_words=10**6)
    assert all(p.body == "\n".join(documents[p.title][1:]) for p in full)


def test_short_articles_are_skipped_and_counted():
    documents = load_documents("wiki")
    for minimum in (3, 8):
        kept, skipped = summary_pairs(None, min_body_paragraphs=minimum), skipped_articles(None, minimum)
        assert len(kept) + len(skipped) == len(documents) and not {p.title for p in kept} & set(skipped)
        assert all(len(dict(documents)[title]) - 1 < minimum for title in skipped)
    with pytest.raises(ValueError, match="min_body_paragraphs must be a positive int"):
        summary_pairs("test", min_body_paragraphs=0)


def test_body_lead_by_hand():
    body = "First one here. Second one.\nThird sentence is longer than the others. Fourth."
    assert body_lead(body, k=1) == "First one here."
    assert body_lead(body, k=3) == "First one here. Second one. Third sentence is longer than the others."
    assert body_lead(body, k=None, max_words=6) == "First one here. Second one."  # the third would make 13
    assert body_lead(body, k=3, max_words=1) == "First one here."  # the first is always kept
    with pytest.raises(ValueError, match="give k"):
        body_lead(body, k=None)
    with pytest.raises(ValueError, match="non-empty string"):
        body_lead("  ")


def test_centroid_ranking_and_budget_by_hand():
    # unit rows at 0, 90 and 45 degrees: the mean points at 45 degrees, so row 2 is central, then a tie
    assert centroid_ranking([[2.0, 0.0], [0.0, 1.0], [1.0, 1.0]]) == [2, 0, 1]
    assert centroid_ranking([[1.0, 0.0]]) == [0]
    assert fill_budget([1, 2, 0], [2, 3, 8], max_words=5) == [0, 1]  # 8 more words would overflow: skipped
    assert fill_budget([1, 0], [3, 8], max_words=2) == [1]  # the best is kept even over budget
    with pytest.raises(ValueError, match=r"\(N, C\) matrix"):
        centroid_ranking([1.0, 2.0])


def test_extractive_summary_keeps_the_central_sentences_in_order(minilm):
    model, tokenizer = minilm
    parts = sentences(BODY.split("\n"))
    summary = extractive_summary(BODY, model, tokenizer, max_words=40)
    chosen = [s for s in parts if s in summary]
    assert summary == " ".join(chosen)  # whole sentences of the body, in document order
    assert len(summary.split()) <= 40 and len(chosen) >= 2
    assert "Delaware" not in summary  # the off-topic sentence is the least central
    assert unsupported_entities(summary, BODY) == []  # an extract invents nothing
    assert extractive_summary(BODY, model, tokenizer, max_words=1) in parts  # one sentence, whatever the budget


def test_summary_messages_fit_the_budget_exactly():
    tokenizer = byte_chat_tokenizer(CHATML)  # one token per character, plus the template's specials

    def length(messages):
        return len(tokenizer.encode(tokenizer.apply_chat_template(messages, add_generation_prompt=True)))

    whole = summary_messages(BODY, tokenizer, max_prompt_tokens=2000)
    assert whole == [{"role": "user", "content": f"{INSTRUCTION}\n\n{BODY}"}]
    budget = length(whole) - 40
    cut = summary_messages(BODY, tokenizer, max_prompt_tokens=budget)
    body = cut[0]["content"].removeprefix(f"{INSTRUCTION}\n\n")
    assert length(cut) <= budget and BODY.startswith(body) and BODY[len(body)] == " "  # cut after a whole word
    next_word = BODY[: BODY.index(" ", len(body) + 1)]
    assert length([{"role": "user", "content": f"{INSTRUCTION}\n\n{next_word}"}]) > budget  # the most that fits
    overhead = length([{"role": "user", "content": f"{INSTRUCTION}\n\n"}])
    with pytest.raises(ValueError, match=f"alone take {overhead} tokens"):
        summary_messages(BODY, tokenizer, max_prompt_tokens=overhead)
    with pytest.raises(ValueError, match="not even the body's first word"):
        summary_messages(BODY, tokenizer, max_prompt_tokens=overhead + 2)  # "Cats" needs 4
    with pytest.raises(ValueError, match="body must be a non-empty string"):
        summary_messages("", tokenizer)


def test_rouge_equals_f1_by_hand():
    prediction, reference = "the cat sat on the mat", "the cat lay on the red mat"
    scores = rouge_scores(prediction, reference)
    # unigrams: the x2, cat, on, mat shared = 5 of 6 predicted and 7 reference words: F1 = 2*5/(6+7)
    assert scores["rouge1"] == pytest.approx(10 / 13)
    # bigrams: "the cat" and "on the" shared = 2 of 5 and 6: F1 = 2*2/(5+6)
    assert scores["rouge2"] == pytest.approx(4 / 11)
    assert scores["rougeL"] == pytest.approx(10 / 13)  # the longest common subsequence: the cat on the mat
    assert rouge_scores("Cats running!", "cat runs")["rouge1"] == 1.0  # lower-cased, punctuation dropped, stemmed
    assert rouge_scores("dogs bark", "cats purr") == {"rouge1": 0.0, "rouge2": 0.0, "rougeL": 0.0}
    with pytest.raises(TypeError, match="two strings"):
        rouge_scores(["the cat"], "the cat")


@pytest.mark.parametrize("text, expected", [
    ("The United States lies south of Canada.", ["United States"]),  # "The" is a stop word: dropped
    ("In Alabama, people vote.", []),  # "In Alabama" -> "Alabama": one word, not a multi-word name
    ("New York is big.", ["New York"]),  # "new" is no stop word and not in lower case here
    ("New York is big. A new road opened.", []),  # ... but here "new" is an ordinary word
    ("North Carolina lies north of South Carolina.", ["South Carolina"]),  # the rule's cost
    ("They sailed the Gulf of Mexico with Alexander the Great.", ["Gulf of Mexico", "Alexander the Great"]),
    ("Born in 1901, she had 4,196,457 fans; 3.5 of them in the 1960s and 30th place.",
     ["1901", "4196457", "3.5", "1960", "30"]),
    ("Obama met Merkel.", []),  # single capitalised words are not counted
])
def test_entities_by_hand(text, expected):
    assert entities(text) == expected


def test_unsupported_entities_by_hand():
    source = "John Smith was born in 1901 in the united states. He had 1,000 cows."
    assert unsupported_entities("John Smith had 1000 cows in the United States.", source) == []  # case, commas aside
    assert unsupported_entities("John Smith was born in 19 in New Jersey.", source) == ["19", "New Jersey"]
    assert unsupported_entities("John Smithson was born.", source) == ["John Smithson"]  # whole words
    assert unsupported_entities("The Smith Brothers met John Smith's cows.", "Ann met the smith brother.") == [
        "John Smith's"]  # a final plural or possessive s aside
    assert unsupported_rate("John Smith was born in 1902.", source) == 0.5
    assert unsupported_rate("He had cows.", source) == 0.0  # names nothing, asserts nothing unsupported
    assert unsupported_entities("In Smith Town, they met.", "in the town") == ["Smith Town"]
    with pytest.raises(TypeError, match="source must be a string"):
        unsupported_entities("John Smith", None)
