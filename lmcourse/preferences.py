"""Preference pairs written for this book (Chapter 8): answer a general question in one sentence.

SmolLM2-135M-Instruct, asked a general question, writes a paragraph. The behaviour to teach with DPO
is to stop after the first sentence. The pairs are *on-policy*: for each training question the
model's own greedy reply, cut after its last complete sentence, is the **rejected** answer, and its
first sentence alone is the **chosen** one. Both begin with the same words, so a pair says only
where to stop, and the behaviour is scored by code: the number of sentences in a reply
(:func:`sentences`), and the probability that the model ends its turn right after the first sentence
(:func:`end_probability`), which one forward pass measures without generating.

How the files are made (:func:`write_preferences`): :data:`TOPICS` (general-knowledge topics written
for the book) are split by a seeded shuffle into 62 training and 24 held-out topics, so a held-out
question is never about a topic seen in training; each topic gets one of :data:`TEMPLATES` at
random (seeded). Replies are greedy (:func:`lmcourse.llama.chat`, ``temperature=0``) with at most
``max_tokens`` tokens; a training pair is kept only if its reply has at least two complete
sentences. ``python -m lmcourse.preferences`` rewrites ``data/preferences/{train,heldout}.jsonl``.

Left out: preferences of people (these are rules), ties, and several rejected replies per prompt.
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lmcourse._io import atomic_write_text, file_digest
from lmcourse.data import data_file

__all__ = ["TOPICS", "TEMPLATES", "HELDOUT_TOPICS", "split_topics", "prompt_for", "sentences", "first_sentence",
           "complete_sentences", "write_preferences", "load_preferences", "end_probability", "end_probabilities"]

TOPICS = (
    "photosynthesis", "volcanoes", "the printing press", "black holes", "honey bees", "the Roman Empire",
    "glaciers", "vaccines", "the water cycle", "earthquakes", "the telephone", "rainbows", "tides",
    "the Great Wall of China", "penguins", "electricity", "the Moon", "coral reefs", "the Renaissance",
    "deserts", "the human heart", "chess", "the Internet", "dinosaurs", "the Sahara", "bread", "wind power",
    "the Olympic Games", "clouds", "the Amazon rainforest", "the steam engine", "DNA", "the solar system",
    "whales", "paper", "the piano", "magnets", "the Nile", "bicycles", "thunderstorms", "ancient Egypt",
    "the immune system", "coffee", "maps", "the violin", "mountains", "salt", "kangaroos",
    "satellites", "rivers", "the Industrial Revolution", "mushrooms", "lighthouses", "the alphabet",
    "comets", "cheese", "the compass", "forests", "bridges", "the theory of evolution", "snow", "trains",
    "the brain", "gold", "the Pacific Ocean", "owls", "cotton", "the calendar", "microscopes", "tea",
    "the Eiffel Tower", "sharks", "glass", "the French Revolution", "rain", "clocks", "ants", "the Sun",
    "oxygen", "islands", "music notation", "the camera", "the Arctic", "windmills", "spiders", "soap",
)
TEMPLATES = ("Tell me about {topic}.", "What do you know about {topic}?", "Explain {topic}.",
             "Can you describe {topic}?")
HELDOUT_TOPICS = 24

# a sentence ends at . ! or ? (closing quotes or brackets may follow) before whitespace and a capital,
# a digit or an opening quote or bracket, or at the end of the text; not inside "3.14" (no space),
# and a full stop does not end one after an abbreviation ("e.g.", "Dr.") or one capital letter ("J.")
_END = re.compile(r"[.!?]+[\"'”’)\]]*(?=\s+[A-Z0-9\"'“‘(\[]|\s*$)")
_ABBREVIATION = re.compile(r"(?<![A-Za-z])(?:e\.g|i\.e|Dr|Mr|Mrs|Ms|St|vs|[A-Z])\.$")


def split_topics(seed: int = 0) -> tuple[list[str], list[str]]:
    """The training and held-out topics: a seeded shuffle of :data:`TOPICS`, the last
    :data:`HELDOUT_TOPICS` held out."""
    topics = list(TOPICS)
    random.Random(seed).shuffle(topics)
    return topics[:-HELDOUT_TOPICS], topics[-HELDOUT_TOPICS:]


def prompt_for(topic: str, rng: random.Random) -> str:
    """One question about `topic`, in a phrasing drawn by `rng`."""
    return rng.choice(TEMPLATES).replace("{topic}", topic)


def _sentence_ends(text: str) -> list[int]:
    """The offsets in `text` just after each complete sentence (its punctuation and closing quotes)."""
    return [m.end() for m in _END.finditer(text)
            if m.group() != "." or not _ABBREVIATION.search(text, 0, m.end())]


def sentences(text: str) -> list[str]:
    """The sentences of a reply, in order; a trailing fragment without end punctuation counts as one.

    >>> sentences("Bees make honey, e.g. from clover. They live in hives! Dr. Smith keeps 3.5 million.")
    ['Bees make honey, e.g. from clover.', 'They live in hives!', 'Dr. Smith keeps 3.5 million.']
    >>> sentences('It is called "the red planet." Its soil is red'), sentences("  ")
    (['It is called "the red planet."', 'Its soil is red'], [])
    """
    cuts = [0, *_sentence_ends(text), len(text)]
    parts = (text[start:end].strip() for start, end in zip(cuts, cuts[1:]))
    return [part for part in parts if part]


def first_sentence(text: str) -> str:
    """The first sentence of `text` (``""`` if it has none).

    >>> first_sentence("Pi is about 3.14. It never ends.")
    'Pi is about 3.14.'
    """
    parts = sentences(text)
    return parts[0] if parts else ""


def complete_sentences(text: str) -> str:
    """`text` cut after its last complete sentence (one that ends with . ! or ?), as written.

    >>> complete_sentences("It rains. Clouds form when the air")
    'It rains.'
    """
    ends = _sentence_ends(text)
    return text[:ends[-1]].strip() if ends else ""


def write_preferences(folder: str | Path | None = None, max_tokens: int = 96, seed: int = 0,
                      progress: bool = True) -> dict[str, Path]:
    """Generate SmolLM2's greedy replies and write ``train.jsonl`` (``id``, ``topic``, ``prompt``,
    ``chosen``, ``rejected``) and ``heldout.jsonl`` (``id``, ``topic``, ``prompt``, ``base_reply``,
    ``first_sentence``) to `folder` (default ``data/preferences``). Takes minutes on one thread;
    `progress` shows a tqdm bar over the questions."""
    from tqdm.auto import tqdm

    from lmcourse.llama import chat, load_smollm2

    folder = Path(folder) if folder is not None else data_file("README.md").parent / "preferences"
    model, tokenizer = load_smollm2()
    model.eval()
    rng = random.Random(seed)
    records: dict[str, list[dict[str, Any]]] = {"train": [], "heldout": []}
    train_topics, heldout_topics = split_topics(seed)
    jobs = [("train", t) for t in train_topics] + [("heldout", t) for t in heldout_topics]
    for split, topic in tqdm(jobs, desc="replies", unit="question", disable=not progress):
        prompt = prompt_for(topic, rng)
        text = chat([{"role": "user", "content": prompt}], model=model, tokenizer=tokenizer,
                    max_tokens=max_tokens, temperature=0.0).text
        reply = complete_sentences(text)
        record = {"id": f"{split}-{len(records[split]):03d}", "topic": topic, "prompt": prompt}
        if split == "train":
            if len(sentences(reply)) < 2:
                continue
            record.update(chosen=first_sentence(reply), rejected=reply)
        else:
            record.update(base_reply=reply, first_sentence=first_sentence(reply))
        records[split].append(record)
    paths = {}
    for split, rows in records.items():
        paths[split] = folder / f"{split}.jsonl"
        atomic_write_text(paths[split], "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return paths


def load_preferences(split: str = "train") -> list[dict[str, Any]]:
    """The records of ``data/preferences/{split}.jsonl`` (``"train"`` or ``"heldout"``)."""
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; choose train or heldout")
    text = data_file(f"preferences/{split}.jsonl").read_text(encoding="utf-8")
    return [json.loads(line) for line in text.splitlines()]


def end_probability(model: Any, tokenizer: Any, prompt: str, reply_prefix: str) -> float:
    """The probability that the model ends its turn (``tokenizer.eos_id``) right after writing
    `reply_prefix` in reply to the user message `prompt`: one forward pass, no generation
    (:func:`lmcourse.llama.chat.next_token_probability`)."""
    from lmcourse.llama.chat import next_token_probability

    return next_token_probability(model, tokenizer, prompt, [tokenizer.eos_id], reply_prefix)


def end_probabilities(model: Any, tokenizer: Any, prompts: Sequence[str], prefixes: Sequence[str]) -> np.ndarray:
    """:func:`end_probability` for each (prompt, prefix) pair: ``(N,)``."""
    if len(prompts) != len(prefixes) or not prompts:
        raise ValueError(f"need one prefix per prompt, got {len(prompts)} prompts and {len(prefixes)} prefixes")
    return np.array([end_probability(model, tokenizer, p, s) for p, s in zip(prompts, prefixes)])


def main() -> None:
    """Write the files on one thread (as the tests run: another thread count can round differently
    and change a greedy token) and print each one's size and SHA-256 (for data/README.md)."""
    import torch

    torch.set_num_threads(1)
    for name, path in write_preferences().items():
        print(f"{path}: {len(load_preferences(name))} records, {path.stat().st_size:,} bytes, "
              f"sha256 {file_digest(path)}")


if __name__ == "__main__":
    main()
