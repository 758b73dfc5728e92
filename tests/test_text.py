"""Tests for lmcourse.text against torchtext 0.18's rules, re-stated here independently."""

from __future__ import annotations

import json
import re
from collections import Counter

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lmcourse.text import (UnknownTokenError, Vocab, basic_english_tokenize, build_vocab_from_iterator,
                           char_tokenize, get_tokenizer)

# --- oracles ---------------------------------------------------------------------------------

# torchtext/data/utils.py: _patterns and _replacements, as written there.
TORCHTEXT_PATTERNS = [r"\'", r"\"", r"\.", r"<br \/>", r",", r"\(", r"\)", r"\!", r"\?", r"\;", r"\:", r"\s+"]
TORCHTEXT_REPLACEMENTS = [" '  ", "", " . ", " ", " , ", " ( ", " ) ", " ! ", " ? ", " ", " ", " "]


def regex_oracle(line: str) -> list[str]:
    line = line.lower()
    for pattern, replacement in zip(TORCHTEXT_PATTERNS, TORCHTEXT_REPLACEMENTS):
        line = re.sub(pattern, replacement, line)
    return line.split()


def replace_oracle(line: str) -> list[str]:
    """The same rules without regular expressions (\\s+ -> ' ' is a no-op before str.split)."""
    line = line.lower()
    for old, new in [("'", " '  "), ('"', ""), (".", " . "), ("<br />", " "), (",", " , "), ("(", " ( "),
                     (")", " ) "), ("!", " ! "), ("?", " ? "), (";", " "), (":", " ")]:
        line = line.replace(old, new)
    return line.split()


def torchtext_build_vocab(token_lists, min_freq=1, specials=None, special_first=True, max_tokens=None):
    """torchtext/vocab/vocab_factory.py: build_vocab_from_iterator followed by vocab()."""
    counter = Counter()
    for tokens in token_lists:
        counter.update(tokens)
    specials = specials or []
    ordered = dict(sorted(counter.items(), key=lambda x: (-x[1], x[0])))
    if max_tokens is not None:
        ordered = dict(list(ordered.items())[: max_tokens - len(specials)])
    for s in specials:
        ordered.pop(s, None)
    tokens = [t for t, f in ordered.items() if f >= min_freq]
    return specials + tokens if special_first else tokens + specials


# --- tokenizers: known answers ---------------------------------------------------------------

KNOWN = [
    ("You can now install TorchText using pip!", ["you", "can", "now", "install", "torchtext", "using", "pip", "!"]),
    ("don't", ["don", "'", "t"]),
    ("'quoted'", ["'", "quoted", "'"]),
    ('He said "hi".', ["he", "said", "hi", "."]),
    ('""', []),
    ("a<br />b", ["a", "b"]),
    ("a<BR />b", ["a", "b"]),                      # lower-cased first, then matched
    ("a<br/>b", ["a<br/>b"]),                      # only the exact '<br />' form is removed
    ("3.14, 2,000 (approx)", ["3", ".", "14", ",", "2", ",", "000", "(", "approx", ")"]),
    ("wait; what: now?", ["wait", "what", "now", "?"]),
    ("Café NAÏVE résumé", ["café", "naïve", "résumé"]),  # no accent stripping
    ("", []),
    ("   \t\n  ", []),
    ("a  b\t\tc\n\nd\r\ne", ["a", "b", "c", "d", "e"]),
    ("e-mail & co/op #1", ["e-mail", "&", "co/op", "#1"]),  # '-', '&', '/', '#' untouched
    ("...!?", [".", ".", ".", "!", "?"]),
    ("it's 5 o'clock", ["it", "'", "s", "5", "o", "'", "clock"]),
]


@pytest.mark.parametrize("text, expected", KNOWN)
def test_basic_english_known_answers(text, expected):
    tokenize = get_tokenizer("basic_english")
    assert tokenize(text) == expected
    assert regex_oracle(text) == expected  # the oracle agrees with the hand-written answers


FRAGMENTS = ["'", '"', ".", ",", "(", ")", "!", "?", ";", ":", "<br />", "<br/>", "<BR />", " ", "  ",
             "\t", "\n", "\r\n", "\u00a0", "\u2028", "don't", "A", "b", "Z", "é", "É", "İ", "ß", "7", "-", "<"]
