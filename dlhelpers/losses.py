"""Loss functions J(W): how far the predictions are from the targets.

Introduced in `04_quantifying_loss.ipynb`. The functions take the lecture's argument order,
(y, y_hat): target first. The loss objects take PyTorch's order, forward(y_hat, y), and add
`backward()` returning dJ/dy_hat for the numpy networks of `dlhelpers.nn`.

Every loss is the mean over all entries, as PyTorch's default `reduction="mean"`.
"""

from __future__ import annotations

import numpy as np

from dlhelpers.activations import _log_softmax
from dlhelpers.validation import (
    as_float_array,
    as_label_array,
    check_probabilities,
    check_same_shape,
)

# PyTorch clamps log(p) at -100 so that p = 0 gives a large finite loss, not inf.
LOG_CLAMP = -100.0
# PyTorch's binary_cross_entropy backward divides by max(y_hat (1 - y_hat), 1e-12), its 1e-12
# being a float32 constant: the same number here keeps gradients equal at y_hat = 0 or 1.
BCE_GRAD_EPS = float(np.float32(1e-12))


def _clamped_log(p: np.ndarray) -> np.ndarray:
    # log(max(p, e^-100)) = max(log p, -100), and never evaluates log(0).
    return np.log(np.maximum(p, np.exp(LOG_CLAMP)))


def _check_pair(y, y_hat, *, probabilities: bool) -> tuple[np.ndarray, np.ndarray]:
    y = as_float_array(y, "y")
    y_hat = as_float_array(y_hat, "y_hat")
    check_same_shape(y, y_hat, "y", "y_hat")
    if probabilities:
        check_probabilities(y, "y")
        check_probabilities(y_hat, "y_hat")
    return y, y_hat


def binary_cross_entropy(y, y_hat) -> float:
    r"""Binary cross-entropy between targets y in [0, 1] and predicted probabilities y_hat.

    .. math:: J(W) = -\frac{1}{n} \sum_{i=1}^{n}
              \left[ y^{(i)} \log \hat{y}^{(i)} + (1 - y^{(i)}) \log (1 - \hat{y}^{(i)}) \right]

    Each log is clamped at -100, as in `torch.nn.functional.binary_cross_entropy`, so a
    confident wrong prediction (y_hat = 0 for y = 1) costs 100 instead of infinity.

    Shape: y and y_hat of the same shape, any; a (N,) target is not broadcast against a (N, 1)
    prediction: that raises ValueError.

    >>> round(binary_cross_entropy(np.array([1.0, 0.0]), np.array([0.9, 0.2])), 4)
    0.1643
    """
    y, y_hat = _check_pair(y, y_hat, probabilities=True)
    per_entry = y * _clamped_log(y_hat) + (1 - y) * _clamped_log(1 - y_hat)  # shape of y
    return float(-np.mean(per_entry))


def mean_squared_error(y, y_hat) -> float:
    r"""Mean squared error.

    .. math:: J(W) = \frac{1}{n} \sum_{i=1}^{n} \left( y^{(i)} - \hat{y}^{(i)} \right)^2

    Shape: y and y_hat of the same shape, any.

    >>> mean_squared_error(np.array([1.0, 2.0]), np.array([1.0, 4.0]))
    2.0
    """
    y, y_hat = _check_pair(y, y_hat, probabilities=False)
    with np.errstate(over="ignore"):  # reported below
        loss = np.mean((y - y_hat) ** 2)  # mean over every entry of the shape of y
    if not np.isfinite(loss):
        raise ValueError(
            "the mean squared error of y and y_hat exceeds float64's range (about 1.8e308): "
            f"largest |y| {np.abs(y).max():.3g}, largest |y_hat| {np.abs(y_hat).max():.3g}; "
            "scale them down"
        )
    return float(loss)


def _check_logits(y, logits) -> tuple[np.ndarray, np.ndarray]:
    logits = as_float_array(logits, "logits", ndim=2)
    y = as_label_array(y, "y", n_classes=logits.shape[1])
    if y.shape[0] != logits.shape[0]:
        raise ValueError(
            f"y must have one label per row of logits ({logits.shape[0]}), got {y.shape[0]}"
        )
    return y, logits


