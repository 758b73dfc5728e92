"""Tests for lmcourse.checkpoint: the safetensors file, saving and loading by hand, and refusals.

The tiny models and data come from tests/lm_fixtures.py. Oracles: the file read back with plain
safetensors, a model and optimizer rebuilt from scratch, the bytes of the files a refusal must
leave alone. Files are written only under tmp_path. That resuming gives the same run as never
stopping is tested with the loop, in tests/test_train.py.
"""

import dataclasses
import json
from pathlib import Path

import pytest
import safetensors.torch
import torch
from safetensors import safe_open

from lmcourse.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from lmcourse.train import History, TrainConfig, make_optimizer, make_scheduler, train
from tests.lm_fixtures import (
    FAST,
    TRAIN,
    VALID,
    assert_same_weights,
    make,
    weights,
)


# ---------------------------------------------------------------------------------------------
# The file; saving and loading by hand

def test_checkpoint_file_is_plain_safetensors(tmp_path):
    path = tmp_path / "a" / "b.safetensors"  # parent folders are created
    model = make("gru", dropout=0.1)
    cfg = dataclasses.replace(FAST, max_steps=6, checkpoint=path, patience=5)
    history = train(model, TRAIN, VALID, cfg)
    tensors = safetensors.torch.load_file(path)
    for name, value in model.state_dict().items():
        assert torch.equal(tensors[f"model.{name}"], value)
        assert f"best.{name}" in tensors
    assert tensors["rng.torch"].dtype == torch.uint8
    assert tensors["optimizer.0.exp_avg"].shape == model.emb.weight.shape
    assert tensors["state.0"].shape == (1, 8, 12)  # the GRU state carried into step 7
    with safe_open(path, framework="pt") as f:
        meta = f.metadata()
    assert meta["format"] == "lmcourse.train checkpoint" and meta["step"] == "6"
    assert json.loads(meta["model_config"]) == dataclasses.asdict(model.config)
    assert json.loads(meta["train_config"])["lr"] == FAST.lr
    assert json.loads(meta["history"])["train_loss"] == history.train_loss
    assert json.loads(meta["loop"])["offset"] == 60
    assert json.loads(meta["scheduler"])["last_epoch"] == 6
    assert json.loads(meta["optimizer"])["param_groups"][0]["lr"] == FAST.lr
    assert not list(path.parent.glob("*.tmp"))  # no temporary files left


def test_save_and_load_by_hand_roundtrip_with_sgd(tmp_path):
    model = make("bigram")
    cfg = TrainConfig(optimizer="sgd", lr=0.1, momentum=0.0)  # SGD without momentum: buffer None
    optimizer = make_optimizer(model, cfg)
    scheduler = make_scheduler(optimizer, cfg, total_steps=10)
    x, y = TRAIN[:20].view(10, 2), TRAIN[1:21].view(10, 2)
    model.nll(x, y, None)[0].mean().backward()
    optimizer.step()
    scheduler.step()
    path = save_checkpoint(tmp_path / "m.safetensors", model, optimizer, scheduler, step=1, config=cfg)
    fresh = make("bigram", seed=3)
    opt2 = make_optimizer(fresh, cfg)
    sch2 = make_scheduler(opt2, cfg, total_steps=10)
    info = load_checkpoint(path, fresh, opt2, sch2)
    assert info.step == 1 and info.model_class == "Bigram" and info.best_weights is None
    assert info.train_config["optimizer"] == "sgd" and info.history == History()
    assert_same_weights(fresh, model)
    assert sch2.last_epoch == scheduler.last_epoch
    assert opt2.state_dict()["param_groups"] == optimizer.state_dict()["param_groups"]


def test_interrupted_save_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "c.safetensors"
    model = make("bigram")
    save_checkpoint(path, model, step=1)
    before = path.read_bytes()

    def crash(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"half a file")
        raise KeyboardInterrupt

    monkeypatch.setattr(safetensors.torch, "save_file", crash)
    with pytest.raises(KeyboardInterrupt):
        save_checkpoint(path, make("bigram", seed=1), step=2)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.safetensors"]
    monkeypatch.undo()
    assert load_checkpoint(path, make("bigram", seed=2)).step == 1


# ---------------------------------------------------------------------------------------------
# Refusals: each leaves the model and the user's files as they were

