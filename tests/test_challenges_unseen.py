"""book_prose keeps plain paragraphs exactly as written and drops any paragraph with markup."""

import json

import pytest

from lmcourse.challenges import book_prose, is_abstention

PLAIN = " ".join(["word"] * 45)


def _notebook(tmp_path, *markdown, name="a.ipynb"):
    cells = [{"cell_type": "markdown", "metadata": {}, "source": m} for m in markdown]
    cells.append({"cell_type": "code", "metadata": {}, "source": PLAIN, "outputs": [], "execution_count": None})
    path = tmp_path / name
    path.write_text(json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}))
    return path


def test_plain_paragraphs_are_kept_on_one_line_and_code_cells_ignored(tmp_path):
    two_lines = " ".join(["alpha"] * 20) + "\n" + " ".join(["beta"] * 25)
    path = _notebook(tmp_path, f"{PLAIN}\n\n{two_lines}")
    assert book_prose([path]) == [PLAIN, " ".join(["alpha"] * 20 + ["beta"] * 25)]


@pytest.mark.parametrize("mark", ["`code`", "$x$", "{cite:p}", "[link](x)", "a | b", "*emphasis*", "snake_case"])
def test_a_paragraph_with_markup_is_dropped_whole(tmp_path, mark):
    path = _notebook(tmp_path, f"{PLAIN} {mark}\n\n{PLAIN}")
    assert book_prose([path]) == [PLAIN]


@pytest.mark.parametrize("start", ["# Heading", "- item", "1. item", ":::{note}", "(label)="])
def test_headings_lists_and_directives_are_dropped(tmp_path, start):
    assert book_prose([_notebook(tmp_path, f"{start} {PLAIN}\n\n{PLAIN}")]) == [PLAIN]


def test_short_paragraphs_are_dropped_and_min_words_is_respected(tmp_path):
    path = _notebook(tmp_path, "too short.\n\n" + PLAIN)
    assert book_prose([path]) == [PLAIN]
    with pytest.raises(ValueError, match="no plain-prose paragraph"):
        book_prose([path], min_words=46)


def test_source_as_a_list_of_lines_and_several_notebooks_in_order(tmp_path):
    first = _notebook(tmp_path, [PLAIN[:20], PLAIN[20:]], name="1.ipynb")
    second = _notebook(tmp_path, PLAIN.replace("word", "other"), name="2.ipynb")
    assert book_prose([first, second]) == [PLAIN, PLAIN.replace("word", "other")]


def test_bad_input_gets_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no notebook"):
        book_prose([tmp_path / "missing.ipynb"])
    with pytest.raises(ValueError, match="at least one notebook"):
        book_prose([])


def test_the_book_itself_has_prose_to_measure():
    from pathlib import Path
    chapters = sorted((Path(__file__).parents[1] / "chapters").glob("[0-9]*.ipynb"))
    paragraphs = book_prose(chapters)
    assert len(paragraphs) >= 20 and all("$" not in p and "`" not in p for p in paragraphs)


@pytest.mark.parametrize("reply", ["I don't know.", "I do not know the answer.", "The answer is not known.",
                                   "I'm sorry, but I cannot answer that.", "I am not sure.", "I don\u2019t know",
                                   "That is not mentioned in the passages."])
def test_abstentions_are_recognised(reply):
    assert is_abstention(reply)


@pytest.mark.parametrize("reply", ["Mobile.", "The oldest city in Alabama is Mobile.", "It is known as Cahaba.",
                                   "The Spanish, who knew the coast."])
def test_answers_are_not_abstentions(reply):
    assert not is_abstention(reply)


def test_is_abstention_rejects_non_strings():
    with pytest.raises(TypeError, match="must be a str"):
        is_abstention(None)
