"""Greedy replies to many prompts at once (Chapters 8, 9 and 11): left padding and a padding mask.

Generating one prompt's reply, every new token reads all of the model's weights (540 MB of float32
for SmolLM2-135M) to do a few hundred million multiply-adds: on a CPU the reading is the cost. A batch
of B prompts shares each read among B tokens, so it is several times faster for the same replies.

Prompts have different lengths, so they are padded on the **left**: every row's newest token is then
in the last column, and one step appends one column. A padding mask keeps every real token from
reading the padding (a padding position may read the padding before it, so that no row of the
attention is empty). Rotary positions make the shift harmless: a row whose tokens start at position
``p`` instead of 0 gets the same attention scores, because RoPE's score between a query and a key
depends only on their distance. A model with absolute positions (GPT-2's learned table) would need
its own position ids per row, so it is refused.

Greedy decoding only (with an optional set of allowed tokens): sampling would need one random stream
per row to match :func:`chat`.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import torch

from lmcourse._checks import check_positive_int
from lmcourse._torch import model_device
from lmcourse.attention import KVCache
from lmcourse.batching import similar_length_batches
from lmcourse.decoding import allow_only, check_stop_ids, collect_tokens
from lmcourse.gpt import Completion
from lmcourse.llama.chat import prompt_ids, reply_completion
from lmcourse.transformer import DecoderLM

__all__ = ["greedy_batch", "greedy_batch_scored", "greedy_batch_variants", "chat_batch"]


def _check_prompts(model: Any, prompts: Any, max_new_tokens: int) -> None:
    if not isinstance(model, DecoderLM) or model.positions is not None or model.decoder is None:
        raise TypeError("greedy_batch needs a decoder with rotary positions and a full output layer "
                        f"(lmcourse.llama.Llama), got {type(model).__name__}; generate one prompt at a time "
                        "with model.generate instead")
    if isinstance(prompts, (str, bytes)) or not isinstance(prompts, Sequence) or not prompts:
        raise ValueError("prompts must be a non-empty list of prompts, each a list of token ids")
    vocab, context = model.transformer_config.vocab_size, model.transformer_config.context_length
    for i, prompt in enumerate(prompts):
        if isinstance(prompt, (str, bytes)) or not isinstance(prompt, Sequence) or not prompt or \
                not all(isinstance(t, int) and not isinstance(t, bool) and 0 <= t < vocab for t in prompt):
            raise ValueError(f"prompt {i} must be a non-empty list of token ids in [0, {vocab}), got {prompt!r:.80}")
        if len(prompt) + max_new_tokens > context:
            raise ValueError(f"prompt {i} has {len(prompt)} tokens; with max_new_tokens={max_new_tokens} it would "
                             f"pass the model's context_length={context}: shorten the prompt or ask for fewer tokens")


def _left_padded(prompts: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids ``(B, T)`` with each prompt at the right end, and ``real`` ``(B, T)``: False on the padding."""
    width = max(map(len, prompts))
    ids = torch.full((len(prompts), width), pad_id, dtype=torch.long)
    real = torch.zeros(len(prompts), width, dtype=torch.bool)
    for row, prompt in enumerate(prompts):
        ids[row, width - len(prompt):] = torch.tensor(prompt)
        real[row, width - len(prompt):] = True
    return ids, real


@torch.no_grad()
def _prefill(model: DecoderLM, ids: torch.Tensor, real: torch.Tensor) -> tuple[list[KVCache], torch.Tensor, bool]:
    """Read the left-padded prompts ``(B, T)`` once: the KV cache, each row's last hidden state ``(B, C)``,
    and whether any row is padded (no padding: no mask, the fast path)."""
    cache = model.new_cache()
    # a real query reads real keys only; a padding query reads the padding before it (never an empty row)
    mask = (real[:, None, :] | ~real[:, :, None])[:, None]  # (B, 1, T, T), combined with the causal mask
    padded = not bool(real.all())
    hidden = model.hidden_states(ids, cache=cache, mask=mask if padded else None)[:, -1]  # (B, C): each row's last
    return cache, hidden, padded


