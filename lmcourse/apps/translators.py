"""Two English-to-French translators for Chapter 9b, and how to score them: Chapter 4a's attention
seq2seq trained on the grammar's pairs (:mod:`lmcourse.apps.translation`), and SmolLM2-135M-Instruct
asked to translate.

The seq2seq model (:class:`lmcourse.seq2seq.Seq2Seq`, a bidirectional GRU encoder and a GRU decoder
with additive attention) reads and writes words here, not characters: :class:`WordVocab` has
:class:`~lmcourse.seq2seq.CharVocab`'s ``encode``, ``decode`` and ``len``, so Chapter 4a's
:func:`~lmcourse.seq2seq.train_seq2seq` and greedy :func:`~lmcourse.seq2seq.translate` take it
unchanged. One vocabulary holds both languages (the model's source and target embeddings are
separate tables over it): 310 words for the grammar's pairs. A word never seen in training becomes
``<unk>``, as in the word-level systems of Bahdanau et al. (2015), who kept 30,000 words per language.

Chapter 9b measures both, on the grammar's held-out pairs and on natural sentences written for the
book; its numbers are printed there by the code that makes them, not repeated here. In short: the
seq2seq translates most unseen noun-adjective combinations exactly, and where it fails it is mostly by
one word, the adjective of the unseen pair; on natural sentences most English words are unknown to it
and it answers with the grammar's sentences. SmolLM2, prompted, writes French-looking text that is
mostly not a translation. Real systems are of another scale: the big Transformer (Vaswani et al.,
2017; about 213M parameters in its English-German configuration), trained on 36 million WMT 2014
English-French sentence pairs, reached 41.0 BLEU on that year's news test set (41.8 in the paper's
later arXiv revision), on other sentences than these, so not a number to rank against.

SmolLM2 gets one user message (:func:`translation_messages`) and answers through
:func:`lmcourse.llama.chat_batch` (:func:`chat_translate`); :func:`first_line` keeps the translation when it
goes on to explain.

:func:`corpus_scores` gives corpus chrF (Popović, 2015: the F-score of character n-grams up to 6,
recall weighted twice as much as precision) and BLEU (Papineni et al., 2002: word n-grams up to 4,
with a brevity penalty), both from sacrebleu (Post, 2018) with its default settings, so they are
computed the way published scores are; and each sentence's chrF, for bootstrap intervals over sentences
(:func:`lmcourse.intervals.mean_interval`, :func:`~lmcourse.intervals.paired_mean_difference`).

Left out: subwords (an unknown word cannot even be copied), beam search, and back-translation.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch

from lmcourse.llama.batch import chat_batch
from lmcourse.seq2seq import EOS_ID, Seq2Seq, Seq2SeqConfig, chapter_train_config, train_seq2seq
from lmcourse.seq2seq import translate as greedy_outputs
from lmcourse.train import History, TrainConfig

__all__ = ["tokenize", "detokenize", "WordVocab", "Translator", "TRANSLATOR_SIZES", "translator_train_config",
           "train_translator", "translate", "TRANSLATION_PROMPT", "translation_messages", "chat_translate",
           "first_line", "Scores", "corpus_scores"]


def tokenize(text: str) -> list[str]:
    """Lower-cased words, with an elided word kept whole (``l'``) and each punctuation mark apart.

    >>> tokenize("L'oiseau ne dort pas.")
    ["l'", 'oiseau', 'ne', 'dort', 'pas', '.']
    """
    return re.findall(r"\w+'|\w+|[^\w\s]", text.lower())


def detokenize(words: Sequence[str]) -> str:
    """The sentence the grammar would write: an elided word joined to the next, no space before a
    full stop or a comma, the first letter a capital.

    >>> detokenize(["l'", "oiseau", "ne", "dort", "pas", "."])
    "L'oiseau ne dort pas."
    """
    text = re.sub(r" ([.,])", r"\1", " ".join(words).replace("' ", "'"))
    return text[:1].upper() + text[1:]


class WordVocab:
    """Words <-> ids: ``<pad>`` = 0, ``<s>`` = 1, ``</s>`` = 2 (the ids of Chapter 4a's
    :class:`~lmcourse.seq2seq.CharVocab`), ``<unk>`` = 3 for any word it does not know, then the words.

    >>> vocab = WordVocab.from_texts(["The cat sleeps.", "Le chat dort."])
    >>> len(vocab), vocab.encode("The dog sleeps."), vocab.decode([8, 9, 10, 7, 2, 0])
    (11, [4, 3, 6, 7], 'Le chat dort.')
    """

    specials = ("<pad>", "<s>", "</s>", "<unk>")
    UNK_ID = 3

    def __init__(self, words: Iterable[str]) -> None:
        words = [words] if isinstance(words, str) else list(words)
        if len(set(words)) != len(words) or set(words) & set(self.specials):
            raise ValueError("words must be a list of distinct words, none of them <pad>, <s>, </s> or <unk>")
        self.itos = [*self.specials, *words]
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def from_texts(cls, texts: Iterable[str]) -> WordVocab:
        """Every word of `texts` (by :func:`tokenize`), in order of first appearance."""
        return cls(dict.fromkeys(w for text in texts for w in tokenize(text)))

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, text: str) -> list[int]:
        """The ids of the words of `text` (no ``<s>`` or ``</s>`` added)."""
        if not isinstance(text, str):
            raise TypeError(f"encode expects a str, got {type(text).__name__}: {text!r:.60}")
        return [self.stoi.get(w, self.UNK_ID) for w in tokenize(text)]

    def decode(self, ids: Sequence[int] | torch.Tensor) -> str:
        """The sentence of `ids` up to the first ``</s>``, special ids skipped."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else list(ids)
        ids = ids[:ids.index(EOS_ID)] if EOS_ID in ids else ids
        return detokenize([self.itos[i] for i in ids if i >= len(self.specials)])

    def __repr__(self) -> str:
        return f"WordVocab({len(self) - len(self.specials)} words)"


@dataclass
class Translator:
    """A trained :class:`~lmcourse.seq2seq.Seq2Seq`, its vocabulary and its training history."""

    model: Seq2Seq
    vocab: WordVocab
    history: History


TRAIN_CHANGES = {"max_steps": 500, "warmup_steps": 50}  # to chapter_train_config: 32,000 pairs, about 5 epochs
TRANSLATOR_SIZES = {"emb_dim": 64, "hidden_dim": 128, "attention_dim": 64}  # Seq2SeqConfig fields


def translator_train_config(**changes: Any) -> TrainConfig:
    """The settings :func:`train_translator` uses: Chapter 4a's, for 500 steps of 64 pairs; `changes` override them.

    >>> translator_train_config().max_steps
    500
    """
    return chapter_train_config(**{**TRAIN_CHANGES, "progress": False, **changes})


def train_translator(pairs: Sequence[tuple[str, str]], train_config: TrainConfig | None = None, seed: int = 0,
                     **sizes: Any) -> Translator:
    """Train Chapter 4a's attention seq2seq on (English, French) `pairs`, word by word. The
    vocabulary is every word of the pairs; `sizes` override :data:`TRANSLATOR_SIZES` (and any other
    :class:`~lmcourse.seq2seq.Seq2SeqConfig` field); `seed` seeds the initialisation.

    >>> threads = torch.get_num_threads(); torch.set_num_threads(1)
    >>> pairs = [("The cat sleeps.", "Le chat dort."), ("The dog runs.", "Le chien court.")]
    >>> translator = train_translator(pairs, translator_train_config(max_steps=30, warmup_steps=5))
    >>> translate(translator, ["The dog runs.", "The dog sleeps."])  # two pairs teach no combining
    ['Le chien court.', 'Le chat dort.']
    >>> torch.set_num_threads(threads)
    """
    vocab = WordVocab.from_texts(text for pair in pairs for text in pair)
    torch.manual_seed(seed)
    model = Seq2Seq(Seq2SeqConfig(vocab_size=len(vocab), **{**TRANSLATOR_SIZES, **sizes}))
    history = train_seq2seq(model, pairs, train_config or translator_train_config(), vocab=vocab)
    return Translator(model, vocab, history)


def translate(translator: Translator, sentences: Sequence[str], batch_size: int = 256) -> list[str]:
    """Greedy translations of English `sentences` (unknown words are ``<unk>`` to the model), cut at
    twice the longest sentence's number of words, plus 5."""
    if isinstance(sentences, str) or not isinstance(sentences, (list, tuple)):
        raise TypeError(f"sentences must be a list of str, got {type(sentences).__name__}; wrap one in [...]")
    for i, sentence in enumerate(sentences):
        if not isinstance(sentence, str) or not tokenize(sentence):
            raise ValueError(f"sentences[{i}] has no words to translate: {sentence!r:.60}")
    max_len = 2 * max(len(tokenize(s)) for s in sentences) + 5
    return greedy_outputs(translator.model, list(sentences), translator.vocab, batch_size, max_len)


TRANSLATION_PROMPT = "Translate this English sentence into French. Reply with the French sentence only.\n\n{sentence}"


def translation_messages(sentence: str) -> list[dict[str, str]]:
    """The conversation that asks a chat model for a translation (for :func:`lmcourse.llama.chat`).

    >>> translation_messages("The cat sleeps.")[0]["content"].splitlines()[-1]
    'The cat sleeps.'
    """
    if not isinstance(sentence, str) or not sentence.strip():
        raise ValueError(f"sentence must be a non-empty str, got {sentence!r:.60}")
    return [{"role": "user", "content": TRANSLATION_PROMPT.format(sentence=sentence.strip())}]


def chat_translate(sentences: Sequence[str], *, model: Any, tokenizer: Any, max_tokens: int = 64,
                   batch_size: int = 16) -> list[str]:
    """A chat model's greedy translation of each sentence: the :func:`first_line` of its reply to
    :func:`translation_messages`, the replies generated `batch_size` at a time
    (:func:`lmcourse.llama.chat_batch`, the replies :func:`lmcourse.llama.chat` gives one by one)."""
    replies = chat_batch([translation_messages(s) for s in sentences], model=model, tokenizer=tokenizer,
                         max_tokens=max_tokens, batch_size=batch_size)
    return [first_line(reply.text) for reply in replies]


def first_line(reply: str) -> str:
    """The first non-empty line of a chat model's reply, without surrounding quotes.

    >>> first_line('"Le chat dort."\\n\\nThis means that the cat is asleep.')
    'Le chat dort.'
    """
    lines = [line.strip() for line in reply.splitlines() if line.strip()]
    return lines[0].strip('"\u201c\u201d') if lines else ""


class Scores(NamedTuple):
    """Corpus chrF and BLEU (0 to 100), the chrF of each sentence on its own, sacrebleu's 95% bootstrap
    interval of each corpus score, and the signatures that say how they were computed."""

    chrf: float
    bleu: float
    sentence_chrf: list[float]
    chrf_interval: tuple[float, float]
    bleu_interval: tuple[float, float]
    signature: str  # sacrebleu's signatures of both metrics, e.g. "chrF2|nrefs:1|bs:1000|seed:12345|..."


def _with_interval(metric: Any, hypotheses: list[str], references: list[str], n_bootstrap: int
                   ) -> tuple[float, tuple[float, float], str]:
    """A sacrebleu metric's corpus score, its 95% interval from sacrebleu's own bootstrap over sentences
    (the resamples' mean plus or minus half the width of their central 95%, as sacrebleu prints it,
    clipped to the scores' range 0-100: near a perfect score the symmetric interval would pass 100) and
    the metric's signature."""
    score = metric.corpus_score(hypotheses, [references], n_bootstrap=n_bootstrap)
    mean, half = score._mean, score._ci  # sacrebleu keeps the bootstrap's mean and half-width here
    return score.score, (max(mean - half, 0.0), min(mean + half, 100.0)), f"{score.name}|{metric.get_signature()}"


def corpus_scores(hypotheses: Sequence[str], references: Sequence[str], n_bootstrap: int = 1000) -> Scores:
    """sacrebleu's corpus chrF and BLEU of `hypotheses` against one reference each, with 95% intervals
    from `n_bootstrap` resamples of the sentences (sacrebleu's seed, 12345: the same numbers every run),
    and each sentence's chrF (a corpus score is not the mean of sentence scores: it pools the n-gram counts).

    >>> scores = corpus_scores(["Le chat dort.", "Un chien."], ["Le chat dort.", "Le chien court."])
    >>> round(scores.chrf, 1), round(scores.bleu, 1), [round(s, 1) for s in scores.sentence_chrf]
    (61.2, 66.3, [100.0, 26.7])
    >>> scores.signature.split("|")[:4]
    ['chrF2', 'nrefs:1', 'bs:1000', 'seed:12345']
    """
    import sacrebleu
    from sacrebleu.metrics import BLEU, CHRF

    for name, texts in (("hypotheses", hypotheses), ("references", references)):
        if isinstance(texts, str) or not all(isinstance(t, str) for t in texts):
            raise TypeError(f"{name} must be a list of str, one per sentence")
    if len(hypotheses) != len(references) or not hypotheses:
        raise ValueError(f"need one reference per hypothesis, got {len(hypotheses)} hypotheses and "
                         f"{len(references)} references")
    if not isinstance(n_bootstrap, int) or n_bootstrap < 2:
        raise ValueError(f"n_bootstrap must be an int >= 2 (resamples for the interval), got {n_bootstrap!r}")
    hyps, refs = list(hypotheses), list(references)
    chrf, chrf_interval, chrf_signature = _with_interval(CHRF(), hyps, refs, n_bootstrap)
    bleu, bleu_interval, bleu_signature = _with_interval(BLEU(), hyps, refs, n_bootstrap)
    return Scores(chrf, bleu, [sacrebleu.sentence_chrf(h, [r]).score for h, r in zip(hyps, refs)],
                  chrf_interval, bleu_interval, f"{chrf_signature}; {bleu_signature}")
