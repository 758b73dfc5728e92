"""Tests for lmcourse.stored_run: a run saved and loaded back gives the same weights (a tied matrix
stored once), history, config and measurements; what is refused (a missing file, a file that is not
a stored run, a model of another shape, overwriting a file that is not a stored run) is refused
before anything changes; and the book's copy of Chapter 6's run is what the chapter expects."""

from __future__ import annotations

import dataclasses
import json
import os

import pytest
import safetensors
import safetensors.torch
import torch

from lmcourse.checkpoint import CheckpointError, save_checkpoint
from lmcourse.gpt import GPT, GPTConfig
from lmcourse.stored_run import book_run_path, load_stored_run, new_run_path, save_stored_run
from lmcourse.train import train
from lmcourse.trainstate import History, TrainConfig


def make(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    return GPT(GPTConfig.tiny(vocab_size=40, **overrides))


def history() -> History:
    h = History(train_loss=[3.7, 3.1, 2.9], lr=[1e-3, 1e-3, 5e-4], grad_norm=[1.0, 0.8, 0.7], tokens_seen=96,
                train_seconds=0.5)
    h.add_evaluation(3, 3.0, 20.1)
    return h


def test_a_history_subclass_loads_back_as_itself(tmp_path):
    from lmcourse.mlm import MLMHistory

    recorded = MLMHistory(train_loss=[3.7, 3.1], lr=[1e-3, 1e-3], valid_accuracy=[0.1], valid_mask_accuracy=[0.05])
    recorded.add_evaluation(2, 3.0, 20.1)
    path = save_stored_run(tmp_path / "mlm.safetensors", make(0), recorded, TrainConfig(max_steps=2), {})
    run = load_stored_run(path, make(1), history_class=MLMHistory)
    assert isinstance(run.history, MLMHistory) and run.history == recorded
    fresh = make(2)
    with pytest.raises(ValueError, match="valid_accuracy.*history_class"):  # read as a plain History: refused
        load_stored_run(path, fresh)
    assert torch.equal(fresh.decoder.weight, make(2).decoder.weight)  # and the model left untouched


def test_a_stored_run_loads_back_whole(tmp_path):
    model = make(0)
    config = TrainConfig(lr=1e-3, max_steps=3, eval_every=3, progress=False)
    path = save_stored_run(tmp_path / "run.safetensors", model, history(), config, {"bpc": [2.5, 2.1], "note": "x"})
    fresh = make(1)
    run = load_stored_run(path, fresh)
    for (name, a), (_, b) in zip(model.state_dict().items(), fresh.state_dict().items()):
        assert torch.equal(a, b), name
    assert fresh.decoder.weight is fresh.embedding.weight  # still tied after loading
    assert run.history == history() and run.measurements == {"bpc": [2.5, 2.1], "note": "x"}
    assert TrainConfig(**run.train_config) == config and run.model_config == dataclasses.asdict(model.config)
    assert run.machine and run.path == path
    # the tied matrix is stored once: the file is the parameters' bytes and a small header
    assert path.stat().st_size < 4 * model.num_parameters + 16_384


def test_what_is_refused_changes_nothing(tmp_path):
    model = make(0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(FileNotFoundError, match="FULL_RUN"):
        load_stored_run(tmp_path / "absent.safetensors", model)
    (tmp_path / "junk.safetensors").write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(CheckpointError, match="not a stored run"):
        load_stored_run(tmp_path / "junk.safetensors", model)
    checkpoint = save_checkpoint(tmp_path / "ckpt.safetensors", make(2), step=3)
    with pytest.raises(CheckpointError, match="load_checkpoint"):
        load_stored_run(checkpoint, model)
    wider = save_stored_run(tmp_path / "wide.safetensors", make(3, emb_dim=64), history(), TrainConfig(), {})
    with pytest.raises(ValueError, match="build the model the run trained"):
        load_stored_run(wider, model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_only_a_stored_run_is_overwritten(tmp_path):
    notes = tmp_path / "notes.safetensors"
    notes.write_text("my own file")
    with pytest.raises(FileExistsError, match="not a stored run"):
        save_stored_run(notes, make(0), history(), TrainConfig(), {})
    assert notes.read_text() == "my own file"
    path = save_stored_run(tmp_path / "run.safetensors", make(0), history(), TrainConfig(), {"v": 1})
    save_stored_run(path, make(4), history(), TrainConfig(), {"v": 2})  # a newer run of the same name
    assert load_stored_run(path, make(0)).measurements == {"v": 2}
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary file left behind
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask  # readable as any new file, not mkstemp's 0600


def test_new_runs_go_to_the_cache_never_over_the_books_copy(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))
    assert new_run_path("gpt-chapter6") == tmp_path / "runs" / "gpt-chapter6.safetensors"
    book = book_run_path("gpt-chapter6")
    before = book.read_bytes()
    monkeypatch.setenv("LMCOURSE_CACHE", str(book.parent.parent))  # a cache that points at data/
    with pytest.raises(ValueError, match="copy one there by hand"):
        save_stored_run(new_run_path("gpt-chapter6"), make(0), history(), TrainConfig(), {})
    assert book.read_bytes() == before


def test_a_damaged_file_leaves_the_model_as_it_was(tmp_path):
    path = save_stored_run(tmp_path / "run.safetensors", make(0), history(), TrainConfig(), {})
    (tmp_path / "cut.safetensors").write_bytes(path.read_bytes()[:-100])  # the last tensor's bytes cut short
    model = make(1)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match="damaged"):
        load_stored_run(tmp_path / "cut.safetensors", model)
    # a well-formed file whose last tensor has the wrong shape: every other tensor would load first
    tensors = safetensors.torch.load_file(str(path))
    last = sorted(tensors)[-1]
    tensors[last] = torch.zeros(tensors[last].numel() + 1)
    with safetensors.safe_open(str(path), "pt") as f:
        safetensors.torch.save_file(tensors, str(tmp_path / "bad.safetensors"), metadata=f.metadata())
    with pytest.raises(RuntimeError, match="size mismatch"):
        load_stored_run(tmp_path / "bad.safetensors", model)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_books_chapter_6_run_is_the_chapters_recipe_run_to_the_end():
    model = GPT(GPTConfig(vocab_size=8192, context_length=64, emb_dim=128, num_heads=4, num_layers=2, dropout=0.0))
    run = load_stored_run(book_run_path("gpt-chapter6"), model)
    config = TrainConfig(**run.train_config)
    assert config.max_steps == run.history.steps == 6400 and config.stop_after is None
    assert set(range(800, 6401, 800)) <= set(run.history.eval_steps)  # every eighth (and each epoch's end)
    assert sorted(run.measurements) == ["checkpoint_test_bpc", "samples", "test_bpc"]
    assert [int(s) for s in run.measurements["checkpoint_test_bpc"]] == list(range(800, 6401, 800))
    assert {1600, 3200, 4800} <= {int(s) for s in run.measurements["samples"]}
    assert run.measurements["checkpoint_test_bpc"]["6400"] == pytest.approx(run.measurements["test_bpc"], abs=0.01)
    assert json.dumps(run.measurements)  # plain JSON


def test_the_books_chapter_11_run_is_its_recipes_two_passes():
    model = GPT(GPTConfig(vocab_size=2048, context_length=64, emb_dim=128, num_heads=4, num_layers=2, dropout=0.0))
    run = load_stored_run(book_run_path("gpt-chapter11"), model)
    config = TrainConfig(**run.train_config)
    assert config.epochs == 2 and config.eval_every == 350 and config.stop_after is None
    assert run.history.steps == 1410 and {350, 700, 1050, 1400, 1410} <= set(run.history.eval_steps)
    assert run.history.valid_loss[-1] < run.history.valid_loss[0]


def test_check_accepts_the_runs_own_start_and_names_each_mismatch(tmp_path):
    stream = torch.arange(40).repeat(60)  # each token fixes the next: a tiny GPT learns it in a few steps
    recipe = TrainConfig(lr=3e-3, schedule="cosine", warmup_steps=2, batch_size=4, bptt=8, max_steps=20,
                         eval_every=5, eval_batch_size=4, progress=False)
    torch.manual_seed(0)
    full_model = GPT(GPTConfig.tiny(vocab_size=40))
    full = train(full_model, stream, stream[:400], recipe)
    path = save_stored_run(tmp_path / "run.safetensors", full_model, full, recipe, {})
    torch.manual_seed(0)
    model = GPT(GPTConfig.tiny(vocab_size=40))
    live = train(model, stream, stream[:400], dataclasses.replace(recipe, stop_after=5))
    run = load_stored_run(path, model)
    assert run.check(recipe, live, model, stream[:400]).startswith("trained here: the first 5 steps")
    with pytest.raises(ValueError, match=r"another recipe .*'lr': \(0.003, 0.001\)"):
        run.check(dataclasses.replace(recipe, lr=1e-3), live, model, stream[:400])
    with pytest.raises(ValueError, match="learning rates of the first 5 steps"):
        run.check(recipe, dataclasses.replace(live, lr=[x * 1.01 for x in live.lr]), model, stream[:400])
    watched = dataclasses.replace(recipe, progress=True, checkpoint=tmp_path / "c-{step}.safetensors", checkpoint_every=5)
    assert run.check(watched, live, model, stream[:400])  # how a run is watched is not part of its recipe
    with pytest.raises(ValueError, match="first 5 training losses differ"):  # e.g. another seed
        run.check(recipe, dataclasses.replace(live, train_loss=[x + 0.01 for x in live.train_loss]), model, stream[:400])
    with pytest.raises(ValueError, match="not the same run"):
        run.check(recipe, dataclasses.replace(live, valid_loss=[live.valid_loss[-1] + 0.1]), model, stream[:400])
    with pytest.raises(ValueError, match="no validation loss after step 3"):
        run.check(recipe, dataclasses.replace(live, train_loss=live.train_loss[:3], lr=live.lr[:3]), model, stream[:400])
    with torch.no_grad():
        model.decoder.weight.mul_(1.01)
    with pytest.raises(ValueError, match="not the run's final weights"):
        run.check(recipe, live, model, stream[:400])


def _tiny_lora_llama(rank: int = 2):
    """A tiny Llama with LoRA on two layers, its A matrices drawn from a fixed seed (as Chapter 8 prepares it)."""
    from lmcourse.llama import Llama, LlamaConfig
    from lmcourse.lora import apply_lora
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=40, context_length=32))
    with torch.no_grad():
        model.decoder.weight.mul_(30.0)  # far from uniform, as a pretrained model is: examples' losses differ
    torch.manual_seed(1)
    apply_lora(model, ["attn.out_proj", "mlp.down"], r=rank, alpha=2 * rank)
    return model


