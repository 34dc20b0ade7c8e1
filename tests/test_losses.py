"""Losses against torch.nn.functional (float64); gradients against torch and finite differences.

Tolerance: rtol=1e-10 for values and gradients against torch; atol=1e-6 against central
differences (eps=1e-6).
"""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from dlhelpers import losses
from dlhelpers.gradcheck import numerical_gradient

RTOL = 1e-10

probabilities = st.floats(0.0, 1.0, allow_nan=False)


def _t(array, grad=False):
    return torch.tensor(np.asarray(array, dtype=np.float64), requires_grad=grad)


@st.composite
def target_and_prediction(draw, elements=probabilities):
    shape = draw(array_shapes(min_dims=1, max_dims=2, max_side=6))
    y = draw(arrays(np.float64, shape, elements=elements))
    y_hat = draw(arrays(np.float64, shape, elements=elements))
    return y, y_hat


@settings(max_examples=60, deadline=None)
@given(pair=target_and_prediction())
def test_binary_cross_entropy_matches_torch_including_0_and_1(pair):
    y, y_hat = pair
    expected = F.binary_cross_entropy(_t(y_hat), _t(y)).item()
    value = losses.binary_cross_entropy(y, y_hat)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(pair=target_and_prediction(st.floats(-1e6, 1e6, allow_nan=False)))
def test_mean_squared_error_matches_torch(pair):
    y, y_hat = pair
    expected = F.mse_loss(_t(y_hat), _t(y)).item()
    np.testing.assert_allclose(losses.mean_squared_error(y, y_hat), expected, rtol=RTOL)


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_cross_entropy_matches_torch_for_extreme_logits(data):
    n, c = data.draw(st.integers(1, 6)), data.draw(st.integers(2, 5))
    logits = data.draw(arrays(np.float64, (n, c), elements=st.floats(-1e4, 1e4)))
    y = data.draw(arrays(np.int64, (n,), elements=st.integers(0, c - 1)))
    expected = F.cross_entropy(_t(logits), torch.tensor(y)).item()
    value = losses.cross_entropy(y, logits)
    assert np.isfinite(value)
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=1e-12)


def test_bce_is_the_lectures_formula_with_its_minus_sign():
    y, y_hat = np.array([1.0, 0.0, 1.0]), np.array([0.9, 0.2, 0.6])
    by_hand = -np.mean(y * np.log(y_hat) + (1 - y) * np.log(1 - y_hat))
    assert losses.binary_cross_entropy(y, y_hat) == pytest.approx(by_hand, rel=1e-14)
    assert losses.binary_cross_entropy(y, y_hat) > 0


def test_confident_wrong_prediction_costs_100_not_infinity():
    expected = F.binary_cross_entropy(_t([0.0]), _t([1.0])).item()  # torch clamps log at -100
    assert losses.binary_cross_entropy(np.array([1.0]), np.array([0.0])) == expected


def test_cross_entropy_of_logits_further_apart_than_float64_reaches_is_finite():
    # The correct class's log-probability underflows to log(0); it is clamped to float64's min,
    # and the mean is taken without overflow: the loss is the largest float64, not inf.
    y = np.array([1, 1])
    logits = np.array([[1e308, -1e308], [1.7976931348623157e308, -1.7976931348623157e308]])
    assert losses.cross_entropy(y, logits) == np.finfo(np.float64).max
    loss_fn = losses.CrossEntropyLoss()
    loss_fn(logits, y)
    grad = loss_fn.backward()
    expected = torch.softmax(torch.from_numpy(logits), dim=1).numpy() - np.eye(2)[y]
    np.testing.assert_array_equal(grad, expected / 2)


def test_mean_squared_error_beyond_float64_is_a_clear_error():
    with pytest.raises(ValueError, match=r"exceeds float64's range .* largest \|y\| 1e\+200"):
        losses.mean_squared_error(np.array([1e200]), np.array([0.0]))
    with pytest.raises(ValueError, match="exceeds float64's range"):
        losses.MSELoss()(np.array([1e308]), np.array([-1e308]))


LOSS_OBJECTS = [
    (losses.BCELoss, torch.nn.BCELoss, lambda rng: rng.uniform(0.02, 0.98, (5, 1)),
     lambda rng: rng.integers(0, 2, (5, 1)).astype(float)),
    (losses.MSELoss, torch.nn.MSELoss, lambda rng: rng.normal(size=(4, 3)),
     lambda rng: rng.normal(size=(4, 3))),
    (losses.CrossEntropyLoss, torch.nn.CrossEntropyLoss, lambda rng: rng.normal(size=(6, 4)) * 3,
     lambda rng: rng.integers(0, 4, 6)),
]


@pytest.mark.parametrize(("ours", "theirs", "make_pred", "make_target"), LOSS_OBJECTS,
                         ids=["bce", "mse", "cross_entropy"])
