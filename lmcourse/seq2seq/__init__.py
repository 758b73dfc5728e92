"""Sequence to sequence with and without attention: the experiment that opens Chapter 4
(Attention and the Transformer).

An RNN encoder-decoder (Cho et al., 2014; Sutskever et al., 2014) reads the source into one
fixed vector and writes the target from it; every source character has to squeeze through that
vector, so long inputs fail. Attention (Bahdanau et al., 2015) lets the decoder look back at all
encoder states at every step. Both models here are one class, :class:`Seq2Seq`, with a switch:

- **the task**: reversing a random string of lowercase letters (``"attend" -> "dnetta"``),
  made by :func:`make_pairs`. Random letters carry ``log2(26) = 4.7`` bits each with nothing
  to predict them from, so a fixed vector must hold all ``4.7 L`` bits of a length-``L``
  string, and an error can only come from losing information. Each output character depends on
  exactly one input character, so the right alignment is known: the anti-diagonal, which the
  attention heatmap should show (copying would give the diagonal, which a model could also get
  by attending to "the same position" without having learnt anything about order). With a
  bidirectional encoder copying is no easier for the bottleneck: measured with the chapter's
  settings, the no-attention model gets 39% of length-8 strings exactly right on both tasks.
  ``task="copy"`` is there to try.
- **the encoder**: a bidirectional GRU, as in Bahdanau et al.: the state ``h_j = [->h_j; <-h_j]``
  of character ``j`` sums up its left and its right, so it knows how far it is from both ends,
  which is what finding "the j-th character from the end" needs.
- **the decoder**: a GRU whose every step reads the previous character and a context vector
  ``c_i`` and predicts the next character from ``[s_i; c_i; e(y_{i-1})]``. Without attention
  ``c_i = c`` is the encoder's final states ``[->h_S; <-h_1]`` at every step (Cho et al., 2014):
  the bottleneck, one vector. With attention ``c_i = sum_j a_ij h_j`` with weights from
  :class:`lmcourse.attention.AdditiveAttention` queried by the previous decoder state ``s_{i-1}``,
  padding masked. Both start from ``s_0 = tanh(W_s c)``, so the two models differ only by the
  attention module's parameters (6% more with the chapter's sizes).

Training uses teacher forcing (the decoder reads the true previous character) and
:func:`train_seq2seq`, a small loop that reuses :class:`lmcourse.train.TrainConfig`, its
optimizer and schedule, and records a :class:`lmcourse.train.History`. :func:`accuracy_by_length`
greedy-decodes and scores whole strings. The defaults of :class:`Seq2SeqConfig`,
:func:`chapter_train_config` and :data:`CHAPTER_LENGTHS` are the chapter's experiment (1000
steps of 64 pairs; about 40 s without and 55 s with attention on one thread of a busy CPU)::

    torch.set_num_threads(1)
    pairs = make_pairs(20_000, *CHAPTER_LENGTHS, seed=0)  # lengths 3-20
    test = make_pairs(4_800, 3, 26, seed=1)  # about 200 per length, 21-26 longer than any seen
    torch.manual_seed(0)
    model = Seq2Seq(Seq2SeqConfig(attention=True))
    history = train_seq2seq(model, pairs, chapter_train_config())
    accuracy_by_length(model, test)  # {3: 1.0, ..., 20: 0.98, 21: 0.93, ...}

Tensors are batch first. Shape letters: ``B`` batch, ``S`` source length, ``T`` target length,
``V`` vocabulary, ``E`` embedding size, ``H`` GRU size, ``K`` encoder state size (``2H``
bidirectional), ``A`` attention hidden size.

Left out: beam search (decoding is greedy), teacher-forcing schedules (scheduled sampling),
Luong et al.'s (2015) multiplicative and local attention, the deep maxout output layer of
Bahdanau et al., dropout, and real translation data.

The package: :mod:`~lmcourse.seq2seq.task` (the character vocabulary, the string pairs, padded
batches), :mod:`~lmcourse.seq2seq.model` (:class:`Seq2Seq` and its config),
:mod:`~lmcourse.seq2seq.training` (the loop and the loss) and :mod:`~lmcourse.seq2seq.evaluation`
(greedy outputs, accuracy by length, figures).
"""

from lmcourse.seq2seq.evaluation import (accuracy_by_length, char_accuracy_by_length, plot_accuracy_by_length,
                                         plot_alignment, translate)
from lmcourse.seq2seq.model import Seq2Seq, Seq2SeqConfig
from lmcourse.seq2seq.task import (BOS_ID, CHAPTER_LENGTHS, EOS_ID, PAD_ID, TASKS, Batch, CharVocab, make_batch,
                                   make_pairs)
from lmcourse.seq2seq.training import chapter_train_config, evaluate_loss, train_seq2seq

__all__ = ["PAD_ID", "BOS_ID", "EOS_ID", "TASKS", "CHAPTER_LENGTHS", "CharVocab", "make_pairs",
           "Batch", "make_batch", "Seq2SeqConfig", "Seq2Seq", "chapter_train_config",
           "train_seq2seq", "evaluate_loss", "translate", "accuracy_by_length",
           "char_accuracy_by_length", "plot_accuracy_by_length", "plot_alignment"]
