"""Attention from its formula: scaled dot-product attention, masks, multi-head attention, and the
additive attention of Bahdanau et al. (2015). Chapter 4 (Attention and the Transformer) builds
each piece and checks it against PyTorch's own.

    attention(Q, K, V) = softmax(Q K^T / sqrt(d_k) + mask) V

Masks follow PyTorch's convention: a *boolean* mask is True where a query may attend to a key;
a *float* mask is added to the scores (``-inf`` blocks). A query whose keys are all blocked gets
an output of zeros, as ``torch.nn.functional.scaled_dot_product_attention`` gives on the CPU.
``is_causal=True`` lets position i attend to keys 0..i (top-left aligned, as in PyTorch).

A :class:`KVCache` keeps the keys and values of the positions a layer has already read, so that
generation computes each position's projections once (Chapter 6 explains it). A chunk of ``L``
new queries after ``S - L`` cached keys needs the *bottom-right* aligned causal mask, query i
seeing keys ``0 .. S - L + i``: ``causal_mask(L, S, offset=S - L)``.

Shape letters: ``B`` batch, ``H`` heads, ``L`` queries, ``S`` keys, ``E`` query/key size per
head (``d_k``), ``Ev`` value size, ``C`` model width (``d_model``), ``D = C / H``.

Grouped-query attention (``num_kv_heads``, Chapter 7) shares each key/value head among several
query heads. :mod:`lmcourse.minigpt` holds the short teaching version of the same arithmetic.

Left out: dropout on the attention weights (none of the book's small models needs it), cross-
attention (the book's encoder-decoder uses :class:`AdditiveAttention`), and sliding windows.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._checks import check_positive_int

__all__ = ["scaled_dot_product_attention", "softmax_attention", "causal_mask", "padding_mask", "KVCache", "repeat_kv",
           "MultiHeadAttention", "AdditiveAttention", "from_scratch_attention"]


def _check_float_tensor(name: str, x: Any, min_dim: int) -> None:
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got "
                        f"{type(x).__name__ if not isinstance(x, torch.Tensor) else x.dtype}")
    if x.dim() < min_dim:
        raise ValueError(f"{name} must have at least {min_dim} dimensions (..., length, size), "
                         f"got shape {tuple(x.shape)}")


def causal_mask(length: int, key_length: int | None = None, device: Any = None, offset: int = 0) -> torch.Tensor:
    """Boolean ``(L, S)`` mask, True where query i may see key j, i.e. j <= i + offset.

    `offset` is the number of keys before the first query's own position: ``offset = S - L``
    for ``L`` new tokens after ``S - L`` cached ones (bottom-right aligned).

    >>> causal_mask(3).int().tolist()
    [[1, 0, 0], [1, 1, 0], [1, 1, 1]]
    >>> causal_mask(2, 4, offset=2).int().tolist()  # 2 new queries after 2 cached keys
    [[1, 1, 1, 0], [1, 1, 1, 1]]
    """
    key_length = length if key_length is None else key_length
    return torch.ones(length, key_length, dtype=torch.bool, device=device).tril(diagonal=offset)


def padding_mask(lengths: torch.Tensor | list[int], max_length: int) -> torch.Tensor:
    """Boolean ``(B, 1, S)`` mask from the true length of each sequence: True on real tokens.

    It broadcasts over the queries; add a head dimension (``mask[:, None]``) for ``(B, H, L, S)``.

    >>> padding_mask([2, 3], 4).int().tolist()
    [[[1, 1, 0, 0]], [[1, 1, 1, 0]]]
    """
    lengths = torch.as_tensor(lengths)
    return (torch.arange(max_length, device=lengths.device) < lengths[:, None])[:, None, :]


def _check_mask(mask: torch.Tensor, scores_shape: torch.Size) -> None:
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"mask must be a tensor (bool: True = may attend; float: added to the scores), "
                        f"got {type(mask).__name__}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be bool (True = may attend) or float (added to the scores), got "
                        f"{mask.dtype}; convert a 0/1 mask with mask.bool()")
    try:
        fits = torch.broadcast_shapes(mask.shape, scores_shape) == scores_shape
    except RuntimeError:
        fits = False
    if not fits:
        raise ValueError(f"mask of shape {tuple(mask.shape)} does not broadcast to the scores' shape "
                         f"{tuple(scores_shape)} (..., L queries, S keys)")


def _softmax_over_keys(scores: torch.Tensor) -> torch.Tensor:
    """Softmax along the last axis; a row whose every score is -inf (all keys blocked) gets zeros.

    Those rows are set to 0 *before* the softmax as well as after, so no NaN appears in the
    forward pass or in the gradients."""
    dead = torch.isneginf(scores).all(dim=-1, keepdim=True)  # (..., L, 1)
    if not bool(dead.any()):  # the usual case: no extra copy of the (..., L, S) weights
        return torch.softmax(scores, dim=-1)
    weights = torch.softmax(scores.masked_fill(dead, 0.0), dim=-1)
    return weights.masked_fill(dead, 0.0)


def softmax_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None = None
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(E) + mask) v``, the arithmetic alone (no checks): the output
    ``(..., L, Ev)`` and the weights ``(..., L, S)``. :func:`scaled_dot_product_attention` checks
    the arguments first; :class:`MultiHeadAttention` checks its own once and calls this."""
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (..., L, E) @ (..., E, S) -> (..., L, S)
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf")) if mask.dtype == torch.bool else scores + mask
    weights = _softmax_over_keys(scores)  # (..., L, S), each row sums to 1 (or is 0 if all blocked)
    return weights @ v, weights  # (..., L, S) @ (..., S, Ev) -> (..., L, Ev)