def test_loss_object_backward_matches_torch_and_finite_differences(
    ours, theirs, make_pred, make_target
):
    rng = np.random.default_rng(0)
    y_hat, y = make_pred(rng), make_target(rng)
    loss = ours()
    value = loss.forward(y_hat, y)
    grad = loss.backward()

    y_hat_t = _t(y_hat, grad=True)
    y_t = torch.tensor(y) if y.dtype.kind == "i" else _t(y)
    expected = theirs()(y_hat_t, y_t)
    expected.backward()
    np.testing.assert_allclose(value, expected.item(), rtol=RTOL)
    np.testing.assert_allclose(grad, y_hat_t.grad.numpy(), rtol=RTOL, atol=1e-14)

    numeric = numerical_gradient(lambda v: ours().forward(v, y), y_hat)
    np.testing.assert_allclose(grad, numeric, atol=1e-6)


def test_bce_backward_stays_finite_at_0_and_1():
    loss = losses.BCELoss()
    loss.forward(np.array([0.0, 1.0, 0.0]), np.array([1.0, 0.0, 0.0]))
    grad = loss.backward()
    y_hat_t = _t([0.0, 1.0, 0.0], grad=True)
    F.binary_cross_entropy(y_hat_t, _t([1.0, 0.0, 0.0])).backward()
    assert np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, y_hat_t.grad.numpy(), rtol=RTOL)


def test_backward_before_forward_is_a_clear_error():
    with pytest.raises(RuntimeError, match=r"call BCELoss.forward before backward\(\)"):
        losses.BCELoss().backward()
    with pytest.raises(RuntimeError, match=r"call CrossEntropyLoss.forward before backward\(\)"):
        losses.CrossEntropyLoss().backward()


@pytest.mark.parametrize(
    ("loss_fn", "good", "bad"),
    [
        (losses.MSELoss(), (np.ones(2), np.zeros(2)), (np.ones(2), np.zeros(3))),
        (losses.CrossEntropyLoss(), (np.zeros((1, 2)), np.array([0])),
         (np.zeros((1, 2)), np.array([5]))),
    ],
    ids=["MSELoss", "CrossEntropyLoss"],
)
def test_a_failed_forward_leaves_nothing_for_backward(loss_fn, good, bad):
    loss_fn.forward(*good)
    with pytest.raises(ValueError):
        loss_fn.forward(*bad)
    with pytest.raises(RuntimeError, match="before backward"):
        loss_fn.backward()  # not the gradient of the earlier, good forward


def test_caller_arrays_are_not_modified():
    logits, y = np.array([[1.0, 2.0], [3.0, -1.0]]), np.array([0, 1])
    before = logits.copy()
    loss = losses.CrossEntropyLoss()
    loss.forward(logits, y)
    loss.backward()
    np.testing.assert_array_equal(logits, before)


@pytest.mark.parametrize("fn", [losses.binary_cross_entropy, losses.mean_squared_error])
def test_column_prediction_against_flat_target_is_rejected_not_broadcast(fn):
    message = r"y_hat must have the same shape as y \(4,\), got \(4, 1\)"
    with pytest.raises(ValueError, match=message):
        fn(np.zeros(4), np.full((4, 1), 0.5))


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: losses.binary_cross_entropy([0.0, 1.0], [0.5, 1.5]), ValueError,
         r"y_hat must hold probabilities in \[0, 1\], got values from 0.5 to 1.5"),
        (lambda: losses.binary_cross_entropy([0.0, 2.0], [0.5, 0.5]), ValueError,
         "y must hold probabilities"),
        (lambda: losses.binary_cross_entropy([0.0], [np.nan]), ValueError, "y_hat must be finite"),
        (lambda: losses.binary_cross_entropy([], []), ValueError, "y must not be empty"),
        (lambda: losses.mean_squared_error("a", [1.0]), TypeError, "y must be a number"),
        (lambda: losses.mean_squared_error([1.0, 2.0], [1.0]), ValueError, "same shape"),
        (lambda: losses.cross_entropy([0, 3], [[1.0, 2.0, 3.0]] * 2), ValueError,
         r"y must hold labels in \[0, 2\], got values from 0 to 3"),
        (lambda: losses.cross_entropy([0.5, 1], [[1.0, 2.0]] * 2), TypeError,
         "y must hold integer class labels"),
        (lambda: losses.cross_entropy([0, 1, 1], [[1.0, 2.0]] * 2), ValueError,
         r"one label per row of logits \(2\), got 3"),
        (lambda: losses.cross_entropy([0, 1], [1.0, 2.0]), ValueError,
         r"logits must have 2 dimension\(s\), got shape \(2,\)"),
        (lambda: losses.cross_entropy([[0], [1]], [[1.0, 2.0]] * 2), ValueError,
         r"y must be 1-D class labels of shape \(N,\)"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call()
