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


def test_the_other_model_families_train_evaluate_and_predict_on_the_device(monkeypatch):
    """The book's other families on device(): the feed-forward, recurrent and Transformer LMs (Chapters
    3-4), the induction task, the seq2seq translator, BERT's MLM pre-training, the fine-tuned and frozen
    classifiers (Chapter 5), and the helpers of later chapters and apps that feed a model. Each builds
    tensors of its own from Python data: on a GPU, one left on the CPU, a new head left behind its
    encoder, or a .numpy() of a CUDA tensor fails here."""
    from lmcourse import classify, induction, minigpt, mlm, seq2seq
    from lmcourse.apps.recommend import article_embeddings
    from lmcourse.bert import BertConfig, BertForMaskedLM, BertForSequenceClassification, BertModel
    from lmcourse.feedforward import FeedForwardConfig, FeedForwardLM
    from lmcourse.paragraphs import causal_lm_paragraph_nll
    from lmcourse.rnn import RNNConfig, RNNModel
    from lmcourse.transformer import TransformerConfig, TransformerLM
    from tests.test_classify import TOKENIZER, TOY_CONFIG, _toy_task
    from tests.test_paragraphs import _Bytes

    monkeypatch.delenv(DEVICE_VARIABLE, raising=False)
    where = device()
    on_device = lambda m: {p.device.type for p in m.parameters()} == {where.type}  # noqa: E731
    pattern = torch.arange(20).repeat(30)  # (600,) each id followed by the next
    recipe = TrainConfig(lr=1e-2, batch_size=4, bptt=8, max_steps=40, progress=False)
    torch.manual_seed(0)
    for model in (FeedForwardLM(FeedForwardConfig.tiny(20)), RNNModel(RNNConfig.tiny(20)),
                  TransformerLM(TransformerConfig.tiny(20, context_length=16))):
        model.to(where)
        before = evaluate(model, pattern[:200], batch_size=4, bptt=8).loss
        train(model, pattern, pattern[:200], recipe)
        assert evaluate(model, pattern[:200], batch_size=4, bptt=8).loss < before / 2 and on_device(model)
        assert model.generate([3, 4, 5], 3, temperature=0) == [6, 7, 8]
    induction.train_on_repeats(model, steps=2, half_length=6, vocab_size=20, batch_size=4)
    assert induction.accuracy_by_position(model, induction.repeated_tokens(4, 6, 20)).shape == (11,)
    lm = torch.nn.Sequential(torch.nn.Embedding(257, 8), torch.nn.Linear(8, 257)).to(where)
    assert causal_lm_paragraph_nll(lm, _Bytes(), ["ab c", "xyz"], start_id=256, window=3)[0].shape == (2,)
    x = torch.randn(1, 4, 8, device=where)
    assert minigpt.attention_head(x, *torch.randn(3, 2, 8, device=where)).shape == (1, 4, 2)

    pairs = seq2seq.make_pairs(64, 3, 5, seed=0)
    torch.manual_seed(0)
    model = seq2seq.Seq2Seq(seq2seq.Seq2SeqConfig(emb_dim=8, hidden_dim=12, attention_dim=10)).to(where)
    before = seq2seq.evaluate_loss(model, pairs)
    seq2seq.train_seq2seq(model, pairs, seq2seq.chapter_train_config(max_steps=20, batch_size=16, lr=1e-2,
                                                                      warmup_steps=2, progress=False))
    assert seq2seq.evaluate_loss(model, pairs) < before and len(seq2seq.translate(model, ["abc", "de"])) == 2

    texts, labels = _toy_task(64, seed=0)
    test_texts, test_labels = _toy_task(40, seed=1)
    examples = mlm.mlm_examples(TOKENIZER, texts, max_length=16)
    torch.manual_seed(0)
    model = BertForMaskedLM(BertConfig.tiny(TOKENIZER.vocab_size, context_length=16)).to(where)
    before = mlm.evaluate_mlm(model, examples, tokenizer=TOKENIZER).loss
    recipe = mlm.pretrain_config(max_steps=10, batch_size=8, warmup_steps=2, eval_every=10, progress=False)
    mlm.pretrain_mlm(model, examples, examples[:8], recipe, tokenizer=TOKENIZER)
    assert mlm.evaluate_mlm(model, examples, tokenizer=TOKENIZER).loss < before
    assert len(mlm.fill_mask(model, TOKENIZER, "the film was [MASK]", top_k=3)[0]) == 3
    method = classify.FineTuned(lambda: BertForSequenceClassification.from_pretrained_encoder(model.bert),
                                TOKENIZER, TOY_CONFIG, max_length=16).fit(texts, labels)
    assert on_device(method.model)
    assert classify.evaluate_predictions(test_labels, method.predict(test_texts))["accuracy"] >= 0.9
    encoder = BertModel(BertConfig.tiny(TOKENIZER.vocab_size, context_length=256)).to(where)
    frozen = classify.FrozenEncoder(encoder, TOKENIZER, C=100.0, max_length=16).fit(texts, labels)
    assert len(frozen.predict(test_texts)) == 40
    assert article_embeddings([texts[:2], texts[2:5]], encoder, TOKENIZER).shape == (2, 32)
