"""Summarising an article (Chapter 9b): the task built from the book's corpus, two extractive
summarisers, a prompt for an abstractive one, and the scores that compare them.

- **The task.** A Wikipedia article opens with a lead written to summarise the rest, so
  :func:`summary_pairs` takes each wiki article's first paragraph as the reference summary of its
  body (the paragraphs after it). The lead summarises the *whole* article and the body is cut to a
  word budget, so some of the lead's facts are not in the body any summariser reads.
- **Extractive.** :func:`extractive_summary` picks the body's sentences closest to the body's
  centroid, the mean of its MiniLM sentence vectors (centroid-based summarisation: Radev et al.,
  2004, with embeddings as Rossiello et al., 2017), and keeps them in document order. The usual
  baseline, the article's first sentences, is the reference itself here, so the baseline is the
  *body's* first sentences: :func:`body_lead`.
- **Abstractive.** :func:`summary_messages` is the conversation a chat model summarises from, the
  body cut to fit a token budget; :func:`lmcourse.llama.chat` writes the summary.
- **Scores.** :func:`rouge_scores`: ROUGE-1, ROUGE-2 and ROUGE-L F1 (Lin, 2004) by the
  ``rouge_score`` package, with Porter stemming. :func:`unsupported_entities`: the names and numbers
  of a summary that its source never mentions, a check of factual consistency that code can do.

Sentences are split by :func:`lmcourse.data.sentences` (a regular expression; NLTK's punkt needs a
download). Left out: trained summarisers, redundancy penalties (MMR), and model-based consistency
checks (entailment, question answering).
"""

from __future__ import annotations

import functools
import re
from typing import Any, NamedTuple

import numpy as np

from lmcourse._checks import check_positive_int
from lmcourse.data import load_documents, sentences
from lmcourse.llama.chat import prompt_ids

__all__ = ["SummaryPair", "summary_pairs", "skipped_articles", "body_lead", "centroid_ranking", "fill_budget",
           "extractive_summary", "summary_messages", "rouge_scores", "entities", "unsupported_entities",
           "unsupported_rate", "INSTRUCTION"]

INSTRUCTION = "Summarise the following article in two or three sentences."


class SummaryPair(NamedTuple):
    """One article: its body (paragraphs joined by ``"\\n"``) and its lead, the reference summary."""

    title: str
    body: str
    reference: str


def _words(text: str) -> int:
    return len(text.split())


def _cut_body(paragraphs: tuple[str, ...], max_words: int) -> str:
    """The paragraphs up to the last whole sentence that fits in `max_words` (at least one sentence)."""
    kept: list[str] = []
    used = 0
    for paragraph in paragraphs:
        taken = []
        for sentence in sentences([paragraph]):
            if used and used + _words(sentence) > max_words:
                return "\n".join(kept + ([" ".join(taken)] if taken else []))
            taken.append(sentence)
            used += _words(sentence)
        kept.append(" ".join(taken))
    return "\n".join(kept)


def summary_pairs(split: str | None = "test", min_body_paragraphs: int = 3,
                  max_body_words: int = 1000) -> list[SummaryPair]:
    """``(title, body, reference)`` for the wiki articles of `split` (None: all 96), in corpus order.

    The reference is the article's first paragraph, the body the paragraphs after it, cut after the
    last whole sentence that fits in `max_body_words` (a summariser reads the opening of a long
    article, as a model with a short context would). Articles whose body has fewer than
    `min_body_paragraphs` paragraphs are skipped: there is little to summarise
    (:func:`skipped_articles` names them).

    >>> pairs = summary_pairs("test")
    >>> len(pairs), pairs[0].title, pairs[0].reference.split(".")[0]
    (10, 'Alabama', 'Alabama is a state located in the southeastern region of the United States')
    """
    check_positive_int("min_body_paragraphs", min_body_paragraphs)
    check_positive_int("max_body_words", max_body_words)
    return [SummaryPair(title, _cut_body(paragraphs[1:], max_body_words), paragraphs[0])
            for title, paragraphs in load_documents("wiki", split) if len(paragraphs) - 1 >= min_body_paragraphs]


def skipped_articles(split: str | None = "test", min_body_paragraphs: int = 3) -> list[str]:
    """The titles :func:`summary_pairs` skips: articles with fewer than `min_body_paragraphs` body paragraphs.

    >>> skipped_articles(None)
    ['Academy Award for Best Production Design']
    """
    check_positive_int("min_body_paragraphs", min_body_paragraphs)
    return [title for title, paragraphs in load_documents("wiki", split) if len(paragraphs) - 1 < min_body_paragraphs]


def _check_body(body: str) -> None:
    if not isinstance(body, str) or not body.strip():
        raise ValueError("body must be a non-empty string (an article's paragraphs joined by newlines)")


def _body_sentences(body: str) -> list[str]:
    _check_body(body)
    return sentences(body.split("\n"))


