r"""A synthetic language whose entropy rate is known exactly: a first-order Markov source.

Chapter 1 (Background) uses it to make "the best possible cross-entropy" concrete: a
model trained on samples from the source can at best reach the source's entropy rate

$$H(\mathcal{X}) = -\sum_i \pi_i \sum_j P_{ij} \log_2 P_{ij}$$

bits per symbol, where $P$ is the transition matrix and $\pi$ its stationary
distribution. Later chapters train their models on it as a sanity check.

It also plays the modeller: `MarkovSource.fit` estimates a chain from a sample by counting
(order 0 or 1, add-alpha smoothing) and `cross_entropy` scores a sample under a chain, which is
what the chapter needs to show estimates approaching the true entropy rate.

Left out: higher-order sources, hidden Markov models, and general n-gram estimation (that
belongs to :mod:`lmcourse.ngram`). Only irreducible chains are accepted, so that the
stationary distribution is unique and a long sample visits every symbol.
"""

from __future__ import annotations

import bisect
import string
from dataclasses import dataclass, field

import numpy as np
from scipy.sparse.csgraph import connected_components

from lmcourse._checks import check_int

_ALPHABET = string.ascii_lowercase + string.ascii_uppercase + string.digits


@dataclass(frozen=True, eq=False)
class MarkovSource:
    """A stationary first-order Markov chain over ``V`` symbols.

    ``transition[i, j]`` is ``P(next = j | current = i)``; each row sums to 1 and the
    chain must be irreducible (every symbol reachable from every other). `symbols` names
    the states with single characters (default ``"abc..."``) so samples print as text.

    >>> src = MarkovSource(np.array([[0.9, 0.1], [0.5, 0.5]]))
    >>> src.stationary.round(4).tolist(), round(src.entropy_rate(), 4)
    ([0.8333, 0.1667], 0.5575)
    """

    transition: np.ndarray
    symbols: str = ""
    stationary: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        P = np.array(self.transition, dtype=np.float64)  # a private, read-only copy
        if P.ndim != 2 or P.shape[0] != P.shape[1] or P.shape[0] == 0:
            raise ValueError(f"transition must be a non-empty square (V, V) matrix, got shape {P.shape}")
        if not np.all(np.isfinite(P)) or (P < 0).any():
            raise ValueError("transition entries must be finite and non-negative")
        sums = P.sum(axis=1)
        if not np.allclose(sums, 1.0, rtol=0, atol=1e-9):
            bad = int(np.argmax(np.abs(sums - 1)))
            raise ValueError(f"each row of transition must sum to 1; row {bad} sums to {sums[bad]:.12g}")
        V = P.shape[0]
        n_classes, labels = connected_components(P > 0, directed=True, connection="strong")
        if n_classes > 1:
            raise ValueError(
                f"the chain is reducible ({n_classes} classes of states that do not all reach "
                f"each other, e.g. state {int(np.argmax(labels != labels[0]))} vs state 0), so its "
                "stationary distribution is not unique; make every state reachable from every other")
        symbols = self.symbols or (_ALPHABET[:V] if V <= len(_ALPHABET) else "")
        if len(symbols) != V or len(set(symbols)) != V:
            raise ValueError(f"symbols must be {V} distinct characters, got {self.symbols!r}")
        P.setflags(write=False)
        object.__setattr__(self, "transition", P)
        object.__setattr__(self, "symbols", symbols)
        object.__setattr__(self, "stationary", _stationary(P))

    @classmethod
    def random(cls, num_symbols: int = 8, concentration: float = 0.5, seed: int = 0) -> MarkovSource:
        """A chain whose rows are drawn from a symmetric Dirichlet(`concentration`).

        Small concentrations give peaked rows (a predictable language, low entropy rate);
        large ones approach the uniform chain (entropy rate ``log2 V``).
        """
        check_int("num_symbols", num_symbols, 2)
        if not concentration > 0 or not np.isfinite(concentration):
            raise ValueError(f"concentration must be a positive number, got {concentration!r}")
        rng = np.random.default_rng(seed)
        for _ in range(100):  # tiny concentrations can give exact zeros and a reducible chain
            P = rng.dirichlet(np.full(num_symbols, float(concentration)), size=num_symbols)
            if np.all(np.isfinite(P)):
                P /= P.sum(axis=1, keepdims=True)
                if connected_components(P > 0, directed=True, connection="strong")[0] == 1:
                    return cls(P)
        raise ValueError(f"concentration={concentration} is too small to draw an irreducible chain")

    @classmethod
    def fit(cls, sample: np.ndarray | list[int], num_symbols: int, order: int = 1,
            alpha: float = 1.0) -> MarkovSource:
        """Estimate a chain from `sample` by counting, adding `alpha` to every count (add-alpha).

        ``order=1`` counts adjacent pairs (a bigram model); ``order=0`` counts single symbols and
        uses that one distribution as every row (a unigram model, blind to context).

        >>> MarkovSource.fit([0, 0, 1, 0], num_symbols=2, alpha=1.0).transition.tolist()
        [[0.5, 0.5], [0.6666666666666666, 0.3333333333333333]]
        """
        ids = _check_ids(sample, num_symbols)
        if order not in (0, 1):
            raise ValueError(f"order must be 0 (unigram) or 1 (bigram), got {order!r}")
        if not alpha > 0 or not np.isfinite(alpha):
            raise ValueError(f"alpha must be a positive number (it keeps every probability above 0), got {alpha!r}")
        if order == 0:
            counts = np.bincount(ids, minlength=num_symbols) + alpha  # (V,)
            counts = np.tile(counts, (num_symbols, 1))  # (V, V): the same row everywhere
        else:
            counts = np.full((num_symbols, num_symbols), float(alpha))
            np.add.at(counts, (ids[:-1], ids[1:]), 1.0)  # one count per adjacent pair
        return cls(counts / counts.sum(axis=1, keepdims=True))

    def cross_entropy(self, sample: np.ndarray | list[int], base: float = 2) -> float:
        """Average surprisal ``-1/(n-1) sum_t log P(x_t | x_{t-1})`` of `sample` under this chain.

        In bits for ``base=2``. The first symbol has no context and is not scored.
        """
        ids = _check_ids(sample, self.num_symbols)
        if len(ids) < 2:
            raise ValueError("the sample needs at least 2 symbols: the first one only gives context")
        with np.errstate(divide="ignore"):
            surprisal = -np.log(self.transition[ids[:-1], ids[1:]])  # (n-1,) nats
        return float(surprisal.mean() / np.log(base))

    @property
    def num_symbols(self) -> int:
        return self.transition.shape[0]

    def entropy_rate(self, base: float = 2) -> float:
        """``-sum_i pi_i sum_j P_ij log P_ij``, in bits for ``base=2`` (0 log 0 = 0)."""
        if not base > 0 or base == 1:
            raise ValueError(f"base must be positive and not 1, got {base!r}")
        P = self.transition
        logs = np.log(P, out=np.zeros_like(P), where=P > 0)
        row_entropy = -(P * logs).sum(axis=1)  # (V,) nats
        return float(self.stationary @ row_entropy / np.log(base))

    def sample(self, n: int, seed: int | np.random.Generator | None = None) -> np.ndarray:
        """`n` symbols (int64 ids) of the stationary chain: the first drawn from pi."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = np.random.default_rng(seed)
        out = np.empty(int(n), dtype=np.int64)
        if n == 0:
            return out
        u = rng.random(int(n))
        V = self.num_symbols
        cdf = np.cumsum(self.transition, axis=1).tolist()  # rows as lists, for bisect
        last = [int(np.flatnonzero(row)[-1]) for row in self.transition]  # guards rounding
        state = min(int(np.searchsorted(np.cumsum(self.stationary), u[0], side="right")), V - 1)
        out[0] = state
        for t in range(1, int(n)):
            state = min(bisect.bisect_right(cdf[state], u[t]), last[state])
            out[t] = state
        return out

    def decode(self, ids: np.ndarray | list[int]) -> str:
        """Symbol ids -> text, e.g. ``[0, 1, 0] -> "aba"``."""
        return "".join(self.symbols[int(i)] for i in ids)

    def encode(self, text: str) -> np.ndarray:
        """Text -> symbol ids; raises ``ValueError`` for a character not in `symbols`."""
        index = {s: i for i, s in enumerate(self.symbols)}
        try:
            return np.array([index[c] for c in text], dtype=np.int64)
        except KeyError as err:
            raise ValueError(f"{err.args[0]!r} is not a symbol of this source ({self.symbols!r})") from None

    def __repr__(self) -> str:
        return (f"MarkovSource(num_symbols={self.num_symbols}, symbols={self.symbols!r}, "
                f"entropy_rate={self.entropy_rate():.4f} bits/symbol)")


def _check_ids(sample: np.ndarray | list[int], num_symbols: int) -> np.ndarray:
    """A 1-D int64 array of symbol ids in ``[0, num_symbols)``, or a clear error."""
    ids = np.asarray(sample)
    if ids.ndim != 1 or ids.size == 0:
        raise ValueError(f"sample must be a non-empty 1-D sequence of symbol ids, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"sample must hold integer symbol ids, got dtype {ids.dtype}; use source.encode(text)")
    if ids.min() < 0 or ids.max() >= num_symbols:
        raise ValueError(f"symbol ids must be in [0, {num_symbols}), got values from {ids.min()} to {ids.max()}")
    return ids.astype(np.int64)


def _stationary(P: np.ndarray) -> np.ndarray:
    """Solve pi P = pi, sum(pi) = 1 exactly (unique for an irreducible chain)."""
    V = P.shape[0]
    A = P.T - np.eye(V)  # (V, V): (P^T - I) pi = 0
    A[-1, :] = 1.0  # replace one (redundant) equation by sum(pi) = 1
    b = np.zeros(V)
    b[-1] = 1.0
    pi = np.linalg.solve(A, b)
    if (pi < -1e-10).any():
        raise ValueError("stationary distribution came out negative: the chain is ill-conditioned")
    pi = np.clip(pi, 0.0, None)
    pi /= pi.sum()
    if not (np.isclose(pi.sum(), 1.0) and np.allclose(pi @ P, pi, atol=1e-10)):
        raise ValueError("could not solve for the stationary distribution accurately")
    pi.setflags(write=False)
    return pi
