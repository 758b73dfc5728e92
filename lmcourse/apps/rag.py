"""Retrieval-augmented question answering (Chapter 9b; Lewis et al., 2020): put the passages that
search found (:mod:`lmcourse.apps.retrieval`) into the prompt, best first, and let a chat model
answer from them; the same question with no passage is the closed-book baseline.

- :func:`rag_messages` fills a token budget: numbered passages, then the question and an
  instruction to answer briefly from them. The first passage that does not fit whole is cut at a
  word boundary (``truncate=True``) or dropped, and the passages after it are left out, so the
  prompt keeps the retriever's order. :func:`closed_book_messages` asks the question alone.
- :func:`answer_question` decodes greedily (``model.generate``) and reports the model's confidence
  in its own reply (the geometric mean of its token probabilities), from one extra forward pass
  over prompt and reply (teacher forcing).
- :func:`normalize_answer`, :func:`exact_match` and :func:`contains_answer` score a reply against
  the acceptable answers as SQuAD's evaluation does (Rajpurkar et al., 2016); a chat model answers
  in sentences, so containment is the book's main measure. :func:`confidently_wrong` counts the
  answers that are wrong although the model was sure: the failure that matters most to a reader.

Left out: re-ranking, citations of the passage used, answers that need several passages, token-F1,
and calibrating the confidence (Chapter 11).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from lmcourse._checks import check_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.apps.passages import Passage
from lmcourse.llama.batch import greedy_batch_scored
from lmcourse.llama.chat import prompt_ids

__all__ = ["RagPrompt", "Answer", "INSTRUCTION", "rag_messages", "closed_book_messages", "answer_question",
           "answer_questions", "reply_logprobs", "normalize_answer", "exact_match", "contains_answer", "confidently_wrong"]

Messages = list[dict[str, str]]

INSTRUCTION = "Answer briefly, using only the passages above."  # after the question in a RAG prompt
CUT_MARK = " ..."  # ends a passage cut to fit the budget


@dataclass(frozen=True)
class RagPrompt:
    """The conversation to send (:func:`rag_messages`), how many passages it holds (best first; the
    last of them cut when `truncated`) and its length in tokens with the generation prompt."""

    messages: Messages
    passages_used: int
    truncated: bool
    num_tokens: int


@dataclass(frozen=True)
class Answer:
    """A greedy reply and the model's confidence in it (:func:`answer_question`)."""

    text: str  # the reply, without the end-of-turn token and surrounding whitespace
    confidence: float  # exp(mean(token_logprobs)): the geometric mean of the reply's token probabilities
    token_logprobs: tuple[float, ...]  # log-probability of each reply token (and of the end of turn, if reached)
    finish_reason: str  # "stop": the model ended its turn; "length": max_tokens were generated


def _passage_text(passage: Passage | str) -> tuple[str, str]:
    """(title, text) of a passage; a bare string has no title."""
    if isinstance(passage, Passage):
        return passage.title, passage.text
    if isinstance(passage, str):
        return "", passage
    raise TypeError(f"each passage must be a Passage or a str, got {type(passage).__name__}")


def _user_message(question: str, blocks: Sequence[str]) -> str:
    """The user message: the numbered passage blocks, the question, the instruction."""
    if not blocks:
        return question
    return "\n\n".join(["Passages:", *blocks, f"Question: {question}", INSTRUCTION])


def _block(number: int, title: str, text: str) -> str:
    return f"[{number}] {title}: {text}" if title else f"[{number}] {text}"


def _messages(system: str | None, user: str) -> Messages:
    head = [] if system is None else [{"role": "system", "content": system}]
    return [*head, {"role": "user", "content": user}]


def _count(tokenizer: Any, messages: Messages) -> int:
    """Tokens of the rendered conversation with the generation prompt: what the model reads."""
    return len(prompt_ids(tokenizer, messages))


def _check_question(question: Any) -> str:
    if not isinstance(question, str) or not question.strip():
        raise ValueError(f"question must be a non-empty string, got {question!r:.80}")
    return question.strip()


def closed_book_messages(question: str, system: str | None = None) -> Messages:
    """The closed-book baseline: the question alone, answered from what the model's weights hold.
    `system` None keeps the chat template's default system message.

    >>> closed_book_messages("Who wrote Hamlet?")
    [{'role': 'user', 'content': 'Who wrote Hamlet?'}]
    """
    return _messages(system, _check_question(question))


