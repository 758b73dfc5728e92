"""Chatting with an instruction-tuned model (Chapter 7): render the conversation with the model's
chat template, let the model continue after the generation prompt, stop at the end of its turn.

The template (SmolLM2's: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message, then
``<|im_start|>assistant\\n``) is the format the model was fine-tuned on; the end-of-turn token
``<|im_end|>`` is where a reply ends. :func:`next_token_logprobs_many` scores many conversations
that open alike (the same system prompt and solved examples) by reading their shared opening once
and keeping its KV cache: prompt caching. :func:`chat`'s `on_token` hands over each id as it is
generated; :class:`lmcourse.apps.chatbot.ChatSession` streams them as text and keeps the memory of a
conversation. Left out: tool calls, and keeping a session's KV cache between turns (each call
re-reads the whole conversation).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from lmcourse._torch import model_device
from lmcourse.batching import similar_length_batches
from lmcourse.gpt import Completion

__all__ = ["chat", "reply_completion", "prompt_ids", "next_token_logprobs", "next_token_logprobs_many", "next_token_probability"]


def prompt_ids(tokenizer: Any, messages: Sequence[Mapping[str, str]]) -> list[int]:
    """The token ids the model reads for `messages`: the conversation rendered with the chat template
    and the generation prompt, then encoded (its length is what a context budget counts)."""
    return tokenizer.encode(tokenizer.apply_chat_template(list(messages), add_generation_prompt=True))


def chat(messages: Sequence[Mapping[str, str]], *, model: Any, tokenizer: Any, max_tokens: int = 256,
         temperature: float = 0.0, top_p: float | None = None, top_k: int | None = None,
         repetition_penalty: float = 1.0, seed: int = 0, on_token: Callable[[int], None] | None = None) -> Completion:
    """The assistant's next reply to `messages` (``[{"role": "user", "content": "..."}, ...]``).

    `tokenizer` needs ``apply_chat_template``, ``encode``, ``decode`` and ``eos_id`` (the end-of-turn
    token), as :class:`lmcourse.llama.SmolLM2Tokenizer` has; `model` needs ``generate`` as
    :class:`lmcourse.llama.Llama`. The reply stops at the end-of-turn token (``finish_reason="stop"``,
    the token not in the text) or after `max_tokens` tokens (``"length"``). ``temperature=0``: greedy.
    `on_token` is called with each new id (the end-of-turn token too) as soon as it is generated.
    """
    ids = model.generate(prompt_ids(tokenizer, messages), max_tokens, temperature=temperature, top_p=top_p, top_k=top_k,
                         repetition_penalty=repetition_penalty, stop_ids=[tokenizer.eos_id], seed=seed,
                         on_token=on_token)
    return reply_completion(tokenizer, ids)


def reply_completion(tokenizer: Any, ids: Sequence[int]) -> Completion:
    """A reply's generated ids as a :class:`Completion`: ``"stop"`` (the end-of-turn token dropped from
    the text) if they end with ``tokenizer.eos_id``, else ``"length"``."""
    stopped = bool(ids) and ids[-1] == tokenizer.eos_id
    return Completion(tokenizer.decode(ids[:-1] if stopped else ids), "stop" if stopped else "length", len(ids))


def next_token_logprobs(model: Any, tokenizer: Any, messages: Sequence[Mapping[str, str]],
                        reply_prefix: str = "") -> torch.Tensor:
    """The log-probabilities ``(V,)`` (on the CPU) of the assistant's next token after `messages` and the
    start of a reply `reply_prefix`: one forward pass, no generation.

    The rendered conversation and the prefix are encoded as one text, as generation would have
    produced them (a reply's tokens can differ from those of its pieces encoded apart).
    """
    text = tokenizer.apply_chat_template(list(messages), add_generation_prompt=True)
    with torch.no_grad():
        ids = torch.tensor([tokenizer.encode(text + reply_prefix)], device=model_device(model))  # (1, T)
        logits = model(ids)[0, -1]  # (V,): the next token
    return torch.log_softmax(logits.double(), dim=-1).cpu()


def next_token_logprobs_many(model: Any, tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]],
                             reuse_prefix: bool = True, batch_size: int = 16) -> torch.Tensor:
    """:func:`next_token_logprobs` for each conversation, ``(N, V)`` on the CPU, read `batch_size` at a time.

    With `reuse_prefix`, the tokens that every rendered conversation starts with are read once
    and their KV cache is shared: each conversation then reads only its own remaining tokens.
    A causal model's state after the shared tokens does not depend on what follows them, so the
    result is the same (up to float rounding) as reading each conversation whole, which is what
    ``reuse_prefix=False`` does. The remaining tokens are padded on the right into batches of similar
    lengths: a causal model's real tokens never read the padding after them, and each row's logits are
    taken at its own last token. `model` must have ``hidden_states`` (with ``cache=``) and ``decoder``,
    as :class:`lmcourse.llama.Llama`.
    """
    if isinstance(conversations, Mapping) or not conversations:
        raise ValueError("conversations must be a non-empty list of conversations (each a list of messages)")
    ids = [prompt_ids(tokenizer, c) for c in conversations]
    shared = _common_prefix_length(ids) if reuse_prefix else 0
    shared = min(shared, min(map(len, ids)) - 1)  # every conversation keeps one token of its own to read
    logits = [torch.empty(0)] * len(ids)
    device = model_device(model)
    with torch.no_grad():
        cache = model.new_cache()
        if shared > 0:  # fills the cache with the shared tokens
            model.hidden_states(torch.tensor([ids[0][:shared]], device=device), cache=cache)
        for batch in similar_length_batches([len(row) - shared for row in ids], batch_size):
            rows = [ids[i][shared:] for i in batch]
            width = max(map(len, rows))
            padded = torch.tensor([row + [0] * (width - len(row)) for row in rows], device=device)  # (B, T), right padding
            hidden = model.hidden_states(padded, cache=[layer.repeat(len(rows)) for layer in cache] if shared > 0 else None)
            last = hidden[torch.arange(len(rows)), [len(row) - 1 for row in rows]]  # (B, C): each row's last token
            for i, row_logits in zip(batch, model.decoder(last).cpu()):  # (B, C) @ (C, V) -> (B, V)
                logits[i] = row_logits
    return torch.log_softmax(torch.stack(logits).double(), dim=-1)  # (N, V)


def _common_prefix_length(rows: Sequence[Sequence[int]]) -> int:
    """How many leading tokens all `rows` share."""
    length = 0
    for column in zip(*rows):
        if any(token != column[0] for token in column):
            break
        length += 1
    return length


def next_token_probability(model: Any, tokenizer: Any, prompt: str, token_ids: Sequence[int],
                           reply_prefix: str = "") -> float:
    """The probability that the assistant's next token, after the user message `prompt` and the
    start of a reply `reply_prefix`, is one of `token_ids` (:func:`next_token_logprobs`). With
    ``token_ids=[tokenizer.eos_id]`` it is the probability that the reply ends right there.
    """
    ids = sorted(set(token_ids))
    if not ids or not all(isinstance(i, int) and 0 <= i < tokenizer.vocab_size for i in ids):
        raise ValueError(f"token_ids must be a non-empty list of ids in [0, {tokenizer.vocab_size}), got "
                         f"{list(token_ids)[:10]!r}")
    logprobs = next_token_logprobs(model, tokenizer, [{"role": "user", "content": prompt}], reply_prefix)
    return logprobs[ids].exp().sum().item()
