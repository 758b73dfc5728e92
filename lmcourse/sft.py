"""Supervised fine-tuning (SFT) on chat-formatted examples, with the loss on the assistant's tokens
only (Chapter 8).

An example is a conversation (``[{"role": "user", ...}, {"role": "assistant", ...}]``) rendered
with the model's own chat template, exactly as :func:`lmcourse.llama.chat` renders a prompt, so
that training and inference see the same format. :func:`encode_example` returns the token ids and
*labels*: ``labels[t] = input_ids[t]`` where token ``t`` belongs to an assistant reply (its text and
its end-of-turn token ``<|im_end|>``, which teaches the model to stop), and :data:`IGNORE_INDEX`
(-100) on everything else: the system and user turns, the template's role headers and the newline
after each end-of-turn. :func:`sft_loss` is the mean cross-entropy of predicting each labelled token
from the tokens before it; masked positions add nothing to the loss or to the gradient.

Batches are *padded*, not packed (:func:`pad_batch`): each example is one row, shorter rows are
filled on the right with ``pad_id`` and label -100. With causal attention a real token never sees
the padding after it, so an example's loss does not depend on its batch (tested); packing several
examples into one row would need a block-diagonal attention mask (or cross-example attention) to
be as exact, and saves little on a few hundred short examples sorted into batches of similar length.

A length limit that cuts away any answer token raises :class:`AnswerTruncatedError` (or, with
``encode_examples(..., drop_truncated=True)``, drops the example and reports its index): an
example whose answer is gone would teach nothing, and one whose answer is cut would teach the
model to stop mid-reply. :func:`train_sft` trains through :func:`lmcourse.train.train_on_examples`,
so the update (optimizer, schedule, clipping, divergence checks) is the book's one update step.

Left out: packing, loss on the prompt as an option, gradient accumulation, and chat templates
that do not end a turn with the tokenizer's ``eos_id``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from lmcourse._checks import check_positive_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.train import History, TrainConfig, check_example_config, train_on_examples

__all__ = ["IGNORE_INDEX", "DEFAULT_PAD_ID", "AnswerTruncatedError", "render_segments", "encode_example",
           "encode_examples", "pad_batch", "answer_logits", "token_losses", "sft_loss", "example_losses",
           "mean_example_loss", "greedy_matches", "length_sorted_batches", "train_sft"]

IGNORE_INDEX = -100  # the label of a position that is not learned (PyTorch's cross_entropy default)
DEFAULT_PAD_ID = 0  # SmolLM2's <|endoftext|>; any id would do: padding is masked and follows the real tokens

Messages = Sequence[Mapping[str, str]]
Encoded = tuple[list[int], list[int]]  # (input_ids, labels), both of length T


class AnswerTruncatedError(ValueError):
    """The length limit would cut away some of an example's answer tokens."""


def render_segments(tokenizer: Any, messages: Messages) -> list[tuple[str, bool]]:
    """The rendered conversation cut into ``(text, is_assistant_turn)`` pieces whose concatenation is
    ``tokenizer.apply_chat_template(messages)``. The text before each assistant turn is exactly the
    prompt :func:`lmcourse.llama.chat` would give the model for that turn.

    An assistant piece is the reply, the end-of-turn token and the template's text after it.
    """
    if not messages or messages[-1].get("role") != "assistant":
        raise ValueError("an SFT example must end with an assistant message (the reply to learn)")
    pieces: list[tuple[str, bool]] = []
    done = ""
    for k, message in enumerate(messages):
        is_reply = message.get("role") == "assistant"
        if is_reply:
            if k == 0:
                raise ValueError("an assistant message needs a user (or system) message before it")
            prompt = tokenizer.apply_chat_template(messages[:k], add_generation_prompt=True)
            pieces.append((prompt[len(done):], False))
            done = prompt
        rendered = tokenizer.apply_chat_template(messages[:k + 1])
        if not rendered.startswith(done):
            raise ValueError("the chat template does not render a conversation as an extension of its "
                             "beginning; this module cannot mask such a template")
        pieces.append((rendered[len(done):], is_reply))
        done = rendered
    return [(text, is_reply) for text, is_reply in pieces if text]


def _reply_labels(ids: list[int], eos_id: int) -> list[int]:
    """Labels of an assistant piece: learn up to and including its last end-of-turn token."""
    if eos_id not in ids:
        raise ValueError(f"the chat template does not end the assistant's turn with eos_id={eos_id}")
    end = len(ids) - ids[::-1].index(eos_id)  # one past the last eos
    return ids[:end] + [IGNORE_INDEX] * (len(ids) - end)