texts = st.one_of(st.text(), st.lists(st.one_of(st.sampled_from(FRAGMENTS), st.text(max_size=3))).map("".join))


@given(texts)
def test_basic_english_matches_oracles(text):
    assert basic_english_tokenize(text) == regex_oracle(text) == replace_oracle(text)


@given(texts)
def test_char_tokenize_keeps_every_character(text):
    tokens = get_tokenizer("char")(text)
    assert tokens == char_tokenize(text) == [c for c in text]
    assert "".join(tokens) == text


@given(texts)
def test_none_is_whitespace_split(text):
    assert get_tokenizer(None)(text) == text.split()


def test_char_tokenize_known_answer():
    assert char_tokenize("a b\n") == ["a", " ", "b", "\n"]
    assert char_tokenize("") == []


def test_callable_passes_through_unchanged():
    def my_tokenizer(text):
        return text.split("|")
    assert get_tokenizer(my_tokenizer) is my_tokenizer


def test_basic_english_only_for_english():
    assert get_tokenizer("basic_english", language="en")("Hi!") == ["hi", "!"]
    with pytest.raises(ValueError, match=r"only available for English.*'de'"):
        get_tokenizer("basic_english", language="de")
    get_tokenizer(None, language="de")  # the language only matters for basic_english


@pytest.mark.parametrize("name", ["spacy", "moses", "toktok", "revtok", "subword"])
def test_library_tokenizers_are_not_provided(name):
    with pytest.raises(ValueError, match=rf"'{name}' needs its own library.*'basic_english'.*'char'"):
        get_tokenizer(name)


@pytest.mark.parametrize("name", ["basic", "Basic_English", "", 42])
def test_unknown_tokenizer_names_the_supported_values(name):
    with pytest.raises(ValueError, match=r"unknown tokenizer.*None.*'basic_english'.*'char'.*callable"):
        get_tokenizer(name)


@pytest.mark.parametrize("name", [None, "basic_english", "char"])
@pytest.mark.parametrize("bad", [b"bytes", 3, ["a", "list"], None])
def test_tokenizers_reject_non_strings(name, bad):
    with pytest.raises(TypeError, match=rf"expects a str, got {type(bad).__name__}"):
        get_tokenizer(name)(bad)


# --- build_vocab_from_iterator ---------------------------------------------------------------

CORPUS = [["the", "cat", "sat"], ["the", "dog", "sat"], ["a", "cat", "ran"], ["the", "end"]]
# counts: the 3, cat 2, sat 2, a 1, dog 1, end 1, ran 1


def test_order_is_frequency_then_alphabetical():
    assert build_vocab_from_iterator(CORPUS).get_itos() == ["the", "cat", "sat", "a", "dog", "end", "ran"]
    assert build_vocab_from_iterator([["b", "c", "a", "B"]]).get_itos() == ["B", "a", "b", "c"]  # code point order


def test_min_freq():
    assert build_vocab_from_iterator(CORPUS, min_freq=2).get_itos() == ["the", "cat", "sat"]
    assert build_vocab_from_iterator(CORPUS, min_freq=3).get_itos() == ["the"]
    assert build_vocab_from_iterator(CORPUS, min_freq=4).get_itos() == []


@pytest.mark.parametrize("special_first, expected", [
    (True, ["<unk>", "<pad>", "the", "cat", "sat", "a", "dog", "end", "ran"]),
    (False, ["the", "cat", "sat", "a", "dog", "end", "ran", "<unk>", "<pad>"]),
])
def test_specials_first_or_last(special_first, expected):
    vocab = build_vocab_from_iterator(CORPUS, specials=["<unk>", "<pad>"], special_first=special_first)
    assert vocab.get_itos() == expected


def test_specials_found_in_the_corpus_are_not_counted_twice():
    vocab = build_vocab_from_iterator([["<unk>", "x", "<unk>"]], specials=["<unk>"])
    assert vocab.get_itos() == ["<unk>", "x"]


