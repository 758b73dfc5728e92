"""Tests for lmcourse.bpe: hand-worked merges, round trips over arbitrary Unicode, encoding against
GPT-2's algorithm restated on bytes and against the ``tokenizers`` library run with our merges,
GPT-2's pre-tokenization against ``tokenizers``' ByteLevel pre-tokenizer, training against a naive
trainer and against ``tokenizers``' own trainer, files, special tokens and the error paths."""

from __future__ import annotations

import json
import warnings
from collections import Counter

import pytest
import regex
from hypothesis import given, settings
from hypothesis import strategies as st
from tokenizers import Tokenizer, models, pre_tokenizers

from lmcourse.bpe import (GPT2_PATTERN, BasicBPE, ByteBPE, bytes_to_unicode, compression, merge, pair_counts,
                          train_hf_bpe, unicode_to_bytes)
from lmcourse.data import load_corpus

EOT = "<|endoftext|>"


# --- oracles ---------------------------------------------------------------------------------

def gpt2_byte_chars() -> dict[int, str]:
    """GPT-2's printable stand-in for each byte (openai/gpt-2, src/encoder.py), as tokenizers uses:
    printable Latin-1 bytes stand for themselves, the other 68 bytes for chr(256), chr(257), ..."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    others = [b for b in range(256) if b not in printable]
    return {**{b: chr(b) for b in printable}, **{b: chr(256 + k) for k, b in enumerate(others)}}


BYTE_CHAR = gpt2_byte_chars()
CHAR_BYTE = {c: b for b, c in BYTE_CHAR.items()}
HF_BYTE_RANK = {b: rank for rank, b in enumerate(sorted(range(256), key=BYTE_CHAR.get))}  # tokenizers' byte ids


def hf_pretokenize(text: str) -> list[str]:
    """tokenizers' GPT-2 pre-tokenizer, mapped back from its offsets to pieces of the text."""
    splitter = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return [text[a:b] for _, (a, b) in splitter.pre_tokenize_str(text)]


def hf_merges_as_bytes(hf: Tokenizer) -> list[tuple[bytes, bytes]]:
    merges = json.loads(hf.to_str())["model"]["merges"]
    return [tuple(bytes(CHAR_BYTE[c] for c in part) for part in m) for m in merges]


def our_merges_as_bytes(tok: ByteBPE) -> list[tuple[bytes, bytes]]:
    return [(tok.token_bytes(a), tok.token_bytes(b)) for a, b in tok.merges]


def hf_tokenizer_with_our_merges(tok: ByteBPE) -> Tokenizer:
    """tokenizers' BPE model given our vocabulary (our ids) and merges: an independent encoder."""
    n = tok.vocab_size - len(tok.special_tokens)
    as_chars = lambda b: "".join(BYTE_CHAR[x] for x in b)  # noqa: E731
    vocab = {as_chars(tok.token_bytes(i)): i for i in range(n)}
    merges = [(as_chars(a), as_chars(b)) for a, b in our_merges_as_bytes(tok)]
    hf = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    return hf


def reference_encode(tok: ByteBPE, text: str) -> list[int]:
    """GPT-2's encoder.py on bytes: in each chunk, merge the lowest-ranked pair present (at all its
    places, left to right) until no merge applies; then look the pieces up."""
    ranks: dict[tuple[bytes, bytes], int] = {}
    for r, pair in enumerate(our_merges_as_bytes(tok)):
        ranks.setdefault(pair, r)
    ids = {tok.token_bytes(i): i for i in range(tok.vocab_size - len(tok.special_tokens))}
    out = []
    for chunk in regex.findall(GPT2_PATTERN, text):
        parts = [bytes([b]) for b in chunk.encode("utf-8")]
        while True:
            present = [p for p in zip(parts, parts[1:]) if p in ranks]
            if not present:
                break
            first, second = min(present, key=ranks.__getitem__)
            merged, i = [], 0
            while i < len(parts):
                if i + 1 < len(parts) and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        out += [ids[p] for p in parts]
    return out


