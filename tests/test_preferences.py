"""lmcourse.preferences: sentence splitting, the topic split, the committed pairs, and the end-of-turn
probability against a hand computation (tiny model) and on SmolLM2 itself."""

from __future__ import annotations

import math

import pytest
import torch

from lmcourse.preferences import (HELDOUT_TOPICS, TOPICS, complete_sentences, end_probabilities, end_probability,
                                  first_sentence, load_preferences, sentences, split_topics)


@pytest.mark.parametrize("text, expected", [
    ("Volcanoes erupt. Lava flows!", ["Volcanoes erupt.", "Lava flows!"]),
    ("Is it hot? Yes, about 1,200 degrees.", ["Is it hot?", "Yes, about 1,200 degrees."]),
    ("Pi is 3.14 or so. It never ends", ["Pi is 3.14 or so.", "It never ends"]),
    ("Some ants, e.g. the fire ant, sting. Mr. Smith and J. Doe agree.",
     ["Some ants, e.g. the fire ant, sting.", "Mr. Smith and J. Doe agree."]),
    ("Mrs. Jones lives on St. Mary's Road, i.e. the old one. She is 92.",
     ["Mrs. Jones lives on St. Mary's Road, i.e. the old one.", "She is 92."]),
    ('Mars is "the red planet." 2 moons orbit it. (Both are small.) "Phobos" is one.',
     ['Mars is "the red planet."', "2 moons orbit it.", "(Both are small.)", '"Phobos" is one.']),
    ("It grows in the U.S. and Canada, etc. Really?! Yes... Lots.", ["It grows in the U.S. and Canada, etc.",
                                                                      "Really?!", "Yes...", "Lots."]),
    ("Version 2.0 is out. see below. Done.", ["Version 2.0 is out. see below.", "Done."]),  # no capital: no end
    ("Line one.\n\nLine two.", ["Line one.", "Line two."]),
    ("", []),
])
def test_sentences(text, expected):
    assert sentences(text) == expected


def test_first_and_complete_sentences():
    assert first_sentence("One. Two.") == "One." and first_sentence("") == ""
    assert complete_sentences("The Sun is a star. It is about 4.6 billion years old. Its core") == \
        "The Sun is a star. It is about 4.6 billion years old."
    assert complete_sentences("no full stop at all") == "" and complete_sentences("Ask Dr.") == ""
    # a repeated sentence: the cut is after the last complete one, not after its first occurrence
    assert complete_sentences("It rains. It pours. It rains. It po") == "It rains. It pours. It rains."
    assert complete_sentences('  He said "stop." Then') == 'He said "stop."'


def test_topics_split_is_seeded_and_disjoint():
    train, heldout = split_topics()
    assert len(heldout) == HELDOUT_TOPICS and len(train) + len(heldout) == len(TOPICS) == len(set(TOPICS))
    assert not set(train) & set(heldout) and split_topics() == (train, heldout) and split_topics(1) != (train, heldout)


def test_committed_pairs_follow_the_rules():
    pairs, heldout = load_preferences("train"), load_preferences("heldout")
    train_topics, heldout_topics = split_topics()
    assert len(pairs) >= 40 and len(heldout) == HELDOUT_TOPICS
    for p in pairs:
        assert p["topic"] in train_topics and p["topic"] in p["prompt"]
        assert len(sentences(p["rejected"])) >= 2 and p["chosen"] == first_sentence(p["rejected"])
        assert p["rejected"].startswith(p["chosen"]) and complete_sentences(p["rejected"]) == p["rejected"]
    assert set(pairs[0]) == {"id", "topic", "prompt", "chosen", "rejected"}
    assert len({p["id"] for p in pairs}) == len(pairs) and len({p["topic"] for p in pairs}) == len(pairs)
    for h in heldout:
        assert set(h) == {"id", "topic", "prompt", "base_reply", "first_sentence"}
        assert h["topic"] in heldout_topics and h["first_sentence"] == first_sentence(h["base_reply"])
        assert h["first_sentence"] and h["base_reply"].startswith(h["first_sentence"])
    assert not {p["topic"] for p in pairs} & {h["topic"] for h in heldout}
    with pytest.raises(ValueError, match="unknown split"):
        load_preferences("valid")


def test_end_probability_by_hand_on_a_tiny_model():
    from tests.test_sft import CHATML, SPECIALS  # a byte tokenizer with SmolLM2's template
    from lmcourse.bpe import ByteBPE
    from lmcourse.llama import SMOLLM_PATTERN, Llama, LlamaConfig, SmolLM2Tokenizer, next_token_probability

    bpe = ByteBPE.from_vocab({bytes([b]): b + 3 for b in range(256)}, [], special_tokens=SPECIALS,
                             pattern=SMOLLM_PATTERN)
    tok = SmolLM2Tokenizer(bpe, 259, CHATML, bos_id=1, eos_id=2)
    torch.manual_seed(0)
    model = Llama(LlamaConfig.tiny(vocab_size=259, context_length=128)).eval()
    text = tok.apply_chat_template([{"role": "user", "content": "Hi?"}], add_generation_prompt=True) + "Yes."
    with torch.no_grad():
        logits = model(torch.tensor([tok.encode(text)]))[0, -1].double()
    by_hand = math.exp(logits[2].item()) / torch.exp(logits).sum().item()
    assert end_probability(model, tok, "Hi?", "Yes.") == pytest.approx(by_hand, rel=1e-9)
    assert end_probabilities(model, tok, ["Hi?", "Hi?"], ["Yes.", "No."]).shape == (2,)
    with pytest.raises(ValueError, match="one prefix per prompt"):
        end_probabilities(model, tok, ["Hi?"], [])
    # the probability of a set of tokens is the sum of theirs, each counted once; no prefix: the reply's first token
    opening = tok.apply_chat_template([{"role": "user", "content": "Hi?"}], add_generation_prompt=True)
    with torch.no_grad():
        probs = torch.softmax(model(torch.tensor([tok.encode(opening)]))[0, -1].double(), dim=-1)
    braces = [ord("{") + 3, ord("[") + 3]
    assert next_token_probability(model, tok, "Hi?", braces + braces[:1]) == pytest.approx(probs[braces].sum().item())
    for bad in ([], [259], [-1], [1.5]):
        with pytest.raises(ValueError, match="token_ids must be a non-empty list"):
            next_token_probability(model, tok, "Hi?", bad)


def test_the_first_pair_regenerates_with_smollm2():
    from lmcourse.llama import chat, load_smollm2, smollm2_path

    try:
        smollm2_path()
    except (ModuleNotFoundError, FileNotFoundError) as error:  # pragma: no cover - without the package
        pytest.skip(str(error))
    model, tokenizer = load_smollm2()
    pair, held = load_preferences("train")[0], load_preferences("heldout")[0]
    text = chat([{"role": "user", "content": pair["prompt"]}], model=model, tokenizer=tokenizer, max_tokens=96,
                temperature=0.0).text
    assert text.startswith(pair["rejected"]) and complete_sentences(text) == pair["rejected"]
    assert 0 < end_probability(model, tokenizer, held["prompt"], held["first_sentence"]) < 1


def test_data_readme_names_each_file_with_its_checksum():
    from lmcourse._io import file_digest
    from lmcourse.data import data_file

    readme = data_file("README.md").read_text(encoding="utf-8")
    for name in ("train", "heldout"):
        path = data_file(f"preferences/{name}.jsonl")
        assert f"`{name}.jsonl`" in readme and file_digest(path) in readme and f"{path.stat().st_size:,}" in readme
