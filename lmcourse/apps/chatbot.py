"""A chatbot: a conversation of many turns with a chat model, its memory bounded by a token budget
(Chapter 9b). Each reply is :func:`lmcourse.llama.chat` on the whole conversation so far.

A model has no memory of its own: it remembers a conversation only because each turn sends it the
whole conversation again. That text grows with every exchange, while the context the session
allows (`context_tokens`, minus `max_reply_tokens` kept free for the reply) does not. When the
rendered conversation no longer fits, :class:`ChatSession` forgets the oldest exchanges (a user
turn and its reply, together), never the system prompt or the new question, and records what it
forgot in ``dropped``: facts said only there are gone.

:class:`TextStream` shows a reply while it is generated. Byte-level BPE can cut a character of
several bytes (an accent, a Chinese character, an emoji) over two tokens; the decoded text then ends
in U+FFFD until the rest arrives, so the stream holds such a piece back.

:func:`send_together` sends one message to each of several greedy sessions and generates their
replies as one batch (:func:`lmcourse.llama.chat_batch`): the replies each session's
:meth:`ChatSession.send` gives, faster, as each step reads the weights once for all sessions.

Left out: summarising what is dropped instead of dropping it, retrieval over old turns, keeping the
KV cache between turns (each turn re-reads the conversation), and tool calls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from lmcourse._checks import check_int
from lmcourse.llama.batch import chat_batch
from lmcourse.llama.chat import chat, prompt_ids

__all__ = ["ChatSession", "TextStream", "send_together"]

Message = dict[str, str]
_DECODING = {"temperature", "top_p", "top_k", "repetition_penalty", "seed"}  # what chat() takes besides the text


class TextStream:
    """Token ids in, one at a time; text out, in pieces that join up to ``tokenizer.decode(ids)``.

    :meth:`push` returns the text the new id adds: the decoded text of all ids so far minus what was
    already returned, or ``""`` while the text ends in U+FFFD (an unfinished character).
    :meth:`flush` returns whatever was held back (a reply cut off mid-character ends in U+FFFD).
    This relies on a byte-level tokenizer: the text of the first ids is a prefix of the text of more.

    >>> class Bytes:
    ...     def decode(self, ids): return bytes(ids).decode("utf-8", errors="replace")
    >>> stream = TextStream(Bytes())
    >>> [stream.push(b) for b in "é!".encode()]  # é is two bytes: C3 A9
    ['', 'é', '!']
    """

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        self.ids: list[int] = []
        self.text = ""  # what has been returned so far

    def push(self, token_id: int) -> str:
        """The new text after one more id; ``""`` while a character is unfinished."""
        self.ids.append(token_id)
        text = self.tokenizer.decode(self.ids)
        return "" if text.endswith("\ufffd") else self._emit(text)

    def flush(self) -> str:
        """The text held back, as it decodes now."""
        return self._emit(self.tokenizer.decode(self.ids))

    def _emit(self, text: str) -> str:
        piece, self.text = text[len(self.text):], text
        return piece


class ChatSession:
    """A conversation with a chat model that forgets its oldest exchanges when it runs out of room.

    `model` and `tokenizer` are what :func:`lmcourse.llama.chat` takes (SmolLM2 from
    :func:`lmcourse.llama.load_smollm2`). `system` is the system prompt (None: the chat template's
    default). The rendered conversation plus a reply of up to `max_reply_tokens` tokens must fit in
    `context_tokens`. `decoding` goes to :func:`~lmcourse.llama.chat` (``temperature``, ``top_p``,
    ``top_k``, ``repetition_penalty``, ``seed``); by default replies are greedy.

    >>> session = ChatSession(*load_smollm2(), context_tokens=256, max_reply_tokens=16)  # doctest: +SKIP
    >>> first = session.send("The password is 4172.")  # doctest: +SKIP
    >>> session.send("What is the password?")  # doctest: +SKIP
    'The password is 4172.'
    """

    def __init__(self, model: Any, tokenizer: Any, system: str | None = None, context_tokens: int = 2048,
                 max_reply_tokens: int = 256, **decoding: Any) -> None:
        check_int("max_reply_tokens", max_reply_tokens, 1)
        check_int("context_tokens", context_tokens, max_reply_tokens + 1)
        limit = model.transformer_config.context_length
        if context_tokens > limit:
            raise ValueError(f"context_tokens={context_tokens} is more than the model reads (context_length={limit})")
        if system is not None and (not isinstance(system, str) or not system):
            raise ValueError(f"system must be None (the template's default) or a non-empty string, got {system!r:.60}")
        unknown = set(decoding) - _DECODING
        if unknown:
            raise TypeError(f"unknown decoding arguments {sorted(unknown)}; chat() takes {sorted(_DECODING)}")
        self.model, self.tokenizer, self.system = model, tokenizer, system
        self.context_tokens, self.max_reply_tokens, self.decoding = context_tokens, max_reply_tokens, decoding
        self.history: list[Message] = []  # the exchanges kept: user, assistant, user, assistant, ...
        self.dropped: list[Message] = []  # the exchanges forgotten, oldest first

    @property
    def messages(self) -> list[Message]:
        """The conversation the model reads: the system prompt (if given) and the kept exchanges."""
        return self._system_turn() + self.history

    def _system_turn(self) -> list[Message]:
        return [] if self.system is None else [{"role": "system", "content": self.system}]

    @property
    def num_dropped(self) -> int:
        """How many exchanges were forgotten."""
        return len(self.dropped) // 2

    @property
    def num_tokens(self) -> int:
        """Tokens of the conversation so far as the next turn renders it (with the generation prompt,
        without the next question); 0 before the first turn."""
        return self.count_tokens(self.messages) if self.messages else 0

    def count_tokens(self, messages: list[Message]) -> int:
        """Tokens of `messages` rendered with the chat template and the generation prompt."""
        return len(prompt_ids(self.tokenizer, messages))

    def send(self, user_text: str, on_token: Callable[[str], None] | None = None) -> str:
        """The model's reply to `user_text`, after the conversation so far; both join the history.

        Oldest exchanges are dropped first until the conversation and the reply fit. `on_token` is
        called with each new piece of the reply's text as it is generated (:class:`TextStream`)."""
        turn = self._user_turn(user_text)
        self._make_room(turn)
        stream = TextStream(self.tokenizer)

        def show(token_id: int) -> None:
            if token_id != self.tokenizer.eos_id and (piece := stream.push(token_id)):
                on_token(piece)

        reply = chat(self.messages + [turn], model=self.model, tokenizer=self.tokenizer,
                     max_tokens=self.max_reply_tokens, on_token=None if on_token is None else show, **self.decoding)
        if on_token is not None and (rest := stream.flush()):
            on_token(rest)
        self.history += [turn, {"role": "assistant", "content": reply.text}]
        return reply.text

    def _user_turn(self, user_text: str) -> Message:
        if not isinstance(user_text, str) or not user_text.strip():
            raise ValueError(f"user_text must be a non-empty string, got {user_text!r:.60}")
        return {"role": "user", "content": user_text}

    def _check_room(self, turn: Message) -> None:
        """Refuse a `turn` that does not fit even after every exchange is dropped."""
        budget = self.context_tokens - self.max_reply_tokens
        alone = self.count_tokens(self._system_turn() + [turn])
        if alone > budget:
            raise ValueError(f"the system prompt and this message take {alone} tokens, but only {budget} fit "
                             f"(context_tokens={self.context_tokens} minus max_reply_tokens={self.max_reply_tokens}); "
                             f"shorten the message or the system prompt, or raise context_tokens")

    def _make_room(self, turn: Message) -> None:
        """Drop the oldest exchanges until the conversation with `turn` leaves room for a reply."""
        self._check_room(turn)
        while self.count_tokens(self.messages + [turn]) > self.context_tokens - self.max_reply_tokens:
            self.dropped += self.history[:2]
            del self.history[:2]

    def reset(self) -> None:
        """Forget the whole conversation (the system prompt stays)."""
        self.history, self.dropped = [], []

    def __repr__(self) -> str:
        return (f"ChatSession(exchanges={len(self.history) // 2}, dropped={self.num_dropped}, "
                f"tokens={self.num_tokens}/{self.context_tokens})")


