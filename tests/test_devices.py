"""lmcourse.devices: the device the book's models run on, chosen by PyTorch's view of the machine
or by LMCOURSE_DEVICE, and the book's GPT trained, evaluated and sampled there. In CI this runs on
the CPU; on a machine with a GPU the same test runs the model on CUDA."""

from __future__ import annotations

import pytest
import torch

from lmcourse.devices import DEVICE_VARIABLE, device
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.train import TrainConfig, evaluate, train


def test_default_follows_cuda_availability(monkeypatch):
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    assert device().type == ("cuda" if torch.cuda.is_available() else "cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert device() == torch.device("cpu")


def test_variable_overrides(monkeypatch):
    monkeypatch.setenv(DEVICE_VARIABLE, "cpu")
    assert device() == torch.device("cpu")
    monkeypatch.setenv(DEVICE_VARIABLE, "tpu-please")
    with pytest.raises(ValueError, match="not a device PyTorch knows"):
        device()
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setenv(DEVICE_VARIABLE, "cuda")
    with pytest.raises(ValueError, match="PyTorch sees none"):
        device()


def test_gpt_trains_evaluates_and_generates_on_the_device(monkeypatch):
    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    where = device()
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=20)).to(where)
    pattern = torch.arange(20).repeat(60)  # (1200,) a stream a model can learn: each id is followed by the next
    recipe = TrainConfig(lr=3e-3, batch_size=4, bptt=16, max_steps=60, progress=False)
    before = evaluate(model, pattern[:400], batch_size=4, bptt=16).loss
    history = train(model, pattern, pattern[:400], recipe)
    after = evaluate(model, pattern[:400], batch_size=4, bptt=16).loss
    assert next(model.parameters()).device.type == where.type
    assert history.steps == 60 and after < before / 2
    assert model.generate([3, 4, 5], 4, temperature=0) == [6, 7, 8, 9]


def test_llama_paths_of_chapters_7_to_11_run_on_the_device(monkeypatch):
    """The chat model's paths that build tensors of their own (batched greedy replies and label scores,
    LoRA with SFT and DPO) on device(): on a GPU, a tensor left on the CPU fails here."""
    from lmcourse import dpo, lora, sft
    from lmcourse.llama import Llama, LlamaConfig, chat_batch, greedy_batch, next_token_logprobs_many
    from tests.test_llama import V, _Chars

    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    where = device()
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=V)).to(where)
    pattern = torch.arange(V).repeat(24)  # (1200,) each id followed by the next
    recipe = TrainConfig(lr=3e-3, batch_size=4, bptt=16, max_steps=80, progress=False)
    before = evaluate(model, pattern[:400], batch_size=4, bptt=16).loss
    train(model, pattern, pattern[:400], recipe)
    assert evaluate(model, pattern[:400], batch_size=4, bptt=16).loss < before / 4
    prompts = [[3, 4, 5], [10, 11], [20, 21, 22, 23, 24, 25]]
    assert greedy_batch(model, prompts, 3) == [model.generate(p, 3, temperature=0) for p in prompts] == [
        [6, 7, 8], [12, 13, 14], [26, 27, 28]]
    conversations = [[{"role": "user", "content": text}] for text in ("ab", "abc", "b")]
    assert len(chat_batch(conversations, model=model, tokenizer=_Chars(), max_tokens=3)) == 3
    logprobs = next_token_logprobs_many(model, _Chars(), conversations, batch_size=2)
    assert logprobs.shape == (3, V) and logprobs.device.type == "cpu"

    lora.apply_lora(model, ["in_proj", "out_proj"], r=2, alpha=4)
    examples = [([i, i + 1, i + 2, i + 3], [sft.IGNORE_INDEX, sft.IGNORE_INDEX, i + 3, i + 4]) for i in range(0, 40, 5)]
    sft.train_sft(model, examples, TrainConfig(lr=1e-2, batch_size=4, max_steps=4, progress=False))
    assert sft.greedy_matches(model, examples).shape == (len(examples),)
    pairs = [(examples[k], examples[k + 1]) for k in range(0, len(examples), 2)]
    reference = torch.stack([dpo.response_logprobs(model, [c for c, _ in pairs]),
                             dpo.response_logprobs(model, [r for _, r in pairs])], dim=1)  # (N, 2)
    history, trace = dpo.train_dpo(model, pairs, reference, TrainConfig(lr=1e-2, batch_size=2, max_steps=2,
                                                                         progress=False))
    assert history.steps == 2 and len(trace.margin) == 2
    assert {p.device.type for p in model.parameters()} == {where.type}
