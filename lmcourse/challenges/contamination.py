"""Benchmark contamination: has a model seen the test questions during training? Chapter 11
(Challenges) explains it.

The usual check compares word n-grams: a test example whose n-grams also occur in the training text
may have been learned rather than solved. Brown et al. (2020) called a GPT-3 benchmark example
"dirty" when it shared a single 13-gram with the training data (8-grams for the benchmarks with the
shortest examples). :func:`ngram_overlap` gives the share of an example's n-grams found in a
reference text (or several: n-grams never span two reference texts), and :func:`contaminated` flags
the examples whose share exceeds a threshold (by default: any shared n-gram at all).

Words: the `tokenizer` (``str.split`` by default) cuts a text into words; each word is lower-cased
and every Unicode punctuation character is removed from it (``"Paris,"`` becomes ``"paris"``,
``"don't"`` becomes ``"dont"``); words left empty (a lone dash) are dropped.

Left out: fuzzy matching (paraphrased or translated test items pass unnoticed), counting n-grams
over a corpus too large for memory (a Bloom filter or a suffix array), and the membership tests
that ask the model itself (comparing its likelihood of the example with that of perturbations).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable

from lmcourse._checks import check_float, check_positive_int, check_str

__all__ = ["normalized_words", "ngram_overlap", "contaminated"]

Tokenizer = Callable[[str], list[str]]
NGram = tuple[str, ...]


def normalized_words(text: str, tokenizer: Tokenizer = str.split) -> list[str]:
    """The words of `text` as the overlap counts them: lower-cased, without punctuation, none empty.

    >>> normalized_words("The answer -- she said -- is 'Paris'.")
    ['the', 'answer', 'she', 'said', 'is', 'paris']
    """
    check_str(text, "normalized_words")
    words = (("".join(c for c in word.lower() if not unicodedata.category(c).startswith("P")))
             for word in tokenizer(text))
    return [w for w in words if w]


def _ngrams(words: list[str], n: int) -> list[NGram]:
    """Every run of `n` consecutive words, in order, repeats included."""
    return [tuple(words[i:i + n]) for i in range(len(words) - n + 1)]


def _reference_ngrams(reference: str | Iterable[str], n: int, tokenizer: Tokenizer) -> set[NGram]:
    """The n-grams of each reference text, none spanning two of them."""
    texts = [reference] if isinstance(reference, str) else list(reference)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("reference must be a str or an iterable of str (the training texts)")
    return {g for text in texts for g in _ngrams(normalized_words(text, tokenizer), n)}


def _overlap(text: str, known: set[NGram], n: int, tokenizer: Tokenizer, name: str) -> float:
    grams = _ngrams(normalized_words(text, tokenizer), n)
    if not grams:
        raise ValueError(f"{name} has fewer than n={n} words, so no {n}-grams to compare: "
                         f"choose a smaller n (Brown et al. go down to 8), got {text!r:.60}")
    return sum(g in known for g in grams) / len(grams)


def ngram_overlap(text: str, reference: str | Iterable[str], n: int = 8, tokenizer: Tokenizer = str.split) -> float:
    """The share of the word n-grams of `text` (counted where they occur, repeats included) that also
    occur in `reference`, one text or several. Raises ``ValueError`` when `text` has fewer than `n`
    words (after :func:`normalized_words`): it has no n-grams, so the share is undefined.

    >>> ngram_overlap("The cat sat on the mat.", "Yesterday the cat sat on a mat", n=3)  # 2 of 4 3-grams
    0.5
    """
    check_positive_int("n", n)
    return _overlap(text, _reference_ngrams(reference, n, tokenizer), n, tokenizer, "text")


def contaminated(texts: Iterable[str], reference: str | Iterable[str], n: int = 13, threshold: float = 0.0,
                 tokenizer: Tokenizer = str.split) -> list[bool]:
    """For each of `texts` (a benchmark's examples), whether more than `threshold` of its n-grams
    occur in `reference` (the training text): with the default 0.0, whether it shares any n-gram at
    all, Brown et al.'s (2020) rule. The reference's n-grams are collected once. Raises
    ``ValueError`` naming the first text with fewer than `n` words.

    >>> contaminated(["the cat sat on the mat", "a dog ran in the park"], "the cat sat on a mat", n=3)
    [True, False]
    """
    check_positive_int("n", n)
    check_float("threshold", threshold, 0.0, 1.0, high_open=True)
    if isinstance(texts, str):
        raise TypeError("texts must be an iterable of str, not one str: for a single text use ngram_overlap")
    texts = list(texts)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be an iterable of str (the examples to check)")
    known = _reference_ngrams(reference, n, tokenizer)
    return [_overlap(text, known, n, tokenizer, f"texts[{i}]") > threshold for i, text in enumerate(texts)]
