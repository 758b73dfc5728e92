"""Classification by prompting a chat model (Chapter 9): ask the question, then read the model's
probability of each label word as the first token of its reply, instead of parsing free text.

:class:`PromptClassifier` renders a conversation with the model's chat template: optionally some
solved examples as earlier turns (few-shot, ``shots_per_label`` per label, drawn from the training
texts with a fixed seed), then the text to classify. One forward pass gives the distribution of the
reply's first token; the label whose word is most likely wins. Every label word must be a single
token, so that its probability is one number and no label is favoured for being short. All the
prompts open with the same tokens (the system prompt, the solved examples, the start of the
template): they are read once and their KV cache reused
(:func:`lmcourse.llama.chat.next_token_logprobs_many`).
It has ``fit`` and ``predict``, so :func:`lmcourse.classify.cross_validate` scores it on the same
folds as the trained classifiers (``fit`` only picks the examples; nothing is trained).

With ``calibrate=True`` it applies contextual calibration (Zhao et al., 2021): a model often leans
towards one label word whatever the text (more so after a few examples), so each label's probability
is divided by its probability for content-free inputs ("N/A", "", "[MASK]") under the same prompt,
and renormalised. That costs three forward passes per ``fit``.

Left out: labels of several tokens.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from lmcourse._checks import check_int
from lmcourse.llama.chat import next_token_logprobs_many

__all__ = ["PromptClassifier", "label_distribution"]


def label_distribution(logprobs: Any, label_ids: Sequence[int]) -> np.ndarray:
    """The probability of each label among the label words only: the next-token log-probabilities
    ``(..., V)`` at `label_ids`, renormalised so that they sum to 1 over the labels ``(..., L)``.
    The model also gives probability to every other token; dropping it and renormalising is the
    classifier's reading of "which of these replies".

    >>> label_distribution(np.log([0.1, 0.3, 0.2, 0.4]), [1, 3]).round(3).tolist()
    [0.429, 0.571]
    """
    picked = np.asarray(logprobs, dtype=np.float64)[..., list(label_ids)]  # (..., V) -> (..., L)
    return np.exp(picked - np.logaddexp.reduce(picked, axis=-1, keepdims=True))


class PromptClassifier:
    """Zero- or few-shot classification with a chat model, scored by the probability of each
    label's one-token word as the reply.

    `template` is the user message with a ``{text}`` placeholder; `label_words[i]` is the reply that
    means label ``i``. ``model(ids)`` must return next-token logits ``(1, T, V)`` and `tokenizer` must
    have ``apply_chat_template`` and ``encode``, as :func:`lmcourse.llama.load_smollm2` gives.
    """

    CONTENT_FREE = ("N/A", "", "[MASK]")  # Zhao et al. (2021)'s inputs for contextual calibration

    def __init__(self, model: Any, tokenizer: Any, template: str, label_words: Sequence[str],
                 shots_per_label: int = 0, seed: int = 0, calibrate: bool = False) -> None:
        if "{text}" not in template:
            raise ValueError("template must contain {text}, where the text to classify goes")
        if isinstance(label_words, str) or len(label_words) < 2:
            raise ValueError(f"label_words must list at least two words, one per label, got {label_words!r}")
        check_int("shots_per_label", shots_per_label, 0)
        self.model, self.tokenizer, self.template = model, tokenizer, template
        self.label_words, self.shots_per_label, self.seed = list(label_words), shots_per_label, seed
        self.calibrate = calibrate
        self.bias: np.ndarray | None = None  # (L,): the label distribution for content-free inputs, when calibrating
        self.label_ids = [self._one_token(word) for word in self.label_words]
        if len(set(self.label_ids)) != len(self.label_ids):
            raise ValueError(f"label_words {label_words!r} must be different tokens")
        self.examples: list[tuple[str, int]] = []  # the solved examples shown before each text

    def _one_token(self, word: str) -> int:
        ids = self.tokenizer.encode(word)
        if len(ids) != 1:
            raise ValueError(f"label word {word!r} is {len(ids)} tokens for this tokenizer; choose words that are "
                             f"one token each (the probability of a longer word is not one number)")
        return ids[0]

    def fit(self, texts: Sequence[str], labels: Sequence[int]) -> PromptClassifier:
        """Pick ``shots_per_label`` examples of each label from the training texts (seeded), in a
        shuffled order; zero-shot keeps none. With ``calibrate``, also measure the prompt's bias."""
        if len(texts) != len(labels):
            raise ValueError(f"got {len(texts)} texts and {len(labels)} labels: give one label per text")
        unknown = sorted(set(labels) - set(range(len(self.label_words))))
        if unknown:
            raise ValueError(f"labels {unknown} have no word: label_words has {len(self.label_words)} entries")
        rng = random.Random(self.seed)
        chosen: list[tuple[str, int]] = []
        for label in range(len(self.label_words)):
            pool = [text for text, y in zip(texts, labels) if y == label]
            if len(pool) < self.shots_per_label:
                raise ValueError(f"label {label} has {len(pool)} training texts, fewer than shots_per_label="
                                 f"{self.shots_per_label}")
            chosen += [(text, label) for text in rng.sample(pool, self.shots_per_label)]
        rng.shuffle(chosen)
        self.examples = chosen
        self.bias = None
        if self.calibrate:
            self.bias = self.probabilities(list(self.CONTENT_FREE)).mean(axis=0)  # (3, L) -> (L,)
        return self

    def messages(self, text: str) -> list[dict[str, str]]:
        """The conversation the model reads for `text`: the solved examples as earlier turns, then `text`."""
        turns: list[dict[str, str]] = []
        for example, label in self.examples:
            turns += [{"role": "user", "content": self.template.format(text=example)},
                      {"role": "assistant", "content": self.label_words[label]}]
        return turns + [{"role": "user", "content": self.template.format(text=text)}]

    def label_logprobs(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, L)``: the log-probability of each label word as the first token of the reply."""
        if isinstance(texts, str):
            raise TypeError("texts must be a list of strings (for one text, give [text])")
        if not texts:
            return np.zeros((0, len(self.label_ids)))
        logprobs = next_token_logprobs_many(self.model, self.tokenizer, [self.messages(text) for text in texts])
        return logprobs[:, self.label_ids].numpy()  # (N, V) -> (N, L): the label words as the reply's first token

    def probabilities(self, texts: Sequence[str]) -> np.ndarray:
        """``(N, L)``: each label's probability among the label words (divided by the prompt's bias
        and renormalised, when calibrated)."""
        probs = label_distribution(self.label_logprobs(texts), range(len(self.label_ids)))  # (N, L)
        if self.bias is None:
            return probs
        adjusted = probs / self.bias  # (N, L) / (L,)
        return adjusted / adjusted.sum(axis=1, keepdims=True)

    def scores(self, texts: Sequence[str]) -> list[float]:
        """The probability of the last label for each text (of two labels: of label 1)."""
        return self.probabilities(texts)[:, -1].tolist()

    def predict(self, texts: Sequence[str]) -> list[int]:
        """The most probable label for each text (without calibration: the most likely label word)."""
        return [int(i) for i in self.probabilities(texts).argmax(axis=1)]