def reference_train(text: str, new_tokens: int, byte_rank: dict[int, int]) -> tuple[list, list[bool]]:
    """Naive BPE on byte strings: count every pair of every distinct chunk again before each merge.
    Ties go to the smallest (key(left), key(right)), a byte's key being byte_rank[byte] and a merged
    token's 256 + the order it was made in. Returns the merges and, per merge, whether it was a tie."""
    words = {tuple(bytes([b]) for b in w.encode("utf-8")): f
             for w, f in Counter(regex.findall(GPT2_PATTERN, text)).items()}
    key = {bytes([b]): r for b, r in byte_rank.items()}
    merges, ties = [], []
    while len(key) < 256 + new_tokens:
        counts: Counter = Counter()
        for word, f in words.items():
            for pair in zip(word, word[1:]):
                counts[pair] += f
        if not counts:
            break
        top = max(counts.values())
        best = sorted((p for p, c in counts.items() if c == top), key=lambda p: (key[p[0]], key[p[1]]))
        (a, b), tie = best[0], len(best) > 1
        key.setdefault(a + b, len(key))
        merges.append((a, b))
        ties.append(tie)
        new_words = {}
        for word, f in words.items():
            out, i = [], 0
            while i < len(word):
                if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
                    out.append(a + b)
                    i += 2
                else:
                    out.append(word[i])
                    i += 1
            new_words[tuple(out)] = new_words.get(tuple(out), 0) + f
        words = new_words
    return merges, ties


# --- fixtures --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus():
    return load_corpus("wiki")


@pytest.fixture(scope="module")
def trained(corpus) -> ByteBPE:
    """Trained on 60 KB of the training split, 1,024 ids."""
    return ByteBPE().train(corpus.text("train")[:60_000], 1024, progress=False)


@pytest.fixture(scope="module")
def basic(corpus) -> BasicBPE:
    return BasicBPE().train(corpus.text("train")[:5_000], 320, progress=False)


@pytest.fixture(scope="module")
def hf_with_our_merges(trained) -> Tokenizer:
    return hf_tokenizer_with_our_merges(trained)


# --- hand-worked -----------------------------------------------------------------------------

def test_pair_counts_and_merge_by_hand():
    assert pair_counts([1, 2, 1, 2, 2]) == {(1, 2): 2, (2, 1): 1, (2, 2): 1}
    assert pair_counts([1, 2], weight=3, counts={(1, 2): 1}) == {(1, 2): 4}
    assert merge([1, 2, 1, 2, 2], (1, 2), 9) == [9, 9, 2]
    assert merge([5, 5, 5, 5, 5], (5, 5), 7) == [7, 7, 5]
    assert merge([1], (1, 2), 9) == [1] and merge([], (1, 2), 9) == []


def test_first_merges_by_hand_with_chunks_weighted_by_count():
    # chunks: "low" x1, " low" x2, " lower" x1.  l-o and o-w occur 4 times: the tie goes to (108, 111)
    # = "lo"; then "lo"+"w" (4), " "+"low" (3); then ( low, e) and (e, r) occur once: (101, 114) = "er"
    # is smaller; then " low"+"er". After 5 merges every chunk is one token.
    with pytest.warns(UserWarning, match=r"only 5 merges were possible.*262 ids instead of the 300"):
        tok = ByteBPE().train("low low low lower", 300, progress=False)
    assert our_merges_as_bytes(tok) == [(b"l", b"o"), (b"lo", b"w"), (b" ", b"low"), (b"e", b"r"),
                                        (b" low", b"er")]
    assert tok.merges == [(108, 111), (256, 119), (32, 257), (101, 114), (258, 259)]
    assert tok.vocab_size == 262 and tok.special_tokens == {EOT: 261}
    assert tok.encode("low lower") == [257, 260]
    assert tok.encode("lowlow") == [257, 257]


def test_the_regex_splits_as_gpt2_describes():
    assert ByteBPE().pretokenize("I'm here, they'll see 42 cats!\n\n  Hello   world ") == [
        "I", "'m", " here", ",", " they", "'ll", " see", " 42", " cats", "!", "\n\n ", " Hello", "  ",
        " world", " "]


# --- round trips -----------------------------------------------------------------------------

