"""Reading GGUF files and dequantising their weights by hand. Chapter 7 (today's LLMs) explains it.

GGUF is llama.cpp's single-file format (Gerganov, 2023): a header of typed key-value metadata
(the architecture's numbers, the tokenizer's tokens and merges, the chat template), a table of
tensors (name, type, shape, offset), then the tensors' bytes. The ``gguf`` package's
``GGUFReader`` parses the header; :class:`GGUFFile` wraps it with clear errors, and this module
turns the stored blocks back into float32 numbers itself, so the formats can be read here:

A quantised tensor is cut, row by row, into blocks of 32 consecutive weights; each block keeps its
own scale, so one outlier spoils only its 31 neighbours. Bytes are little-endian; ``d`` and ``m``
are float16. The four-bit codes ``q`` (0..15) of a block are packed two per byte: the *low*
nibbles of the 16 bytes are weights 0..15 and the *high* nibbles are weights 16..31 (not
neighbours, so that unpacking is two whole-array operations)::

    Q4_0 (18 bytes, 4.5 bits a weight)   w_i = d * (q_i - 8)
    +------+-------------------------------------------------+
    | d    | qs[0] ... qs[15]   low nibble: q_0..q_15         |
    | 2 B  | 16 B               high nibble: q_16..q_31       |
    +------+-------------------------------------------------+

    Q4_1 (20 bytes, 5 bits a weight)     w_i = d * q_i + m
    +------+------+-------------------------------------------+
    | d    | m    | qs[0] ... qs[15]  (nibbles as in Q4_0)     |
    | 2 B  | 2 B  | 16 B                                       |
    +------+------+-------------------------------------------+

    Q8_0 (34 bytes, 8.5 bits a weight)   w_i = d * q_i, q_i a signed byte (-128..127)
    +------+-------------------------------------------------+
    | d    | q_0 q_1 ... q_31                                 |
    | 2 B  | 32 B                                             |
    +------+-------------------------------------------------+

    F16: 2 bytes a weight; F32: 4 bytes a weight (no blocks).

Q4_0 is symmetric around zero (``d = max|w| / -8``); Q4_1 stores the block's minimum ``m`` and
step ``d = (max - min) / 15``, so a block that is all positive wastes no codes. The arithmetic
is float32 in the order written above, which makes the results bit-identical to the ``gguf``
package's own ``gguf.quants.dequantize`` (the tests check every tensor of SmolLM2's file).

Shapes: GGUF lists a tensor's dimensions innermost first (``[576, 49152]`` for the embedding);
:class:`TensorInfo` and :meth:`GGUFFile.tensor` give them row-major, as torch does (``(49152, 576)``,
and ``(out, in)`` for a linear layer's weight).

Left out: the k-quants (Q2_K ... Q6_K, with super-blocks of 256), the i-quants, Q5_0/Q5_1/Q8_1,
BF16, writing GGUF files, and llama.cpp's quantised matrix products (here every weight is turned
into float32 before use, which costs memory and keeps no speed from the 4-bit format).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["BLOCK_SIZE", "BLOCK_BYTES", "SUPPORTED_TYPES", "bits_per_weight", "unpack_nibbles",
           "dequantize_q4_0", "dequantize_q4_1", "dequantize_q8_0", "dequantize", "TensorInfo", "GGUFFile"]

BLOCK_SIZE = 32  # weights per block in Q4_0, Q4_1 and Q8_0
# Bytes of one block (for F16 and F32: of one weight).
BLOCK_BYTES = {"Q4_0": 2 + 16, "Q4_1": 2 + 2 + 16, "Q8_0": 2 + 32, "F16": 2, "F32": 4}
_WEIGHTS_PER_UNIT = {"Q4_0": BLOCK_SIZE, "Q4_1": BLOCK_SIZE, "Q8_0": BLOCK_SIZE, "F16": 1, "F32": 1}
SUPPORTED_TYPES = tuple(BLOCK_BYTES)
_MAGIC = b"GGUF"


def bits_per_weight(type_name: str) -> float:
    """Stored bits per weight, scales included.

    >>> [bits_per_weight(t) for t in ("Q4_0", "Q4_1", "Q8_0", "F16", "F32")]
    [4.5, 5.0, 8.5, 16.0, 32.0]
    """
    _check_type(type_name)
    return 8 * BLOCK_BYTES[type_name] / _WEIGHTS_PER_UNIT[type_name]


def _check_type(type_name: str) -> None:
    if type_name not in BLOCK_BYTES:
        raise ValueError(f"tensor type {type_name!r} is not supported: lmcourse.gguf dequantises "
                         f"{', '.join(SUPPORTED_TYPES)}; use gguf.quants.dequantize for the others")


def _scale(blocks: np.ndarray, start: int) -> np.ndarray:
    """The float16 stored at bytes ``start, start + 1`` of each block, as float32 ``(n, 1)``."""
    return blocks[:, start:start + 2].view(np.float16).astype(np.float32)  # (n, 2) uint8 -> (n, 1)


def unpack_nibbles(packed: np.ndarray) -> np.ndarray:
    """The 4-bit codes of blocks ``(n, 16)`` of bytes: ``(n, 32)``, low nibbles first.

    >>> unpack_nibbles(np.array([[0x21] * 16], dtype=np.uint8))[0, [0, 15, 16, 31]].tolist()
    [1, 1, 2, 2]
    """
    return np.concatenate([packed & 0x0F, packed >> 4], axis=1)  # (n, 16) -> (n, 32)


def dequantize_q4_0(blocks: np.ndarray) -> np.ndarray:
    """Q4_0 blocks ``(n, 18)`` uint8 -> weights ``(n, 32)`` float32: ``d * (q - 8)``.

    >>> block = np.zeros((1, 18), dtype=np.uint8)
    >>> block[0, :2] = np.array([0.5], dtype=np.float16).view(np.uint8)  # d = 0.5
    >>> block[0, 2:] = 0xF0  # low nibbles 0, high nibbles 15
    >>> dequantize_q4_0(block)[0, [0, 16]].tolist()  # 0.5 * (0 - 8), 0.5 * (15 - 8)
    [-4.0, 3.5]
    """
    d = _scale(blocks, 0)  # (n, 1)
    q = unpack_nibbles(blocks[:, 2:18]).astype(np.int8) - np.int8(8)  # (n, 32) in -8..7
    return d * q.astype(np.float32)  # (n, 1) * (n, 32)


def dequantize_q4_1(blocks: np.ndarray) -> np.ndarray:
    """Q4_1 blocks ``(n, 20)`` uint8 -> weights ``(n, 32)`` float32: ``d * q + m``.

    >>> block = np.zeros((1, 20), dtype=np.uint8)
    >>> block[0, :4] = np.array([0.25, -1.0], dtype=np.float16).view(np.uint8)  # d, m
    >>> block[0, 4:] = 0xF0  # low nibbles 0, high nibbles 15
    >>> dequantize_q4_1(block)[0, [0, 16]].tolist()  # the minimum, and m + 15 d
    [-1.0, 2.75]
    """
    d, m = _scale(blocks, 0), _scale(blocks, 2)  # (n, 1) each
    q = unpack_nibbles(blocks[:, 4:20]).astype(np.float32)  # (n, 32) in 0..15
    return d * q + m


def dequantize_q8_0(blocks: np.ndarray) -> np.ndarray:
    """Q8_0 blocks ``(n, 34)`` uint8 -> weights ``(n, 32)`` float32: ``d * q``, q a signed byte."""
    d = _scale(blocks, 0)  # (n, 1)
    q = blocks[:, 2:34].view(np.int8).astype(np.float32)  # (n, 32) in -128..127
    return q * d


_DEQUANTIZERS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "Q4_0": dequantize_q4_0, "Q4_1": dequantize_q4_1, "Q8_0": dequantize_q8_0,
    "F16": lambda b: b.view(np.float16).astype(np.float32),
    "F32": lambda b: b.view(np.float32).copy(),
}


def dequantize(data: np.ndarray, type_name: str, shape: tuple[int, ...]) -> np.ndarray:
    """The float32 weights of `shape` (row-major) stored as `data` in format `type_name`.

    `data` holds the tensor's bytes (any shape; uint8, or the float dtype of F16/F32)."""
    _check_type(type_name)
    count = int(np.prod(shape))
    per_unit = _WEIGHTS_PER_UNIT[type_name]
    if shape and shape[-1] % per_unit:
        raise ValueError(f"a {type_name} tensor's rows must hold whole blocks of {per_unit} weights, "
                         f"got shape {shape}")
    raw = np.ascontiguousarray(data).view(np.uint8).reshape(-1)
    want = count // per_unit * BLOCK_BYTES[type_name]
    if raw.size != want:
        raise ValueError(f"a {type_name} tensor of shape {shape} needs {want} bytes, got {raw.size}")
    units = raw.reshape(count // per_unit, BLOCK_BYTES[type_name])  # (blocks, bytes per block)
    return _DEQUANTIZERS[type_name](units).reshape(shape)


@dataclass(frozen=True)
class TensorInfo:
    """One entry of a GGUF file's tensor table."""

    name: str  # e.g. "blk.0.attn_q.weight"
    type: str  # the storage format: "Q4_1", "Q8_0", "F32", ...
    shape: tuple[int, ...]  # row-major, as torch: (out, in) for a linear layer's weight
    num_bytes: int  # bytes stored in the file

    @property
    def num_weights(self) -> int:
        return int(np.prod(self.shape))


class GGUFFile:
    """A GGUF file: its metadata as a dict, its tensor table, and each tensor dequantised.

    The file is memory-mapped; a tensor's bytes are read when :meth:`tensor` asks for them.
    A file that is not GGUF, or is cut short, raises a ``ValueError`` that says so.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"no GGUF file at {self.path}")
        with self.path.open("rb") as f:
            magic = f.read(4)
        if magic != _MAGIC:
            raise ValueError(f"{self.path} is not a GGUF file: it starts with {magic!r}, not {_MAGIC!r}")
        from gguf import GGUFReader

        size = self.path.stat().st_size
        try:
            self._reader = GGUFReader(self.path)
        except (ValueError, IndexError, OverflowError) as error:
            raise ValueError(f"{self.path} is not a complete GGUF file ({size:,} bytes): {error}; it may be "
                             f"truncated (an interrupted download or copy)") from None
        self._tensors = {t.name: t for t in self._reader.tensors}
        for t in self._reader.tensors:
            if t.data_offset + t.n_bytes > size:
                raise ValueError(f"{self.path} is truncated: tensor {t.name!r} ends at byte "
                                 f"{t.data_offset + t.n_bytes:,} but the file has {size:,} bytes")
        # Each value a str, int, float, bool or list of them (the tokens: 49,152 strings).
        self.metadata: dict[str, Any] = {key: field.contents() for key, field in self._reader.fields.items()
                                         if not key.startswith("GGUF.")}

    @property
    def tensors(self) -> list[TensorInfo]:
        """The tensor table, in file order."""
        return [TensorInfo(t.name, t.tensor_type.name, tuple(int(n) for n in reversed(t.shape)), int(t.n_bytes))
                for t in self._reader.tensors]

    def raw(self, name: str) -> np.ndarray:
        """The stored bytes (or floats, for F16/F32) of tensor `name`, as the reader maps them."""
        if name not in self._tensors:
            raise KeyError(f"{self.path.name} has no tensor {name!r}; it has {len(self._tensors)} tensors, "
                           f"e.g. {', '.join(list(self._tensors)[:4])}")
        return self._tensors[name].data

    def tensor(self, name: str) -> np.ndarray:
        """Tensor `name` dequantised to float32, row-major (e.g. ``(49152, 576)`` for the embedding)."""
        data = self.raw(name)
        t = self._tensors[name]
        return dequantize(data, t.tensor_type.name, tuple(int(n) for n in reversed(t.shape)))

    def __repr__(self) -> str:
        arch = self.metadata.get("general.architecture", "?")
        return f"GGUFFile({self.path.name!r}, architecture={arch!r}, tensors={len(self._tensors)})"

