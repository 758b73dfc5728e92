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

**Checkpoints and the resume rule.** With ``config.checkpoint`` the loop saves its whole state
with :func:`lmcourse.checkpoint.save_checkpoint` (one safetensors file, never a pickle, written
atomically; that module describes the format): weights, optimizer moments and hyper-parameters,
the scheduler, the RNG states, the position in the data (:class:`~lmcourse.checkpoint.LoopState`),
the history and both configs. Because everything the next step depends on is stored, *resuming from
the checkpoint written after step k and training on to step N gives the same weights and losses
as one uninterrupted run to step N* (tested bit for bit), provided the model class, the
training stream and the :class:`TrainConfig` are the same. A resume with another ``batch_size``,
``bptt`` or training stream is refused.

**Separate examples.** Sequence pairs (Chapter 4a), masked sentences and labelled texts
(Chapter 5) are not one stream: :func:`train_on_examples` shuffles their indices every epoch,
batches them (by similar length with :func:`bucketed_batches`) and makes the same update as
:func:`train` (one :func:`_update`: finite checks, backward, clipping, optimizer and schedule),
without early stopping or checkpoints.

Left out: mixed precision, gradient accumulation, several devices or processes, the CUDA RNG
(dropout on a GPU is not restored exactly on resume), and shuffling (a language-model stream is
read in order).
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from lmcourse.checkpoint import (  # re-exported: lmcourse.train.save_checkpoint works too
    Checkpoint,
    CheckpointError,
    LoopState,
    PathLike,
    _apply,
    _check_save_target,
    _read_for_resume,
    load_checkpoint,
    save_checkpoint,
)
from lmcourse.data import batchify, get_batch

__all__ = [
    "TrainConfig", "History", "Evaluation",
    "train", "evaluate", "detach_state", "lr_multiplier", "make_optimizer", "make_scheduler",
    "plot_history", "OPTIMIZERS", "SCHEDULES", "run_steps",
    "train_on_examples", "bucketed_batches", "check_example_config",
    # from lmcourse.checkpoint, where they live
    "LoopState", "Checkpoint", "CheckpointError", "save_checkpoint", "load_checkpoint",
]

OPTIMIZERS = ("adamw", "sgd")
SCHEDULES = ("constant", "cosine", "linear")


# ---------------------------------------------------------------------------------------------
# Configuration

