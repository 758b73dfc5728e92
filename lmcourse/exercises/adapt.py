"""Checkers for the exercises of Chapter 8 (adapting a pretrained LLM): the LoRA forward pass, the
SFT label mask, the DPO loss and LoRA's parameter count.

The oracles are the package's production code, itself tested against ``peft`` and hand-worked
values: :class:`lmcourse.lora.LoRALinear` for the forward pass, :func:`lmcourse.sft.encode_example`
for the mask (on a real rendered conversation), :func:`lmcourse.dpo.dpo_loss` for the loss, and
:func:`lmcourse.lora.apply_lora` with :func:`lmcourse.lora.trainable_parameters` for the count.

>>> _lora_parameters([(960, 576), (576, 576)], 8)  # 8 (576 + 960) + 8 (576 + 576)
21504
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse import dpo, lora
from lmcourse.exercises.core import Case, Exercise, register

# --- adapt.lora_forward ----------------------------------------------------------------------


def _lora_case(seed: int, lead: tuple[int, ...], d_in: int, d_out: int, r: int, alpha: float, bias: bool,
               label: str) -> Case:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(*lead, d_in, generator=g, dtype=torch.float64)
    weight = torch.randn(d_out, d_in, generator=g, dtype=torch.float64) / d_in ** 0.5
    b = torch.randn(d_out, generator=g, dtype=torch.float64) if bias else None
    A = torch.randn(r, d_in, generator=g, dtype=torch.float64)
    B = torch.randn(d_out, r, generator=g, dtype=torch.float64)  # not zero, so the update shows
    return Case((x, weight, b, A, B, alpha, r), label=label)


def _lora_forward(x, weight, bias, A, B, alpha, r):
    """The output of lmcourse.lora.LoRALinear around a linear layer holding `weight` and `bias`."""
    base = nn.Linear(weight.shape[1], weight.shape[0], bias=bias is not None, dtype=weight.dtype)
    layer = lora.LoRALinear(base, r=r, alpha=alpha)
    with torch.no_grad():
        base.weight.copy_(weight)
        if bias is not None:
            base.bias.copy_(bias)
        layer.A.copy_(A)
        layer.B.copy_(B)
        return layer(x).numpy()


def _lora_wrong(x, weight, bias, A, B, alpha, r, *, scale=None, swap=False, use_bias=True):
    scale = alpha / r if scale is None else scale
    update = (x @ B.T) @ A.T if swap else (x @ A.T) @ B.T
    h = x @ weight.T + scale * update
    return h + bias if bias is not None and use_bias else h


_LORA_CASES = [
    _lora_case(1, (3,), 6, 4, 2, 4.0, True, "3 inputs of width 6, d_out 4, rank 2, alpha 4"),
    _lora_case(2, (2, 5), 8, 8, 4, 16.0, False, "a batch of 2 sequences of 5 (3-D input), square 8 x 8, rank 4, no bias"),
    _lora_case(3, (4,), 8, 8, 8, 8.0, True, "square 8 x 8 at rank 8 (alpha / r = 1)"),
    _lora_case(4, (1, 3), 10, 6, 1, 2.0, True, "rank 1, alpha 2"),
    _lora_case(5, (2,), 16, 12, 4, 1.0, False, "alpha smaller than r: the update is scaled down"),
]

register(Exercise(
    name="adapt.lora_forward",
    cases=_LORA_CASES,
    oracle=_lora_forward,
    hint="The frozen layer's output x @ weight.T (plus bias, when it is not None), plus the low-rank update: "
         "first x @ A.T, shape (..., r), then @ B.T, shape (..., d_out), the whole update multiplied by alpha / r.",
    nudge="x @ weight.T + bias + (alpha / r) * (x @ A.T) @ B.T; skip the bias when it is None.",
    wrong_answers={"forgets the alpha / r scale": lambda *a: _lora_wrong(*a, scale=1.0),
                   "scales by alpha, not alpha / r": lambda x, w, b, A, B, alpha, r: _lora_wrong(x, w, b, A, B, alpha, r,
                                                                                                  scale=alpha),
                   "applies B before A": lambda *a: _lora_wrong(*a, swap=True),
                   "ignores the bias": lambda *a: _lora_wrong(*a, use_bias=False),
                   "returns the frozen layer only": lambda x, w, b, *rest: x @ w.T + (0 if b is None else b)},
))

# --- adapt.assistant_labels ------------------------------------------------------------------


def _chat_case(messages: list[dict[str, str]], label: str) -> Case:
    """A real conversation rendered with SmolLM2's template over a byte-level tokenizer (one token per
    byte), with the mask that lmcourse.sft.encode_example computes for it."""
    from lmcourse.bpe import ByteBPE
    from lmcourse.llama import SMOLLM_PATTERN, SmolLM2Tokenizer
    from lmcourse.sft import IGNORE_INDEX, encode_example

    template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                "{{ '<|im_start|>system\nS<|im_end|>\n' }}{% endif %}"
                "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
                "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")  # tests/test_sft.py's
    specials = {"<|endoftext|>": 0, "<|im_start|>": 1, "<|im_end|>": 2}
    bpe = ByteBPE.from_vocab({bytes([b]): b + 3 for b in range(256)}, [], special_tokens=specials, pattern=SMOLLM_PATTERN)
    tokenizer = SmolLM2Tokenizer(bpe, 259, template, bos_id=1, eos_id=2)
    ids, labels = encode_example(tokenizer, messages, max_len=200)
    return Case((ids, [label != IGNORE_INDEX for label in labels]), label=label)


def _assistant_labels(input_ids, is_assistant):
    return [token if learned else -100 for token, learned in zip(input_ids, is_assistant)]


def _labels_in_place(input_ids, is_assistant):
    """Wrong: the right labels, but written over the caller's list of ids."""
    for t, learned in enumerate(is_assistant):
        if not learned:
            input_ids[t] = -100
    return input_ids


