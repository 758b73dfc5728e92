"""The Chapter 4b checkers' oracles against independent references. That each checker passes the
chapter's reference, fails a stub and fails every registered wrong answer is proved over the
notebooks by tests/test_exercises.py; here the block checker is also proved on a reference written
as the chapter's cell holds it."""

import copy
from pathlib import Path

import numpy as np
import torch

from lmcourse.exercises import REGISTRY, evaluate, load_all
from lmcourse.exercises.notebooks import SolutionCell
from lmcourse.exercises.selftest import selftest_solution
from lmcourse.exercises.transformer import _block_cases
from lmcourse.minigpt import Block as TeachingBlock
from lmcourse.transformer import Block, TransformerConfig

load_all()

BLOCK = SolutionCell(Path(__file__), 0, '''
def block_forward(x, ln_attn, attn, ln_mlp, mlp, norm_first=True):
    """Pre-LN if norm_first, else post-LN: (B, T, C) -> (B, T, C)."""
    # BEGIN SOLUTION
    if norm_first:
        x = x + attn(ln_attn(x))
        return x + mlp(ln_mlp(x))
    x = ln_attn(x + attn(x))
    return ln_mlp(x + mlp(x))
    # END SOLUTION
''', "transformer.block_forward", "block_forward")


def test_block_checker_passes_the_reference_and_fails_the_stub_and_every_wrong_answer():
    result = selftest_solution(BLOCK)
    assert result.ok, "\n".join(result.problems)
    assert result.wrong_answers_caught == result.wrong_answers >= 8


def test_block_oracle_equals_the_production_and_teaching_blocks():
    exercise = REGISTRY["transformer.block_forward"]
    pre_ln = [case for case in exercise.cases if case.kwargs.get("norm_first", True)]
    assert pre_ln and len(pre_ln) < len(exercise.cases)  # post-LN is checked too
    for case in pre_ln:
        x, ln_attn, attn, ln_mlp, mlp = case.args
        C, H = x.shape[-1], attn.num_heads
        weights = {**{f"ln_attn.{k}": v for k, v in ln_attn.state_dict().items()},
                   **{f"attn.{k}": v for k, v in attn.state_dict().items()},
                   **{f"ln_mlp.{k}": v for k, v in ln_mlp.state_dict().items()},
                   **{f"mlp.{k}": v for k, v in mlp.state_dict().items()}}
        production = Block(TransformerConfig(vocab_size=10, emb_dim=C, num_heads=H, dropout=0.0)).double().eval()
        teaching = TeachingBlock(C, H).double()
        production.load_state_dict(weights)
        teaching.load_state_dict(weights)
        with torch.no_grad():
            np.testing.assert_allclose(exercise.expected(case), production(x).numpy(), atol=1e-10)
            np.testing.assert_allclose(exercise.expected(case), teaching(x).numpy(), atol=1e-10)


def test_post_ln_oracle_normalises_every_position():
    exercise = REGISTRY["transformer.block_forward"]
    for case in exercise.cases:
        if not case.kwargs.get("norm_first", True):
            ln_mlp = case.args[3]
            out = torch.as_tensor(exercise.expected(case))
            normalised = (out - ln_mlp.bias) / ln_mlp.weight  # the last LayerNorm's output before its affine step
            np.testing.assert_allclose(normalised.mean(-1).numpy(), 0, atol=1e-9)


def test_sub_modules_compare_by_weights_so_a_changed_one_is_noticed():
    case = REGISTRY["transformer.block_forward"].cases[0]
    ln_attn = case.args[1]
    twin = copy.deepcopy(ln_attn)
    assert twin == ln_attn and twin is not ln_attn and hash(twin) != hash(ln_attn)  # modules hash by identity

    def shifts_a_layer_norm(x, ln_attn, attn, ln_mlp, mlp, norm_first=True):
        ln_attn.bias.add_(1.0)  # changes the caller's sub-module
        return BLOCK_FN(x, ln_attn, attn, ln_mlp, mlp, norm_first)

    text = str(evaluate("transformer.block_forward", shifts_a_layer_norm))
    assert "your function changed its input `ln_attn`" in text


def _block_fn():
    namespace: dict = {}
    exec(BLOCK.source, namespace)  # noqa: S102 - the reference above
    return namespace["block_forward"]


BLOCK_FN = _block_fn()


def test_oracle_and_cases_leave_the_global_random_stream_alone():
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    _block_cases()  # builds modules, which initialise their weights
    assert torch.equal(torch.rand(3), expected)


def test_layer_norm_oracle_hand_example():
    out = REGISTRY["transformer.layer_norm"].oracle(np.array([1.0, 2.0, 3.0]), np.ones(3), np.zeros(3))
    np.testing.assert_allclose(out, np.array([-1, 0, 1]) / np.sqrt(2 / 3 + 1e-5))