def send_together(sessions: Sequence[ChatSession], user_texts: Sequence[str]) -> list[str]:
    """``[session.send(text) for session, text in zip(sessions, user_texts)]``, the replies generated
    as one batch: greedy sessions (temperature 0, no repetition penalty) of one model and tokenizer, with the same
    ``max_reply_tokens``. The replies are those :meth:`ChatSession.send` gives up to float rounding
    (a batch pads the shorter prompts, which changes the order of some sums)."""
    sessions, user_texts = list(sessions), list(user_texts)
    if not sessions or len(sessions) != len(user_texts):
        raise ValueError(f"need one message per session, got {len(sessions)} sessions and {len(user_texts)} messages")
    if len({id(session) for session in sessions}) != len(sessions):
        raise ValueError("a session appears twice: its second message must see the reply to the first, so send "
                         "them one after the other")
    first = sessions[0]
    for k, session in enumerate(sessions):
        if not isinstance(session, ChatSession):
            raise TypeError(f"sessions[{k}] is a {type(session).__name__}, not a ChatSession")
        if session.decoding.get("temperature", 0.0) != 0 or session.decoding.get("repetition_penalty", 1.0) != 1.0:
            raise ValueError(f"sessions[{k}] samples or penalises repetition ({session.decoding}); send_together "
                             "generates plain greedy replies only: call its send() instead")
        if (session.model, session.tokenizer, session.max_reply_tokens) != (first.model, first.tokenizer,
                                                                           first.max_reply_tokens):
            raise ValueError(f"sessions[{k}] has another model, tokenizer or max_reply_tokens than sessions[0]; "
                             "send to it separately")
    turns = [session._user_turn(text) for session, text in zip(sessions, user_texts)]
    for session, turn in zip(sessions, turns):
        session._check_room(turn)  # every message checked before any session changes
    for session, turn in zip(sessions, turns):
        session._make_room(turn)
    replies = chat_batch([session.messages + [turn] for session, turn in zip(sessions, turns)], model=first.model,
                         tokenizer=first.tokenizer, max_tokens=first.max_reply_tokens)
    for session, turn, reply in zip(sessions, turns, replies):
        session.history += [turn, {"role": "assistant", "content": reply.text}]
    return [reply.text for reply in replies]
