"""BERT, the Transformer encoder of Devlin et al. (2019): Chapter 5 (BERT) explains it.

Composed of small named parts, as :mod:`lmcourse.transformer` is, and reusing its pieces: the
same :class:`~lmcourse.attention.MultiHeadAttention` (with ``causal=False``: every token sees
every other) and the same :class:`~lmcourse.transformer.MLP`. What differs from the GPT-style
model is where LayerNorm sits. BERT keeps the original *post*-LayerNorm block of Vaswani et al.
(2017):

    x = LayerNorm(x + Dropout(MultiHeadAttention(x)))     (bidirectional self-attention)
    x = LayerNorm(x + Dropout(MLP(x)))                    (Linear -> GELU -> Linear)

The input is the sum of three learned embeddings (token, position, segment) followed by a
LayerNorm. On top of the encoder sit the heads: the pooler (``tanh(W h_[CLS] + b)``) and a
classifier for sentence tasks, or the masked-language-model head that predicts hidden tokens.

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim`` (``d_model``), ``H`` heads,
``V`` vocabulary, ``K`` labels.

Left out: dropout on the attention weights (only training differs), the next-sentence-prediction
head, relative position embeddings, a decoder mode (cross-attention, KV cache), token-level heads
(tagging, question answering), regression (``num_labels=1``), and the masking recipe of MLM
pre-training (15% of the tokens, 80/10/10).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._torch import eval_mode, model_device
from lmcourse.attention import MultiHeadAttention, from_scratch_attention
from lmcourse.bert.config import BertConfig
from lmcourse.positions import LearnedPositions
from lmcourse.token_ids import check_batch_ids
from lmcourse.transformer import MLP

__all__ = ["IGNORE_INDEX", "BertEmbeddings", "BertLayer", "BertModel", "BertOutput", "MaskedLMHead",
           "BertForMaskedLM", "BertForSequenceClassification", "BertLike", "mean_pool"]

IGNORE_INDEX = -100  # a label that the masked-LM loss skips (PyTorch's and transformers' convention)


class BertEmbeddings(nn.Module):
    """Token + learned position + segment embeddings, then LayerNorm and dropout: ``(B, T) -> (B, T, C)``."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.token = nn.Embedding(c.vocab_size, c.emb_dim, padding_idx=c.pad_id)
        self.position = LearnedPositions(c.context_length, c.emb_dim)
        self.segment = nn.Embedding(c.num_segments, c.emb_dim)
        self.norm = nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, input_ids: torch.Tensor, token_type_ids: torch.Tensor) -> torch.Tensor:
        x = self.token(input_ids) + self.position(input_ids.shape[1])  # (B, T, C) + (T, C)
        x = x + self.segment(token_type_ids)  # (B, T, C) + (B, T, C)
        return self.drop(self.norm(x))


class BertLayer(nn.Module):
    """One post-LayerNorm encoder layer: bidirectional self-attention and an MLP, each in a residual."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.attn = MultiHeadAttention(c.emb_dim, c.num_heads, causal=False, fused=c.fused)
        self.ln_attn = nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps)
        self.mlp = MLP(c.emb_dim, c.mlp_dim)
        self.ln_mlp = nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps)
        self.drop = nn.Dropout(c.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False
                ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """``(B, T, C) -> (B, T, C)``; `mask` ``(B, 1, 1, T)`` is True on real tokens. With
        `return_weights`, also the attention weights ``(B, H, T, T)`` (needs ``fused=False``)."""
        attended = self.attn(x, mask=mask, return_weights=return_weights)
        attended, weights = attended if return_weights else (attended, None)
        x = self.ln_attn(x + self.drop(attended))
        x = self.ln_mlp(x + self.drop(self.mlp(x)))
        return (x, weights) if return_weights else x


def _init_bert_weights(module: nn.Module) -> None:
    """BERT's initialisation: N(0, 0.02) for matrices and embeddings, zero biases, a zero [PAD] row."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, std=0.02)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)
        if getattr(module, "padding_idx", None) is not None:
            with torch.no_grad():
                module.weight[module.padding_idx].zero_()


def _shape(x: Any) -> str:
    """A tensor's shape, or the type of something that is not a tensor (for error messages)."""
    return str(tuple(x.shape)) if isinstance(x, torch.Tensor) else type(x).__name__