@torch.no_grad()
def _greedy_steps(model: DecoderLM, cache: list[KVCache], hidden: torch.Tensor, real: torch.Tensor, padded: bool,
                  allowed_ids: Sequence[int] | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Each step's greedy token of every row ``(B,)`` and its log-probability under the model, before
    any constraint ``(B,)``, after :func:`_prefill`: one new column per step. The cache is extended
    with new tensors (``KVCache.append`` never writes into the old), so a shallow copy of the prefilled
    cache can be continued in several ways."""
    while True:
        logits = model.decoder(hidden)  # (B, C) @ (C, V) -> (B, V)
        token = (logits if allowed_ids is None else allow_only(logits, allowed_ids)).argmax(dim=-1)  # (B,)
        yield token, torch.log_softmax(logits.double(), dim=-1).gather(1, token[:, None])[:, 0]
        real = torch.cat([real, torch.ones(len(real), 1, dtype=torch.bool, device=real.device)], dim=1)  # (B, S + 1)
        hidden = model.hidden_states(token[:, None], cache=cache, mask=real[:, None, None, :] if padded else None)[:, -1]


Scored = tuple[list[int], list[float]]


def _generate(model: DecoderLM, prompts: Sequence[Sequence[int]], max_new_tokens: int,
              stop_ids: int | Sequence[int] | None, variants: Sequence[Sequence[int] | None], batch_size: int,
              pad_id: int) -> list[list[Scored]]:
    """For each of `variants` (an allowed set of ids, or None), every prompt's greedy continuation with
    its log-probabilities; the prompts of a batch are read once for all variants."""
    check_positive_int("max_new_tokens", max_new_tokens)
    check_positive_int("batch_size", batch_size)
    _check_prompts(model, prompts, max_new_tokens)
    vocab = model.transformer_config.vocab_size
    stops = check_stop_ids(stop_ids, vocab)
    for allowed_ids in variants:
        if allowed_ids is not None:
            allow_only(torch.zeros(1, vocab), allowed_ids)  # an empty list or an id outside the vocabulary: refused now
    out: list[list[Scored]] = [[([], []) for _ in prompts] for _ in variants]
    device = model_device(model)
    was_training = model.training
    model.eval()
    try:
        for rows in similar_length_batches([len(p) for p in prompts], batch_size):
            ids, real = (t.to(device) for t in _left_padded([list(prompts[i]) for i in rows], pad_id))
            cache, hidden, padded = _prefill(model, ids, real)
            for variant, allowed_ids in enumerate(variants):
                step_logprobs: list[torch.Tensor] = []  # (B,) per step; a row keeps as many as it kept tokens

                def tokens_only(steps: Iterator[tuple[torch.Tensor, torch.Tensor]]) -> Iterator[torch.Tensor]:
                    for token, logprob in steps:
                        step_logprobs.append(logprob)
                        yield token

                steps = _greedy_steps(model, [copy.copy(layer) for layer in cache], hidden, real, padded, allowed_ids)
                for row, (i, tokens) in enumerate(zip(rows, collect_tokens(tokens_only(steps), len(rows),
                                                                          max_new_tokens, stops))):
                    out[variant][i] = (tokens, [step_logprobs[k][row].item() for k in range(len(tokens))])
    finally:
        model.train(was_training)
    return out


def greedy_batch_scored(model: DecoderLM, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
                        stop_ids: int | Sequence[int] | None = None, allowed_ids: Sequence[int] | None = None,
                        batch_size: int = 16, pad_id: int = 0) -> list[Scored]:
    """:func:`greedy_batch`'s continuations, each with the log-probability of every token under the
    model (``log_softmax`` of its logits, before `allowed_ids` narrows the choice): the numbers a
    teacher-forced pass over prompt and reply would give, read off during generation instead."""
    return _generate(model, prompts, max_new_tokens, stop_ids, [allowed_ids], batch_size, pad_id)[0]


def greedy_batch_variants(model: DecoderLM, prompts: Sequence[Sequence[int]], max_new_tokens: int,
                          variants: Sequence[Sequence[int] | None], *, stop_ids: int | Sequence[int] | None = None,
                          batch_size: int = 16, pad_id: int = 0) -> list[list[list[int]]]:
    """``[greedy_batch(model, prompts, ..., allowed_ids=v) for v in variants]`` (None: no constraint),
    the same numbers, with each batch of prompts read once: the replies differ only after the prompt,
    so the KV cache of the prompt is shared, and for long prompts reading them is most of the cost."""
    if isinstance(variants, (str, bytes)) or not isinstance(variants, Sequence) or not variants:
        raise ValueError("variants must be a non-empty list, each a list of allowed token ids or None")
    for k, allowed_ids in enumerate(variants):
        if allowed_ids is not None and (isinstance(allowed_ids, (str, bytes)) or not isinstance(allowed_ids, Sequence)):
            raise ValueError(f"variants[{k}] must be a list of allowed token ids or None, got {allowed_ids!r:.40}: "
                             "for a single constraint, pass [None, ids] or call greedy_batch(allowed_ids=ids)")
    scored = _generate(model, prompts, max_new_tokens, stop_ids, variants, batch_size, pad_id)
    return [[tokens for tokens, _ in replies] for replies in scored]


def greedy_batch(model: DecoderLM, prompts: Sequence[Sequence[int]], max_new_tokens: int, *,
                 stop_ids: int | Sequence[int] | None = None, allowed_ids: Sequence[int] | None = None,
                 batch_size: int = 16, pad_id: int = 0) -> list[list[int]]:
    """The greedy continuation of each prompt (a list of token ids), as ``model.generate(prompt,
    max_new_tokens, temperature=0, stop_ids=stop_ids, allowed_ids=allowed_ids)`` gives it one by one
    (the same up to float rounding): at most `max_new_tokens` ids, ending with a stop id if one was
    generated; `allowed_ids` restricts every choice to those ids (a format constraint).

    Prompts are sorted by length and read up to `batch_size` at a time, in batches of similar lengths so
    that little padding is needed; the answers come back in the order of `prompts`. In eval mode (dropout off) for the call."""
    return [tokens for tokens, _ in greedy_batch_scored(model, prompts, max_new_tokens, stop_ids=stop_ids,
                                                        allowed_ids=allowed_ids, batch_size=batch_size, pad_id=pad_id)]


def chat_batch(conversations: Sequence[Sequence[Mapping[str, str]]], *, model: DecoderLM, tokenizer: Any,
               max_tokens: int = 256, batch_size: int = 16) -> list[Completion]:
    """:func:`lmcourse.llama.chat`'s greedy reply to each conversation, generated in batches
    (:func:`greedy_batch`): the reply stops at the end-of-turn token (``finish_reason="stop"``, the
    token not in the text) or after `max_tokens` tokens (``"length"``)."""
    if isinstance(conversations, Mapping) or not isinstance(conversations, Sequence) or not conversations:
        raise ValueError("conversations must be a non-empty list of conversations (each a list of messages)")
    prompts = [prompt_ids(tokenizer, messages) for messages in conversations]
    replies = greedy_batch(model, prompts, max_tokens, stop_ids=[tokenizer.eos_id], batch_size=batch_size,
                           pad_id=tokenizer.eos_id)
    return [reply_completion(tokenizer, ids) for ids in replies]
