"""Checkers for Chapter 7 (today's LLMs): RMSNorm, the SwiGLU feed-forward, repeating key/value
heads for grouped-query attention, dequantising one Q4_1 block of a GGUF file, and rendering
SmolLM2's chat template.

The oracles are trusted references, not the reader's formula restated: RMSNorm is PyTorch's
``F.rms_norm``, the feed-forward and ``repeat_kv`` are ``transformers``' own ``LlamaMLP`` and
``repeat_kv`` (the code that runs Llama models there), the Q4_1 block is dequantised by the
``gguf`` package (llama.cpp's Python reference), and the chat template is SmolLM2's own Jinja
template, rendered by ``jinja2`` as ``transformers`` does.

>>> _q4_1_block(0.5, -2.0, list(range(16)) + list(range(15, -1, -1)))[:4].hex()  # d and m as float16
'003800c0'
>>> _gguf_q4_1(_q4_1_block(0.5, -2.0, list(range(16)) + [0] * 16))[:3].tolist()  # m + d * code
[-2.0, -1.5, -1.0]
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from lmcourse.exercises.core import Case, Exercise, register

# --- llm.rms_norm ----------------------------------------------------------------------------


def _torch_rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> np.ndarray:
    return F.rms_norm(x.double(), (x.shape[-1],), weight.double(), eps).numpy()


def _layer_norm(x, weight, eps):
    """Wrong: subtracts the mean first (that is LayerNorm without its bias)."""
    centred = x - x.mean(dim=-1, keepdim=True)
    return centred / torch.sqrt(centred.pow(2).mean(dim=-1, keepdim=True) + eps) * weight


def _rms_wrong(x, weight, eps, *, use_eps=True, eps_outside=False, gain=True, dim=-1, reduce="mean"):
    sq = x.pow(2).sum(dim=dim, keepdim=True) if reduce == "sum" else x.pow(2).mean(dim=dim, keepdim=True)
    if eps_outside:
        out = x / (torch.sqrt(sq) + eps)
    else:
        out = x / torch.sqrt(sq + (eps if use_eps else 0.0))
    return out * weight if gain else out


def _rms_cases() -> list[Case]:
    g = torch.Generator().manual_seed(7)
    return [
        Case((torch.tensor([[3.0, 4.0]]), torch.ones(2), 0.0), label="x = [[3, 4]], weight [1, 1], eps 0 (by hand: "
                                                                       "rms = sqrt(12.5))"),
        Case((torch.randn(2, 5, 8, generator=g), 0.5 + torch.rand(8, generator=g), 1e-6),
             label="x of shape (2, 5, 8), a random weight, eps 1e-6"),
        Case((torch.randn(4, 16, generator=g) + 3.0, torch.ones(16), 1e-5),
             label="rows whose mean is about 3 (RMSNorm does not subtract it)"),
        Case((torch.zeros(2, 6), torch.ones(6), 1e-5), label="rows of zeros, eps 1e-5 (without eps: 0 / 0)"),
        Case((1e-2 * torch.randn(3, 10, generator=g), torch.ones(10), 1e-3),
             label="small x (about 0.01) with eps 1e-3: eps belongs inside the square root"),
        Case((torch.randn(3, 4, generator=g), torch.tensor([2.0, -1.0, 0.5, 0.0]), 1e-6),
             label="x of shape (3, 4), weight [2, -1, 0.5, 0]"),
    ]


register(Exercise(
    name="llm.rms_norm",
    cases=_rms_cases(),
    oracle=_torch_rms_norm,
    hint="Over the LAST dimension only: ms = mean(x ** 2) with keepdim=True, then x / sqrt(ms + eps) * weight. "
         "No mean is subtracted (that would be LayerNorm), eps goes inside the square root, and the weight "
         "multiplies every row.",
    wrong_answers={"subtracts the mean (LayerNorm)": _layer_norm,
                   "no eps": functools.partial(_rms_wrong, use_eps=False),
                   "eps outside the square root": functools.partial(_rms_wrong, eps_outside=True),
                   "forgets the weight": functools.partial(_rms_wrong, gain=False),
                   "normalises over the first dimension": functools.partial(_rms_wrong, dim=0),
                   "sum instead of mean": functools.partial(_rms_wrong, reduce="sum")},
    rel_tol=1e-5, abs_tol=1e-6,
    nudge="RMSNorm divides each row by its root mean square (over the last dimension) and multiplies by the "
          "weight; it subtracts no mean.",
))

# --- llm.swiglu ------------------------------------------------------------------------------


def _transformers_mlp(x: torch.Tensor, w_gate: torch.Tensor, w_up: torch.Tensor, w_down: torch.Tensor) -> np.ndarray:
    from transformers import LlamaConfig
    from transformers.models.llama.modeling_llama import LlamaMLP

    hidden, width = w_gate.shape  # (M, C): nn.Linear's (out, in)
    mlp = LlamaMLP(LlamaConfig(hidden_size=width, intermediate_size=hidden, hidden_act="silu",
                                 num_attention_heads=1, num_key_value_heads=1)).double()
    with torch.no_grad():
        for layer, weight in ((mlp.gate_proj, w_gate), (mlp.up_proj, w_up), (mlp.down_proj, w_down)):
            layer.weight.copy_(weight.double())
        return mlp(x.double()).numpy()


def _swiglu_wrong(x, w_gate, w_up, w_down, *, act=F.silu, swap=False, gated=True, act_after=False):
    gate, up = (x @ w_up.T, x @ w_gate.T) if swap else (x @ w_gate.T, x @ w_up.T)  # (..., C) -> (..., M)
    if not gated:
        return act(up) @ w_down.T
    hidden = act(gate * up) if act_after else act(gate) * up
    return hidden @ w_down.T  # (..., M) -> (..., C)


def _swiglu_cases() -> list[Case]:
    g = torch.Generator().manual_seed(11)

    def weights(c: int, m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return (torch.randn(m, c, generator=g) / c ** 0.5, torch.randn(m, c, generator=g) / c ** 0.5,
                torch.randn(c, m, generator=g) / m ** 0.5)

    eye = torch.eye(2)
    return [
        Case((torch.tensor([[1.0, -2.0]]), eye, 2 * eye, eye), label="x = [[1, -2]], W_gate = I, W_up = 2I, W_down = I "
                                                                     "(by hand: 2 x silu(x))"),
        Case((torch.randn(3, 4, generator=g), *weights(4, 6)), label="x (3, 4), C = 4, M = 6"),
        Case((torch.randn(2, 5, 8, generator=g), *weights(8, 12)), label="x (2, 5, 8): a batch of sequences, M = 12"),
        Case((3 * torch.randn(1, 16, generator=g), *weights(16, 40)), label="x (1, 16), M = 40, large inputs"),
    ]


register(Exercise(
    name="llm.swiglu",
    cases=_swiglu_cases(),
    oracle=_transformers_mlp,
    hint="The weights are stored like nn.Linear's, (out, in), so x @ W.T applies one. Compute gate = x @ w_gate.T "
         "and up = x @ w_up.T (both (..., M)), multiply silu(gate) by up (silu(z) = z * sigmoid(z), "
         "torch.nn.functional.silu), then project back with @ w_down.T. Only the GATE goes through silu.",
    wrong_answers={"gate and up swapped": functools.partial(_swiglu_wrong, swap=True),
                   "GELU instead of SiLU": functools.partial(_swiglu_wrong, act=F.gelu),
                   "sigmoid instead of SiLU (plain GLU)": functools.partial(_swiglu_wrong, act=torch.sigmoid),
                   "silu of the product": functools.partial(_swiglu_wrong, act_after=True),
                   "no gate (silu(up) only)": functools.partial(_swiglu_wrong, gated=False)},
    rel_tol=1e-5, abs_tol=1e-6,
    nudge="down(silu(gate(x)) * up(x)): only the gate goes through SiLU, and each weight (out, in) applies as x @ W.T.",
))

# --- llm.repeat_kv ---------------------------------------------------------------------------


def _transformers_repeat_kv(x: torch.Tensor, num_groups: int) -> np.ndarray:
    from transformers.models.llama.modeling_llama import repeat_kv

    return repeat_kv(x, num_groups).numpy()


def _repeat_tiled(x, num_groups):
    """Wrong: tiles the heads (k0 k1 k2 k0 k1 k2) instead of repeating each (k0 k0 k1 k1 k2 k2)."""
    return x.repeat(1, num_groups, 1, 1)


def _repeat_time(x, num_groups):
    """Wrong: repeats along time, not along the heads."""
    return x.repeat_interleave(num_groups, dim=2)


def _repeat_new_axis(x, num_groups):
    """Wrong: stacks the copies on a new axis and forgets to merge it with the heads."""
    return x[:, :, None].expand(-1, -1, num_groups, -1, -1)


def _repeat_kv_cases() -> list[Case]:
    g = torch.Generator().manual_seed(3)
    return [
        Case((torch.arange(12.0).view(1, 3, 2, 2), 3), label="(B, H_kv, T, D) = (1, 3, 2, 2), entries 0..11, "
                                                                 "3 query heads per key/value head (SmolLM2's 9 and 3)"),
        Case((torch.arange(8.0).view(1, 2, 2, 2), 1), label="1 query head per key/value head: unchanged"),
        Case((torch.randn(2, 2, 5, 4, generator=g), 4), label="(2, 2, 5, 4), 4 query heads per key/value head"),
        Case((torch.randn(1, 1, 3, 8, generator=g), 6), label="one key/value head for 6 query heads "
                                                               "(multi-query attention)"),
    ]


register(Exercise(
    name="llm.repeat_kv",
    cases=_repeat_kv_cases(),
    oracle=_transformers_repeat_kv,
    hint="x is (B, H_kv, T, D); return (B, H_kv * num_groups, T, D) where query head h reads key/value head "
         "h // num_groups, so each head is repeated num_groups times IN PLACE: k0 k0 k0 k1 k1 k1 ..., not tiled "
         "k0 k1 k0 k1. x.repeat_interleave(num_groups, dim=1) does it (x.repeat tiles).",
    wrong_answers={"tiles the heads (repeat instead of repeat_interleave)": _repeat_tiled,
                   "repeats along time": _repeat_time,
                   "copies on a new axis, not merged": _repeat_new_axis},
    rel_tol=0.0, abs_tol=0.0,
    nudge="Repeat each key/value head in place along dimension 1 (k0 k0 k1 k1), not tiled (k0 k1 k0 k1).",
))

# --- llm.dequantize_q4_1 ---------------------------------------------------------------------


def _q4_1_block(d: float, m: float, codes: list[int]) -> bytes:
    """20 bytes of a Q4_1 block: d and m as float16, then code j in the low and code j + 16 in the high
    nibble of byte j (llama.cpp's block_q4_1)."""
    packed = bytes(codes[j] | (codes[j + 16] << 4) for j in range(16))
    return np.float16(d).tobytes() + np.float16(m).tobytes() + packed


def _gguf_q4_1(block: bytes) -> np.ndarray:
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import dequantize

    return dequantize(np.frombuffer(block, dtype=np.uint8), GGMLQuantizationType.Q4_1).astype(np.float32)


def _q4_1_wrong(block, *, order="halves", sign=1.0, use_m=True, swap_dm=False, offset=0):
    raw = np.frombuffer(block, dtype=np.uint8)
    d, m = raw[:4].view(np.float16).astype(np.float32)
    if swap_dm:
        d, m = m, d
    low, high = (raw[4:] & 0x0F).astype(np.float32), (raw[4:] >> 4).astype(np.float32)
    if order == "interleaved":
        codes = np.stack([low, high], axis=1).reshape(-1)  # (16, 2) -> (32,): low, high, low, high, ...
    elif order == "high first":
        codes = np.concatenate([high, low])
    else:
        codes = np.concatenate([low, high])
    return (d * (codes - offset) + (sign * m if use_m else 0.0)).astype(np.float32)


def _q4_1_cases() -> list[Case]:
    rng = np.random.default_rng(41)
    ramp = list(range(16)) + list(range(15, -1, -1))
    cases = [Case((_q4_1_block(0.5, -2.0, ramp),), label="d = 0.5, m = -2, codes 0, 1, ..., 15, 15, 14, ..., 0 "
                                                          "(by hand: -2, -1.5, ..., 5.5, 5.5, ..., -2)")]
    for k in range(4):
        d, m = float(rng.uniform(0.001, 0.02)), float(rng.uniform(-0.15, -0.01))
        cases.append(Case((_q4_1_block(d, m, rng.integers(0, 16, size=32).tolist()),),
                          label=f"random block {k + 1}: d = {np.float16(d):.4g}, m = {np.float16(m):.4g}, random codes"))
    cases.append(Case((_q4_1_block(0.0, 0.25, [7] * 32),), label="d = 0: every weight equals m = 0.25"))
    return cases


register(Exercise(
    name="llm.dequantize_q4_1",
    cases=_q4_1_cases(),
    oracle=_gguf_q4_1,
    hint="Read the 20 bytes with np.frombuffer(block, dtype=np.uint8). Bytes 0-1 are d and bytes 2-3 are m, each a "
         "float16 (view them with .view(np.float16)). Byte 4 + j holds weight j in its LOW four bits (b & 0x0F) "
         "and weight j + 16 in its HIGH four bits (b >> 4): the low nibbles are weights 0-15, the high nibbles "
         "16-31. Each weight is d * code + m (the minimum is ADDED). Return 32 float32 values.",
    wrong_answers={"nibbles interleaved (low, high, low, high, ...)": functools.partial(_q4_1_wrong,
                                                                                         order="interleaved"),
                   "high nibbles first": functools.partial(_q4_1_wrong, order="high first"),
                   "m subtracted": functools.partial(_q4_1_wrong, sign=-1.0),
                   "m forgotten": functools.partial(_q4_1_wrong, use_m=False),
                   "d and m swapped": functools.partial(_q4_1_wrong, swap_dm=True),
                   "codes centred at 8 (that is Q4_0)": functools.partial(_q4_1_wrong, offset=8)},
    rel_tol=1e-6, abs_tol=1e-7,
    nudge="Weights 0-15 are the low nibbles of bytes 4-19 and weights 16-31 the high nibbles; each is d * code + m.",
))

# --- llm.render_chat -------------------------------------------------------------------------

SMOLLM2_CHAT_TEMPLATE = (  # tokenizer.chat_template of SmolLM2-135M-Instruct's GGUF file (Apache-2.0), verbatim
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n' }}"
    "{% endif %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_DEFAULT_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"


def _jinja_chat(messages: list[dict], add_generation_prompt: bool) -> str:
    from jinja2.sandbox import ImmutableSandboxedEnvironment  # what transformers renders templates with

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(SMOLLM2_CHAT_TEMPLATE).render(messages=messages, add_generation_prompt=add_generation_prompt)


def _chat_wrong(messages, add_generation_prompt, *, default_system="first", end="<|im_end|>\n",
                prompt="<|im_start|>assistant\n", always_prompt=False):
    parts = []
    if default_system == "always" or (default_system == "first" and messages[0]["role"] != "system"):
        parts.append(f"<|im_start|>system\n{_DEFAULT_SYSTEM}<|im_end|>\n")
    parts += [f"<|im_start|>{m['role']}\n{m['content']}{end}" for m in messages]
    if add_generation_prompt or always_prompt:
        parts.append(prompt)
    return "".join(parts)


def _chat_cases() -> list[Case]:
    q = {"role": "user", "content": "What is the capital of France?"}
    system = {"role": "system", "content": "Answer in one word."}
    turns = [q, {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And of Italy?\nOne word."}]
    return [
        Case(([q], True), label="one user message, with the generation prompt"),
        Case(([q], False), label="one user message, without the generation prompt"),
        Case(([system, q], True), label="a system message and a user message (no default system prompt then)"),
        Case((turns, True), label="three turns, the last message with a newline inside"),
        Case(([system, *turns], False), label="a system message and three turns, no generation prompt"),
    ]


register(Exercise(
    name="llm.render_chat",
    cases=_chat_cases(),
    oracle=_jinja_chat,
    hint="Each message becomes '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n' (note the newline after "
         "<|im_end|>). If the FIRST message is not a system message, put SmolLM2's default system message first; "
         "if it is, add none. With add_generation_prompt=True end with '<|im_start|>assistant\\n' (and only then).",
    wrong_answers={"no default system prompt": functools.partial(_chat_wrong, default_system="never"),
                   "default system prompt even after a system message": functools.partial(_chat_wrong,
                                                                                          default_system="always"),
                   "no newline after <|im_end|>": functools.partial(_chat_wrong, end="<|im_end|>"),
                   "generation prompt without its newline": functools.partial(_chat_wrong,
                                                                              prompt="<|im_start|>assistant"),
                   "always adds the generation prompt": functools.partial(_chat_wrong, always_prompt=True)},
    nudge="Each message is '<|im_start|>' + role + '\\n' + content + '<|im_end|>\\n'; the default system message "
          "comes first only when the conversation has no system message.",
))
