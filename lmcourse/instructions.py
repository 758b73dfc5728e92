"""Instruction data written for this book (Chapter 8): extract three fields of a sentence of the
``wiki`` corpus into strict JSON, and score a reply by code.

The task: given one sentence, reply with exactly ``{"year": ..., "first_word": ..., "last_word": ...}``,
where ``year`` is the four-digit year written in the sentence (a string), or ``null`` when the
sentence has no number at all, and the two words are copied from the sentence (the last without its
full stop). Every field is a copied span (or ``null``), never a count, so a small model can learn it
by fine-tuning; and a reply is right or wrong by string comparison, so no judge is needed.
SmolLM2-135M-Instruct, prompted with the same instructions, got none of the first 20 held-out
examples right (greedy; mostly code fences, invented keys, numbers for years, or the sentence repeated).

How the examples are made (:func:`build_split`): paragraphs are cut into sentences at ``.``, ``!``
or ``?`` followed by a capital (not after one letter, ``J.``, or two, ``St.``); a sentence qualifies
when it ends with a full stop, has 8 to 30 words, begins with a capitalised word and ends with a word
of plain letters, and has either no digit or exactly one number, which is a year from 1000 to 2029
standing on its own (not ``1990s``). About half of each split has a year and the rest none
(:data:`SPLIT_SIZES`; the test articles hold only 57 dated sentences); each example gets one of four
phrasings of the instruction (:data:`TEMPLATES`). Sampling is seeded. Training examples come from
the corpus's *train* articles, ``valid`` ones from its valid articles and ``heldout`` ones from its
*test* articles, so a held-out sentence is never seen in training. ``python -m lmcourse.instructions``
writes ``data/instructions/*.jsonl``.

Left out: sentences with several numbers (which one is the year?), other languages, and any
partial credit beyond :func:`field_scores`.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from lmcourse._io import atomic_write_text, file_digest
from lmcourse.data import data_file, load_corpus

__all__ = ["KEYS", "TEMPLATES", "SPLIT_SIZES", "sentences", "fields", "make_example", "build_split",
           "write_instructions", "load_instructions", "parse_reply", "schema_valid", "score",
           "field_scores", "summarize"]

KEYS = ("year", "first_word", "last_word")
TEMPLATES = (
    'Extract three fields from the sentence below and reply with a JSON object only: "year" (the four-digit '
    'year in the sentence, or null if it has none), "first_word" (its first word) and "last_word" (its last '
    'word, without the full stop). Copy the words exactly.\n\nSentence: {sentence}',
    'Sentence: {sentence}\n\nReturn only JSON with the keys "year", "first_word" and "last_word": the year '
    "written in the sentence as a string (null if there is no year), and the sentence's first and last words "
    'exactly as written.',
    'Fill in this JSON schema from the sentence and output nothing else: {"year": string or null, '
    '"first_word": string, "last_word": string}.\n\nSentence: {sentence}',
    'Read the sentence "{sentence}" and answer in strict JSON with exactly the keys year, first_word and '
    'last_word (year: the four-digit year as a string, or null; words copied exactly, without punctuation).',
)
# split name -> (corpus split it is drawn from, examples with a year, examples without)
SPLIT_SIZES = {"train": ("train", 200, 200), "valid": ("valid", 50, 50), "heldout": ("test", 55, 65)}

# a sentence ends at . ! or ? before a capital, but not after one letter ("J.", "v.") or "St.", "Dr.", "Mr."
_SENTENCE_END = re.compile(r"(?<!\b[A-Za-z]\.)(?<!\b[A-Z][a-z]\.)(?<=[.!?])\s+(?=[A-Z])")
_WORD = re.compile(r"[A-Za-z]+")
_FIRST_WORD = re.compile(r"[A-Z][A-Za-z]*")  # a capital: the start of a sentence, not a fragment
_NUMBER = re.compile(r"[0-9]+")
_STANDALONE_YEAR = re.compile(r"(?<![A-Za-z0-9])[0-9]{4}(?![A-Za-z0-9])")  # "1905", not "1990s"


def sentences(lines: Sequence[str]) -> list[str]:
    """The qualifying sentences of `lines` (paragraphs), in order, each once (see the module's rules).

    >>> sentences(["It was built in 1905 by the town council of the river valley. Too short here.",
    ...            "In the 1990s the town grew a lot faster than any other place."])
    ['It was built in 1905 by the town council of the river valley.']
    """
    seen: dict[str, None] = {}
    for line in lines:
        for sentence in _SENTENCE_END.split(line):
            if sentence not in seen and fields(sentence) is not None:
                seen[sentence] = None
    return list(seen)


def fields(sentence: str) -> dict[str, str | None] | None:
    """The answer for `sentence` (``year`` first), or None if it does not qualify.

    >>> fields("Aikido was first brought to the rest of the world in 1951 by Minoru Mochizuki.")
    {'year': '1951', 'first_word': 'Aikido', 'last_word': 'Mochizuki'}
    >>> fields("The abacus is still used by merchants in many parts of Africa.")["year"] is None
    True
    """
    words = sentence[:-1].split()
    if not sentence.endswith(".") or not 8 <= len(words) <= 30:
        return None
    if not (_FIRST_WORD.fullmatch(words[0]) and _WORD.fullmatch(words[-1])):
        return None
    numbers = _NUMBER.findall(sentence)
    if numbers and (len(numbers) != 1 or not _STANDALONE_YEAR.search(sentence)
                    or not 1000 <= int(numbers[0]) <= 2029):
        return None
    return {"year": numbers[0] if numbers else None, "first_word": words[0], "last_word": words[-1]}


def make_example(sentence: str, template: int = 0) -> dict[str, Any]:
    """One record: the chat ``messages`` (user instruction, assistant JSON), the ``sentence``,
    the ``answer`` dict that :func:`score` compares with, and the ``template`` used."""
    answer = fields(sentence)
    if answer is None:
        raise ValueError(f"sentence does not qualify for the task (see lmcourse.instructions): {sentence!r:.80}")
    prompt = TEMPLATES[template].replace("{sentence}", sentence)
    return {"messages": [{"role": "user", "content": prompt},
                         {"role": "assistant", "content": json.dumps(answer, ensure_ascii=False)}],
            "sentence": sentence, "answer": answer, "template": template}


def build_split(lines: Sequence[str], with_year: int, without_year: int, seed: str | int = 0) -> list[dict[str, Any]]:
    """`with_year` + `without_year` examples from the sentences of `lines`, sampled and shuffled by
    ``random.Random(seed)``, each with a random phrasing; ids are ``"{seed}-{index}"``."""
    pool = sentences(lines)
    dated = [s for s in pool if fields(s)["year"] is not None]
    undated = [s for s in pool if fields(s)["year"] is None]
    if len(dated) < with_year or len(undated) < without_year:
        raise ValueError(f"asked for {with_year} sentences with a year and {without_year} without, but the lines "
                         f"hold only {len(dated)} and {len(undated)}")
    rng = random.Random(seed)
    chosen = rng.sample(dated, with_year) + rng.sample(undated, without_year)
    rng.shuffle(chosen)
    examples = [make_example(s, rng.randrange(len(TEMPLATES))) for s in chosen]
    return [{"id": f"{seed}-{k:03d}", **e} for k, e in enumerate(examples)]


def write_instructions(folder: str | Path | None = None, seed: int = 0) -> dict[str, Path]:
    """Build every split of :data:`SPLIT_SIZES` from the ``wiki`` corpus and write one JSON record
    per line to ``folder/{split}.jsonl`` (default: ``data/instructions``); returns the paths."""
    folder = Path(folder) if folder is not None else data_file("README.md").parent / "instructions"
    corpus = load_corpus("wiki")
    paths = {}
    for name, (source, with_year, without_year) in SPLIT_SIZES.items():
        examples = build_split(getattr(corpus, source), with_year, without_year, seed=f"{name}-{seed}")
        paths[name] = folder / f"{name}.jsonl"
        atomic_write_text(paths[name], "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
    return paths


def load_instructions(split: str = "train") -> list[dict[str, Any]]:
    """The records of ``data/instructions/{split}.jsonl`` (``"train"``, ``"valid"`` or ``"heldout"``)."""
    if split not in SPLIT_SIZES:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLIT_SIZES)}")
    text = data_file(f"instructions/{split}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def parse_reply(reply: str) -> dict[str, Any] | None:
    """The JSON object of `reply` (whitespace around it allowed, nothing else), or None.

    >>> parse_reply(' {"year": null} '), parse_reply('Sure! {"year": null}')
    ({'year': None}, None)
    """
    try:
        value = json.loads(reply)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def schema_valid(reply: str) -> bool:
    """Whether `reply` is a JSON object with exactly :data:`KEYS`, the words strings and ``year`` a
    string or null (right or wrong)."""
    value = parse_reply(reply)
    return (value is not None and set(value) == set(KEYS) and isinstance(value["first_word"], str)
            and isinstance(value["last_word"], str) and (value["year"] is None or isinstance(value["year"], str)))


def score(example: Mapping[str, Any], reply: str) -> bool:
    """Whether `reply` is exactly the example's answer as a JSON object (any key order).

    >>> example = make_example("Aikido was first brought to the rest of the world in 1951 by Minoru Mochizuki.")
    >>> score(example, example["messages"][1]["content"]), score(example, '{"year": 1951}')
    (True, False)
    """
    return parse_reply(reply) == example["answer"]


def field_scores(example: Mapping[str, Any], reply: str) -> dict[str, bool]:
    """For each key of :data:`KEYS`, whether the reply's JSON has that field right."""
    value = parse_reply(reply) or {}
    return {key: key in value and value[key] == example["answer"][key] for key in KEYS}


def summarize(examples: Sequence[Mapping[str, Any]], replies: Sequence[str]) -> dict[str, float]:
    """Rates over the examples: ``exact`` (:func:`score`), ``schema_valid`` and each field's."""
    if len(examples) != len(replies) or not examples:
        raise ValueError(f"need one reply per example, got {len(replies)} replies for {len(examples)} examples")
    n = len(examples)
    rates = {"exact": sum(map(score, examples, replies)) / n,
             "schema_valid": sum(map(schema_valid, replies)) / n}
    per_field = [field_scores(e, r) for e, r in zip(examples, replies)]
    rates.update({key: sum(f[key] for f in per_field) / n for key in KEYS})
    return rates


def main() -> None:
    """Write the files and print each one's size and SHA-256 (for data/README.md)."""
    for name, path in write_instructions().items():
        print(f"{path}: {len(load_instructions(name))} examples, {path.stat().st_size:,} bytes, "
              f"sha256 {file_digest(path)}")


if __name__ == "__main__":
    main()