@pytest.mark.parametrize("max_tokens, expected", [
    (3, ["<unk>", "the", "cat"]),
    (4, ["<unk>", "the", "cat", "sat"]),
    (100, ["<unk>", "the", "cat", "sat", "a", "dog", "end", "ran"]),
])
def test_max_tokens_counts_the_specials(max_tokens, expected):
    assert build_vocab_from_iterator(CORPUS, specials=["<unk>"], max_tokens=max_tokens).get_itos() == expected


def test_max_tokens_without_specials():
    assert build_vocab_from_iterator(CORPUS, max_tokens=2).get_itos() == ["the", "cat"]


def test_max_tokens_cuts_before_specials_and_min_freq_like_torchtext():
    # '<unk>' is the most frequent token, so it uses up one of the two ordinary slots.
    corpus = [["<unk>"] * 5 + ["a", "a", "b"]]
    assert build_vocab_from_iterator(corpus, specials=["<unk>"], max_tokens=3).get_itos() == ["<unk>", "a"]
    assert build_vocab_from_iterator(corpus, max_tokens=2, min_freq=3).get_itos() == ["<unk>"]


def test_accepts_generators_of_token_iterators():
    lines = ["The cat.", "The dog!"]
    tokenizer = get_tokenizer("basic_english")
    vocab = build_vocab_from_iterator(map(tokenizer, lines))
    assert vocab.get_itos() == ["the", "!", ".", "cat", "dog"]
    assert build_vocab_from_iterator(iter(t) for t in (("a", "b"), ("b",))).get_itos() == ["b", "a"]


def test_only_specials_is_allowed():
    assert build_vocab_from_iterator([], specials=["<unk>"]).get_itos() == ["<unk>"]


token_lists = st.lists(st.lists(st.sampled_from(["a", "b", "c", "d", "e", "<unk>", "<pad>", "B", ""])), max_size=8)


@given(token_lists, st.integers(1, 4), st.sampled_from([[], ["<unk>"], ["<pad>", "<unk>"], ["<s>"]]),
       st.booleans(), st.one_of(st.none(), st.integers(3, 10)))
def test_build_vocab_matches_torchtext_oracle(corpus, min_freq, specials, special_first, max_tokens):
    if not any(corpus) and not specials:
        return
    vocab = build_vocab_from_iterator(corpus, min_freq, specials, special_first, max_tokens)
    assert vocab.get_itos() == torchtext_build_vocab(corpus, min_freq, specials, special_first, max_tokens)
    assert vocab.get_default_index() is None


@pytest.mark.parametrize("min_freq", [0, -1])
def test_min_freq_below_one_is_rejected(min_freq):
    with pytest.raises(ValueError, match=rf"min_freq must be at least 1, got {min_freq}"):
        build_vocab_from_iterator(CORPUS, min_freq=min_freq)


@pytest.mark.parametrize("specials, max_tokens", [(["<unk>"], 1), (["<unk>", "<pad>"], 1), ([], 0)])
def test_max_tokens_not_above_number_of_specials(specials, max_tokens):
    with pytest.raises(ValueError, match=rf"max_tokens={max_tokens} must be greater than the number of "
                                         rf"specials \({len(specials)}\).*only special tokens"):
        build_vocab_from_iterator(CORPUS, specials=specials, max_tokens=max_tokens)


@pytest.mark.parametrize("corpus", [[], [[], []], iter([])])
def test_empty_corpus(corpus):
    with pytest.raises(ValueError, match="corpus is empty"):
        build_vocab_from_iterator(corpus)


def test_lines_instead_of_token_lists():
    with pytest.raises(TypeError, match=r"item 0 .* is a str \('the cat sat'\).*list of tokens.*tokenized"):
        build_vocab_from_iterator(["the cat sat", "on the mat"])
    with pytest.raises(TypeError, match=r"item 1 .* is a int.*list of tokens"):
        build_vocab_from_iterator([["a"], 5])


def test_non_string_tokens():
    with pytest.raises(TypeError, match=r"token in item 1.*expects a str, got int"):
        build_vocab_from_iterator([["a"], ["b", 3]])


def test_duplicate_specials():
    with pytest.raises(ValueError, match="duplicate token '<unk>'"):
        build_vocab_from_iterator(CORPUS, specials=["<unk>", "<unk>"])


# --- Vocab -----------------------------------------------------------------------------------

