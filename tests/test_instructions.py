"""lmcourse.instructions: the rules that pick sentences, the scorer, and the committed data files."""

import json

import pytest

from lmcourse.instructions import (
    KEYS,
    SPLIT_SIZES,
    TEMPLATES,
    build_split,
    field_scores,
    fields,
    load_instructions,
    make_example,
    parse_reply,
    schema_valid,
    score,
    sentences,
    summarize,
    write_instructions,
)

DATED = "Aikido was first brought to the rest of the world in 1951 by Minoru Mochizuki."


@pytest.mark.parametrize("sentence, expected", [
    (DATED, ("1951", "Aikido", "Mochizuki")),
    ("The abacus is still used by merchants in many parts of Africa.", (None, "The", "Africa")),
    ("In 2013, the county emerged from bankruptcy after a long fight.", ("2013", "In", "fight")),
])
def test_fields_are_copied_spans(sentence, expected):
    assert fields(sentence) == dict(zip(KEYS, expected))


@pytest.mark.parametrize("sentence", [
    "In the 1990s the town grew a lot faster than any other place.",  # not a year on its own
    "Between 1914 and 1918 the town lost most of its young men.",  # two numbers
    "The town had 350 inhabitants when the railway first arrived.",  # a number that is not a year
    "In 2150 the town will probably have grown a lot bigger.",  # out of range
    "the town was founded by settlers from the north in 1905.",  # a fragment: no capital
    "The town was founded by settlers from the U.S.",  # last word is not plain letters
    "The town was founded by settlers from the north-east.",
    "The town was founded in 1905 by settlers from the north!",  # no full stop
    "It was founded in 1905.",  # under 8 words
    "The town " + "very " * 30 + "old.",  # over 30 words
])
def test_sentences_that_do_not_qualify(sentence):
    assert fields(sentence) is None


def test_sentences_cuts_paragraphs_and_keeps_each_once():
    line = f"{DATED} It was small. {DATED} The abacus is still used by merchants in many parts of Africa."
    assert sentences([line, DATED]) == [DATED, "The abacus is still used by merchants in many parts of Africa."]


def test_make_example_is_a_chat_with_the_json_answer():
    assert all(t.count("{sentence}") == 1 for t in TEMPLATES) and len(TEMPLATES) == 4
    for k in range(len(TEMPLATES)):
        example = make_example(DATED, k)
        user, assistant = example["messages"]
        assert (user["role"], assistant["role"]) == ("user", "assistant") and DATED in user["content"]
        assert json.loads(assistant["content"]) == example["answer"] == fields(DATED)
        assert list(example["answer"]) == list(KEYS) and score(example, assistant["content"])
    with pytest.raises(ValueError, match="does not qualify"):
        make_example("Too short.")


def _lines(n: int) -> list[str]:
    words = ["apples", "boats", "cities", "dogs", "eagles", "forests", "gardens", "hills"]
    dated = [f"The {w} of region {chr(65 + k % 26)} grew in {1800 + k} after the war." for k, w in
             enumerate(words * n)]
    undated = [f"Many {w} of region {chr(65 + k % 26)} were seen by travellers from the south." for k, w in
               enumerate(words * n)]
    return [" ".join(pair) for pair in zip(dated, undated)]


def test_build_split_is_seeded_balanced_and_refuses_too_little():
    lines = _lines(3)
    a, b = build_split(lines, 5, 7, seed="x"), build_split(lines, 5, 7, seed="x")
    assert a == b and a != build_split(lines, 5, 7, seed="y")
    assert sum(e["answer"]["year"] is not None for e in a) == 5 and len(a) == 12
    assert len({e["sentence"] for e in a}) == 12 and a[0]["id"] == "x-000"
    with pytest.raises(ValueError, match="asked for 30 sentences with a year"):
        build_split(lines, 30, 1)


def test_scorer_is_strict_json():
    example = make_example(DATED)
    right = '{"last_word": "Mochizuki", "year": "1951", "first_word": "Aikido"}'
    assert score(example, right) and score(example, f"\n {right} \n") and schema_valid(right)
    for wrong in ['{"year": 1951, "first_word": "Aikido", "last_word": "Mochizuki"}',  # a number, not a string
                  f"```json\n{right}\n```", f"Sure! {right}", '{"year": "1951", "first_word": "Aikido"}', "[]"]:
        assert not score(example, wrong), wrong
    assert not schema_valid('{"year": 1951, "first_word": "Aikido", "last_word": "Mochizuki"}')
    assert schema_valid('{"year": null, "first_word": "x", "last_word": "y"}')
    assert parse_reply("not json") is None
    assert field_scores(example, '{"year": "1951", "first_word": "aikido"}') == {
        "year": True, "first_word": False, "last_word": False}
    rates = summarize([example, example], [right, "no"])
    assert rates == {"exact": 0.5, "schema_valid": 0.5, "year": 0.5, "first_word": 0.5, "last_word": 0.5}
    with pytest.raises(ValueError, match="one reply per example"):
        summarize([example], [])


def test_committed_files_follow_the_rules_and_held_out_sentences_are_unseen():
    splits = {name: load_instructions(name) for name in SPLIT_SIZES}
    for name, (_, dated, undated) in SPLIT_SIZES.items():
        examples = splits[name]
        assert len(examples) == dated + undated
        assert sum(e["answer"]["year"] is not None for e in examples) == dated
        for e in examples:
            assert e["answer"] == fields(e["sentence"]) and score(e, e["messages"][1]["content"])
            assert e["messages"][0]["content"] == TEMPLATES[e["template"]].replace("{sentence}", e["sentence"])
    seen = {e["sentence"] for e in splits["train"]}
    assert not seen & {e["sentence"] for e in splits["heldout"]}
    assert not seen & {e["sentence"] for e in splits["valid"]}
    with pytest.raises(ValueError, match="unknown split"):
        load_instructions("test")


def test_the_generator_rebuilds_the_committed_files(tmp_path):
    for name, path in write_instructions(tmp_path).items():
        committed = [json.dumps(e, ensure_ascii=False) + "\n" for e in load_instructions(name)]
        assert path.read_text(encoding="utf-8") == "".join(committed)
        assert path.stat().st_size < 400_000


def test_data_readme_names_each_file_with_its_checksum():
    from lmcourse._io import file_digest
    from lmcourse.data import data_file

    readme = data_file("README.md").read_text(encoding="utf-8")
    for name in SPLIT_SIZES:
        path = data_file(f"instructions/{name}.jsonl")
        assert f"`{name}.jsonl`" in readme and file_digest(path) in readme and f"{path.stat().st_size:,}" in readme
