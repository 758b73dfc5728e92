"""Direct preference optimisation, DPO (Rafailov et al., 2023), as a loss (Chapter 8).

RLHF learns a reward model from pairs of answers a person ranked (``chosen`` over ``rejected``)
and then maximises that reward with PPO, kept near a frozen reference model by a KL penalty. DPO
notices that the best policy for that objective has a closed form, and that it turns the reward
into ``beta * log(pi(y | x) / pi_ref(y | x))``: the policy *is* the reward model. Plugging that
reward into the Bradley-Terry preference model leaves a plain classification loss on pairs::

    loss = -log sigmoid( beta * [(log pi(y_w) - log pi_ref(y_w)) - (log pi(y_l) - log pi_ref(y_l))] )

with ``y_w`` the chosen and ``y_l`` the rejected answer. No sampling, no reward model, no PPO: two
forward passes of the policy and two of the frozen reference per pair. ``beta`` sets how far the
policy may move from the reference (small ``beta``: far).

When the chosen answer is where the rejected one starts (Chapter 8's pairs: a reply's first sentence
against the whole reply), one pass over the rejected sequence scores both (:func:`shares_prefix`).

- :func:`sequence_logprob`: ``log pi(y | x)``, the summed log-probabilities of the response tokens
  only (the prompt and padding masked);
- :func:`dpo_loss`: the loss, and the implicit rewards ``beta * (log pi - log pi_ref)`` whose margin
  the chapter plots over training;
- :func:`response_logprobs`: ``log pi(y | x)`` of encoded examples (:mod:`lmcourse.sft`'s ids and
  labels), without gradients; :func:`pair_logprobs` the same for (chosen, rejected) pairs: the frozen
  reference's values, computed once before training;
- :func:`train_dpo`: the loss minimised through :func:`lmcourse.train.train_on_examples` (the book's one
  update step), with the rewards of every step recorded in a :class:`DPOTrace`;
- :func:`plot_trace`: a run's rewards and loss over training, side by side.

Left out: the reference-free and length-normalised variants (SimPO, IPO's squared loss, label
smoothing for noisy preferences), and a reference model kept in memory (its log-probabilities never change, so they are computed once).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from lmcourse._checks import check_float, check_positive_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.sft import DEFAULT_PAD_ID, IGNORE_INDEX, Encoded, answer_logits, length_sorted_batches, pad_batch
from lmcourse.train import History, TrainConfig, check_example_config, train_on_examples

__all__ = ["sequence_logprob", "dpo_loss", "response_logprobs", "shares_prefix", "pair_logprobs", "DPOTrace", "train_dpo",
           "plot_trace"]

Pair = tuple[Encoded, Encoded]  # (chosen, rejected), each (input_ids, labels) as lmcourse.sft encodes them


def _check_logprob_inputs(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> None:
    if not isinstance(logits, torch.Tensor) or logits.dim() != 3 or not logits.is_floating_point():
        raise TypeError(f"model_logits must be a float tensor (B, T, V), got "
                        f"{_describe(logits)}")
    if not isinstance(targets, torch.Tensor) or targets.dtype not in (torch.int64, torch.int32):
        raise TypeError(f"targets must be an integer tensor (B, T) of token ids, got {_describe(targets)}")
    if not isinstance(mask, torch.Tensor) or mask.dtype != torch.bool:
        raise TypeError(f"mask must be a bool tensor (B, T), True on the response tokens, got {_describe(mask)}")
    B, T, V = logits.shape
    if targets.shape != (B, T) or mask.shape != (B, T):
        raise ValueError(f"targets {tuple(targets.shape)} and mask {tuple(mask.shape)} must both have the shape "
                         f"(B, T) = {(B, T)} of model_logits {tuple(logits.shape)}")
    scored = targets[mask]
    if scored.numel() and (scored.min() < 0 or scored.max() >= V):
        raise ValueError(f"targets on the response tokens must be token ids in [0, {V}), got values from "
                         f"{scored.min().item()} to {scored.max().item()}")


def _describe(x: object) -> str:
    if isinstance(x, torch.Tensor):
        return f"a {x.dtype} tensor of shape {tuple(x.shape)}"
    return type(x).__name__


def _token_logprobs(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log softmax(logits)[target]`` at every position: ``(..., V)`` and ``(...)`` -> ``(...)``."""
    return F.log_softmax(logits, dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)


