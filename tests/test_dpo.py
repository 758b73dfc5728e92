"""lmcourse.dpo: hand-computed sequence log-probabilities and DPO losses, log 2 when the policy is
the reference, the direction of the gradient, masked positions, the input errors, and the plot of a run."""

from __future__ import annotations

import math

import pytest
import torch

from lmcourse.dpo import dpo_loss, sequence_logprob


def test_sequence_logprob_by_hand():
    # Position 0: logits (0, ln 2, 0) -> probabilities (1/4, 1/2, 1/4); the target is token 1: log 1/2.
    # Position 1: logits (0, 0, 0) -> 1/3 each; the target is token 2: log 1/3.
    logits = torch.tensor([[[0.0, math.log(2), 0.0], [0.0, 0.0, 0.0]]])  # (B=1, T=2, V=3)
    targets = torch.tensor([[1, 2]])
    both = sequence_logprob(logits, targets, torch.tensor([[True, True]]))
    assert both.shape == (1,)
    assert both.item() == pytest.approx(math.log(1 / 2) + math.log(1 / 3))  # -log 6 = -1.791759
    assert sequence_logprob(logits, targets, torch.tensor([[False, True]])).item() == pytest.approx(-math.log(3))
    assert sequence_logprob(logits, targets, torch.tensor([[False, False]])).item() == 0.0


def test_masked_positions_contribute_nothing():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 7, generator=g, requires_grad=True)
    targets = torch.randint(0, 7, (2, 5), generator=g)
    mask = torch.tensor([[False, False, True, True, True], [False, True, True, False, False]])
    value = sequence_logprob(logits, targets, mask)
    value.sum().backward()
    assert torch.equal(logits.grad[~mask], torch.zeros(int((~mask).sum()), 7))  # no gradient where masked
    assert logits.grad[mask].abs().sum() > 0
    changed = logits.detach().clone()
    changed[~mask] = 1000.0 * torch.randn(int((~mask).sum()), 7, generator=g)  # anything where masked
    padded = targets.masked_fill(~mask, -100)  # an ignore index where masked is fine too
    assert torch.equal(sequence_logprob(changed, padded, mask), value.detach())


def test_dpo_loss_by_hand():
    # beta = 0.5. Pair 1: the policy raised the chosen answer by 1 nat and lowered the rejected by 1:
    #   rewards 0.5 (1) = 0.5 and 0.5 (-1) = -0.5, margin 1, loss -log sigmoid(1) = log(1 + e^-1) = 0.313262.
    # Pair 2: the policy lowered the chosen by 2 nats and left the rejected as it was:
    #   rewards 0.5 (-2) = -1 and 0, margin -1, loss -log sigmoid(-1) = log(1 + e) = 1.313262.
    # The loss is the mean, 0.813262.
    policy_chosen = torch.tensor([-1.0, -4.0], requires_grad=True)
    policy_rejected = torch.tensor([-3.0, -2.0], requires_grad=True)
    ref_chosen, ref_rejected = torch.tensor([-2.0, -2.0]), torch.tensor([-2.0, -2.0])
    loss, chosen, rejected = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.5)
    assert chosen.tolist() == [0.5, -1.0] and rejected.tolist() == [-0.5, 0.0]
    assert loss.item() == pytest.approx((math.log(1 + math.exp(-1)) + math.log(1 + math.e)) / 2)
    assert loss.item() == pytest.approx(0.8132617)
    loss.backward()
    # d loss / d policy_chosen = -beta sigmoid(-margin) / B: -0.5 * 0.268941 / 2 and -0.5 * 0.731059 / 2
    sig = torch.sigmoid(torch.tensor([-1.0, 1.0]))
    torch.testing.assert_close(policy_chosen.grad, -0.5 * sig / 2)
    torch.testing.assert_close(policy_rejected.grad, 0.5 * sig / 2)
    assert not chosen.requires_grad and not rejected.requires_grad  # for logging only


def test_loss_is_log_2_when_the_policy_is_the_reference():
    g = torch.Generator().manual_seed(1)
    chosen, rejected = -10 * torch.rand(8, generator=g), -10 * torch.rand(8, generator=g)
    for beta in (0.01, 0.1, 1.0):
        loss, rc, rr = dpo_loss(chosen, rejected, chosen.clone(), rejected.clone(), beta=beta)
        assert loss.item() == pytest.approx(math.log(2))
        assert torch.equal(rc, torch.zeros(8)) and torch.equal(rr, torch.zeros(8))