@pytest.fixture
def vocab() -> Vocab:
    return Vocab(["<unk>", "the", "cat", "sat"])


def test_lookups(vocab):
    assert len(vocab) == 4
    assert vocab["cat"] == 2
    assert "cat" in vocab and "dog" not in vocab
    assert vocab(["the", "cat"]) == vocab.lookup_indices(["the", "cat"]) == [1, 2]
    assert vocab.lookup_token(3) == "sat"
    assert vocab.lookup_tokens([3, 0, 3]) == ["sat", "<unk>", "sat"]
    assert vocab.get_itos() == ["<unk>", "the", "cat", "sat"]
    assert vocab.get_stoi() == {"<unk>": 0, "the": 1, "cat": 2, "sat": 3}
    assert list(vocab) == vocab.get_itos()


def test_lookup_token_accepts_numpy_and_tensor_integers(vocab):
    assert vocab.lookup_token(np.int64(2)) == "cat"
    assert vocab.lookup_tokens(torch.tensor([1, 2])) == ["the", "cat"]
    with pytest.raises(TypeError):
        vocab.lookup_token(1.0)


def test_copies_do_not_change_the_vocab(vocab):
    vocab.get_itos().append("x")
    vocab.get_stoi()["y"] = 9
    assert len(vocab) == 4 and "x" not in vocab and "y" not in vocab


def test_default_index(vocab):
    assert vocab.get_default_index() is None
    vocab.set_default_index(vocab["<unk>"])
    assert vocab.get_default_index() == 0
    assert vocab["dog"] == 0
    assert vocab(["the", "dog"]) == [1, 0]
    assert "dog" not in vocab  # a default index does not make tokens members
    vocab.set_default_index(-1)  # torchtext allows any integer
    assert vocab["dog"] == -1
    vocab.set_default_index(None)
    with pytest.raises(UnknownTokenError):
        vocab["dog"]


def test_unknown_token_error(vocab):
    with pytest.raises(KeyError) as info:
        vocab["dog"]
    assert isinstance(info.value, UnknownTokenError) and info.value.token == "dog"
    message = str(info.value)
    assert "'dog'" in message and "vocab.set_default_index(vocab['<unk>'])" in message
    assert not message.startswith('"')  # shown as a sentence, not a quoted repr
    with pytest.raises(UnknownTokenError, match="'dog'"):
        vocab(["the", "dog"])


@pytest.mark.parametrize("index", [4, 100, -1])
def test_lookup_token_out_of_range(vocab, index):
    with pytest.raises(IndexError, match=rf"index {index} is out of range for a vocab of size 4"):
        vocab.lookup_token(index)
    with pytest.raises(IndexError, match=rf"index {index}"):
        vocab.lookup_tokens([0, index])


def test_non_string_tokens_are_rejected(vocab):
    with pytest.raises(TypeError, match="takes a token.*got int.*lookup_token"):
        vocab[1]
    with pytest.raises(TypeError, match="expects a str, got int"):
        1 in vocab
    with pytest.raises(TypeError, match="got a single str"):
        vocab("the cat")
    with pytest.raises(TypeError, match="expects a str, got NoneType"):
        Vocab(["a", None])
    with pytest.raises(TypeError, match="single str"):
        Vocab("abc")
    with pytest.raises(TypeError, match="expects a str, got int"):
        vocab.append_token(7)


def test_duplicates_rejected():
    with pytest.raises(ValueError, match=r"duplicate token 'a' .*indices 0 and 2"):
        Vocab(["a", "b", "a"])


@pytest.mark.parametrize("index, expected", [
    (0, ["dog", "<unk>", "the", "cat", "sat"]),
    (2, ["<unk>", "the", "dog", "cat", "sat"]),
    (4, ["<unk>", "the", "cat", "sat", "dog"]),
])
def test_insert_token_shifts_later_tokens(vocab, index, expected):
    vocab.insert_token("dog", index)
    assert vocab.get_itos() == expected
    assert vocab.get_stoi() == {t: i for i, t in enumerate(expected)}


def test_insert_token_leaves_the_default_index_number_alone(vocab):
    vocab.set_default_index(vocab["<unk>"])
    vocab.insert_token("<pad>", 0)
    assert vocab.get_default_index() == 0 and vocab["unseen"] == 0  # now '<pad>', as in torchtext


