r"""One training loop for every language model in the book.

Chapter 3a (Word embeddings and a feed-forward language model) first uses this loop;
Chapter 3b (Recurrent language models) and every later chapter (GPT, BERT-style models) call
:func:`train` with their own model and a :class:`TrainConfig` varied with ``dataclasses.replace``.

**The model protocol** (:mod:`lmcourse.neural`). A language model is an ``nn.Module`` with a
``config`` dataclass and

    ``nll(inputs, targets, state) -> (nll, state)``

where ``inputs`` and ``targets`` are ``(T, B)`` LongTensors (time first, as in
:func:`lmcourse.data.get_batch`), ``nll`` is the ``(T, B)`` negative log-likelihood of each target
in nats, and ``state`` is what the previous call returned (``None`` at the start of a stream, a
Tensor, or a nested tuple of Tensors). Stateless models return ``None``.

**The loop.** Truncated back-propagation through time: the training stream is cut into ``B``
parallel streams (:func:`lmcourse.data.batchify`) and walked in chunks of ``T = bptt`` steps; the
state flows from one chunk into the next but is detached (:func:`detach_state`), so gradients
stop at the chunk boundary. Each step minimises the mean nll of its chunk with AdamW or SGD,
clips the gradient norm, and moves a warmup + constant/cosine/linear learning-rate schedule
(:func:`lr_multiplier`). The validation stream is scored (:func:`evaluate`) every ``eval_every``
steps, at each epoch end and at the end; the state starts again from ``None`` at every epoch.
:func:`train_minimal` is the same loop in 15 lines, for reading.

**Checkpoints and the resume rule.** With ``config.checkpoint`` the loop saves its whole state
with :func:`lmcourse.checkpoint.save_checkpoint` (one safetensors file, never a pickle, written
atomically; that module describes the format): weights, optimizer moments and hyper-parameters,
the scheduler, the RNG states, the position in the data (:class:`~lmcourse.trainstate.LoopState`),
the history and both configs. Because everything the next step depends on is stored, *resuming from
the checkpoint written after step k and training on to step N gives the same weights and losses
as one uninterrupted run to step N* (tested bit for bit), provided the model class, the
training stream and the :class:`TrainConfig` are the same. A resume with another ``batch_size``,
``bptt`` or training stream is refused.

**Separate examples.** Sequence pairs (Chapter 4a), masked sentences and labelled texts
(Chapter 5) are not one stream: :func:`train_on_examples` (:mod:`lmcourse.train_examples`)
shuffles them every epoch and makes the same update as :func:`train`.

**Where the pieces live**, all importable from here: the configuration and the records in
:mod:`lmcourse.trainstate`, the optimizer, schedule, update and progress bar in
:mod:`lmcourse.trainstep`, the files in :mod:`lmcourse.checkpoint`.

Left out: mixed precision, gradient accumulation, several devices or processes, the CUDA RNG
(dropout on a GPU is not restored exactly on resume), and shuffling (a language-model stream is
read in order).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmcourse._checks import check_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.checkpoint import (
    Checkpoint,
    CheckpointError,
    check_save_target,
    load_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)
from lmcourse.data import batchify, get_batch
from lmcourse.train_examples import bucketed_batches, check_example_config, train_on_examples
from lmcourse.trainstate import (
    OPTIMIZERS,
    SCHEDULES,
    History,
    LoopState,
    PathLike,
    TrainConfig,
    check_language_model,
    plot_history,
)
from lmcourse.trainstep import StepBar, lr_multiplier, make_optimizer, make_scheduler, run_steps, update

__all__ = [
    "TrainConfig", "History", "Evaluation",
    "train", "train_minimal", "evaluate", "detach_state", "lr_multiplier", "make_optimizer",
    "make_scheduler", "plot_history", "OPTIMIZERS", "SCHEDULES", "run_steps",
    "train_on_examples", "bucketed_batches", "check_example_config",
    # from lmcourse.checkpoint, where they live
    "LoopState", "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint",
]


# ---------------------------------------------------------------------------------------------
# Checking input; running the model

def detach_state(state: Any) -> Any:
    """Cut the autograd graph behind a recurrent state: None, a Tensor or nested tuples of them.

    Truncated BPTT carries the values into the next chunk but not the gradient path, so each
    backward pass stops at the chunk boundary.

    >>> h = torch.ones(2, requires_grad=True) * 3  # has a grad_fn
    >>> s = detach_state((h, (h, None)))  # an LSTM-like (h, (c, extra)) state
    >>> s[0].requires_grad, s[1][0].grad_fn, s[1][1], s[0].tolist()
    (False, None, None, [3.0, 3.0])
    """
    if state is None:
        return None
    if isinstance(state, torch.Tensor):
        return state.detach()
    if isinstance(state, tuple) and hasattr(state, "_fields"):  # a namedtuple
        return type(state)(*(detach_state(s) for s in state))
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"a recurrent state must be None, a Tensor or a (nested) tuple of Tensors, "
                    f"got {type(state).__name__}")


def _batchify_stream(stream: Any, name: str, batch_size: int, rows: int, why: str) -> torch.Tensor:
    """Check a 1-D LongTensor of ids has at least ``rows * batch_size`` tokens; batchify it."""
    if not isinstance(stream, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D torch.LongTensor of token ids, got {type(stream).__name__}")
    if stream.dtype != torch.long:
        raise TypeError(f"{name} has dtype {stream.dtype}; token ids must be torch.long (use .long())")
    if stream.dim() != 1:
        raise ValueError(f"{name} must be a 1-D stream of token ids, got shape {tuple(stream.shape)}")
    need = rows * batch_size
    if stream.numel() < need:
        raise ValueError(f"{name} has {stream.numel()} tokens: too few; {why} needs at least {need} "
                         f"({rows} per parallel stream x {batch_size} streams)")
    if int(stream.min()) < 0:
        raise ValueError(f"{name} has negative token ids (min {int(stream.min())})")
    return batchify(stream, batch_size)  # (N,) -> (rows, B)


def _nll(model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
    out = model.nll(inputs, targets, state)
    if not (isinstance(out, tuple) and len(out) == 2):
        raise TypeError(f"{type(model).__name__}.nll must return a pair (nll, state), got {type(out).__name__}")
    nll, state = out
    if not isinstance(nll, torch.Tensor) or nll.shape != inputs.shape:
        got = tuple(nll.shape) if isinstance(nll, torch.Tensor) else type(nll).__name__
        raise ValueError(f"{type(model).__name__}.nll must return per-token nll of shape (T, B) = "
                         f"{tuple(inputs.shape)}, got {got}")
    return nll, state


@dataclass(frozen=True)
class Evaluation:
    """A model's score on a token stream; the same fields as :class:`lmcourse.ngram.Evaluation`."""

    total_nll: float  # negative log-likelihood of every predicted token, summed, in nats
    num_tokens: int  # predicted tokens: (rows - 1) * batch_size of the batchified stream
    perplexity: float  # exp(total_nll / num_tokens)
    bits_per_token: float  # total_nll / num_tokens / ln 2
    # Per token, for intervals (lmcourse.paragraphs): the nats of each predicted token and its index
    # in the stream, in stream order. Left out of ==, and of repr (they are long).
    token_nll: np.ndarray | None = field(default=None, repr=False, compare=False)
    token_positions: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def loss(self) -> float:
        """Mean nll per token in nats: the number the training loop minimises."""
        return self.total_nll / self.num_tokens