_LABEL_CASES = [
    Case(([5, 6, 7, 8], [False, False, True, True]), label="a prompt of two tokens, an answer of two"),
    Case(([9, 9, 9], [False, False, False]), label="nothing to learn"),
    Case(([4, 2], [True, True]), label="everything learned"),
    Case(([1, 2, 3, 4, 5, 6, 7], [False, True, True, False, False, True, False]), label="two replies in one conversation"),
    _chat_case([{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}],
               "one exchange rendered with SmolLM2's template (a default system message first), one token per byte"),
    _chat_case([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"},
                {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "Year?"},
                {"role": "assistant", "content": "1905"}],
               "a conversation of two turns rendered with SmolLM2's template, one token per byte"),
]

register(Exercise(
    name="adapt.assistant_labels",
    cases=_LABEL_CASES,
    oracle=_assistant_labels,
    hint="Walk over the ids and the flags together (zip). Keep the id where the flag is True and write -100 "
         "elsewhere; do not shift anything: the loss pairs position t's prediction with the label at t + 1. "
         "Return a list of ints as long as input_ids.",
    nudge="One label per position, no shift: the id where is_assistant is True, -100 where it is False.",
    wrong_answers={"learns the prompt instead": lambda ids, flags: _assistant_labels(ids, [not f for f in flags]),
                   "masks with 0 instead of -100": lambda ids, flags: [t if f else 0 for t, f in zip(ids, flags)],
                   "shifts the labels by one": lambda ids, flags: _assistant_labels(ids, flags)[1:] + [-100],
                   "learns every token": lambda ids, flags: list(ids),
                   "overwrites input_ids in place": _labels_in_place,
                   "returns a tensor, not a list": lambda ids, flags: torch.tensor(_assistant_labels(ids, flags))},
    rel_tol=0.0, abs_tol=0.0,
))

# --- adapt.dpo_loss --------------------------------------------------------------------------


def _dpo_oracle(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta):
    return dpo.dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta)[0].numpy()  # a 0-d array


def _dpo_case(seed: int, n: int, beta: float, label: str, equal: bool = False) -> Case:
    g = torch.Generator().manual_seed(seed)
    ref = -torch.rand(2, n, generator=g, dtype=torch.float64) * 40 - 5  # log-probabilities of whole replies
    policy = ref.clone() if equal else ref + torch.randn(2, n, generator=g, dtype=torch.float64) * 5
    return Case((policy[0], policy[1], ref[0], ref[1], beta), label=label)


