"""Run a reader's function with a time limit that works everywhere the book runs.

The function runs in a worker thread; the caller waits at most the limit. A thread cannot be
killed, so on a timeout the worker is asked to stop by raising an exception inside it
(CPython's `PyThreadState_SetAsyncExc`, available on Linux, macOS and Windows, in any thread,
unlike `SIGALRM`). That stops any loop of Python code at once; code stuck inside one long C call
(a huge NumPy operation, `time.sleep`) stops when that call returns, and meanwhile the checker
has already moved on. A worker process would be safer still, but a function defined in a
notebook cannot be sent to a new process on macOS or Windows.
"""

from __future__ import annotations

import ctypes
import threading
from typing import Any, Callable

_GRACE_SECONDS = 0.5  # how long to wait for a stopped worker to finish


class TimeLimitExceeded(Exception):
    """The function ran past its limit (`stopped`: whether its worker thread has ended since)."""

    def __init__(self, seconds: float, stopped: bool) -> None:
        super().__init__(f"took longer than {seconds:g} s")
        self.seconds = seconds
        self.stopped = stopped


class _Stop(BaseException):
    """Raised inside a worker that ran out of time (a BaseException, so `except Exception` in the
    reader's code does not swallow it)."""


def call_with_time_limit(fn: Callable[..., Any], args: tuple, kwargs: dict, seconds: float) -> Any:
    """`fn(*args, **kwargs)`, or `TimeLimitExceeded` after `seconds` of wall time.

    >>> call_with_time_limit(sum, ([1, 2, 3],), {}, 1.0)
    6
    """
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["value"] = fn(*args, **kwargs)
        except _Stop:
            outcome["stopped"] = True
        except BaseException as error:  # noqa: BLE001 - handed back to the caller's thread below
            outcome["error"] = error

    worker = threading.Thread(target=work, name="lmcourse-exercise", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        _raise_in(worker)
        worker.join(_GRACE_SECONDS)
        raise TimeLimitExceeded(seconds, stopped=not worker.is_alive())
    if "error" in outcome:
        raise outcome["error"]
    return outcome.get("value")


def _raise_in(thread: threading.Thread) -> None:
    """Ask `thread` to raise `_Stop` at its next Python instruction (a no-op outside CPython)."""
    set_async_exc = getattr(getattr(ctypes, "pythonapi", None), "PyThreadState_SetAsyncExc", None)
    if set_async_exc is not None and thread.ident is not None:
        set_async_exc(ctypes.c_ulong(thread.ident), ctypes.py_object(_Stop))