def evaluate(model: nn.Module, stream: torch.Tensor, batch_size: int = 10, bptt: int = 35) -> Evaluation:
    """Score a token stream: total nll, perplexity and bits per token of every predicted token.

    The stream is batchified into `batch_size` columns (the tokens that do not fill a row are
    dropped; the first row is only context) and read in chunks of `bptt` with the state carried,
    in eval mode without gradients; the model's train/eval mode is restored afterwards. The result
    also holds every predicted token's nll and position in `stream` (tokens in the first row of
    each column are only context; those that do not fill a row are dropped).
    """
    check_language_model(model)
    check_int("batch_size", batch_size, 1)
    check_int("bptt", bptt, 1)
    data = _batchify_stream(stream, "stream", batch_size, 2, f"evaluation with batch_size={batch_size}")
    data = data.to(model_device(model))
    total, count, state, chunks = 0.0, 0, None, []
    with eval_mode(model):
        for i in range(0, data.size(0) - 1, bptt):
            inputs, targets = get_batch(data, i, bptt)  # (T, B), (T*B,)
            targets = targets.view(inputs.shape)  # (T*B,) -> (T, B)
            nll, state = _nll(model, inputs, targets, state)
            total += float(nll.double().sum())
            count += nll.numel()
            chunks.append(nll.detach().double().cpu())
    mean = total / count
    rows, columns = data.shape
    token_nll = torch.cat(chunks).t().reshape(-1).numpy()  # (rows - 1, B) -> (B * (rows - 1),), column by column
    positions = (np.arange(columns)[:, None] * rows + np.arange(1, rows)[None, :]).reshape(-1)  # the same order
    return Evaluation(total, count, math.exp(mean) if mean < 700 else math.inf, mean / math.log(2),
                      token_nll, positions)


