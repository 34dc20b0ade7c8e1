"""Input checks shared by every public function of `dlhelpers`.

Each check raises `TypeError` (wrong kind of value) or `ValueError` (right kind, wrong content)
with a message that names the argument, says what was expected and shows what arrived, so a
student reads "y_hat must have shape (4, 1) like y, got (4,)" instead of a numpy stack trace.
"""

from __future__ import annotations

import math
import numbers

import numpy as np


def describe(value) -> str:
    """A short description of `value` for an error message: its shape or its type."""
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape} and dtype {value.dtype}"
    return f"{type(value).__name__} {value!r}"[:120]


def as_float_array(value, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return `value` as a finite, non-empty float64 array, or raise naming `name`.

    `ndim` restricts the number of dimensions (an int or a tuple of allowed ints).
    The caller's array is never modified: operations on the result must not write into it.
    """
    if isinstance(value, np.ndarray) and value.dtype == np.float64:
        array = value  # the common case inside a network: skip the conversions below
    else:
        array = _to_float64(value, name)
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if array.ndim not in allowed:
            wanted = " or ".join(str(n) for n in allowed)
            raise ValueError(f"{name} must have {wanted} dimension(s), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty, got shape {array.shape}")
    if not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} must be finite, got {bad} in an array of shape {array.shape}")
    return array


def _to_float64(value, name: str) -> np.ndarray:
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a number or an array of numbers, got {describe(value)}")
    if type(value).__module__.startswith("torch"):
        raise TypeError(
            f"{name} must be a numpy array, got a torch {type(value).__name__}; "
            f"convert it with {name}.detach().numpy()"
        )
    try:
        array = np.asarray(value)
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise TypeError(f"{name} must be an array of numbers, got {describe(value)}") from error
    if array.dtype.kind not in "iuf":  # bool, complex, strings, objects
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def as_label_array(value, name: str, n_classes: int | None = None) -> np.ndarray:
    """Return integer class labels as a 1-D int64 array, or raise naming `name`."""
    if type(value).__module__.startswith("torch"):
        raise TypeError(f"{name} must be a numpy array, got a torch {type(value).__name__}")
    array = np.asarray(value)
    if array.dtype.kind == "f" and array.size and np.all(np.isfinite(array)) and np.all(
        array == np.round(array)
    ):
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels of shape (N,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if n_classes is not None and (array.min() < 0 or array.max() >= n_classes):
        raise ValueError(
            f"{name} must hold labels in [0, {n_classes - 1}], "
            f"got values from {array.min()} to {array.max()}"
        )
    return array.astype(np.int64, copy=False)


def check_same_shape(a: np.ndarray, b: np.ndarray, name_a: str, name_b: str) -> None:
    """Raise unless `a` and `b` have the same shape (never broadcast (N,) against (N, 1))."""
    if a.shape != b.shape:
        hint = ""
        if a.size == b.size:
            hint = f"; reshape one of them first, e.g. {name_b}.reshape({a.shape})"
        raise ValueError(
            f"{name_b} must have the same shape as {name_a} {a.shape}, got {b.shape}{hint}"
        )


def check_probabilities(array: np.ndarray, name: str) -> None:
    """Raise unless every entry of `array` lies in [0, 1]."""
    if array.min() < 0 or array.max() > 1:
        raise ValueError(
            f"{name} must hold probabilities in [0, 1], "
            f"got values from {array.min():.4g} to {array.max():.4g}"
        )


def check_number(value, name: str, *, low=None, high=None, low_open=False, integer=False):
    """Return `value` if it is a real number in the given range, else raise naming `name`.

    `low_open=True` excludes `low` itself (e.g. a learning rate must be > 0).
    """
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        wanted = "an integer" if integer else "a number"
        raise TypeError(f"{name} must be {wanted}, got {describe(value)}")
    if not integer and not _is_finite(value):
        raise ValueError(f"{name} must be finite, got {describe(value)}")
    if low is not None and (value < low or (low_open and value == low)):
        sign = ">" if low_open else ">="
        raise ValueError(f"{name} must be {sign} {low}, got {value}")
    if high is not None and value > high:
        raise ValueError(f"{name} must be <= {high}, got {value}")
    return value


def _is_finite(value: numbers.Real) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int beyond float range, e.g. 10**400
        return False


def check_state_keys(state, expected) -> None:
    """Raise unless `state` is a dict with exactly the names in `expected` (a state_dict)."""
    if not isinstance(state, dict):
        raise TypeError(f"state must be a dict from state_dict(), got {describe(state)}")
    missing, unexpected = set(expected) - state.keys(), state.keys() - set(expected)
    if missing or unexpected:
        raise ValueError(
            f"state must have exactly the names {list(expected)}; "
            f"missing {sorted(missing)}, unexpected {sorted(unexpected, key=str)}"
        )
