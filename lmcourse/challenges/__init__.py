"""Challenges (Chapter 11): measuring what goes wrong with language models, one module per problem.

- :mod:`~lmcourse.challenges.bias`: the Word Embedding Association Test, its effect size and
  permutation p-value (Caliskan et al., 2017);
- :mod:`~lmcourse.challenges.memorisation`: canaries planted in training text, their rank among
  candidate secrets and their exposure (Carlini et al., 2019);
- :mod:`~lmcourse.challenges.calibration`: reliability tables and the expected calibration error;
- :mod:`~lmcourse.challenges.contamination`: word n-gram overlap between benchmark examples and
  training text (Brown et al., 2020);
- :mod:`~lmcourse.challenges.unseen`: paragraphs of this book's own prose, text written after the
  pretrained models of the book were trained.

Everything is importable from ``lmcourse.challenges`` itself.
"""

from lmcourse.challenges.bias import association, weat_effect_size, weat_p_value
from lmcourse.challenges.calibration import (CalibrationBin, expected_calibration_error, is_abstention,
                                             reliability_table)
from lmcourse.challenges.contamination import contaminated, ngram_overlap, normalized_words
from lmcourse.challenges.unseen import book_prose
from lmcourse.challenges.memorisation import (Canary, canary_rank, candidate_secrets, exposure, insert_canary,
                                              make_canary)

__all__ = [
    # bias
    "association", "weat_effect_size", "weat_p_value",
    # memorisation
    "Canary", "make_canary", "candidate_secrets", "insert_canary", "canary_rank", "exposure",
    # calibration
    "CalibrationBin", "reliability_table", "expected_calibration_error", "is_abstention",
    # contamination
    "normalized_words", "ngram_overlap", "contaminated",
    # text no pretrained model can have seen
    "book_prose",
]
