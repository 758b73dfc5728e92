"""Hugging Face BERT checkpoints <-> :mod:`lmcourse.bert`: the only place their names appear.

Follows the bridge pattern of :mod:`lmcourse._hf`: :func:`config_from_hf` reads a
``config.json``, :func:`weight_table` is the map between our names (``layers.3.attn.in_proj``)
and the checkpoint's (``encoder.layer.3.attention.self.query``, ``.key``, ``.value``, stacked in
that order), :func:`from_hf_state_dict` checks everything and then loads, and
:func:`to_hf_state_dict` writes the checkpoint's names back. :func:`load_pretrained` does all of
it for a folder (``config.json`` + ``model.safetensors``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

import torch

from lmcourse._hf import Weight, export_weights, load_weights, per_layer, read_hf_config, read_safetensors
from lmcourse.bert.config import BertConfig
from lmcourse.bert.model import BertForMaskedLM, BertForSequenceClassification, BertLike, BertModel

__all__ = ["config_from_hf", "weight_table", "from_hf_state_dict", "to_hf_state_dict", "load_pretrained"]

PathLike = str | os.PathLike


def config_from_hf(hf_config: Any, **overrides: Any) -> BertConfig:
    """The config of a Hugging Face BERT checkpoint: a ``transformers.BertConfig``, a
    ``config.json`` dict, its path, or the folder holding it. `overrides` change any field (e.g.
    ``fused=False``, ``dropout=0.0``).

    Settings this model does not implement are refused rather than silently ignored; the
    dropout on attention weights (``attention_probs_dropout_prob``) and a separate
    ``classifier_dropout`` are ignored (they change only training).

    >>> config_from_hf({"model_type": "bert", "vocab_size": 100, "hidden_size": 32,
    ...     "num_attention_heads": 4, "num_hidden_layers": 2, "intermediate_size": 64}).mlp_dim
    64
    """
    hf = read_hf_config(hf_config, "BERT")
    if hf.get("model_type", "bert") != "bert":
        raise ValueError(f"model_type is {hf['model_type']!r}, not 'bert': its weights and layers differ "
                         f"from BERT's (e.g. RoBERTa offsets positions, DistilBERT renames everything)")
    refused = {"hidden_act": ("gelu", "BERT's exact (erf) GELU; 'gelu_new' is the tanh approximation"),
               "position_embedding_type": ("absolute", "learned absolute positions; relative ones are left out"),
               "is_decoder": (False, "an encoder; a decoder needs a causal mask and a cache"),
               "add_cross_attention": (False, "self-attention only")}
    for key, (supported, why) in refused.items():
        if key in hf and hf[key] != supported:
            raise ValueError(f"{key}={hf[key]!r} is not supported: this BERT has {key}={supported!r} ({why})")
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
    return BertConfig(**{**fields, **overrides})


# ---------------------------------------------------------------------------------------------
# The names: ours <- the checkpoint's (without the "bert." that a model with a head puts first)

def _rows(ours: str, hf: str, *dims: str) -> list[Weight]:
    """The weight and the bias of one layer (`dims` for the weight; the bias has the first)."""
    return [Weight(f"{ours}.weight", (f"{hf}.weight",), dims=dims),
            Weight(f"{ours}.bias", (f"{hf}.bias",), dims=dims[:1])]


_QKV = ("query", "key", "value")  # stacked in this order in our in_proj: [W_Q; W_K; W_V]
_EMBEDDINGS = [Weight("embeddings.token.weight", ("embeddings.word_embeddings.weight",),
                      dims=("vocab_size", "emb_dim")),
               Weight("embeddings.position.embedding.weight", ("embeddings.position_embeddings.weight",),
                      dims=("context_length", "emb_dim")),
               Weight("embeddings.segment.weight", ("embeddings.token_type_embeddings.weight",),
                      dims=("num_segments", "emb_dim")),
               *_rows("embeddings.norm", "embeddings.LayerNorm")]
_LAYER = [*(Weight(f"layers.{{i}}.attn.in_proj.{kind}", tuple(f"encoder.layer.{{i}}.attention.self.{p}.{kind}"
                                                             for p in _QKV)) for kind in ("weight", "bias")),
          *_rows("layers.{i}.attn.out_proj", "encoder.layer.{i}.attention.output.dense"),
          *_rows("layers.{i}.ln_attn", "encoder.layer.{i}.attention.output.LayerNorm"),
          *_rows("layers.{i}.mlp.up", "encoder.layer.{i}.intermediate.dense", "mlp_dim", "emb_dim"),
          *_rows("layers.{i}.mlp.down", "encoder.layer.{i}.output.dense", "emb_dim", "mlp_dim"),
          *_rows("layers.{i}.ln_mlp", "encoder.layer.{i}.output.LayerNorm")]
_POOLER = _rows("pooler", "pooler.dense")
_MLM_HEAD = [*_rows("head.dense", "cls.predictions.transform.dense"),
             *_rows("head.norm", "cls.predictions.transform.LayerNorm"),
             Weight("head.decoder.bias", ("cls.predictions.bias",), dims=("vocab_size",))]  # its weight: tied
_CLASSIFIER = _rows("classifier", "classifier", "num_labels", "emb_dim")
_ENCODER_PREFIXES = ("embeddings.", "encoder.", "pooler.")  # under "bert." in a model with a head


def _check_model(model: Any) -> None:
    if not isinstance(model, (BertModel, BertForMaskedLM, BertForSequenceClassification)):
        raise TypeError(f"expected a BertModel, BertForMaskedLM or BertForSequenceClassification (or a "
                        f"BertConfig), got {type(model).__name__}")


def weight_table(model: BertLike) -> list[Weight]:
    """Every tensor of `model` (a tied one once) and the checkpoint tensors it is made of."""
    _check_model(model)
    encoder = model if isinstance(model, BertModel) else model.bert
    rows = _EMBEDDINGS + per_layer(_LAYER, encoder.config.num_layers) + (_POOLER if encoder.pooler is not None else [])
    if encoder is not model:
        rows = [dataclasses.replace(w, ours="bert." + w.ours) for w in rows]
    if isinstance(model, BertForMaskedLM):
        rows += _MLM_HEAD
    elif isinstance(model, BertForSequenceClassification):
        rows += _CLASSIFIER
    return rows


# ---------------------------------------------------------------------------------------------
# Loading and saving

def _ignored(name: str, model: BertLike) -> bool:
    """Checkpoint tensors that may be left unused without losing anything."""
    encoder = model if isinstance(model, BertModel) else model.bert
    return (name == "embeddings.position_ids"  # a buffer 0..L-1, not a weight
            or name.startswith("cls.seq_relationship.")  # the next-sentence head of pre-training
            or name in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")  # tied copies
            or (name.startswith("pooler.") and encoder.pooler is None)
            or (isinstance(model, BertModel) and name.startswith(("cls.", "classifier."))))  # a head's


def _advice(missing: list[str], unexpected: list[str], num_layers: int) -> list[str]:
    advice = []
    if any(n.startswith(("classifier.", "cls.")) for n in missing):
        advice.append("a bare encoder's checkpoint? load it into a BertModel, then put a fresh head on it, e.g. "
                      "BertForSequenceClassification.from_pretrained_encoder(encoder, num_labels)")
    elif any(n.startswith("pooler.") for n in missing):
        advice.append("a checkpoint without a pooler: build BertModel(config, with_pooler=False)")
    if any(n.startswith("encoder.layer.") for n in missing + unexpected):
        advice.append(f"layers missing or left over: the checkpoint probably has another num_layers than "
                      f"{num_layers}")
    return advice


def from_hf_state_dict(state_dict: Mapping[str, torch.Tensor] | PathLike,
                       model: BertLike | BertConfig) -> BertLike:
    """Copy a Hugging Face BERT checkpoint into `model` (in place; returns it), or into a new
    :class:`BertModel` when given a :class:`BertConfig`.

    `state_dict` is a state dict, a safetensors file, or the folder holding ``model.safetensors``.
    Names may carry the ``bert.`` prefix or not. Query, key and value are stacked into each
    layer's ``in_proj``. A bare :class:`BertModel` takes the encoder out of a checkpoint with a head
    and leaves the head. Anything that does not fit (shapes, missing or unexpected tensors) is
    reported in one ValueError before a single weight changes. The number of heads cannot be
    seen in the shapes: build the config from the checkpoint's ``config.json`` (:func:`config_from_hf`).
    """
    model = BertModel(model) if isinstance(model, BertConfig) else model
    table = weight_table(model)
    state = {name.removeprefix("bert."): t for name, t in read_safetensors(state_dict).items()}
    if "cls.predictions.bias" not in state and "cls.predictions.decoder.bias" in state:
        state["cls.predictions.bias"] = state["cls.predictions.decoder.bias"]
    problems = []
    decoder, words = state.get("cls.predictions.decoder.weight"), state.get("embeddings.word_embeddings.weight")
    if isinstance(model, BertForMaskedLM) and decoder is not None and words is not None \
            and not torch.equal(decoder, words):
        problems.append("the checkpoint's output matrix cls.predictions.decoder.weight differs from its word "
                        "embeddings; BertForMaskedLM ties the two, so it cannot hold this checkpoint")
    sizes = {**dataclasses.asdict(model.config), "num_labels": getattr(model, "num_labels", 0)}
    load_weights(model, table, state, sizes=sizes, default_dim="emb_dim", problems=problems,
                 ignore=lambda name: _ignored(name, model),
                 advise=lambda missing, unexpected: _advice(missing, unexpected, model.config.num_layers))
    return model


def to_hf_state_dict(model: BertLike) -> dict[str, torch.Tensor]:
    """`model`'s weights under Hugging Face's names (``bert.`` before the encoder's in a model with a
    head; each ``in_proj`` split into query, key and value; a tied matrix once), as new tensors:
    ready for ``safetensors.torch.save_file`` or transformers' ``load_state_dict``."""
    prefix = "" if isinstance(model, BertModel) else "bert."
    out = export_weights(model, weight_table(model))
    return {(prefix if name.startswith(_ENCODER_PREFIXES) else "") + name: t for name, t in out.items()}


def load_pretrained(directory: PathLike, **overrides: Any) -> BertModel:
    """An encoder from a Hugging Face folder (``config.json`` + ``model.safetensors``), in eval
    mode; `overrides` change config fields, e.g. ``fused=False``."""
    model = BertModel(config_from_hf(directory, **overrides))
    from_hf_state_dict(directory, model)
    return model.eval()