def encode_example(tokenizer: Any, messages: Messages, max_len: int) -> Encoded:
    """``(input_ids, labels)`` of one conversation, at most `max_len` tokens: labels are the ids on
    the assistant replies and their end-of-turn tokens, :data:`IGNORE_INDEX` elsewhere.

    Raises :class:`AnswerTruncatedError` if `max_len` would cut away any labelled token; tokens after
    the last labelled one (the template's closing newline) are cut without complaint.
    """
    check_positive_int("max_len", max_len)
    input_ids: list[int] = []
    labels: list[int] = []
    for text, is_reply in render_segments(tokenizer, messages):
        ids = tokenizer.encode(text)
        input_ids += ids
        labels += _reply_labels(ids, tokenizer.eos_id) if is_reply else [IGNORE_INDEX] * len(ids)
    lost = sum(label != IGNORE_INDEX for label in labels[max_len:])
    if lost:
        learned = sum(label != IGNORE_INDEX for label in labels)
        raise AnswerTruncatedError(
            f"max_len={max_len} would cut away {lost} of the {learned} answer tokens of this example "
            f"({len(input_ids)} tokens in all); raise max_len, shorten the example, or drop it with "
            f"encode_examples(..., drop_truncated=True)")
    return input_ids[:max_len], labels[:max_len]


def encode_examples(tokenizer: Any, conversations: Sequence[Messages], max_len: int, *,
                    drop_truncated: bool = False) -> tuple[list[Encoded], list[int]]:
    """:func:`encode_example` for each conversation. Returns the encoded examples and the indices of
    those dropped because `max_len` cut their answers: with `drop_truncated` only; otherwise the first
    such example raises :class:`AnswerTruncatedError`, naming its index."""
    encoded, dropped = [], []
    for k, messages in enumerate(conversations):
        try:
            encoded.append(encode_example(tokenizer, messages, max_len))
        except AnswerTruncatedError as error:
            if not drop_truncated:
                raise AnswerTruncatedError(f"example {k}: {error}") from None
            dropped.append(k)
    return encoded, dropped


def pad_batch(examples: Sequence[Encoded], pad_id: int = DEFAULT_PAD_ID) -> tuple[torch.Tensor, torch.Tensor]:
    """Examples as one batch ``(B, T)`` of ids and ``(B, T)`` of labels, T the longest: shorter rows
    are padded on the right with `pad_id` (labels :data:`IGNORE_INDEX`).

    >>> ids, labels = pad_batch([([5, 6, 7], [-100, 6, 7]), ([5, 8], [-100, 8])])
    >>> ids.tolist(), labels.tolist()
    ([[5, 6, 7], [5, 8, 0]], [[-100, 6, 7], [-100, 8, -100]])
    """
    if not examples:
        raise ValueError("pad_batch needs at least one example")
    width = max(len(ids) for ids, _ in examples)
    ids = [list(i) + [pad_id] * (width - len(i)) for i, _ in examples]
    labels = [list(lab) + [IGNORE_INDEX] * (width - len(lab)) for _, lab in examples]
    return torch.tensor(ids, dtype=torch.long), torch.tensor(labels, dtype=torch.long)


