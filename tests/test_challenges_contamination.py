"""lmcourse.challenges.contamination: word n-gram overlap and the contamination flag against strings
worked out by hand, the normalisation of words, and the errors."""

from __future__ import annotations

import pytest

from lmcourse.challenges.contamination import contaminated, ngram_overlap, normalized_words

QUESTION = "What is the capital city of France? The answer is Paris."  # 11 words


def test_normalized_words_lower_case_and_drop_punctuation():
    assert normalized_words("“Don't” STOP — now!") == ["dont", "stop", "now"]
    assert normalized_words("a-b c", tokenizer=lambda t: t.replace("-", " ").split()) == ["a", "b", "c"]


def test_overlap_by_hand():
    # 3-grams of the text: (a b c) (b c d) (c d e); the reference holds (a b c) and (c d e)
    assert ngram_overlap("a b c d e", "x a b c y c d e", n=3) == pytest.approx(2 / 3)
    assert ngram_overlap("a b c d e", "a b c d e", n=5) == 1.0
    assert ngram_overlap("a b c d e", "e d c b a", n=2) == 0.0


def test_overlap_ignores_case_and_punctuation():
    reference = "trivia: what is the capital city of france -- the answer is paris"
    assert ngram_overlap(QUESTION, reference, n=8) == 1.0
    assert ngram_overlap(QUESTION, reference.upper().replace(" ", "  "), n=11) == 1.0


def test_repeated_ngrams_count_where_they_occur():
    # 2-grams: (a b) (b a) (a b) (b c): (a b) twice, found; (b a), (b c) not
    assert ngram_overlap("a b a b c", "a b", n=2) == pytest.approx(2 / 4)


def test_ngrams_do_not_span_two_reference_texts():
    assert ngram_overlap("a b c d", "a b c d", n=4) == 1.0
    assert ngram_overlap("a b c d", ["a b", "c d"], n=4) == 0.0
    assert ngram_overlap("a b c d", ["a b", "c d"], n=2) == pytest.approx(2 / 3)  # (a b), (c d) of 3


def test_contaminated_any_shared_ngram_by_default():
    training = ["Quiz night! What is the capital city of France? The answer is Paris, of course.",
                "An unrelated document about the weather in Lyon and its many rivers."]
    tests = [QUESTION, "Name the longest river in France and the city it reaches the sea at.",
             "In Lyon the weather was wet; an unrelated document about the weather in Lyon followed."]
    assert contaminated(tests, training, n=8) == [True, False, True]
    # the third has 15 words, so 8 8-grams; only "an unrelated document about the weather in lyon" is shared
    assert ngram_overlap(tests[2], training, n=8) == pytest.approx(1 / 8)
    assert contaminated(tests, training, n=8, threshold=0.1) == [True, False, True]
    assert contaminated(tests, training, n=8, threshold=0.125) == [True, False, False]  # more than, not equal


def test_contaminated_accepts_a_generator_reference():
    assert contaminated(["a b c", "d e f"], (t for t in ["x a b c", "y"]), n=3) == [True, False]


@pytest.mark.parametrize("call, error, message", [
    (lambda: ngram_overlap("too short", "too short indeed", n=3), ValueError, "text has fewer than n=3 words"),
    (lambda: ngram_overlap("-- ! --", "x", n=1), ValueError, "fewer than n=1 words"),
    (lambda: ngram_overlap("a b", "a b", n=0), ValueError, "n must be a positive int"),
    (lambda: ngram_overlap("a b", [b"a b"], n=1), TypeError, "reference must be a str or an iterable of str"),
    (lambda: ngram_overlap(b"a b", "a b", n=1), TypeError, "expects a str"),
    (lambda: contaminated(["a b c", "a b"], "a b c", n=3), ValueError, "texts\\[1\\] has fewer than n=3"),
    (lambda: contaminated("a b c", "a b c", n=3), TypeError, "not one str"),
    (lambda: contaminated(["a b c"], "a b c", n=3, threshold=1.0), ValueError, "threshold must be"),
])
def test_errors(call, error, message):
    with pytest.raises(error, match=message):
        call()