def _dpo_wrong(pc, pr, rc, rr, beta, *, sign=1.0, reference=True, reduce="mean", chosen_beta_only=False, naive=False):
    if not reference:
        rc, rr = torch.zeros_like(rc), torch.zeros_like(rr)
    margin = beta * (pc - rc) - (1.0 if chosen_beta_only else beta) * (pr - rr)
    losses = -torch.sigmoid(margin) if naive else -sign * F.logsigmoid(margin)
    return losses.sum() if reduce == "sum" else losses.mean()


_DPO_CASES = [
    _dpo_case(1, 3, 0.1, "policy equal to the reference: the loss is log 2", equal=True),
    _dpo_case(2, 4, 0.1, "a batch of 4 pairs, beta 0.1"),
    _dpo_case(3, 1, 0.5, "one pair, beta 0.5"),
    _dpo_case(4, 6, 2.0, "beta 2: large margins"),
    _dpo_case(5, 5, 0.01, "beta 0.01: small margins"),
]

register(Exercise(
    name="adapt.dpo_loss",
    cases=_DPO_CASES,
    oracle=_dpo_oracle,
    hint="The implicit reward of a reply is beta * (policy log-probability - reference log-probability). The "
         "margin is the chosen reply's reward minus the rejected reply's. The loss of a pair is "
         "-log(sigmoid(margin)); use F.logsigmoid for it, and return the mean over the batch as a 0-d tensor.",
    nudge="A pair's loss is -log sigmoid(beta * (chosen log-ratio - rejected log-ratio)), each log-ratio being "
          "policy minus reference; average the pairs.",
    wrong_answers={"forgets the minus sign": lambda *a: _dpo_wrong(*a, sign=-1.0),
                   "leaves out the reference": lambda *a: _dpo_wrong(*a, reference=False),
                   "uses -sigmoid instead of -logsigmoid": lambda *a: _dpo_wrong(*a, naive=True),
                   "applies beta to the chosen reply only": lambda *a: _dpo_wrong(*a, chosen_beta_only=True),
                   "sums over the batch": lambda *a: _dpo_wrong(*a, reduce="sum")},
))

# --- adapt.lora_parameters -------------------------------------------------------------------


def _lora_parameters(shapes, r):
    """Count with lmcourse.lora: real nn.Linear layers of these shapes, adapted at rank r."""
    model = nn.ModuleDict({f"layer{k}": nn.Linear(d_in, d_out, bias=False) for k, (d_out, d_in) in enumerate(shapes)})
    lora.apply_lora(model, list(model.keys()), r=r, alpha=2 * r)
    return lora.trainable_parameters(model)


_SMOLLM_BLOCK = [(960, 576), (576, 576), (1536, 576), (1536, 576), (576, 1536)]  # in_proj, out_proj, gate, up, down
_COUNT_CASES = [
    Case(([(4, 6)], 2), label="one layer 6 -> 4 at rank 2"),
    Case(([(8, 8), (16, 8), (8, 16)], 4), label="three layers at rank 4"),
    Case((_SMOLLM_BLOCK, 8), label="one SmolLM2 block at rank 8"),
    Case((_SMOLLM_BLOCK * 30, 8), label="SmolLM2's 30 blocks at rank 8"),
    Case(([(960, 576), (576, 576)] * 30, 64), label="SmolLM2's attention layers at rank 64"),
]

register(Exercise(
    name="adapt.lora_parameters",
    cases=_COUNT_CASES,
    oracle=_lora_parameters,
    hint="A layer d_in -> d_out gets A of shape (r, d_in) and B of shape (d_out, r): r * (d_in + d_out) "
         "numbers. Add this up over every (d_out, d_in) in shapes.",
    nudge="Each adapted layer adds two small matrices, A (r, d_in) and B (d_out, r); add them up over every layer.",
    wrong_answers={"counts a full matrix per layer": lambda shapes, r: sum(r * i * o for o, i in shapes),
                   "counts A only": lambda shapes, r: sum(r * i for o, i in shapes),
                   "counts the first layer only": lambda shapes, r: r * (shapes[0][0] + shapes[0][1])},
    rel_tol=0.0, abs_tol=0.0,
))
