"""From a corpus's lines to what a language model reads: sentences, tokenized sentences, one
stream of ids, and the (T, B) batches of PyTorch's ``word_language_model`` example.

Chapter 1 (Background) introduces these steps; Chapter 2's n-gram models read
:func:`tokenized_sentences`, the neural models of Chapters 3-4 read :func:`token_stream` cut
by :func:`batchify` and :func:`get_batch`, so every model predicts the same tokens. Left out:
shuffling and streaming corpora too large for memory.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import torch

from lmcourse._checks import check_positive_int, is_int
from lmcourse.text import Vocab, get_tokenizer

__all__ = ["sentences", "tokenized_sentences", "token_stream", "batchify", "get_batch"]


_RE_SENTENCE_END = re.compile(
    r"(?:(?<=[.!?])|(?<=[.!?][\"')\]]))"  # after . ! ? and an optional closing quote
    r"(?<!\bMr\.)(?<!\bMrs\.)(?<!\bDr\.)(?<!\bSt\.)(?<!\bJr\.)(?<!\bSr\.)(?<!\bvs\.)"
    r"(?<!\b[A-Z]\.)"  # not after an initial such as "J."
    r"\s+(?=[\"'(\[]?[A-Z0-9])"  # before a capital letter or digit
)


def sentences(lines: Iterable[str]) -> list[str]:
    """Split paragraph lines into sentences with a regular expression.

    A rough splitter: it breaks after ``.``, ``!`` or ``?`` followed by a capital or a
    digit, and knows only a few abbreviations.

    >>> sentences(["Dr. Who came. He saw! Did he win? Yes."])
    ['Dr. Who came.', 'He saw!', 'Did he win?', 'Yes.']
    """
    if isinstance(lines, str):
        raise TypeError("sentences() takes an iterable of lines, not one str; wrap it: [text]")
    out = []
    for line in lines:
        out.extend(s for s in (p.strip() for p in _RE_SENTENCE_END.split(line)) if s)
    return out


def tokenized_sentences(lines: Iterable[str], tokenizer: str = "basic_english") -> list[list[str]]:
    """The sentences of ``lines``, each a list of tokens; sentences with no tokens are dropped.

    >>> tokenized_sentences(["The cat sat. It purred!"])
    [['the', 'cat', 'sat', '.'], ['it', 'purred', '!']]
    """
    tokenize = get_tokenizer(tokenizer)
    return [tokens for s in sentences(lines) if (tokens := tokenize(s))]


def token_stream(sentences_: Sequence[Sequence[str]], vocab: Vocab, eos: str = "</s>") -> torch.Tensor:
    """One 1-D LongTensor of ids: ``eos``, then each sentence followed by ``eos``.

    The leading ``eos`` is the context of the first word, so a model that reads the stream predicts
    every word and every closing ``eos``: the same tokens the n-gram models of Chapter 2 predict.
    Words missing from ``vocab`` take its default index (set one, e.g. for ``"<unk>"``).

    >>> v = Vocab(["<unk>", "</s>", "a", "b"], default_index=0)
    >>> token_stream([["a", "b"], ["b", "z"]], v).tolist()
    [1, 2, 3, 1, 3, 0, 1]
    """
    if not isinstance(sentences_, Sequence) or isinstance(sentences_, (str, bytes)) or not all(
            isinstance(s, Sequence) and not isinstance(s, (str, bytes)) for s in sentences_):
        raise TypeError("token_stream needs a list of tokenized sentences (lists of str), e.g. "
                        "tokenized_sentences(corpus.train)")
    if eos not in vocab:
        raise ValueError(f"{eos!r} is not in the vocabulary; add it (e.g. as a special) or pass eos=...")
    eos_id = vocab[eos]
    ids = [eos_id]
    for sentence in sentences_:
        ids += vocab.lookup_indices(list(sentence))
        ids.append(eos_id)
    if len(ids) < 2:
        raise ValueError("token_stream got no sentences; pass at least one tokenized sentence")
    return torch.tensor(ids, dtype=torch.long)


def batchify(data: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Cut a 1-D stream of token ids into `batch_size` parallel streams.

    Drops the tokens that do not fill a whole row; column ``b`` is the ``b``-th
    contiguous slice of the stream.

    >>> batchify(torch.arange(11), 2)  # 11 tokens -> (5, 2); token 10 is dropped
    tensor([[0, 5],
            [1, 6],
            [2, 7],
            [3, 8],
            [4, 9]])
    """
    if not isinstance(data, torch.Tensor) or data.dtype != torch.long:
        got = f"a tensor of dtype {data.dtype}" if isinstance(data, torch.Tensor) else type(data).__name__
        raise TypeError(f"batchify needs a 1-D LongTensor of token ids, got {got}")
    if data.dim() != 1:
        raise ValueError(f"batchify needs a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    check_positive_int("batch_size", batch_size)
    n_steps = data.numel() // batch_size
    if n_steps < 2:
        raise ValueError(
            f"{data.numel()} tokens are too few for batch_size={batch_size}: need at least "
            f"{2 * batch_size} (two time steps: one input and its next-token target)")
    data = data[: n_steps * batch_size]  # (N,) trimmed to a multiple of B
    return data.view(batch_size, n_steps).t().contiguous()  # (B, T) -> (T, B)


def get_batch(source: torch.Tensor, i: int, bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``i : i+T`` of a batchified `source` as input, the rows after them as target.

    ``T = min(bptt, len(source) - 1 - i)``, so the last batch may be shorter. Returns
    ``input`` of shape ``(T, B)`` and ``target`` of shape ``(T*B,)``: rows
    ``i+1 : i+1+T`` flattened, ready for ``F.cross_entropy(logits.view(-1, V), target)``.

    >>> x, y = get_batch(batchify(torch.arange(10), 2), 0, bptt=3)
    >>> x.shape, y.tolist()
    (torch.Size([3, 2]), [1, 6, 2, 7, 3, 8])
    """
    if not isinstance(source, torch.Tensor) or source.dim() != 2:
        got = f"shape {tuple(source.shape)}" if isinstance(source, torch.Tensor) else type(source).__name__
        raise ValueError(f"get_batch needs a (T, B) tensor from batchify, got {got}")
    check_positive_int("bptt", bptt)
    if not is_int(i) or not 0 <= i < len(source) - 1:
        raise IndexError(
            f"i={i!r} out of range: source has {len(source)} steps, so 0 <= i <= {len(source) - 2}")
    seq_len = min(bptt, len(source) - 1 - i)
    inputs = source[i : i + seq_len]  # (T, B)
    target = source[i + 1 : i + 1 + seq_len].reshape(-1)  # (T, B) -> (T*B,)
    return inputs, target
