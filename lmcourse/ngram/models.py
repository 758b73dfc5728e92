"""The shared model machinery (fit, score, evaluate, sample) and the simple estimators: maximum
likelihood, add-k, linear interpolation tuned by EM, and stupid backoff.

Every model but :class:`StupidBackoff` is a probability distribution over the *prediction
vocabulary* (every vocabulary entry except ``"<s>"``) for any context at all. A model of order n
reads the last ``n - 1`` words of a context; a context that is shorter (``prob("cat", ())`` in a
trigram model) gets the model's own lower-order estimate, as NLTK does, and a context that never
occurred in training is handled by each model's rule (see its docstring). Unknown words are
``"<unk>"``. Scoring is vectorised: all tokens of a text are looked up at once, order by order.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from lmcourse.ngram.counts import BOS_ID, EOS_ID, NGramCounts, check_order, check_sentences, left_windows
from lmcourse.text import Vocab

__all__ = ["NGramModel", "LanguageModel", "Evaluation", "NotADistributionError",
           "MLE", "AddK", "Interpolated", "StupidBackoff"]

Context = Sequence[str]


class NotADistributionError(TypeError):
    """A model gives scores, not probabilities, so probability-based methods do not apply."""


@dataclass(frozen=True)
class Evaluation:
    """A model's result on held-out sentences."""

    total_nll: float  # negative log-likelihood of the whole text, in nats
    num_tokens: int  # predicted tokens: the words plus one "</s>" per sentence
    num_oov: int  # words not in the training vocabulary (each scored as "<unk>")
    perplexity: float  # exp(total_nll / num_tokens); inf if some token has probability 0
    bits_per_token: float  # total_nll / num_tokens / ln 2


