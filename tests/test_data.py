"""Tests of dlhelpers.data: toy sets, digits, splits, scaling, mini-batches.

Oracles: the geometry each generator promises (points on the stated curves when noise = 0),
scikit-learn itself (its generators, its digits, its StandardScaler), exact arithmetic
(fractions and 60-digit decimals) for standardize at extreme magnitudes, and counting.
"""

from decimal import Decimal, localcontext
from fractions import Fraction

import numpy as np
import pytest
import sklearn.datasets
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from sklearn.preprocessing import StandardScaler

from dlhelpers.data import (
    batches,
    load_digits,
    make_circles,
    make_moons,
    make_spirals,
    make_xor,
    standardize,
    train_val_test_split,
)

GENERATORS = {
    "xor": make_xor,
    "moons": make_moons,
    "circles": make_circles,
    "spirals": make_spirals,
}


# ---------------------------------------------------------------------------------------------
# Toy sets
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", GENERATORS)
def test_toy_set_shapes_and_dtypes(name):
    X, y = GENERATORS[name](n_samples=101, noise=0.1, rng=0)
    assert X.shape == (101, 2) and X.dtype == np.float64
    assert y.shape == (101,) and y.dtype == np.int64
    assert np.all(np.isfinite(X))
    n_classes = 3 if name == "spirals" else 2  # make_spirals defaults to 3 arms
    assert set(np.unique(y)) == set(range(n_classes))


@pytest.mark.parametrize("name", GENERATORS)
def test_toy_sets_are_reproducible_with_a_seed_and_differ_with_another(name):
    make = GENERATORS[name]
    X1, y1 = make(n_samples=50, noise=0.1, rng=3)
    X2, y2 = make(n_samples=50, noise=0.1, rng=3)
    X3, _ = make(n_samples=50, noise=0.1, rng=4)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(X1, X3)
    # A Generator works too, and the same Generator state gives the same data.
    X4, _ = make(n_samples=50, noise=0.1, rng=np.random.default_rng(3))
    X5, _ = make(n_samples=50, noise=0.1, rng=np.random.default_rng(3))
    np.testing.assert_array_equal(X4, X5)


def test_moons_and_circles_are_sklearns_with_the_seed_drawn_from_rng():
    seed = int(np.random.default_rng(7).integers(2**32))
    X, y = make_moons(60, noise=0.2, rng=7)
    X_ref, y_ref = sklearn.datasets.make_moons(60, noise=0.2, random_state=seed)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)
    X, y = make_circles(60, noise=0.2, factor=0.3, rng=7)
    X_ref, y_ref = sklearn.datasets.make_circles(60, noise=0.2, factor=0.3, random_state=seed)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


def test_noiseless_moons_lie_on_their_half_circles():
    X, y = make_moons(200, noise=0.0, rng=0)
    outer, inner = X[y == 0], X[y == 1]
    # Outer moon: unit circle around (0, 0), upper half; inner: unit circle around (1, 0.5).
    np.testing.assert_allclose(np.hypot(outer[:, 0], outer[:, 1]), 1.0, atol=1e-12)
    assert np.all(outer[:, 1] >= -1e-12)
    np.testing.assert_allclose(np.hypot(inner[:, 0] - 1, inner[:, 1] - 0.5), 1.0, atol=1e-12)


def test_noiseless_circles_have_radius_one_and_factor():
    X, y = make_circles(200, noise=0.0, factor=0.3, rng=0)
    radius = np.hypot(X[:, 0], X[:, 1])
    np.testing.assert_allclose(radius[y == 0], 1.0, atol=1e-12)
    np.testing.assert_allclose(radius[y == 1], 0.3, atol=1e-12)


def test_noiseless_xor_labels_follow_the_signs():
    X, y = make_xor(500, noise=0.0, rng=0)
    assert np.all(np.abs(X) <= 1)
    np.testing.assert_array_equal(y, (X[:, 0] * X[:, 1] < 0).astype(np.int64))
    # All four quadrants are used.
    quadrants = set(zip((X[:, 0] > 0).tolist(), (X[:, 1] > 0).tolist(), strict=True))
    assert len(quadrants) == 4


