"""Word vectors, Chapter 3a (Word embeddings and a feed-forward language model): word2vec's
skip-gram with negative sampling, and the probes the book runs on the vectors.

- :mod:`lmcourse.embeddings.pairs`: vocabulary, subsampling, noise and the (centre, context) pairs;
- :mod:`lmcourse.embeddings.skipgram`: the model and its training (:func:`train_skipgram`);
- :mod:`lmcourse.embeddings.vectors`: :class:`WordVectors`, neighbours, analogies, agreement.

Every name is importable from ``lmcourse.embeddings`` itself.
"""

from lmcourse.embeddings.pairs import (
    build_vocab,
    draw_windows,
    keep_probabilities,
    noise_distribution,
    sample_negatives,
    skipgram_pairs,
    subsample,
)
from lmcourse.embeddings.skipgram import SkipGram, SkipGramConfig, train_skipgram
from lmcourse.embeddings.vectors import (
    AnalogyResult,
    UnknownWordError,
    WordVectors,
    analogy_accuracy,
    from_gensim,
    neighbour_agreement,
)

__all__ = [
    "SkipGramConfig", "SkipGram", "train_skipgram", "WordVectors", "UnknownWordError",
    "build_vocab", "keep_probabilities", "subsample", "noise_distribution", "sample_negatives",
    "draw_windows", "skipgram_pairs", "neighbour_agreement", "analogy_accuracy",
    "AnalogyResult", "from_gensim",
]