class NGramModel:
    """What every n-gram model shares: the order, ``fit`` (counting), the vocabulary, and turning
    contexts and sentences into the integer ids the models score."""

    def __init__(self, order: int = 3) -> None:
        self.order = check_order(order)
        self._counts: NGramCounts | None = None

    def fit(self, sentences: Iterable[Sequence[str]], min_count: int = 1):
        """Count the n-grams of tokenized ``sentences``; words seen fewer than ``min_count`` times
        become ``"<unk>"``. Returns the model."""
        self._counts = NGramCounts(sentences, self.order, min_count)
        c = self._counts
        self._raw = [np.zeros(0)] + [c.raw_counts(k) for k in range(1, self.order + 1)]
        self._totals = [np.zeros(0)] + [  # c(h .) for each context h of length k-1
            np.bincount(c.gram_context(k), weights=self._raw[k], minlength=c.num_contexts(k - 1))
            for k in range(1, self.order + 1)]
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Model-specific tables computed once after counting."""

    @property
    def counts(self) -> NGramCounts:
        if self._counts is None:
            raise RuntimeError(f"this {type(self).__name__} model is not trained yet: call .fit(...) first")
        return self._counts

    @property
    def vocab(self) -> Vocab:
        """``"<unk>"``, ``"<s>"``, ``"</s>"`` and the training words; ids index every array."""
        return self.counts.vocab

    @property
    def num_parameters(self) -> int:
        """Stored n-gram entries, all orders together."""
        return self.counts.num_entries

    def _word_id(self, word: str) -> int:
        if not isinstance(word, str):
            raise TypeError(f"word must be a str, got {type(word).__name__} ({word!r:.40})")
        return int(self.counts.word_ids([word])[0])

    def _context_left(self, context: Context, keep: int | None = None) -> np.ndarray:
        """The last ``keep`` (default order-1) words of ``context`` as a (1, m) array of ids."""
        if isinstance(context, (str, bytes)):
            raise TypeError(f"context must be a tuple or list of words, e.g. ('the',), not a str "
                            f"({context!r:.40})")
        try:
            words = tuple(context)
        except TypeError:
            raise TypeError(f"context must be a tuple or list of words, got "
                            f"{type(context).__name__}") from None
        if not all(isinstance(w, str) for w in words):
            raise TypeError(f"context words must be str, got {words!r:.60}")
        keep = self.order - 1 if keep is None else keep
        words = words[len(words) - min(len(words), keep):]  # the last order-1 words
        return self.counts.word_ids(words)[None, :]  # (1, m)

    def _sentence_contexts(self, sentences: Iterable[Sequence[str]]
                           ) -> tuple[list[np.ndarray], np.ndarray, int]:
        """Context numbers of every predicted token (a list over context lengths 0..order-1, each
        (P,)), the predicted word ids (P,), and the number of OOV words."""
        counts = self.counts
        stream, positions, num_oov = counts.encode(check_sentences(sentences, "scoring"))
        left = left_windows(stream, positions, self.order - 1)  # (P, order-1)
        return counts.context_ids(left), stream[positions], num_oov

    def _uniform(self, words: np.ndarray) -> np.ndarray:
        """1/|prediction vocabulary| for each word, 0 for "<s>"."""
        return np.where(words == BOS_ID, 0.0, 1.0 / (len(self.vocab) - 1))

    def _mle_estimates(self, ctx: list[np.ndarray], words: np.ndarray) -> list[np.ndarray]:
        """Relative frequencies c(h w) / c(h .) of orders 1..len(ctx), each (N,). Where a context
        never occurred, order k repeats the order k-1 estimate (the only distribution available)."""
        out: list[np.ndarray] = []
        for k in range(1, len(ctx) + 1):
            c = ctx[k - 1]
            idx = self.counts.gram_index(k, c, words)
            num = np.where(idx >= 0, self._raw[k][np.maximum(idx, 0)], 0)
            total = np.where(c >= 0, self._totals[k][np.maximum(c, 0)], 0.0)
            est = num / np.maximum(total, 1.0)
            out.append(est if k == 1 else np.where(total > 0, est, out[-1]))
        return out

    def __repr__(self) -> str:
        state = f"vocab={len(self.vocab):,}" if self._counts is not None else "not fitted"
        return f"{type(self).__name__}(order={self.order}, {state})"


class LanguageModel(NGramModel):
    """An n-gram model that is a probability distribution: subclasses define ``_probs``."""

    def _probs(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        """P(word | context) for N queries at once: ``ctx`` lists the context numbers of lengths
        0..m (each (N,), -1 if unseen), ``words`` is (N,). Orders above m+1 are not used."""
        raise NotImplementedError

    def prob(self, word: str, context: Context = ()) -> float:
        """P(word | context); only the last order-1 words of ``context`` are used."""
        w = self._word_id(word)
        ctx = self.counts.context_ids(self._context_left(context))
        return float(self._probs(ctx, np.array([w]))[0])

    def logprob(self, word: str, context: Context = ()) -> float:
        """Natural log of :meth:`prob`; ``-inf`` where the probability is 0."""
        p = self.prob(word, context)
        return math.log(p) if p > 0 else -math.inf

    def _distribution_of(self, left: np.ndarray) -> np.ndarray:
        V = len(self.vocab)
        ctx = [np.repeat(c, V) for c in self.counts.context_ids(left)]  # each (1,) -> (V,)
        return self._probs(ctx, np.arange(V))

    def distribution(self, context: Context = ()) -> np.ndarray:
        """P(w | context) for every vocabulary id w, shape (V,); 0 for "<s>"; sums to 1."""
        return self._distribution_of(self._context_left(context))

    def token_logprobs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """Natural-log probability of every predicted token (each word, then "</s>"), in order."""
        ctx, words, _ = self._sentence_contexts(sentences)
        with np.errstate(divide="ignore"):
            return np.log(self._probs(ctx, words))

    def evaluate(self, sentences: Iterable[Sequence[str]]) -> Evaluation:
        """Total negative log-likelihood, token counts, perplexity and bits per token."""
        ctx, words, num_oov = self._sentence_contexts(sentences)
        if len(words) == 0:
            raise ValueError("no sentences to evaluate")
        with np.errstate(divide="ignore"):
            nll = -float(np.log(self._probs(ctx, words)).sum())
        per_token = nll / len(words)
        return Evaluation(nll, len(words), num_oov, math.exp(per_token) if per_token < 700 else math.inf,
                          per_token / math.log(2))

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        """exp(average negative log-probability per token); ``math.inf`` if any token has
        probability 0."""
        return self.evaluate(sentences).perplexity

    def generate(self, max_words: int = 30, seed: int | None = 0, context: Context = ()) -> list[str]:
        """Sample a sentence word by word, starting after ``<s>`` and the words of ``context``
        (not repeated in the output). Stops after ``"</s>"`` (included) or ``max_words`` tokens."""
        if isinstance(max_words, bool) or not isinstance(max_words, (int, np.integer)) or max_words < 0:
            raise ValueError(f"max_words must be an int >= 0, got {max_words!r}")
        start = self._context_left(context, keep=sys.maxsize)[0].tolist()  # every word given
        history = [BOS_ID] * (self.order - 1) + start
        rng = np.random.default_rng(seed)
        itos = self.vocab.get_itos()
        out: list[str] = []
        while len(out) < max_words:
            left = np.array(history[len(history) - (self.order - 1):], dtype=np.int64)[None, :]  # (1, n-1)
            cdf = np.cumsum(self._distribution_of(left))  # (V,)
            i = min(int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right")), len(cdf) - 1)
            out.append(itos[i])
            if i == EOS_ID:
                break
            history.append(i)
        return out


class MLE(LanguageModel):
    """Maximum likelihood: P(w | h) = c(h w) / c(h .).

    Zero for anything unseen, so held-out perplexity is usually infinite. A context that never
    occurred has no relative frequencies; there the model uses its longest seen suffix (the
    unigram distribution at worst), so that every context still gets a distribution.

    >>> lm = MLE(order=2).fit([["a", "b"], ["a", "c"]])
    >>> lm.prob("b", ("a",)), lm.prob("a", ("<s>",)), lm.prob("</s>", ("c",))
    (0.5, 1.0, 1.0)
    """

    def _probs(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        return self._mle_estimates(ctx, words)[-1]


class AddK(LanguageModel):
    """Add-k smoothing: P(w | h) = (c(h w) + k) / (c(h .) + k |V|), with |V| the prediction
    vocabulary. ``k = 1`` is Laplace's add-one. An unseen context gets the uniform distribution.

    >>> lm = AddK(order=2, k=1.0).fit([["a", "b"], ["a", "c"]])  # |V| = 5: <unk> </s> a b c
    >>> round(lm.prob("b", ("a",)), 6)  # (1 + 1) / (2 + 5)
    0.285714
    """

    def __init__(self, order: int = 2, k: float = 1.0) -> None:
        super().__init__(order)
        if isinstance(k, bool) or not isinstance(k, (int, float)) or not 0 < k < math.inf:
            raise ValueError(f"k must be a positive number (k=1 is Laplace smoothing), got {k!r}")
        self.k = float(k)

    def _probs(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        n = len(ctx)  # the order in use: all context words given, up to order-1
        c = ctx[-1]
        idx = self.counts.gram_index(n, c, words)
        num = np.where(idx >= 0, self._raw[n][np.maximum(idx, 0)], 0)
        total = np.where(c >= 0, self._totals[n][np.maximum(c, 0)], 0.0)
        p = (num + self.k) / (total + self.k * (len(self.vocab) - 1))
        return np.where(words == BOS_ID, 0.0, p)


def _check_lambdas(lambdas: Sequence[float], order: int) -> np.ndarray:
    arr = np.asarray(lambdas, dtype=float)
    if arr.shape != (order + 1,):
        raise ValueError(f"lambdas needs order+1 = {order + 1} weights (lambdas[0] for the uniform "
                         f"distribution, lambdas[k] for the order-k estimate), got shape {arr.shape}")
    if not np.all(np.isfinite(arr)) or np.any(arr < 0) or not math.isclose(arr.sum(), 1.0, abs_tol=1e-6):
        raise ValueError(f"lambdas must be non-negative and sum to 1, got {arr.tolist()} "
                         f"(sum {arr.sum():.6g})")
    return arr / arr.sum()


class Interpolated(LanguageModel):
    """Linear interpolation (Jelinek-Mercer): P(w | h) = l0 / |V| + sum_k lk P_k(w | h), where
    P_k is the order-k relative frequency (the order k-1 one where its context never occurred)
    and the uniform term keeps every probability above 0.

    The weights are constant (one per order, ``lambdas[0]`` for the uniform term); pass them, or
    choose them by EM on held-out text with :meth:`tune`.

    >>> lm = Interpolated(order=2, lambdas=[0.2, 0.3, 0.5]).fit([["a", "b"], ["a", "c"]])
    >>> round(lm.prob("b", ("a",)), 6)  # 0.2/5 + 0.3 * 1/6 + 0.5 * 1/2
    0.34
    """

    def __init__(self, order: int = 3, lambdas: Sequence[float] | None = None) -> None:
        super().__init__(order)
        self.lambdas = None if lambdas is None else _check_lambdas(lambdas, self.order)

    def _components(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        """(N, order+1): the uniform probability and the estimates of orders 1..order."""
        levels = self._mle_estimates(ctx, words)
        levels += [levels[-1]] * (self.order - len(levels))  # a short context: highest order given
        return np.stack([self._uniform(words)] + levels, axis=1)

    def _probs(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        if self.lambdas is None:
            raise RuntimeError("Interpolated has no weights yet: call .tune(valid_sentences) after "
                               ".fit(...), or pass lambdas=[...] when creating it")
        comps = self._components(ctx, words)  # (N, K)
        return sum(lam * comps[:, k] for k, lam in enumerate(self.lambdas))  # (N,), same for any N

    def tune(self, valid_sentences: Iterable[Sequence[str]], max_iterations: int = 500,
             tol: float = 1e-8):
        """Set ``lambdas`` to maximise the likelihood of held-out sentences, by EM (as in deleted
        interpolation). Returns the model."""
        ctx, words, _ = self._sentence_contexts(valid_sentences)
        if len(words) == 0:
            raise ValueError("tune needs at least one held-out sentence")
        comps = self._components(ctx, words)  # (N, K)
        lam = np.full(comps.shape[1], 1.0 / comps.shape[1])
        for iteration in range(1, max_iterations + 1):
            mix = comps @ lam  # (N,)
            new = (comps * lam / mix[:, None]).mean(axis=0)  # (N, K) -> (K,): each order's share
            converged = np.abs(new - lam).max() < tol
            lam = new
            if converged:
                break
        self.lambdas = lam / lam.sum()
        self.tune_iterations = iteration
        return self


class StupidBackoff(NGramModel):
    """Stupid backoff (Brants et al., 2007): S(w | h) = c(h w) / c(h .) if the n-gram occurred,
    else ``alpha`` * S(w | shorter h), down to c(w) / N.

    Scores, not probabilities: for a context they can sum to more than 1, so there is no
    perplexity. Brants et al. built it for ranking translations from web-scale counts, where only
    the order of the scores matters. ``prob``, ``perplexity`` and the like raise
    :class:`NotADistributionError`; use :meth:`score`.

    >>> lm = StupidBackoff(order=2).fit([["a", "b"], ["a", "c"]])
    >>> lm.score("b", ("a",)), round(lm.score("a", ("b",)), 4)  # 0.4 * c(a) / N = 0.4 * 2/6
    (0.5, 0.1333)
    """

    def __init__(self, order: int = 3, alpha: float = 0.4) -> None:
        super().__init__(order)
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0 < alpha <= 1:
            raise ValueError(f"alpha must be in (0, 1], got {alpha!r}")
        self.alpha = float(alpha)

    def _scores(self, ctx: list[np.ndarray], words: np.ndarray) -> np.ndarray:
        s = np.zeros(len(words))
        for k in range(1, len(ctx) + 1):
            c = ctx[k - 1]
            idx = self.counts.gram_index(k, c, words)
            num = np.where(idx >= 0, self._raw[k][np.maximum(idx, 0)], 0)
            total = np.where(c >= 0, self._totals[k][np.maximum(c, 0)], 0.0)
            s = np.where(num > 0, num / np.maximum(total, 1.0), self.alpha * s)
        return s

    def score(self, word: str, context: Context = ()) -> float:
        """S(word | context); only the last order-1 words of ``context`` are used."""
        ctx = self.counts.context_ids(self._context_left(context))
        return float(self._scores(ctx, np.array([self._word_id(word)]))[0])

    def scores(self, context: Context = ()) -> np.ndarray:
        """S(w | context) for every vocabulary id w, shape (V,)."""
        V = len(self.vocab)
        ctx = [np.repeat(c, V) for c in self.counts.context_ids(self._context_left(context))]
        return self._scores(ctx, np.arange(V))

    def token_scores(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        """The score of every predicted token (each word, then "</s>"), in order."""
        ctx, words, _ = self._sentence_contexts(sentences)
        return self._scores(ctx, words)

    def _not_a_distribution(self, what: str, context: Context | None = None) -> NotADistributionError:
        detail = ""
        if context is not None and self._counts is not None:
            detail = (f" (for the context {tuple(context)!r} its scores sum to "
                      f"{self.scores(context).sum():.3f})")
        return NotADistributionError(
            f"StupidBackoff has no {what}: its scores are not probabilities and do not sum to 1 over "
            f"the vocabulary{detail}, so a perplexity computed from them would be meaningless. Use "
            f".score(word, context) to rank words, or a model that is a distribution (KneserNey, "
            f"Interpolated, AddK) to get probabilities.")

    def prob(self, word: str, context: Context = ()) -> float:
        raise self._not_a_distribution("prob", context)

    def logprob(self, word: str, context: Context = ()) -> float:
        raise self._not_a_distribution("logprob", context)

    def distribution(self, context: Context = ()) -> np.ndarray:
        raise self._not_a_distribution("distribution", context)

    def token_logprobs(self, sentences: Iterable[Sequence[str]]) -> np.ndarray:
        raise self._not_a_distribution("token_logprobs")

    def evaluate(self, sentences: Iterable[Sequence[str]]) -> Evaluation:
        raise self._not_a_distribution("evaluate")

    def perplexity(self, sentences: Iterable[Sequence[str]]) -> float:
        raise self._not_a_distribution("perplexity")

    def generate(self, max_words: int = 30, seed: int | None = 0, context: Context = ()) -> list[str]:
        raise self._not_a_distribution("generate (sampling needs probabilities)")
