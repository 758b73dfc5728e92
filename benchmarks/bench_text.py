"""Speed of the Chapter 1 text pipeline on the default corpus: tokenizing and building a vocabulary.

Prints a table: what was timed, how much text, seconds (best of 3), throughput.
Run: `python benchmarks/bench_text.py` (or `make benchmarks`).
"""

from __future__ import annotations

import time
from typing import Callable

from lmcourse.data import load_corpus
from lmcourse.text import build_vocab_from_iterator, get_tokenizer


def best_of(fn: Callable[[], object], repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    start = time.perf_counter()
    corpus = load_corpus("wiki")
    load_seconds = time.perf_counter() - start
    lines = corpus.train
    n_chars = corpus.num_chars("train")
    basic = get_tokenizer("basic_english")
    chars = get_tokenizer("char")
    tokenized = [basic(line) for line in lines]
    n_words = sum(map(len, tokenized))

    rows = [
        ("load_corpus('wiki') (first call in this process)", f"{n_chars:,} chars", load_seconds, ""),
        ("basic_english tokenize, train split", f"{n_chars:,} chars",
         t := best_of(lambda: [basic(line) for line in lines]), f"{n_words / t:,.0f} words/s"),
        ("char tokenize, train split", f"{n_chars:,} chars",
         t := best_of(lambda: [chars(line) for line in lines]), f"{n_chars / t:,.0f} chars/s"),
        ("build_vocab_from_iterator, train words", f"{n_words:,} words",
         t := best_of(lambda: build_vocab_from_iterator(tokenized, specials=["<unk>"])), f"{n_words / t:,.0f} words/s"),
    ]
    vocab = build_vocab_from_iterator(tokenized, specials=["<unk>"])
    vocab.set_default_index(0)
    flat = [w for line in tokenized for w in line]
    t = best_of(lambda: vocab(flat))
    rows.append(("vocab lookup (ids for every train word)", f"{n_words:,} words", t, f"{n_words / t:,.0f} words/s"))

    print(f"{'what':52} {'input':>18} {'seconds':>8} {'throughput':>20}")
    for what, size, seconds, rate in rows:
        print(f"{what:52} {size:>18} {seconds:8.3f} {rate:>20}")


if __name__ == "__main__":
    main()