def _check_float_mask_dtype(mask: torch.Tensor, dtype: torch.dtype) -> None:
    if mask.is_floating_point() and mask.dtype != dtype:
        raise TypeError(f"a float mask must have the dtype of q ({dtype}), got {mask.dtype}; "
                        f"convert it with mask.to(q.dtype)")


def scaled_dot_product_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                 mask: torch.Tensor | None = None, is_causal: bool = False,
                                 return_weights: bool = False
                                 ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """``softmax(q k^T / sqrt(E) + mask) v`` for ``q (..., L, E)``, ``k (..., S, E)``, ``v (..., S, Ev)``.

    Returns the output ``(..., L, Ev)``, and the weights ``(..., L, S)`` if `return_weights`.
    Equal to ``torch.nn.functional.scaled_dot_product_attention`` (tests); slower, but every step
    is visible.

    >>> q = torch.tensor([[1.0, 0.0]]); k = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> v = torch.tensor([[10.0], [20.0]])
    >>> out, w = scaled_dot_product_attention(q, k, v, return_weights=True)
    >>> [round(x, 3) for x in w[0].tolist()]  # softmax([1, 0] / sqrt(2))
    [0.67, 0.33]
    """
    for name, x in (("q", q), ("k", k), ("v", v)):
        _check_float_tensor(name, x, 2)
    if not q.dtype == k.dtype == v.dtype:
        raise TypeError(f"q, k and v must have one dtype, got {q.dtype}, {k.dtype}, {v.dtype}; convert "
                        f"them with .to(q.dtype)")
    if q.shape[-1] != k.shape[-1]:
        raise ValueError(f"queries and keys must have the same size per head to take dot products: "
                         f"q is (..., L, {q.shape[-1]}), k is (..., S, {k.shape[-1]})")
    if k.shape[-2] != v.shape[-2]:
        raise ValueError(f"keys and values must come in pairs: k has {k.shape[-2]} positions, "
                         f"v has {v.shape[-2]}")
    if is_causal and mask is not None:
        raise ValueError("give either is_causal=True or a mask, not both (combine them into one mask)")
    if is_causal:
        mask = causal_mask(q.shape[-2], k.shape[-2], device=q.device)  # (L, S)
    if mask is not None:
        _check_mask(mask, torch.Size((*torch.broadcast_shapes(q.shape[:-2], k.shape[:-2]),
                                      q.shape[-2], k.shape[-2])))
        _check_float_mask_dtype(mask, q.dtype)
    out, weights = softmax_attention(q, k, v, mask)
    return (out, weights) if return_weights else out


