"""Tests for lmcourse.data: offline corpora, Wikipedia cleaning, LM batching, the WikiText-2 loader.

No test touches the network: an autouse fixture makes ``requests.get`` fail, and the
download tests replace it with a fake server. Files are written only under tmp_path.
"""

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path

import pytest
import requests
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from lmcourse import data
from lmcourse.data import cleaning
from lmcourse.data import corpus as corpus_module
from lmcourse.data import (
    ChecksumError,
    Corpus,
    DatasetUnavailableError,
    batchify,
    get_batch,
    load_corpus,
    load_wikitext2,
    sentences,
)


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a test tried to use the network")

    monkeypatch.setattr(requests, "get", refuse)


@pytest.fixture(scope="module")
def wiki(tmp_path_factory):
    """The real "wiki" corpus; if this process has not built it yet, its disk cache goes
    to a temporary directory."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("LMCOURSE_CACHE", str(tmp_path_factory.mktemp("cache")))
        return load_corpus("wiki")


# ---------------------------------------------------------------------------
# cache_dir
# ---------------------------------------------------------------------------

def test_cache_dir_respects_env(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"
    monkeypatch.delenv("LMCOURSE_CACHE")
    assert data.cache_dir() == Path.home() / ".cache" / "lmcourse"


# ---------------------------------------------------------------------------
# The offline corpora
# ---------------------------------------------------------------------------

def test_wiki_corpus_splits(wiki):
    assert wiki.name == "wiki"
    sizes = {s: wiki.num_chars(s) for s in data.SPLITS}
    total = sum(sizes.values())
    assert 2_000_000 < total < 3_500_000  # ~2.6M characters of prose
    assert 0.7 < sizes["train"] / total < 0.9
    assert 0.05 < sizes["valid"] / total < 0.15 and 0.05 < sizes["test"] / total < 0.15
    assert not set(wiki.train) & set(wiki.test) and not set(wiki.train) & set(wiki.valid)


def test_wiki_corpus_is_clean_prose(wiki):
    lines = wiki.train + wiki.valid + wiki.test
    assert all(line and line == line.strip() and "\n" not in line for line in lines)
    text = "\n".join(lines)
    for junk in ("[[", "]]", "{{", "}}", "{|", "|}", "<ref", "</", "==", "''", "&nbsp;", "thumb|", "ISBN"):
        assert junk not in text, junk
    assert text.count("|") <= 2  # the ASCII article names the character; Pashto has one stray
    assert wiki.train[0].startswith("Anarchism is a political philosophy")
    assert any(line.startswith("Alabama is a state") for line in wiki.test)  # split by article
    assert text.count("  ") == 0


def test_load_corpus_returns_the_same_object(wiki):
    assert load_corpus("wiki") is wiki
    assert load_corpus() is wiki
    assert load_corpus(name="wiki") is wiki


def test_corpus_text_and_num_chars(wiki):
    for split in data.SPLITS:
        assert wiki.num_chars(split) == len(wiki.text(split))
    assert wiki.text("test").split("\n") == wiki.test
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        wiki.text("dev")
    with pytest.raises(ValueError, match="unknown split"):
        wiki.num_chars("training")


def test_corpus_repr_is_short(wiki):
    assert repr(wiki).startswith("Corpus(name='wiki', train=")
    assert len(repr(wiki)) < 100


def test_lee_corpus(monkeypatch, tmp_path):
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))
    lee = load_corpus("lee")
    assert lee is load_corpus("lee") and lee.name == "lee"
    assert len(lee.train) + len(lee.valid) + len(lee.test) == 293  # 300 lines, 7 exact repeats
    assert 0.7 < lee.num_chars("train") / sum(lee.num_chars(s) for s in data.SPLITS) < 0.9
    openings = [{line[:100] for line in getattr(lee, s)} for s in data.SPLITS]
    assert not openings[0] & openings[1] and not openings[0] & openings[2]  # near-duplicates together
    rebuilt = corpus_module._load_corpus_from("lee", data.gensim_datapath(corpus_module._LEE_FILE), tmp_path / "c")
    assert rebuilt == lee
    assert list((tmp_path / "c" / "corpora").glob("lee-5d78d6dafd953bbf-v*.json"))


@pytest.mark.parametrize("name", ["wikipedia", "Wiki", "", None])
def test_unknown_corpus_name(name):
    with pytest.raises(ValueError, match="available: wiki, lee"):
        load_corpus(name)


def test_missing_source_file(monkeypatch):
    with pytest.raises(FileNotFoundError, match="no-such-file.bz2"):
        data.gensim_datapath("no-such-file.bz2")
    monkeypatch.setattr(corpus_module.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match="pip install gensim"):
        data.gensim_datapath(corpus_module._WIKI_FILE)


# -- disk cache --------------------------------------------------------------

def _write_lee_like(path: Path, n: int = 60) -> Path:
    lines = [f"Article number {i} says something about topic {i % 7}. It ends here." for i in range(n)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_disk_cache_is_written_then_read(monkeypatch, tmp_path):
    source = _write_lee_like(tmp_path / "src.cor")
    first = corpus_module._load_corpus_from("lee", source, tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache" / "corpora").glob("*.json")
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    assert digest[:16] in cache_file.name
    assert json.loads(cache_file.read_text())["source_sha256"] == digest

    def must_not_rebuild(path):
        raise AssertionError("rebuilt although the cache was there")

    monkeypatch.setitem(corpus_module._SOURCES, "lee", (corpus_module._LEE_FILE, must_not_rebuild))
    second = corpus_module._load_corpus_from("lee", source, tmp_path / "cache")
    assert second == first
    assert not [p for p in cache_file.parent.iterdir() if p.name.startswith(".")]  # no temp files


def test_disk_cache_is_keyed_by_source_checksum(tmp_path):
    a = corpus_module._load_corpus_from("lee", _write_lee_like(tmp_path / "a.cor", 60), tmp_path / "cache")
    b = corpus_module._load_corpus_from("lee", _write_lee_like(tmp_path / "b.cor", 80), tmp_path / "cache")
    assert len(list((tmp_path / "cache" / "corpora").glob("*.json"))) == 2
    assert sum(len(getattr(b, s)) for s in data.SPLITS) == 80 != sum(len(getattr(a, s)) for s in data.SPLITS)


def test_damaged_cache_is_rebuilt(tmp_path):
    source = _write_lee_like(tmp_path / "src.cor")
    good = corpus_module._load_corpus_from("lee", source, tmp_path / "cache")
    (cache_file,) = (tmp_path / "cache" / "corpora").glob("*.json")
    cache_file.write_text('{"truncated": ')
    assert corpus_module._load_corpus_from("lee", source, tmp_path / "cache") == good
    json.loads(cache_file.read_text())  # rewritten whole


def test_unwritable_cache_warns_but_loads(monkeypatch, tmp_path):
    source = _write_lee_like(tmp_path / "src.cor")
    blocker = tmp_path / "file-not-dir"
    blocker.write_text("")
    with pytest.warns(UserWarning, match="could not write the corpus cache"):
        loaded = corpus_module._load_corpus_from("lee", source, blocker)
    assert loaded.train


def test_atomic_write_leaves_nothing_on_failure(monkeypatch, tmp_path):
    target = tmp_path / "out.json"

    def fail(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError, match="disk full"):
        corpus_module.atomic_write_text(target, "x" * 1000)
    assert list(tmp_path.iterdir()) == []


# -- Corpus.from_documents and the split rule --------------------------------

def _docs(n):
    return [(f"doc{i}", [f"Line one of {i}.", f"Line two of {i}."]) for i in range(n)]


def test_from_documents_keeps_documents_whole():
    corpus = Corpus.from_documents("toy", _docs(100))
    for i in range(100):
        split = corpus_module._split_of(f"doc{i}")
        assert f"Line one of {i}." in getattr(corpus, split)
        assert f"Line two of {i}." in getattr(corpus, split)
    counts = [len(getattr(corpus, s)) // 2 for s in data.SPLITS]
    assert sum(counts) == 100 and counts[0] > 60


def test_split_is_stable():
    # Pinned: changing the rule would silently change every chapter's held-out text.
    assert [corpus_module._split_of(k) for k in ("Anarchism", "Alabama", "Autism", "Aikido")] == [
        "train", "test", "valid", "test"]


def test_from_documents_cleans_lines():
    docs = [(k, ["  padded  ", "", "two\nlines", "   "]) for k, _ in _docs(60)]
    corpus = Corpus.from_documents("toy", docs)
    lines = corpus.train + corpus.valid + corpus.test
    assert set(lines) == {"padded", "two", "lines"}


def test_from_documents_rejects_bad_input():
    with pytest.raises(ValueError, match="got no text from 0 document"):
        Corpus.from_documents("empty", [])
    with pytest.raises(ValueError, match="got no text"):
        Corpus.from_documents("blank", [(f"d{i}", ["", "  "]) for i in range(100)])
    with pytest.raises(ValueError, match="got no text from 3 document"):
        Corpus.from_documents("few", _docs(3))
    with pytest.raises(TypeError, match="one str"):
        Corpus.from_documents("str", [("d", "a whole text")])
    with pytest.raises(ValueError, match="duplicate document key 'doc0'"):
        Corpus.from_documents("dup", _docs(50) + _docs(1))


# -- the wikitext cleaner ----------------------------------------------------

ARTICLE = """{{Infobox animal|name=Aardvark|image=x.jpg}}
'''Aardvark''' (''Orycteropus afer'') is a [[mammal|burrowing mammal]] native to [[Africa]].<ref>{{cite book|title=Mammals}}</ref> It is nocturnal.
[[File:Aardvark.jpg|thumb|An aardvark in a [[zoo]] at night]]

