"""lmcourse's skip-gram (SGNS) against gensim's Word2Vec on the book's wiki corpus.

Both train on the same sentences (the wiki train split, split into sentences and tokenized with
basic_english) with the same settings: skip-gram, 5 noise words, D=100, window 5, min_count 5,
sample 1e-3. gensim runs its C code with 2 worker threads and per-pair SGD (Hogwild); lmcourse
runs PyTorch mini-batches of 1024 pairs on one thread, with SGD (its default) and with
SparseAdam. The table reports training time, words per second (corpus words x epochs / time),
analogy accuracy and coverage on word2vec's questions-words.txt (gensim's copy), and how much
each model's 10 nearest neighbours agree with gensim's over the 200 most frequent non-stopwords;
gensim retrained with another seed gives the level of agreement that run-to-run noise leaves.
Then the neighbours of a few probe words, side by side.

A 383k-word corpus is tiny for word2vec (the paper used billions of words): analogy accuracy is
a few percent for every model here and the numbers move by a point or two with the seed, so read
them as "same ballpark", not as a ranking. gensim with 2 worker threads is not reproducible even
with a fixed seed (the threads race), so its rows change a little from run to run.
Run: `python benchmarks/bench_embeddings.py [--epochs 5]`.
"""

from __future__ import annotations

import argparse
import logging
import time

import torch

from lmcourse.data import load_corpus, sentences
from lmcourse.embeddings import (SkipGramConfig, WordVectors, analogy_accuracy,
                                 neighbour_agreement, train_skipgram)
from lmcourse.text import get_tokenizer

PROBES = ["king", "war", "french", "water", "music"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-adam", action="store_true", help="skip the SparseAdam run")
    parser.add_argument("--lr", type=float, default=None, help="start lr of the SGD run")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    logging.getLogger("gensim").setLevel(logging.WARNING)

    from gensim.models import Word2Vec
    from gensim.parsing.preprocessing import STOPWORDS
    from gensim.test.utils import datapath

    tok = get_tokenizer("basic_english")
    sents = [tok(s) for s in sentences(load_corpus("wiki").train)]
    n_words = sum(map(len, sents))
    questions = datapath("questions-words.txt")
    print(f"wiki train: {len(sents)} sentences, {n_words} words; epochs={args.epochs}")

    runs: dict[str, tuple[WordVectors, float]] = {}
    start = time.perf_counter()
    g = Word2Vec(sents, sg=1, negative=5, vector_size=100, window=5, min_count=5, sample=1e-3,
                 epochs=args.epochs, workers=2, seed=args.seed)
    runs["gensim Word2Vec"] = (WordVectors.from_gensim(g.wv), time.perf_counter() - start)
    gensim_score = g.wv.evaluate_word_analogies(questions)[0]
    start = time.perf_counter()  # the same model with another seed: how much agreement is noise
    g2 = Word2Vec(sents, sg=1, negative=5, vector_size=100, window=5, min_count=5, sample=1e-3,
                  epochs=args.epochs, workers=2, seed=args.seed + 1)
    runs["gensim Word2Vec, seed+1"] = (WordVectors.from_gensim(g2.wv), time.perf_counter() - start)

    cfg = SkipGramConfig(dim=100, window=5, negatives=5, min_count=5, sample=1e-3,
                         epochs=args.epochs, seed=args.seed, lr=args.lr)
    optimizers = ["sgd"] if args.no_adam else ["sgd", "sparse_adam"]
    for opt in optimizers:
        wv = train_skipgram(sents, SkipGramConfig(**{**cfg.__dict__, "optimizer": opt}))
        runs[f"lmcourse SGNS ({opt})"] = (wv, wv.seconds or 0.0)

    gensim_wv = runs["gensim Word2Vec"][0]
    frequent = [w for w in gensim_wv.words if w.isalpha() and w not in STOPWORDS][:200]
    print(f"\n{'model':<28}{'train s':>9}{'words/s':>10}{'analogy acc':>13}{'coverage':>10}"
          f"{'agree@10':>10}{'final loss':>12}")
    for name, (wv, secs) in runs.items():
        r = analogy_accuracy(wv, questions)
        agree = neighbour_agreement(wv, gensim_wv, frequent, k=10)
        loss = f"{wv.loss_history[-1]:.3f}" if wv.loss_history else "-"
        print(f"{name:<28}{secs:>9.1f}{n_words * args.epochs / secs:>10.0f}{r.accuracy:>13.3f}"
              f"{r.answered:>5}/{r.total:<5}{agree:>9.3f}{loss:>12}")
    print(f"(gensim's own evaluate_word_analogies on its vectors: {gensim_score:.3f}; "
          f"agree@10 of gensim with itself is 1 by definition)")

    for w in PROBES:
        if w not in gensim_wv:
            continue
        print(f"\n{w}:")
        for name, (wv, _) in runs.items():
            near = ", ".join(x for x, _ in wv.most_similar(w, 8)) if w in wv else "(not in vocab)"
            print(f"  {name:<26} {near}")


if __name__ == "__main__":
    main()
