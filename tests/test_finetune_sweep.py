"""lmcourse.finetune_sweep: setups prepared reproducibly, a short sweep on a tiny Llama, the file format,
and the stored run of Chapter 8."""

import numpy as np
import pytest
import torch

from lmcourse import instructions
from lmcourse.finetune_sweep import (ALL_LINEAR, RECIPE, SETUPS, Setup, SweepRow, load_sweep, prepare, run_setup,
                                     run_sweep, sft_config, write_sweep)
from lmcourse.llama import Llama, LlamaConfig
from lmcourse.lora import lora_layers, trainable_parameters
from lmcourse.sft import encode_examples
from tests.test_sft import byte_chat_tokenizer

CHATML = ("{% for message in messages %}"
          "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
          "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tiny():
    tokenizer = byte_chat_tokenizer(CHATML)
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=128))
    convos = [[{"role": "user", "content": f"add {a} {b}"}, {"role": "assistant", "content": str(a + b)}]
              for a in range(4) for b in range(3)]
    encoded, _ = encode_examples(tokenizer, convos, max_len=64)
    return model, encoded


def test_prepare_copies_and_starts_each_setup_the_same_way(tiny):
    model, _ = tiny
    first, second = prepare(model, RECIPE), prepare(model, RECIPE)
    assert not lora_layers(model) and all(p.requires_grad for p in model.parameters())  # the original untouched
    a1 = [layer.A for layer in lora_layers(first).values()]
    a2 = [layer.A for layer in lora_layers(second).values()]
    assert len(a1) == 5 * model.config.num_layers and all(torch.equal(x, y) for x, y in zip(a1, a2))
    assert not torch.equal(a1[0], lora_layers(prepare(model, RECIPE, seed=1))["blocks.0.attn.in_proj"].A)
    full = prepare(model, Setup("full", None, lr=1e-4))
    assert trainable_parameters(full) == sum(p.numel() for p in model.parameters()) and full.training


def test_sweep_trains_each_setup_and_scores_every_example(tiny):
    model, encoded = tiny
    setups = [Setup("full", None, lr=1e-3), Setup("LoRA r=2, MLP", ("mlp.gate", "mlp.up", "mlp.down"), 2)]
    rows = run_sweep(model, encoded, encoded, steps=2, setups=setups)
    assert [row.name for row in rows] == ["full", "LoRA r=2, MLP"]
    assert rows[0].trainable == sum(p.numel() for p in model.parameters())
    assert rows[1].trainable == trainable_parameters(prepare(model, setups[1]))
    for row in rows:
        assert row.steps == 2 and row.train_seconds > 0
        assert row.hits.dtype == bool and row.hits.shape == (len(encoded),)
    with pytest.raises(ValueError, match="at least one Setup"):
        run_sweep(model, encoded, encoded, setups=[])


def test_write_and_load_give_back_the_rows(tmp_path):
    hits = np.array([True, False, True, True])
    rows = [SweepRow("a", 10, 2e-3, 30, 12.34, hits), SweepRow("b, with a comma", 7, 5e-5, 30, 1.0, ~hits)]
    path = write_sweep(rows, tmp_path / "sweep.csv")
    back = load_sweep(path)
    assert list(back) == ["a", "b, with a comma"]
    assert back["a"].exact == 0.75 and np.array_equal(back["b, with a comma"].hits, ~hits)
    assert (back["a"].trainable, back["a"].lr, back["a"].steps, back["a"].train_seconds) == (10, 2e-3, 30, 12.3)


def test_load_rejects_other_files(tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("name,score\na,1\n")
    with pytest.raises(ValueError, match="not a sweep file"):
        load_sweep(other)
    bad = tmp_path / "bad.csv"
    bad.write_text("name,trainable,lr,steps,train_seconds,exact,hits\na,1,0.1,3,1.0,0.5,01x\n")
    with pytest.raises(ValueError, match="0s and 1s"):
        load_sweep(bad)


def test_the_recipe_is_the_chapters():
    assert RECIPE in SETUPS and RECIPE.targets == ALL_LINEAR and RECIPE.rank == 8
    config = sft_config(RECIPE, 30)
    assert (config.lr, config.batch_size, config.max_steps, config.warmup_steps, config.schedule) == \
        (2e-3, 4, 30, 3, "cosine")


def test_the_stored_run_holds_every_setup_on_every_heldout_example():
    stored = load_sweep()
    assert list(stored) == [setup.name for setup in SETUPS]
    n = len(instructions.load_instructions("heldout"))
    for row in stored.values():
        assert row.hits.shape == (n,) and row.steps == 30
    assert stored[RECIPE.name].trainable == 2_165_760  # rank 8 on SmolLM2's 150 linear layers (Chapter 8)


def test_data_readme_names_the_stored_run_with_its_checksum():
    from lmcourse._io import file_digest
    from lmcourse.data import data_file

    assert file_digest(data_file("finetune_sweep.csv")) in data_file("README.md").read_text(encoding="utf-8")


def test_the_recipes_run_is_stored_with_its_validation_loss(tiny, tmp_path):
    import dataclasses

    from lmcourse.sft import mean_example_loss, train_sft
    from lmcourse.stored_run import load_stored_run
    model, encoded = tiny
    recipe = Setup(RECIPE.name, ("mlp.down",), 2)  # a smaller stand-in, stored as the recipe would be
    path = tmp_path / "run.safetensors"
    rows = run_sweep(model, encoded, encoded, steps=2, setups=[Setup("full", None, lr=1e-3)], store=(path, encoded[:5]))
    assert rows and not path.exists()  # run_sweep stores the chapter's RECIPE only
    run_setup(model, recipe, encoded, encoded, 2, store=(path, encoded[:5]))
    fresh = prepare(model, recipe)
    live = train_sft(fresh, encoded, dataclasses.replace(sft_config(recipe, 2), stop_after=1))  # the first step here
    run = load_stored_run(path, fresh)
    assert run.history.steps == 2 and run.train_config["max_steps"] == 2
    assert run.measurements["valid_loss"] == pytest.approx(mean_example_loss(fresh, encoded[:5]), abs=1e-6)
    assert run.check_examples(sft_config(recipe, 2), live, mean_example_loss(fresh, encoded[:5]))


def test_the_books_stored_adapter_is_the_recipes_30_step_run():
    import dataclasses
    import json

    import safetensors

    from lmcourse.stored_run import book_run_path
    with safetensors.safe_open(str(book_run_path("lora-chapter8")), "pt") as f:
        meta, sizes = f.metadata(), [f.get_slice(name).get_shape() for name in f.keys()]
    assert meta["tensors"] == "trainable" and json.loads(meta["model_config"])["num_layers"] == 30
    config = json.loads(meta["train_config"])
    assert config == json.loads(json.dumps(dataclasses.asdict(sft_config(RECIPE, 30)), default=str))
    history = json.loads(meta["history"])
    assert len(history["train_loss"]) == 30 and history["train_loss"][-1] < history["train_loss"][0]
    assert len(sizes) == 2 * 150 and sum(a * b for a, b in sizes) == 2_165_760  # A and B of every adapted layer
    assert 0 < json.loads(meta["measurements"])["valid_loss"] < 1