def sequence_logprob(model_logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``log pi(response | prompt)`` per sequence: the log-probabilities of the response tokens, summed.

    ``model_logits[b, t]`` is the model's prediction for ``targets[b, t]`` (shift by one before
    calling: the logits at position ``t`` of the input predict the token at ``t + 1``). ``mask`` is
    True on the response tokens; masked positions (prompt, template, padding) contribute nothing,
    whatever their targets hold (``-100`` is fine there).

    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: log(1/4) each
    >>> sequence_logprob(logits, torch.tensor([[1, 2, 3]]), torch.tensor([[False, True, True]]))
    tensor([-2.7726])
    """
    _check_logprob_inputs(model_logits, targets, mask)
    safe = targets.masked_fill(~mask, 0).long()  # any valid id where masked: it is discarded below
    return torch.where(mask, _token_logprobs(model_logits, safe), 0.0).sum(dim=-1)  # (B, T) -> (B,)


def _check_pair_inputs(tensors: dict[str, torch.Tensor], beta: float) -> None:
    check_float("beta", beta, 0.0, low_open=True)
    for name, t in tensors.items():
        if not isinstance(t, torch.Tensor) or t.dim() != 1 or not t.is_floating_point() or not len(t):
            raise TypeError(f"{name} must be a non-empty float tensor (B,) of sequence log-probabilities "
                            f"(see sequence_logprob), got {_describe(t)}")
    shapes = {name: (tuple(t.shape), t.dtype) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"the four log-probability tensors must share one shape and dtype, got {shapes}")


def dpo_loss(policy_chosen: torch.Tensor, policy_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The DPO loss (mean over the batch) and the implicit rewards of the chosen and rejected answers.

    All four inputs are ``(B,)`` sequence log-probabilities (:func:`sequence_logprob`); the reference's
    are treated as constants (detached), as the reference model is frozen. The rewards
    ``beta * (policy - ref)``, ``(B,)`` each, are detached too: they are for watching the margin
    ``chosen - rejected`` grow, not for training.

    >>> loss, chosen, rejected = dpo_loss(torch.tensor([-5.0]), torch.tensor([-9.0]),
    ...                                   torch.tensor([-5.0]), torch.tensor([-9.0]), beta=0.1)
    >>> round(loss.item(), 6) == round(torch.log(torch.tensor(2.0)).item(), 6)  # policy = reference
    True
    """
    _check_pair_inputs({"policy_chosen": policy_chosen, "policy_rejected": policy_rejected,
                        "ref_chosen": ref_chosen, "ref_rejected": ref_rejected}, beta)
    chosen_reward = beta * (policy_chosen - ref_chosen.detach())  # (B,)
    rejected_reward = beta * (policy_rejected - ref_rejected.detach())  # (B,)
    loss = -F.logsigmoid(chosen_reward - rejected_reward).mean()  # Bradley-Terry: P(chosen > rejected)
    return loss, chosen_reward.detach(), rejected_reward.detach()


def _batch_logprobs(model: nn.Module, examples: Sequence[Encoded], pad_id: int) -> torch.Tensor:
    """``log pi(answer | prompt)`` ``(B,)`` of encoded examples, padded into one batch (the output layer
    applied at the answer positions only, :func:`lmcourse.sft.answer_logits`)."""
    device = model_device(model)
    input_ids, labels = (t.to(device) for t in pad_batch(examples, pad_id))
    logits, targets, rows = answer_logits(model, input_ids, labels)  # (K, V), (K,), (K,)
    token_logp = _token_logprobs(logits, targets)  # (K,)
    return torch.zeros(len(examples), dtype=token_logp.dtype, device=device).index_add(0, rows, token_logp)


