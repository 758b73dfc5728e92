"""``transformers.GPT2LMHeadModel`` <-> :class:`~lmcourse.gpt.model.GPT`: the only place GPT-2's
checkpoint names (``wte``, ``c_attn``, ...) appear.

Follows the bridge pattern of :mod:`lmcourse._hf`: :func:`config_from_hf` and :func:`config_to_hf`
translate configs, :func:`weight_table` maps our names to GPT-2's (whose ``Conv1D`` stores each
matrix ``(in, out)``, the transpose of ``nn.Linear``'s ``(out, in)``), :func:`from_hf_state_dict`
checks everything and then loads, and :func:`to_hf_state_dict` writes GPT-2's names back.

Left out: downloading pretrained weights (no network: convert a state dict you have).
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from typing import Any

import torch

from lmcourse._hf import Weight, export_weights, load_weights, per_layer, read_hf_config
from lmcourse.gpt.config import GPTConfig
from lmcourse.gpt.model import GPT

__all__ = ["config_from_hf", "config_to_hf", "weight_table", "from_hf_state_dict", "to_hf_state_dict"]

_PREFIX = "transformer."
_TIED = "lm_head.weight"  # the output layer: the same matrix as transformer.wte.weight
# Buffers older GPT-2 files carry (the causal mask and its fill value): not weights.
_IGNORED = re.compile(r"^h\.\d+\.attn\.(masked_)?bias$")


def _rows(ours: str, hf: str, transpose: bool = False) -> list[Weight]:
    """The weight and the bias of one layer, under ``transformer.``."""
    return [Weight(f"{ours}.weight", (f"{_PREFIX}{hf}.weight",), transpose),
            Weight(f"{ours}.bias", (f"{_PREFIX}{hf}.bias",))]


_TOP = [Weight("embedding.weight", (f"{_PREFIX}wte.weight",), dims=("vocab_size", "emb_dim")),
        Weight("positions.embedding.weight", (f"{_PREFIX}wpe.weight",), dims=("context_length", "emb_dim")),
        *_rows("ln_final", "ln_f")]
_BLOCK = [*_rows("blocks.{i}.ln_attn", "h.{i}.ln_1"),
          *_rows("blocks.{i}.attn.in_proj", "h.{i}.attn.c_attn", transpose=True),
          *_rows("blocks.{i}.attn.out_proj", "h.{i}.attn.c_proj", transpose=True),
          *_rows("blocks.{i}.ln_mlp", "h.{i}.ln_2"),
          *_rows("blocks.{i}.mlp.up", "h.{i}.mlp.c_fc", transpose=True),
          *_rows("blocks.{i}.mlp.down", "h.{i}.mlp.c_proj", transpose=True)]


def weight_table(config: GPTConfig) -> list[Weight]:
    """Every tensor of a GPT (the tied output layer once, as the embedding) and its GPT-2 name."""
    return _TOP + per_layer(_BLOCK, config.num_layers)


def to_hf_state_dict(model: GPT) -> dict[str, torch.Tensor]:
    """Our weights under ``transformers.GPT2LMHeadModel``'s names, for its ``load_state_dict``.

    >>> sd = to_hf_state_dict(GPT(GPTConfig.tiny(vocab_size=10, emb_dim=8, num_heads=2)))
    >>> tuple(sd["transformer.h.0.attn.c_attn.weight"].shape)  # Conv1D: (in, out) = (C, 3C)
    (8, 24)
    """
    if not isinstance(model, GPT):
        raise TypeError(f"expected an lmcourse.gpt.GPT, got {type(model).__name__}")
    out = export_weights(model, weight_table(model.config))
    out[_TIED] = out[_PREFIX + "wte.weight"]  # tied: one tensor under both names
    return out


def from_hf_state_dict(state_dict: Mapping[str, torch.Tensor], model: GPT | GPTConfig) -> GPT:
    """Load a ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict into a :class:`GPT`; returns it.

    Give a GPT to fill, or a :class:`GPTConfig` to build one (see :func:`config_from_hf`). Names
    with or without the ``transformer.`` prefix are accepted; the old causal-mask buffers
    (``h.N.attn.bias``) are skipped; ``lm_head.weight``, if present, must equal ``wte.weight``
    (tied). Everything is checked before anything is copied: missing, unexpected and misshapen
    tensors are listed together in one error.
    """
    model = GPT(model) if isinstance(model, GPTConfig) else model
    if not isinstance(model, GPT):
        raise TypeError(f"give a GPT or a GPTConfig, got {type(model).__name__}")
    if not isinstance(state_dict, Mapping) or not all(isinstance(v, torch.Tensor) for v in state_dict.values()):
        raise TypeError("state_dict must be a dict of name -> tensor, e.g. GPT2LMHeadModel(...).state_dict()")
    given = {}
    for key, value in state_dict.items():
        bare = key.removeprefix(_PREFIX)
        if not _IGNORED.match(bare):
            given[key if key == _TIED else _PREFIX + bare] = value
    tied, wte = given.pop(_TIED, None), given.get(_PREFIX + "wte.weight")
    problems = []
    if tied is not None and wte is not None and not torch.equal(tied, wte):
        problems.append(f"{_TIED} differs from {_PREFIX}wte.weight, but GPT-2 (and this GPT) uses one "
                        f"matrix for both; this checkpoint has an untied output layer")
    c = model.config
    advice = [f"build the GPTConfig from the checkpoint's own config with config_from_hf (this GPT has "
              f"num_layers={c.num_layers})"]
    load_weights(model, weight_table(c), given, sizes=dataclasses.asdict(c), default_dim="emb_dim",
                 problems=problems, advise=lambda missing, unexpected: advice if missing or unexpected else [])
    return model


def config_from_hf(hf_config: Any) -> GPTConfig:
    """The :class:`GPTConfig` of a ``transformers.GPT2Config`` (or its ``config.json``: a dict, the
    file or its folder). Dropout is its ``resid_pdrop``."""
    c = read_hf_config(hf_config, "GPT-2")
    if c.get("activation_function", "gelu_new") not in ("gelu_new", "gelu_pytorch_tanh"):
        raise ValueError(f"this GPT uses GPT-2's tanh GELU; the config asks for {c['activation_function']!r}")
    if c.get("n_inner") not in (None, 4 * c["n_embd"]):
        raise ValueError(f"this GPT's MLP is 4 x n_embd = {4 * c['n_embd']} wide; the config has "
                         f"n_inner={c['n_inner']}")
    if c.get("scale_attn_by_inverse_layer_idx", False) or not c.get("scale_attn_weights", True):
        raise ValueError("this GPT scales attention scores by 1/sqrt(head size) only, as GPT-2 does")
    return GPTConfig(vocab_size=c["vocab_size"], context_length=c["n_positions"], emb_dim=c["n_embd"],
                     num_heads=c["n_head"], num_layers=c["n_layer"], dropout=c.get("resid_pdrop", 0.1),
                     layer_norm_eps=c.get("layer_norm_epsilon", 1e-5))


def config_to_hf(config: GPTConfig) -> Any:
    """A ``transformers.GPT2Config`` of the same model. Attention dropout is 0 (this GPT has none);
    no special token ids are set (they belong to the tokenizer)."""
    from transformers import GPT2Config

    return GPT2Config(vocab_size=config.vocab_size, n_positions=config.context_length, n_embd=config.emb_dim,
                      n_layer=config.num_layers, n_head=config.num_heads, resid_pdrop=config.dropout,
                      embd_pdrop=config.dropout, attn_pdrop=0.0, layer_norm_epsilon=config.layer_norm_eps,
                      activation_function="gelu_new", bos_token_id=None, eos_token_id=None)