def cross_entropy(y, logits) -> float:
    r"""Softmax cross-entropy for several classes, from raw scores (logits).

    .. math:: J(W) = -\frac{1}{n} \sum_{i=1}^{n} \log \mathrm{softmax}(z^{(i)})_{y^{(i)}}

    Computed with a stable log-softmax, as `torch.nn.functional.cross_entropy`.

    Shape: y (N,) integer labels in [0, C); logits (N, C).

    >>> round(cross_entropy(np.array([0]), np.array([[2.0, 0.0]])), 4)
    0.1269
    """
    y, logits = _check_logits(y, logits)
    return _cross_entropy(y, _log_softmax(logits, axis=1))


def _cross_entropy(y: np.ndarray, log_probs: np.ndarray) -> float:
    picked = log_probs[np.arange(len(y)), y]  # (N,) log-probabilities of the correct classes
    return float(-(picked / len(y)).sum())  # divide first: the sum cannot overflow


class _Loss:
    """A loss object: `forward(y_hat, y)` returns J, then `backward()` returns dJ/dy_hat.

    A subclass names its loss function (target first, as in the lecture) in `function`, and
    defines `backward()` from what `forward` saved.
    """

    def __init__(self):
        self._cache = None

    def __call__(self, y_hat, y) -> float:
        return self.forward(y_hat, y)

    def forward(self, y_hat, y) -> float:
        self._cache = None  # a forward that fails leaves nothing for backward
        loss = self.function(y, y_hat)  # validates both
        self._cache = (np.asarray(y_hat, dtype=np.float64), np.asarray(y, dtype=np.float64))
        return loss

    def _cached(self):
        if self._cache is None:
            raise RuntimeError(
                f"call {type(self).__name__}.forward before backward(): backward() uses what "
                "the last successful forward saved"
            )
        return self._cache


class BCELoss(_Loss):
    r"""Binary cross-entropy on probabilities, as `torch.nn.BCELoss`.

    backward():

    .. math:: \frac{\partial J}{\partial \hat{y}} =
              \frac{1}{n} \frac{\hat{y} - y}{\max(\hat{y}(1 - \hat{y}), 10^{-12})}
    """

    function = staticmethod(binary_cross_entropy)

    def backward(self) -> np.ndarray:
        y_hat, y = self._cached()
        denominator = np.maximum(y_hat * (1 - y_hat), BCE_GRAD_EPS)  # shape of y_hat
        return (y_hat - y) / denominator / y.size  # shape of y_hat


class MSELoss(_Loss):
    r"""Mean squared error, as `torch.nn.MSELoss`.

    backward():

    .. math:: \frac{\partial J}{\partial \hat{y}} = \frac{2}{n} (\hat{y} - y)
    """

    function = staticmethod(mean_squared_error)

    def backward(self) -> np.ndarray:
        y_hat, y = self._cached()
        return 2.0 * (y_hat - y) / y.size  # shape of y_hat


class CrossEntropyLoss(_Loss):
    r"""Softmax cross-entropy on logits and integer labels, as `torch.nn.CrossEntropyLoss`.

    forward(logits, y); backward() returns dJ/dlogits:

    .. math:: \frac{\partial J}{\partial z} = \frac{1}{n} \left( \mathrm{softmax}(z) - \mathrm{onehot}(y) \right)
    """  # noqa: E501

    def forward(self, logits, y) -> float:
        self._cache = None
        y, logits = _check_logits(y, logits)
        log_probs = _log_softmax(logits, axis=1)  # (N, C)
        self._cache = (log_probs, y)
        return _cross_entropy(y, log_probs)

    def backward(self) -> np.ndarray:
        log_probs, y = self._cached()
        grad = np.exp(log_probs)  # softmax(z), (N, C)
        grad[np.arange(len(y)), y] -= 1.0  # minus onehot(y)
        grad /= len(y)
        return grad
