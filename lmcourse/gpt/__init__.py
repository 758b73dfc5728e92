"""GPT-2 (Radford et al., 2019), Chapter 6: one module per idea.

- :mod:`~lmcourse.gpt.config`: :class:`GPTConfig`, the numbers that vary between GPT-2 sizes;
- :mod:`~lmcourse.gpt.model`: :class:`GPT`, a :class:`~lmcourse.transformer.TransformerLM` with
  GPT-2's choices, and :meth:`GPT.generate` with a KV cache;
- :mod:`~lmcourse.gpt.generate`: :func:`generate_text`, text in and text out;
- :mod:`~lmcourse.gpt.hf`: ``transformers.GPT2LMHeadModel``'s weights and config, the only place
  their names appear (the bridge pattern of :mod:`lmcourse._hf`).

Everything is importable from ``lmcourse.gpt`` itself, as it was when GPT was one module.
"""

from lmcourse.decoding import seeded_generator
from lmcourse.gpt.config import GPTConfig
from lmcourse.gpt.generate import Completion, generate_text
from lmcourse.gpt.hf import config_from_hf, config_to_hf, from_hf_state_dict, to_hf_state_dict, weight_table
from lmcourse.gpt.model import GPT

__all__ = ["GPTConfig", "GPT", "Completion", "generate_text", "to_hf_state_dict", "from_hf_state_dict",
           "config_from_hf", "config_to_hf", "weight_table", "seeded_generator"]
