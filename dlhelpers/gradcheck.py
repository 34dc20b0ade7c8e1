"""Gradient checking: finite differences as an independent oracle for every backward pass.

Introduced in `05_gradient_descent.ipynb` (checking a hand-derived gradient) and used for every
backward pass in `06_backpropagation.ipynb`.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable

import numpy as np

from dlhelpers.validation import as_float_array, check_number, describe, float_or_inf, is_torch


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    r"""Estimate the gradient of a scalar function `f` at `x` by central differences.

    .. math:: \frac{\partial f}{\partial x_i} \approx
              \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2 \epsilon}

    The error is O(eps^2). `f` must return one finite real number: a Python or numpy int or
    float, or an array holding exactly one (a bool, None, a string or NaN raises, naming f).

    **x is nudged in place.** When `x` is a writable float64 numpy array (a layer's
    ``weight.value``), each entry of `x` itself is set to x_i + eps, then x_i - eps, and put back
    exactly before the next one, also when `f` raises. So the common idiom where `f` ignores its
    argument and reads the array directly works::

        numerical_gradient(lambda W: loss_of_model(), layer.weight.value)

    On return `x` holds its original values, bit for bit. Any other `x` (a list, an int array, a
    read-only array) is first converted to a float64 copy, which `f` then receives as argument.

    Shape: x is any shape; the result has the shape of x.

    >>> numerical_gradient(lambda v: float((v ** 2).sum()), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])
    """
    if not callable(f):
        raise TypeError(f"f must be a function of an array, got {type(f).__name__}")
    in_place = type(x) is np.ndarray and x.dtype == np.float64 and x.flags.writeable
    x = as_float_array(x, "x") if in_place else as_float_array(x, "x").copy()
    check_number(eps, "eps", low=0, low_open=True)
    grad = np.zeros_like(x)
    for i, index in enumerate(np.ndindex(x.shape)):  # works on views too (no flat copy)
        original = float(x[index])
        plus, minus = original + eps, original - eps  # Python floats: inf, not a warning
        if not (math.isfinite(plus) and math.isfinite(minus)) or plus == minus:
            raise ValueError(f"eps must give x[{_index(x, i)}] = {original!r} two distinct finite "
                             f"neighbours x +- eps, got eps = {eps!r}")
        try:
            x[index] = plus
            f_plus = _value_of_f(f(x), x, i)
            x[index] = minus
            f_minus = _value_of_f(f(x), x, i)
        finally:
            x[index] = original  # the caller's array is back, bit for bit, even if f raised
        slope = (f_plus - f_minus) / (2 * eps)  # Python floats: an overflow gives inf
        if not math.isfinite(slope):  # f_plus - f_minus or 2 eps overflowed: halve them first
            slope = (f_plus / 2 - f_minus / 2) / eps
        if not math.isfinite(slope):
            raise ValueError(f"the difference quotient at x[{_index(x, i)}] overflows float64: f "
                             f"went from {f_minus!r} to {f_plus!r} over 2 * eps = {2 * eps!r}")
        grad[index] = slope
    return grad


def relative_error(a, b) -> float:
    r"""Relative error between two gradients, 0 when equal, 1 when unrelated or opposite.

    .. math:: \frac{\lVert a - b \rVert}{\lVert a \rVert + \lVert b \rVert},
              \quad 0 \text{ when } a = b = 0

    It lies in [0, 1] and does not change when a and b are multiplied by the same number, so
    both are first divided by their largest entry, max(|a|, |b|): the norms then neither
    overflow (1e200) nor vanish (1e-320), and a sign flip is 1 at every scale.

    With float64 and eps = 1e-6, a correct backward pass usually gives below 1e-7; above 1e-4
    almost always means a bug.

    Shape: a and b of the same shape, any shape.

    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    >>> relative_error(np.array([1e-20]), np.array([-1e-20]))
    1.0
    """
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"b must have the same shape as a {a.shape}, got {b.shape}")
    scale = max(np.abs(a).max(), np.abs(b).max())
    if scale == 0:  # both exactly zero: equal
        return 0.0
    a, b = a / scale, b / scale  # entries in [-1, 1], the largest is +-1
    return float(np.linalg.norm(a - b) / (np.linalg.norm(a) + np.linalg.norm(b)))


def _value_of_f(value, x: np.ndarray, i: int) -> float:
    """f's return value as a float, or an error naming f, what it returned and where."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):  # Python or numpy number
        array = np.asarray(float_or_inf(value))
    elif value is None or isinstance(value, (str, bytes)):
        array = None
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError, RuntimeError):  # a ragged list; a torch tensor with grad
            array = None
    if array is not None and array.dtype.kind in "iuf" and array.size == 1:
        number = float_or_inf(array.reshape(()))
        if math.isfinite(number):
            return number
    where = f"at x with x[{_index(x, i)}] nudged to {float(x.reshape(-1)[i])!r}"
    if value is None:
        raise TypeError(f"f must return a number, got None {where}; did you forget `return`?")
    hint = "; return loss.item() for a torch loss" if is_torch(value) else ""
    if array is None or array.dtype.kind not in "iuf":  # a string, bool, complex, object
        raise TypeError(f"f must return a real number, got {describe(value)} {where}{hint}")
    if array.size != 1:
        raise ValueError(f"f must return a single number, got an array of shape {array.shape} "
                         f"{where}")
    raise ValueError(f"f must return a finite number, got {number} {where}")


def _index(x: np.ndarray, i: int) -> str:
    """The i-th entry of x (flat order) as an index string: '2', '1, 0', or '()' for a 0-d x."""
    if x.ndim == 0:
        return "()"
    return ", ".join(str(int(k)) for k in np.unravel_index(i, x.shape))