def test_gradient_step_raises_chosen_and_lowers_rejected():
    g = torch.Generator().manual_seed(2)
    targets = torch.randint(0, 6, (2, 4), generator=g)  # row 0: chosen answer, row 1: rejected answer
    mask = torch.tensor([[False, True, True, True], [False, True, True, True]])
    ref_logits = torch.randn(2, 4, 6, generator=g)
    policy_logits = ref_logits.clone().requires_grad_(True)  # the policy starts as the reference
    ref = sequence_logprob(ref_logits, targets, mask)

    def policy_loss():
        policy = sequence_logprob(policy_logits, targets, mask)
        return policy, dpo_loss(policy[:1], policy[1:], ref[:1], ref[1:], beta=0.1)[0]

    before, loss = policy_loss()
    loss.backward()
    with torch.no_grad():
        policy_logits -= 1.0 * policy_logits.grad  # one step of gradient descent
    after, new_loss = policy_loss()
    assert after[0] > before[0] and after[1] < before[1]
    assert new_loss < loss


@pytest.mark.parametrize("logits, targets, mask, error, message", [
    (torch.zeros(2, 3), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3, dtype=torch.bool), TypeError,
     r"model_logits must be a float tensor \(B, T, V\), got a torch.float32 tensor of shape \(2, 3\)"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.bool), TypeError,
     "targets must be an integer tensor"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 3, dtype=torch.long), torch.ones(2, 3), TypeError,
     "mask must be a bool tensor"),
    (torch.zeros(2, 3, 5), torch.zeros(2, 4, dtype=torch.long), torch.ones(2, 4, dtype=torch.bool), ValueError,
     r"must both have the shape \(B, T\) = \(2, 3\)"),
    (torch.zeros(1, 2, 5), torch.tensor([[0, 5]]), torch.ones(1, 2, dtype=torch.bool), ValueError,
     r"token ids in \[0, 5\), got values from 0 to 5"),
])
def test_sequence_logprob_errors(logits, targets, mask, error, message):
    with pytest.raises(error, match=message):
        sequence_logprob(logits, targets, mask)


def test_dpo_loss_errors():
    x = torch.zeros(3)
    with pytest.raises(ValueError, match="beta must be a finite number"):
        dpo_loss(x, x, x, x, beta=0)
    with pytest.raises(TypeError, match=r"policy_chosen must be a non-empty float tensor \(B,\)"):
        dpo_loss(torch.zeros(3, 2), x, x, x, beta=0.1)
    with pytest.raises(TypeError, match="ref_rejected must be a non-empty float tensor"):
        dpo_loss(x, x, x, torch.zeros(3, dtype=torch.long), beta=0.1)
    with pytest.raises(ValueError, match="must share one shape and dtype"):
        dpo_loss(x, torch.zeros(4), x, x, beta=0.1)
    with pytest.raises(ValueError, match="must share one shape and dtype"):
        dpo_loss(x, x.double(), x, x, beta=0.1)


def _tiny_llama(seed: int = 0):
    from lmcourse.llama import Llama, LlamaConfig
    torch.manual_seed(seed)
    return Llama(LlamaConfig.tiny(vocab_size=40, context_length=32))


def _pair(prompt: list[int], chosen: list[int], rejected: list[int]):
    def encoded(answer):
        return prompt + answer, [-100] * len(prompt) + answer
    return encoded(chosen), encoded(rejected)