== Description ==
The aardvark is vaguely pig-like in appearance, with a long snout.<ref name="a"/>
{| class="wikitable"
|-
! Name !! Mass
|-
| Adult || 60 kg
|}
* A short list item.
* A list item that is long enough to be kept as a sentence.
=== Diet ===
It feeds almost exclusively on ants and termites (; ).

== References ==
{{Reflist}}
* Smith, J. (1999). ''Aardvarks of the world''. Some Press. Many more words here in this reference line.
== External links ==
* [http://example.org An aardvark website with plenty of words in its description.]
[[Category:Mammals]]
"""


def test_clean_wiki_article_known_answer():
    assert cleaning.clean_wiki_article(ARTICLE) == [
        "Aardvark (Orycteropus afer) is a burrowing mammal native to Africa. It is nocturnal.",
        "The aardvark is vaguely pig-like in appearance, with a long snout.",
        "A list item that is long enough to be kept as a sentence.",
        "It feeds almost exclusively on ants and termites.",
    ]


def _page(title, text):
    from xml.sax.saxutils import escape
    return (f"<page><title>{escape(title)}</title><ns>0</ns><id>1</id>"
            f"<revision><text>{escape(text)}</text></revision></page>")


def test_wiki_documents_drops_redirects_disambiguation_and_stubs(tmp_path):
    import bz2
    prose = "The aardvark is a nocturnal mammal that lives in burrows and eats ants. " * 8
    xml = ('<mediawiki xmlns="http://www.mediawiki.org/xml/export-0.10/">'
           "<siteinfo><sitename>Wikipedia</sitename></siteinfo>"
           + _page("Aardvark", prose + "\n" + ARTICLE)
           + _page("AardvarK", "#REDIRECT [[Aardvark]]")
           + _page("Aardvark (disambiguation)", prose)
           + _page("Stub", "The stub article has just one short sentence in it.")
           + "</mediawiki>")
    path = tmp_path / "dump.xml.bz2"
    path.write_bytes(bz2.compress(xml.encode("utf-8")))
    ((title, paragraphs),) = cleaning.wiki_documents(path)
    assert title == "Aardvark"
    assert paragraphs == [prose.strip()] + cleaning.clean_wiki_article(ARTICLE)


def test_clean_wiki_article_empty():
    assert cleaning.clean_wiki_article("") == []
    assert cleaning.clean_wiki_article("{{stub}}\n[[Category:X]]") == []


# -- sentences ---------------------------------------------------------------

@pytest.mark.parametrize("lines, expected", [
    ([], []),
    ([""], []),
    (["One. Two."], ["One.", "Two."]),
    (['He said "Stop." Then he left.'], ['He said "Stop."', "Then he left."]),
    (["Mr. Smith met J. R. Tolkien in 1950. Did he?"], ["Mr. Smith met J. R. Tolkien in 1950.", "Did he?"]),
    (["The value is 3.5 here. Next, i.e. later."], ["The value is 3.5 here.", "Next, i.e. later."]),
    (["First line.", "Second line! Third."], ["First line.", "Second line!", "Third."]),
])
def test_sentences(lines, expected):
    assert sentences(lines) == expected


def test_sentences_rejects_a_single_string():
    with pytest.raises(TypeError, match="not one str"):
        sentences("One. Two.")


# ---------------------------------------------------------------------------
# Batching
# ---------------------------------------------------------------------------

def test_batchify_matches_the_pytorch_example():
    data_ = torch.arange(103)
    out = batchify(data_, 4)
    assert out.shape == (25, 4)
    assert out.is_contiguous()
    expected = data_.narrow(0, 0, 100).view(4, -1).t().contiguous()  # the example's code
    assert torch.equal(out, expected)
    assert torch.equal(out[:, 1], torch.arange(25, 50))  # column b: the b-th slice


@pytest.mark.parametrize("bad, error, message", [
    (torch.arange(10.0), TypeError, "dtype torch.float32"),
    (torch.arange(10, dtype=torch.int32), TypeError, "dtype torch.int32"),
    ([1, 2, 3, 4], TypeError, "got list"),
    (torch.arange(12).view(3, 4), ValueError, r"got shape \(3, 4\)"),
    (torch.tensor(5), ValueError, r"got shape \(\)"),
])
def test_batchify_rejects_bad_data(bad, error, message):
    with pytest.raises(error, match=message):
        batchify(bad, 2)


@pytest.mark.parametrize("batch_size", [0, -1, 2.0, True, "2"])
def test_batchify_rejects_bad_batch_size(batch_size):
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        batchify(torch.arange(10), batch_size)


@pytest.mark.parametrize("n, batch_size", [(0, 1), (1, 1), (5, 3), (9, 5)])
def test_batchify_rejects_too_little_data(n, batch_size):
    with pytest.raises(ValueError, match="too few"):
        batchify(torch.arange(n), batch_size)


def test_get_batch_shapes_and_targets():
    source = batchify(torch.arange(40), 4)  # (10, 4)
    x, y = get_batch(source, 0, 3)
    assert x.shape == (3, 4) and y.shape == (12,)
    assert torch.equal(y, source[1:4].reshape(-1))
    x, y = get_batch(source, 7, 5)  # the last batch is shorter: rows 7, 8 -> targets 8, 9
    assert x.shape == (2, 4) and y.shape == (8,)
    assert torch.equal(x + 1, y.view(2, 4))  # ids are consecutive within a column


@settings(max_examples=50, deadline=None)
@given(n=st.integers(2, 300), batch_size=st.integers(1, 8), bptt=st.integers(1, 12))
def test_batches_cover_each_stream_once(n, batch_size, bptt):
    if n // batch_size < 2:
        return
    source = batchify(torch.arange(n), batch_size)
    inputs, targets = [], []
    for i in range(0, source.size(0) - 1, bptt):
        x, y = get_batch(source, i, bptt)
        inputs.append(x)
        targets.append(y.view(-1, batch_size))
    assert torch.equal(torch.cat(inputs), source[:-1])
    assert torch.equal(torch.cat(targets), source[1:])


@pytest.mark.parametrize("i", [-1, 9, 10, 2.0, None])
def test_get_batch_rejects_bad_index(i):
    source = batchify(torch.arange(40), 4)  # (10, 4): valid i are 0..8
    with pytest.raises(IndexError, match="out of range"):
        get_batch(source, i, 3)


def test_get_batch_rejects_bad_source_and_bptt():
    with pytest.raises(ValueError, match=r"\(T, B\) tensor from batchify, got shape \(40,\)"):
        get_batch(torch.arange(40), 0, 3)
    with pytest.raises(ValueError, match="got list"):
        get_batch([[1, 2], [3, 4]], 0, 3)
    with pytest.raises(ValueError, match="bptt must be a positive int"):
        get_batch(batchify(torch.arange(40), 4), 0, 0)


# ---------------------------------------------------------------------------
# WikiText-2 (tested on a tiny archive with the same layout)
# ---------------------------------------------------------------------------

TINY = {
    "train": [
        "",
        " = Valkyria Chronicles III = ",
        "",
        " Senjō no Valkyria 3 : <unk> Chronicles is a tactical role @-@ playing video game . ",
        "",
        " = = Gameplay = = ",
        "",
        " The game sold 1 @,@ 000 copies in its first week . ",
    ],
    "valid": ["", " = Homarus gammarus = ", "", " Homarus gammarus is a species of lobster . ",
              " Odd\tspacing\u2028and\rcontrol characters stay inside their line . "],
    "test": ["", " = Robert Boulter = ", "", " Robert Boulter is an English actor . "],
}


def _tiny_zip_bytes(members=None) -> bytes:
    members = members or {f"wikitext-2/wiki.{s}.tokens": "\n".join(lines) + "\n" for s, lines in TINY.items()}
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text.encode("utf-8"))
    return buf.getvalue()


@pytest.fixture
def tiny_zip():
    blob = _tiny_zip_bytes()
    return blob, hashlib.md5(blob).hexdigest()


def test_wikitext2_extracts_and_reads(tmp_path, tiny_zip):
    blob, md5 = tiny_zip
    (tmp_path / "wikitext-2-v1.zip").write_bytes(blob)
    out = load_wikitext2(tmp_path, download=False, md5=md5)
    assert out == TINY  # every line, blank ones and leading spaces kept
    assert (tmp_path / "wikitext-2" / "wiki.valid.tokens").is_file()
    (tmp_path / "wikitext-2-v1.zip").unlink()  # extracted files are enough from now on
    assert load_wikitext2(tmp_path, download=False, md5=md5) == TINY


def test_wikitext2_default_root_is_the_cache(monkeypatch, tmp_path, tiny_zip):
    blob, md5 = tiny_zip
    monkeypatch.setenv("LMCOURSE_CACHE", str(tmp_path))
    (tmp_path / "wikitext-2-v1.zip").write_bytes(blob)
    assert load_wikitext2(md5=md5)["test"] == TINY["test"]


def test_wikitext2_checksum_mismatch(tmp_path, tiny_zip):
    blob, md5 = tiny_zip
    zip_path = tmp_path / "wikitext-2-v1.zip"
    zip_path.write_bytes(blob)
    with pytest.raises(ChecksumError, match=f"has MD5 {md5}, expected {'0' * 32}"):
        load_wikitext2(tmp_path, md5="0" * 32)
    assert not zip_path.exists() and (tmp_path / "wikitext-2-v1.zip.bad").read_bytes() == blob
    assert not (tmp_path / "wikitext-2").exists()
    zip_path.write_bytes(b"another bad copy")  # a second bad file does not overwrite the first
    with pytest.raises(ChecksumError, match="renamed to .*wikitext-2-v1.zip.bad1"):
        load_wikitext2(tmp_path, md5=md5)
    assert (tmp_path / "wikitext-2-v1.zip.bad").read_bytes() == blob


def test_wikitext2_not_there_and_no_download(tmp_path):
    with pytest.raises(DatasetUnavailableError) as info:
        load_wikitext2(tmp_path / "empty", download=False)
    message = str(info.value)
    assert "download=False" in message
    assert str(tmp_path / "empty" / "wikitext-2-v1.zip") in message
    assert data.WIKITEXT2_MD5 in message and data.WIKITEXT2_URLS[0] in message
    assert isinstance(info.value, RuntimeError)
    assert not (tmp_path / "empty").exists()


def test_wikitext2_offline(monkeypatch, tmp_path):
    calls = []

    def offline(url, **kwargs):
        calls.append(url)
        raise requests.ConnectionError("Name or service not known")

    monkeypatch.setattr(requests, "get", offline)
    with pytest.raises(DatasetUnavailableError, match="the download failed") as info:
        load_wikitext2(tmp_path)
    assert calls == list(data.WIKITEXT2_URLS)
    message = str(info.value)
    assert "ConnectionError" in message and str(tmp_path / "wikitext-2-v1.zip") in message
    assert list(tmp_path.iterdir()) == []  # no partial files left behind


class FakeResponse:
    def __init__(self, blob, status=200):
        self.blob, self.status_code = blob, status
        self.headers = {"content-length": str(len(blob))}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def raise_for_status(self):
        if self.status_code >= 400:
            raise requests.HTTPError(f"{self.status_code} Client Error: Forbidden")

    def iter_content(self, chunk_size=1):
        for i in range(0, len(self.blob), chunk_size):
            yield self.blob[i : i + chunk_size]


def test_wikitext2_download(monkeypatch, tmp_path, tiny_zip):
    blob, md5 = tiny_zip
    seen = {}

    def serve(url, **kwargs):
        seen.update(kwargs, url=url)
        return FakeResponse(blob)

    monkeypatch.setattr(requests, "get", serve)
    assert load_wikitext2(tmp_path / "root", md5=md5) == TINY
    assert seen["url"] == data.WIKITEXT2_URLS[0]
    assert seen["stream"] is True and seen["timeout"] > 0
    assert (tmp_path / "root" / "wikitext-2-v1.zip").read_bytes() == blob


def test_wikitext2_download_falls_back_and_rejects_bad_bytes(monkeypatch, tmp_path, tiny_zip):
    blob, md5 = tiny_zip
    responses = iter([FakeResponse(b"", status=403), FakeResponse(b"<html>not a zip</html>")])
    monkeypatch.setattr(requests, "get", lambda url, **kw: next(responses))
    with pytest.raises(DatasetUnavailableError) as info:
        load_wikitext2(tmp_path, md5=md5)
    message = str(info.value)
    assert "403" in message and "ChecksumError" in message
    assert not (tmp_path / "wikitext-2-v1.zip").exists()  # a bad download is never used
    assert [p.name.endswith(".bad") for p in tmp_path.iterdir()] == [True]


def test_wikitext2_archive_without_expected_member(tmp_path):
    blob = _tiny_zip_bytes({"other/wiki.train.tokens": "x\n"})
    (tmp_path / "wikitext-2-v1.zip").write_bytes(blob)
    with pytest.raises(DatasetUnavailableError, match="no member 'wikitext-2/wiki.train.tokens'"):
        load_wikitext2(tmp_path, md5=hashlib.md5(blob).hexdigest())


def test_tokenized_sentences_drop_empty_and_use_basic_english():
    from lmcourse.data import tokenized_sentences
    assert tokenized_sentences(["Hello, World. ", "", "Bye!"]) == [["hello", ",", "world", "."], ["bye", "!"]]
    assert tokenized_sentences([]) == []


def test_token_stream_predicts_the_same_tokens_as_the_ngram_models():
    from lmcourse.data import token_stream
    from lmcourse.ngram import NGramCounts
    sents = [["the", "cat"], ["a", "dog", "barked"]]
    vocab = NGramCounts(sents, order=1).vocab
    stream = token_stream(sents + [["zebra"]], vocab)
    # every word and one </s> per sentence is a target: len(stream) - 1 targets
    assert len(stream) - 1 == sum(len(s) + 1 for s in sents) + 2
    assert stream[0] == vocab["</s>"] and stream[-1] == vocab["</s>"] and stream[-2] == vocab["<unk>"]


@pytest.mark.parametrize("bad", ["the cat", [["ok"], "not a list"], 5])
def test_token_stream_rejects_untokenized_input(bad):
    from lmcourse.data import token_stream
    from lmcourse.text import Vocab
    with pytest.raises(TypeError, match="tokenized sentences"):
        token_stream(bad, Vocab(["<unk>", "</s>"], default_index=0))


def test_token_stream_needs_eos_in_vocab_and_some_sentences():
    from lmcourse.data import token_stream
    from lmcourse.text import Vocab
    with pytest.raises(ValueError, match="not in the vocabulary"):
        token_stream([["a"]], Vocab(["<unk>", "a"], default_index=0))
    with pytest.raises(ValueError, match="no sentences"):
        token_stream([], Vocab(["<unk>", "</s>"], default_index=0))


def test_data_file_finds_the_repository_files_and_names_a_missing_one():
    from lmcourse.data import data_file

    assert data_file("wiki_wordpiece_8000.txt").read_text(encoding="utf-8").splitlines()[:2] == ["[PAD]", "[UNK]"]
    with pytest.raises(FileNotFoundError, match="no_such_file.txt does not exist.*data/README.md"):
        data_file("no_such_file.txt")


def test_documents_join_into_the_corpus_splits():
    from lmcourse.data import load_documents

    corpus = load_corpus("wiki")
    everything = load_documents("wiki")
    assert len(everything) == 96 and len({title for title, _ in everything}) == 96
    for split in ("train", "valid", "test"):
        documents = load_documents("wiki", split)
        assert [line for _, lines in documents for line in lines] == getattr(corpus, split)
    assert [title for title, _ in load_documents("wiki", "test")][:2] == ["Alabama", "Animation"]
    with pytest.raises(ValueError, match="unknown split"):
        load_documents("wiki", "dev")
    with pytest.raises(ValueError, match="unknown corpus"):
        load_documents("wikipedia")