def _examples():
    """Eight tiny (ids, labels) examples: a prompt of three ids and answers of 1 to 8 ids, so that batches
    of different examples have clearly different losses."""
    answers = [[10 + (k * j) % 29 for j in range(1, k + 2)] + [39] for k in range(8)]
    return [([3, 4 + k, 5, *a], [-100, -100, -100, *a]) for k, a in enumerate(answers)]


def test_a_fine_tuning_run_stores_only_its_adapter_and_checks_against_its_examples(tmp_path):
    from lmcourse import sft
    recipe = TrainConfig(lr=1e-2, weight_decay=0.0, schedule="cosine", warmup_steps=1, batch_size=2, max_steps=8,
                         seed=0, progress=False)
    full_model = _tiny_lora_llama()
    full = sft.train_sft(full_model, _examples(), recipe)
    ids, labels = sft.pad_batch(_examples())

    def valid_loss(m) -> float:
        with torch.no_grad():
            return float(sft.example_losses(m.eval(), ids, labels).mean())

    path = save_stored_run(tmp_path / "adapter.safetensors", full_model, full, recipe,
                           {"valid_loss": valid_loss(full_model)}, trainable_only=True)
    with safetensors.safe_open(str(path), "pt") as f:
        names = set(f.keys())
    assert names == {n for n, p in full_model.named_parameters() if p.requires_grad}  # the adapter alone
    assert all(n.endswith((".A", ".B")) for n in names)
    model = _tiny_lora_llama()
    live = sft.train_sft(model, _examples(), dataclasses.replace(recipe, stop_after=3))
    run = load_stored_run(path, model)
    torch.testing.assert_close(model(torch.tensor([[3, 4, 5]])), full_model(torch.tensor([[3, 4, 5]])), atol=0, rtol=0)
    report = run.check_examples(recipe, live, valid_loss(model))
    assert report.startswith("trained here: the first 3 steps") and f"validation loss, {valid_loss(model):.4f}" in report
    with pytest.raises(ValueError, match="first 3 training losses differ"):  # another seed: other batches
        other = _tiny_lora_llama()
        run.check_examples(recipe, sft.train_sft(other, _examples(), dataclasses.replace(recipe, seed=1, stop_after=3)),
                           valid_loss(model))
    with pytest.raises(ValueError, match="not the run's final weights"):
        run.check_examples(recipe, live, valid_loss(model) + 1e-3)
    with pytest.raises(ValueError, match="another recipe"):
        run.check_examples(dataclasses.replace(recipe, lr=2e-2), live, valid_loss(model))
    run.measurements = {"end_probability": 0.25}  # another measurement, named by the caller
    assert run.check_examples(recipe, live, 0.25, measurement="end_probability").endswith("end probability, 0.2500")
    with pytest.raises(ValueError, match="P\\(end\\) = 0.26000, the stored run measured 0.25000"):
        run.check_examples(recipe, live, 0.26, measurement="end_probability", label="P(end)")
    with pytest.raises(ValueError, match=r"no number measurements\['valid_loss'\] .* \['end_probability'\]"):
        run.check_examples(recipe, live, valid_loss(model))