def test_xor_noise_moves_points_but_not_labels():
    X0, y0 = make_xor(300, noise=0.0, rng=5)
    X1, y1 = make_xor(300, noise=0.3, rng=5)
    np.testing.assert_array_equal(y0, y1)  # same uniform draws, so the same labels
    shift = X1 - X0
    assert 0.2 < shift.std() < 0.4  # Gaussian noise with standard deviation 0.3


@pytest.mark.parametrize("n_samples, n_classes", [(90, 3), (100, 3), (7, 2), (50, 5)])
def test_spirals_split_classes_evenly(n_samples, n_classes):
    _, y = make_spirals(n_samples, n_classes=n_classes, rng=0)
    counts = np.bincount(y, minlength=n_classes)
    assert counts.sum() == n_samples
    assert counts.max() - counts.min() <= 1
    assert np.all(np.diff(counts) <= 0)  # the first classes get the extra samples


def test_noiseless_spirals_lie_on_their_arms():
    K = 4
    X, y = make_spirals(400, n_classes=K, noise=0.0, rng=0)
    r = np.hypot(X[:, 0], X[:, 1])
    assert np.all(r <= 1 + 1e-12)
    # theta = 2 pi k / K + 2 pi r, up to whole turns (skip the centre, where angles are undefined).
    far = r > 1e-9
    angle = np.arctan2(X[far, 1], X[far, 0])
    offset = angle - 2 * np.pi * y[far] / K - 2 * np.pi * r[far]
    np.testing.assert_allclose(np.cos(offset), 1.0, atol=1e-9)


def test_spirals_are_shuffled():
    _, y = make_spirals(300, n_classes=3, rng=0)
    assert np.any(np.diff(y) < 0)  # not sorted by class


@pytest.mark.parametrize("name", GENERATORS)
@pytest.mark.parametrize(
    "kwargs, error",
    [
        ({"n_samples": 0}, ValueError),
        ({"n_samples": -5}, ValueError),
        ({"n_samples": 2.5}, TypeError),
        ({"n_samples": "100"}, TypeError),
        ({"noise": -0.1}, ValueError),
        ({"noise": float("nan")}, ValueError),
        ({"rng": "seed"}, TypeError),
    ],
)
def test_toy_sets_reject_bad_arguments(name, kwargs, error):
    argument = next(iter(kwargs))
    with pytest.raises(error, match=argument):
        GENERATORS[name](**kwargs)


@pytest.mark.parametrize(
    "make, kwargs, match",
    [
        (make_circles, {"factor": 1.0}, "factor"),
        (make_circles, {"factor": 0.0}, "factor"),
        (make_spirals, {"n_classes": 1}, "n_classes"),
        (make_spirals, {"n_samples": 2, "n_classes": 3}, "n_samples"),
    ],
)
def test_generator_specific_arguments_are_checked(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


# ---------------------------------------------------------------------------------------------
# Digits
# ---------------------------------------------------------------------------------------------


def test_load_digits_matches_sklearn():
    X, y = load_digits()
    assert X.shape == (1797, 64) and X.dtype == np.float64
    assert y.shape == (1797,) and y.dtype == np.int64
    assert X.min() == 0 and X.max() == 16
    assert set(np.unique(y)) == set(range(10))
    X_ref, y_ref = sklearn.datasets.load_digits(return_X_y=True)
    np.testing.assert_array_equal(X, X_ref)
    np.testing.assert_array_equal(y, y_ref)


# ---------------------------------------------------------------------------------------------
# Splits
# ---------------------------------------------------------------------------------------------


def _indexed_digits():
    X, y = load_digits()
    # Column 0 of the digits is always 0: store each row's index there to track the rows.
    assert np.all(X[:, 0] == 0)
    X = X.copy()
    X[:, 0] = np.arange(len(X))
    return X, y


def test_split_is_a_partition_with_the_requested_sizes():
    X, y = _indexed_digits()
    X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
        X, y, val_size=0.2, test_size=0.1, rng=0
    )
    n = len(X)
    assert abs(len(X_test) - 0.1 * n) <= 1
    assert abs(len(X_val) - 0.2 * n) <= 1
    rows = np.concatenate([X_train[:, 0], X_val[:, 0], X_test[:, 0]]).astype(int)
    np.testing.assert_array_equal(np.sort(rows), np.arange(n))  # every row exactly once
    for X_part, y_part in [(X_train, y_train), (X_val, y_val), (X_test, y_test)]:
        np.testing.assert_array_equal(y_part, y[X_part[:, 0].astype(int)])  # pairs kept
        assert X_part.dtype == np.float64 and y_part.dtype == np.int64