@pytest.mark.parametrize("content, hint", [
    ("torch.save", "torch.save / pickle"),
    (b"\x00\x01not a checkpoint at all" * 10, ""),
    (b"", ""),
])
def test_refuses_files_that_are_not_safetensors(tmp_path, content, hint):
    path = tmp_path / "model.pt"
    model = make("bigram")
    if content == "torch.save":
        torch.save(model.state_dict(), path)
    else:
        path.write_bytes(content)
    before, original = path.read_bytes(), weights(model)
    other = make("bigram", seed=1)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint") as err:
        load_checkpoint(path, other)
    assert "does not load pickles" in str(err.value) and hint in str(err.value)
    with pytest.raises(CheckpointError, match="not a safetensors checkpoint"):
        train(other, TRAIN, VALID, dataclasses.replace(FAST, max_steps=2), resume_from=path)
    # nor is it overwritten by a save or a training run
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        save_checkpoint(path, model)
    with pytest.raises(FileExistsError, match="refusing to overwrite"):
        train(model, TRAIN, VALID, dataclasses.replace(FAST, max_steps=2, checkpoint=path))
    assert path.read_bytes() == before
    for k, v in model.state_dict().items():
        assert torch.equal(v, original[k])


def test_refuses_a_safetensors_file_that_is_not_a_checkpoint(tmp_path):
    path = tmp_path / "weights.safetensors"
    safetensors.torch.save_file({"w": torch.zeros(2)}, path)
    with pytest.raises(CheckpointError, match="safetensors file but not an lmcourse checkpoint"):
        load_checkpoint(path, make("bigram"))


def test_refuses_a_missing_file_and_a_directory(tmp_path):
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        load_checkpoint(missing, make("bigram"))
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        train(make("bigram"), TRAIN, VALID, dataclasses.replace(FAST, resume=missing))
    with pytest.raises(IsADirectoryError, match="directory"):
        load_checkpoint(tmp_path, make("bigram"))
    with pytest.raises(IsADirectoryError, match="directory"):
        save_checkpoint(tmp_path, make("bigram"))
    with pytest.raises(IsADirectoryError, match="directory"):
        train(make("bigram"), TRAIN, VALID, dataclasses.replace(FAST, checkpoint=tmp_path))


def test_refuses_a_checkpoint_of_another_model_and_changes_nothing(tmp_path):
    path = save_checkpoint(tmp_path / "gru.safetensors", make("gru"), step=3)
    wider = make("gru", seed=1, hidden_dim=16)
    original = weights(wider)
    with pytest.raises(ValueError, match="does not fit this model") as err:
        load_checkpoint(path, wider)
    message = str(err.value)
    assert "shape of rnn.weight_hh_l0: checkpoint (36, 12) vs model (48, 16)" in message
    assert "'hidden_dim': 12" in message and "'hidden_dim': 16" in message  # both configs
    for k, v in wider.state_dict().items():
        assert torch.equal(v, original[k])
    with pytest.raises(ValueError, match="missing from the checkpoint: logits.weight"):
        load_checkpoint(path, make("bigram"))  # other keys: both missing and unexpected listed
    with pytest.raises(ValueError, match="not in the model: emb.weight"):
        load_checkpoint(path, make("bigram"))


def test_refuses_to_resume_with_other_data_or_batching(tmp_path):
    path = tmp_path / "c.safetensors"
    cfg = dataclasses.replace(FAST, max_steps=3, checkpoint=path)
    train(make("bigram"), TRAIN, VALID, cfg)
    with pytest.raises(ValueError, match="different training stream"):
        train(make("bigram"), TRAIN.flip(0), VALID, dataclasses.replace(cfg, max_steps=5), resume_from=path)
    with pytest.raises(ValueError, match="bptt=10"):
        train(make("bigram"), TRAIN, VALID, dataclasses.replace(cfg, bptt=12, max_steps=5), resume_from=path)
    with pytest.raises(ValueError, match="holds AdamW state"):
        model = make("bigram")
        load_checkpoint(path, model, make_optimizer(model, TrainConfig(optimizer="sgd")))


def test_a_safetensors_header_whose_length_starts_with_byte_0x80_is_not_taken_for_a_pickle(tmp_path):
    """A raw pickle starts with 0x80; so does a safetensors file whose header is 128 (mod 256) bytes long."""
    path = tmp_path / "ckpt.safetensors"
    model = make("bigram")
    for n in range(400):  # a longer history makes a longer header, one or more bytes at a time
        save_checkpoint(path, model, history=History(train_loss=[1.0] * n))
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    save_checkpoint(path, model, history=History(train_loss=[1.0] * n))  # overwriting our own file is allowed
    other = make("bigram", seed=1)
    load_checkpoint(path, other)
    assert_same_weights(other, model)