PIECES = ["hello", " world", "🙂", "👩‍👩‍👧", "東京", "中文字符", "é", "e\u0301", "\u0300\u0301", "ß", "Ω",
          "\t", "\n", "\r\n", "  ", "\u00a0", "\u3000", "'s", "'LL", "123", "٣", "<|endoftext|>", "<|", "\x00",
          "\U000e0001", "\ufeff"]
PIECE_TEXTS = st.lists(st.sampled_from(PIECES), max_size=20).map("".join)
TEXTS = st.one_of(st.text(), PIECE_TEXTS, st.text(alphabet=st.sampled_from("ab \n'é🙂"), max_size=60))


@settings(max_examples=300, deadline=None)
@given(TEXTS)
def test_decode_inverts_encode_on_any_unicode(trained, basic, text):
    for tok in (trained, basic, ByteBPE()):
        assert tok.decode(tok.encode(text)) == text
    assert trained.decode(trained.encode(text, allowed_special="all")) == text


def test_round_trip_and_rank_order_on_the_validation_text(trained, hf_with_our_merges, corpus):
    text = corpus.text("valid")[:40_000]
    ids = trained.encode(text)
    assert trained.decode(ids) == text
    assert ids == reference_encode(trained, text)
    assert ids == hf_with_our_merges.encode(text).ids  # tokenizers' BPE model


@settings(max_examples=200, deadline=None)
@given(TEXTS)
def test_encoding_applies_merges_in_rank_order(trained, text):
    assert trained.encode(text) == reference_encode(trained, text)


@settings(max_examples=200, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(exclude_categories=("Cs", "Cn"))), PIECE_TEXTS))
def test_encoding_equals_tokenizers_bpe_model_given_our_merges(trained, hf_with_our_merges, text):
    # (Cn: see the pre-tokenization test below.)
    assert trained.encode(text) == hf_with_our_merges.encode(text).ids


def test_the_cache_does_not_change_encodings(trained, corpus, monkeypatch):
    text = corpus.text("test")[:5_000]
    trained.clear_cache()
    cold = trained.encode(text)
    assert trained.encode(text) == cold
    monkeypatch.setattr(trained, "cache_limit", 3)  # the cache empties itself many times
    trained.clear_cache()
    assert trained.encode(text) == cold


# --- pre-tokenization ------------------------------------------------------------------------

@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(alphabet=st.characters(exclude_categories=("Cs", "Cn"))),
                 st.lists(st.sampled_from(PIECES + ["'", "'t", "'re", "'ve", "'d", " '", "!?", " 3.5"]),
                          max_size=20).map("".join)))
def test_pretokenization_equals_tokenizers_gpt2_byte_level(text):
    # Code points unassigned in Python's Unicode data (category Cn) are left out: the regex module
    # knows newer Unicode versions than tokenizers' Oniguruma, and they split those differently.
    assert ByteBPE().pretokenize(text) == hf_pretokenize(text)


def test_pretokenization_equals_tokenizers_on_the_corpus(corpus):
    lines = corpus.valid[:300]
    assert [ByteBPE().pretokenize(line) for line in lines] == [hf_pretokenize(line) for line in lines]
    text = "\n".join(lines)
    assert ByteBPE().pretokenize(text) == hf_pretokenize(text)


def test_tokens_stay_inside_chunks_only_with_pretokenization(trained, basic):
    def one_chunk(tok: ByteBPE, i: int) -> bool:
        try:
            text = tok.token_bytes(i).decode("utf-8")
        except UnicodeDecodeError:  # part of a character
            return True
        return len(regex.findall(GPT2_PATTERN, text)) == 1

    assert all(one_chunk(trained, i) for i in range(256, trained.vocab_size - 1))  # but <|endoftext|>
    assert not all(one_chunk(basic, i) for i in range(256, basic.vocab_size - 1))  # e.g. "e " or "s, "


# --- training against a naive trainer and against tokenizers ---------------------------------

@pytest.fixture(scope="module")
def small_text(corpus) -> str:
    return corpus.text("train")[:12_000]