def answer_logits(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor
                  ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The logits ``(K, V)`` that predict the K labelled tokens of a batch, their targets ``(K,)`` and
    the row each belongs to ``(K,)``. Position ``t`` of ``input_ids[:, :-1]`` predicts token ``t+1``.

    A model with ``hidden_states`` and an output layer ``decoder`` (the book's decoders, Llama
    included) gets its output layer applied at the labelled positions only: the prompt's logits are
    never used, and with a 49,152-word vocabulary they would cost a fifth of SmolLM2's forward pass.
    Any other model maps ids ``(B, T)`` to logits ``(B, T, V)``, which are then selected."""
    if input_ids.shape != labels.shape or input_ids.dim() != 2:
        raise ValueError(f"input_ids and labels must both be (B, T), got {tuple(input_ids.shape)} and "
                         f"{tuple(labels.shape)}")
    targets = labels[:, 1:]  # (B, T-1)
    chosen = targets != IGNORE_INDEX  # (B, T-1)
    if hasattr(model, "hidden_states") and getattr(model, "decoder", None) is not None:
        logits = model.decoder(model.hidden_states(input_ids[:, :-1])[chosen])  # (K, C) @ (C, V) -> (K, V)
    else:
        logits = model(input_ids[:, :-1])[chosen]  # (B, T-1, V) -> (K, V)
    rows = torch.arange(len(labels), device=labels.device)[:, None].expand_as(targets)[chosen]  # (K,)
    return logits, targets[chosen], rows


def token_losses(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy ``(B, T-1)`` of predicting each token from those before it: entry ``t`` is the
    loss on token ``t+1``, and exactly 0 (with no gradient) where its label is :data:`IGNORE_INDEX`.
    `model` maps ids ``(B, T)`` to logits ``(B, T, V)``, as :class:`lmcourse.llama.Llama` does (see
    :func:`answer_logits`: only the labelled positions' logits are computed)."""
    logits, targets, _ = answer_logits(model, input_ids, labels)
    chosen = labels[:, 1:] != IGNORE_INDEX
    losses = torch.zeros(chosen.shape, dtype=logits.dtype, device=logits.device)  # (B, T-1)
    return losses.masked_scatter(chosen, F.cross_entropy(logits, targets, reduction="none"))


def sft_loss(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The mean cross-entropy over every labelled (assistant) token of the batch, each token weighted
    equally, so a long answer counts more than a short one (as ``transformers`` does)."""
    count = (labels[:, 1:] != IGNORE_INDEX).sum()
    if not count:
        raise ValueError("the batch has no labelled tokens: nothing to learn")
    return token_losses(model, input_ids, labels).sum() / count


def example_losses(model: nn.Module, input_ids: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each example's mean cross-entropy over its own labelled tokens ``(B,)`` (NaN if it has none)."""
    counts = (labels[:, 1:] != IGNORE_INDEX).sum(dim=1)  # (B,)
    return token_losses(model, input_ids, labels).sum(dim=1) / counts


def mean_example_loss(model: nn.Module, examples: Sequence[Encoded], batch_size: int = 8,
                      pad_id: int = DEFAULT_PAD_ID) -> float:
    """The mean over `examples` of each one's :func:`example_losses` (nats per answer token), in eval mode
    and without gradients, in batches of `batch_size` in the given order: a validation loss. An example
    with no labelled token has no loss (NaN) and is left out of the mean."""
    if not examples:
        raise ValueError("mean_example_loss needs at least one encoded example")
    check_positive_int("batch_size", batch_size)
    device = model_device(model)
    with eval_mode(model):
        losses = torch.cat([example_losses(model, *(t.to(device) for t in pad_batch(examples[i:i + batch_size], pad_id)))
                            for i in range(0, len(examples), batch_size)])  # (N,)
    return float(losses.nanmean())


@torch.no_grad()
def greedy_matches(model: nn.Module, examples: Sequence[Encoded], batch_size: int = 8,
                   pad_id: int = DEFAULT_PAD_ID) -> torch.Tensor:
    """For each encoded example, whether greedy decoding from its prompt would write exactly its
    answer tokens (and the end-of-turn token): ``(N,)`` booleans, from one forward pass per batch.

    Greedy decoding picks the most likely token at every step. If, reading the reference answer,
    the model's most likely next token *is* the reference token at every labelled position, then
    greedy decoding, which starts from the same prompt, writes the same tokens one by one; if it is
    not at some position, the reply departs from the reference there. So this equals "greedy
    generation reproduces the answer token for token", at the price of scoring, not generating."""
    if not examples:
        raise ValueError("greedy_matches needs at least one encoded example")
    check_positive_int("batch_size", batch_size)
    device = model_device(model)
    matches = torch.empty(len(examples), dtype=torch.bool)
    for batch in length_sorted_batches(examples, batch_size):
        input_ids, labels = (t.to(device) for t in pad_batch([examples[i] for i in batch], pad_id))
        logits, targets, rows = answer_logits(model, input_ids, labels)  # (K, V), (K,), (K,)
        wrong = torch.zeros(len(labels), dtype=torch.long, device=device)
        wrong.index_add_(0, rows, (logits.argmax(dim=-1) != targets).long())  # (B,): wrong tokens per example
        matches[batch] = (wrong == 0).cpu()
    return matches


def length_sorted_batches(examples: Sequence[Encoded], batch_size: int) -> list[list[int]]:
    """The indices of `examples` in batches of `batch_size`, shortest first, so that each batch
    needs little padding (for scoring, where the order does not matter; results go back by index).

    >>> length_sorted_batches([([1, 2, 3], []), ([1], []), ([1, 2], [])], 2)
    [[1, 2], [0]]
    """
    check_positive_int("batch_size", batch_size)
    order = sorted(range(len(examples)), key=lambda i: len(examples[i][0]))
    return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]


def train_sft(model: nn.Module, examples: Sequence[Encoded], config: TrainConfig, *, pad_id: int = DEFAULT_PAD_ID,
              history: History | None = None, validate: Callable[[int], dict[str, str]] | None = None) -> History:
    """Fine-tune `model`'s trainable parameters (all, or a LoRA adapter's) on encoded examples with
    :func:`sft_loss`, through :func:`lmcourse.train.train_on_examples`: batches of
    ``config.batch_size`` examples of similar length, reshuffled every epoch, padded with `pad_id`.
    ``history.tokens_seen`` counts the real (unpadded) tokens read."""
    check_example_config(config, "train_sft")
    if not examples:
        raise ValueError("train_sft needs at least one encoded example")
    device = model_device(model)

    def batch_loss(indices: list[int]) -> tuple[torch.Tensor, int]:
        batch = [examples[i] for i in indices]
        input_ids, labels = pad_batch(batch, pad_id)
        return sft_loss(model, input_ids.to(device), labels.to(device)), sum(len(ids) for ids, _ in batch)

    lengths = [len(ids) for ids, _ in examples]
    return train_on_examples(model, len(examples), config, batch_loss, history=history, validate=validate,
                             lengths=lengths, desc="sft")