@pytest.mark.parametrize("index", [-1, 5])
def test_insert_token_out_of_range(vocab, index):
    with pytest.raises(IndexError, match=rf"index {index} .*size 4.*0 to 4"):
        vocab.insert_token("dog", index)
    assert len(vocab) == 4


def test_insert_or_append_existing_token(vocab):
    with pytest.raises(ValueError, match="'cat' already exists in the vocab with index 2"):
        vocab.insert_token("cat", 0)
    with pytest.raises(ValueError, match="'the' already exists in the vocab with index 1"):
        vocab.append_token("the")
    assert vocab.get_itos() == ["<unk>", "the", "cat", "sat"]


def test_append_token(vocab):
    vocab.append_token("dog")
    assert vocab["dog"] == 4 and vocab.lookup_token(4) == "dog" and len(vocab) == 5


@given(st.lists(st.text(max_size=4), unique=True), st.data())
def test_insert_matches_list_insert(tokens, data):
    vocab, itos = Vocab(tokens), list(tokens)
    for new in data.draw(st.lists(st.text(min_size=5, max_size=6), unique=True, max_size=5)):
        index = data.draw(st.integers(0, len(itos)))
        vocab.insert_token(new, index)
        itos.insert(index, new)
    assert vocab.get_itos() == itos
    assert vocab(itos) == list(range(len(itos)))
    assert vocab.lookup_tokens(range(len(itos))) == itos


def test_repr():
    assert repr(Vocab(["a", "b"])) == "Vocab(size=2, tokens=['a', 'b'], default_index=None)"
    big = Vocab([str(i) for i in range(10)], default_index=0)
    assert repr(big) == "Vocab(size=10, tokens=['0', '1', '2', '3', '4', ...], default_index=0)"


# --- save / load -----------------------------------------------------------------------------

def test_save_load_round_trip(tmp_path, vocab):
    vocab.set_default_index(0)
    path = tmp_path / "vocab.json"
    vocab.save(path)
    record = json.loads(path.read_text(encoding="utf-8"))
    assert record["default_index"] == 0
    assert record["tokens"] == ["<unk>", "the", "cat", "sat"]  # in index order
    loaded = Vocab.load(str(path))
    assert loaded.get_itos() == vocab.get_itos() and loaded.get_default_index() == 0


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.text(st.characters(blacklist_categories=["Cs"])), unique=True), st.one_of(st.none(), st.integers()))
def test_save_load_round_trip_any_tokens(tmp_path, tokens, default_index):
    """Any token survives, line breaks and the empty string included (character vocabularies)."""
    vocab = Vocab(tokens, default_index=default_index)
    vocab.save(tmp_path / "v.json", overwrite=True)
    loaded = Vocab.load(tmp_path / "v.json")
    assert loaded.get_itos() == tokens and loaded.get_default_index() == default_index


def test_save_refuses_to_overwrite(tmp_path, vocab):
    path = tmp_path / "vocab.txt"
    path.write_text("precious\n", encoding="utf-8")
    with pytest.raises(FileExistsError, match="already exists.*overwrite=True"):
        vocab.save(path)
    assert path.read_text(encoding="utf-8") == "precious\n"
    vocab.save(path, overwrite=True)
    assert Vocab.load(path).get_itos() == vocab.get_itos()


def test_save_unencodable_token_leaves_no_file(tmp_path):
    with pytest.raises(UnicodeEncodeError):
        Vocab(["\ud800"]).save(tmp_path / "vocab.txt")  # a lone surrogate is not valid UTF-8
    assert not (tmp_path / "vocab.txt").exists()


def test_load_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no vocab file at .*missing\.txt"):
        Vocab.load(tmp_path / "missing.txt")


@pytest.mark.parametrize("content, match", [
    ("the\ncat\n", "not a vocab file written by Vocab.save"),
    ('{"format": "something else", "tokens": ["a"], "default_index": null}', "not a vocab file"),
    ('{"format": "lmcourse.text.Vocab", "tokens": "abc", "default_index": null}', "'tokens' list"),
])
def test_load_rejects_other_files(tmp_path, content, match):
    path = tmp_path / "vocab.txt"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        Vocab.load(path)
