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
