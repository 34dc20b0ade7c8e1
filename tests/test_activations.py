"""Activations against PyTorch (float64) and against finite differences.

Tolerance: rtol=1e-12, atol=1e-15 for values; derivatives against torch.autograd with the same
tolerance, against central differences (eps=1e-6) with atol=1e-7.
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from dlhelpers import activations as act
from dlhelpers.gradcheck import numerical_gradient

RTOL, ATOL = 1e-12, 1e-15

PAIRS = [
    (act.sigmoid, act.sigmoid_derivative, torch.sigmoid),
    (act.tanh, act.tanh_derivative, torch.tanh),
    (act.relu, act.relu_derivative, torch.relu),
]
IDS = ["sigmoid", "tanh", "relu"]

# From the most negative to the largest float64, through subnormals (5e-324, 1e-320).
EXTREMES = np.array([-1.7976931348623157e308, -1e308, -1e4, -745.0, -710.0, -50.0, -1.0, -1e-8,
                     -1e-320, 0.0, 5e-324, 1e-320, 1e-8, 1.0, 50.0, 710.0, 1e4, 1e308,
                     1.7976931348623157e308])

finite_arrays = arrays(
    np.float64,
    array_shapes(min_dims=1, max_dims=3, max_side=5),
    elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
)


def _torch_value_and_grad(torch_fn, z):
    t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    out = torch_fn(t)
    out.sum().backward()
    return out.detach().numpy(), t.grad.numpy()


@pytest.mark.parametrize(("fn", "derivative", "torch_fn"), PAIRS, ids=IDS)
def test_values_and_derivatives_match_torch_at_extremes(fn, derivative, torch_fn):
    expected, expected_grad = _torch_value_and_grad(torch_fn, EXTREMES)
    np.testing.assert_allclose(fn(EXTREMES), expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(derivative(EXTREMES), expected_grad, rtol=RTOL, atol=ATOL)


@settings(max_examples=40, deadline=None)
@given(z=finite_arrays)
@pytest.mark.parametrize(("fn", "derivative", "torch_fn"), PAIRS, ids=IDS)
def test_random_inputs_match_torch_and_stay_finite(fn, derivative, torch_fn, z):
    expected, expected_grad = _torch_value_and_grad(torch_fn, z)
    value, grad = fn(z), derivative(z)
    assert value.shape == z.shape and grad.shape == z.shape
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(value, expected, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(grad, expected_grad, rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize(("fn", "derivative", "torch_fn"), PAIRS, ids=IDS)
def test_derivatives_match_finite_differences(fn, derivative, torch_fn):
    z = np.array([-3.0, -0.7, 0.4, 2.5])  # away from ReLU's kink at 0
    numeric = numerical_gradient(lambda v: float(np.sum(fn(v))), z)
    np.testing.assert_allclose(derivative(z), numeric, atol=1e-7)


def test_relu_derivative_is_zero_for_negative_and_at_zero_one_for_positive():
    np.testing.assert_array_equal(act.relu_derivative(np.array([-2.0, 0.0, 3.0])), [0, 0, 1])


def test_scalar_in_gives_numpy_scalar_out():
    assert isinstance(act.sigmoid(0.0), np.float64)
    assert act.sigmoid(0.0) == 0.5


def test_input_array_is_not_modified():
    z = np.array([-1e4, 0.0, 1e4])
    before = z.copy()
    for fn in (act.sigmoid, act.tanh, act.relu, act.softmax, act.sigmoid_derivative):
        fn(z)
    np.testing.assert_array_equal(z, before)


@settings(max_examples=40, deadline=None)
@given(z=arrays(np.float64, array_shapes(min_dims=2, max_dims=2, max_side=6),
                elements=st.floats(-1e4, 1e4, allow_nan=False)))
def test_softmax_and_log_softmax_match_torch(z):
    expected = torch.softmax(torch.tensor(z), dim=-1).numpy()
    np.testing.assert_allclose(act.softmax(z), expected, rtol=1e-12, atol=1e-300)
    np.testing.assert_allclose(act.softmax(z).sum(axis=-1), 1.0, rtol=1e-12)
    expected_log = torch.log_softmax(torch.tensor(z), dim=0).numpy()
    np.testing.assert_allclose(act.log_softmax(z, axis=0), expected_log, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("fn", [act.sigmoid, act.tanh, act.relu, act.softmax,
                                act.sigmoid_derivative, act.tanh_derivative,
                                act.relu_derivative])
@pytest.mark.parametrize(
    ("bad", "error", "words"),
    [
        ("1.0", TypeError, "z must be a number"),
        (None, TypeError, "z must be a number"),
        (np.array([1.0, np.nan]), ValueError, "z must be finite, got NaN"),
        (np.array([np.inf]), ValueError, "z must be finite, got inf"),
        (np.array([]), ValueError, "z must not be empty"),
        (np.array(["a"]), TypeError, "z must hold real numbers"),
        (np.array([True]), TypeError, "z must hold real numbers"),
        ([[1.0], [1.0, 2.0]], TypeError, "z must be an array of numbers"),
        (torch.zeros(2), TypeError, "numpy array, got a torch Tensor"),
    ],
)
def test_bad_input_raises_a_clear_error(fn, bad, error, words):
    with pytest.raises(error, match=words):
        fn(bad)


def test_softmax_of_logits_further_apart_than_float64_reaches_stays_finite():
    # z - max(z) overflows to -inf here; torch returns log_softmax -inf, we clamp to float64's min
    z = np.array([[1e308, -1e308], [-1.7976931348623157e308, 1.7976931348623157e308]])
    expected = torch.softmax(torch.from_numpy(z), dim=1).numpy()
    np.testing.assert_array_equal(act.softmax(z, axis=1), expected)  # [[1, 0], [0, 1]]
    log_p = act.log_softmax(z, axis=1)
    assert np.all(np.isfinite(log_p))
    np.testing.assert_array_equal(log_p, [[0.0, np.finfo(np.float64).min],
                                          [np.finfo(np.float64).min, 0.0]])


def test_softmax_rejects_a_bad_axis_and_a_scalar():
    with pytest.raises(ValueError, match=r"axis must be in \[-2, 1\].*got 2"):
        act.softmax(np.zeros((2, 3)), axis=2)
    with pytest.raises(TypeError, match="axis must be an integer"):
        act.softmax(np.zeros((2, 3)), axis=1.0)
    with pytest.raises(ValueError, match="at least 1 dimension"):
        act.softmax(3.0)
