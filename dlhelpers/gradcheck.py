"""Gradient checking: finite differences as an independent oracle for every backward pass.

Introduced in `06_backpropagation.ipynb`.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from dlhelpers.validation import as_float_array, check_number


def numerical_gradient(f: Callable[[np.ndarray], float], x, eps: float = 1e-6) -> np.ndarray:
    r"""Estimate the gradient of a scalar function `f` at `x` by central differences.

    .. math:: \frac{\partial f}{\partial x_i} \approx
              \frac{f(x + \epsilon e_i) - f(x - \epsilon e_i)}{2 \epsilon}

    The error is O(eps^2). `f` receives a float64 array of x's shape; the caller's `x` is never
    modified.

    Shape: x is any shape; the result has the shape of x.

    >>> numerical_gradient(lambda v: float((v ** 2).sum()), np.array([1.0, -2.0])).round(6)
    array([ 2., -4.])
    """
    if not callable(f):
        raise TypeError(f"f must be a function of an array, got {type(f).__name__}")
    x = as_float_array(x, "x").copy()  # our own copy: we nudge it in place below
    check_number(eps, "eps", low=0, low_open=True)
    grad = np.zeros_like(x)
    flat_x, flat_grad = x.reshape(-1), grad.reshape(-1)  # views into x and grad
    for i in range(flat_x.size):
        original = flat_x[i]
        flat_x[i] = original + eps
        f_plus = _scalar(f(x))
        flat_x[i] = original - eps
        f_minus = _scalar(f(x))
        flat_x[i] = original
        flat_grad[i] = (f_plus - f_minus) / (2 * eps)
    return grad


def relative_error(a, b) -> float:
    r"""Relative error between two gradients, 0 when equal, 1 when unrelated.

    .. math:: \frac{\lVert a - b \rVert}{\max(\lVert a \rVert + \lVert b \rVert, 10^{-12})}

    With float64 and eps = 1e-6, a correct backward pass usually gives below 1e-7; above 1e-4
    almost always means a bug.

    >>> relative_error(np.array([1.0, 2.0]), np.array([1.0, 2.0]))
    0.0
    """
    a = as_float_array(a, "a")
    b = as_float_array(b, "b")
    if a.shape != b.shape:
        raise ValueError(f"b must have the same shape as a {a.shape}, got {b.shape}")
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-12))


def _scalar(value) -> float:
    array = np.asarray(value, dtype=np.float64)
    if array.size != 1:
        raise ValueError(f"f must return a single number, got an array of shape {array.shape}")
    return float(array.reshape(()))