def _padding_mask(attention_mask: Any, shape: tuple[int, int]) -> torch.Tensor | None:
    """A 0/1 (or bool) ``attention_mask`` ``(B, T)`` -> the bool mask ``(B, 1, 1, T)`` that attention
    broadcasts over heads and queries; None when nothing is padded (the fused kernel is fastest then)."""
    if attention_mask is None:
        return None
    if not isinstance(attention_mask, torch.Tensor) or attention_mask.is_floating_point() \
            or attention_mask.is_complex():
        got = attention_mask.dtype if isinstance(attention_mask, torch.Tensor) else type(attention_mask).__name__
        raise TypeError(f"attention_mask must hold 0/1 ints or bools (1 = real token, 0 = padding), "
                        f"got {got}; convert a 0/1 float mask with .long()")
    if tuple(attention_mask.shape) != shape:
        raise ValueError(f"attention_mask must have the shape of input_ids {shape}, got "
                         f"{tuple(attention_mask.shape)}")
    if attention_mask.dtype != torch.bool:
        if bool(((attention_mask != 0) & (attention_mask != 1)).any()):
            raise ValueError("attention_mask must hold only 0 (padding) and 1 (real token); an additive "
                             "mask (0 / -inf) is not what BERT takes")
        attention_mask = attention_mask.bool()
    if not bool(attention_mask.any(dim=1).all()):
        raise ValueError("a row of attention_mask is all padding: every sequence needs at least one real "
                         "token (the tokenizer always gives [CLS] and [SEP])")
    if bool(attention_mask.all()):
        return None
    return attention_mask[:, None, None, :]  # (B, T) -> (B, 1, 1, T)


