"""Tests for lmcourse.gpt against its oracles: ``transformers.GPT2LMHeadModel`` holding the same
weights (logits, loss, parameter count, both directions of the name conversion, fused and
from-scratch attention), the closed-form parameter count, the KV cache against full forward
passes (logits at every step, tokens of whole generations, past the context length), a
safetensors checkpoint round trip, a short training run with lmcourse.train, and the errors.
"""

from __future__ import annotations

import dataclasses

import pytest
import torch
from transformers import GPT2LMHeadModel

from lmcourse.attention import KVCache, MultiHeadAttention
from lmcourse.checkpoint import load_checkpoint, save_checkpoint
from lmcourse.data import MarkovSource
from lmcourse.gpt import GPT, GPTConfig, config_from_hf, config_to_hf, from_hf_state_dict, to_hf_state_dict
from lmcourse.positions import RotaryEmbedding
from lmcourse.train import TrainConfig, train
from lmcourse.transformer import TransformerConfig, TransformerLM

V = 61
CONFIG = GPTConfig.tiny(vocab_size=V, context_length=24, num_layers=3)  # C = 32, 4 heads


def _gpt(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(dataclasses.replace(CONFIG, **overrides)).eval()


def _hf(config: GPTConfig, seed: int = 0) -> GPT2LMHeadModel:
    torch.manual_seed(seed)
    return GPT2LMHeadModel._from_config(config_to_hf(config), attn_implementation="eager").eval()


def _ids(B: int, T: int, seed: int = 1, vocab: int = V) -> torch.Tensor:
    return torch.randint(0, vocab, (B, T), generator=torch.Generator().manual_seed(seed))  # (B, T)


def _max_diff(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max())


# --- the same weights in transformers' GPT-2 -----------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("direction", ["ours_to_hf", "hf_to_ours"])
def test_logits_and_loss_equal_transformers_gpt2(fused, direction):
    config = dataclasses.replace(CONFIG, fused=fused)
    if direction == "ours_to_hf":
        ours, hf = _gpt(fused=fused), _hf(config, seed=5)
        hf.load_state_dict(to_hf_state_dict(ours), strict=True)
    else:
        hf = _hf(config, seed=5)
        ours = from_hf_state_dict(hf.state_dict(), config_from_hf(hf.config)).eval()
        assert ours.config == dataclasses.replace(config, fused=True)  # fused is ours to choose
        ours = from_hf_state_dict(hf.state_dict(), GPT(config).eval())
    ids = _ids(3, 24)
    with torch.no_grad():
        expected = hf(ids, labels=ids)
        logits = ours(ids)  # (B, T, V)
        nll, _ = ours.nll(ids[:, :-1].T, ids[:, 1:].T)  # time first; HF shifts the labels itself
    assert logits.shape == expected.logits.shape
    assert _max_diff(logits, expected.logits) < 1e-5
    assert abs(float(nll.mean()) - float(expected.loss)) < 1e-5


def test_conversion_round_trip_is_exact_and_the_output_layer_stays_tied():
    ours = _gpt()
    back = from_hf_state_dict(to_hf_state_dict(ours), CONFIG)
    for (name, a), b in zip(ours.state_dict().items(), back.state_dict().values()):
        assert torch.equal(a, b), name
    assert back.decoder.weight is back.embedding.weight
    hf_names = to_hf_state_dict(ours)
    assert hf_names["lm_head.weight"] is hf_names["transformer.wte.weight"]
    assert hf_names["transformer.h.2.mlp.c_fc.weight"].shape == (32, 128)  # Conv1D: (in, out)


def test_configs_translate_both_ways_from_objects_and_dicts():
    hf_config = config_to_hf(CONFIG)
    assert config_from_hf(hf_config) == config_from_hf(hf_config.to_dict()) == CONFIG


def test_older_gpt2_files_load_without_prefix_and_with_mask_buffers():
    sd = {k.removeprefix("transformer."): v for k, v in to_hf_state_dict(_gpt()).items()}
    del sd["lm_head.weight"]
    sd["h.0.attn.bias"] = torch.ones(1, 1, 24, 24).tril()  # the causal-mask buffer of old checkpoints
    sd["h.0.attn.masked_bias"] = torch.tensor(-1e4)
    loaded = from_hf_state_dict(sd, CONFIG)
    assert torch.equal(loaded.embedding.weight, _gpt().embedding.weight)


def test_conversion_errors_name_the_tensors():
    sd = to_hf_state_dict(_gpt())
    missing = {k: v for k, v in sd.items() if not k.startswith("transformer.h.2.")}
    with pytest.raises(ValueError, match=r"(?s)lacks 12 tensor\(s\) the model needs: transformer\.h\.2\.ln_1\.weight"
                                         r".*config_from_hf \(this GPT has num_layers=3\)"):
        from_hf_state_dict(missing, CONFIG)
    with pytest.raises(ValueError, match=r"has 1 tensor\(s\) the model has no place for: "
                                         r"transformer\.h\.9\.ln_1\.weight"):
        from_hf_state_dict({**sd, "transformer.h.9.ln_1.weight": torch.ones(32)}, CONFIG)
    wrong = {**sd, "transformer.h.1.attn.c_attn.weight": torch.zeros(96, 32)}  # nn.Linear layout
    with pytest.raises(ValueError, match=r"'transformer\.h\.1\.attn\.c_attn\.weight' has shape \(96, 32\), "
                                         r"but the model expects \(32, 96\).*stored transposed"):
        from_hf_state_dict(wrong, CONFIG)
    with pytest.raises(ValueError, match="lm_head.weight differs"):
        from_hf_state_dict({**sd, "lm_head.weight": torch.zeros(V, 32)}, CONFIG)
    with pytest.raises(TypeError, match="GPT or a GPTConfig"):
        from_hf_state_dict(sd, TransformerConfig.tiny(V))


# --- parameter count ----------------------------------------------------------------------------

@pytest.mark.parametrize("overrides", [{}, dict(emb_dim=48, num_heads=6, num_layers=1), dict(context_length=7)])
def test_parameter_count_equals_transformers_and_the_formula(overrides):
    config = dataclasses.replace(CONFIG, **overrides)
    V_, L, C, N = config.vocab_size, config.context_length, config.emb_dim, config.num_layers
    by_hand = V_ * C + L * C + N * (12 * C * C + 13 * C) + 2 * C
    hf = _hf(config)
    assert GPT(config).num_parameters == sum(p.numel() for p in hf.parameters()) == by_hand
    assert config.num_parameters == by_hand


def test_gpt2_small_has_124_439_808_parameters():
    config = GPTConfig.gpt2_small()
    assert config.num_parameters == 124_439_808
    with torch.device("meta"):  # built without memory or initialisation: shapes only
        model = GPT(config)
    assert model.num_parameters == 124_439_808
    assert (config.emb_dim, config.num_heads, config.num_layers, config.context_length) == (768, 12, 12, 1024)


def test_gpt_is_a_transformer_lm_with_gpt2_choices():
    model = _gpt()
    assert isinstance(model, TransformerLM) and model.decoder.bias is None
    assert model.decoder.weight is model.embedding.weight
    assert model.blocks[0].mlp.act.approximate == "tanh" and model.blocks[0].ln_attn.eps == 1e-5
    torch.manual_seed(0)
    wide = GPT(GPTConfig.tiny(V, emb_dim=256, num_heads=4, num_layers=8))  # enough weights for a std
    block = wide.blocks[3]
    for layer in (block.attn.out_proj, block.mlp.down):  # write into the residual stream
        assert abs(float(layer.weight.detach().std()) - 0.02 / (2 * 8) ** 0.5) < 2e-4
    for layer in (block.attn.in_proj, block.mlp.up):
        assert abs(float(layer.weight.detach().std()) - 0.02) < 5e-4


# --- the KV cache -------------------------------------------------------------------------------

@pytest.mark.parametrize("fused", [True, False])
def test_cached_logits_equal_the_full_forward_at_every_step(fused):
    model = _gpt(fused=fused)
    seq = _ids(2, 5)
    cache = model.new_cache()
    with torch.no_grad():
        step_logits = model(seq, cache)[:, -1]  # the prompt, read once
        worst = 0.0
        for step in range(CONFIG.context_length - 5):
            full = model(seq)[:, -1]  # (B, V): every position recomputed
            worst = max(worst, _max_diff(step_logits, full))
            token = full.argmax(-1, keepdim=True)  # (B, 1)
            seq = torch.cat([seq, token], dim=1)
            if seq.shape[1] < CONFIG.context_length:
                step_logits = model(token, cache)[:, -1]
    assert worst < 1e-5
    assert len(cache[0]) == CONFIG.context_length - 1


@pytest.mark.parametrize("fused", [True, False])
def test_chunks_after_the_cache_use_a_bottom_right_aligned_mask(fused):
    model, ids = _gpt(fused=fused), _ids(2, 20)
    with torch.no_grad():
        full = model(ids)
        cache, parts = model.new_cache(), []
        for start, stop in ((0, 6), (6, 7), (7, 15), (15, 20)):  # chunks of 6, 1, 8 and 5 tokens
            parts.append(model(ids[:, start:stop], cache))
    assert _max_diff(torch.cat(parts, dim=1), full) < 1e-5


def test_from_scratch_and_fused_cache_paths_agree():
    fused, scratch = _gpt(fused=True), _gpt(fused=False)
    ids = _ids(3, 12)
    with torch.no_grad():
        caches = fused.new_cache(), scratch.new_cache()
        outs = [[m(ids[:, :4], c)] + [m(ids[:, t:t + 1], c) for t in range(4, 12)]
                for m, c in zip((fused, scratch), caches)]
    for a, b in zip(*outs):
        assert _max_diff(a, b) < 1e-5
    assert torch.allclose(caches[0][1].keys, caches[1][1].keys, atol=1e-6)


@pytest.mark.parametrize("positions", ["learned", "sinusoidal", "rotary"])
def test_the_cache_works_for_every_position_scheme_of_transformer_lm(positions):
    torch.manual_seed(0)
    model = TransformerLM(TransformerConfig.tiny(V, positions=positions)).eval()
    ids = _ids(2, 10)
    with torch.no_grad():
        full = model.hidden_states(ids)
        cache = [KVCache() for _ in model.blocks]
        parts = [model.hidden_states(ids[:, :3], cache=cache)] + \
                [model.hidden_states(ids[:, t:t + 1], cache=cache) for t in range(3, 10)]
    assert _max_diff(torch.cat(parts, dim=1), full) < 1e-5


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("rotary", [False, True])
def test_multi_head_attention_with_a_cache_equals_the_causal_rows(fused, rotary):
    torch.manual_seed(0)
    attn = MultiHeadAttention(16, 4, causal=True, fused=fused, rotary=RotaryEmbedding(4) if rotary else None)
    x = torch.randn(2, 9, 16)  # (B, T, C)
    cache = KVCache()
    with torch.no_grad():
        parts = [attn(x[:, :4], cache=cache), attn(x[:, 4:5], cache=cache), attn(x[:, 5:], cache=cache)]
        assert _max_diff(torch.cat(parts, dim=1), attn(x)) < 1e-6
    assert len(cache) == 9 and cache.keys.shape == (2, 4, 9, 4)
    with pytest.raises(ValueError, match="same batch"):
        cache.append(torch.zeros(3, 4, 1, 4), torch.zeros(3, 4, 1, 4))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("settings", [dict(temperature=0), dict(temperature=1.0),
                                      dict(temperature=0.8, top_k=12, top_p=0.9, repetition_penalty=1.3)],
                         ids=["greedy", "sampled", "filtered"])
def test_generate_with_and_without_the_cache_gives_the_same_tokens(fused, settings):
    model = _gpt(fused=fused)  # context 24: 3 + 40 tokens slide the window for 19 steps
    prompts = _ids(3, 3)
    cached = model.generate(prompts, 40, seed=7, use_cache=True, **settings)
    recomputed = model.generate(prompts, 40, seed=7, use_cache=False, **settings)
    assert cached == recomputed
    assert [len(row) for row in cached] == [40, 40, 40]
    if settings["temperature"] > 0:
        assert cached != model.generate(prompts, 40, seed=8, **settings)  # another seed, other tokens


@pytest.mark.parametrize("prompt_length", [20, 30])  # a prompt longer than the context is cut too
def test_generate_past_the_context_slides_the_window(prompt_length):
    model = _gpt()
    prompt = _ids(1, prompt_length)[0]
    out = model.generate(prompt, 8, temperature=0)
    assert out == model.generate(prompt, 8, temperature=0, use_cache=False)
    seq = prompt.tolist() + out
    for i, token in enumerate(out):  # each token is the argmax after the last 24 tokens before it
        window = torch.tensor([seq[:prompt_length + i][-CONFIG.context_length:]])
        with torch.no_grad():
            assert int(model(window)[0, -1].argmax()) == token


def test_generate_one_prompt_a_list_a_generator_and_stop_ids():
    model = _gpt()
    prompt = [3, 1, 4, 1, 5]
    as_list = model.generate(prompt, 10, temperature=0)
    assert as_list == model.generate(torch.tensor(prompt), 10, temperature=0)
    assert as_list == model.generate(torch.tensor([prompt]), 10, temperature=0)[0]
    stop = as_list[4]
    assert model.generate(prompt, 10, temperature=0, stop_ids=[stop]) == as_list[:as_list.index(stop) + 1]
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert model.generate(prompt, 10, seed=g1) == model.generate(prompt, 10, seed=g2) == model.generate(prompt, 10, seed=3)
    assert model.generate(prompt, 0) == []
    model.train()
    model.generate(prompt, 2)
    assert model.training  # the mode is restored


def test_errors_for_shapes_dtypes_and_lengths():
    model = _gpt()
    with pytest.raises(TypeError, match="LongTensor"):
        model.generate(torch.ones(1, 3), 2)
    with pytest.raises(ValueError, match=r"\(B, T\), batch first"):
        model.generate(torch.ones(1, 2, 3, dtype=torch.long), 2)
    with pytest.raises(ValueError, match=r"ids is empty \(2, 0\)"):
        model(torch.zeros(2, 0, dtype=torch.long))
    with pytest.raises(ValueError, match=r"outside \[0, vocab_size=61\)"):
        model.generate([1, 61], 2)
    with pytest.raises(ValueError, match="max_new_tokens must be an int >= 0"):
        model.generate([1], -1)
    with pytest.raises(ValueError, match="top_p must be in"):
        model.generate([1], 2, top_p=0.0)
    with pytest.raises(ValueError, match="stop_ids"):
        model.generate([1], 2, stop_ids=[V])
    with pytest.raises(ValueError, match="longer than the model's context_length=24"):
        model(_ids(1, 25))
    cache = model.new_cache()
    model(_ids(1, 20), cache)
    with pytest.raises(ValueError, match="a sequence of 25 tokens is longer"):
        model(_ids(1, 5), cache)
    with pytest.raises(TypeError, match="GPTConfig"):
        GPT(TransformerConfig.tiny(V))
    with pytest.raises(ValueError, match="not divisible by num_heads"):
        GPTConfig(vocab_size=V, emb_dim=30, num_heads=4)
    with pytest.raises(ValueError, match="dropout must be in"):
        GPTConfig(vocab_size=V, dropout=1.0)


# --- checkpoints and training -----------------------------------------------------------------------

def test_checkpoint_round_trip(tmp_path):
    model = _gpt(seed=3)
    path = save_checkpoint(tmp_path / "gpt.safetensors", model, step=5)
    fresh = _gpt(seed=4)
    info = load_checkpoint(path, fresh)
    assert info.model_class == "GPT" and info.model_config == dataclasses.asdict(CONFIG)
    ids = _ids(2, 10)
    with torch.no_grad():
        assert torch.equal(fresh(ids), model(ids))
    assert fresh.decoder.weight is fresh.embedding.weight  # still one matrix


def test_a_short_training_run_lowers_the_loss():
    source = MarkovSource.random(num_symbols=16, concentration=0.2, seed=0)
    stream = torch.from_numpy(source.sample(30_000, seed=1))
    train_ids, valid_ids = stream[:25_000], stream[25_000:]
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=16, context_length=32))
    config = TrainConfig(lr=3e-3, batch_size=16, bptt=32, max_steps=60, eval_every=20, progress=False)
    history = train(model, train_ids, valid_ids, config)
    entropy = source.entropy_rate() * torch.log(torch.tensor(2.0)).item()  # bits -> nats
    assert history.steps == 60
    assert history.valid_loss[-1] < 0.75 * history.train_loss[0]  # from about ln 16 = 2.77 nats
    assert history.valid_loss[-1] < entropy + 0.3  # near the best any model can do (1.77 nats)