def test_split_is_stratified():
    X, y = _indexed_digits()
    parts = train_val_test_split(X, y, val_size=0.2, test_size=0.2, rng=1)
    overall = np.bincount(y, minlength=10)
    for y_part in parts[3:]:
        counts = np.bincount(y_part, minlength=10)
        expected = overall * len(y_part) / len(y)
        assert np.all(np.abs(counts - expected) <= 1.5), (counts, expected)


def test_split_is_seeded():
    X, y = _indexed_digits()
    a = train_val_test_split(X, y, rng=0)
    b = train_val_test_split(X, y, rng=0)
    c = train_val_test_split(X, y, rng=1)
    for part_a, part_b in zip(a, b, strict=True):
        np.testing.assert_array_equal(part_a, part_b)
    assert not np.array_equal(a[0][:, 0], c[0][:, 0])


def test_split_without_stratification_takes_regression_targets():
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(100, 3)), rng.normal(size=100)
    X_train, X_val, X_test, y_train, y_val, y_test = train_val_test_split(
        X, y, val_size=0.25, test_size=0.25, rng=0, stratify=False
    )
    assert (len(X_train), len(X_val), len(X_test)) == (50, 25, 25)
    assert y_train.dtype == np.float64


def test_split_does_not_modify_its_inputs():
    X, y = _indexed_digits()
    X_copy, y_copy = X.copy(), y.copy()
    train_val_test_split(X, y, rng=0)
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"val_size": 0.0}, ValueError, "val_size"),
        ({"test_size": 1.0, "val_size": 0.1}, ValueError, "val_size \\+ test_size"),
        ({"val_size": 0.5, "test_size": 0.5}, ValueError, "val_size \\+ test_size"),
        ({"test_size": -0.1}, ValueError, "test_size"),
        ({"val_size": "0.2"}, TypeError, "val_size"),
        ({"stratify": "yes"}, TypeError, "stratify"),
    ],
)
def test_split_rejects_bad_sizes(kwargs, error, match):
    X, y = make_moons(100, rng=0)
    with pytest.raises(error, match=match):
        train_val_test_split(X, y, rng=0, **kwargs)


def test_split_rejects_mismatched_or_misshaped_inputs():
    X, y = make_moons(100, rng=0)
    with pytest.raises(ValueError, match="one entry per row of X"):
        train_val_test_split(X, y[:-1], rng=0)
    with pytest.raises(ValueError, match="X must have 2 dimension"):
        train_val_test_split(X[:, 0], y, rng=0)


BAD_TARGETS = [
    (None, TypeError, "y must be an array of numbers, got NoneType None"),
    ("abcde", TypeError, "y must be an array of numbers, got str"),
    ([[0], [1, 2], [3], [4], [5]], TypeError, "y must be an array of numbers .*same length"),
    (np.array([0, 1, None, 1, 0], dtype=object), TypeError, "hold real numbers, got dtype object"),
    (np.array(list("abcde")), TypeError, "y must hold real numbers, got dtype <U1"),
    (np.array([0, 1, 1j, 1, 0]), TypeError, "y must hold real numbers, got dtype complex128"),
    (np.array([0.0, 1.0, np.nan, 1.0, 0.0]), ValueError, "y must be finite, got NaN"),
    (np.array([0.0, 1.0, np.inf, 1.0, 0.0]), ValueError, "y must be finite, got inf"),
    (torch.zeros(5), TypeError, r"y must be a numpy array, got a torch Tensor; .*y\.detach\(\)"),
    (3, ValueError, r"y must have one entry per row of X \(5 rows\), got a scalar \(int 3\)"),
    (np.array(3), ValueError, r"got a scalar \(an array of shape \(\) and dtype int64\)"),
]


@pytest.mark.parametrize("split", [False, True], ids=["batches", "train_val_test_split"])
@pytest.mark.parametrize("y, error, match", BAD_TARGETS)
def test_split_and_batches_reject_bad_targets_naming_y(split, y, error, match):
    X = np.zeros((5, 2))
    with pytest.raises(error, match=match) as raised:
        if split:
            train_val_test_split(X, y, rng=0)
        else:
            batches(X, y, 2)  # no next(): the error comes at the call
    assert "scalar an" not in str(raised.value)  # describe() is not glued to "a scalar"