# ---------------------------------------------------------------------------------------------
# The loop: a run's state, then one helper per thing that happens around a step

@dataclass
class _Run:
    """What :func:`train` carries from step to step."""

    model: nn.Module
    config: TrainConfig
    data: torch.Tensor  # (rows, B): the batchified training stream, on the model's device
    optimizer: torch.optim.Optimizer
    scheduler: Any
    total_steps: int
    started: float  # time.perf_counter() when this call began
    history: History
    loop: LoopState
    step: int = 0
    best: dict[str, torch.Tensor] | None = None  # early stopping's best weights
    seconds_before: float = 0.0  # total_seconds of the runs this one resumes

    @property
    def checkpoint(self) -> str | None:
        """The checkpoint file name, "{step}" not yet filled in; None: no checkpoints."""
        return str(self.config.checkpoint) if self.config.checkpoint is not None else None

    def finished(self) -> bool:
        c = self.config
        epochs = c.epochs if c.epochs is not None else (None if c.max_steps else 1)
        return (self.history.stopped_early or (c.max_steps is not None and self.step >= c.max_steps)
                or (c.stop_after is not None and self.step >= c.stop_after)
                or (epochs is not None and self.loop.epoch >= epochs))

    def due(self, every: int | None, epoch_end: bool) -> bool:
        """Whether to evaluate (or save) now: every `every` steps, at each epoch end and at the end."""
        return bool(every and self.step % every == 0) or epoch_end or self.finished()


def _checked(model: Any, train_stream: Any, valid_stream: Any, config: Any) -> tuple[TrainConfig, torch.Tensor]:
    """Refuse bad arguments of :func:`train`; return the config and the batchified training
    stream ``(rows, B)`` on the model's device."""
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    check_language_model(model)
    B, bptt = config.batch_size, config.bptt
    data = _batchify_stream(train_stream, "train_stream", B, bptt + 1,
                            f"training with batch_size={B} and bptt={bptt} (one full chunk)")
    _batchify_stream(valid_stream, "valid_stream", config.eval_batch_size, 2,
                     f"validation with eval_batch_size={config.eval_batch_size}")
    data = data.to(model_device(model))
    if config.checkpoint is not None and "{step}" not in str(config.checkpoint):
        check_save_target(Path(config.checkpoint))
    return config, data