def shares_prefix(chosen: Encoded, rejected: Encoded) -> bool:
    """Whether one forward pass over `rejected` also gives ``log pi(chosen)``: `chosen`, up to its last
    labelled token (the end of its turn; what follows is not scored), is the start of `rejected`,
    with the same tokens labelled, and the rejected answer goes on past that point. The model is
    causal, so its predictions along the shared start are the same in both sequences, and the chosen
    answer's last token is scored by the prediction made where the rejected answer goes on with
    another token.

    >>> shares_prefix(([1, 2, 3, 9, 0], [-100, -100, 3, 9, -100]), ([1, 2, 3, 4, 9, 0], [-100, -100, 3, 4, 9, -100]))
    True
    >>> shares_prefix(([1, 2, 7, 9, 0], [-100, -100, 7, 9, -100]), ([1, 2, 3, 4, 9, 0], [-100, -100, 3, 4, 9, -100]))
    False
    """
    (chosen_ids, chosen_labels), (rejected_ids, rejected_labels) = chosen, rejected
    scored = [t for t, label in enumerate(chosen_labels) if label != IGNORE_INDEX]
    if not scored:
        return False
    n = scored[-1]  # the chosen answer's last token; the tokens before it must be the rejected sequence's
    return (0 < n < len(rejected_ids) and list(chosen_ids[:n]) == list(rejected_ids[:n])
            and list(chosen_labels[:n]) == list(rejected_labels[:n]) and rejected_labels[n] != IGNORE_INDEX)


