"""Where the book's models run: a CUDA GPU when there is one, the CPU otherwise.

Every chapter runs on a laptop CPU, and its committed outputs were computed there; a reader with
a GPU gets the same code on the GPU by writing ``model.to(lmcourse.devices.device())``. Chapter 10
(Scaling and efficiency) explains what changes on an accelerator. Set ``LMCOURSE_DEVICE=cpu`` (or
``cuda``, ``cuda:1``, ``mps``) to choose for yourself, for example to reproduce the book's numbers
exactly on a machine that has a GPU.

Left out: several GPUs in one process (data parallelism across processes is
:mod:`lmcourse.distributed`), and Apple's ``mps`` unless asked for by name.
"""

from __future__ import annotations

import os

import torch

__all__ = ["device", "DEVICE_VARIABLE"]

DEVICE_VARIABLE = "LMCOURSE_DEVICE"  # the environment variable that overrides the choice


def device() -> torch.device:
    """``LMCOURSE_DEVICE`` if it is set, else ``cuda`` when PyTorch sees a GPU, else ``cpu``.

    >>> device().type in ("cpu", "cuda", "mps")
    True
    """
    wanted = os.environ.get(DEVICE_VARIABLE, "").strip()
    if not wanted:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        chosen = torch.device(wanted)
    except RuntimeError as error:
        raise ValueError(f"{DEVICE_VARIABLE}={wanted!r} is not a device PyTorch knows; use cpu, cuda, cuda:N "
                         "or mps") from error
    if chosen.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"{DEVICE_VARIABLE}={wanted!r} asks for a GPU, but PyTorch sees none (a CPU-only "
                         "build of torch, or no driver); unset it to run on the CPU")
    if chosen.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"{DEVICE_VARIABLE}={wanted!r} asks for Apple's GPU, which PyTorch does not see here")
    return chosen
