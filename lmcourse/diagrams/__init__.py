"""Architecture diagrams of Chapters 3a to 11, drawn from code so that they can be rebuilt and checked.

Each ``draw_*`` function draws one diagram and returns a :class:`matplotlib.figure.Figure`;
:data:`DIAGRAMS` names the file each one is committed as in ``chapters/figures/``, where the chapters
show it with a MyST ``{figure}``. Rebuild them all with ``python -m lmcourse.diagrams chapters/figures``;
``tests/test_diagrams.py`` checks that the committed files equal a fresh render.

One colour stands for one kind of thing in every diagram (``_draw.PALETTE``): embeddings green,
attention blue, feed-forward layers orange, normalisation purple, residual sums and element-wise
products yellow, recurrent states and caches grey, outputs red. Shape letters follow the book's
notation appendix (B, T, C, H, D; L and S for queries and keys).
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from matplotlib.figure import Figure

from lmcourse.diagrams._draw import save, svg_bytes
from lmcourse.diagrams.adapt import draw_dpo, draw_lora
from lmcourse.diagrams.apps import draw_classifiers, draw_rag
from lmcourse.diagrams.challenges import draw_prompt_injection
from lmcourse.diagrams.attention import draw_multi_head, draw_scaled_dot_product, draw_seq2seq_attention
from lmcourse.diagrams.neural import draw_bengio_ffnn, draw_lstm_cell, draw_rnn_unrolled, draw_skipgram
from lmcourse.diagrams.scaling import (draw_data_parallel, draw_distillation, draw_float_formats, draw_ring_all_reduce,
                                       draw_zero_sharding)
from lmcourse.diagrams.transformer import draw_bert_input, draw_kv_cache, draw_transformer_block

__all__ = ["DIAGRAMS", "write_all", "svg_bytes", "draw_bengio_ffnn", "draw_skipgram", "draw_rnn_unrolled",
           "draw_lstm_cell", "draw_seq2seq_attention", "draw_scaled_dot_product", "draw_multi_head",
           "draw_transformer_block", "draw_bert_input", "draw_kv_cache", "draw_lora", "draw_dpo", "draw_classifiers",
           "draw_rag", "draw_data_parallel", "draw_ring_all_reduce", "draw_float_formats",
           "draw_zero_sharding", "draw_distillation", "draw_prompt_injection"]

# file name (without .svg) -> the function that draws it; the prefix is the chapter that shows it
DIAGRAMS: dict[str, Callable[[], Figure]] = {
    "03a_skipgram": draw_skipgram,
    "03a_bengio_ffnn": draw_bengio_ffnn,
    "03b_rnn_unrolled": draw_rnn_unrolled,
    "03b_lstm_cell": draw_lstm_cell,
    "04a_seq2seq_attention": draw_seq2seq_attention,
    "04a_scaled_dot_product": draw_scaled_dot_product,
    "04a_multi_head": draw_multi_head,
    "04b_transformer_block": draw_transformer_block,
    "05_bert_input": draw_bert_input,
    "06_kv_cache": draw_kv_cache,
    "08_lora": draw_lora,
    "08_dpo": draw_dpo,
    "09a_classifiers": draw_classifiers,
    "09b_rag": draw_rag,
    "10_data_parallel": draw_data_parallel,
    "10_ring_all_reduce": draw_ring_all_reduce,
    "10_float_formats": draw_float_formats,
    "10_zero_sharding": draw_zero_sharding,
    "10_distillation": draw_distillation,
    "11_prompt_injection": draw_prompt_injection,
}


def write_all(outdir: str | Path) -> list[Path]:
    """Draw every diagram and write it to `outdir` as ``NAME.svg``; return the paths written."""
    outdir = Path(outdir)
    outdir.mkdir(parents=True, exist_ok=True)
    return [save(draw(), outdir / f"{name}.svg") for name, draw in DIAGRAMS.items()]
