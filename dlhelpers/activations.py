"""Activation functions g(z) and their derivatives g'(z), stable for any finite input.

Introduced in `02_activation_functions.ipynb`. Each function takes the pre-activation z (a number
or an array of any shape) and returns an array of the same shape, like `torch.sigmoid` and
friends. A Python number in gives a numpy scalar out, as numpy's own ufuncs do.

Each function checks z, then calls its private twin (`_sigmoid`, `_relu`, ...), which computes
on a float64 array without checks: the layers of `dlhelpers.nn` and the cross-entropy loss call
those directly, on values they have already checked.
"""

from __future__ import annotations

import numpy as np

from dlhelpers.validation import as_float_array, check_number


def _scalar_or_array(result: np.ndarray) -> np.ndarray:
    # result[()] turns a 0-d array into a numpy scalar and leaves other arrays alone.
    return result[()]


def sigmoid(z):
    r"""The logistic sigmoid.

    .. math:: \sigma(z) = \frac{1}{1 + e^{-z}}

    Computed as 1 / (1 + e^{-|z|}) for z >= 0 and e^{-|z|} / (1 + e^{-|z|}) for z < 0, so
    e^{...} never exceeds 1 and never overflows (the naive form overflows for z < -709).

    Shape: any; the output has the shape of z.

    >>> float(sigmoid(0.0))
    0.5
    """
    return _scalar_or_array(_sigmoid(as_float_array(z, "z")))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    e = np.exp(-np.abs(z))  # in (0, 1]: no overflow
    return np.where(z >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def sigmoid_derivative(z):
    r"""Derivative of the sigmoid with respect to z.

    .. math:: \sigma'(z) = \sigma(z)\,(1 - \sigma(z))

    >>> float(sigmoid_derivative(0.0))
    0.25
    """
    return _scalar_or_array(_sigmoid_derivative(as_float_array(z, "z")))


def _sigmoid_derivative(z: np.ndarray) -> np.ndarray:
    s = _sigmoid(z)
    return s * (1.0 - s)


def tanh(z):
    r"""The hyperbolic tangent.

    .. math:: \tanh(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}

    numpy's `np.tanh` evaluates this without overflow for any finite z.

    >>> float(tanh(0.0))
    0.0
    """
    return _scalar_or_array(_tanh(as_float_array(z, "z")))


def _tanh(z: np.ndarray) -> np.ndarray:
    return np.tanh(z)


def tanh_derivative(z):
    r"""Derivative of tanh with respect to z.

    .. math:: \tanh'(z) = 1 - \tanh^2(z)

    >>> float(tanh_derivative(0.0))
    1.0
    """
    return _scalar_or_array(_tanh_derivative(as_float_array(z, "z")))


def _tanh_derivative(z: np.ndarray) -> np.ndarray:
    return 1.0 - np.tanh(z) ** 2


def relu(z):
    r"""The Rectified Linear Unit.

    .. math:: \mathrm{ReLU}(z) = \max(0, z)

    >>> relu(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 3.])
    """
    return _scalar_or_array(_relu(as_float_array(z, "z")))


def _relu(z: np.ndarray) -> np.ndarray:
    return np.maximum(0.0, z)


def relu_derivative(z):
    r"""Derivative of ReLU with respect to z.

    .. math:: \mathrm{ReLU}'(z) = \begin{cases} 1 & z > 0 \\ 0 & z < 0 \end{cases}

    At z = 0 the derivative is undefined; like PyTorch we use 0 there.

    >>> relu_derivative(np.array([-2.0, 0.0, 3.0]))
    array([0., 0., 1.])
    """
    return _scalar_or_array(_relu_derivative(as_float_array(z, "z")))


def _relu_derivative(z: np.ndarray) -> np.ndarray:
    return (z > 0).astype(np.float64)


def log_softmax(z, axis: int = -1):
    r"""Logarithm of the softmax along `axis`, computed without overflow.

    .. math:: \log \mathrm{softmax}(z)_i = z_i - \max_j z_j - \log \sum_j e^{z_j - \max_j z_j}

    An entry more than about 1.8e308 below the largest has probability 0; its log, -inf, is
    returned as the most negative float64 instead, so the result is always finite.

    >>> log_softmax(np.array([0.0, 0.0]))
    array([-0.69314718, -0.69314718])
    """
    z = as_float_array(z, "z")
    _check_axis(axis, z)
    return _log_softmax(z, axis)


def _log_softmax(z: np.ndarray, axis: int) -> np.ndarray:
    # z - max(z) can only overflow to -inf (for entries more than ~1.8e308 below the largest):
    # such a probability is 0 and its log is clamped to the most negative float64 instead.
    with np.errstate(over="ignore"):
        shifted = z - z.max(axis=axis, keepdims=True)  # largest entry is 0: exp(...) <= 1
    np.maximum(shifted, _LOWEST, out=shifted)  # -inf -> about -1.8e308
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


_LOWEST = np.finfo(np.float64).min  # about -1.8e308


def softmax(z, axis: int = -1):
    r"""Softmax along `axis`: turns scores into probabilities that sum to 1.

    .. math:: \mathrm{softmax}(z)_i = \frac{e^{z_i}}{\sum_j e^{z_j}}

    Computed from z - max(z), which leaves the result unchanged and keeps e^{...} <= 1.

    Shape: any; the output has the shape of z, and sums to 1 along `axis`.

    >>> softmax(np.array([1.0, 1.0]))
    array([0.5, 0.5])
    """
    return np.exp(log_softmax(z, axis=axis))


def _check_axis(axis, z: np.ndarray) -> None:
    check_number(axis, "axis", integer=True)
    if z.ndim == 0:
        raise ValueError("z must have at least 1 dimension for softmax, got a scalar")
    if not -z.ndim <= axis < z.ndim:
        raise ValueError(
            f"axis must be in [{-z.ndim}, {z.ndim - 1}] for z of shape {z.shape}, got {axis}"
        )
