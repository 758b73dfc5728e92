"""``transformers.LlamaForCausalLM`` <-> :class:`~lmcourse.llama.model.Llama`: the only place the
Hugging Face Llama names (``q_proj``, ``input_layernorm``, ...) appear. Chapter 7 uses it to build
``transformers``' twin of the book's model from the book's own weights, the reference its logits
are checked against.

Follows the bridge pattern of :mod:`lmcourse._hf`. One difference from GPT-2: our attention packs
``W_Q`` ``(H D, C)``, ``W_K`` and ``W_V`` ``(Hkv D, C)`` into one ``in_proj``, and with grouped-query
attention the three have different heights, so the table names a packed ``qkv_proj`` that
:func:`to_hf_state_dict` splits and :func:`from_hf_state_dict` joins. Both layouts rotate "half"
pairs, so no row is permuted here (unlike the GGUF file, :mod:`lmcourse.llama.gguf`).

Left out: RoPE scaling, attention or MLP biases, and loading from the hub (no network).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from lmcourse._hf import Weight, export_weights, load_weights, per_layer
from lmcourse.llama.config import LlamaConfig
from lmcourse.llama.model import Llama

__all__ = ["config_to_hf", "weight_table", "to_hf_state_dict", "from_hf_state_dict", "to_transformers"]

_QKV = "model.layers.{i}.self_attn.qkv_proj.weight"  # our packed in_proj, split into q/k/v_proj
_BLOCK = (
    Weight("blocks.{i}.ln_attn.weight", ("model.layers.{i}.input_layernorm.weight",), dims=("emb_dim",)),
    Weight("blocks.{i}.attn.in_proj.weight", (_QKV,), dims=("emb_dim", "emb_dim")),
    Weight("blocks.{i}.attn.out_proj.weight", ("model.layers.{i}.self_attn.o_proj.weight",),
           dims=("emb_dim", "emb_dim")),
    Weight("blocks.{i}.ln_mlp.weight", ("model.layers.{i}.post_attention_layernorm.weight",), dims=("emb_dim",)),
    Weight("blocks.{i}.mlp.gate.weight", ("model.layers.{i}.mlp.gate_proj.weight",), dims=("hidden_dim", "emb_dim")),
    Weight("blocks.{i}.mlp.up.weight", ("model.layers.{i}.mlp.up_proj.weight",), dims=("hidden_dim", "emb_dim")),
    Weight("blocks.{i}.mlp.down.weight", ("model.layers.{i}.mlp.down_proj.weight",), dims=("emb_dim", "hidden_dim")),
)


def weight_table(config: LlamaConfig) -> list[Weight]:
    """Our tensor names and ``LlamaForCausalLM``'s (``lm_head.weight`` only if untied)."""
    table = [Weight("embedding.weight", ("model.embed_tokens.weight",), dims=("vocab_size", "emb_dim")),
             *per_layer(_BLOCK, config.num_layers),
             Weight("ln_final.weight", ("model.norm.weight",), dims=("emb_dim",))]
    if not config.tie_weights:
        table.append(Weight("decoder.weight", ("lm_head.weight",), dims=("vocab_size", "emb_dim")))
    return table


def _qkv_rows(config: LlamaConfig) -> list[int]:
    """Rows of W_Q, W_K and W_V in our packed in_proj: ``H D``, ``Hkv D``, ``Hkv D``."""
    kv = config.num_kv_heads * config.head_dim
    return [config.emb_dim, kv, kv]


