"""lmcourse.lora against peft (issue 19): the book's LoRA on the book's tiny Llama, peft's LoRA on
the transformers twin built from the same weights (lmcourse.llama.hf.to_transformers), with the same
rank, alpha, targets and the same A and B. Forward outputs and gradients agree within 1e-6, merged
weights equal peft's merge_and_unload(), trainable counts agree; plus the exact identity of a fresh
wrap, adapter files, and the errors."""

from __future__ import annotations

import copy
import json
import math
import re

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional as F

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.llama import Llama, LlamaConfig
from lmcourse.lora import (LoRALinear, apply_lora, load_adapter, lora_layers, merge, save_adapter,
                           trainable_parameters, unmerge)

V, R, ALPHA = 100, 4, 8
OURS = ["out_proj", "gate", "up", "down"]  # the book's names (in_proj packs W_Q, W_K, W_V: no peft twin)
pytestmark = pytest.mark.filterwarnings("ignore:`is_gradient_checkpointing` is deprecated:FutureWarning")
HF = {"attn.out_proj": "self_attn.o_proj", "mlp.gate": "mlp.gate_proj", "mlp.up": "mlp.up_proj",
      "mlp.down": "mlp.down_proj"}


def _base(seed: int = 0) -> Llama:
    torch.manual_seed(seed)
    return Llama(LlamaConfig.tiny(vocab_size=V, emb_dim=64, hidden_dim=128)).eval()


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (2, 12), generator=torch.Generator().manual_seed(seed))


def _randomise_B(model: nn.Module, seed: int = 2) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in lora_layers(model).values():
            layer.B.copy_(0.1 * torch.randn(layer.B.shape, generator=g))


def _peft_layer(peft_model, name: str):
    _, i, rest = name.split(".", 2)  # "blocks.1.mlp.up" -> "1", "mlp.up"
    return peft_model.base_model.model.model.layers[int(i)].get_submodule(HF[rest])


@pytest.fixture(scope="module")
def pair():
    """(base, ours, peft's): ours and peft's adapt the same layers with the same A and nonzero B."""
    import peft  # pinned in requirements.txt: the reference must be there, not skipped
    from lmcourse.llama.hf import to_transformers

    base = _base()
    ours = copy.deepcopy(base)
    apply_lora(ours, OURS, r=R, alpha=ALPHA)
    _randomise_B(ours)
    config = peft.LoraConfig(r=R, lora_alpha=ALPHA, lora_dropout=0.0,
                             target_modules=["o_proj", "gate_proj", "up_proj", "down_proj"])
    theirs = peft.get_peft_model(to_transformers(base), config)
    with torch.no_grad():
        for name, layer in lora_layers(ours).items():
            _peft_layer(theirs, name).lora_A["default"].weight.copy_(layer.A)
            _peft_layer(theirs, name).lora_B["default"].weight.copy_(layer.B)
    return base, ours, theirs


def test_forward_and_gradients_match_peft(pair):
    _, ours, theirs = pair
    ids, targets = _ids(1), _ids(3)
    ours.zero_grad(), theirs.zero_grad()
    mine, ref = ours(ids), theirs(input_ids=ids).logits
    torch.testing.assert_close(mine, ref, atol=1e-6, rtol=0)
    F.cross_entropy(mine.flatten(0, 1), targets.flatten()).backward()
    F.cross_entropy(ref.flatten(0, 1), targets.flatten()).backward()
    layers = lora_layers(ours)
    assert len(layers) == 4 * 2
    for name, layer in layers.items():
        theirs_layer = _peft_layer(theirs, name)
        torch.testing.assert_close(layer.A.grad, theirs_layer.lora_A["default"].weight.grad, atol=1e-6, rtol=0)
        torch.testing.assert_close(layer.B.grad, theirs_layer.lora_B["default"].weight.grad, atol=1e-6, rtol=0)
        assert layer.B.grad.abs().max() > 1e-3  # a real gradient, not two zeros


def test_trainable_count_matches_peft(pair, capsys):
    _, ours, theirs = pair
    C, M = 64, 128
    per_block = R * (C + C) + 2 * R * (C + M) + R * (M + C)  # out_proj; gate and up; down
    assert trainable_parameters(ours) == 2 * per_block == theirs.get_nb_trainable_parameters()[0]
    theirs.print_trainable_parameters()
    printed = re.search(r"trainable params: ([\d,]+)", capsys.readouterr().out).group(1)
    assert int(printed.replace(",", "")) == trainable_parameters(ours)