def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _sha256(stream: torch.Tensor) -> str:
    return hashlib.sha256(stream.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _start(model: nn.Module, config: TrainConfig, train_stream: torch.Tensor, data: torch.Tensor,
           resume: PathLike | None, started: float) -> _Run:
    """Build the optimizer and the schedule; then seed, or restore everything from `resume`."""
    total_steps = run_steps(config, math.ceil((data.size(0) - 1) / config.bptt))
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps)
    data_sha = _sha256(train_stream) if (config.checkpoint is not None and str(config.checkpoint)) or resume else ""
    run = _Run(model, config, data, optimizer, scheduler, total_steps, started, History(), LoopState())
    if resume is not None:
        ckpt = resume_checkpoint(resume, model, optimizer, scheduler, config, data_sha)
        run.history, run.loop, run.step, run.best = ckpt.history, ckpt.loop, ckpt.step, ckpt.best_weights
    else:
        _seed(config.seed)
    run.loop.data_sha256 = data_sha
    run.seconds_before = run.history.total_seconds
    return run


def _diverged(what: str, value: float, step: int, epoch: int, offset: int, lr: float,
              config: TrainConfig) -> FloatingPointError:
    clip = ("turn on gradient clipping (clip_grad_norm=1.0)" if config.clip_grad_norm is None
            else f"clip harder (clip_grad_norm={config.clip_grad_norm} now)")
    return FloatingPointError(
        f"training diverged: {what} is {value} at step {step} (epoch {epoch + 1}, row {offset}). "
        f"Lower the learning rate (lr={lr:.3g} at this step), {clip}, add warmup_steps, "
        f"or look for log(0) in the model's nll.")


def _train_step(run: _Run, lr: float) -> tuple[float, float, int, bool]:
    """One update on the next (T, B) chunk, the detached state carried on. Returns the loss, the
    grad norm before clipping, the tokens predicted and whether the epoch ended."""
    loop, config = run.loop, run.config
    inputs, targets = get_batch(run.data, loop.offset, config.bptt)  # (T, B), (T*B,)
    nll, state = _nll(run.model, inputs, targets.view(inputs.shape), loop.state)  # (T, B)
    loss, norm = update(nll.mean(), run.optimizer, run.scheduler, config.clip_grad_norm,
                        lambda what, value: _diverged(what, value, run.step + 1, loop.epoch, loop.offset, lr, config))
    loop.state = detach_state(state)  # keep the values, cut the graph
    run.step += 1
    loop.offset += inputs.size(0)
    epoch_end = loop.offset >= run.data.size(0) - 1
    if epoch_end:  # the next epoch starts from the top with a fresh state
        loop.epoch, loop.offset, loop.state = loop.epoch + 1, 0, None
        run.history.epochs_completed = loop.epoch
    return loss, norm, inputs.numel(), epoch_end


def _validate(run: _Run, valid_stream: torch.Tensor) -> dict[str, str]:
    """Score the validation stream and record it; count evaluations without a new best for early
    stopping and keep the best weights. Returns the progress bar's field."""
    config, loop = run.config, run.loop
    result = evaluate(run.model, valid_stream, config.eval_batch_size, config.bptt)
    if run.history.add_evaluation(run.step, result.loss, result.perplexity):
        loop.bad_evals = 0
        if config.patience is not None:
            run.best = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    else:
        loop.bad_evals += 1
        if config.patience is not None and loop.bad_evals >= config.patience:
            run.history.stopped_early = True
    return {"val_ppl": f"{result.perplexity:.2f}"}


def _save(run: _Run) -> None:
    run.history.total_seconds = run.seconds_before + time.perf_counter() - run.started
    save_checkpoint(run.checkpoint.replace("{step}", str(run.step)), run.model, run.optimizer, run.scheduler,
                    step=run.step, history=run.history, config=run.config, loop=run.loop, best_weights=run.best)