class KVCache:
    """The keys and values one attention layer has computed so far, each ``(B, Hkv, S, D)``.

    In generation, the keys and values of earlier positions never change (a causal model's
    position j sees nothing after j), so they are kept rather than recomputed: each new
    token's query attends to all cached keys, and its own key and value are appended. With
    grouped-query attention only the ``Hkv`` key/value heads are kept (that is its point).

    >>> cache = KVCache()
    >>> k, v = cache.append(torch.zeros(1, 2, 3, 4), torch.zeros(1, 2, 3, 4))  # 3 positions read
    >>> k, v = cache.append(torch.ones(1, 2, 1, 4), torch.ones(1, 2, 1, 4))  # then one more
    >>> len(cache), tuple(k.shape)
    (4, (1, 2, 4, 4))
    """

    def __init__(self) -> None:
        self.keys: torch.Tensor | None = None  # (B, Hkv, S, D)
        self.values: torch.Tensor | None = None  # (B, Hkv, S, D)

    def __len__(self) -> int:
        """S: the number of positions cached."""
        return 0 if self.keys is None else self.keys.shape[-2]

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values ``(B, Hkv, T, D)`` of `T` new positions; return all ``(B, Hkv, S + T, D)``."""
        if self.keys is None:
            self.keys, self.values = k, v
        else:
            self._check_continues(k)
            self.keys = torch.cat([self.keys, k], dim=-2)  # (B, Hkv, S, D) + (B, Hkv, T, D) -> (B, Hkv, S + T, D)
            self.values = torch.cat([self.values, v], dim=-2)  # (B, Hkv, S, D) + (B, Hkv, T, D) -> (B, Hkv, S + T, D)
        return self.keys, self.values

    def repeat(self, batch_size: int) -> KVCache:
        """A cache of one sequence ``(1, Hkv, S, D)`` shared by `batch_size` sequences that continue it
        differently (a common prompt, then each row its own text): a view, no copy until appended to, and
        appending to it leaves this cache as it was (:meth:`append` makes new tensors, it never writes
        into the old)."""
        if self.keys is None or self.keys.shape[0] != 1:
            raise ValueError(f"repeat needs a cache of one sequence, got {self!r} with batch "
                             f"{None if self.keys is None else self.keys.shape[0]}")
        twin = KVCache()
        twin.keys, twin.values = (t.expand(batch_size, -1, -1, -1) for t in (self.keys, self.values))
        return twin

    def _check_continues(self, k: torch.Tensor) -> None:
        if k.shape[:2] != self.keys.shape[:2] or k.shape[-1] != self.keys.shape[-1]:
            raise ValueError(f"new keys {tuple(k.shape)} do not continue the cached keys "
                             f"{tuple(self.keys.shape)} (B, H, S, D): same batch, heads and head size "
                             f"needed; start a new KVCache for another batch")

    def __repr__(self) -> str:
        return f"KVCache(length={len(self)})"


def repeat_kv(x: torch.Tensor, groups: int) -> torch.Tensor:
    """``(B, Hkv, S, D) -> (B, Hkv * groups, S, D)``: each key/value head serves `groups` query heads,
    query head ``h`` reading key/value head ``h // groups`` (as ``transformers``' ``repeat_kv``).

    >>> repeat_kv(torch.arange(2.0).view(1, 2, 1, 1), 3).flatten().tolist()
    [0.0, 0.0, 0.0, 1.0, 1.0, 1.0]
    """
    return x if groups == 1 else x.repeat_interleave(groups, dim=1)


def _with_causal(mask: torch.Tensor | None, causal: torch.Tensor) -> torch.Tensor:
    """`mask` (bool or float) combined with the boolean `causal` mask ``(T, S)``."""
    if mask is None:
        return causal
    if mask.dtype == torch.bool:
        return mask & causal
    return mask.masked_fill(~causal, float("-inf"))


class MultiHeadAttention(nn.Module):
    """``H`` attention heads side by side, each on its own ``D = C / H``-sized projections.

    ``MultiHead(X) = concat(head_1, ..., head_H) W_O`` with ``head_h = attention(X W_Q^h, X W_K^h,
    X W_V^h)`` (Vaswani et al., 2017). The input projections are one packed matrix ``[W_Q; W_K; W_V]``,
    as in ``nn.MultiheadAttention``, whose weights :meth:`from_torch` copies. ``causal=True`` makes
    every position see only itself and earlier ones (GPT); ``causal=False`` sees all (BERT).
    ``fused=True`` calls PyTorch's fused kernel instead of :func:`scaled_dot_product_attention`.
    `rotary`, if given, rotates queries and keys by position (:class:`lmcourse.positions.RotaryEmbedding`).

    `num_kv_heads` ``Hkv`` (default ``H``) gives grouped-query attention (Ainslie et al., 2023; LLaMA 2,
    SmolLM2): only ``Hkv`` key/value heads, each shared by ``H / Hkv`` query heads (``1``: multi-query
    attention, Shazeer, 2019). ``in_proj`` is then ``((H + 2 Hkv) D, C)``, ``(3C, C)`` when ``Hkv = H``,
    and a :class:`KVCache` keeps ``Hkv`` heads only.

    Inputs are batch first: ``(B, T, C)``. :mod:`lmcourse.minigpt` computes the same in a few lines.
    """

    def __init__(self, emb_dim: int, num_heads: int, causal: bool = False, fused: bool = False,
                 bias: bool = True, rotary: nn.Module | None = None, num_kv_heads: int | None = None) -> None:
        super().__init__()
        for name, value in (("emb_dim", emb_dim), ("num_heads", num_heads)):
            check_positive_int(name, value)
        if emb_dim % num_heads:
            raise ValueError(f"emb_dim={emb_dim} is not divisible by num_heads={num_heads}: each head gets "
                             f"emb_dim / num_heads dimensions; pick e.g. num_heads in "
                             f"{[h for h in range(1, min(emb_dim, 16) + 1) if emb_dim % h == 0]}")
        num_kv_heads = num_heads if num_kv_heads is None else num_kv_heads
        check_positive_int("num_kv_heads", num_kv_heads)
        if num_heads % num_kv_heads:
            raise ValueError(f"num_heads={num_heads} is not divisible by num_kv_heads={num_kv_heads}: each "
                             f"key/value head serves num_heads / num_kv_heads query heads")
        self.emb_dim, self.num_heads, self.head_dim = emb_dim, num_heads, emb_dim // num_heads
        self.num_kv_heads = num_kv_heads
        self.causal, self.fused = causal, fused
        kv_dim = num_kv_heads * self.head_dim
        self.in_proj = nn.Linear(emb_dim, emb_dim + 2 * kv_dim, bias=bias)  # [W_Q; W_K; W_V] for all heads
        self.out_proj = nn.Linear(emb_dim, emb_dim, bias=bias)  # W_O
        self.rotary = rotary

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, return_weights: bool = False,
                cache: KVCache | None = None) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Self-attention over ``x (B, T, C)`` -> ``(B, T, C)``.

        `mask` (bool or float) broadcasts to ``(B, H, T, S)``, e.g. ``(T, S)`` or a padding mask
        ``(B, 1, 1, S)``; it is combined with the causal mask if the module is causal.
        `return_weights` also returns the attention weights ``(B, H, T, S)`` (not with ``fused``).
        `cache`: ``x`` holds the ``T`` positions after the ``P`` already in the cache; their keys
        and values are appended to it and the queries attend to all ``S = P + T`` keys (causal:
        bottom-right aligned).
        """
        past = len(cache) if cache is not None else 0  # P positions read before x
        self._check(x, mask, return_weights, past)
        q, k, v = self._project(x)  # (B, H, T, D), (B, Hkv, T, D), (B, Hkv, T, D)
        if self.rotary is not None:
            q, k = self.rotary(q, offset=past), self.rotary(k, offset=past)
        if cache is not None:
            k, v = cache.append(k, v)  # (B, Hkv, P + T, D) each
        out, weights = self._attend(q, k, v, mask, past)  # (B, H, T, D), (B, H, T, S) or None
        out = self._merge(out)  # (B, H, T, D) -> (B, T, C)
        return (out, weights) if return_weights else out

    def _check(self, x: torch.Tensor, mask: torch.Tensor | None, return_weights: bool, past: int) -> None:
        """Every check of :meth:`forward`'s arguments, done once here."""
        _check_float_tensor("x", x, 3)
        if x.dim() != 3 or x.shape[-1] != self.emb_dim:
            raise ValueError(f"x must be (B, T, C={self.emb_dim}), got {tuple(x.shape)}")
        if mask is not None:
            B, T = x.shape[:2]
            _check_mask(mask, torch.Size((B, self.num_heads, T, past + T)))
            if mask.dim() not in (2, 4):
                raise ValueError(f"mask must be (T, S) or 4-D (B, H or 1, T or 1, S), got shape "
                                 f"{tuple(mask.shape)}; for a padding mask use padding_mask(lengths, S)[:, None]")
            _check_float_mask_dtype(mask, x.dtype)
        if self.fused and return_weights:
            raise ValueError("the fused kernel does not return attention weights; use fused=False")

    def _project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Queries ``(B, H, T, D)``, keys and values ``(B, Hkv, T, D)`` of ``x (B, T, C)``."""
        sizes = (self.emb_dim, self.num_kv_heads * self.head_dim, self.num_kv_heads * self.head_dim)
        B, T, _ = x.shape
        heads = (self.num_heads, self.num_kv_heads, self.num_kv_heads)
        # one product for W_Q, W_K and W_V: (B, T, C) @ (C, C + 2 Hkv D) -> (B, T, C + 2 Hkv D), then
        # each part (B, T, h D) -> (B, T, h, D) -> (B, h, T, D)
        parts = self.in_proj(x).split(sizes, dim=-1)
        q, k, v = (part.view(B, T, h, self.head_dim).transpose(1, 2) for part, h in zip(parts, heads))
        return q, k, v

    def _attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None, past: int
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Each query head over its key/value head: ``(B, H, T, D)``, and the weights ``(B, H, T, S)``
        (None from the fused kernel). The causal mask is built only where needed."""
        T, S = q.shape[-2], k.shape[-2]
        kernel_causal = self.fused and self.causal and mask is None and T == S  # the kernel masks by itself
        lone_newest = T == 1 and S == past + 1  # one new query after the cache: it may see every key
        if self.causal and not kernel_causal and not lone_newest:
            mask = _with_causal(mask, causal_mask(T, S, device=q.device, offset=past))  # (T, S) or (B, H, T, S)
        if self.fused:
            gqa = {"enable_gqa": True} if self.num_kv_heads != self.num_heads else {}
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=kernel_causal, **gqa), None
        groups = self.num_heads // self.num_kv_heads
        return softmax_attention(q, repeat_kv(k, groups), repeat_kv(v, groups), mask)

    def _merge(self, out: torch.Tensor) -> torch.Tensor:
        """Concatenate the heads and apply ``W_O``: ``(B, H, T, D) -> (B, T, C)``."""
        B, _, T, _ = out.shape
        out = out.transpose(1, 2).reshape(B, T, self.emb_dim)  # (B, H, T, D) -> (B, T, H, D) -> (B, T, C)
        return self.out_proj(out)  # (B, T, C) @ (C, C) -> (B, T, C)

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention, causal: bool = False, fused: bool = False
                   ) -> MultiHeadAttention:
        """A copy of ``nn.MultiheadAttention``'s weights (it must use one packed in-projection)."""
        if not isinstance(module, nn.MultiheadAttention):
            raise TypeError(f"expected nn.MultiheadAttention, got {type(module).__name__}")
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("nn.MultiheadAttention with add_bias_kv=True or add_zero_attn=True attends to "
                             "extra key/value rows that MultiHeadAttention does not have; build it without them")
        if module.in_proj_weight is None:
            raise ValueError("nn.MultiheadAttention with kdim/vdim != embed_dim keeps separate projections; "
                             "only the packed (3C, C) in-projection can be copied")
        mine = cls(module.embed_dim, module.num_heads, causal=causal, fused=fused,
                   bias=module.in_proj_bias is not None)
        with torch.no_grad():
            mine.in_proj.weight.copy_(module.in_proj_weight)
            mine.out_proj.weight.copy_(module.out_proj.weight)
            if module.in_proj_bias is not None:
                mine.in_proj.bias.copy_(module.in_proj_bias)
                mine.out_proj.bias.copy_(module.out_proj.bias)
        return mine

    def extra_repr(self) -> str:
        gqa = f", num_kv_heads={self.num_kv_heads}" if self.num_kv_heads != self.num_heads else ""
        return f"emb_dim={self.emb_dim}, num_heads={self.num_heads}{gqa}, causal={self.causal}, fused={self.fused}"