def _pair_batch_logprobs(model: nn.Module, chosen: Sequence[Encoded], rejected: Sequence[Encoded],
                         pad_id: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """``(log pi(chosen), log pi(rejected), tokens read)``, ``(B,)``, ``(B,)`` and an int: from one padded
    batch of the rejected sequences when every pair :func:`shares_prefix`, else from two batches."""
    if not all(map(shares_prefix, chosen, rejected)):
        tokens = sum(len(ids) for ids, _ in [*chosen, *rejected])
        return _batch_logprobs(model, chosen, pad_id), _batch_logprobs(model, rejected, pad_id), tokens
    device = model_device(model)
    input_ids, labels = (t.to(device) for t in pad_batch(rejected, pad_id))
    logits, targets, rows = answer_logits(model, input_ids, labels)  # (K, V), (K,), (K,): the rejected answers
    logp = F.log_softmax(logits, dim=-1)  # (K, V)
    chosen_labels = torch.full_like(labels, IGNORE_INDEX)  # (B, T): each chosen answer's labels, in its row
    for row, (_, row_labels) in enumerate(chosen):
        last = max(t for t, label in enumerate(row_labels) if label != IGNORE_INDEX)  # what follows is not scored
        chosen_labels[row, :last + 1] = torch.tensor(row_labels[:last + 1])
    chosen_targets = chosen_labels[:, 1:][labels[:, 1:] != IGNORE_INDEX]  # (K,): aligned with `targets`
    scored = chosen_targets != IGNORE_INDEX  # the positions that predict a chosen answer token
    zeros = torch.zeros(len(rejected), dtype=logp.dtype, device=device)
    rejected_logp = zeros.index_add(0, rows, logp.gather(1, targets[:, None]).squeeze(1))
    chosen_logp = zeros.index_add(0, rows[scored], logp[scored].gather(1, chosen_targets[scored, None]).squeeze(1))
    return chosen_logp, rejected_logp, sum(len(ids) for ids, _ in rejected)


@torch.no_grad()
def pair_logprobs(model: nn.Module, pairs: Sequence[Pair], batch_size: int = 8,
                  pad_id: int = DEFAULT_PAD_ID) -> torch.Tensor:
    """``(log pi(chosen), log pi(rejected))`` ``(N, 2)`` of each pair, with no gradient (in eval mode):
    the frozen reference's values for :func:`train_dpo`. Pairs whose chosen answer starts the rejected
    one (:func:`shares_prefix`) take one forward pass; the others two, as :func:`response_logprobs`."""
    if not pairs:
        raise ValueError("pair_logprobs needs at least one (chosen, rejected) pair")
    check_positive_int("batch_size", batch_size)
    out = torch.empty(len(pairs), 2)
    with eval_mode(model):
        for rows in length_sorted_batches([rejected for _, rejected in pairs], batch_size):
            chosen, rejected, _ = _pair_batch_logprobs(model, [pairs[i][0] for i in rows], [pairs[i][1] for i in rows],
                                                       pad_id)
            out[rows] = torch.stack([chosen, rejected], dim=1).cpu().to(out.dtype)
    return out


@torch.no_grad()
def response_logprobs(model: nn.Module, examples: Sequence[Encoded], batch_size: int = 8,
                      pad_id: int = DEFAULT_PAD_ID) -> torch.Tensor:
    """``log pi(answer | prompt)`` ``(N,)`` of each encoded example, with no gradient (in eval mode)."""
    if not examples:
        raise ValueError("response_logprobs needs at least one encoded example")
    check_positive_int("batch_size", batch_size)
    batches = length_sorted_batches(examples, batch_size)
    with eval_mode(model):
        values = [_batch_logprobs(model, [examples[i] for i in rows], pad_id).cpu() for rows in batches]
    out = torch.empty(len(examples), dtype=values[0].dtype)
    for rows, batch_values in zip(batches, values):
        out[rows] = batch_values
    return out


@dataclass
class DPOTrace:
    """The implicit rewards ``beta * (log pi - log pi_ref)`` of each training step's batch, averaged."""

    chosen_reward: list[float] = field(default_factory=list)
    rejected_reward: list[float] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)  # share of pairs whose chosen reward is higher

    @property
    def margin(self) -> list[float]:
        """Chosen minus rejected reward, per step: 0 at the start (policy = reference), then growing."""
        return [c - r for c, r in zip(self.chosen_reward, self.rejected_reward)]