def train(
    model: nn.Module,
    train_stream: torch.Tensor,
    valid_stream: torch.Tensor,
    config: TrainConfig | None = None,
    *,
    resume_from: PathLike | None = None,
) -> History:
    """Train a language model on a token stream with truncated BPTT; return its :class:`History`.

    Seeds torch, ``random`` and NumPy with ``config.seed`` first (seed the model's initialisation
    yourself, before building it), so identical calls give identical losses. Each step: take the
    next ``(T, B)`` chunk, minimise the mean nll, clip, step the optimizer and the schedule, carry
    the detached state on. Validation (:func:`evaluate`, ``eval_batch_size``, ``bptt``) runs every
    ``eval_every`` steps, at each epoch end and at the end. With ``patience`` set, the weights of
    the best evaluation are kept in memory, training stops after `patience` evaluations without a
    new best, and **the best weights are restored into `model` at the end**; without it the model
    keeps its final weights. A non-finite loss or gradient stops with ``FloatingPointError``.

    With ``config.checkpoint`` a checkpoint is written every ``checkpoint_every`` steps, at each
    epoch end and at the end. ``resume_from`` (or ``config.resume``) continues a checkpointed run:
    same model class, training stream and config give the same result as never stopping.

    >>> import torch.nn.functional as F
    >>> class Bigram(nn.Module):  # the smallest model that follows the protocol
    ...     def __init__(self, vocab_size):
    ...         super().__init__()
    ...         self.config, self.logits = None, nn.Embedding(vocab_size, vocab_size)
    ...     def nll(self, inputs, targets, state):  # (T, B), (T, B) -> (T, B), no state
    ...         logits = self.logits(inputs)  # (T, B) -> (T, B, V)
    ...         return F.cross_entropy(logits.transpose(1, 2), targets, reduction="none"), None
    >>> stream = torch.arange(8).repeat(25)  # 0 1 ... 7 0 1 ...: each token fixes the next
    >>> cfg = TrainConfig(lr=0.5, batch_size=4, bptt=10, epochs=3, progress=False)
    >>> history = train(Bigram(8), stream, stream, cfg)
    >>> history.valid_perplexity[0] > history.valid_perplexity[-1], history.best_valid_perplexity < 1.2
    (True, True)
    """
    started = time.perf_counter()
    config, data = _checked(model, train_stream, valid_stream, config)
    run = _start(model, config, train_stream, data, resume_from if resume_from is not None else config.resume,
                 started)
    with StepBar(min(run.total_steps, config.stop_after or run.total_steps), initial=run.step, desc="train",
                 enabled=config.progress) as bar:
        model.train()
        while not run.finished():
            t0 = time.perf_counter()
            lr = run.optimizer.param_groups[0]["lr"]
            loss, norm, tokens, epoch_end = _train_step(run, lr)
            seconds = time.perf_counter() - t0
            run.history.add_step(loss, lr, norm, tokens, seconds)
            bar.step(loss, lr, tokens, seconds)
            bar.show(_validate(run, valid_stream) if run.due(config.eval_every, epoch_end) else None)
            if run.checkpoint and run.due(config.checkpoint_every, epoch_end):
                _save(run)
    if config.patience is not None and run.best is not None:
        model.load_state_dict(run.best)
    run.history.total_seconds = run.seconds_before + time.perf_counter() - started
    return run.history


def train_minimal(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]], lr: float = 1e-3,
                  weight_decay: float = 0.01, clip_grad_norm: float = 1.0) -> list[float]:
    """The loop of :func:`train` without its production parts, for reading (Chapter 3b): AdamW at
    a constant `lr`, weight decay on matrices only, gradients clipped, one pass over `batches` of
    ``(inputs, targets)`` chunks ``(T, B)`` of one stream with the state carried. Returns each
    step's loss. Given the same chunks, seed and settings (constant schedule, no warmup), it
    computes the same weights and losses as :func:`train`, bit for bit (tested). Left out:
    schedules, validation, early stopping, checkpoints, divergence checks, the progress bar.
    """
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    others = [p for p in model.parameters() if p.dim() < 2]  # biases and gains: no weight decay
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": weight_decay},
                                   {"params": others, "weight_decay": 0.0}], lr=lr)
    model.train()
    state, losses = None, []
    for inputs, targets in batches:  # (T, B), (T, B)
        nll, state = model.nll(inputs, targets, state)  # (T, B): each target's nll
        loss = nll.mean()
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(matrices + others, clip_grad_norm)
        optimizer.step()
        state = detach_state(state)  # truncated BPTT: keep the values, cut the graph
        losses.append(loss.item())
    return losses