def test_response_logprobs_sums_the_answer_tokens_and_ignores_padding():
    from lmcourse.dpo import response_logprobs
    model = _tiny_llama()
    examples = [([3, 4, 5, 6], [-100, -100, 5, 6]), ([7, 8, 9], [-100, 8, 9])]
    together = response_logprobs(model, examples, batch_size=2)  # one padded batch
    for (ids, labels), value in zip(examples, together):
        logp = torch.log_softmax(model(torch.tensor([ids[:-1]]))[0], dim=-1)  # (T-1, V)
        by_hand = sum(logp[t - 1, ids[t]] for t in range(1, len(ids)) if labels[t] != -100)
        assert value.item() == pytest.approx(by_hand.item(), abs=1e-5)
    assert not together.requires_grad
    # batches are formed shortest first (here the second example first); values come back in the given order
    torch.testing.assert_close(response_logprobs(model, examples, batch_size=1), together, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at least one"):
        response_logprobs(model, [])


def _shared_pairs(n: int = 4):
    """Pairs whose chosen answer is the rejected one's first token and then the end token 39."""
    pairs = [_pair([5, 6, 7], [10 + k, 39], [10 + k, *range(21, 22 + k % 4), 39]) for k in range(n)]  # padded batches
    return [((c_ids + [0], c_labels + [-100]), (r_ids + [0], r_labels + [-100]))  # and an unscored line break
            for (c_ids, c_labels), (r_ids, r_labels) in pairs]


def test_shares_prefix_needs_the_same_start_and_labels_and_a_longer_rejected_answer():
    from lmcourse.dpo import shares_prefix
    chosen, rejected = _pair([5, 6, 7], [10, 39], [10, 21, 39])
    assert shares_prefix(chosen, rejected)
    assert not shares_prefix(*_pair([5, 6, 7], [11, 39], [10, 21, 39]))  # another first answer token
    assert not shares_prefix(*_pair([5, 6, 7], [10, 21, 39], [10, 39]))  # the chosen answer is the longer one
    assert not shares_prefix(*_pair([5, 6, 7], [10, 39], [10]))  # the rejected answer stops where the chosen ends
    assert not shares_prefix(chosen, ([4, 6, 7, 10, 21, 39], rejected[1]))  # another prompt
    assert not shares_prefix(chosen, (rejected[0], [-100, -100, 7, 10, 21, 39]))  # labelled differently
    assert not shares_prefix((chosen[0], [-100] * len(chosen[0])), rejected)  # no answer to score
    # what follows the chosen answer's last labelled token (the template's line break) is not compared
    assert shares_prefix((chosen[0] + [0], chosen[1] + [-100]), (rejected[0] + [0], rejected[1] + [-100]))
    assert shares_prefix((chosen[0] + [0], chosen[1] + [-100]), rejected)


def test_pair_logprobs_equal_two_separate_passes_shared_or_not():
    from lmcourse.dpo import pair_logprobs, response_logprobs, shares_prefix
    model = _tiny_llama(2)
    shared = _shared_pairs()
    separate = [_pair([5, 6], [20 + k, 35], [31, 32 + k, 33]) for k in range(3)]  # chosen never starts the rejected
    assert all(shares_prefix(c, r) for c, r in shared) and not any(shares_prefix(c, r) for c, r in separate)
    for pairs in (shared, separate, shared + separate):
        two_passes = torch.stack([response_logprobs(model, [c for c, _ in pairs]),
                                  response_logprobs(model, [r for _, r in pairs])], dim=1)
        for batch_size in (1, 3, 8):
            torch.testing.assert_close(pair_logprobs(model, pairs, batch_size=batch_size), two_passes, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="at least one"):
        pair_logprobs(model, [])


def test_one_pass_over_shared_pairs_gives_the_two_pass_loss_and_gradients(monkeypatch):
    import lmcourse.dpo
    from lmcourse.dpo import pair_logprobs, train_dpo
    from lmcourse.lora import apply_lora
    from lmcourse.train import TrainConfig
    pairs = _shared_pairs(6)
    runs = []
    for one_pass in (True, False):
        if not one_pass:  # the same pairs, each scored by two passes
            monkeypatch.setattr(lmcourse.dpo, "shares_prefix", lambda chosen, rejected: False)
        model = _tiny_llama(3)
        ref = pair_logprobs(model, pairs)
        apply_lora(model, ["attn.out_proj", "mlp.down"], r=2, alpha=4)
        config = TrainConfig(lr=3e-2, batch_size=3, max_steps=6, weight_decay=0.0, progress=False)
        history, trace = train_dpo(model, pairs, ref, config, beta=0.5, nll_weight=0.5)
        runs.append((history, trace, {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}))
    (one, one_trace, one_weights), (two, two_trace, two_weights) = runs
    assert one.train_loss == pytest.approx(two.train_loss, abs=1e-5)
    assert one_trace.margin == pytest.approx(two_trace.margin, abs=1e-5)
    for name, weight in one_weights.items():  # the same updates, so the same gradients
        torch.testing.assert_close(weight, two_weights[name], atol=1e-5, rtol=0)


def test_train_dpo_starts_at_log_2_and_raises_the_chosen_answers():
    from lmcourse.dpo import response_logprobs, train_dpo
    from lmcourse.lora import apply_lora
    from lmcourse.train import TrainConfig
    model = _tiny_llama(1)
    pairs = [_pair([5, 6, 7], [10 + k, 11], [20 + k, 21, 22]) for k in range(4)]
    ref = torch.stack([response_logprobs(model, [c for c, _ in pairs]), response_logprobs(model, [r for _, r in pairs])], 1)
    apply_lora(model, ["attn.out_proj", "mlp.down"], r=2, alpha=4)  # B = 0: the policy starts as the reference
    config = TrainConfig(lr=3e-2, batch_size=4, max_steps=40, weight_decay=0.0, progress=False)
    history, trace = train_dpo(model, pairs, ref, config, beta=0.5)
    assert history.train_loss[0] == pytest.approx(math.log(2), abs=1e-5) and trace.margin[0] == pytest.approx(0, abs=1e-5)
    assert history.train_loss[-1] < 0.5 * math.log(2) and trace.margin[-1] > 0.8 and trace.accuracy[-1] == 1.0
    after = torch.stack([response_logprobs(model, [c for c, _ in pairs]), response_logprobs(model, [r for _, r in pairs])], 1)
    assert ((after - ref)[:, 0] > (after - ref)[:, 1]).all()  # chosen gained on rejected in every pair
    with pytest.raises(ValueError, match=r"ref_logprobs must be a tensor \(N, 2\) = \(4, 2\)"):
        train_dpo(model, pairs, ref[:2], config)


def test_the_sft_term_adds_the_chosen_answers_mean_nll_per_token():
    from lmcourse.dpo import response_logprobs, train_dpo
    from lmcourse.lora import apply_lora
    from lmcourse.train import TrainConfig
    model = _tiny_llama(1)
    pairs = [_pair([5, 6, 7], [10 + k, 11], [20 + k, 21, 22]) for k in range(4)]
    ref = torch.stack([response_logprobs(model, [c for c, _ in pairs]), response_logprobs(model, [r for _, r in pairs])], 1)
    apply_lora(model, ["attn.out_proj", "mlp.down"], r=2, alpha=4)
    config = TrainConfig(lr=1e-2, batch_size=4, max_steps=1, weight_decay=0.0, progress=False)
    history, _ = train_dpo(model, pairs, ref, config, beta=0.5, nll_weight=1.0)
    # at the first step the policy is the reference: log 2 plus the chosen answers' nats per token (2 tokens each)
    assert history.train_loss[0] == pytest.approx(math.log(2) + (-ref[:, 0] / 2).mean().item(), abs=1e-5)


def test_plot_trace_draws_rewards_and_the_loss_minimised():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lmcourse.dpo import DPOTrace, plot_trace
    from lmcourse.train import History
    history = History(train_loss=[0.69, 0.5, 0.3])
    trace = DPOTrace(chosen_reward=[0.0, 0.1, 0.2], rejected_reward=[0.0, -0.3, -0.9], accuracy=[0.0, 1.0, 1.0])
    fig = plot_trace(history, trace, title="DPO + SFT term", loss_label="DPO loss + SFT term")
    rewards, loss = fig.axes
    assert [line.get_label() for line in rewards.get_lines()][:3] == ["chosen", "rejected", "margin"]
    assert list(rewards.get_lines()[2].get_ydata()) == pytest.approx(trace.margin)
    assert list(loss.get_lines()[0].get_ydata()) == [0.69, 0.5, 0.3]
    assert loss.get_ylabel() == "DPO loss + SFT term" and rewards.get_xlabel() == loss.get_xlabel() == "step"
    assert rewards.get_title() == "DPO + SFT term: rewards" and loss.get_title() == "DPO + SFT term: loss"
    plt.close(fig)
    fig = plot_trace(history, trace, live=History(train_loss=[0.69, 0.51]))  # the first two steps, trained again
    stored, here = fig.axes[1].get_lines()
    assert (stored.get_label(), here.get_label()) == ("the stored run", "the steps trained here")
    assert list(here.get_xdata()) == [1, 2] and list(here.get_ydata()) == [0.69, 0.51]
    plt.close(fig)
    with pytest.raises(ValueError, match="must come from one train_dpo run: 2 losses and 3 recorded steps"):
        plot_trace(History(train_loss=[0.69, 0.5]), trace)
    with pytest.raises(ValueError, match=r"live must hold the first steps of the run \(1 to 3\), got 4"):
        plot_trace(history, trace, live=History(train_loss=[0.7] * 4))
