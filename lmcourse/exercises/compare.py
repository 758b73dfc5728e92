"""Compare a reader's answer with the expected one, and say in one line what differs and where.

Types are checked as strictly as the exercises state them: a count must be an int (not a float), a
boolean mask a boolean array, token ids an integer array, a float a real number (not a 0-d array),
a list a list. Numbers compare with the exercise's tolerances. A mismatch names the place inside
the answer (`result[1]['cat']`), the entry of an array that differs first, and both values, printed
as the statement defines them (floats rounded to 7 significant digits when their shortest form is
longer, so that a float32 0.6 shows as 0.6).

`same` is the exact equality used to notice that a function changed its input.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

# --- formatting ------------------------------------------------------------------------------


def type_name(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.ndim}-d NumPy array of {value.dtype}"
    if _is_tensor(value):
        return f"torch tensor of {value.dtype}"
    return type(value).__name__


def a_type(value: Any) -> str:
    """The type of `value` with its article: 'an int', 'a str', 'a 1-d NumPy array of float64'."""
    name = type_name(value)
    return f"{'an' if name[0] in 'aeiou8' else 'a'} {name}"


def format_number(x: Any) -> str:
    """A number as the statement would write it: ints whole, floats in their shortest form (at most
    7 significant digits).

    >>> format_number(float(np.float32(0.6))), format_number(1 / 3), format_number(2.0), format_number(np.int64(7))
    ('0.6', '0.3333333', '2.0', '7')
    """
    if isinstance(x, (bool, np.bool_)):
        return repr(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    if isinstance(x, complex):
        return repr(x)
    x = float(x)
    text = repr(x)
    return text if len(text.lstrip("-").replace(".", "").lstrip("0")) <= 8 else f"{x:.7g}"


def short(value: Any, limit: int = 160) -> str:
    """A value in at most `limit` characters: arrays summarised, floats as in `format_number`."""
    if _is_tensor(value):
        value = _to_numpy(value)
    if isinstance(value, (float, np.floating, np.integer)) and not isinstance(value, bool):
        text = format_number(value)
    elif isinstance(value, np.ndarray):
        with np.printoptions(precision=6, threshold=24, edgeitems=3, suppress=True):
            text = f"array({np.array2string(value, separator=', ')}"
        text += ", dtype=bool)" if value.dtype == bool else ")"
    elif isinstance(value, (list, tuple)) and len(value) <= 40:
        items = ", ".join(short(v, limit) for v in value)
        text = f"[{items}]" if isinstance(value, list) else f"({items}{',' if len(value) == 1 else ''})"
    else:
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


# --- comparison ------------------------------------------------------------------------------


def compare(expected: Any, got: Any, rel_tol: float, abs_tol: float) -> str:
    """'' if `got` matches `expected`, else one line saying where and how it differs."""
    if got is None and expected is not None:
        return "your function returned None — is a `return` missing?"
    path, reason = _diff(expected, got, rel_tol, abs_tol, top=True)
    if not reason:
        return ""
    return f"in result{path}: {reason}" if path else reason


def _diff(expected: Any, got: Any, rel: float, tol: float, top: bool = False) -> tuple[str, str]:
    """(where, why) of the first difference, or ('', '') when the values match."""
    if isinstance(expected, (bool, np.bool_)):
        if not isinstance(got, (bool, np.bool_)):
            return "", f"expected True or False, got {a_type(got)} ({short(got, 40)})"
        return "", "" if bool(got) == bool(expected) else f"expected {expected}, got {got}"
    if isinstance(expected, (int, float, np.integer, np.floating)):
        return "", _diff_number(expected, got, rel, tol)
    if expected is None or isinstance(expected, str):
        if type(got) is not type(expected):
            return "", f"expected {a_type(expected)} ({expected!r}), got {a_type(got)} ({short(got, 40)})"
        return "", "" if got == expected else f"expected {expected!r}, got {got!r}"
    if isinstance(expected, np.ndarray) or _is_tensor(expected):  # a tensor is compared as its array
        return "", _diff_array(_to_numpy(expected) if _is_tensor(expected) else expected, got, rel, tol)
    if isinstance(expected, dict):
        return _diff_dict(expected, got, rel, tol)
    if isinstance(expected, (list, tuple)):
        return _diff_sequence(expected, got, rel, tol, top)
    return "", "" if got == expected else f"expected {short(expected, 60)}, got {short(got, 60)}"


def _diff_number(expected: Any, got: Any, rel: float, tol: float) -> str:
    want_int = isinstance(expected, (int, np.integer))
    kind = "an int" if want_int else "a float"
    if isinstance(got, (bool, np.bool_)) or not isinstance(got, (int, float, np.integer, np.floating)):
        if isinstance(got, np.ndarray) or _is_tensor(got):
            fix = "int(...)" if want_int else "float(...)"
            return f"expected {kind}, got {a_type(got)} of shape {tuple(got.shape)}: return {fix} of it"
        return f"expected {kind}, got {a_type(got)} ({short(got, 40)})"
    if want_int and not isinstance(got, (int, np.integer)):
        return (f"expected {kind} (a whole number), got a float ({format_number(got)}); "
                "count with ints (// divides without leaving the ints)")
    expected_f, got_f = float(expected), float(got)
    if math.isnan(expected_f) or math.isinf(expected_f) or math.isnan(got_f) or math.isinf(got_f):
        same = (math.isnan(expected_f) and math.isnan(got_f)) or expected_f == got_f
    else:
        same = math.isclose(got_f, expected_f, rel_tol=rel, abs_tol=tol)
    if same:
        return ""
    difference = got - expected if want_int else got_f - expected_f
    off = "" if not (math.isfinite(expected_f) and math.isfinite(got_f)) else f" (off by {format_number(difference)})"
    return f"expected {format_number(expected)}, got {format_number(got)}{off}"


def _diff_array(expected: np.ndarray, got: Any, rel: float, tol: float) -> str:
    if _is_tensor(got):
        got = _to_numpy(got)
    if not isinstance(got, np.ndarray):
        return f"expected a NumPy array of shape {expected.shape}, got {a_type(got)}: return np.array(...)"
    if got.shape != expected.shape:
        return f"expected an array of shape {expected.shape}, got shape {got.shape}"
    problem = _dtype_problem(expected.dtype, got.dtype)
    if problem:
        return problem
    exact = expected.dtype.kind in "biu" or (rel == 0 and tol == 0)
    with np.errstate(invalid="ignore", over="ignore"):
        ok = got == expected if exact else np.isclose(got, expected, rtol=rel, atol=tol, equal_nan=True)
    if np.all(ok):
        return ""
    bad = np.argwhere(~np.asarray(ok))
    index = tuple(int(i) for i in bad[0])
    e, g = expected[index], got[index]
    where = f"[{', '.join(map(str, index))}]"
    off = "" if exact or not (np.isfinite(e) and np.isfinite(g)) else f" (off by {format_number(g - e)})"
    return (f"entry {where} differs: expected {format_number(e)}, got {format_number(g)}{off}; "
            f"{len(bad)} of {expected.size} entries differ")


def _dtype_problem(expected: np.dtype, got: np.dtype) -> str:
    if expected.kind == "b" and got.kind != "b":
        return f"expected a boolean array (True/False entries), got {got} entries: compare, or use dtype=bool"
    if expected.kind in "iu" and got.kind not in "iu":
        return f"expected integer entries (ids or counts), got {got}: use an integer dtype such as np.int64"
    if expected.kind == "f" and got.kind not in "fiu":
        return f"expected real numbers, got {got} entries"
    return ""


def _diff_dict(expected: dict, got: Any, rel: float, tol: float) -> tuple[str, str]:
    if not isinstance(got, dict):
        return "", f"expected a dict, got {a_type(got)}"
    missing, extra = set(expected) - set(got), set(got) - set(expected)
    if missing or extra:
        parts = [f"missing keys {short(sorted(missing, key=repr), 80)}"] if missing else []
        parts += [f"unexpected keys {short(sorted(extra, key=repr), 80)}"] if extra else []
        return "", "; ".join(parts)
    for key in expected:
        path, reason = _diff(expected[key], got[key], rel, tol)
        if reason:
            return f"[{key!r}]{path}", reason
    return "", ""


def _diff_sequence(expected: list | tuple, got: Any, rel: float, tol: float, top: bool) -> tuple[str, str]:
    kind = "list" if isinstance(expected, list) else "tuple"
    allowed = (list,) if kind == "list" else (tuple,) if top else (list, tuple)
    if not isinstance(got, allowed):
        items = ", ".join(_kind(e) for e in expected[:4]) + (", ..." if len(expected) > 4 else "")
        size = f" of {len(got)} items" if isinstance(got, (list, tuple)) else ""
        return "", f"expected a {kind} of {len(expected)} items ({items}), got {a_type(got)}{size}"
    if len(got) != len(expected):
        return "", f"expected {len(expected)} item{'s' * (len(expected) != 1)}, got {len(got)}"
    for i, (e, g) in enumerate(zip(expected, got)):
        path, reason = _diff(e, g, rel, tol)
        if reason:
            return f"[{i}]{path}", reason
    return "", ""


def _kind(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return "an array"
    if isinstance(value, (bool, np.bool_)):
        return "a bool"
    if isinstance(value, (int, np.integer)):
        return "an int"
    return f"a {type(value).__name__}"


# --- exact equality, to notice a changed input -----------------------------------------------


def same(a: Any, b: Any) -> bool:
    """Whether `b` still equals `a` exactly (arrays: same shape, dtype and entries, NaN equal to NaN)."""
    if _is_tensor(a) or _is_tensor(b):
        if not (_is_tensor(a) and _is_tensor(b)):
            return False
        return a.shape == b.shape and a.dtype == b.dtype and bool(((a == b) | ((a != a) & (b != b))).all())
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
                and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    try:
        return bool(a == b) or (a != a and b != b)
    except Exception:  # noqa: BLE001 - an object that cannot compare is taken as unchanged
        return True


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.startswith("torch") and hasattr(value, "detach")


def _to_numpy(value: Any) -> np.ndarray:
    return value.detach().cpu().numpy()