def rag_messages(question: str, passages: Sequence[Passage | str], tokenizer: Any, max_prompt_tokens: int,
                 system: str | None = None, truncate: bool = True) -> RagPrompt:
    """A conversation asking `question` with as many of `passages` (best first) as fit in
    `max_prompt_tokens`, counted on the rendered prompt with the generation prompt.

    Passages are numbered ``[1]``, ``[2]``, ... with their titles. The first passage that does not
    fit whole is cut after the most words that fit, marked ``" ..."`` (``truncate=True``), or
    dropped (``truncate=False``, or when not even one word fits); later passages are left out
    either way, so that a worse passage never displaces a better one. With no passage at all,
    the messages are :func:`closed_book_messages`'s. `tokenizer` needs ``apply_chat_template`` and
    ``encode``; `system` None keeps the template's default system message.
    """
    question = _check_question(question)
    if isinstance(passages, (str, Passage)) or not isinstance(passages, Sequence):
        raise TypeError("passages must be a list of Passage objects or strings, best first")
    check_int("max_prompt_tokens", max_prompt_tokens, 1)
    bare = _count(tokenizer, _messages(system, question))
    if bare > max_prompt_tokens:
        raise ValueError(f"the question is {bare} tokens with the chat template, longer than the context budget "
                         f"{max_prompt_tokens}: raise max_prompt_tokens or shorten the question")
    blocks: list[str] = []
    truncated = False
    for number, passage in enumerate(passages, start=1):
        title, text = _passage_text(passage)
        candidate = _block(number, title, text)
        if _count(tokenizer, _messages(system, _user_message(question, [*blocks, candidate]))) <= max_prompt_tokens:
            blocks.append(candidate)
            continue
        cut = _cut_to_fit(tokenizer, system, question, blocks, number, title, text, max_prompt_tokens) \
            if truncate else None
        if cut is not None:
            blocks.append(cut)
            truncated = True
        break
    messages = _messages(system, _user_message(question, blocks))
    return RagPrompt(messages, len(blocks), truncated, _count(tokenizer, messages))


def _cut_to_fit(tokenizer: Any, system: str | None, question: str, blocks: list[str], number: int, title: str,
                text: str, budget: int) -> str | None:
    """Passage `number` cut after the most words that keep the prompt within `budget`, by bisection
    on the number of words; None if not even one word fits."""
    words = text.split()

    def block(n: int) -> str:
        return _block(number, title, " ".join(words[:n]) + CUT_MARK)

    def fits(n: int) -> bool:
        return _count(tokenizer, _messages(system, _user_message(question, [*blocks, block(n)]))) <= budget

    low, high = 0, len(words)  # fits(low) is assumed once low >= 1; fits(high) is false (the whole passage)
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if fits(middle) else (low, middle)
    return block(low) if low >= 1 else None  # low only moves to a count that fits


def answer_question(model: Any, tokenizer: Any, messages: Sequence[Mapping[str, str]], max_tokens: int = 32) -> Answer:
    """The model's greedy reply to `messages` and its confidence in it.

    The reply comes from ``model.generate`` (greedy, stopping at the end-of-turn token). The
    confidence is the geometric mean of its tokens' probabilities, ``exp(mean log-probability)``,
    the end-of-turn token included when the reply reached it, read from one forward pass over prompt
    and reply (teacher forcing). Why not the product, the probability of exactly this reply? A chat
    model answers in a sentence, and every token multiplies the product down (20 tokens at 0.9
    each give 0.12), so the product mostly measures how long the reply is and cannot be compared
    across replies or held against one threshold; the per-token mean can. Its weakness: the one
    uncertain token that carries the answer is averaged with near-certain ones that repeat the
    question. ``token_logprobs`` keeps every token's number, so the product is ``exp(sum(...))``.
    `model` is a decoder of the book such as :class:`lmcourse.llama.Llama` (``generate``,
    ``hidden_states`` and ``decoder``); `tokenizer` as for :func:`lmcourse.llama.chat`.
    """
    check_int("max_tokens", max_tokens, 1)
    prompt = prompt_ids(tokenizer, messages)
    window = getattr(model, "context_window", None)
    if window is not None and len(prompt) + max_tokens > window:
        raise ValueError(f"the prompt is {len(prompt)} tokens; with max_tokens={max_tokens} that exceeds the model's "
                         f"context of {window} tokens: build the prompt with a smaller max_prompt_tokens")
    reply = model.generate(prompt, max_tokens, temperature=0, stop_ids=[tokenizer.eos_id])
    return _answer(tokenizer, reply, reply_logprobs(model, prompt, reply))


def _answer(tokenizer: Any, reply: Sequence[int], logprobs: Sequence[float]) -> Answer:
    """The :class:`Answer` of a generated reply (its ids, the end-of-turn token last if reached) and
    the log-probability of each of its tokens."""
    stopped = reply[-1] == tokenizer.eos_id
    text = tokenizer.decode(list(reply[:-1]) if stopped else list(reply)).strip()
    return Answer(text, math.exp(sum(logprobs) / len(logprobs)), tuple(logprobs), "stop" if stopped else "length")