def _check_int(name: str, value: Any, minimum: int, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        extra = " or None (off)" if allow_none else ""
        raise ValueError(f"{name} must be an int >= {minimum}{extra}, got {value!r}")


def _check_float(name: str, value: Any, low: float, high: float = math.inf,
                 low_open: bool = False, high_open: bool = False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (value < high if high_open else value <= high)
    if not ok:
        lo, hi = "(" if low_open else "[", ")" if high_open or high == math.inf else "]"
        raise ValueError(f"{name} must be a finite number in {lo}{low}, {high}{hi}, got {value!r}")


@dataclass
class TrainConfig:
    """How :func:`train` trains: optimizer, schedule, batching, evaluation, checkpoints.

    Training stops after `epochs` epochs or `max_steps` steps, whichever comes first; with
    neither set it runs one epoch. Values are checked here, so ``dataclasses.replace`` checks too.

    >>> TrainConfig(lr=3e-4, schedule="cosine", warmup_steps=100, max_steps=2000).schedule
    'cosine'
    """

    # optimizer
    optimizer: str = "adamw"  # "adamw" (Loshchilov & Hutter, 2019) or "sgd"
    lr: float = 1e-3  # peak learning rate, reached after warmup
    weight_decay: float = 0.01  # applied to matrices and embeddings only, not to biases or gains
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW's decay rates of the gradient moments
    eps: float = 1e-8  # AdamW's guard against division by zero
    momentum: float = 0.0  # SGD only; 0 = plain SGD
    # learning-rate schedule (see lr_multiplier)
    schedule: str = "constant"  # after warmup: "constant", "cosine" or "linear" decay
    warmup_steps: int = 0  # linear warmup from lr / warmup_steps up to lr
    min_lr_ratio: float = 0.0  # cosine and linear decay end at lr * min_lr_ratio
    clip_grad_norm: float | None = 1.0  # largest total gradient norm (L2); None = no clipping
    # data
    batch_size: int = 20  # B parallel streams
    bptt: int = 35  # T: chunk length for truncated back-propagation through time
    epochs: int | None = None  # passes over the training stream; None = 1 unless max_steps is set
    max_steps: int | None = None  # optimizer steps; None = no limit
    # evaluation and early stopping
    eval_every: int | None = None  # steps between evaluations (also at each epoch end and the end)
    eval_batch_size: int = 10  # B for the validation stream
    patience: int | None = None  # evaluations without a new best before stopping; None = never stop
    # reproducibility, checkpoints, display
    seed: int = 0  # seeds torch, random and numpy at the start (not on resume: RNGs are restored)
    checkpoint: PathLike | None = None  # safetensors file; "{step}" in the name keeps one per save
    checkpoint_every: int | None = None  # steps between saves (also at each epoch end and the end)
    resume: PathLike | None = None  # checkpoint to continue from (or train(..., resume_from=...))
    progress: bool = True  # tqdm bar with loss, lr and tokens per second

    def __post_init__(self) -> None:
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; choose one of {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; choose one of {', '.join(SCHEDULES)}")
        _check_float("lr", self.lr, 0.0, low_open=True)
        _check_float("weight_decay", self.weight_decay, 0.0)
        if not isinstance(self.betas, (tuple, list)) or len(self.betas) != 2:
            raise ValueError(f"betas must be a pair (beta1, beta2), got {self.betas!r}")
        for i, beta in enumerate(self.betas):
            _check_float(f"betas[{i}]", beta, 0.0, 1.0, high_open=True)
        self.betas = (float(self.betas[0]), float(self.betas[1]))
        _check_float("eps", self.eps, 0.0, low_open=True)
        _check_float("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_int("warmup_steps", self.warmup_steps, 0)
        _check_float("min_lr_ratio", self.min_lr_ratio, 0.0, 1.0)
        if self.clip_grad_norm is not None:
            _check_float("clip_grad_norm", self.clip_grad_norm, 0.0, low_open=True)
        for name in ("batch_size", "bptt", "eval_batch_size"):
            _check_int(name, getattr(self, name), 1)
        for name in ("epochs", "max_steps", "eval_every", "patience", "checkpoint_every"):
            _check_int(name, getattr(self, name), 1, allow_none=True)
        _check_int("seed", self.seed, 0)


def lr_multiplier(step: int, config: TrainConfig, total_steps: int) -> float:
    r"""Factor on ``config.lr`` for optimizer step `step` (0-based) of `total_steps`.

    Warmup: $(s+1)/W$ for $s < W$. Then, with progress $p = (s - W) / (S - W)$ clipped to [0, 1]
    and floor $m$ = ``min_lr_ratio``: constant $1$; cosine $m + (1-m)\frac12(1 + \cos \pi p)$;
    linear $m + (1-m)(1-p)$.

    >>> cfg = TrainConfig(schedule="cosine", warmup_steps=2)
    >>> [round(lr_multiplier(s, cfg, total_steps=6), 3) for s in range(6)]
    [0.5, 1.0, 1.0, 0.854, 0.5, 0.146]
    """
    warmup = config.warmup_steps
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "constant":
        return 1.0
    progress = min(1.0, max(0.0, (step - warmup) / max(1, total_steps - warmup)))
    m = config.min_lr_ratio
    if config.schedule == "cosine":
        return m + (1 - m) * 0.5 * (1 + math.cos(math.pi * progress))
    return m + (1 - m) * (1 - progress)  # linear


def run_steps(config: TrainConfig, steps_per_epoch: int) -> int:
    """Steps of a run: ``max_steps`` or ``epochs`` (1 if neither is set), whichever ends first.

    >>> run_steps(TrainConfig(epochs=3, max_steps=100), steps_per_epoch=20), run_steps(TrainConfig(), 20)
    (60, 20)
    """
    epochs = config.epochs if config.epochs is not None else (None if config.max_steps else 1)
    return min(x for x in (config.max_steps, epochs and epochs * steps_per_epoch) if x)


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """AdamW or SGD over the trainable parameters, as `config` says.

    Weight decay goes to parameters with two or more dimensions (matrices, embeddings) and not
    to biases or normalisation gains, as in nanoGPT: shrinking a bias towards 0 is no prior anyone
    holds.
    """
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    if not named:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=True)")
    groups = [
        {"params": [p for _, p in named if p.dim() >= 2], "weight_decay": config.weight_decay},
        {"params": [p for _, p in named if p.dim() < 2], "weight_decay": 0.0},
    ]
    groups = [g for g in groups if g["params"]]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr, betas=config.betas, eps=config.eps)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig,
                   total_steps: int) -> torch.optim.lr_scheduler.LambdaLR:
    """A ``LambdaLR`` that multiplies the learning rate by :func:`lr_multiplier`."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_multiplier(s, config, total_steps))


# ---------------------------------------------------------------------------------------------
# Results

@dataclass(frozen=True)
class Evaluation:
    """A model's score on a token stream; the same fields as :class:`lmcourse.ngram.Evaluation`."""

    total_nll: float  # negative log-likelihood of every predicted token, summed, in nats
    num_tokens: int  # predicted tokens: (rows - 1) * batch_size of the batchified stream
    perplexity: float  # exp(total_nll / num_tokens)
    bits_per_token: float  # total_nll / num_tokens / ln 2

    @property
    def loss(self) -> float:
        """Mean nll per token in nats: the number the training loop minimises."""
        return self.total_nll / self.num_tokens


@dataclass
class History:
    """What happened in :func:`train`, step by step; ``history.plot()`` draws the loss curves."""

    train_loss: list[float] = field(default_factory=list)  # mean nll (nats) of each step's chunk
    lr: list[float] = field(default_factory=list)  # learning rate each step used
    grad_norm: list[float] = field(default_factory=list)  # total gradient norm, before clipping
    eval_steps: list[int] = field(default_factory=list)  # steps after which validation was scored
    valid_loss: list[float] = field(default_factory=list)  # mean nll per validation token
    valid_perplexity: list[float] = field(default_factory=list)  # exp(valid_loss)
    best_step: int | None = None  # step of the lowest validation loss
    best_valid_loss: float = math.inf
    best_valid_perplexity: float = math.inf
    epochs_completed: int = 0
    tokens_seen: int = 0  # training tokens predicted: T * B per step
    train_seconds: float = 0.0  # time spent in training steps (evaluation and saving excluded)
    total_seconds: float = 0.0  # wall time of train(), over all resumed runs
    stopped_early: bool = False  # True if patience ran out

    @property
    def steps(self) -> int:
        return len(self.train_loss)

    @property
    def tokens_per_second(self) -> float:
        """Training throughput: tokens_seen / train_seconds."""
        return self.tokens_seen / self.train_seconds if self.train_seconds > 0 else 0.0

    def plot(self, ax: Any = None) -> Any:
        """Train and validation loss against step; see :func:`plot_history`."""
        return plot_history(self, ax)


def plot_history(history: History, ax: Any = None) -> Any:
    """Draw the per-step training loss and the validation loss on `ax` (a new figure if None).

    Returns the matplotlib ``Axes``. A dotted line marks the best validation step.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    steps = range(1, len(history.train_loss) + 1)
    ax.plot(steps, history.train_loss, lw=0.8, alpha=0.7, label="train (per step)")
    if history.eval_steps:
        ax.plot(history.eval_steps, history.valid_loss, "o-", label="validation")
    if history.best_step is not None:
        ax.axvline(history.best_step, ls=":", color="gray",
                   label=f"best: step {history.best_step}, ppl {history.best_valid_perplexity:.2f}")
    ax.set_xlabel("step")
    ax.set_ylabel("loss (nats per token)")
    ax.legend()
    return ax


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


def _check_model(model: Any) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    if not callable(getattr(model, "nll", None)):
        raise TypeError(
            f"{type(model).__name__} has no nll method. lmcourse.train needs language models with "
            "nll(inputs (T, B), targets (T, B), state) -> (per-token nll (T, B), new state)")


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


def _device(model: nn.Module) -> torch.device:
    for p in model.parameters():
        return p.device
    return torch.device("cpu")


def evaluate(model: nn.Module, stream: torch.Tensor, batch_size: int = 10, bptt: int = 35) -> Evaluation:
    """Score a token stream: total nll, perplexity and bits per token of every predicted token.

    The stream is batchified into `batch_size` columns (the tokens that do not fill a row are
    dropped; the first row is only context) and read in chunks of `bptt` with the state carried,
    in eval mode without gradients; the model's train/eval mode is restored afterwards.
    """
    _check_model(model)
    _check_int("batch_size", batch_size, 1)
    _check_int("bptt", bptt, 1)
    data = _batchify_stream(stream, "stream", batch_size, 2, f"evaluation with batch_size={batch_size}")
    data = data.to(_device(model))
    was_training = model.training
    model.eval()
    total, count, state = 0.0, 0, None
    try:
        with torch.no_grad():
            for i in range(0, data.size(0) - 1, bptt):
                inputs, targets = get_batch(data, i, bptt)  # (T, B), (T*B,)
                targets = targets.view(inputs.shape)  # (T*B,) -> (T, B)
                nll, state = _nll(model, inputs, targets, state)
                total += float(nll.double().sum())
                count += nll.numel()
    finally:
        model.train(was_training)
    mean = total / count
    return Evaluation(total, count, math.exp(mean) if mean < 700 else math.inf, mean / math.log(2))


# ---------------------------------------------------------------------------------------------
# The loop

def _seed(seed: int) -> None:
    torch.manual_seed(seed)
    random.seed(seed)
    np.random.seed(seed)


def _sha256(stream: torch.Tensor) -> str:
    return hashlib.sha256(stream.detach().cpu().contiguous().numpy().tobytes()).hexdigest()


def _grad_norm(params: list[torch.Tensor], max_norm: float | None) -> float:
    """Total L2 norm of the gradients before clipping; clip them to `max_norm` if given."""
    params = [p for p in params if p.grad is not None]
    if not params:
        return 0.0
    if max_norm is not None:
        return float(torch.nn.utils.clip_grad_norm_(params, max_norm))
    return float(torch.nn.utils.get_total_norm([p.grad for p in params]))


def _diverged(what: str, value: float, step: int, epoch: int, offset: int, lr: float,
              config: TrainConfig) -> FloatingPointError:
    clip = ("turn on gradient clipping (clip_grad_norm=1.0)" if config.clip_grad_norm is None
            else f"clip harder (clip_grad_norm={config.clip_grad_norm} now)")
    return FloatingPointError(
        f"training diverged: {what} is {value} at step {step} (epoch {epoch + 1}, row {offset}). "
        f"Lower the learning rate (lr={lr:.3g} at this step), {clip}, add warmup_steps, "
        f"or look for log(0) in the model's nll.")


def _update(loss: torch.Tensor, optimizer: torch.optim.Optimizer, scheduler: Any, clip_grad_norm: float | None,
            diverged: Callable[[str, float], Exception]) -> tuple[float, float]:
    """One update from a scalar loss: backward, clip, optimizer and schedule step.

    Returns the loss and the gradient norm before clipping. Raises ``diverged(what, value)``
    before any weight changes if the loss or the gradient norm is not finite.
    """
    loss_value = float(loss.detach())
    if not math.isfinite(loss_value):
        raise diverged("the loss", loss_value)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    params = [p for group in optimizer.param_groups for p in group["params"]]
    norm = _grad_norm(params, clip_grad_norm)
    if not math.isfinite(norm):
        raise diverged("the gradient norm", norm)
    optimizer.step()
    scheduler.step()
    return loss_value, norm


def _train_step(model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any, config: TrainConfig,
                inputs: torch.Tensor, targets: torch.Tensor, loop: LoopState, step: int) -> tuple[float, float]:
    """One update on a (T, B) chunk: mean nll, then :func:`_update`. Carries the new state,
    detached, in ``loop.state``; returns the loss and the grad norm before clipping."""
    lr = optimizer.param_groups[0]["lr"]
    nll, state = _nll(model, inputs, targets, loop.state)  # (T, B)
    loss_value, norm = _update(nll.mean(), optimizer, scheduler, config.clip_grad_norm,
                               lambda what, value: _diverged(what, value, step + 1, loop.epoch, loop.offset, lr, config))
    loop.state = detach_state(state)  # keep the values, cut the graph
    return loss_value, norm


def _record(history: History, loop: LoopState, step: int, result: Evaluation,
            patience: int | None) -> bool:
    """Add an evaluation to `history`, count evaluations without a new best; True if a new best."""
    history.eval_steps.append(step)
    history.valid_loss.append(result.loss)
    history.valid_perplexity.append(result.perplexity)
    if result.loss < history.best_valid_loss:
        history.best_step, history.best_valid_loss = step, result.loss
        history.best_valid_perplexity = result.perplexity
        loop.bad_evals = 0
        return True
    loop.bad_evals += 1
    if patience is not None and loop.bad_evals >= patience:
        history.stopped_early = True
    return False


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
    start_time = time.perf_counter()
    config = config if config is not None else TrainConfig()
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    _check_model(model)
    B, bptt = config.batch_size, config.bptt
    data = _batchify_stream(train_stream, "train_stream", B, bptt + 1,
                            f"training with batch_size={B} and bptt={bptt} (one full chunk)")
    _batchify_stream(valid_stream, "valid_stream", config.eval_batch_size, 2,
                     f"validation with eval_batch_size={config.eval_batch_size}")
    device = _device(model)
    data = data.to(device)  # (rows, B)
    rows = data.size(0)
    chunks_per_epoch = math.ceil((rows - 1) / bptt)
    epochs = config.epochs if config.epochs is not None else (None if config.max_steps else 1)
    total_steps = run_steps(config, chunks_per_epoch)
    ckpt_template = str(config.checkpoint) if config.checkpoint is not None else None
    if ckpt_template is not None and "{step}" not in ckpt_template:
        _check_save_target(Path(ckpt_template))
    resume = resume_from if resume_from is not None else config.resume
    data_sha = _sha256(train_stream) if (ckpt_template or resume) else ""

    if resume is not None:  # read and check before changing anything
        resume_path, tensors, meta = _read_for_resume(resume, config, data_sha)
    else:
        _seed(config.seed)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps)
    if resume is not None:
        ckpt = _apply(resume_path, tensors, meta, model, optimizer, scheduler, restore_rng=True)
        history, loop, step, best = ckpt.history, ckpt.loop, ckpt.step, ckpt.best_weights
    else:
        history, loop, step, best = History(), LoopState(data_sha256=data_sha), 0, None
    loop.data_sha256 = data_sha
    seconds_before = history.total_seconds

    def finished() -> bool:
        return (history.stopped_early or (config.max_steps is not None and step >= config.max_steps)
                or (epochs is not None and loop.epoch >= epochs))

    def save() -> None:
        history.total_seconds = seconds_before + time.perf_counter() - start_time
        save_checkpoint(ckpt_template.replace("{step}", str(step)), model, optimizer, scheduler,
                        step=step, history=history, config=config, loop=loop, best_weights=best)

    from tqdm.auto import tqdm

    bar = tqdm(total=total_steps, initial=step, disable=not config.progress, desc="train", unit="step")
    model.train()
    smooth, run_tokens, run_seconds = None, 0, 0.0
    try:
        while not finished():
            t0 = time.perf_counter()
            inputs, targets = get_batch(data, loop.offset, bptt)  # (T, B), (T*B,)
            targets = targets.view(inputs.shape)  # (T*B,) -> (T, B)
            lr = optimizer.param_groups[0]["lr"]
            loss, norm = _train_step(model, optimizer, scheduler, config, inputs, targets, loop, step)
            step += 1
            loop.offset += inputs.size(0)
            history.train_loss.append(loss)
            history.lr.append(lr)
            history.grad_norm.append(norm)
            history.tokens_seen += inputs.numel()
            epoch_end = loop.offset >= rows - 1
            if epoch_end:  # the next epoch starts from the top with a fresh state
                loop.epoch, loop.offset, loop.state = loop.epoch + 1, 0, None
                history.epochs_completed = loop.epoch
            elapsed = time.perf_counter() - t0
            history.train_seconds += elapsed
            run_seconds, run_tokens = run_seconds + elapsed, run_tokens + inputs.numel()
            smooth = loss if smooth is None else 0.9 * smooth + 0.1 * loss
            postfix = {"loss": f"{smooth:.3f}", "lr": f"{lr:.2e}", "tok/s": f"{run_tokens / run_seconds:.0f}"}

            if (config.eval_every and step % config.eval_every == 0) or epoch_end or finished():
                result = evaluate(model, valid_stream, config.eval_batch_size, bptt)
                if _record(history, loop, step, result, config.patience) and config.patience is not None:
                    best = {k: v.detach().clone() for k, v in model.state_dict().items()}
                postfix["val_ppl"] = f"{result.perplexity:.2f}"
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
            if ckpt_template and ((config.checkpoint_every and step % config.checkpoint_every == 0)
                                  or epoch_end or finished()):
                save()
    finally:
        bar.close()
    if config.patience is not None and best is not None:
        model.load_state_dict(best)
    history.total_seconds = seconds_before + time.perf_counter() - start_time
    return history


# ---------------------------------------------------------------------------------------------
# The same loop over a set of examples (sequence pairs, masked sentences, labelled texts)

def bucketed_batches(lengths: Sequence[int], batch_size: int, rng: random.Random) -> list[list[int]]:
    """Indices cut into batches of similar length, in random order: shuffle, sort pools of 50
    batches by length, cut, shuffle the batches. Little time then goes into padding.

    >>> batches = bucketed_batches([1, 9, 2, 8, 1, 9], 2, random.Random(0))
    >>> sorted(sorted(b) for b in batches)  # every index once; short with short, long with long
    [[0, 4], [1, 5], [2, 3]]
    """
    order = list(range(len(lengths)))
    rng.shuffle(order)
    pool = 50 * batch_size
    batches = []
    for start in range(0, len(order), pool):
        chunk = sorted(order[start:start + pool], key=lengths.__getitem__)
        batches += [chunk[i:i + batch_size] for i in range(0, len(chunk), batch_size)]
    rng.shuffle(batches)
    return batches


def check_example_config(config: Any, who: str) -> None:
    """Refuse what :func:`train_on_examples` leaves out: early stopping, checkpoints, resuming."""
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    for name in ("patience", "checkpoint", "resume"):
        if getattr(config, name) is not None:
            raise ValueError(f"{who} does not support {name} (it trains for minutes); set {name}=None")


def train_on_examples(model: nn.Module, num_examples: int, config: TrainConfig,
                      batch_loss: Callable[[list[int]], tuple[torch.Tensor, int]], *,
                      history: History | None = None, validate: Callable[[int], dict[str, str]] | None = None,
                      lengths: Sequence[int] | None = None, desc: str = "train") -> History:
    """Train on `num_examples` separate examples rather than one stream: the loop behind
    :mod:`lmcourse.seq2seq`, :mod:`lmcourse.mlm` and :mod:`lmcourse.classify`.

    Seeds torch with ``config.seed`` (for dropout) and shuffles the example indices every epoch
    (``random.Random(config.seed)``), cut into batches of ``config.batch_size`` (of similar
    `lengths` if given: :func:`bucketed_batches`). Each batch's ``batch_loss(indices) -> (loss,
    tokens)`` is minimised with the optimizer, schedule and clipping of `config`;
    ``validate(step)``, which records into `history` and returns progress-bar fields, runs every
    ``eval_every`` steps and at the end. Early stopping and checkpoints are left out
    (:func:`check_example_config`).

    >>> weight = nn.Parameter(torch.zeros(1))
    >>> model = nn.Module(); model.weight = weight
    >>> targets = torch.linspace(1, 3, 8)  # 8 examples; the best weight is their mean, 2
    >>> loss = lambda idx: (((weight - targets[idx]) ** 2).mean(), len(idx))
    >>> cfg = TrainConfig(lr=0.1, batch_size=4, epochs=50, progress=False)
    >>> history = train_on_examples(model, 8, cfg, loss)
    >>> history.steps, history.epochs_completed, round(float(weight.detach()), 1)
    (100, 50, 2.0)
    """
    start_time = time.perf_counter()
    check_example_config(config, desc)
    history = history if history is not None else History()
    torch.manual_seed(config.seed)
    rng = random.Random(config.seed)
    total_steps = run_steps(config, math.ceil(num_examples / config.batch_size))
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config, total_steps)

    def diverged(what: str, value: float) -> FloatingPointError:
        return FloatingPointError(f"training diverged: {what} is {value} at step {step + 1}; lower the "
                                  f"learning rate (lr={lr:.3g}), add warmup_steps or clip gradients")

    from tqdm.auto import tqdm

    was_training = model.training
    model.train()
    step, smooth, queue, lr = 0, None, [], config.lr
    with tqdm(total=total_steps, disable=not config.progress, desc=desc, unit="step") as bar:
        while step < total_steps:
            if not queue:
                if step:
                    history.epochs_completed += 1
                if lengths is not None:
                    queue = bucketed_batches(lengths, config.batch_size, rng)
                else:
                    order = list(range(num_examples))
                    rng.shuffle(order)
                    queue = [order[i:i + config.batch_size] for i in range(0, num_examples, config.batch_size)]
            t0 = time.perf_counter()
            lr = optimizer.param_groups[0]["lr"]
            loss, tokens = batch_loss(queue.pop())
            loss_value, norm = _update(loss, optimizer, scheduler, config.clip_grad_norm, diverged)
            step += 1
            history.train_loss.append(loss_value)
            history.lr.append(lr)
            history.grad_norm.append(norm)
            history.tokens_seen += tokens
            history.train_seconds += time.perf_counter() - t0
            smooth = loss_value if smooth is None else 0.95 * smooth + 0.05 * loss_value
            postfix = {"loss": f"{smooth:.3f}", "lr": f"{lr:.1e}"}
            if validate is not None and ((config.eval_every and step % config.eval_every == 0)
                                         or step == total_steps):
                postfix.update(validate(step))
            bar.set_postfix(postfix, refresh=False)
            bar.update(1)
    if not queue:
        history.epochs_completed += 1
    model.train(was_training)
    history.total_seconds = time.perf_counter() - start_time
    return history