def test_merge_matches_peft_merge_and_unload(pair):
    _, ours, theirs = pair
    ours, theirs = copy.deepcopy(ours), copy.deepcopy(theirs)
    ids = _ids(4)
    before = ours(ids)
    merge(ours)
    merged = theirs.merge_and_unload()
    for name, layer in lora_layers(ours).items():
        _, i, rest = name.split(".", 2)
        expected = merged.model.layers[int(i)].get_submodule(HF[rest]).weight
        torch.testing.assert_close(layer.base.weight, expected, atol=1e-6, rtol=0)
    torch.testing.assert_close(ours(ids), before, atol=1e-6, rtol=0)


def test_unmerge_round_trip():
    base = _base()
    model = copy.deepcopy(base)
    apply_lora(model, OURS, r=R, alpha=ALPHA)
    _randomise_B(model)
    originals = {n: m.base.weight.clone() for n, m in lora_layers(model).items()}
    merge(model)
    assert all(m.merged for m in lora_layers(model).values())
    assert not torch.equal(model.blocks[0].attn.out_proj.base.weight, originals["blocks.0.attn.out_proj"])
    unmerge(model)
    for name, layer in lora_layers(model).items():
        torch.testing.assert_close(layer.base.weight, originals[name], atol=1e-6, rtol=0)
    with pytest.raises(RuntimeError, match="not merged"):
        unmerge(model)
    merge(model)
    with pytest.raises(RuntimeError, match="already merged"):
        merge(model)
    with pytest.raises(ValueError, match="no LoRA layers; call apply_lora first"):
        merge(_base())


def test_fresh_wrap_equals_base_exactly_and_freezes_the_rest():
    base = _base()
    model = copy.deepcopy(base)
    names = apply_lora(model, OURS, r=R, alpha=ALPHA)
    assert names == [f"blocks.{i}.{p}" for i in range(2)
                     for p in ("attn.out_proj", "mlp.gate", "mlp.up", "mlp.down")]
    assert torch.equal(model(_ids()), base(_ids()))
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    assert trainable == sorted(f"{n}.{p}" for n in names for p in "AB")


def test_layer_forward_formula_and_peft_initialisation():
    torch.manual_seed(0)
    layer = LoRALinear(nn.Linear(10, 6), r=3, alpha=6, dropout=0.5)
    torch.manual_seed(0)
    nn.Linear(10, 6)  # the base layer's random numbers come first
    expected_A = nn.init.kaiming_uniform_(torch.empty(3, 10), a=math.sqrt(5))  # peft's default for lora_A
    assert torch.equal(layer.A, expected_A) and torch.equal(layer.B, torch.zeros(6, 3))
    with torch.no_grad():
        layer.B.normal_()
    x = torch.randn(4, 5, 10)
    layer.eval()  # no dropout
    torch.testing.assert_close(layer(x), layer.base(x) + (6 / 3) * x @ layer.A.T @ layer.B.T)
    assert not layer.base.weight.requires_grad and layer.A.requires_grad and layer.B.requires_grad
    layer.train()
    assert not torch.equal(layer(x), layer.base(x) + (6 / 3) * x @ layer.A.T @ layer.B.T)  # dropout on x


def test_save_and_load_adapter(tmp_path):
    model = _base()
    apply_lora(model, OURS, r=R, alpha=ALPHA)
    _randomise_B(model)
    path = save_adapter(model, tmp_path / "adapter.safetensors")
    with safe_open(str(path), framework="pt") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys == {f"{n}.{p}" for n in lora_layers(model) for p in "AB"}  # the adapter only
    assert (meta["r"], float(meta["alpha"]), json.loads(meta["targets"])) == ("4", 8.0, list(lora_layers(model)))
    fresh = _base()
    assert load_adapter(fresh, path) == list(lora_layers(model))
    assert torch.equal(fresh(_ids()), model(_ids()))
    with pytest.raises(FileExistsError, match="pass overwrite=True"):
        save_adapter(model, path)
    save_adapter(model, path, overwrite=True)


