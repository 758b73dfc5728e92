"""SmolLM2's tokenizer as the book's own byte-level BPE (:class:`lmcourse.bpe.ByteBPE`), loaded
from the tokens, merges and chat template stored in the GGUF file. Chapter 7 uses it.

SmolLM2 (Allal et al., 2025) uses GPT-2's byte-level BPE (Chapter 6) with 49,152 ids: 17 special
tokens first (``<|endoftext|>`` = 0, ``<|im_start|>`` = 1, ``<|im_end|>`` = 2, ...), then 235
single bytes and 48,900 merged tokens, all spelled in GPT-2's printable stand-ins (``"Ġthe"``).
Its pre-tokenizer (GGUF's ``tokenizer.ggml.pre = "smollm"``, as in StarCoder) first cuts every
digit into a chunk of its own, then applies GPT-2's pattern to the text between digits; so numbers
are read digit by digit, and ``"  42"`` ends its whitespace run before the ``4``.
:data:`SMOLLM_PATTERN` does both in one regular expression.

Special-token spellings in the text (``<|im_start|>``) become their ids, as in ``transformers``.
21 bytes have no token (six control characters, the UTF-8 lead bytes C0, C1, F1, F2 and F5-FF):
like ``transformers``, the tokenizer drops them.

:meth:`SmolLM2Tokenizer.apply_chat_template` renders the Jinja template stored in the file in a
sandbox: ``<|im_start|>role\\ncontent<|im_end|>\\n`` per message, a default system message when
there is none, and ``<|im_start|>assistant\\n`` as the generation prompt.

Note: ``transformers`` (5.23) builds this tokenizer from the GGUF with GPT-2's pre-tokenizer only,
ignoring ``smollm``'s digit rule; SmolLM2's own ``tokenizer.json`` and llama.cpp split digits
first, as here. The two differ only where whitespace comes before a digit.

Left out: the ``transformers`` options (padding, truncation, offsets, ``skip_special_tokens``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lmcourse.bpe import ByteBPE, unicode_to_bytes

__all__ = ["SMOLLM_PATTERN", "SmolLM2Tokenizer"]

# GPT-2's pattern with every digit a chunk of its own (\p{N} first, ` ?\p{N}+` gone). A whitespace run
# may end before a digit as well as at the end of the text: ``(?![^\s\p{N}])`` where GPT-2 has ``(?!\S)``.
SMOLLM_PATTERN = r"""\p{N}|'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""

_CONTROL = 3  # GGUF's token_type of a special (control) token; 1 is a normal token


class SmolLM2Tokenizer:
    """SmolLM2's byte-level BPE: ``encode(str) -> list[int]``, ``decode(list[int]) -> str``, and
    ``apply_chat_template(messages) -> str``. Build it with :meth:`from_gguf_metadata`.

    ``bpe`` is the :class:`lmcourse.bpe.ByteBPE` doing the work; ``bos_id`` and ``eos_id`` are
    ``<|im_start|>`` and ``<|im_end|>`` (the end of a turn).
    """

    def __init__(self, bpe: ByteBPE, vocab_size: int, chat_template: str, bos_id: int, eos_id: int) -> None:
        self.bpe, self.vocab_size, self.chat_template = bpe, vocab_size, chat_template
        self.bos_id, self.eos_id = bos_id, eos_id
        self._template: Any = None  # compiled on first use

    @classmethod
    def from_gguf_metadata(cls, metadata: Mapping[str, Any]) -> SmolLM2Tokenizer:
        """The tokenizer stored in a GGUF file's metadata (:attr:`lmcourse.gguf.GGUFFile.metadata`)."""
        model, pre = metadata.get("tokenizer.ggml.model"), metadata.get("tokenizer.ggml.pre")
        if (model, pre) != ("gpt2", "smollm"):
            raise ValueError(f"this tokenizer reads GGUF files with tokenizer.ggml.model 'gpt2' and "
                             f"tokenizer.ggml.pre 'smollm' (SmolLM2), got {model!r} and {pre!r}")
        tokens, types = metadata["tokenizer.ggml.tokens"], metadata["tokenizer.ggml.token_type"]
        specials = {t: i for i, (t, kind) in enumerate(zip(tokens, types)) if kind == _CONTROL}
        vocab = {unicode_to_bytes(t): i for i, (t, kind) in enumerate(zip(tokens, types)) if kind != _CONTROL}
        # Bytes without a token get ids after the vocabulary, so that BPE can run; encode drops them.
        missing = [bytes([b]) for b in range(256) if bytes([b]) not in vocab]
        vocab.update({b: len(tokens) + k for k, b in enumerate(missing)})
        merges = [tuple(unicode_to_bytes(side) for side in m.split(" ")) for m in metadata["tokenizer.ggml.merges"]]
        bpe = ByteBPE.from_vocab(vocab, merges, special_tokens=specials, pattern=SMOLLM_PATTERN)
        return cls(bpe, len(tokens), metadata["tokenizer.chat_template"],
                   int(metadata["tokenizer.ggml.bos_token_id"]), int(metadata["tokenizer.ggml.eos_token_id"]))

    def encode(self, text: str) -> list[int]:
        """The ids of `text`; special-token spellings in it become their ids."""
        return [i for i in self.bpe.encode(text, allowed_special="all") if i < self.vocab_size]

    def decode(self, ids: Iterable[int]) -> str:
        """The text of `ids` (special tokens spelled out; bytes that are not valid UTF-8 become U+FFFD)."""
        return self.bpe.decode(ids)

    @property
    def special_tokens(self) -> dict[str, int]:
        """Each special token and its id."""
        return self.bpe.special_tokens

    def apply_chat_template(self, messages: Sequence[Mapping[str, str]], add_generation_prompt: bool = False) -> str:
        """The conversation as SmolLM2 was trained to read it, rendered by the template in the file.

        `messages`: a list of ``{"role": "system" | "user" | "assistant", "content": str}``.
        `add_generation_prompt`: end with the start of an assistant turn, for the model to continue."""
        _check_messages(messages)
        if self._template is None:
            from jinja2.sandbox import ImmutableSandboxedEnvironment

            env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)  # as transformers
            self._template = env.from_string(self.chat_template)
        names = {i: t for t, i in self.special_tokens.items()}
        return self._template.render(messages=list(messages), add_generation_prompt=add_generation_prompt,
                                     bos_token=names[self.bos_id], eos_token=names[self.eos_id])

    def __repr__(self) -> str:
        return f"SmolLM2Tokenizer(vocab_size={self.vocab_size}, special_tokens={len(self.special_tokens)})"


def _check_messages(messages: Any) -> None:
    if isinstance(messages, (str, Mapping)) or not isinstance(messages, Sequence) or not messages:
        raise TypeError(f"messages must be a non-empty list of {{'role': ..., 'content': ...}} dicts, "
                        f"got {messages!r:.80}")
    for k, m in enumerate(messages):
        if not (isinstance(m, Mapping) and isinstance(m.get("role"), str) and isinstance(m.get("content"), str)):
            raise ValueError(f"message {k} must be a dict with str 'role' and 'content', got {m!r:.80}")
