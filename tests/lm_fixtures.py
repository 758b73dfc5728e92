"""Tiny language models and data shared by tests/test_train.py and tests/test_checkpoint.py.

The models follow lmcourse's protocol (``nll(inputs, targets, state)`` and a ``config``
dataclass): a GRU/LSTM language model with dropout and a stateless bigram. The data are samples
of a small Markov source, whose own cross-entropy is an oracle for what training can reach.
"""

from dataclasses import dataclass

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lmcourse.data import MarkovSource
from lmcourse.train import TrainConfig

V = 8



# ---------------------------------------------------------------------------------------------
# Tiny models that follow the protocol

@dataclass
class RNNConfig:
    vocab_size: int = V
    emb_dim: int = 8
    hidden_dim: int = 12
    cell: str = "gru"  # "gru" or "lstm"
    dropout: float = 0.0


class TinyRNN(nn.Module):
    def __init__(self, config: RNNConfig = RNNConfig()):
        super().__init__()
        self.config = config
        self.emb = nn.Embedding(config.vocab_size, config.emb_dim)
        rnn = nn.GRU if config.cell == "gru" else nn.LSTM
        self.rnn = rnn(config.emb_dim, config.hidden_dim)
        self.drop = nn.Dropout(config.dropout)
        self.out = nn.Linear(config.hidden_dim, config.vocab_size)

    def nll(self, inputs, targets, state):
        x = self.drop(self.emb(inputs))  # (T, B) -> (T, B, E)
        h, state = self.rnn(x, state)  # (T, B, H); GRU (1, B, H), LSTM a pair of them
        logits = self.out(self.drop(h))  # (T, B, V)
        nll = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), reduction="none")  # (T*B,)
        return nll.view_as(targets), state


@dataclass
class BigramConfig:
    vocab_size: int = V


class Bigram(nn.Module):
    def __init__(self, config: BigramConfig = BigramConfig()):
        super().__init__()
        self.config = config
        self.logits = nn.Embedding(config.vocab_size, config.vocab_size)
        self.bias = nn.Parameter(torch.zeros(config.vocab_size))  # a 1-D parameter: no weight decay

    def nll(self, inputs, targets, state):
        logits = self.logits(inputs) + self.bias  # (T, B) -> (T, B, V)
        nll = F.cross_entropy(logits.view(-1, V), targets.flatten(), reduction="none")  # (T*B,)
        return nll.view_as(targets), None


def make(kind: str, seed: int = 0, **kw) -> nn.Module:
    torch.manual_seed(seed)
    if kind == "bigram":
        return Bigram()
    return TinyRNN(RNNConfig(cell=kind, **kw))


SOURCE = MarkovSource.random(V, concentration=0.3, seed=0)
TRAIN = torch.from_numpy(SOURCE.sample(3000, seed=1))
VALID = torch.from_numpy(SOURCE.sample(600, seed=2))
FAST = TrainConfig(lr=0.03, batch_size=8, bptt=10, eval_batch_size=4, progress=False)


def weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def assert_same_weights(a: nn.Module, b: nn.Module) -> None:
    sa, sb = a.state_dict(), b.state_dict()
    assert sa.keys() == sb.keys()
    for k in sa:
        assert torch.equal(sa[k], sb[k]), k
