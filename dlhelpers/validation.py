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


def is_torch(value) -> bool:
    """True for a torch object (a Tensor, a Parameter...), found without importing torch."""
    return type(value).__module__.startswith("torch")


def reject_torch(value, name: str) -> None:
    """Raise a TypeError naming `name` if `value` is a torch tensor, with the way to convert it."""
    if is_torch(value):
        raise TypeError(
            f"{name} must be a numpy array, got a torch {type(value).__name__}; "
            f"convert it with {name}.detach().numpy()"
        )


def as_float_array(value, name: str, ndim: int | tuple[int, ...] | None = None) -> np.ndarray:
    """Return `value` as a finite, non-empty float64 array, or raise naming `name`.

    `ndim` restricts the number of dimensions (an int or a tuple of allowed ints).
    The caller's array is never modified: operations on the result must not write into it.
    A subclass of ndarray (a masked array, np.matrix) becomes a plain ndarray first.
    """
    if type(value) is np.ndarray and value.dtype == np.float64:
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
    check_finite(array, name)
    return array


def check_finite(array: np.ndarray, name: str, what: str = "be finite") -> None:
    """Raise unless every entry of the real `array` is finite ("{name} must {what}, got NaN")."""
    if not np.isfinite(array).all():
        bad = "NaN" if np.isnan(array).any() else "inf"
        raise ValueError(f"{name} must {what}, got {bad} in an array of shape {array.shape}")


def as_numeric_array(value, name: str) -> np.ndarray:
    """Return `value` as an array of finite real numbers in its own dtype (bool, int or float).

    For targets that may be class labels or real values; raises naming `name` otherwise.
    """
    array = _to_array(value, name, "an array of numbers", "an array of numbers")
    if array.dtype.kind not in "biuf":  # strings, objects, complex numbers, dates
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.dtype.kind == "f":
        check_finite(array, name)
    return array


def _to_float64(value, name: str) -> np.ndarray:
    array = _to_array(value, name, "a number or an array of numbers", "an array of numbers")
    if array.dtype.kind not in "iuf":  # bool, complex, strings, objects
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    return array.astype(np.float64, copy=False)


def _to_array(value, name: str, wanted: str, wanted_array: str) -> np.ndarray:
    """`value` as a plain ndarray (any dtype), or an error naming `name` and what was wanted."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be {wanted}, got {describe(value)}")
    reject_torch(value, name)
    if isinstance(value, np.ma.MaskedArray) and np.ma.is_masked(value):
        raise ValueError(
            f"{name} must not have masked entries, got {np.ma.count_masked(value)} masked in "
            f"an array of shape {value.shape}; fill them first, e.g. {name}.filled(0.0)"
        )
    try:
        return np.asarray(value)  # a subclass (masked array, np.matrix) becomes a plain ndarray
    except (TypeError, ValueError) as error:  # ragged nested lists
        raise TypeError(
            f"{name} must be {wanted_array} (every row the same length), got {describe(value)}"
        ) from error


# Whole floats in [-2**63, 2**63) convert to int64 exactly (2**63 is one past int64's maximum).
_INT64_BOUND = 2.0**63


def as_label_array(value, name: str, n_classes: int | None = None) -> np.ndarray:
    """Return integer class labels as a 1-D int64 array, or raise naming `name`.

    Floats are accepted when every one is a whole number within int64's range (1.0 -> 1).
    """
    wanted = "an array of integer class labels"
    array = _to_array(value, name, wanted, wanted)
    if array.dtype.kind == "f" and array.size:
        check_finite(array, name, "hold finite class labels")
        if np.any(array != np.round(array)):
            fraction = float(array[array != np.round(array)].flat[0])
            raise TypeError(
                f"{name} must hold integer class labels, got dtype {array.dtype} "
                f"with the non-integer value {fraction!r}"
            )
        if array.min() < -_INT64_BOUND or array.max() >= _INT64_BOUND:
            raise ValueError(
                f"{name} must hold class labels within int64's range, "
                f"got values from {array.min():.4g} to {array.max():.4g}"
            )
        array = array.astype(np.int64)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integer class labels, got dtype {array.dtype}")
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D class labels of shape (N,), got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} must not be empty")
    if array.dtype == np.uint64 and array.max() > np.iinfo(np.int64).max:
        raise ValueError(f"{name} must hold class labels within int64's range, "
                         f"got {array.max()}")
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
    return math.isfinite(float_or_inf(value))


def float_or_inf(value: numbers.Real) -> float:
    """`float(value)`, or inf for an int beyond float64's range (e.g. 10**400) instead of an
    OverflowError."""
    try:
        return float(value)
    except OverflowError:
        return math.inf


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
