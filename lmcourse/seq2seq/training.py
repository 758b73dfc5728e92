"""Training Chapter 4's sequence-to-sequence models: teacher forcing with :mod:`lmcourse.train`'s
optimizer, schedule and loop over examples, and the teacher-forced loss on held-out pairs."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from lmcourse._torch import eval_mode, model_device
from lmcourse.seq2seq.model import Seq2Seq
from lmcourse.seq2seq.task import PAD_ID, Batch, CharVocab, collate, encode_pairs
from lmcourse.train import History, TrainConfig, check_example_config, train_on_examples

__all__ = ["chapter_train_config", "train_seq2seq", "evaluate_loss"]


def chapter_train_config(**changes: Any) -> TrainConfig:
    """The chapter's training settings (a fresh :class:`TrainConfig`); `changes` override fields.

    >>> chapter_train_config(max_steps=10).max_steps
    10
    """
    settings = dict(lr=3e-3, batch_size=64, max_steps=1000, schedule="cosine", warmup_steps=100,
                    min_lr_ratio=0.1, clip_grad_norm=1.0, weight_decay=0.0, seed=0)
    settings.update(changes)
    return TrainConfig(**settings)


def _loss(model: Seq2Seq, batch: Batch, reduction: str = "mean") -> torch.Tensor:
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
    return F.cross_entropy(logits.transpose(1, 2), batch.tgt_out, ignore_index=PAD_ID, reduction=reduction)



def evaluate_loss(model: Seq2Seq, pairs: Sequence[tuple[str, str]], vocab: CharVocab | None = None,
                  batch_size: int = 256) -> float:
    """Teacher-forced cross-entropy per target character (``</s>`` included), in nats."""
    encoded = encode_pairs(pairs, vocab or CharVocab())
    total, count = 0.0, 0
    with eval_mode(model):
        for i in range(0, len(encoded), batch_size):
            batch = collate(encoded[i:i + batch_size]).to(model_device(model))
            total += float(_loss(model, batch, "sum"))
            count += int((batch.tgt_out != PAD_ID).sum())
    return total / count


def train_seq2seq(model: Seq2Seq, train_pairs: Sequence[tuple[str, str]], config: TrainConfig | None = None,
                  *, valid_pairs: Sequence[tuple[str, str]] | None = None,
                  vocab: CharVocab | None = None) -> History:
    """Teacher-forced training on `train_pairs`; returns a :class:`lmcourse.train.History`.

    Seeds torch and the batch order with ``config.seed`` (seed the model's initialisation yourself,
    before building it). Uses ``lr``, the optimizer, the schedule, ``clip_grad_norm``,
    ``batch_size``, ``epochs`` / ``max_steps``, ``eval_every`` and ``progress`` of `config`
    (default :func:`chapter_train_config`); batches hold strings of similar length. With
    `valid_pairs`, :func:`evaluate_loss` runs every ``eval_every`` steps and at the end.
    ``history.tokens_seen`` counts target characters (``</s>`` included).

    >>> threads = torch.get_num_threads(); torch.set_num_threads(1)  # small models: one is fastest
    >>> from lmcourse.seq2seq import Seq2SeqConfig, make_pairs
    >>> _ = torch.manual_seed(0)
    >>> model = Seq2Seq(Seq2SeqConfig(emb_dim=8, hidden_dim=16, attention_dim=8))
    >>> config = chapter_train_config(max_steps=20, progress=False)
    >>> history = train_seq2seq(model, make_pairs(64, 3, 5), config)
    >>> history.steps, history.train_loss[-1] < history.train_loss[0]
    (20, True)
    >>> torch.set_num_threads(threads)
    """
    config = config if config is not None else chapter_train_config()
    if not isinstance(model, Seq2Seq):
        raise TypeError(f"model must be a Seq2Seq, got {type(model).__name__}; lmcourse.train.train "
                        f"trains language models")
    check_example_config(config, "train_seq2seq")
    vocab = vocab or CharVocab()
    if len(vocab) > model.config.vocab_size:
        raise ValueError(f"the vocabulary has {len(vocab)} symbols but the model only "
                         f"vocab_size={model.config.vocab_size}; build it with "
                         f"Seq2SeqConfig(vocab_size={len(vocab)})")
    encoded = encode_pairs(train_pairs, vocab, "train_pairs")
    if valid_pairs is not None:
        encode_pairs(valid_pairs, vocab, "valid_pairs")  # fail now, not after training
    device = model_device(model)
    history = History()

    def batch_loss(indices: list[int]) -> tuple[torch.Tensor, int]:
        batch = collate([encoded[i] for i in indices]).to(device)
        return _loss(model, batch), int((batch.tgt_out != PAD_ID).sum())

    def validate(step: int) -> dict[str, str]:
        loss = evaluate_loss(model, valid_pairs, vocab)
        history.eval_steps.append(step)
        history.valid_loss.append(loss)
        history.valid_perplexity.append(math.exp(loss))
        if loss < history.best_valid_loss:
            history.best_step, history.best_valid_loss = step, loss
            history.best_valid_perplexity = math.exp(loss)
        return {"val_loss": f"{loss:.3f}"}

    return train_on_examples(model, len(encoded), config, batch_loss, history=history,
                             validate=validate if valid_pairs is not None else None,
                             lengths=[len(s) for s, _ in encoded], desc="seq2seq")
