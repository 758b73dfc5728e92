"""Is a sample new text or pieces of the training text? The longest run of a generated sentence that
occurs word for word inside one training sentence (Chapter 2, Section 2.8).

A model of order n strings together n-grams it has seen, so every sample is made of training
pieces at least n words long wherever the model did not back off; the question is how much longer
the copied runs get. Left out: fuzzy matches, and suffix arrays (a substring search over the joined
text is fast enough for a corpus of a few megabytes).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["TrainingText"]


class TrainingText:
    """Tokenized training sentences, searchable for runs of words.

    >>> text = TrainingText([["the", "cat", "sat", "down"], ["a", "dog", "ran"]])
    >>> text.longest_run(["my", "cat", "sat", "down", "a", "dog"])  # runs never cross sentences
    ('cat', 'sat', 'down')
    """

    def __init__(self, sentences: Iterable[Sequence[str]]) -> None:
        # one line per sentence, a space on both sides of every word: " w1 w2 ... wn "
        self._text = "\n".join(f" {' '.join(s)} " for s in sentences)

    def contains(self, words: Sequence[str]) -> bool:
        """Whether ``words`` occur consecutively inside one training sentence."""
        return f" {' '.join(words)} " in self._text

    def longest_run(self, words: Sequence[str]) -> tuple[str, ...]:
        """The longest run of consecutive ``words`` found in the training text (the first if tied),
        with ``"</s>"`` ignored; empty if no word was seen."""
        words = [w for w in words if w != "</s>"]
        best: tuple[str, ...] = ()
        start = 0
        for end in range(1, len(words) + 1):  # grow the window; shrink it from the left when it fails
            while start < end and not self.contains(words[start:end]):
                start += 1
            if end - start > len(best):
                best = tuple(words[start:end])
        return best