def answer_questions(model: Any, tokenizer: Any, conversations: Sequence[Sequence[Mapping[str, str]]],
                     max_tokens: int = 32, batch_size: int = 16) -> list[Answer]:
    """:func:`answer_question` for each conversation, generated in batches by
    :func:`lmcourse.llama.greedy_batch_scored` (a model with rotary positions, such as SmolLM2): the
    same replies and confidences up to float rounding, each token's log-probability read off as it is
    generated instead of by a second pass over prompt and reply."""
    check_int("max_tokens", max_tokens, 1)
    if isinstance(conversations, Mapping) or not isinstance(conversations, Sequence) or not conversations:
        raise ValueError("conversations must be a non-empty list of conversations (each a list of messages)")
    prompts = [prompt_ids(tokenizer, messages) for messages in conversations]
    window = model.context_window
    for i, prompt in enumerate(prompts):
        if len(prompt) + max_tokens > window:
            raise ValueError(f"prompt {i} is {len(prompt)} tokens; with max_tokens={max_tokens} that exceeds the model's "
                             f"context of {window} tokens: build the prompt with a smaller max_prompt_tokens")
    replies = greedy_batch_scored(model, prompts, max_tokens, stop_ids=[tokenizer.eos_id], batch_size=batch_size,
                                  pad_id=tokenizer.eos_id)
    return [_answer(tokenizer, reply, logprobs) for reply, logprobs in replies]


def reply_logprobs(model: Any, prompt: Sequence[int], reply: Sequence[int]) -> list[float]:
    """The log-probability of each of `reply`'s tokens after `prompt` and the reply tokens before it:
    one forward pass over ``prompt + reply`` (teacher forcing), the same numbers as
    ``log_softmax(model(ids))`` at those positions. Only the reply's ``R`` positions are projected
    onto the vocabulary, which saves a third of the pass for a prompt of a few hundred tokens."""
    if not reply:
        return []
    ids = torch.tensor([[*prompt, *reply]], device=model_device(model))  # (1, P + R)
    with eval_mode(model):
        hidden = model.hidden_states(ids[:, :-1])[0, len(prompt) - 1:]  # (P + R - 1, C) -> (R, C): before each reply
        logits = model.decoder(hidden)  # (R, C) @ (C, V) -> (R, V)
    logp = torch.log_softmax(logits.double(), dim=-1)  # (R, V)
    return logp.gather(1, ids[0, len(prompt):, None])[:, 0].tolist()  # (R, V) -> (R,)


_ARTICLES = re.compile(r"\b(a|an|the)\b")


def normalize_answer(text: str) -> str:
    """SQuAD's normalisation: lower-case, remove punctuation (every Unicode punctuation character,
    where SQuAD removes ASCII only, so dashes and curly quotes go too), drop the articles a, an, the,
    and collapse whitespace.

    >>> normalize_answer("  The Camellia, (state flower)! ")
    'camellia state flower'
    >>> normalize_answer("March 3, 1817"), normalize_answer("‘Here We Rest’")
    ('march 3 1817', 'here we rest')
    """
    if not isinstance(text, str):
        raise TypeError(f"normalize_answer expects a str, got {type(text).__name__}")
    text = "".join(c for c in text.lower() if not unicodedata.category(c).startswith("P"))
    return " ".join(_ARTICLES.sub(" ", text).split())


def _golds(answers: Sequence[str]) -> list[str]:
    """The non-empty normalised answers."""
    if isinstance(answers, str) or not answers or not all(isinstance(a, str) for a in answers):
        raise ValueError(f"answers must be a non-empty list of strings (the acceptable answers), got {answers!r:.80}")
    return [g for g in map(normalize_answer, answers) if g]


def exact_match(prediction: str, answers: Sequence[str]) -> bool:
    """Whether the normalised prediction equals one of the normalised answers (SQuAD's EM).

    >>> exact_match("The camellia.", ["camellia"]), exact_match("It is the camellia.", ["camellia"])
    (True, False)
    """
    predicted = normalize_answer(prediction)
    return any(predicted == gold for gold in _golds(answers))


def contains_answer(prediction: str, answers: Sequence[str]) -> bool:
    """Whether a normalised answer occurs in the normalised prediction as whole words, so a reply
    in a full sentence counts; an answer inside a longer word does not ("Mobile" in "automobile").

    >>> contains_answer("Its state flower is the Camellia.", ["camellia"])
    True
    >>> contains_answer("The automobile industry.", ["Mobile"])
    False
    """
    predicted = f" {normalize_answer(prediction)} "
    return any(f" {gold} " in predicted for gold in _golds(answers))


def confidently_wrong(correct: Sequence[bool], confidence: Sequence[float], threshold: float) -> float:
    """The share of all answers that are wrong while the model's confidence is at least `threshold`:
    the answers a reader who trusts confident replies would take home wrongly.

    >>> confidently_wrong([True, False, False, True], [0.9, 0.8, 0.2, 0.1], threshold=0.5)
    0.25
    """
    if len(correct) != len(confidence) or not len(correct):
        raise ValueError(f"correct and confidence must be non-empty and of the same length, one per answer; got "
                         f"{len(correct)} and {len(confidence)}")
    if not all(0.0 <= float(c) <= 1.0 for c in confidence):
        raise ValueError("confidence must hold probabilities in [0, 1]")
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be a probability in [0, 1], got {threshold!r}")
    return sum(1 for ok, c in zip(correct, confidence) if not ok and c >= threshold) / len(correct)