def test_mismatched_adapters_are_refused(tmp_path):
    model = _base()
    apply_lora(model, OURS, r=R, alpha=ALPHA)
    path = save_adapter(model, tmp_path / "a.safetensors")
    other_rank = _base()
    apply_lora(other_rank, OURS, r=2, alpha=ALPHA)
    with pytest.raises(ValueError, match=r"shapes differ \(file != model\)"):
        load_adapter(other_rank, path)
    other_layers = _base()
    apply_lora(other_layers, ["gate"], r=R, alpha=ALPHA)
    with pytest.raises(ValueError, match="tensors the model has no layer for"):
        load_adapter(other_layers, path)
    other_alpha = _base()
    apply_lora(other_alpha, OURS, r=R, alpha=16)
    with pytest.raises(ValueError, match="trained with alpha=8.0"):
        load_adapter(other_alpha, path)
    gpt = GPT(GPTConfig.tiny(vocab_size=V))
    with pytest.raises(ValueError, match="which the model lacks; the model's linear layers are: blocks.0.attn.in_proj"):
        load_adapter(gpt, path)
    assert not lora_layers(gpt)  # nothing was changed
    save_file({"x": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(ValueError, match="not a LoRA adapter written by save_adapter"):
        load_adapter(_base(), tmp_path / "plain.safetensors")
    merge(model)
    with pytest.raises(RuntimeError, match="unmerge it before loading"):
        load_adapter(model, path)


def test_bad_targets():
    model = _base()
    with pytest.raises(ValueError, match=r"target 'q_proj' matches no linear layer; the model's linear layers "
                                         r"are: blocks.0.attn.in_proj, blocks.0.attn.out_proj"):
        apply_lora(model, ["q_proj"], r=R, alpha=ALPHA)
    with pytest.raises(ValueError, match="non-empty list of layer names"):
        apply_lora(model, [], r=R, alpha=ALPHA)
    with pytest.raises(ValueError, match="decoder: its weight is shared with another module"):
        apply_lora(model, ["decoder"], r=R, alpha=ALPHA)  # tied to the embedding
    assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())  # untouched
    apply_lora(model, "in_proj", r=R, alpha=ALPHA)
    with pytest.raises(ValueError, match="already has LoRA layers"):
        apply_lora(model, "out_proj", r=R, alpha=ALPHA)


@pytest.mark.parametrize("r, alpha, dropout, message", [
    (0, 8, 0.0, "r must be a positive int, got 0"),
    (2.5, 8, 0.0, "r must be a positive int, got 2.5"),
    (True, 8, 0.0, "r must be a positive int, got True"),
    (4, 0, 0.0, r"alpha must be a finite number in \(0.0, inf\), got 0"),
    (4, float("nan"), 0.0, "alpha must be a finite number"),
    (4, 8, 1.0, r"dropout must be a finite number in \[0.0, 1.0\), got 1.0"),
    (65, 8, 0.0, "r=65 is larger than the linear layer 'blocks.0.attn.out_proj' \\(64 x 64\\) allows"),
])
def test_bad_hyperparameters(r, alpha, dropout, message):
    with pytest.raises(ValueError, match=message):
        apply_lora(_base(), ["out_proj"], r=r, alpha=alpha, dropout=dropout)


def test_any_module_gpt_and_mlp():
    gpt = GPT(GPTConfig.tiny(vocab_size=V))
    C = gpt.config.emb_dim
    apply_lora(gpt, ["attn.in_proj"], r=2, alpha=2)
    assert trainable_parameters(gpt) == gpt.config.num_layers * 2 * (C + 3 * C)  # A (2, C), B (3C, 2)
    mlp = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(3, 4)
    before = mlp(x)
    assert apply_lora(mlp, ["0", "2"], r=2, alpha=4) == ["0", "2"]
    assert isinstance(mlp[0], LoRALinear) and torch.equal(mlp(x), before)


def test_packed_in_proj_is_adapted_through_its_effective_weight():
    """The book's attention reads in_proj.weight (W_Q, W_K, W_V packed) instead of calling the layer:
    the adapter acts through LoRALinear.weight, so the model equals its merged self."""
    model = _base()
    apply_lora(model, ["attn.in_proj"], r=4, alpha=8)
    for layer in lora_layers(model).values():
        nn.init.normal_(layer.B, std=0.1)
    ids = torch.randint(0, 100, (2, 7))
    out = model(ids)
    out.sum().backward()
    assert all(layer.A.grad is not None and layer.A.grad.abs().sum() > 0 for layer in lora_layers(model).values())
    assert not torch.allclose(out, _base()(ids))  # the adapter changes the output ...
    merge(model)
    assert torch.allclose(model(ids), out, atol=1e-5)  # ... exactly as the merged weights do
