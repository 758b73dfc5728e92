r"""Masked language modelling: how BERT learns from raw text, Chapter 5 (BERT).

A decoder-only model predicts each token from its left; BERT (Devlin et al., 2019) reads the
whole sentence at once, so it cannot predict "the next token" (it would see it). Instead some
tokens are hidden and the model predicts them from both sides:

- :func:`mask_tokens` chooses each ordinary token with probability 0.15; of the chosen, 80%
  become ``[MASK]``, 10% a random token, 10% stay as they were. The loss is the cross-entropy at
  the chosen positions only (label ``-100`` elsewhere, PyTorch's ``ignore_index``). The random
  and unchanged 20% stop the model from learning that only ``[MASK]`` positions matter, since
  fine-tuning never shows it a ``[MASK]``.
- :func:`mlm_examples` packs consecutive sentences into sequences ``[CLS] ... [SEP]`` of up to
  ``max_length`` tokens (RoBERTa's "full sentences", Liu et al., 2019: no second segment and no
  next-sentence prediction, which RoBERTa found does not help); :func:`collate` pads them.
- :func:`pretrain_mlm` trains with :class:`lmcourse.train.TrainConfig` (AdamW, warm-up, linear or
  cosine decay, gradient clipping). Masks are drawn afresh every time an example is seen
  ("dynamic masking", RoBERTa) from a generator seeded with ``config.seed``; the validation
  examples get one fixed mask (:func:`evaluate_mlm`), so the loss and the masked-token accuracy
  of different evaluations, and of different runs, are comparable.
- :func:`unigram_baseline` is the model that ignores the context (the training frequency of each
  token): a trained BERT has to beat its accuracy (always the most frequent token) and its loss.
- :func:`fill_mask` shows what the model believes: the top-k tokens for each ``[MASK]``.

The chapter's recipe (2.5 CPU-minutes on one thread, 20 s of them validation)::

    torch.set_num_threads(1)
    corpus = load_corpus("wiki")
    tokenizer = train_wordpiece_vocab(corpus.train, 8000, "vocab.txt")
    train = mlm_examples(tokenizer, sentences(corpus.train), max_length=64)  # 10k examples
    valid = mlm_examples(tokenizer, sentences(corpus.valid), max_length=64)
    torch.manual_seed(0)
    model = BertForMaskedLM(chapter_bert_config(tokenizer.vocab_size))
    history = pretrain_mlm(model, train, valid, pretrain_config(), tokenizer=tokenizer)
    unigram_baseline(train, valid, tokenizer=tokenizer)  # what the context is worth
    fill_mask(model, tokenizer, "The city is the [MASK] of the country.")

Measured with a vocabulary trained this way: the validation loss per chosen token falls from
7.26 nats (step 100) to 6.70 (step 800) and the accuracy over all chosen positions rises from
4.9% to 10.7% (the chapter, with the vocabulary kept in ``data/``, gets 6.76 and 9.7%), against
7.09 nats and 4.2% for the unigram baseline, at about 9,500 tokens per CPU-second. That is 1.25M
tokens, two passes over the training split. Most of that accuracy is copying: at ``[MASK]``
positions only (``MLMEvaluation.mask_accuracy``, :mod:`lmcourse.mlm_metrics`) the model is at
the unigram baseline's level, and copying every input token scores about 10% over all chosen
positions. With the ``data/`` vocabulary, at the chapter's fixed validation mask: 3,200 steps of
the same recipe give 4.7% at ``[MASK]`` after 800 steps, 6.2% after 1,200 and 6.0% after 1,600
(unigram 4.2%), and the same top guess ("the" or ",") for every sentence of Chapter 5's probe
pairs; masking 40% instead of 15% (Wettig et al., 2023) gives 6.4% at ``[MASK]`` (13.2% over all
chosen) after 800 steps, with the same guess everywhere too.

Tensors are batch first. Shape letters: ``B`` batch, ``T`` sequence length, ``V`` vocabulary,
``K`` predictions per mask.

Left out: next-sentence prediction and sentence pairs, whole-word and span masking (SpanBERT),
the 90%/10% split of pre-training into short and long sequences, and mixed precision.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from lmcourse._checks import check_positive_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.bert import IGNORE_INDEX, BertConfig, BertForMaskedLM
from lmcourse.mlm_data import MaskIds, MLMBatch, check_examples, collate, mlm_examples
from lmcourse.mlm_metrics import accuracy_by_kind, copy_baseline
from lmcourse.train import History, TrainConfig, check_example_config, train_on_examples
from lmcourse.wordpiece import WordPieceTokenizer

__all__ = ["IGNORE_INDEX", "MaskIds", "mask_tokens", "mlm_examples", "MLMBatch", "collate",
           "chapter_bert_config", "pretrain_config", "MLMHistory", "MLMEvaluation", "pretrain_mlm",
           "evaluate_mlm",
           "masked_accuracy", "unigram_baseline", "fill_mask"]

MASK_TOKEN = "[MASK]"
VALID_MASK_SEED = 0  # the validation mask is the same in every evaluation and every run


# ---------------------------------------------------------------------------------------------
# Masking

def _check_ids(name: str, ids: Any, vocab_size: int) -> None:
    if not isinstance(ids, torch.Tensor) or ids.dtype != torch.long:
        got = f"dtype {ids.dtype}" if isinstance(ids, torch.Tensor) else type(ids).__name__
        raise TypeError(f"{name} must be a LongTensor of token ids, got {got}; use .long()")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"{name} has ids outside [0, vocab_size={vocab_size}): "
                         f"min {int(ids.min())}, max {int(ids.max())}")


def _check_mask_arguments(input_ids: Any, mask_id: Any, vocab_size: Any, mask_prob: Any) -> None:
    check_positive_int("vocab_size", vocab_size)
    _check_ids("input_ids", input_ids, vocab_size)
    if isinstance(mask_prob, bool) or not isinstance(mask_prob, (int, float)) or not 0 < mask_prob < 1:
        raise ValueError(f"mask_prob must be a number in (0, 1), got {mask_prob!r}; BERT uses 0.15")
    if isinstance(mask_id, bool) or not isinstance(mask_id, int) or not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be an id in [0, vocab_size={vocab_size}), got {mask_id!r}")


def _replacement_ids(special: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """The ids ``(V',)`` that are not in `special`: the tokens a random replacement may take."""
    _check_ids("special_ids", special, vocab_size)
    ordinary = torch.ones(vocab_size, dtype=torch.bool)
    ordinary[special] = False
    if not ordinary.any():
        raise ValueError(f"every id in [0, {vocab_size}) is special: there is no token to mask")
    return ordinary.nonzero().squeeze(1)


def mask_tokens(input_ids: torch.Tensor, *, mask_id: int, vocab_size: int, special_ids: Sequence[int],
                mask_prob: float = 0.15, generator: torch.Generator | None = None
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT's corruption: returns ``(inputs, labels)``, both shaped like `input_ids` ``(B, T)``.

    Each position whose id is not in `special_ids` (nor `mask_id`) is chosen with probability
    `mask_prob`; a chosen token becomes `mask_id` with probability 0.8, a random id with 0.1
    (uniform over the ids that are neither special nor `mask_id`), and stays with 0.1. ``labels``
    hold the original id at chosen positions and ``IGNORE_INDEX`` (-100) elsewhere. One uniform
    number ``u`` per position decides both: chosen if ``u < p``, masked if ``u < 0.8 p``, random if
    ``0.8 p <= u < 0.9 p``. `input_ids` is not modified; the same `generator` state gives the same
    result.

    >>> ids = torch.tensor([[2, 5, 6, 7, 8, 9, 3]])  # [CLS]=2 ... [SEP]=3
    >>> g = torch.Generator().manual_seed(0)
    >>> inputs, labels = mask_tokens(ids, mask_id=4, vocab_size=10, special_ids=[0, 1, 2, 3],
    ...                              mask_prob=0.5, generator=g)
    >>> inputs.tolist(), labels.tolist()
    ([[2, 5, 4, 4, 4, 9, 3]], [[-100, -100, 6, 7, 8, -100, -100]])
    """
    _check_mask_arguments(input_ids, mask_id, vocab_size, mask_prob)
    special = torch.as_tensor(list(special_ids) + [mask_id], dtype=torch.long)
    candidates = _replacement_ids(special, vocab_size)  # (V',) the ids a random replacement may take
    device = input_ids.device
    u = torch.rand(input_ids.shape, generator=generator, device=device)  # (B, T)
    picks = torch.randint(len(candidates), input_ids.shape, generator=generator, device=device)
    eligible = ~torch.isin(input_ids, special.to(device))
    chosen = eligible & (u < mask_prob)
    to_mask = chosen & (u < 0.8 * mask_prob)
    to_random = chosen & (u >= 0.8 * mask_prob) & (u < 0.9 * mask_prob)
    inputs = torch.where(to_mask, torch.full_like(input_ids, mask_id), input_ids)
    inputs = torch.where(to_random, candidates.to(device)[picks], inputs)
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, IGNORE_INDEX))
    return inputs, labels


# ---------------------------------------------------------------------------------------------
# Pre-training and evaluation

def chapter_bert_config(vocab_size: int, **changes: Any) -> BertConfig:
    """The chapter's small BERT (1.45M parameters with 8000 ids, most of them the embeddings):
    :meth:`BertConfig.tiny <lmcourse.bert.BertConfig.tiny>` widened to 128, 2 layers, no dropout
    (dropout slowed each step by a fifth and lowered the accuracy of a 2-minute run from 10.0% to
    9.1%); `changes` override fields.

    >>> cfg = chapter_bert_config(8000)
    >>> cfg.emb_dim, cfg.num_layers, cfg.context_length, cfg.dropout
    (128, 2, 64, 0.0)
    """
    settings = dict(context_length=64, emb_dim=128, num_heads=4, num_layers=2, mlp_dim=512, dropout=0.0)
    return BertConfig.tiny(vocab_size, **{**settings, **changes})


def pretrain_config(**changes: Any) -> TrainConfig:
    """The chapter's pre-training settings (a fresh :class:`TrainConfig`); `changes` override fields.

    800 steps of 32 examples (1.25M tokens, about two passes over the Wikipedia training split)
    take about 2.2 CPU-minutes on one thread with :func:`chapter_bert_config`. A peak learning
    rate of 1e-3 did as well as 2e-3; 4e-3 got stuck at the unigram solution.

    >>> pretrain_config(max_steps=10).schedule
    'linear'
    """
    settings = dict(lr=2e-3, batch_size=32, max_steps=800, schedule="linear", warmup_steps=60,
                    min_lr_ratio=0.0, clip_grad_norm=1.0, weight_decay=0.01, eval_every=100, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


@dataclass
class MLMHistory(History):
    """:class:`lmcourse.train.History` plus the masked-token accuracy at each evaluation.

    ``train_loss`` and ``valid_loss`` are the mean cross-entropy (nats) per *masked* token;
    ``tokens_seen`` counts every non-padding token read, so ``tokens_per_second`` is the reading
    speed.
    """

    valid_accuracy: list[float] = field(default_factory=list)  # share of chosen tokens predicted exactly
    valid_mask_accuracy: list[float] = field(default_factory=list)  # the same at [MASK] positions only


class MLMEvaluation(NamedTuple):
    """A masked language model's score on a fixed mask."""

    loss: float  # mean cross-entropy per chosen token, in nats
    accuracy: float  # share of chosen tokens whose most likely prediction is the original
    num_masked: int  # how many positions were scored (chosen: [MASK], random or unchanged)
    mask_accuracy: float = math.nan  # the same share at the positions shown as [MASK] only
    copy_accuracy: float = math.nan  # answering the input token itself (lmcourse.mlm_metrics.copy_baseline)


def _fixed_mask(examples: Sequence[Sequence[int]], ids: MaskIds, mask_prob: float, seed: int
                ) -> list[tuple[list[int], list[int]]]:
    """Mask each example on its own, in order, from one generator: the result does not depend on
    how the examples are later batched."""
    generator = torch.Generator().manual_seed(seed)
    out = []
    for example in examples:
        row = torch.tensor([list(example)], dtype=torch.long)  # (1, T)
        inputs, labels = mask_tokens(row, mask_id=ids.mask_id, vocab_size=ids.vocab_size,
                                     special_ids=ids.special_ids, mask_prob=mask_prob, generator=generator)
        out.append((inputs[0].tolist(), labels[0].tolist()))
    return out


def _masked_logits(model: BertForMaskedLM, batch: MLMBatch, where: torch.Tensor) -> torch.Tensor:
    """Logits ``(M, V)`` at the ``M`` positions where `where` ``(B, T)`` is True.

    The encoder reads every token, but the head (whose ``C x V`` matrix costs more than the whole
    tiny encoder) runs only where a prediction is scored: ``model(...).logits[where]`` gives the
    same numbers about 3 times slower with a vocabulary of 8000.
    """
    hidden = model.bert(batch.input_ids, batch.attention_mask)  # (B, T, C)
    return model.head(hidden[where])  # (M, C) -> (M, V)


def _check_model(model: Any) -> None:
    if not isinstance(model, BertForMaskedLM):
        raise TypeError(f"model must be an lmcourse.bert.BertForMaskedLM, got {type(model).__name__}")


def evaluate_mlm(model: BertForMaskedLM, examples: Sequence[Sequence[int]], *, tokenizer: WordPieceTokenizer,
                 batch_size: int = 64, mask_prob: float = 0.15, seed: int = VALID_MASK_SEED) -> MLMEvaluation:
    """Loss and accuracy at the masked positions of `examples`, masked once with `seed`.

    The mask depends only on the examples, `mask_prob` and `seed` (not on `batch_size`), so every
    evaluation of every model scores the same positions. Runs in eval mode without gradients.
    """
    _check_model(model)
    ids = MaskIds.from_tokenizer(tokenizer)
    check_examples("examples", examples, ids, model.config.context_length)
    masked = _fixed_mask(examples, ids, mask_prob, seed)
    device = model_device(model)
    total, guesses, shown, answers = 0.0, [], [], []
    with eval_mode(model):
        for i in range(0, len(masked), batch_size):
            chunk = masked[i:i + batch_size]
            batch = MLMBatch(*(t.to(device) for t in collate([inp for inp, _ in chunk], ids.pad_id)))
            labels = collate([lab for _, lab in chunk], IGNORE_INDEX).input_ids.to(device)  # (B, T)
            where = labels != IGNORE_INDEX
            logits = _masked_logits(model, batch, where)  # (M, V)
            total += float(F.cross_entropy(logits.float(), labels[where], reduction="sum"))
            guesses.append(logits.argmax(-1).cpu())
            shown.append(batch.input_ids[where].cpu())
            answers.append(labels[where].cpu())
    return _evaluation(total, torch.cat(guesses), torch.cat(shown), torch.cat(answers), ids.mask_id, len(examples))


def _evaluation(total_nll: float, guesses: torch.Tensor, shown: torch.Tensor, answers: torch.Tensor,
                mask_id: int, num_examples: int) -> MLMEvaluation:
    """An :class:`MLMEvaluation` from the summed loss and the flat ``(M,)`` guesses, inputs and labels."""
    count = len(answers)
    if count == 0:
        raise ValueError(f"no position was masked in {num_examples} example(s); "
                         f"give more or longer examples")
    by_kind = accuracy_by_kind(guesses, shown, answers, mask_id)
    return MLMEvaluation(total_nll / count, int((guesses == answers).sum()) / count, count, by_kind["[MASK]"],
                         copy_baseline(shown, answers))


def masked_accuracy(model: BertForMaskedLM, examples: Sequence[Sequence[int]], *,
                    tokenizer: WordPieceTokenizer,
                    batch_size: int = 64, mask_prob: float = 0.15, seed: int = VALID_MASK_SEED) -> float:
    """Share of masked tokens that `model` predicts exactly (see :func:`evaluate_mlm`)."""
    return evaluate_mlm(model, examples, tokenizer=tokenizer, batch_size=batch_size,
                        mask_prob=mask_prob, seed=seed).accuracy


def unigram_baseline(train_examples: Sequence[Sequence[int]], examples: Sequence[Sequence[int]], *,
                     tokenizer: WordPieceTokenizer, mask_prob: float = 0.15,
                     seed: int = VALID_MASK_SEED) -> MLMEvaluation:
    """The context-blind model, scored on the same mask as :func:`evaluate_mlm`: every masked token
    gets the training frequencies of the ordinary tokens (add-one smoothed) as its distribution,
    so its accuracy is that of always answering the most frequent token.

    >>> class Ids: cls_id, sep_id, pad_id, mask_id, unk_id, vocab_size = 1, 2, 0, 3, 4, 8
    >>> train = [[1, 5, 5, 5, 6, 2]]  # counts + 1 over the ordinary ids 5, 6, 7: 4, 2, 1
    >>> result = unigram_baseline(train, [[1, 5, 5, 5, 5, 2]] * 10, tokenizer=Ids)
    >>> round(result.loss, 4), round(-math.log(4 / 7), 4), result.accuracy
    (0.5596, 0.5596, 1.0)
    """
    ids = MaskIds.from_tokenizer(tokenizer)
    check_examples("train_examples", train_examples, ids, None)
    check_examples("examples", examples, ids, None)
    counts = Counter(t for example in train_examples for t in example)
    freq = torch.ones(ids.vocab_size, dtype=torch.float64)  # add-one
    for token, n in counts.items():
        freq[token] += n
    freq[list(ids.special_ids)] = 0.0  # a mask never hides a special token
    log_p = (freq / freq.sum()).log()
    best = int(freq.argmax())
    pairs = [(s, t) for inp, lab in _fixed_mask(examples, ids, mask_prob, seed)
             for s, t in zip(inp, lab) if t != IGNORE_INDEX]
    shown = torch.tensor([s for s, _ in pairs], dtype=torch.long)  # (M,) what the input showed
    labels = torch.tensor([t for _, t in pairs], dtype=torch.long)  # (M,) the original tokens
    total = -float(log_p[labels].sum()) if pairs else 0.0
    return _evaluation(total, torch.full_like(labels, best), shown, labels, ids.mask_id, len(examples))


def pretrain_mlm(model: BertForMaskedLM, train_examples: Sequence[Sequence[int]],
                 valid_examples: Sequence[Sequence[int]] | None = None, config: TrainConfig | None = None,
                 *, tokenizer: WordPieceTokenizer, mask_prob: float = 0.15) -> MLMHistory:
    """Masked-language-model training of a ``BertForMaskedLM`` on packed examples.

    Each step pads ``config.batch_size`` examples (shuffled every epoch), masks them with
    :func:`mask_tokens` (a generator seeded with ``config.seed``: new masks every epoch, the same
    in every identical run) and minimises the mean cross-entropy at the masked positions (the
    model's own loss, with the head run only there: see :func:`_masked_logits`). Uses ``lr``,
    the optimizer, the schedule, ``clip_grad_norm``, ``epochs`` / ``max_steps``, ``eval_every``,
    ``seed`` and ``progress`` of `config` (default :func:`pretrain_config`). With
    `valid_examples`, :func:`evaluate_mlm` (one fixed mask of BERT's 15%, whatever `mask_prob`
    training uses, so that runs compare) runs every ``eval_every`` steps and at the end. Seed the
    model's initialisation yourself, before building it.
    """
    config = config if config is not None else pretrain_config()
    _check_model(model)
    check_example_config(config, "pretrain_mlm")
    ids = MaskIds.from_tokenizer(tokenizer)
    context = model.config.context_length
    if model.config.vocab_size < ids.vocab_size:
        raise ValueError(f"the tokenizer has {ids.vocab_size} ids but the model only vocab_size="
                         f"{model.config.vocab_size}; build it with "
                         f"BertConfig(vocab_size=tokenizer.vocab_size)")
    check_examples("train_examples", train_examples, ids, context)
    if valid_examples is not None:
        check_examples("valid_examples", valid_examples, ids, context)
    generator = torch.Generator().manual_seed(config.seed)
    device = model_device(model)
    history = MLMHistory()

    def batch_loss(indices: list[int]) -> tuple[torch.Tensor, int]:
        batch = collate([train_examples[i] for i in indices], ids.pad_id)
        labels = torch.full_like(batch.input_ids, IGNORE_INDEX)
        while bool((labels == IGNORE_INDEX).all()):  # redraw in the rare batch with nothing chosen
            inputs, labels = mask_tokens(batch.input_ids, mask_id=ids.mask_id, vocab_size=ids.vocab_size,
                                         special_ids=ids.special_ids, mask_prob=mask_prob,
                                         generator=generator)
        labels = labels.to(device)
        where = labels != IGNORE_INDEX
        logits = _masked_logits(model, MLMBatch(inputs.to(device), batch.attention_mask.to(device)), where)
        return F.cross_entropy(logits, labels[where]), int(batch.attention_mask.sum())  # mean over masks

    def validate(step: int) -> dict[str, str]:
        result = evaluate_mlm(model, valid_examples, tokenizer=tokenizer,
                              batch_size=max(config.eval_batch_size, config.batch_size))
        history.add_evaluation(step, result.loss, math.exp(result.loss))
        history.valid_accuracy.append(result.accuracy)
        history.valid_mask_accuracy.append(result.mask_accuracy)
        return {"val_loss": f"{result.loss:.3f}", "val_mask_acc": f"{result.mask_accuracy:.3f}"}

    return train_on_examples(model, len(train_examples), config, batch_loss, history=history,
                             validate=validate if valid_examples is not None else None, desc="mlm")


# ---------------------------------------------------------------------------------------------
# Looking inside

def fill_mask(model: BertForMaskedLM, tokenizer: WordPieceTokenizer, text: str,
              top_k: int = 5) -> list[list[tuple[str, float]]]:
    """For each ``[MASK]`` in `text`, the `top_k` most likely tokens and their probabilities.

    Special tokens are never proposed; the probabilities are the model's softmax over the whole
    vocabulary, so each list is sorted from the most likely down and sums to at most 1.
    """
    if not isinstance(text, str):
        raise TypeError(f"text must be a str with [MASK] in it, got {type(text).__name__}")
    check_positive_int("top_k", top_k)
    if MASK_TOKEN not in text:
        raise ValueError(f"text has no {MASK_TOKEN} to fill: {text!r:.80}; write {MASK_TOKEN} where a "
                         f"word should be predicted, e.g. 'Paris is the [MASK] of France.'")
    _check_model(model)
    ids = MaskIds.from_tokenizer(tokenizer)
    row = tokenizer.encode(text)  # [CLS] ... [SEP]; "[MASK]" in the text becomes mask_id
    if len(row) > model.config.context_length:
        raise ValueError(f"text is {len(row)} tokens long but the model reads at most "
                         f"context_length={model.config.context_length}; shorten it")
    input_ids = torch.tensor([row], device=model_device(model))  # (1, T)
    with eval_mode(model):
        batch = MLMBatch(input_ids, torch.ones_like(input_ids))
        logits = _masked_logits(model, batch, input_ids == ids.mask_id)  # (M, V)
    probs = logits.float().softmax(-1)  # (M, V) at the M masks
    probs[:, list(ids.special_ids)] = 0.0
    top = probs.topk(min(top_k, probs.shape[-1]), dim=-1)  # (M, K)
    return [[(token, float(p)) for token, p in zip(tokenizer.convert_ids_to_tokens(i.tolist()), v)]
            for v, i in zip(top.values, top.indices)]