def body_lead(body: str, k: int | None = 3, max_words: int | None = None) -> str:
    """The baseline: the body's first `k` sentences (None: no limit), stopping earlier before a sentence
    that would take the summary past `max_words` (the first sentence is always kept).

    >>> body_lead("One two. Three four five. Six.", k=2)
    'One two. Three four five.'
    >>> body_lead("One two. Three four five. Six.", k=None, max_words=4)
    'One two.'
    """
    if k is None and max_words is None:
        raise ValueError("give k (a number of sentences) or max_words (a word budget), or both")
    chosen: list[str] = []
    for sentence in _body_sentences(body)[:k]:
        if chosen and max_words is not None and _words(" ".join(chosen + [sentence])) > max_words:
            break
        chosen.append(sentence)
    return " ".join(chosen)


def centroid_ranking(vectors: Any) -> list[int]:
    """Row indices of ``(N, C)`` sentence vectors by cosine to their mean (the centroid), most central
    first; ties go to the earlier sentence.

    >>> centroid_ranking(np.array([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]]))
    [2, 0, 1]
    """
    matrix = np.asarray(vectors.detach().cpu() if hasattr(vectors, "detach") else vectors, dtype=np.float64)
    if matrix.ndim != 2 or not matrix.size:
        raise ValueError(f"vectors must be a non-empty (N, C) matrix, one row per sentence, got shape {matrix.shape}")
    unit = matrix / np.maximum(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12)  # (N, C)
    centroid = unit.mean(axis=0)  # (C,)
    scores = unit @ centroid / max(np.linalg.norm(centroid), 1e-12)  # (N, C) @ (C,) -> (N,): cosines
    return np.argsort(-scores, kind="stable").tolist()


def fill_budget(order: list[int], lengths: list[int], max_words: int) -> list[int]:
    """Take sentences in the order of `order` (best first), skipping any that would take the total of
    `lengths` past `max_words`; the best is always taken. Returned in document order.

    >>> fill_budget([2, 0, 1], lengths=[5, 9, 4], max_words=10)
    [0, 2]
    """
    check_positive_int("max_words", max_words)
    chosen: list[int] = []
    used = 0
    for i in order:
        if not chosen or used + lengths[i] <= max_words:
            chosen.append(i)
            used += lengths[i]
    return sorted(chosen)


def extractive_summary(body: str, model: Any, tokenizer: Any, max_words: int = 75) -> str:
    """The body's most central sentences (:func:`centroid_ranking` of their MiniLM vectors) in document
    order, up to `max_words` (:func:`fill_budget`; 75 is about the corpus's median lead).
    `model` and `tokenizer` come from :func:`lmcourse.bert.load_minilm`."""
    from lmcourse.bert import sentence_embeddings

    parts = _body_sentences(body)
    vectors = sentence_embeddings(model, tokenizer, parts)  # (N, C)
    chosen = fill_budget(centroid_ranking(vectors), [_words(s) for s in parts], max_words)
    return " ".join(parts[i] for i in chosen)


def summary_messages(body: str, tokenizer: Any, max_prompt_tokens: int = 1024,
                     instruction: str = INSTRUCTION) -> list[dict[str, str]]:
    """The conversation that asks a chat model to summarise `body`: one user message, the instruction
    then the body, cut after the last whole word with which the rendered prompt (chat template and
    generation prompt included, as :func:`lmcourse.llama.chat` renders it) stays within
    `max_prompt_tokens`. `tokenizer` needs ``apply_chat_template`` and ``encode``.
    """
    _check_body(body)
    check_positive_int("max_prompt_tokens", max_prompt_tokens)
    ends = [m.end() for m in re.finditer(r"\S+", body)]  # where each word of the body ends

    def messages(n_words: int) -> list[dict[str, str]]:
        return [{"role": "user", "content": f"{instruction}\n\n{body[:ends[n_words - 1]] if n_words else ''}"}]

    overhead = len(prompt_ids(tokenizer, messages(0)))
    if overhead >= max_prompt_tokens:
        raise ValueError(f"max_prompt_tokens={max_prompt_tokens} leaves no room for the body: the instruction and "
                         f"chat template alone take {overhead} tokens; raise it (the model reads 8,192)")
    low, high = 0, len(ends)  # the most words that fit lie in [low, high]
    while low < high:
        mid = (low + high + 1) // 2
        if len(prompt_ids(tokenizer, messages(mid))) <= max_prompt_tokens:
            low = mid
        else:
            high = mid - 1
    if low == 0:
        raise ValueError(f"max_prompt_tokens={max_prompt_tokens} fits not even the body's first word after the "
                         f"{overhead} tokens of instruction and template; raise it")
    return messages(low)


@functools.cache
def _scorer() -> Any:
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rouge1", "rouge2", "rougeL"], use_stemmer=True)


