"""GPT on one page: the teaching versions of causal self-attention, the Transformer block and the
whole forward pass, as short as nanoGPT's. Chapters 4a and 4b show this code.

Nothing here is used by the models: the production classes (:class:`lmcourse.attention.MultiHeadAttention`,
:class:`lmcourse.transformer.Block`, :class:`lmcourse.transformer.TransformerLM`, :class:`lmcourse.gpt.GPT`)
compute the same numbers with what a library needs besides: argument checks with clear messages,
padding masks, a KV cache, grouped-query heads, rotary positions, the fused kernel, and the
time-first protocol of the earlier chapters. Every module here has the production module's
parameter names (positions aside), so :meth:`MiniGPT.from_model` copies a trained model into its
teaching twin, and ``tests/test_minigpt.py`` checks that both compute the same (within 1e-6).

Shape letters: ``B`` batch, ``T`` tokens, ``C`` model width, ``H`` heads, ``D = C / H``, ``V`` vocabulary.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lmcourse.layers import MLP
from lmcourse.transformer import TransformerLM

__all__ = ["attention_head", "CausalSelfAttention", "Block", "MiniGPT"]


def attention_head(x: torch.Tensor, w_q: torch.Tensor, w_k: torch.Tensor, w_v: torch.Tensor) -> torch.Tensor:
    """One causal self-attention head: ``x (B, T, C)`` and projections ``(D, C)`` -> ``(B, T, D)``."""
    q, k, v = x @ w_q.T, x @ w_k.T, x @ w_v.T  # (B, T, C) @ (C, D) -> (B, T, D)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, T, D) @ (B, D, T) -> (B, T, T)
    T = x.shape[1]
    allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # position i sees keys 0..i
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v  # (B, T, T) @ (B, T, D) -> (B, T, D)


class CausalSelfAttention(nn.Module):
    """``H`` causal heads side by side: project once, split into heads, attend, merge, project."""

    def __init__(self, emb_dim: int, num_heads: int) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.in_proj = nn.Linear(emb_dim, 3 * emb_dim)  # [W_Q; W_K; W_V] of all heads
        self.out_proj = nn.Linear(emb_dim, emb_dim)  # W_O

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.in_proj(x).split(C, dim=-1)  # (B, T, 3C) -> 3 x (B, T, C)
        # (B, T, C) -> (B, T, H, D) -> (B, H, T, D): each head attends on its own D dimensions
        q, k, v = (t.view(B, T, self.num_heads, C // self.num_heads).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, D) @ (B, H, D, T) -> (B, H, T, T)
        allowed = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()
        weights = torch.softmax(scores.masked_fill(~allowed, float("-inf")), dim=-1)  # (B, H, T, T)
        out = (weights @ v).transpose(1, 2).reshape(B, T, C)  # (B, H, T, D) -> (B, T, H, D) -> (B, T, C)
        return self.out_proj(out)


class Block(nn.Module):
    """Pre-LayerNorm block: ``x + attn(LN(x))``, then ``x + MLP(LN(x))``."""

    def __init__(self, emb_dim: int, num_heads: int, gelu: str = "none") -> None:
        super().__init__()
        self.ln_attn = nn.LayerNorm(emb_dim)
        self.attn = CausalSelfAttention(emb_dim, num_heads)
        self.ln_mlp = nn.LayerNorm(emb_dim)
        self.mlp = MLP(emb_dim, 4 * emb_dim, approximate=gelu)  # Linear -> GELU -> Linear

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln_attn(x))  # positions exchange information
        return x + self.mlp(self.ln_mlp(x))  # each position on its own


class MiniGPT(nn.Module):
    """A whole GPT: token and position embeddings, ``N`` blocks, a final LayerNorm, the output layer.

    ``gelu="tanh"`` and ``output_bias=False`` are GPT-2's choices; :meth:`from_model` copies a
    :class:`~lmcourse.transformer.TransformerLM` (or a :class:`~lmcourse.gpt.GPT`) with learned positions."""

    def __init__(self, vocab_size: int, context_length: int, emb_dim: int, num_heads: int, num_layers: int,
                 gelu: str = "none", output_bias: bool = True) -> None:
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, emb_dim)  # one vector per token
        self.positions = nn.Embedding(context_length, emb_dim)  # one vector per position
        self.blocks = nn.ModuleList(Block(emb_dim, num_heads, gelu) for _ in range(num_layers))
        self.ln_final = nn.LayerNorm(emb_dim)
        self.decoder = nn.Linear(emb_dim, vocab_size, bias=output_bias)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Token ids ``(B, T)`` -> next-token logits ``(B, T, V)``."""
        T = ids.shape[1]
        x = self.embedding(ids) + self.positions(torch.arange(T, device=ids.device))  # (B, T, C) + (T, C)
        for block in self.blocks:
            x = block(x)  # (B, T, C) -> (B, T, C)
        return self.decoder(self.ln_final(x))  # (B, T, C) @ (C, V) -> (B, T, V)

    @classmethod
    def from_model(cls, model: TransformerLM) -> MiniGPT:
        """The teaching twin of `model` (learned positions, full softmax), holding copies of its weights."""
        c = model.transformer_config
        if c.positions != "learned" or c.adaptive_cutoffs is not None or c.layer_norm_eps != 1e-5 or c.mlp_ratio != 4:
            raise ValueError("MiniGPT has learned positions, a full softmax, LayerNorm's eps=1e-5 and a 4C-wide "
                             f"MLP only; got positions={c.positions!r}, adaptive_cutoffs={c.adaptive_cutoffs!r}, "
                             f"layer_norm_eps={c.layer_norm_eps}, mlp_ratio={c.mlp_ratio}")
        mini = cls(c.vocab_size, c.context_length, c.emb_dim, c.num_heads, c.num_layers,
                   gelu=c.gelu_approximate, output_bias=c.output_bias)
        weights = {k.replace("positions.embedding.", "positions."): v for k, v in model.state_dict().items()}
        mini.load_state_dict(weights)
        return mini.to(next(model.parameters()).device).eval()
