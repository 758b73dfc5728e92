"""N-gram language models: counting, maximum likelihood, add-k, interpolation, Kneser-Ney,
perplexity and sampling.

Chapter 2 (N-gram language models) explains every piece here. A sentence is a list of tokens;
models pad it with ``order - 1`` ``"<s>"`` on the left and one ``"</s>"`` on the right::

    lm = KneserNey(order=3).fit(train_sentences)
    lm.prob("cat", ("the",)), lm.perplexity(test_sentences), lm.generate(seed=0)

- :mod:`~lmcourse.ngram.counts`: :class:`NGramCounts`, counts of every order as integer ids
  (sorted int64 keys, no nested dicts), continuation counts and count-of-counts;
  :func:`unseen_share` for the sparsity figures.
- :mod:`~lmcourse.ngram.models`: :class:`MLE`, :class:`AddK`, :class:`Interpolated` (weights
  tuned by EM on held-out text), :class:`StupidBackoff` (scores, not probabilities).
- :mod:`~lmcourse.ngram.kneser_ney`: :class:`KneserNey` (a fixed discount, or one per order with
  ``discount="estimate"``) and :class:`ModifiedKneserNey`.
- :mod:`~lmcourse.ngram.goodturing`: :func:`heldout_counts` (Church & Gale's held-out table) and
  :func:`good_turing_counts`, the evidence for absolute discounting.
- :mod:`~lmcourse.ngram.novelty`: :class:`TrainingText`, the longest training run of a sample.
- :mod:`~lmcourse.ngram.softmax_bigram` (imports torch, so not re-exported here): a bigram model as a
  logit table trained by gradient descent, the bridge to Chapter 3.

Every model except :class:`StupidBackoff` is a probability distribution over the vocabulary
without ``"<s>"``, for any context, seen or not; words not seen in training (or rarer than
``min_count``) are ``"<unk>"``. Perplexity counts one ``"</s>"`` per sentence as a token.

Left out on purpose: Katz backoff and Good-Turing smoothing (the adjusted counts are here, the
models built on them are not), Witten-Bell, pruning (entropy-based or by
count), ARPA files and other interchange formats, class-based models, caches, and the compact
tries (KenLM, SRILM) that make web-scale models fit in memory.
"""

from lmcourse.ngram.counts import BOS, EOS, UNK, NGramCounts, unseen_share
from lmcourse.ngram.goodturing import HeldOutCounts, good_turing_counts, heldout_counts
from lmcourse.ngram.kneser_ney import KneserNey, ModifiedKneserNey, estimated_discount, modified_discounts
from lmcourse.ngram.models import (MLE, AddK, Evaluation, Interpolated, LanguageModel, NGramModel,
                                   NotADistributionError, StupidBackoff)
from lmcourse.ngram.novelty import TrainingText

__all__ = ["NGramCounts", "unseen_share", "UNK", "BOS", "EOS",
           "NGramModel", "LanguageModel", "Evaluation", "NotADistributionError",
           "MLE", "AddK", "Interpolated", "StupidBackoff",
           "KneserNey", "ModifiedKneserNey", "estimated_discount", "modified_discounts",
           "HeldOutCounts", "heldout_counts", "good_turing_counts", "TrainingText"]
