"""The Chapter 4b checkers' oracles against independent references. That each checker passes the
chapter's reference, fails a stub and fails every registered wrong answer is proved over the
notebooks by tests/test_exercises.py."""

import numpy as np
import torch

from lmcourse.exercises import REGISTRY, load_all
from lmcourse.transformer import TransformerConfig, TransformerLM

load_all()


def test_count_oracle_matches_the_model_and_counts_a_tied_matrix_once():
    count = REGISTRY["transformer.count_parameters"].oracle
    assert count(50, 16, 16, 3, 2, False) - count(50, 16, 16, 3, 2, True) == 50 * 16
    config = TransformerConfig(vocab_size=40, context_length=8, emb_dim=12, num_heads=3, num_layers=2, mlp_ratio=2)
    assert count(40, 8, 12, 2, 2, False) == TransformerLM(config).num_parameters


def test_count_oracle_leaves_the_global_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    REGISTRY["transformer.count_parameters"].oracle(11, 5, 8, 2, 3, True)
    assert torch.equal(torch.rand(3), expected)


def test_layer_norm_oracle_hand_example():
    out = REGISTRY["transformer.layer_norm"].oracle(np.array([1.0, 2.0, 3.0]), np.ones(3), np.zeros(3))
    np.testing.assert_allclose(out, np.array([-1, 0, 1]) / np.sqrt(2 / 3 + 1e-5))
