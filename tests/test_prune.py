"""lmcourse.scaling.prune: magnitude pruning of the linear weights against a sort of all |w| (the
oracle), global against per-layer scope, the masks surviving 20 SGD steps of lmcourse.train.train,
finalize_pruning, and the errors."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from lmcourse.gpt import GPT, GPTConfig
from lmcourse.scaling.prune import finalize_pruning, magnitude_prune, sparsity
from lmcourse.scaling.quantize import fake_quantize_linear_weights, linear_layers
from lmcourse.train import TrainConfig, train

V = 16


def _gpt(seed: int = 0) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.tiny(vocab_size=V))


def _weights(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: layer.weight.detach().clone() for name, layer in linear_layers(model).items()}


def _zeros(model: nn.Module) -> dict[str, torch.Tensor]:
    return {name: w == 0 for name, w in _weights(model).items()}


@pytest.mark.parametrize("target", [0.0, 0.3, 0.5, 0.9])
def test_global_pruning_zeroes_the_smallest_weights_of_all_layers(target):
    model = _gpt()
    before = _weights(model)
    pruned = magnitude_prune(model, target)
    assert all(torch.equal(w, before[k]) for k, w in _weights(model).items())  # the original is untouched
    everything = torch.cat([w.flatten() for w in before.values()])
    N, k = everything.numel(), round(target * everything.numel())
    zeros = _zeros(pruned)
    assert sum(int(z.sum()) for z in zeros.values()) == k
    assert abs(sparsity(pruned) - target) <= 1 / N  # within one weight
    if 0 < k < N:  # the oracle: every zeroed |w| is at most every kept one
        cut = torch.cat([before[n][z] for n, z in zeros.items()]).abs().max()
        kept = torch.cat([before[n][~z] for n, z in zeros.items()]).abs().min()
        assert cut <= kept
    for name, z in zeros.items():  # the kept weights are unchanged
        torch.testing.assert_close(_weights(pruned)[name][~z], before[name][~z], atol=0, rtol=0)


def test_layer_scope_prunes_each_layer_by_the_same_fraction_global_does_not():
    model = _gpt()
    per_layer = {name: float(z.float().mean()) for name, z in _zeros(magnitude_prune(model, 0.5, "layer")).items()}
    assert all(s == 0.5 for s in per_layer.values())  # every layer has an even number of weights
    across = {name: float(z.float().mean()) for name, z in _zeros(magnitude_prune(model, 0.5)).items()}
    assert min(across.values()) < 0.45 and max(across.values()) > 0.55  # layers with small weights lose more
    # GPT-2's init scales out_proj and down by 1/sqrt(2 N): their weights are smaller, so pruned more
    assert across["blocks.0.mlp.down"] > across["blocks.0.mlp.up"]
    sizes = {name: w.numel() for name, w in _weights(model).items()}
    total = sum(across[n] * sizes[n] for n in sizes) / sum(sizes.values())
    assert abs(total - 0.5) <= 1 / sum(sizes.values())


def test_tied_embedding_is_not_pruned():
    model = _gpt()
    pruned = magnitude_prune(model, 0.8)
    assert torch.equal(pruned.embedding.weight, model.embedding.weight)
    assert pruned.decoder.weight is pruned.embedding.weight
    assert not hasattr(pruned.decoder, "weight_mask")


def test_masks_survive_sgd_steps_then_finalize_makes_them_permanent():
    pruned = magnitude_prune(_gpt(), 0.5)
    masks = _zeros(pruned)
    orig = {name: layer.weight_orig.detach().clone() for name, layer in linear_layers(pruned).items()}
    stream = torch.arange(V).repeat(40)  # 0 1 ... 15 0 1 ...: easy to learn
    config = TrainConfig(optimizer="sgd", lr=0.5, batch_size=4, bptt=8, max_steps=20, progress=False)
    history = train(pruned, stream, stream[:200], config)
    assert history.steps == 20 and history.train_loss[-1] < history.train_loss[0]
    pruned(torch.zeros(1, 4, dtype=torch.long))  # a forward recomputes weight = weight_orig * weight_mask
    for name, layer in linear_layers(pruned).items():
        assert torch.equal(layer.weight, layer.weight_orig * layer.weight_mask), name
        assert torch.all(layer.weight[masks[name]] == 0), name  # exactly zero
        assert not torch.equal(layer.weight_orig, orig[name]), name  # yet training moved the weights
    ids = torch.randint(0, V, (2, 8), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = pruned(ids)
        finalize_pruning(pruned)
        torch.testing.assert_close(pruned(ids), logits, atol=0, rtol=0)
    assert not any(k.endswith(("_orig", "_mask")) for k in pruned.state_dict())
    for name, layer in linear_layers(pruned).items():
        assert isinstance(layer.weight, nn.Parameter) and torch.all(layer.weight[masks[name]] == 0)
    assert abs(sparsity(pruned) - 0.5) < 1e-3
    assert finalize_pruning(pruned) is pruned  # nothing left to finalize: unchanged
    assert sparsity(fake_quantize_linear_weights(pruned, "int8")) >= sparsity(pruned)  # int8 keeps zeros


def test_a_copy_of_a_pruned_model_recomputes_its_own_weights():
    pruned = magnitude_prune(_gpt(), 0.5, "layer")
    twin = copy.deepcopy(pruned)  # what fake_quantize_linear_weights and magnitude_prune itself do
    with torch.no_grad():
        twin.blocks[0].attn.in_proj.weight_orig.zero_()
        twin(torch.zeros(1, 4, dtype=torch.long))
        pruned(torch.zeros(1, 4, dtype=torch.long))
    assert torch.all(twin.blocks[0].attn.in_proj.weight == 0)
    assert sparsity(pruned) == 0.5


@pytest.mark.parametrize("amount, scope, error, match", [
    (1.0, "global", ValueError, r"sparsity must be a finite number in \[0.0, 1.0\), got 1.0"),
    (-0.1, "layer", ValueError, "sparsity must be"),
    ("0.5", "global", ValueError, "sparsity must be"),
    (0.5, "row", ValueError, "unknown scope 'row'; choose one of 'global', 'layer'"),
])
def test_magnitude_prune_refuses_bad_arguments(amount, scope, error, match):
    with pytest.raises(error, match=match):
        magnitude_prune(_gpt(), amount, scope)


def test_a_model_without_linear_layers_is_refused():
    with pytest.raises(ValueError, match="Embedding has no nn.Linear layers to prune"):
        magnitude_prune(nn.Embedding(4, 3), 0.5)
    with pytest.raises(ValueError, match="no nn.Linear layers"):
        sparsity(nn.Embedding(4, 3))
