"""Text in, text out: :func:`generate_text`, with the parameters of hosted completion APIs
(Chapter 6), for any decoder of the book (GPT, and Chapter 7's Llama holding SmolLM2).
``model.generate`` does the same for token ids.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

import torch

from lmcourse._checks import check_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.decoding import DecodingSettings, seeded_generator
from lmcourse.token_ids import check_batch_ids
from lmcourse.transformer import DecoderLM

__all__ = ["Completion", "generate_text"]


@dataclass(frozen=True)
class Completion:
    """One generated continuation, as hosted completion APIs return it."""

    text: str  # the continuation (not the prompt), cut before the first stop sequence
    finish_reason: str  # "stop": a stop sequence appeared; "length": max_tokens were generated
    num_tokens: int  # tokens generated, including those that formed the stop sequence


def _check_call(prompt: Any, model: Any, tokenizer: Any, max_tokens: Any, n: Any) -> None:
    if not isinstance(model, DecoderLM):
        raise TypeError(f"model must be a decoder of the book (lmcourse.gpt.GPT, lmcourse.llama.Llama), "
                        f"got {type(model).__name__}")
    if not (callable(getattr(tokenizer, "encode", None)) and callable(getattr(tokenizer, "decode", None))):
        raise TypeError(f"tokenizer must have encode(str) -> list[int] and decode(list[int]) -> str, got "
                        f"{type(tokenizer).__name__}")
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty string, got {prompt!r:.80}")
    check_int("max_tokens", max_tokens, 1)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be an int >= 1 (the number of completions), got {n!r}")


def _check_stop(stop: Any) -> list[str]:
    if stop is None:
        return []
    stops = [stop] if isinstance(stop, str) else stop
    if not isinstance(stops, (list, tuple)) or not all(isinstance(s, str) and s for s in stops):
        raise ValueError(f"stop must be None, a non-empty string or a list of them, got {stop!r:.80}")
    return list(stops)


def _prompt_batch(prompt: str, model: DecoderLM, tokenizer: Any, n: int) -> torch.Tensor:
    """The prompt's ids, `n` times: ``(n, P)``, on the model's device."""
    ids = list(tokenizer.encode(prompt))
    L = model.transformer_config.context_length
    if not ids:
        raise ValueError(f"the tokenizer turned the prompt {prompt!r:.40} into no tokens; give a longer prompt")
    if len(ids) > L:
        raise ValueError(f"the prompt is {len(ids)} tokens long, but the model reads at most "
                         f"context_length={L} tokens; shorten the prompt by {len(ids) - L} tokens")
    batch = torch.tensor([ids] * n, dtype=torch.long, device=model_device(model))  # (n, P)
    check_batch_ids("ids", batch, model.transformer_config.vocab_size)
    return batch


def _finished(text: str, stops: list[str], step: int, max_tokens: int) -> Completion | None:
    """The completion if `text` holds a stop sequence (cut before the earliest) or is
    `max_tokens` long; None while it goes on."""
    found = [i for i in (text.find(s) for s in stops) if i >= 0]
    if found:
        return Completion(text[:min(found)], "stop", step)
    return Completion(text, "length", step) if step == max_tokens else None


def generate_text(prompt: str, *, model: DecoderLM, tokenizer: Any, max_tokens: int = 64, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int | None = None, n: int = 1, stop: str | list[str] | None = None,
                  seed: int = 0, repetition_penalty: float = 1.0,
                  allowed_ids: Collection[int] | None = None) -> list[Completion]:
    """`n` continuations of `prompt`, with the parameters of hosted completion APIs.

    `tokenizer` is anything with ``encode(str) -> list[int]`` and ``decode(list[int]) -> str``.
    Each completion ends after `max_tokens` tokens (``finish_reason="length"``) or when its
    decoded text contains one of the `stop` strings (``"stop"``; the text is cut before it).
    ``temperature=0`` is greedy; `allowed_ids` (e.g. from :func:`lmcourse.constrain.allowed_token_ids`)
    restricts every token to that set (None: any token). The `n` completions are sampled side by
    side with one generator seeded by `seed`, so the same call gives the same texts.

    >>> from lmcourse.gpt import GPT, GPTConfig
    >>> chars = "abc "
    >>> class Chars:
    ...     def encode(self, s): return [chars.index(c) for c in s]
    ...     def decode(self, ids): return "".join(chars[i] for i in ids)
    >>> model = GPT(GPTConfig.tiny(vocab_size=4))
    >>> [c.finish_reason for c in generate_text("ab", model=model, tokenizer=Chars(), max_tokens=3, n=2)]
    ['length', 'length']
    """
    _check_call(prompt, model, tokenizer, max_tokens, n)
    settings = DecodingSettings(temperature=temperature, top_k=top_k, top_p=top_p,
                                repetition_penalty=repetition_penalty, allowed_ids=allowed_ids)
    stops = _check_stop(stop)
    batch = _prompt_batch(prompt, model, tokenizer, n)  # (n, P)
    generator = seeded_generator(seed, batch.device)
    new_ids: list[list[int]] = [[] for _ in range(n)]
    results: list[Completion | None] = [None] * n
    with eval_mode(model):
        steps = model.next_tokens(batch, settings, generator, use_cache=True)
        for step, token in zip(range(1, max_tokens + 1), steps):
            for row, t in enumerate(token.tolist()):
                if results[row] is None:
                    new_ids[row].append(t)
                    results[row] = _finished(tokenizer.decode(new_ids[row]), stops, step, max_tokens)
            if all(r is not None for r in results):
                break
    return results  # type: ignore[return-value]