def to_hf_state_dict(model: Llama) -> dict[str, torch.Tensor]:
    """Our weights under ``LlamaForCausalLM``'s names (new tensors), for its ``load_state_dict``.

    >>> sd = to_hf_state_dict(Llama(LlamaConfig.tiny(vocab_size=10)))
    >>> [tuple(sd[f"model.layers.0.self_attn.{p}_proj.weight"].shape) for p in "qkv"]  # H=4, Hkv=2, D=8
    [(32, 32), (16, 32), (16, 32)]
    """
    if not isinstance(model, Llama):
        raise TypeError(f"expected an lmcourse.llama.Llama, got {type(model).__name__}")
    c = model.config
    out = export_weights(model, weight_table(c))
    for i in range(c.num_layers):
        q, k, v = out.pop(_QKV.format(i=i)).split(_qkv_rows(c))  # ((H + 2 Hkv) D, C) -> 3 pieces
        for name, piece in zip("qkv", (q, k, v)):
            out[f"model.layers.{i}.self_attn.{name}_proj.weight"] = piece.contiguous()
    if c.tie_weights:
        out["lm_head.weight"] = out["model.embed_tokens.weight"]  # tied: one tensor under both names
    return out


def from_hf_state_dict(state_dict: Mapping[str, torch.Tensor], model: Llama | LlamaConfig) -> Llama:
    """Load a ``LlamaForCausalLM`` state dict into a :class:`Llama` (given, or built from a
    :class:`LlamaConfig`); everything is checked before anything is copied."""
    model = Llama(model) if isinstance(model, LlamaConfig) else model
    if not isinstance(model, Llama):
        raise TypeError(f"give a Llama or a LlamaConfig, got {type(model).__name__}")
    c = model.config
    given = dict(state_dict)
    if c.tie_weights:
        given.pop("lm_head.weight", None)  # the embedding, again
    for i in range(c.num_layers):
        parts = [f"model.layers.{i}.self_attn.{p}_proj.weight" for p in "qkv"]
        if all(p in given for p in parts) and len({given[p].shape[1:] for p in parts}) == 1:
            given[_QKV.format(i=i)] = torch.cat([given.pop(p) for p in parts])  # rows stacked
    sizes = {"vocab_size": c.vocab_size, "emb_dim": c.emb_dim, "hidden_dim": c.hidden_dim}
    load_weights(model, weight_table(c), given, sizes=sizes,
                 ignore=lambda name: name.endswith("rotary_emb.inv_freq"))
    return model


def config_to_hf(config: LlamaConfig) -> Any:
    """A ``transformers.LlamaConfig`` of the same model (no biases, the same RoPE base and norm eps)."""
    from transformers import LlamaConfig as HFLlamaConfig

    return HFLlamaConfig(vocab_size=config.vocab_size, hidden_size=config.emb_dim,
                         intermediate_size=config.hidden_dim, num_hidden_layers=config.num_layers,
                         num_attention_heads=config.num_heads, num_key_value_heads=config.num_kv_heads,
                         max_position_embeddings=config.context_length, rms_norm_eps=config.norm_eps,
                         rope_theta=config.rope_base, tie_word_embeddings=config.tie_weights,
                         attention_bias=False, mlp_bias=False, bos_token_id=None, eos_token_id=None)


def to_transformers(model: Llama) -> Any:
    """``transformers.LlamaForCausalLM`` holding copies of `model`'s weights, in eval mode: the
    reference implementation of the same network. Built on the meta device (no random
    initialisation of 135M numbers that would be overwritten), then given our tensors."""
    from transformers import LlamaForCausalLM
    from transformers.models.llama.modeling_llama import LlamaRotaryEmbedding

    hf_config = config_to_hf(model.config)
    with torch.device("meta"):
        twin = LlamaForCausalLM(hf_config)
    twin.load_state_dict(to_hf_state_dict(model), assign=True, strict=False)
    if model.config.tie_weights:
        twin.tie_weights()  # lm_head.weight is embed_tokens.weight again
    twin.model.rotary_emb = LlamaRotaryEmbedding(hf_config)  # RoPE's angles: a buffer, not a weight
    missing = [n for n, p in twin.named_parameters() if p.is_meta]
    if missing:
        raise RuntimeError(f"transformers' Llama has tensors this bridge does not fill: {missing[:4]}")
    return twin.eval()