class AdditiveAttention(nn.Module):
    """Bahdanau et al. (2015): ``score(s, h_j) = v^T tanh(W s + U h_j)``, then softmax over j.

    The query ``s`` is the decoder state ``(B, Q)``; the keys and values are the encoder states
    ``(B, S, K)``. Returns the context vector ``(B, K)`` and the weights ``(B, S)``.
    """

    def __init__(self, query_dim: int, key_dim: int, hidden_dim: int) -> None:
        super().__init__()
        self.query_proj = nn.Linear(query_dim, hidden_dim, bias=False)  # W
        self.key_proj = nn.Linear(key_dim, hidden_dim)  # U (and the bias)
        self.score = nn.Linear(hidden_dim, 1, bias=False)  # v

    def forward(self, query: torch.Tensor, keys: torch.Tensor, mask: torch.Tensor | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
        """`mask` ``(B, S)`` is True on real (non-padding) encoder positions."""
        hidden = torch.tanh(self.query_proj(query)[:, None, :] + self.key_proj(keys))  # (B, 1, A) + (B, S, A)
        scores = self.score(hidden).squeeze(-1)  # (B, S, A) @ (A, 1) -> (B, S)
        if mask is not None:
            scores = scores.masked_fill(~mask, float("-inf"))
        weights = _softmax_over_keys(scores)  # (B, S); zeros if every position is masked
        context = (weights[:, :, None] * keys).sum(1)  # (B, S, 1) * (B, S, K) -> (B, K)
        return context, weights


@contextlib.contextmanager
def from_scratch_attention(model: nn.Module) -> Iterator[None]:
    """Temporarily run every :class:`MultiHeadAttention` inside `model` with the from-scratch
    attention (the fused kernel returns no weights); each module's setting is restored after."""
    layers = [m for m in model.modules() if isinstance(m, MultiHeadAttention)]
    saved = [m.fused for m in layers]
    for m in layers:
        m.fused = False
    try:
        yield
    finally:
        for m, fused in zip(layers, saved):
            m.fused = fused
