"""Byte-level byte-pair encoding (BPE) as GPT-2 uses it: learn merges from text, encode, decode; and
GPT-2-style tokenizers (SmolLM2's) loaded from their vocabulary and merges.

Chapter 6 (GPT) builds it. BPE (Gage, 1994; brought to NLP by Sennrich et al., 2016) starts from
single symbols and keeps merging the most frequent adjacent pair into a new symbol. GPT-2 (Radford
et al., 2019) runs it on UTF-8 *bytes*, so any string can be encoded with only 256 base tokens and
no unknown token, and it first cuts the text into chunks with a regular expression
(:data:`GPT2_PATTERN`: contractions, letters, digits, other symbols, whitespace) and never merges
across chunks: " dog." and " dog!" both start with the chunk " dog", which is encoded the same way
in both, and no token spans two words. One module per idea:

- :mod:`~lmcourse.bpe.merging`: :func:`pair_counts` and :func:`merge`, the two steps of BPE on a
  list of ids.
- :mod:`~lmcourse.bpe.pretokenize`: :data:`GPT2_PATTERN` and cutting out special tokens.
- :mod:`~lmcourse.bpe.training`: learning the merges (the rules are below).
- :mod:`~lmcourse.bpe.tokenizer`: :class:`ByteBPE` trains, encodes, decodes, and saves and loads
  itself as JSON (:mod:`~lmcourse.bpe.files`). Ids 0-255 are the bytes, then come the merged tokens
  in the order they were learned, then the special tokens (``<|endoftext|>``), as in GPT-2's
  vocabulary. :class:`BasicBPE` is the same without pre-tokenization (the whole text is one chunk),
  to show what the regular expression buys.
- :mod:`~lmcourse.bpe.gpt2_chars`: GPT-2's printable stand-ins for bytes (``"Ġ"`` for a space),
  the spelling of tokens in GPT-2-style files: :func:`unicode_to_bytes`, :func:`bytes_to_unicode`.
- :mod:`~lmcourse.bpe.oracle`: :func:`compression` measures bytes per token; :func:`train_hf_bpe`
  trains the ``tokenizers`` library's byte-level BPE the same way, as an oracle.

**A tokenizer without training** (Chapter 7 loads SmolLM2's this way)::

    ByteBPE.from_vocab(vocab, merges, special_tokens={"<|endoftext|>": 0, ...}, pattern=PATTERN)

takes `vocab` (each token's bytes -> its id), `merges` (``(left bytes, right bytes)`` in rank
order), the special tokens with their ids and the pre-tokenization regex; :meth:`ByteBPE.encode`
then returns, and :meth:`ByteBPE.decode` reads, the given ids. Tokens written in GPT-2's stand-in
characters become bytes with :func:`unicode_to_bytes` (``"Ġthe"`` -> ``b" the"``).

The rules that decide which merges are learned:

- Pairs are counted over the *distinct* chunks of the text, each weighted by how often it occurs.
  After a merge only the counts of the pairs beside each merged place change, and only those are
  updated (never a full recount), so 1 MB trains in seconds.
- The most frequent pair wins. Ties go to the smallest pair of ids (left id first, then right id):
  bytes rank by value, merged tokens by when they were made. ``tokenizers`` uses the same rule on
  its own ids, which number the bytes in the order of GPT-2's printable stand-ins (so a space, shown
  as "Ġ", ranks after the letters); the two learn the same merges until the first tie that the two
  byte orders break differently.
- Two merges could spell the same bytes (``"t" + "he"`` and ``"th" + "e"``; rare in practice). As
  in ``tokenizers``, the later one reuses the earlier one's id, so no two ids share a byte string
  and ``len(merges)`` can exceed ``vocab_size - 256 - len(special_tokens)``.
- Special tokens are cut out of the training text, so no merge includes or crosses one.

Encoding applies, within each chunk, the lowest-ranked merge present at all its places from left to
right, and repeats (as GPT-2's ``encoder.py`` does); chunk encodings are cached.

Left out: the speed of tiktoken or ``tokenizers`` (Rust), writing GPT-2's own files, Unicode
normalisation, BPE-dropout, and byte-fallback (SentencePiece-style) BPE.
"""

from lmcourse.bpe.gpt2_chars import bytes_to_unicode, unicode_to_bytes
from lmcourse.bpe.merging import merge, pair_counts
from lmcourse.bpe.oracle import compression, train_hf_bpe
from lmcourse.bpe.pretokenize import GPT2_PATTERN
from lmcourse.bpe.tokenizer import BasicBPE, ByteBPE

__all__ = ["GPT2_PATTERN", "pair_counts", "merge", "ByteBPE", "BasicBPE", "compression", "train_hf_bpe",
           "bytes_to_unicode", "unicode_to_bytes"]