class BertModel(nn.Module):
    """The BERT encoder: token ids ``(B, T)`` -> one vector per token ``(B, T, C)``.

    >>> model = BertModel(BertConfig.tiny(vocab_size=10))
    >>> ids = torch.tensor([[2, 5, 7, 3], [2, 6, 3, 0]])  # the second sentence is padded
    >>> hidden = model(ids, attention_mask=torch.tensor([[1, 1, 1, 1], [1, 1, 1, 0]]))
    >>> hidden.shape, model.pool(hidden).shape
    (torch.Size([2, 4, 32]), torch.Size([2, 32]))

    `with_pooler=False` leaves the pooler out, as transformers' ``BertForMaskedLM`` does.
    """

    def __init__(self, config: BertConfig, with_pooler: bool = True) -> None:
        super().__init__()
        if not isinstance(config, BertConfig):
            raise TypeError(f"BertModel needs a BertConfig, got {type(config).__name__}")
        self.config = c = config
        self.embeddings = BertEmbeddings(c)
        self.layers = nn.ModuleList(BertLayer(c) for _ in range(c.num_layers))
        self.pooler = nn.Linear(c.emb_dim, c.emb_dim) if with_pooler else None
        self.apply(_init_bert_weights)

    def _check_inputs(self, input_ids: Any, attention_mask: Any, token_type_ids: Any
                      ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Check the inputs; return the mask ``(B, 1, 1, T)`` (None if nothing is padded) and the segments."""
        c = self.config
        check_batch_ids("input_ids", input_ids, c.vocab_size)
        B, T = input_ids.shape
        if T > c.context_length:
            raise ValueError(f"a sequence of {T} tokens is longer than the model's context_length="
                             f"{c.context_length} (it has one learned position per token); truncate the "
                             f"input, e.g. tokenizer(texts, truncation=True, max_length={c.context_length})")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        check_batch_ids("token_type_ids", token_type_ids, shape=(B, T))
        if int(token_type_ids.min()) < 0 or int(token_type_ids.max()) >= c.num_segments:
            raise ValueError(f"token_type_ids must be segment numbers in [0, num_segments={c.num_segments}), "
                             f"got values {sorted(set(token_type_ids.unique().tolist()))[:5]}")
        return _padding_mask(attention_mask, (B, T)), token_type_ids

    def hidden_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                      token_type_ids: torch.Tensor | None = None, return_weights: bool = False
                      ) -> list[torch.Tensor] | tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Every layer's output: the embeddings, then each layer's ``(B, T, C)`` (``num_layers + 1``
        tensors). With `return_weights`, also each layer's attention weights ``(B, H, T, T)``,
        computed with the from-scratch attention whatever ``fused`` says."""
        mask, token_type_ids = self._check_inputs(input_ids, attention_mask, token_type_ids)
        x = self.embeddings(input_ids, token_type_ids)  # (B, T) -> (B, T, C)
        states, weights = [x], []
        with from_scratch_attention(self) if return_weights else contextlib.nullcontext():
            for layer in self.layers:
                if return_weights:
                    x, w = layer(x, mask, return_weights=True)
                    weights.append(w)
                else:
                    x = layer(x, mask)
                states.append(x)
        return (states, weights) if return_weights else states

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """The last layer's hidden states ``(B, T, C)``.

        `attention_mask` ``(B, T)`` is 1 (or True) on real tokens and 0 on padding; padded keys are
        never attended to, so padding does not change the real positions. `token_type_ids`
        ``(B, T)`` is the segment of each token (0: sentence A, 1: sentence B); all 0 by default.
        """
        return self.hidden_states(input_ids, attention_mask, token_type_ids)[-1]

    def pool(self, hidden: torch.Tensor) -> torch.Tensor:
        """The pooler: ``tanh(W h_[CLS] + b)`` on the first token's vector: ``(B, T, C) -> (B, C)``.
        Pre-training fed it to the next-sentence classifier; fine-tuning feeds it to a new one."""
        if self.pooler is None:
            raise ValueError("this encoder was built without a pooler (with_pooler=False, as in "
                             "BertForMaskedLM); use mean_pool(hidden, attention_mask) or the [CLS] vector")
        C = self.config.emb_dim
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or hidden.shape[-1] != C:
            raise ValueError(f"pool takes the hidden states (B, T, C={C}) that BertModel returns, "
                             f"got {_shape(hidden)}")
        return torch.tanh(self.pooler(hidden[:, 0]))  # (B, C) @ (C, C) -> (B, C)

    def attention_maps(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                       token_type_ids: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each layer's attention weights ``(B, H, T, T)``, in eval mode (the mode is restored).
        Row ``i`` of head ``h`` is the distribution over the positions that token ``i`` reads."""
        with eval_mode(self):
            _, weights = self.hidden_states(input_ids, attention_mask, token_type_ids, return_weights=True)
        return weights

    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"{dataclasses.asdict(self.config)}"


def mean_pool(hidden: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The mean of each sequence's vectors over its real tokens: ``(B, T, C), (B, T) -> (B, C)``.

    >>> hidden = torch.tensor([[[1.0], [3.0], [100.0]]])  # the third token is padding
    >>> mean_pool(hidden, torch.tensor([[1, 1, 0]])).tolist()
    [[2.0]]
    """
    if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3:
        raise ValueError(f"hidden must be (B, T, C), got {_shape(hidden)}")
    if not isinstance(attention_mask, torch.Tensor) or tuple(attention_mask.shape) != tuple(hidden.shape[:2]):
        raise ValueError(f"attention_mask must be (B, T) = {tuple(hidden.shape[:2])} to match hidden, got "
                         f"{_shape(attention_mask)}")
    weights = attention_mask.to(hidden.dtype)[:, :, None]  # (B, T) -> (B, T, 1)
    total = (hidden * weights).sum(dim=1)  # (B, T, C) * (B, T, 1) -> (B, C)
    return total / weights.sum(dim=1).clamp(min=1e-9)  # (B, C) / (B, 1)


# ---------------------------------------------------------------------------------------------
# Heads

@dataclass
class BertOutput:
    """What a BERT head returns: the loss (None without labels) and the logits. Unpacks as a pair."""

    loss: torch.Tensor | None
    logits: torch.Tensor

    def __iter__(self) -> Iterator[torch.Tensor | None]:
        return iter((self.loss, self.logits))


class MaskedLMHead(nn.Module):
    """Predicts each token from its vector: ``Linear -> GELU -> LayerNorm -> decoder (C -> V)``.
    The decoder's matrix is the word-embedding matrix (tied by :class:`BertForMaskedLM`); its bias
    is its own."""

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        c = config
        self.dense = nn.Linear(c.emb_dim, c.emb_dim)
        self.act = nn.GELU()
        self.norm = nn.LayerNorm(c.emb_dim, eps=c.layer_norm_eps)
        self.decoder = nn.Linear(c.emb_dim, c.vocab_size)

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        x = self.norm(self.act(self.dense(hidden)))  # (B, T, C) -> (B, T, C)
        return self.decoder(x)  # (B, T, C) @ (C, V) -> (B, T, V)


class BertForMaskedLM(nn.Module):
    """An encoder with the masked-language-model head: logits over the vocabulary at every position.

    >>> model = BertForMaskedLM(BertConfig.tiny(vocab_size=10))
    >>> ids = torch.tensor([[2, 4, 1, 3]])  # say 1 is [MASK]
    >>> labels = torch.tensor([[-100, -100, 6, -100]])  # only the masked position is scored
    >>> loss, logits = model(ids, labels=labels)
    >>> logits.shape, loss.shape
    (torch.Size([1, 4, 10]), torch.Size([]))
    """

    def __init__(self, config: BertConfig) -> None:
        super().__init__()
        self.bert = BertModel(config, with_pooler=False)
        self.head = MaskedLMHead(config)
        self.apply(_init_bert_weights)
        self.head.decoder.weight = self.bert.embeddings.token.weight  # one Parameter, (V, C)

    @property
    def config(self) -> BertConfig:
        return self.bert.config

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> BertOutput:
        """Logits ``(B, T, V)``; with `labels` ``(B, T)``, the mean cross-entropy over the positions
        whose label is not -100 (the masked ones)."""
        logits = self.head(self.bert(input_ids, attention_mask, token_type_ids))  # (B, T, V)
        if labels is None:
            return BertOutput(None, logits)
        V = self.config.vocab_size
        check_batch_ids("labels", labels, shape=tuple(input_ids.shape))
        scored = labels[labels != IGNORE_INDEX]
        if scored.numel() and (int(scored.min()) < 0 or int(scored.max()) >= V):
            raise ValueError(f"labels must be token ids in [0, {V}) or {IGNORE_INDEX} (not scored), got min "
                             f"{int(scored.min())}, max {int(scored.max())}")
        loss = F.cross_entropy(logits.reshape(-1, V), labels.reshape(-1), ignore_index=IGNORE_INDEX)  # (B*T, V)
        return BertOutput(loss, logits)


class BertForSequenceClassification(nn.Module):
    """An encoder, its pooler, dropout and a linear classifier: one label per sequence.

    >>> model = BertForSequenceClassification(BertConfig.tiny(vocab_size=10), num_labels=3)
    >>> loss, logits = model(torch.tensor([[2, 5, 3]]), labels=torch.tensor([1]))
    >>> logits.shape
    torch.Size([1, 3])
    """

    def __init__(self, config: BertConfig, num_labels: int = 2) -> None:
        super().__init__()
        if isinstance(num_labels, bool) or not isinstance(num_labels, int) or num_labels < 2:
            raise ValueError(f"num_labels must be an int >= 2 (the classes to choose from), got {num_labels!r}")
        self.num_labels = num_labels
        self.bert = BertModel(config)
        self.drop = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.emb_dim, num_labels)
        self.apply(_init_bert_weights)

    @property
    def config(self) -> BertConfig:
        return self.bert.config

    @classmethod
    def from_pretrained_encoder(cls, bert_model: BertModel, num_labels: int = 2
                                ) -> BertForSequenceClassification:
        """A fresh classifier (random, from the torch seed) on a copy of `bert_model`: fine-tuning
        it leaves `bert_model` as it was. The new model is in `bert_model`'s train/eval mode.

        An encoder pre-trained by masked LM alone has no pooler (``with_pooler=False``, as in
        :class:`BertForMaskedLM`); it gets a fresh one, trained during fine-tuning like the head."""
        if not isinstance(bert_model, BertModel):
            raise TypeError(f"from_pretrained_encoder needs a BertModel (e.g. from load_minilm()), "
                            f"got {type(bert_model).__name__}")
        model = cls(bert_model.config, num_labels)
        fresh_pooler = model.bert.pooler
        model.bert = copy.deepcopy(bert_model)
        if model.bert.pooler is None:
            model.bert.pooler = fresh_pooler
        return model.to(model_device(bert_model)).train(bert_model.training)  # the new head where the encoder is

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> BertOutput:
        """Logits ``(B, K)``; with `labels` ``(B,)`` (class numbers), also the mean cross-entropy."""
        pooled = self.bert.pool(self.bert(input_ids, attention_mask, token_type_ids))  # (B, C)
        logits = self.classifier(self.drop(pooled))  # (B, C) @ (C, K) -> (B, K)
        if labels is None:
            return BertOutput(None, logits)
        check_batch_ids("labels", labels, shape=(input_ids.shape[0],))
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_labels:
            raise ValueError(f"labels must be class numbers in [0, num_labels={self.num_labels}), got min "
                             f"{int(labels.min())}, max {int(labels.max())}")
        return BertOutput(F.cross_entropy(logits, labels), logits)


BertLike = BertModel | BertForMaskedLM | BertForSequenceClassification  # what a checkpoint loads into
