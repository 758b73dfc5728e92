"""Text to train and test language models on, and the batching that feeds it to them.

Chapter 1 (Background) introduces these pieces; every later chapter uses them, so that
all models in the book are compared on the same held-out text. One module per idea:

- :mod:`~lmcourse.data.corpus`: the **offline corpora**. :func:`load_corpus` returns a
  :class:`Corpus` with fixed train/valid/test splits made *by document*: ``"wiki"`` (96
  English Wikipedia articles from gensim's test data) and ``"lee"`` (293 short news articles,
  also from gensim's test data). No network is needed. :func:`load_documents` gives the same text
  as ``(title, paragraphs)`` per document. Also :func:`data_file` (the
  repository's ``data/`` folder), :func:`cache_dir` and :func:`gensim_datapath`.
- :mod:`~lmcourse.data.cleaning`: **Wikipedia markup** stripped down to paragraphs of prose.
- :mod:`~lmcourse.data.batching`: **sentences and LM batching**. :func:`sentences` splits
  paragraphs with a small regular expression; :func:`tokenized_sentences` is what the n-gram
  models read and :func:`token_stream` what the neural models read (the same tokens, each
  sentence closed by ``"</s>"``, so every model predicts the same tokens); :func:`batchify` and
  :func:`get_batch` cut the stream as PyTorch's ``word_language_model`` example does.
- :mod:`~lmcourse.data.downloads`: **WikiText-2**. :func:`load_wikitext2` downloads the
  standard benchmark once, checks its MD5 and caches it; offline it fails with a message
  saying where to put the file.
- **A language with a known entropy rate**: :class:`MarkovSource` (defined in
  :mod:`lmcourse.markov`, re-exported here).

Left out: tokenization (see :mod:`lmcourse.text` and :mod:`lmcourse.bpe`), streaming of
corpora too large for memory, and shuffling.
"""

from lmcourse.data.batching import batchify, get_batch, sentences, token_stream, tokenized_sentences
from lmcourse.data.corpus import (CORPUS_NAMES, SPLITS, Corpus, cache_dir, data_file, gensim_datapath,
                                  load_corpus, load_documents)
from lmcourse.data.downloads import (WIKITEXT2_MD5, WIKITEXT2_URLS, ChecksumError, DatasetUnavailableError,
                                     load_wikitext2)
from lmcourse.markov import MarkovSource

__all__ = [
    "SPLITS", "CORPUS_NAMES", "Corpus", "load_corpus", "load_documents", "cache_dir", "data_file", "gensim_datapath",
    "sentences", "tokenized_sentences", "token_stream", "batchify", "get_batch", "MarkovSource",
    "load_wikitext2", "DatasetUnavailableError", "ChecksumError",
    "WIKITEXT2_URLS", "WIKITEXT2_MD5",
]