def test_an_adapter_run_is_refused_by_a_model_prepared_another_way(tmp_path):
    model = _tiny_lora_llama()
    path = save_stored_run(tmp_path / "adapter.safetensors", model, history(), TrainConfig(max_steps=3), {},
                           trainable_only=True)
    for other, message in ((_tiny_lora_llama(rank=4), r"\.[AB] is \(\d+, \d+\) in the file and \(\d+, \d+\) in the model"),
                           (_tiny_lora_llama().requires_grad_(True), "prepared another way")):
        before = {k: v.clone() for k, v in other.state_dict().items()}
        with pytest.raises(ValueError, match=message):
            load_stored_run(path, other)
        assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())  # nothing changed
    with pytest.raises(ValueError, match="3 steps were trained here, more than the stored run's 2"):
        run = load_stored_run(path, _tiny_lora_llama())
        run.history = History(train_loss=[1.0, 1.0], lr=[1e-3, 1e-3])
        run.check_examples(TrainConfig(max_steps=3), History(train_loss=[1.0] * 3, lr=[1e-3] * 3), 0.0)
    frozen = _tiny_lora_llama().requires_grad_(False)
    with pytest.raises(ValueError, match="no parameter of the model requires a gradient"):
        save_stored_run(tmp_path / "none.safetensors", frozen, history(), TrainConfig(max_steps=3), {},
                        trainable_only=True)


