"""The finite-difference oracle itself, checked against torch.autograd and exact derivatives."""

import numpy as np
import pytest
import torch

from dlhelpers.gradcheck import numerical_gradient, relative_error
from dlhelpers.seeding import as_rng, set_seed


def test_numerical_gradient_matches_torch_autograd():
    x = np.random.default_rng(0).normal(size=(3, 4))

    def f(v):
        return float(np.sum(np.tanh(v) * v**2))

    x_t = torch.tensor(x, requires_grad=True)
    (torch.tanh(x_t) * x_t**2).sum().backward()
    numeric = numerical_gradient(f, x)
    assert numeric.shape == x.shape
    assert relative_error(numeric, x_t.grad.numpy()) < 1e-9


def test_numerical_gradient_does_not_modify_x_and_restores_each_entry():
    x = np.array([1.0, 2.0, 3.0])
    seen = []
    numerical_gradient(lambda v: seen.append(v.copy()) or float(v.sum()), x)
    np.testing.assert_array_equal(x, [1.0, 2.0, 3.0])
    # Each call perturbs exactly one entry.
    for v in seen:
        assert np.count_nonzero(v != x) == 1


def test_relative_error_is_zero_for_equal_and_one_for_opposite():
    a = np.array([1.0, -2.0])
    assert relative_error(a, a) == 0.0
    assert relative_error(a, -a) == pytest.approx(1.0)
    assert relative_error(np.zeros(2), np.zeros(2)) == 0.0


@pytest.mark.parametrize(
    ("call", "error", "words"),
    [
        (lambda: numerical_gradient("f", np.ones(2)), TypeError, "f must be a function"),
        (lambda: numerical_gradient(np.sum, np.ones(2), eps=0.0), ValueError, "eps must be > 0"),
        (lambda: numerical_gradient(lambda v: v, np.ones(2)), ValueError,
         r"f must return a single number, got an array of shape \(2,\)"),
        (lambda: numerical_gradient(np.sum, [np.nan]), ValueError, "x must be finite"),
        (lambda: relative_error(np.ones(2), np.ones(3)), ValueError,
         r"b must have the same shape as a \(2,\), got \(3,\)"),
    ],
)
def test_bad_input_raises_a_clear_error(call, error, words):
    with pytest.raises(error, match=words):
        call()


def test_set_seed_makes_numpy_and_torch_repeat():
    set_seed(3)
    first = (np.random.rand(), torch.rand(1).item())
    set_seed(3)
    assert (np.random.rand(), torch.rand(1).item()) == first


def test_as_rng_accepts_seed_generator_none_and_rejects_others():
    assert as_rng(1).integers(1000) == as_rng(1).integers(1000)
    generator = np.random.default_rng(0)
    assert as_rng(generator) is generator
    assert isinstance(as_rng(None), np.random.Generator)
    with pytest.raises(TypeError, match="rng must be None, an integer seed"):
        as_rng("seed")
    with pytest.raises(TypeError, match="seed must be an integer"):
        set_seed(1.5)
    with pytest.raises(ValueError, match=r"seed must be in \[0, 2\*\*32\)"):
        set_seed(-1)
