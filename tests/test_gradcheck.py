"""The finite-difference oracle itself, checked against torch.autograd and exact derivatives;
relative_error against the same formula in 60-digit decimal arithmetic."""

from decimal import Decimal, localcontext

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


def _exact_relative_error(a, b) -> float:
    """||a - b|| / (||a|| + ||b||) in 60-digit decimals: no overflow, no underflow."""
    with localcontext() as context:
        context.prec = 60
        a = [Decimal(float(v)) for v in np.ravel(a)]
        b = [Decimal(float(v)) for v in np.ravel(b)]

        def norm(v):
            return sum(x * x for x in v).sqrt()

        return float(norm([x - y for x, y in zip(a, b, strict=True)]) / (norm(a) + norm(b)))


@pytest.mark.parametrize("scale", [5e-324 * 2**40, 1e-300, 1e-20, 1.0, 1e200, 1e300])
def test_relative_error_matches_exact_arithmetic_at_any_scale(scale):
    rng = np.random.default_rng(0)
    a = rng.normal(size=(3, 4)) * scale
    b = a + rng.normal(size=(3, 4)) * 1e-3 * scale
    expected = _exact_relative_error(a, b)
    assert relative_error(a, b) == pytest.approx(expected, rel=1e-12)
    assert relative_error(-a, -b) == relative_error(a, b)  # the same at any sign


def test_relative_error_of_huge_and_tiny_gradients():
    # ||a - b|| / (||a|| + ||b||) = 1 / (1 + 2); the dot product 4e400 used to overflow.
    assert relative_error([1e200], [2e200]) == pytest.approx(1 / 3, rel=1e-15)
    assert relative_error([1.7e308, 1.7e308], [-1.7e308, -1.7e308]) == 1.0
    # A sign flip is a failure at every scale; the old 1e-12 floor reported 2e-08 (a pass).
    assert relative_error([1e-20], [-1e-20]) == 1.0
    assert relative_error([5e-324], [-5e-324]) == 1.0
    assert relative_error([1e-320, 0.0], [0.0, 0.0]) == 1.0  # only exact zeros are equal
    assert relative_error(np.zeros((2, 2)), np.zeros((2, 2))) == 0.0


@pytest.mark.parametrize(
    "returned",
    [3.0, 3, np.float64(3.0), np.int64(3), np.array(3.0), np.array([[3.0]]), [3.0],
     torch.tensor(3.0, dtype=torch.float64)],
    ids=["float", "int", "float64", "int64", "0-d", "(1, 1)", "list", "torch without grad"],
)
def test_numerical_gradient_accepts_any_single_real_number(returned):
    # f(v) = 3 + 2 v0 - v1, returned as `returned` is: the gradient is (2, -1).
    def f(v):
        shift = float(np.sum(v * [2.0, -1.0]))
        return returned + shift if not isinstance(returned, list) else [returned[0] + shift]

    np.testing.assert_allclose(numerical_gradient(f, np.array([0.5, 1.5])), [2.0, -1.0],
                               rtol=1e-6)


@pytest.mark.parametrize(
    ("returned", "error", "words"),
    [
        (None, TypeError, r"f must return a number, got None .*forget `return`"),
        ("a", TypeError, r"f must return a real number, got str 'a'"),
        (True, TypeError, "f must return a real number, got bool True"),
        (np.bool_(False), TypeError, "f must return a real number, got bool"),
        (1 + 2j, TypeError, "f must return a real number, got complex"),
        ([[1.0], [2.0, 3.0]], TypeError, "f must return a real number, got list"),
        (torch.tensor(1.0, requires_grad=True), TypeError, r"got Tensor .*loss\.item\(\)"),
        (np.ones(2), ValueError, r"f must return a single number, got an array of shape \(2,\)"),
        (float("nan"), ValueError, "f must return a finite number, got nan"),
        (np.array([-np.inf]), ValueError, "f must return a finite number, got -inf"),
        (10**400, ValueError, "f must return a finite number, got inf"),
    ],
)
def test_numerical_gradient_names_f_and_what_it_returned(returned, error, words):
    with pytest.raises(error, match=words) as raised:
        numerical_gradient(lambda v: returned, np.ones((2, 3)))
    assert r"at x with x[0, 0] nudged to 1.000001" in str(raised.value)