@pytest.mark.parametrize("name, mask_prob", [("tiny-bert-chapter5", 0.15), ("tiny-bert-chapter5-mask40", 0.4)])
def test_the_books_chapter_5_runs_are_the_default_recipe_and_give_their_loss(name, mask_prob):
    from lmcourse.bert import BertForMaskedLM
    from lmcourse.data import data_file, load_corpus, sentences
    from lmcourse.mlm import MLMHistory, chapter_bert_config, evaluate_mlm, mlm_examples, pretrain_config
    from lmcourse.wordpiece import WordPieceTokenizer

    tokenizer = WordPieceTokenizer.from_file(data_file("wiki_wordpiece_8000.txt"), model_max_length=64)
    model = BertForMaskedLM(chapter_bert_config(tokenizer.vocab_size))
    run = load_stored_run(book_run_path(name), model, history_class=MLMHistory)
    assert TrainConfig(**run.train_config) == pretrain_config() and run.history.steps == 800
    assert run.measurements["mask_prob"] == mask_prob and len(run.history.valid_mask_accuracy) == len(run.history.eval_steps)
    valid = mlm_examples(tokenizer, sentences(load_corpus("wiki").valid), max_length=64)[:200]
    assert evaluate_mlm(model, valid, tokenizer=tokenizer).loss < 7.0  # trained: the untrained model gives about 9
