"""Data: seeded toy sets, scikit-learn's handwritten digits, splits, scaling and mini-batches.

Introduced in `00_why_deep_learning.ipynb` (the digits, `load_digits`), `01_perceptron.ipynb`
(`make_xor`, which no line separates), `02_activation_functions.ipynb` (`make_moons`),
`05_gradient_descent.ipynb` (`standardize` and mini-batches with `batches`) and
`07_optimization_learning_rate.ipynb` (`train_val_test_split` on the digits). Nothing is
downloaded: the toy sets are generated, the digits ship with scikit-learn. Every random function
takes `rng=` (a seed or a `numpy.random.Generator`), so the same seed gives the same data.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from dlhelpers.seeding import as_rng
from dlhelpers.validation import as_float_array, as_numeric_array, check_number, describe

# sklearn's random_state takes a seed in [0, 2**32).
_SKLEARN_SEED_LIMIT = 2**32


def _sklearn_seed(rng: np.random.Generator) -> int:
    """Draw a scikit-learn `random_state` from our generator (so `rng=` controls sklearn too)."""
    return int(rng.integers(_SKLEARN_SEED_LIMIT))


def _check_toy_args(n_samples, noise) -> None:
    check_number(n_samples, "n_samples", low=1, integer=True)
    check_number(noise, "noise", low=0)


def _as_toy_set(X, y) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Toy sets, simple to complex
# ---------------------------------------------------------------------------------------------


def make_xor(n_samples: int = 200, noise: float = 0.0, rng=None):
    r"""The XOR problem: class 1 where exactly one coordinate is positive.

    Points are drawn uniformly from the square [-1, 1]^2 and labelled

    .. math:: y = [x_1 > 0] \oplus [x_2 > 0]

    then Gaussian noise with standard deviation `noise` is added to the coordinates (the labels
    stay), which blurs the class boundary. No line separates the two classes.

    Shape: X (n_samples, 2) float64, y (n_samples,) int64 in {0, 1}.

    >>> X, y = make_xor(4, rng=0)
    >>> X.shape, y.dtype
    ((4, 2), dtype('int64'))
    """
    _check_toy_args(n_samples, noise)
    rng = as_rng(rng)
    X = rng.uniform(-1.0, 1.0, size=(n_samples, 2))  # (N, 2)
    y = (X[:, 0] > 0) != (X[:, 1] > 0)  # (N,) exclusive or
    X = X + noise * rng.standard_normal(X.shape)  # (N, 2)
    return _as_toy_set(X, y)


def make_moons(n_samples: int = 200, noise: float = 0.0, rng=None):
    """Two interleaving half circles, from `sklearn.datasets.make_moons`.

    `noise` is the standard deviation of Gaussian noise added to the coordinates. The
    scikit-learn `random_state` is drawn from `rng`, so the same seed gives the same moons.

    Shape: X (n_samples, 2) float64, y (n_samples,) int64 in {0, 1}.

    >>> X, y = make_moons(100, noise=0.1, rng=0)
    >>> X.shape, y.shape
    ((100, 2), (100,))
    """
    _check_toy_args(n_samples, noise)
    import sklearn.datasets  # imported when used: it takes ~1 s

    seed = _sklearn_seed(as_rng(rng))
    return _as_toy_set(*sklearn.datasets.make_moons(n_samples, noise=noise, random_state=seed))


def make_circles(n_samples: int = 200, noise: float = 0.0, factor: float = 0.5, rng=None):
    """A small circle (class 1) inside a large one (class 0), from `sklearn.datasets.make_circles`.

    `factor` is the ratio of the inner radius to the outer radius (in (0, 1)); `noise` is the
    standard deviation of Gaussian noise added to the coordinates.

    Shape: X (n_samples, 2) float64, y (n_samples,) int64 in {0, 1}.

    >>> X, y = make_circles(100, noise=0.05, rng=0)
    >>> X.shape, y.shape
    ((100, 2), (100,))
    """
    _check_toy_args(n_samples, noise)
    check_number(factor, "factor", low=0, low_open=True)
    if factor >= 1:
        raise ValueError(f"factor must be < 1 (inner radius / outer radius), got {factor}")
    import sklearn.datasets  # imported when used: it takes ~1 s

    seed = _sklearn_seed(as_rng(rng))
    X, y = sklearn.datasets.make_circles(n_samples, noise=noise, factor=factor, random_state=seed)
    return _as_toy_set(X, y)


def make_spirals(n_samples: int = 300, n_classes: int = 3, noise: float = 0.0, rng=None):
    r"""`n_classes` interleaved spiral arms, one per class.

    Arm k is the curve, for t from 0 to 1,

    .. math:: r = t, \qquad \theta = \frac{2 \pi k}{K} + 2 \pi t, \qquad
              x = (r \cos\theta,\ r \sin\theta)

    so the arms are rotated copies that never cross; Gaussian noise with standard deviation
    `noise` is added to the coordinates. The samples are split as evenly as possible between
    the classes (the first classes get one more when it does not divide) and shuffled.

    Shape: X (n_samples, 2) float64, y (n_samples,) int64 in [0, n_classes).

    >>> X, y = make_spirals(90, n_classes=3, rng=0)
    >>> np.bincount(y).tolist()
    [30, 30, 30]
    """
    _check_toy_args(n_samples, noise)
    check_number(n_classes, "n_classes", low=2, integer=True)
    if n_samples < n_classes:
        raise ValueError(
            f"n_samples must be at least n_classes ({n_classes}) so every class gets a point, "
            f"got {n_samples}"
        )
    rng = as_rng(rng)
    counts = np.full(n_classes, n_samples // n_classes)
    counts[: n_samples % n_classes] += 1
    y = np.repeat(np.arange(n_classes), counts)  # (N,) 0...0 1...1 ...
    t = np.concatenate([np.linspace(0.0, 1.0, count) for count in counts])  # (N,) along each arm
    theta = 2 * np.pi * y / n_classes + 2 * np.pi * t  # (N,)
    X = t[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)  # (N, 1) * (N, 2)
    X = X + noise * rng.standard_normal(X.shape)  # (N, 2)
    order = rng.permutation(n_samples)
    return _as_toy_set(X[order], y[order])


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------


def load_digits():
    """scikit-learn's bundled handwritten digits: 1797 images of 8x8 pixels, labels 0 to 9.

    The data ships with scikit-learn, so nothing is downloaded. Pixel values are integers from
    0 (white) to 16 (black); `X[i].reshape(8, 8)` is the i-th image.

    Shape: X (1797, 64) float64 in [0, 16], y (1797,) int64 in [0, 9].

    >>> X, y = load_digits()
    >>> X.shape, y.shape
    ((1797, 64), (1797,))
    """
    import sklearn.datasets  # imported when used: it takes ~1 s

    X, y = sklearn.datasets.load_digits(return_X_y=True)
    return np.asarray(X, dtype=np.float64), np.asarray(y, dtype=np.int64)


# ---------------------------------------------------------------------------------------------
# Splits, scaling, mini-batches
# ---------------------------------------------------------------------------------------------


def _check_features_and_targets(X, y, y_name: str = "y") -> tuple[np.ndarray, np.ndarray]:
    """X as a 2-D float64 array and y as finite numbers (class labels or regression targets, in
    their own dtype) with one entry, or row, per row of X; errors about y name it `y_name`."""
    X = as_float_array(X, "X", ndim=2)
    targets = as_numeric_array(y, y_name)
    if targets.ndim == 0:
        raise ValueError(f"{y_name} must have one entry per row of X ({X.shape[0]} rows), "
                         f"got a scalar ({describe(y)})")
    if targets.shape[0] != X.shape[0]:
        raise ValueError(
            f"{y_name} must have one entry per row of X ({X.shape[0]} rows), got "
            f"{targets.shape[0]} (X has shape {X.shape}, {y_name} has shape {targets.shape})"
        )
    return X, targets


def train_val_test_split(X, y, val_size: float = 0.15, test_size: float = 0.15, rng=None,
                         stratify: bool = True):
    """Split (X, y) into training, validation and test sets.

    Two calls of `sklearn.model_selection.train_test_split`: the first holds out `test_size`
    of the samples, the second takes `val_size` of the whole (val_size / (1 - test_size) of
    what is left) for validation. With `stratify=True` (for class labels) every part keeps the
    class proportions of y; use `stratify=False` for regression targets.

    Shape: X (N, D), y (N,) or (N, k); the parts keep the trailing shapes.

    >>> X, y = load_digits()
    >>> X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(X, y, rng=0)
    >>> len(X_train) + len(X_val) + len(X_test) == len(X)
    True
    """
    X, y = _check_features_and_targets(X, y)
    check_number(val_size, "val_size", low=0, low_open=True)
    check_number(test_size, "test_size", low=0, low_open=True)
    if val_size + test_size >= 1:
        raise ValueError(
            "val_size + test_size must be < 1 to leave samples for training, "
            f"got {val_size} + {test_size} = {val_size + test_size}"
        )
    if not isinstance(stratify, bool):
        raise TypeError(f"stratify must be True or False, got {describe(stratify)}")
    from sklearn.model_selection import train_test_split  # imported when used: it takes ~1 s

    rng = as_rng(rng)
    try:
        X_rest, X_test, y_rest, y_test = train_test_split(
            X, y, test_size=test_size, stratify=y if stratify else None,
            random_state=_sklearn_seed(rng),
        )
        X_train, X_val, y_train, y_val = train_test_split(
            X_rest, y_rest, test_size=val_size / (1 - test_size),
            stratify=y_rest if stratify else None, random_state=_sklearn_seed(rng),
        )
    except ValueError as error:  # e.g. a class too small to appear in every part
        hint = " (use stratify=False for regression targets)" if stratify else ""
        raise ValueError(f"cannot split {len(X)} samples: {error}{hint}") from error
    return X_train, X_val, X_test, y_train, y_val, y_test


def standardize(X_train, *others) -> tuple[np.ndarray, ...]:
    r"""Scale every column to mean 0 and standard deviation 1, using the training statistics.

    .. math:: x' = \frac{x - \mu_{\text{train}}}{\sigma_{\text{train}}}

    The same mu and sigma (computed on `X_train` only, so nothing leaks from the validation or
    test data) are applied to each array in `others`. A column that is constant in `X_train`
    (the digits have always-white corner pixels) has sigma = 0: it is only shifted (divided by
    1), so no NaN appears. The inputs are not modified.

    Each column is first divided by its largest |x| in `X_train`, s, which changes nothing
    mathematically, :math:`x' = (x/s - \mu/s) / (\sigma/s)`, but keeps the squares in sigma
    from overflowing (1e200) or vanishing (1e-320). A value in `others` so far from the
    training data that x' exceeds float64's range (about 1.8e308) raises a ValueError.

    Always returns a tuple, one array per input, so unpack it:
    `X_train, X_val, X_test = standardize(X_train, X_val, X_test)` or
    `(X_train,) = standardize(X_train)`.

    Shape: X_train (N, D) and every other array (M, D).

    >>> (Z,) = standardize(np.array([[1.0, 5.0], [3.0, 5.0]]))
    >>> Z
    array([[-1.,  0.],
           [ 1.,  0.]])
    """
    X_train = as_float_array(X_train, "X_train", ndim=2)
    arrays = [as_float_array(X, f"others[{i}]", ndim=2) for i, X in enumerate(others)]
    for i, X in enumerate(arrays):
        if X.shape[1] != X_train.shape[1]:
            raise ValueError(
                f"others[{i}] must have {X_train.shape[1]} columns like X_train, "
                f"got shape {X.shape}"
            )
    largest = np.abs(X_train).max(axis=0)  # (D,) s, 0 only for an all-zero column
    scaled = X_train / np.where(largest == 0, 1.0, largest)  # (N, D) / (D,): entries in [-1, 1]
    constant = X_train.max(axis=0) == X_train.min(axis=0)  # (D,)
    # A constant column: subtract its value exactly and divide by 1 (no scaling by s either).
    scale = np.where(constant, 1.0, largest)  # (D,) s
    mean = np.where(constant, X_train[0], scaled.mean(axis=0))  # (D,) mu / s
    std = np.where(constant, 1.0, scaled.std(axis=0))  # (D,) sigma / s
    results = []
    for name, X in [("X_train", X_train)] + [(f"others[{i}]", X) for i, X in enumerate(arrays)]:
        with np.errstate(over="ignore"):  # only far outside the training range; checked below
            Z = (X / scale - mean) / std  # ((M, D) / (D,) - (D,)) / (D,)
        if not np.isfinite(Z).all():
            raise ValueError(
                f"{name} is too far from X_train's mean, in units of its standard deviation, "
                f"to standardize in float64 (the result would exceed about 1.8e308)"
            )
        results.append(Z)
    return tuple(results)


def batches(X, y, batch_size: int, shuffle: bool = True, rng=None, drop_last: bool = False
            ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Yield mini-batches (X_batch, y_batch) that together cover every sample exactly once.

    With `shuffle=True` the order is a random permutation drawn from `rng` (pass a seed for
    the same batches every time); otherwise the data's own order. The last batch is smaller
    when batch_size does not divide N; `drop_last=True` leaves it out, as torch's
    `DataLoader(drop_last=True)`: then every batch holds exactly batch_size samples, the
    N % batch_size samples at the end of the order are skipped, and for N < batch_size there
    is no batch at all. The batches are copies: changing them leaves X and y alone.

    Shape: X (N, D), y (N, ...); X_batch (B, D), y_batch (B, ...) with B <= batch_size.

    >>> X, y = np.arange(10.0).reshape(5, 2), np.arange(5)
    >>> [len(yb) for _, yb in batches(X, y, batch_size=2, rng=0)]
    [2, 2, 1]
    >>> [len(yb) for _, yb in batches(X, y, batch_size=2, rng=0, drop_last=True)]
    [2, 2]
    """
    X, y = _check_features_and_targets(X, y)
    check_number(batch_size, "batch_size", low=1, integer=True)
    for name, value in (("shuffle", shuffle), ("drop_last", drop_last)):
        if not isinstance(value, bool):
            raise TypeError(f"{name} must be True or False, got {describe(value)}")
    # Checked above, drawn here: a bad argument raises at the call, not at the first batch.
    order = as_rng(rng).permutation(len(X)) if shuffle else np.arange(len(X))  # (N,)
    if drop_last:
        order = order[: len(order) - len(order) % batch_size]  # (N - N % B,) whole batches
    return _batches_in_order(X, y, order, batch_size)


def _batches_in_order(X, y, order, batch_size):
    for start in range(0, len(order), batch_size):
        index = order[start : start + batch_size]  # (B,)
        yield X[index], y[index]  # (B, D), (B, ...)