def test_numerical_gradient_rejects_an_eps_lost_in_x_or_an_overflowing_quotient():
    with pytest.raises(ValueError, match=r"eps must give x\[1\] = 1e\+20 two distinct"):
        numerical_gradient(np.sum, np.array([1.0, 1e20]))  # 1e20 +- 1e-6 == 1e20: slope 0
    with pytest.raises(ValueError, match=r"the difference quotient at x\[0\] overflows"):
        # f = 1e308 tanh(1000 x) has slope 1e311 at 0, beyond float64.
        numerical_gradient(lambda v: 1e308 * float(np.tanh(1e3 * v[0])), np.array([0.0]))
    # A slope near float64's limit is still computed: halve first, then divide by eps.
    slope = numerical_gradient(lambda v: 1.5e308 * float(v[0]), np.array([0.0]), eps=1.0)
    np.testing.assert_allclose(slope, [1.5e308], rtol=1e-15)


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


@pytest.mark.parametrize("seed", [-1, np.int64(-3), -(2**70)])
def test_as_rng_rejects_a_negative_seed_naming_rng(seed):
    with pytest.raises(ValueError, match=r"rng must be a non-negative integer seed, got -\d+"):
        as_rng(seed)
    assert as_rng(np.int64(5)).integers(1000) == as_rng(5).integers(1000)  # numpy ints work


# ---- the in-place idiom: f ignores its argument and reads the array itself ------------------


def test_in_place_idiom_gives_the_layers_gradient():
    from dlhelpers import nn

    rng = np.random.default_rng(3)
    layer, X = nn.Dense(3, 2, rng=0), rng.normal(size=(4, 3))
    weights_before = layer.weight.value.copy()

    def loss_of_model():  # reads layer.weight.value, not an argument
        return float(np.sum(layer(X) ** 2))

    numeric = numerical_gradient(lambda W: loss_of_model(), layer.weight.value)
    layer.zero_grad()
    out = layer(X)
    layer.backward(2 * out)  # d(sum out^2)/d out
    assert relative_error(numeric, layer.weight.grad) < 1e-7
    np.testing.assert_array_equal(layer.weight.value, weights_before)  # restored, bit for bit


def test_in_place_on_a_non_contiguous_view_nudges_the_parent():
    parent = np.arange(12, dtype=np.float64).reshape(3, 4)
    view = parent[:, ::2]  # (3, 2), not contiguous

    grad = numerical_gradient(lambda v: float(np.sum(parent**2)), view)
    np.testing.assert_allclose(grad, 2 * view, rtol=1e-8)
    np.testing.assert_array_equal(parent, np.arange(12.0).reshape(3, 4))


def test_x_is_restored_when_f_raises():
    x = np.array([1.0, 2.0])
    calls = []

    def f(v):
        calls.append(v.copy())
        if len(calls) == 2:
            raise RuntimeError("boom")
        return float(v.sum())

    with pytest.raises(RuntimeError, match="boom"):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, [1.0, 2.0])


def test_other_inputs_are_copied_and_f_gets_the_copy():
    ints = np.array([1, 2, 3])
    grad = numerical_gradient(lambda v: float(np.sum(v**2)), ints)
    np.testing.assert_allclose(grad, [2.0, 4.0, 6.0], rtol=1e-8)
    assert ints.dtype == np.int64 and ints.tolist() == [1, 2, 3]
    read_only = np.array([1.0, -1.0])
    read_only.flags.writeable = False
    np.testing.assert_allclose(numerical_gradient(lambda v: float(np.sum(v**3)), read_only),
                               [3.0, 3.0], rtol=1e-8)