def test_training_equals_a_naive_trainer(small_text):
    expected, _ = reference_train(small_text, 150, byte_rank={b: b for b in range(256)})
    tok = ByteBPE().train(small_text, 256 + 150 + 1, progress=False)
    assert our_merges_as_bytes(tok) == expected


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.sampled_from("aab \n'1é"), max_size=80), st.integers(1, 30))
def test_training_equals_a_naive_trainer_on_small_texts(text, new_tokens):
    expected, _ = reference_train(text, new_tokens, byte_rank={b: b for b in range(256)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the text may run out of pairs
        tok = ByteBPE().train(text or " ", 256 + new_tokens, special_tokens=(), progress=False)
    assert our_merges_as_bytes(tok) == (expected if text else [])


@pytest.mark.parametrize("cls", [ByteBPE, BasicBPE])
def test_training_is_deterministic_and_replaces_earlier_training(cls, small_text):
    a = cls().train(small_text[:3_000], 300, progress=False)
    b = cls().train("something else entirely", 260, progress=False).train(small_text[:3_000], 300, progress=False)
    assert a.merges == b.merges and a.special_tokens == b.special_tokens


def test_tokenizers_learns_the_same_merges_but_for_ties(small_text):
    hf = hf_merges_as_bytes(train_hf_bpe(small_text, 256 + 150 + 1))
    # With tokenizers' byte order as the tie-break, the naive trainer learns exactly its merges ...
    assert reference_train(small_text, 150, byte_rank=HF_BYTE_RANK)[0] == hf
    # ... and ours agree with them until the first tie that the two byte orders break differently.
    ours, ties = reference_train(small_text, 150, byte_rank={b: b for b in range(256)})
    first = next(k for k, (x, y) in enumerate(zip(ours, hf)) if x != y)
    assert ties[first] and first > 0
    assert set(ours[:first]) == set(hf[:first])


def test_compression_matches_tokenizers_trained_on_the_same_text(corpus):
    text, valid = corpus.text("train")[:200_000], corpus.text("valid")[:50_000]
    ours = ByteBPE().train(text, 2_000, progress=False)
    hf = train_hf_bpe(text, 2_000)
    assert hf.get_vocab_size() == ours.vocab_size == 2_000
    ratio = compression(ours, valid) / compression(hf, valid)
    assert abs(ratio - 1) < 0.01, ratio
    assert 2.5 < compression(ours, valid) < 3.5  # bytes per token of English with a 2k vocabulary


def test_compression_counts_bytes_per_token():
    assert compression(ByteBPE(), "héllo") == 1.0
    tok = ByteBPE().train("aaaa aaaa", 258, special_tokens=(), progress=False)  # "aa", then "aaaa"
    assert tok.encode("aaaa") == [257] and compression(tok, "aaaa") == 4.0


# --- special tokens --------------------------------------------------------------------------

def test_special_tokens_get_one_id_only_when_allowed(trained):
    eot = trained.special_tokens[EOT]
    assert eot == trained.vocab_size - 1 == 1023
    text = f"one{EOT}two"
    allowed = trained.encode(text, allowed_special={EOT})
    assert allowed == trained.encode("one") + [eot] + trained.encode("two")
    assert trained.encode(text, allowed_special="all") == allowed
    plain = trained.encode(text)
    assert eot not in plain and plain == trained.encode(text, allowed_special="none") == trained.encode(text, ())
    assert trained.decode(allowed) == trained.decode(plain) == text
    assert trained.token_bytes(eot) == EOT.encode()


def test_several_special_tokens_longest_spelling_first():
    tok = ByteBPE().train("ab ab ab", 261, special_tokens=("<s>", "<s>x", "</s>"), progress=False)
    s, sx, end = (tok.special_tokens[k] for k in ("<s>", "<s>x", "</s>"))
    assert (s, sx, end) == (258, 259, 260)  # after "ab" and " ab"
    assert tok.encode("<s>x<s></s>", allowed_special="all") == [sx, s, end]
    assert tok.encode("<s>x<s>", allowed_special={"<s>"}) == [s, ord("x"), s]


def test_training_text_is_cut_at_special_tokens():
    with pytest.warns(UserWarning, match="only 9 merges"):  # "hello" and " world": 4 + 5 merges
        tok = ByteBPE().train(f"hello world{EOT}" * 50, 300, progress=False)
    for i in range(256, tok.vocab_size - 1):
        assert not set(tok.token_bytes(i)) & set(b"<|>"), tok.token_bytes(i)
    with pytest.raises(ValueError, match="only special tokens"):
        ByteBPE().train(EOT * 3, 300, progress=False)


# --- files -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [ByteBPE, BasicBPE])
def test_save_load_round_trip(cls, tmp_path, small_text):
    tok = cls().train(small_text[:4_000], 330, special_tokens=(EOT, "<pad>"), progress=False)
    path = tmp_path / "tok.json"
    tok.save(path)
    loaded = cls.load(path)
    assert type(loaded) is cls
    assert loaded.merges == tok.merges and loaded.special_tokens == tok.special_tokens
    assert loaded.vocab_size == tok.vocab_size
    text = small_text[4_000:6_000] + EOT
    assert loaded.encode(text, allowed_special="all") == tok.encode(text, allowed_special="all")
    assert json.loads(path.read_text("utf-8"))["merges"][0] == list(tok.merges[0])


def test_two_merges_that_spell_the_same_bytes_share_one_id(tmp_path):
    record = {**_valid_record(), "merges": [[97, 98], [256, 99], [98, 99], [97, 258]], "special_tokens": {}}
    path = tmp_path / "tok.json"
    path.write_text(json.dumps(record))
    tok = ByteBPE.load(path)  # ab=256, ab+c=abc=257, bc=258, a+bc=abc again: 257
    assert tok.vocab_size == 259 and len(tok.merges) == 4
    assert [tok.token_bytes(i) for i in range(256, 259)] == [b"ab", b"abc", b"bc"]
    assert tok.encode("abc") == [257] and tok.encode("bcabc") == [258, 257]
    assert tok.encode("abc") == reference_encode(tok, "abc")


def test_save_refuses_to_overwrite(tmp_path):
    path = tmp_path / "tok.json"
    path.write_text("precious")
    tok = ByteBPE().train("aaab", 258, special_tokens=(), progress=False)
    with pytest.raises(FileExistsError, match="overwrite=True"):
        tok.save(path)
    assert path.read_text() == "precious"
    tok.save(path, overwrite=True)
    assert ByteBPE.load(path).merges == tok.merges


def _valid_record() -> dict:
    return {"format": "lmcourse.bpe", "version": 1, "class": "ByteBPE", "pattern": GPT2_PATTERN,
            "merges": [[97, 97], [256, 98]], "special_tokens": {EOT: 258}}


@pytest.mark.parametrize("change, match", [
    (lambda r: "not json {", "not valid UTF-8 JSON"),
    (lambda r: [1, 2], "expected a JSON object"),
    (lambda r: {**r, "format": "tiktoken"}, "expected a JSON object"),
    (lambda r: {**r, "version": 2}, "unsupported version 2"),
    (lambda r: {k: v for k, v in r.items() if k != "merges"}, r"missing field\(s\) \['merges'\]"),
    (lambda r: {**r, "pattern": None, "class": "BasicBPE"}, "load it with BasicBPE.load"),
    (lambda r: {**r, "merges": {"a": 1}}, "'merges' must be a list"),
    (lambda r: {**r, "merges": [[97, 97], [1, 2, 3]]}, r"merge 1 is \[1, 2, 3\], not a \[left id"),
    (lambda r: {**r, "merges": [[97, "a"]]}, r"merge 0 is \[97, 'a'\]"),
    (lambda r: {**r, "merges": [[97, 97], [257, 98]]}, r"merge 1 is \[257, 98\], but only ids 0 to 256"),
    (lambda r: {**r, "merges": [[-1, 97]]}, r"merge 0 is \[-1, 97\]"),
    (lambda r: {**r, "special_tokens": [EOT]}, "'special_tokens' must be an object"),
    (lambda r: {**r, "special_tokens": {EOT: 300}}, r"do not follow the 258 byte and merged tokens"),
])
def test_load_names_what_is_wrong(tmp_path, change, match):
    path = tmp_path / "bad.json"
    record = change(_valid_record())
    path.write_text(record if isinstance(record, str) else json.dumps(record), encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        ByteBPE.load(path)


def test_load_of_the_valid_record_and_of_missing_or_binary_files(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text(json.dumps(_valid_record()))
    tok = ByteBPE.load(path)
    assert tok.token_bytes(257) == b"aab" and tok.vocab_size == 259
    with pytest.raises(FileNotFoundError, match="no tokenizer file"):
        ByteBPE.load(tmp_path / "missing.json")
    (tmp_path / "bin").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ValueError, match="not valid UTF-8 JSON"):
        ByteBPE.load(tmp_path / "bin")


# --- errors ----------------------------------------------------------------------------------

def test_training_errors():
    with pytest.raises(ValueError, match="training text is empty"):
        ByteBPE().train("", 300, progress=False)
    with pytest.raises(ValueError, match=r"vocab_size=256 is too small.*1 special token\(s\) already need 257"):
        ByteBPE().train("abc", 256, progress=False)
    with pytest.raises(TypeError, match="ByteBPE.train expects a str, got bytes"):
        ByteBPE().train(b"abc", 300, progress=False)
    with pytest.raises(TypeError, match=r"write \('<s>',\)"):
        ByteBPE().train("abc", 300, special_tokens="<s>", progress=False)
    with pytest.raises(ValueError, match="must be distinct"):
        ByteBPE().train("abc", 300, special_tokens=("<s>", "<s>"), progress=False)
    with pytest.raises(ValueError, match="non-empty str"):
        ByteBPE().train("abc", 300, special_tokens=("",), progress=False)


def test_training_stops_early_when_no_pair_is_left():
    with pytest.warns(UserWarning, match="only 0 merges were possible"):
        ByteBPE().train("a", 400, progress=False)
    with pytest.warns(UserWarning, match="only 2 merges were possible"):  # chunks "a", " b", " c"
        tok = ByteBPE().train("a b c", 400, progress=False)
    assert tok.vocab_size == 259
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ByteBPE().train("a b c", 259, progress=False)  # exactly reachable: no warning


def test_encode_and_decode_errors(trained):
    with pytest.raises(TypeError, match="encode expects a str, got list"):
        trained.encode(["a"])
    with pytest.raises(ValueError, match=r"write \{'<\|endoftext\|>'\}"):
        trained.encode("x", allowed_special=EOT)
    with pytest.raises(ValueError, match=r"\['<pad>'\], which are not special tokens"):
        trained.encode("x", allowed_special={"<pad>"})
    with pytest.raises(IndexError, match="token id 1024 is out of range.*0 to 1023"):
        trained.decode([1, 1024])
    with pytest.raises(IndexError, match="token id -1 is out of range"):
        trained.decode([-1])
    with pytest.raises(TypeError, match="decode expects int ids, got float"):
        trained.decode([1, 2.0])
    with pytest.raises(TypeError, match="decode expects a sequence of int ids, got a str"):
        trained.decode("abc")
    assert trained.decode([0xE2]) == "\ufffd"  # part of a character
    assert trained.decode([]) == "" and trained.encode("") == []
    with pytest.raises(ValueError, match="empty text"):
        compression(trained, "")


def test_repr_and_untrained_tokenizer():
    tok = ByteBPE()
    assert tok.vocab_size == 256 and tok.merges == [] and tok.special_tokens == {}
    assert tok.encode("hé") == [104, 195, 169]
    assert repr(tok) == "ByteBPE(vocab_size=256, merges=0, special_tokens=[])"


# --- a tokenizer built from a vocabulary and merges (how SmolLM2's is loaded) -----------------

def hf_vocab_and_merges(hf: Tokenizer) -> tuple[dict[bytes, int], list[tuple[bytes, bytes]], dict[str, int]]:
    """A trained ``tokenizers`` BPE's vocabulary (bytes -> its ids), merges and special tokens."""
    model = json.loads(hf.to_str())
    specials = {t["content"]: t["id"] for t in model["added_tokens"]}
    vocab = {bytes(CHAR_BYTE[c] for c in token): i for token, i in model["model"]["vocab"].items()
             if token not in specials}
    return vocab, hf_merges_as_bytes(hf), specials


@pytest.fixture(scope="module")
def hf_trained(corpus) -> Tokenizer:
    return train_hf_bpe(corpus.text("train")[:60_000], 1024)


def test_standin_characters_match_gpt2s_table():
    assert bytes_to_unicode() == BYTE_CHAR
    assert unicode_to_bytes("".join(BYTE_CHAR[b] for b in range(256))) == bytes(range(256))
    with pytest.raises(ValueError, match="not one of GPT-2's 256 byte stand-in characters"):
        unicode_to_bytes("Ā\u4e00")


@settings(max_examples=40, deadline=None)
@given(text=st.text(max_size=60))
def test_from_vocab_encodes_as_tokenizers_does_with_its_own_ids(hf_trained, text):
    vocab, merges, specials = hf_vocab_and_merges(hf_trained)
    tok = ByteBPE.from_vocab(vocab, merges, special_tokens=specials)
    assert tok.encode(text) == hf_trained.encode(text).ids
    assert tok.decode(tok.encode(text)) == text


def test_from_vocab_on_the_validation_text(hf_trained, corpus):
    vocab, merges, specials = hf_vocab_and_merges(hf_trained)
    tok = ByteBPE.from_vocab(vocab, merges, special_tokens=specials)
    text = corpus.text("valid")[:20_000]
    assert tok.encode(text) == hf_trained.encode(text).ids
    assert tok.vocab_size == hf_trained.get_vocab_size() and tok.special_tokens == {EOT: 0}
    assert tok.encode(EOT + "a", allowed_special="all")[0] == 0 and tok.decode([0]) == EOT
    assert tok.merges[0] == (vocab[merges[0][0]], vocab[merges[0][1]])
    with pytest.raises(ValueError, match="built by from_vocab"):
        tok.save("never-written.json")


def test_from_vocab_with_our_own_ids_is_the_trained_tokenizer(trained, tmp_path):
    vocab = {trained.token_bytes(i): i for i in range(trained.vocab_size - 1)}
    merges = [(trained.token_bytes(a), trained.token_bytes(b)) for a, b in trained.merges]
    rebuilt = ByteBPE.from_vocab(vocab, merges, special_tokens=trained.special_tokens)
    text = "The tokenizer, rebuilt<|endoftext|> from its files."
    assert rebuilt.encode(text, allowed_special="all") == trained.encode(text, allowed_special="all")
    rebuilt.save(tmp_path / "t.json")
    assert ByteBPE.load(tmp_path / "t.json").merges == trained.merges


def test_from_vocab_pattern_and_errors():
    vocab = {bytes([b]): b for b in range(256)} | {b"ab": 256}
    assert ByteBPE.from_vocab(vocab, [(b"a", b"b")], pattern=None).encode("x ab") == [120, 32, 256]
    assert ByteBPE.from_vocab(vocab, [(b"a", b"b")], pattern=r"\S+|\s+").encode("ab ab") == [256, 32, 256]
    with pytest.raises(ValueError, match="merge 0 is .* neither a byte nor made by an earlier merge"):
        ByteBPE.from_vocab(vocab, [(b"ab", b"c")])
    with pytest.raises(ValueError, match="1 merged token.* not in vocab, e.g. b'ab'"):
        ByteBPE.from_vocab({bytes([b]): b for b in range(256)}, [(b"a", b"b")])
    no_tab = ByteBPE.from_vocab({bytes([b]): b - (b > 9) for b in range(256) if b != 9}, [])
    assert no_tab.encode("a b") == [96, 31, 97] and no_tab.vocab_size == 255
    with pytest.raises(ValueError, match=r"byte 0x09 in '\\t' has no id"):
        no_tab.encode("a\tb")
    with pytest.raises(ValueError, match="share an id"):
        ByteBPE.from_vocab(vocab, [], special_tokens={"<s>": 256})
    with pytest.raises(ValueError, match="the ints 0 to 257"):
        ByteBPE.from_vocab(vocab, [], special_tokens={"<s>": 300})