def rouge_scores(prediction: str, reference: str) -> dict[str, float]:
    """ROUGE-1, ROUGE-2 and ROUGE-L F1 of `prediction` against `reference`: unigram, bigram and
    longest-common-subsequence overlap, on lower-cased alphanumeric words, Porter-stemmed.

    >>> rouge_scores("the cat sat", "the cat ran")
    {'rouge1': 0.6666666666666666, 'rouge2': 0.5, 'rougeL': 0.6666666666666666}
    """
    if not isinstance(prediction, str) or not isinstance(reference, str):
        raise TypeError("rouge_scores compares two strings: rouge_scores(prediction, reference)")
    return {name: score.fmeasure for name, score in _scorer().score(reference, prediction).items()}


_CAP = r"[A-Z][A-Za-z'’-]*"  # a capitalised word: "Gulf", "NASA", "O'Brien", "Mon-Khmer"
_JOINERS = {"of", "the", "de", "la", "le", "du", "da", "di", "del", "der", "von", "van"}
_RE_NAME = re.compile(rf"(?<![\w'’-]){_CAP}(?:\s+(?:(?:{'|'.join(sorted(_JOINERS))})\s+)*{_CAP})+(?![\w'’-])")
_RE_NUMBER = re.compile(r"(?<![\d.,])\d+(?:,\d{3})*(?:\.\d+)?(?!\d)")  # "1901", "4,196,457", "3.5"; "30" of "30th"
_RE_SENTENCE_START = re.compile(r"(?:^|[.!?][\"'’)\]]*\s+|\n)\s*$")
_RE_LOWER_WORD = re.compile(r"\b[a-z][a-z'’-]*\b")


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS)


def _name_at(text: str, match: re.Match[str], ordinary: set[str]) -> str | None:
    """The name a run of capitalised words stands for: at a sentence start, its first word is dropped
    if it is an ordinary word (a stop word, or found in lower case); None if under two capitalised words remain."""
    words = match.group().split()
    if _RE_SENTENCE_START.search(text[:match.start()]) and words[0].lower() in ordinary:
        words = words[1:]
        while words and words[0] in _JOINERS:
            words = words[1:]
    return " ".join(words) if sum(w[0].isupper() for w in words) >= 2 else None


def entities(text: str, context: str = "") -> list[str]:
    """The capitalised multi-word names and the numbers of `text`, each once, in order of appearance.

    A name is two or more capitalised words in a row, possibly joined by ``of``, ``the``, ``de``,
    ``von`` and the like ("Gulf of Mexico"). A sentence's first word is capitalised anyway, so it is
    dropped from a name when it is an English stop word (scikit-learn's list) or occurs in lower
    case in `text` or `context` ("The United States" -> "United States", "In Alabama" -> no name).
    A number is a run of digits with optional thousands commas and decimals; its commas are removed.

    >>> entities("The Gulf of Mexico is south of Alabama. In 1901, 4,196,457 people met Mr Smith.")
    ['Gulf of Mexico', '1901', '4196457', 'Mr Smith']
    """
    if not isinstance(text, str) or not isinstance(context, str):
        raise TypeError("entities reads strings: entities(text, context='')")
    ordinary = set(_stop_words()) | set(_RE_LOWER_WORD.findall(text)) | set(_RE_LOWER_WORD.findall(context))
    found: list[tuple[int, str]] = [(m.start(), m.group().replace(",", "")) for m in _RE_NUMBER.finditer(text)]
    found += [(m.start(), name) for m in _RE_NAME.finditer(text) if (name := _name_at(text, m, ordinary))]
    return list(dict.fromkeys(name for _, name in sorted(found)))


def _occurs(entity: str, source: str, source_numbers: set[str]) -> bool:
    if entity[0].isdigit():
        return entity in source_numbers
    pattern = r"\s+".join(map(re.escape, re.sub(r"['’]?s$", "", entity).split()))  # a plural or possessive s aside
    return re.search(rf"(?<![\w'’-]){pattern}(?:['’]?s)?(?![\w'’-])", source, re.IGNORECASE) is not None


def unsupported_entities(summary: str, source: str) -> list[str]:
    """The :func:`entities` of `summary` that `source` never mentions: a name must occur in the source
    as whole words (case, spacing and a final plural or possessive "s" aside: "African Americans"
    supports "African American"), a number must be one of the source's numbers ("19" is not
    supported by "1901"). An extract of the source has none; a model that invents has some.

    >>> unsupported_entities("Alabama joined the United States in 1819, said John Smith.",
    ...                      "Alabama became a state of the United States in 1819.")
    ['John Smith']
    """
    if not isinstance(source, str):
        raise TypeError("source must be a string: the text the summary was written from")
    source_numbers = {m.group().replace(",", "") for m in _RE_NUMBER.finditer(source)}
    return [e for e in entities(summary, context=source) if not _occurs(e, source, source_numbers)]


def unsupported_rate(summary: str, source: str) -> float:
    """The share of the summary's :func:`entities` that :func:`unsupported_entities` finds unsupported;
    0.0 for a summary that names nothing (it asserts no name or number the source lacks).

    >>> unsupported_rate("In 1819 and 1820 John Smith wrote.", "John Smith wrote in 1819.")
    0.3333333333333333
    """
    named = entities(summary, context=source)
    return len(unsupported_entities(summary, source)) / len(named) if named else 0.0
