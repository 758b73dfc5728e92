"""The feed-forward neural language model of Bengio et al. (2003), Chapter 3a (Word embeddings and
a feed-forward language model).

Like an n-gram model it reads only the last ``n - 1`` tokens, but it maps each to a learned
vector (a *word feature vector*, the embedding), concatenates them into ``x``, and computes

    y = b + W x + U tanh(d + H x),      P(w_t | w_{t-n+1} ... w_{t-1}) = softmax(y)[w_t]

The ``W x`` term is the paper's optional *direct connections* from the embeddings to the
output (``direct=True``). Here it is implemented by giving the output layer the features
``[tanh(d + H x); x]``, so one linear decoder computes ``U tanh(d + Hx) + W x + b`` exactly;
the same features feed the adaptive softmax when ``adaptive_cutoffs`` are given.

Over a chunk of a stream (T, B) the model needs, for the first positions, tokens from the end
of the previous chunk: its ``state`` is the last ``n - 1`` input tokens, a LongTensor
``(n - 1, B)``. At the start of a stream (``state=None``) the missing context is filled with
``pad_id``, by default 2, the id of ``"</s>"`` in the book's vocabularies (``<unk>``, ``<s>``,
``</s>``, ...): a stream starts as if a sentence had just ended. Carried state therefore gives
exactly the same result as one long chunk.

Left out: the paper's parallel training over several CPUs, its energy-minimisation variant, and
mixing with an interpolated trigram model.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lmcourse.neural import NeuralLM, check_output_layer, check_sizes, check_tokens

__all__ = ["FeedForwardConfig", "FeedForwardLM"]


@dataclass(frozen=True)
class FeedForwardConfig:
    """Hyperparameters of :class:`FeedForwardLM` (defaults near the paper's best small model:
    n = 5, 60 features, 100 hidden units). Vary with ``dataclasses.replace(cfg, context=2)``."""

    vocab_size: int  # V: number of token ids
    context: int = 4  # n - 1: how many previous tokens the model reads
    emb_dim: int = 60  # m in the paper: size of a word feature vector
    hidden_dim: int = 100  # h in the paper: tanh hidden units
    dropout: float = 0.0  # on the concatenated embeddings and on the hidden layer (the paper had none)
    direct: bool = False  # direct connections W x from the embeddings to the output
    adaptive_cutoffs: tuple[int, ...] | None = None  # e.g. (2000, 6000): adaptive softmax; None: full
    pad_id: int = 2  # fills the context before a stream's first token: "</s>" in the book's vocabularies

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context", "emb_dim", "hidden_dim"))
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int) or \
                not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be an id in [0, vocab_size={self.vocab_size}), got "
                             f"{self.pad_id!r}; it fills the context before a stream starts")
        check_output_layer(self, width="F")

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> FeedForwardConfig:
        """A small model for CPU experiments; `overrides` change any field.

        >>> FeedForwardConfig.tiny(100, context=2).context
        2
        """
        fields = dict(context=3, emb_dim=32, hidden_dim=64)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})


class FeedForwardLM(NeuralLM):
    """Embeddings of the last n-1 tokens, concatenated -> tanh hidden layer -> softmax (+ direct).

    >>> model = FeedForwardLM(FeedForwardConfig.tiny(vocab_size=10, context=2))
    >>> x = torch.tensor([[3, 4], [5, 6], [7, 8]])  # (T=3, B=2)
    >>> logp, state = model.log_probs(x, None)
    >>> logp.shape, state.tolist()  # state: the last n-1 = 2 input tokens of each stream
    (torch.Size([3, 2, 10]), [[5, 6], [7, 8]])
    """

    def __init__(self, config: FeedForwardConfig) -> None:
        super().__init__()
        if not isinstance(config, FeedForwardConfig):
            raise TypeError(f"FeedForwardLM needs a FeedForwardConfig, got {type(config).__name__}")
        self.config = c = config
        in_dim = c.context * c.emb_dim  # size of x: n-1 concatenated embeddings
        self.embedding = nn.Embedding(c.vocab_size, c.emb_dim)  # the matrix C of the paper
        self.drop = nn.Dropout(c.dropout)
        self.hidden = nn.Linear(in_dim, c.hidden_dim)  # H and d
        self._build_output(c.hidden_dim + (in_dim if c.direct else 0), c.vocab_size, c.adaptive_cutoffs)
        nn.init.uniform_(self.embedding.weight, -0.1, 0.1)

    def context_windows(self, inputs: torch.Tensor, state: torch.Tensor | None
                        ) -> tuple[torch.Tensor, torch.Tensor]:
        """For each position t, the n-1 tokens ending at ``inputs[t]`` (oldest first):
        ``(T, B, n-1)``, and the new state, the last n-1 tokens ``(n-1, B)``.

        >>> model = FeedForwardLM(FeedForwardConfig.tiny(vocab_size=10, context=2))
        >>> windows, state = model.context_windows(torch.tensor([[5], [6], [7]]), None)
        >>> windows[:, 0].tolist()  # pad_id 2 before the stream starts
        [[2, 5], [5, 6], [6, 7]]
        """
        m = self.config.context
        if state is None:
            state = inputs.new_full((m, inputs.shape[1]), self.config.pad_id)  # (n-1, B)
        full = torch.cat([state, inputs])  # (n-1, B) + (T, B) -> (n-1+T, B)
        windows = full.unfold(0, m, 1)[1:]  # (T+1, B, n-1) windows starting at 0..T -> drop the first
        return windows, full[-m:]

    def features(self, inputs: torch.Tensor, state: torch.Tensor | None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token ids (T, B) -> ``tanh(d + H x)`` (T, B, h), with ``x`` appended if ``direct``."""
        windows, state = self.context_windows(inputs, state)  # (T, B, n-1)
        T, B, m = windows.shape
        x = self.embedding(windows).reshape(T, B, m * self.config.emb_dim)  # (T, B, n-1, E) -> (T, B, (n-1)E)
        x = self.drop(x)
        h = self.drop(torch.tanh(self.hidden(x)))  # (T, B, (n-1)E) @ ((n-1)E, h) -> (T, B, h)
        return (torch.cat([h, x], dim=-1) if self.config.direct else h), state  # (T, B, h [+ (n-1)E])

    def check_state(self, state: Any, batch_size: int) -> None:
        """The state must be the last n-1 tokens, a LongTensor (n-1, B) of valid ids."""
        check_tokens("state (the previous n-1 tokens)", state, self.config.vocab_size,
                     shape=(self.config.context, batch_size))

    def extra_repr(self) -> str:
        return f"{dataclasses.asdict(self.config)}"
