import math

import pytest
import torch
import torch.nn.functional as F

from lmcourse.distributed import (
    VOCAB_SIZE,
    all_reduce_mean,
    largest_difference,
    main,
    ring_all_reduce,
    run_torchrun,
    throughput,
    token_batches,
)
from lmcourse.gpt import GPT, GPTConfig

# --- the ring all-reduce, simulated in one process ---------------------------------------------


@pytest.mark.parametrize("n", [1, 2, 3, 5])
@pytest.mark.parametrize("shape", [(7,), (2, 3), (4, 5), (10,)])
def test_ring_all_reduce_gives_every_device_the_sum_and_sends_2_n_minus_1_over_n(n, shape):
    g = torch.Generator().manual_seed(n)
    tensors = [torch.randn(shape, generator=g) for _ in range(n)]
    before = [t.clone() for t in tensors]
    sums, sent = ring_all_reduce(tensors)
    assert len(sums) == n
    for s in sums:
        assert s.shape == shape
        torch.testing.assert_close(s, torch.stack(tensors).sum(0))
        assert torch.equal(s, sums[0])  # the all-gather copies: every device has the same bits
    assert all(torch.equal(t, b) for t, b in zip(tensors, before))  # inputs unchanged
    size = math.prod(shape)
    if size % n == 0:
        assert sent == 2 * (n - 1) * size // n
    assert 2 * (n - 1) * (size // n) <= sent <= 2 * (n - 1) * -(-size // n)


def test_ring_all_reduce_is_exact_on_integers_and_more_devices_than_elements():
    tensors = [torch.arange(3) * 10**i for i in range(4)]  # 4 devices, 3 elements: one chunk is empty
    sums, sent = ring_all_reduce(tensors)
    assert all(s.tolist() == [0, 1111, 2222] for s in sums)
    assert sent <= 2 * 3 * 1


def test_all_reduce_mean_of_shard_gradients_is_the_whole_batch_gradient():
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(VOCAB_SIZE, context_length=8))
    batch = token_batches(1, 6, 8)[0]  # (6, 9): 3 "devices" get 2 rows each

    def gradient(rows):
        model.zero_grad()
        F.cross_entropy(model(rows[:, :-1]).flatten(0, 1), rows[:, 1:].flatten()).backward()
        return torch.cat([p.grad.flatten() for p in model.parameters()])

    shards = [gradient(batch[2 * r:2 * r + 2]) for r in range(3)]
    averaged = all_reduce_mean(shards)
    torch.testing.assert_close(averaged[2], gradient(batch), rtol=1e-5, atol=1e-7)
    assert not torch.allclose(shards[0], gradient(batch), atol=1e-4)  # one shard alone is not it


@pytest.mark.parametrize("bad, message", [
    ([], "non-empty list"),
    ([torch.zeros(3), [0, 0, 0]], "torch.Tensor"),
    ([torch.zeros(3), torch.zeros(4)], "same shape and dtype"),
    ([torch.zeros(3), torch.zeros(3, dtype=torch.int64)], "same shape and dtype"),
])
def test_ring_all_reduce_refuses_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        ring_all_reduce(bad)


def test_token_batches_are_the_same_on_every_call_and_in_the_vocabulary():
    a = token_batches(2, 3, 5, seed=1)
    assert a.shape == (2, 3, 6) and a.dtype == torch.int64
    assert torch.equal(a, token_batches(2, 3, 5, seed=1))
    assert not torch.equal(a, token_batches(2, 3, 5, seed=2))
    assert 0 <= a.min() and a.max() < VOCAB_SIZE
    with pytest.raises(ValueError, match="context must be an int >= 1"):
        token_batches(1, 1, 0)


# --- the command line, in process ----------------------------------------------------------------


def test_without_torchrun_main_says_how_to_launch_and_exits_2(monkeypatch, capsys):
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main([])
    assert exit_.value.code == 2
    assert "torchrun --standalone --nproc_per_node 2 -m lmcourse.distributed" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--steps", "0"], "steps must be an int >= 1"),
    (["--width", "30"], "not divisible by num_heads"),
    (["--tolerance", "-1"], "tolerance must be"),
])
def test_bad_arguments_exit_2_before_any_process_group(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_parsers_read_the_last_matching_line_and_refuse_output_without_one():
    out = "step 1: ...\nlargest difference: 1e-3\nlargest difference: 2.5e-08\n"
    assert largest_difference(out) == 2.5e-08
    assert throughput('x\nthroughput: {"processes": 2, "tokens_per_second": 10.5}\n')["processes"] == 2
    with pytest.raises(ValueError, match="no line starting with 'throughput: '"):
        throughput(out)


# --- real processes under torchrun (several seconds each) ---------------------------------------


def test_ddp_on_two_processes_takes_the_one_process_step_on_the_global_batch():
    result = run_torchrun(2)
    lines = result.stdout.strip().splitlines()
    print(result.stdout)
    assert [line.split(":")[0] for line in lines] == ["step 1", "step 2", "step 3", "largest difference"]
    assert 0 <= largest_difference(result.stdout) <= 1e-6


def test_without_the_all_reduce_the_check_fails_and_the_launcher_says_so():
    with pytest.raises(RuntimeError, match="exited with status 1") as err:
        run_torchrun(2, "--no-sync")
    assert largest_difference(str(err.value)) > 1e-3  # each rank stepped on its own shard's gradient


def test_throughput_on_one_process_is_ddp_over_a_world_of_one():
    result = throughput(run_torchrun(1, "--throughput", "--steps", "3", "--batch-size", "2").stdout)
    print(result)
    assert result["processes"] == 1 and result["tokens_per_step"] == 2 * 32
    assert result["tokens_per_second"] == pytest.approx(result["tokens_per_step"] / result["seconds_per_step"],
                                                        rel=1e-3)