def train_dpo(model: nn.Module, pairs: Sequence[Pair], ref_logprobs: torch.Tensor, config: TrainConfig, *,
              beta: float = 0.1, nll_weight: float = 0.0, pad_id: int = DEFAULT_PAD_ID) -> tuple[History, DPOTrace]:
    """Minimise :func:`dpo_loss` over (chosen, rejected) pairs of encoded examples, training `model`'s
    trainable parameters (all, or a LoRA adapter's). ``ref_logprobs[i]`` holds the frozen reference's
    ``(log pi_ref(chosen), log pi_ref(rejected))`` of pair i, ``(N, 2)`` (:func:`pair_logprobs`): the
    reference never changes, so it is not run during training. Each step reads a batch of pairs as
    a padded batch of chosen and one of rejected answers, or the rejected ones alone when every chosen
    answer starts its rejected one (:func:`shares_prefix`); ``history.train_loss`` is the loss minimised.

    ``nll_weight > 0`` adds that weight times the chosen answers' mean negative log-likelihood per token
    (the SFT loss on the chosen answers, as Pang et al. 2024 do): DPO alone only asks the chosen answer
    to gain on the rejected one, and can get there by making both less likely, which lets the policy
    drift to text in neither; the added term keeps the chosen answers likely."""
    check_example_config(config, "train_dpo")
    check_float("beta", beta, 0.0, low_open=True)
    check_float("nll_weight", nll_weight, 0.0)
    if not pairs:
        raise ValueError("train_dpo needs at least one (chosen, rejected) pair")
    if not isinstance(ref_logprobs, torch.Tensor) or tuple(ref_logprobs.shape) != (len(pairs), 2):
        raise ValueError(f"ref_logprobs must be a tensor (N, 2) = ({len(pairs)}, 2) of the reference's "
                         f"(chosen, rejected) log-probabilities, got {_describe(ref_logprobs)}")
    trace = DPOTrace()
    chosen_tokens = torch.tensor([sum(label != IGNORE_INDEX for label in chosen[1]) for chosen, _ in pairs])  # (N,)

    def batch_loss(indices: list[int]) -> tuple[torch.Tensor, int]:
        chosen_rows, rejected_rows = [pairs[i][0] for i in indices], [pairs[i][1] for i in indices]
        logp_chosen, logp_rejected, tokens_read = _pair_batch_logprobs(model, chosen_rows, rejected_rows, pad_id)
        ref = ref_logprobs[indices].to(logp_chosen.device)  # (B, 2)
        loss, chosen, rejected = dpo_loss(logp_chosen, logp_rejected, ref[:, 0], ref[:, 1], beta)
        if nll_weight:
            tokens = chosen_tokens[indices].to(logp_chosen.device, logp_chosen.dtype)  # (B,) answer tokens per chosen reply
            loss = loss + nll_weight * (-logp_chosen / tokens).mean()
        trace.chosen_reward.append(chosen.mean().item())
        trace.rejected_reward.append(rejected.mean().item())
        trace.accuracy.append((chosen > rejected).float().mean().item())
        return loss, tokens_read

    lengths = [len(chosen[0]) + len(rejected[0]) for chosen, rejected in pairs]
    history = train_on_examples(model, len(pairs), config, batch_loss, lengths=lengths, desc="dpo")
    return history, trace


def plot_trace(history: History, trace: DPOTrace, title: str = "DPO", loss_label: str = "DPO loss",
               live: History | None = None) -> Any:
    """A figure of one :func:`train_dpo` run: on the left the implicit rewards of the chosen and
    rejected answers and their margin, per step; on the right ``history.train_loss``, the loss
    minimised, labelled `loss_label` (with ``nll_weight > 0`` that is the DPO loss plus the SFT term,
    which starts above ``log 2``). `live`, the first steps of a stored run trained again here
    (``stop_after``), marks their losses on the stored run's. Returns the matplotlib ``Figure``, with
    its two ``Axes``."""
    import matplotlib.pyplot as plt

    if not trace.margin or len(history.train_loss) != len(trace.margin):
        raise ValueError(f"history and trace must come from one train_dpo run: {len(history.train_loss)} losses "
                         f"and {len(trace.margin)} recorded steps")
    if live is not None and not 0 < live.steps <= history.steps:
        raise ValueError(f"live must hold the first steps of the run (1 to {history.steps}), got {live.steps}")
    fig, (rewards, loss) = plt.subplots(1, 2, figsize=(10, 3.2))
    steps = range(1, len(trace.margin) + 1)
    rewards.plot(steps, trace.chosen_reward, label="chosen")
    rewards.plot(steps, trace.rejected_reward, label="rejected")
    rewards.plot(steps, trace.margin, "k--", label="margin")
    rewards.axhline(0, color="0.7", lw=0.8)
    rewards.set(xlabel="step", ylabel=r"implicit reward $\beta \log \pi_\theta / \pi_{ref}$", title=f"{title}: rewards")
    rewards.legend(fontsize=8)
    loss.plot(steps, history.train_loss, label="the stored run" if live is not None else None)
    if live is not None:
        loss.plot(range(1, live.steps + 1), live.train_loss, "o", ms=4, mfc="none", label="the steps trained here")
        loss.legend(fontsize=8)
    loss.set(xlabel="step", ylabel=loss_label, title=f"{title}: loss")
    fig.tight_layout()
    return fig