def test_split_and_batches_keep_the_dtype_of_good_targets():
    X = np.arange(20.0).reshape(10, 2)
    for y in [np.arange(10) % 2, np.arange(10.0) / 3, np.arange(10) % 2 == 1, [0, 1] * 5]:
        (_, yb), = batches(X, y, 10, shuffle=False)
        np.testing.assert_array_equal(yb, np.asarray(y))
        assert yb.dtype == np.asarray(y).dtype
        parts = train_val_test_split(X, y, val_size=0.2, test_size=0.2, rng=0, stratify=False)
        assert all(part.dtype == np.asarray(y).dtype for part in parts[3:])


def test_split_explains_a_class_too_small_to_stratify():
    X, y = make_moons(100, rng=0)
    y = y.copy()
    y[0] = 2  # a class with one member cannot appear in every part
    with pytest.raises(ValueError, match="cannot split 100 samples.*stratify=False"):
        train_val_test_split(X, y, rng=0)


# ---------------------------------------------------------------------------------------------
# Standardize
# ---------------------------------------------------------------------------------------------


def test_standardize_uses_training_statistics_like_sklearn():
    rng = np.random.default_rng(0)
    X_train = rng.normal(3.0, 2.0, size=(50, 4))
    X_val = rng.normal(-1.0, 5.0, size=(20, 4))
    Z_train, Z_val = standardize(X_train, X_val)
    np.testing.assert_allclose(Z_train.mean(axis=0), 0.0, atol=1e-12)
    np.testing.assert_allclose(Z_train.std(axis=0), 1.0, rtol=1e-12)
    scaler = StandardScaler().fit(X_train)
    np.testing.assert_allclose(Z_train, scaler.transform(X_train), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(Z_val, scaler.transform(X_val), rtol=1e-12, atol=1e-12)


def test_standardize_handles_constant_columns_without_nan():
    X, _ = load_digits()
    constant = X.std(axis=0) == 0
    assert constant.any()  # the digits have always-white pixels
    X_train, X_test = X[:1000], X[1000:]
    Z_train, Z_test = standardize(X_train, X_test)
    assert np.all(np.isfinite(Z_train)) and np.all(np.isfinite(Z_test))
    assert np.all(Z_train[:, constant] == 0)
    np.testing.assert_allclose(Z_test, StandardScaler().fit(X_train).transform(X_test),
                               atol=1e-12)
    # A constant non-zero column with a mean that is not exact in floating point.
    column = np.full((7, 1), 0.1)
    (Z,) = standardize(column)
    assert np.all(Z == 0)


def _exact_standardize(X_train, X):
    """The oracle: mean and standard deviation of each column of X_train in exact rational
    arithmetic, the square root and the division in 60-digit decimals; constant columns are only
    shifted, like sklearn's StandardScaler. Shape: X_train (N, D), X (M, D)."""
    Z = np.empty(X.shape)
    with localcontext() as context:
        context.prec = 60
        for j in range(X.shape[1]):
            column = [Fraction(float(v)) for v in X_train[:, j]]
            mean = sum(column) / len(column)
            variance = sum((v - mean) ** 2 for v in column) / len(column)
            std = (Decimal(variance.numerator) / Decimal(variance.denominator)).sqrt()
            for i in range(X.shape[0]):
                shifted = Fraction(float(X[i, j])) - mean
                shifted = Decimal(shifted.numerator) / Decimal(shifted.denominator)
                Z[i, j] = float(shifted / std) if variance else float(shifted)
    return Z


@pytest.mark.parametrize(
    "X_train, expected",
    [
        ([[1e200], [-1e200], [0.0]], [[1.5**0.5], [-(1.5**0.5)], [0.0]]),  # was 0: x**2 overflowed
        ([[1e-320], [0.0]], [[1.0], [-1.0]]),  # was +-inf: sigma underflowed to 0
        ([[1.7e308], [-1.7e308]], [[1.0], [-1.0]]),
        ([[5e-324], [-5e-324], [0.0], [5e-324]], None),
        ([[1e300, 3.0], [-1e-300, 3.0], [2e299, 3.0]], None),
    ],
)
def test_standardize_is_exact_for_huge_and_tiny_values(X_train, expected):
    X_train = np.array(X_train)
    (Z,) = standardize(X_train)  # a RuntimeWarning (overflow, divide by zero) fails the test
    oracle = _exact_standardize(X_train, X_train)
    np.testing.assert_allclose(Z, oracle, rtol=1e-14, atol=1e-15)
    if expected is not None:
        np.testing.assert_allclose(Z, expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("k", [-1000, -600, 600, 1000])
def test_standardize_does_not_change_when_the_data_is_rescaled(k):
    rng = np.random.default_rng(k % 7)
    X_train, X_val = rng.normal(3.0, 2.0, size=(30, 3)), rng.normal(-1.0, 5.0, size=(10, 3))
    X_train[:, 2] = 0.1  # a constant column: shifted only, so it scales with 2**k
    expected = standardize(X_train, X_val)
    # Multiplying by a power of two is exact in floating point, so is the answer's scaling.
    Z_train, Z_val = standardize(X_train * 2.0**k, X_val * 2.0**k)
    np.testing.assert_array_equal(Z_train[:, :2], expected[0][:, :2])
    np.testing.assert_array_equal(Z_val[:, :2], expected[1][:, :2])
    np.testing.assert_array_equal(Z_val[:, 2], expected[1][:, 2] * 2.0**k)
    np.testing.assert_allclose(expected[1], StandardScaler().fit(X_train).transform(X_val),
                               rtol=1e-12, atol=1e-12)


finite_floats = st.floats(-1.7e308, 1.7e308, allow_nan=False, allow_infinity=False)


@settings(max_examples=60, deadline=None)
@given(X_train=arrays(np.float64, st.tuples(st.integers(2, 6), st.integers(1, 3)),
                      elements=finite_floats))
def test_standardize_matches_exact_arithmetic_for_any_finite_columns(X_train):
    oracle = _exact_standardize(X_train, X_train)
    # Exclude nearly constant columns (spread below 1e-3 of the largest |x|): there x - mean
    # cancels and float64 itself cannot give z to 1e-9, whatever the algorithm.
    for j in range(X_train.shape[1]):
        column = X_train[:, j]
        spread = np.ptp(column / np.abs(column).max()) if column.any() else 0.0
        assume(spread == 0 or spread > 1e-3)
    X_other = X_train[::-1] * 0.5  # within the training range: finite answers
    Z_train, Z_other = standardize(X_train, X_other)
    np.testing.assert_allclose(Z_train, oracle, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(Z_other, _exact_standardize(X_train, X_other), rtol=1e-9,
                               atol=1e-9)


def test_standardize_rejects_values_whose_standard_score_exceeds_float64():
    # Trained on [1e-320, 0]: mu = sigma = 5e-321, so x = 1 gives z = 2e320.
    with pytest.raises(ValueError, match=r"others\[0\] is too far from X_train's mean"):
        standardize(np.array([[1e-320], [0.0]]), np.array([[1.0]]))
    # A constant column is shifted only: 1e308 - (-1e308) overflows too.
    with pytest.raises(ValueError, match=r"others\[1\] is too far"):
        standardize(np.full((3, 1), -1e308), np.zeros((1, 1)), np.full((1, 1), 1e308))


def test_standardize_returns_a_tuple_and_leaves_inputs_alone():
    X = np.array([[1.0, 2.0], [3.0, 6.0]])
    X_copy = X.copy()
    result = standardize(X)
    assert isinstance(result, tuple) and len(result) == 1
    np.testing.assert_array_equal(X, X_copy)


def test_standardize_rejects_bad_inputs():
    X = np.ones((4, 3))
    with pytest.raises(ValueError, match=r"others\[0\] must have 3 columns"):
        standardize(X, np.ones((2, 2)))
    with pytest.raises(ValueError, match="X_train must have 2 dimension"):
        standardize(np.ones(3))
    with pytest.raises(ValueError, match="X_train must be finite"):
        standardize(np.array([[np.nan, 1.0]]))


# ---------------------------------------------------------------------------------------------
# Mini-batches
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (10, 10), (10, 64), (1, 1)])
def test_batches_cover_every_sample_exactly_once(n, batch_size):
    X = np.arange(2.0 * n).reshape(n, 2)
    y = np.arange(n)
    parts = list(batches(X, y, batch_size, rng=0))
    sizes = [len(yb) for _, yb in parts]
    assert sizes == [batch_size] * (n // batch_size) + ([n % batch_size] if n % batch_size else [])
    seen = np.concatenate([yb for _, yb in parts])
    np.testing.assert_array_equal(np.sort(seen), y)
    for Xb, yb in parts:
        np.testing.assert_array_equal(Xb, X[yb])  # rows stay paired with their targets


@pytest.mark.parametrize("n, batch_size", [(10, 3), (10, 5), (10, 64), (1, 1), (7, 2)])
@pytest.mark.parametrize("shuffle", [True, False])
def test_batches_drop_last_as_torchs_data_loader(n, batch_size, shuffle):
    # Oracle: torch's DataLoader(drop_last=True), reading the samples in the same order.
    X, y = np.arange(2.0 * n).reshape(n, 2), np.arange(n)
    order = np.random.default_rng(0).permutation(n) if shuffle else np.arange(n)
    ours = list(batches(X, y, batch_size, shuffle=shuffle, rng=0, drop_last=True))
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size,
                                         sampler=order.tolist(), drop_last=True)
    theirs = list(loader)
    assert len(ours) == len(theirs) == n // batch_size  # none at all for n < batch_size
    for (X_batch, y_batch), (X_torch, y_torch) in zip(ours, theirs, strict=True):
        np.testing.assert_array_equal(X_batch, X_torch.numpy())
        np.testing.assert_array_equal(y_batch, y_torch.numpy())
    # Without drop_last the same batches, plus the short one.
    kept = list(batches(X, y, batch_size, shuffle=shuffle, rng=0))
    assert len(kept) == len(ours) + (n % batch_size > 0)
    for (_, y_batch), (_, y_kept) in zip(ours, kept, strict=False):  # kept: one more
        np.testing.assert_array_equal(y_batch, y_kept)


def test_batches_shuffle_with_rng_and_keep_order_without():
    X, y = np.arange(40.0).reshape(20, 2), np.arange(20)
    order = lambda **kw: np.concatenate([yb for _, yb in batches(X, y, 6, **kw)])  # noqa: E731
    np.testing.assert_array_equal(order(rng=1), order(rng=1))
    assert not np.array_equal(order(rng=1), order(rng=2))
    assert not np.array_equal(order(rng=1), y)
    np.testing.assert_array_equal(order(shuffle=False), y)
    np.testing.assert_array_equal(order(rng=1), np.random.default_rng(1).permutation(20))


def test_batches_keep_target_shape_and_dtype_and_return_copies():
    X = np.arange(12.0).reshape(6, 2)
    y = np.arange(6.0).reshape(6, 1)
    X_copy = X.copy()
    for Xb, yb in batches(X, y, 4, rng=0):
        assert yb.ndim == 2 and yb.shape[1] == 1 and yb.dtype == np.float64
        Xb[:] = -1.0
    np.testing.assert_array_equal(X, X_copy)


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"batch_size": -2}, ValueError, "batch_size"),
        ({"batch_size": 2.0}, TypeError, "batch_size"),
        ({"batch_size": True}, TypeError, "batch_size"),
        ({"shuffle": 1}, TypeError, "shuffle"),
        ({"drop_last": 1}, TypeError, "drop_last"),
        ({"rng": 1.5}, TypeError, "rng"),
    ],
)
def test_batches_reject_bad_arguments_at_the_call(kwargs, error, match):
    X, y = np.zeros((5, 2)), np.zeros(5)
    arguments = {"batch_size": 2, **kwargs}
    with pytest.raises(error, match=match):
        batches(X, y, **arguments)  # no next(): the error comes before the first batch


def test_batches_reject_mismatched_inputs():
    with pytest.raises(ValueError, match=r"one entry per row of X \(5 rows\), got 4"):
        batches(np.zeros((5, 2)), np.zeros(4), 2)
    with pytest.raises(ValueError, match="X must have 2 dimension"):
        batches(np.zeros(5), np.zeros(5), 2)
    with pytest.raises(ValueError, match=r"got a scalar \(int 3\)"):
        batches(np.zeros((5, 2)), 3, 2)


@pytest.mark.parametrize("seed", [-1, np.int64(-5)])
def test_a_negative_seed_is_rejected_naming_rng(seed):
    for call in (lambda: make_moons(rng=seed), lambda: batches(np.zeros((3, 2)), [0, 1, 0], 2,
                                                               rng=seed)):
        with pytest.raises(ValueError, match=r"rng must be a non-negative integer seed, got -"):
            call()
