"""The book's byte-level BPE (`lmcourse.bpe.ByteBPE`, pure Python) against the `tokenizers`
library's byte-level BPE (Rust), both trained on the same ~1 MB of the wiki corpus's training split
with the same vocabulary size (8,192 ids, one of them <|endoftext|>).

Prints one table: training seconds, encoding speed on the validation split (MB of UTF-8 per
second, cold = empty chunk cache, warm = the same text again), bytes per token and tokens per byte
on the validation split; then how far the two merge lists agree. Times are medians (3 training
runs, 5 encodings). Both run on one thread; nothing is random.
"""

from __future__ import annotations

import json
import os
import time

os.environ["TOKENIZERS_PARALLELISM"] = "false"  # tokenizers on one thread, like ours
os.environ["RAYON_NUM_THREADS"] = "1"

from lmcourse.bpe import ByteBPE, compression, train_hf_bpe, unicode_to_bytes  # noqa: E402
from lmcourse.data import load_corpus  # noqa: E402
from lmcourse.profiling import median_seconds  # noqa: E402

TRAIN_BYTES = 1_000_000
VOCAB_SIZE = 8_192


def training_text() -> str:
    """The first ~1 MB of the training split, cut at the end of a line."""
    text = load_corpus("wiki").text("train")
    head = text.encode("utf-8")[:TRAIN_BYTES].decode("utf-8", errors="ignore")
    return head[:head.rfind("\n")]


def hf_merges_as_bytes(hf) -> list[tuple[bytes, bytes]]:
    """tokenizers' merges, with GPT-2's printable stand-in characters mapped back to bytes."""
    merges = json.loads(hf.to_str())["model"]["merges"]
    return [tuple(unicode_to_bytes(part) for part in pair) for pair in merges]


def main() -> None:
    start = time.perf_counter()
    text, valid = training_text(), load_corpus("wiki").text("valid")
    n_train, n_valid = len(text.encode("utf-8")), len(valid.encode("utf-8"))

    ours = ByteBPE()
    rows = {}
    train_s = median_seconds(lambda: ours.train(text, VOCAB_SIZE, progress=False), repeats=3, warmup=0)

    def cold() -> None:
        ours.clear_cache()
        ours.encode(valid)

    rows["lmcourse ByteBPE (Python)"] = (train_s, median_seconds(cold), median_seconds(lambda: ours.encode(valid)),
                                         compression(ours, valid), ours.vocab_size)

    hf = train_hf_bpe(text, VOCAB_SIZE)
    train_s = median_seconds(lambda: train_hf_bpe(text, VOCAB_SIZE), repeats=3, warmup=0)

    def hf_cold() -> None:
        hf.model._clear_cache()
        hf.encode(valid)

    rows["tokenizers byte-level BPE (Rust)"] = (train_s, median_seconds(hf_cold),
                                                median_seconds(lambda: hf.encode(valid)),
                                                compression(hf, valid), hf.get_vocab_size())

    print(f"train: {n_train:,} bytes of wiki/train; encode: wiki/valid, {n_valid:,} bytes; "
          f"vocab {VOCAB_SIZE:,}; one thread")
    print(f"{'tokenizer':34} {'vocab':>6} {'train s':>8} {'enc MB/s cold':>14} {'enc MB/s warm':>14} "
          f"{'bytes/token':>12} {'tokens/byte':>12}")
    for name, (train_s, cold_s, warm_s, bpt, vocab) in rows.items():
        print(f"{name:34} {vocab:>6,} {train_s:>8.2f} {n_valid / cold_s / 1e6:>14.2f} {n_valid / warm_s / 1e6:>14.2f} "
              f"{bpt:>12.4f} {1 / bpt:>12.4f}")

    ours_merges = [(ours.token_bytes(a), ours.token_bytes(b)) for a, b in ours.merges]
    theirs = hf_merges_as_bytes(hf)
    first = next((k for k, (x, y) in enumerate(zip(ours_merges, theirs)) if x != y), None)
    print(f"\nmerges: {len(ours_merges):,} ours, {len(theirs):,} tokenizers; "
          f"{len(set(ours_merges) & set(theirs)):,} in common; identical up to merge "
          f"{first if first is not None else len(ours_merges)} (ties are broken in different byte orders)")
    print(f"total {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
