"""dlhelpers.nn against PyTorch (float64) and against finite differences.

Oracles and tolerances:
- torch, same weights through `to_torch`: outputs and gradients with rtol=1e-12 and
  atol=1e-12 times the largest magnitude involved (sums in a different order round differently);
- `numerical_gradient` (central differences, eps=1e-6) for every backward pass, input and
  parameters: rtol=1e-6 and atol=1e-8 * (1 + sum|out * g|); the atol covers the rounding error of
  J divided by eps (about 1e-10 * sum|out * g|). A wrong backward is off by O(1).
"""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import array_shapes, arrays

from dlhelpers.gradcheck import numerical_gradient
from dlhelpers.nn import (
    Dense,
    Dropout,
    Module,
    Parameter,
    ReLU,
    Sequential,
    Sigmoid,
    Tanh,
    to_torch,
)

RTOL = 1e-12
ACTIVATIONS = [Sigmoid, Tanh, ReLU]


def _backward_through_torch(module, x, g):
    """Output, dJ/dx and parameter gradients (in dlhelpers' layout) of J = sum(out * g) in torch."""
    twin = to_torch(module)
    x_t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    out = twin(x_t)
    (out * torch.from_numpy(g)).sum().backward()
    grads = {
        name: (p.grad.T if name.endswith("weight") else p.grad).numpy()  # torch: W is (out, in)
        for name, p in twin.named_parameters()
    }
    return out.detach().numpy(), x_t.grad.numpy(), grads


def _assert_matches_torch(module, x, rng, scale=1.0):
    """forward and backward of `module` equal torch's; atol = 1e-12 * scale."""
    out = module(x)
    g = rng.normal(size=out.shape)
    module.zero_grad()
    grad_x = module.backward(g)
    expected_out, expected_grad_x, expected_grads = _backward_through_torch(module, x, g)
    atol = 1e-12 * scale
    np.testing.assert_allclose(out, expected_out, rtol=RTOL, atol=atol)
    np.testing.assert_allclose(grad_x, expected_grad_x, rtol=RTOL, atol=atol)
    assert expected_grads.keys() == module.named_parameters().keys()
    for name, p in module.named_parameters().items():
        np.testing.assert_allclose(p.grad, expected_grads[name], rtol=RTOL, atol=atol, err_msg=name)


def _assert_matches_finite_differences(module, x, rng):
    """Every gradient backward computes equals central differences of J = sum(module(x) * g)."""
    g = rng.normal(size=module(x).shape)
    module.zero_grad()
    grad_x = module.backward(g)

    def loss_of_x(v):
        return float(np.sum(module(v) * g))

    atol = 1e-8 * (1 + np.sum(np.abs(module(x) * g)))
    np.testing.assert_allclose(grad_x, numerical_gradient(loss_of_x, x), rtol=1e-6, atol=atol)
    for name, p in module.named_parameters().items():

        def loss_of_param(v, p=p):
            saved = p.value.copy()
            p.value[...] = v
            loss = loss_of_x(x)
            p.value[...] = saved
            return loss

        numeric = numerical_gradient(loss_of_param, p.value)
        np.testing.assert_allclose(p.grad, numeric, rtol=1e-6, atol=atol, err_msg=name)


def _mlp(rng):
    return Sequential(
        Dense(4, 5, rng=rng), Tanh(), Dense(5, 3, rng=rng), ReLU(), Dense(3, 2, rng=rng), Sigmoid()
    )


# --- Parameter ------------------------------------------------------------------------------


def test_parameter_copies_value_and_starts_with_zero_grad():
    value = np.array([[1.0, 2.0]])
    p = Parameter(value)
    p.value += 1.0
    np.testing.assert_array_equal(value, [[1.0, 2.0]])  # the caller's array is untouched
    assert p.value.dtype == np.float64
    np.testing.assert_array_equal(p.grad, np.zeros((1, 2)))


@pytest.mark.parametrize(
    ("bad", "error"), [("abc", TypeError), ([], ValueError), ([np.nan], ValueError)]
)
def test_parameter_rejects_bad_values(bad, error):
    with pytest.raises(error, match="value"):
        Parameter(bad)


# --- Dense ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("n", "d_in", "d_out"), [(1, 1, 1), (5, 3, 2), (8, 6, 4)])
def test_dense_matches_torch_and_finite_differences(n, d_in, d_out):
    rng = np.random.default_rng(0)
    layer = Dense(d_in, d_out, rng=rng)
    x = rng.normal(size=(n, d_in))
    _assert_matches_torch(layer, x, rng)
    _assert_matches_finite_differences(layer, x, rng)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 6),
    d_in=st.integers(1, 6),
    d_out=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
    magnitude=st.sampled_from([1e-3, 1.0, 1e3, 1e6]),
)
def test_dense_matches_torch_for_random_shapes_and_magnitudes(n, d_in, d_out, seed, magnitude):
    rng = np.random.default_rng(seed)
    layer = Dense(d_in, d_out, rng=rng)
    x = magnitude * rng.normal(size=(n, d_in))
    # the largest product in x @ W, x^T @ g or g @ W^T bounds the rounding error
    _assert_matches_torch(layer, x, rng, scale=max(1.0, magnitude) * max(n, d_in, d_out) * 10)


@settings(max_examples=25, deadline=None)
@given(
    x=arrays(
        np.float64,
        array_shapes(min_dims=2, max_dims=2, max_side=4),
        elements=st.floats(-10, 10, allow_nan=False, allow_infinity=False),
    ),
    d_out=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_dense_backward_matches_finite_differences_for_random_inputs(x, d_out, seed):
    rng = np.random.default_rng(seed)
    _assert_matches_finite_differences(Dense(x.shape[1], d_out, rng=rng), x, rng)


def test_dense_initialization_matches_torch_nn_linear():
    d_in, d_out = 400, 500
    layer = Dense(d_in, d_out, rng=0)
    torch.manual_seed(0)
    reference = torch.nn.Linear(d_in, d_out, dtype=torch.float64)
    bound = 1 / np.sqrt(d_in)
    pairs = [(layer.weight.value, reference.weight), (layer.bias.value, reference.bias)]
    for ours, theirs in pairs:
        theirs = theirs.detach().numpy()
        assert np.abs(ours).max() <= bound and np.abs(theirs).max() <= bound
        # U(-a, a) has std a / sqrt(3); 200,000 weights pin it to about 0.2%, 500 biases to 4%
        assert abs(ours.std() / theirs.std() - 1) < (0.02 if ours.ndim == 2 else 0.2)
    assert layer.weight.value.shape == (d_in, d_out) and layer.bias.value.shape == (d_out,)


def test_dense_same_seed_same_weights_and_rng_is_used():
    np.testing.assert_array_equal(Dense(3, 2, rng=7).weight.value, Dense(3, 2, rng=7).weight.value)
    rng = np.random.default_rng(7)
    assert not np.array_equal(Dense(3, 2, rng=rng).weight.value, Dense(3, 2, rng=rng).weight.value)


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((0, 2), ValueError, "in_features"),
        ((2.5, 2), TypeError, "in_features"),
        ((2, 0), ValueError, "out_features"),
        ((2, True), TypeError, "out_features"),
        ((2, 2, "seed"), TypeError, "rng"),
    ],
)
def test_dense_rejects_bad_arguments(args, error, match):
    with pytest.raises(error, match=match):
        Dense(*args)


@pytest.mark.parametrize(
    ("x", "error"),
    [
        (np.ones(3), ValueError),  # one sample without the batch axis
        (np.ones((4, 2)), ValueError),  # wrong number of features
        (np.ones((2, 3, 1)), ValueError),
        (np.array([[np.nan, 1.0, 2.0]]), ValueError),
        (torch.ones(4, 3), TypeError),
    ],
)
def test_dense_forward_rejects_bad_x(x, error):
    with pytest.raises(error, match="x"):
        Dense(3, 2, rng=0)(x)


def test_dense_error_message_says_expected_and_received_shape():
    with pytest.raises(ValueError, match=r"shape \(N, 3\).*got shape \(3,\).*reshape\(1, -1\)"):
        Dense(3, 2, rng=0)(np.ones(3))


# --- activations ----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", ACTIVATIONS)
def test_activation_matches_torch_and_finite_differences(cls):
    rng = np.random.default_rng(1)
    x = rng.choice([-1, 1], size=(4, 3)) * rng.uniform(0.1, 3, size=(4, 3))  # away from ReLU's kink
    _assert_matches_torch(cls(), x, rng)
    _assert_matches_finite_differences(cls(), x, rng)


@settings(max_examples=25, deadline=None)
@given(
    x=arrays(
        np.float64,
        array_shapes(min_dims=1, max_dims=3, max_side=5),
        elements=st.floats(-1e4, 1e4, allow_nan=False, allow_infinity=False),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_activations_match_torch_for_random_shapes_and_large_values(x, seed):
    for cls in ACTIVATIONS:
        rng = np.random.default_rng(seed)
        _assert_matches_torch(cls(), x, rng)  # no overflow warning: pytest turns it into an error


# --- Dropout --------------------------------------------------------------------------------


def test_dropout_in_training_keeps_1_minus_p_and_scales_by_1_over_1_minus_p():
    p, x = 0.3, np.ones((200, 500))
    out = Dropout(p, rng=0)(x)
    kept = out != 0
    np.testing.assert_allclose(out[kept], 1 / (1 - p), rtol=1e-15)
    n = x.size  # binomial: the kept fraction is within 5 standard deviations of 1 - p
    assert abs(kept.mean() - (1 - p)) < 5 * np.sqrt(p * (1 - p) / n)
    assert abs(out.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / n)  # E[y] = x


@settings(max_examples=25, deadline=None)
@given(
    p=st.floats(0.0, 0.95),
    x=arrays(
        np.float64,
        array_shapes(min_dims=1, max_dims=3, max_side=6),
        elements=st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_dropout_forward_and_backward_use_the_same_scaled_mask(p, x, seed):
    mask = Dropout(p, rng=seed)(np.ones_like(x))  # the same seed draws the same mask
    assert np.all((mask == 0) | (mask == 1 / (1 - p)))
    layer = Dropout(p, rng=seed)
    np.testing.assert_array_equal(layer(x), x * mask)
    g = np.random.default_rng(seed).normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(g), g * mask)


def test_dropout_backward_matches_finite_differences_with_a_fixed_mask():
    rng = np.random.default_rng(2)
    x, g = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    layer = Dropout(0.5, rng=3)
    layer(x)
    grad_x = layer.backward(g)
    numeric = numerical_gradient(lambda v: float(np.sum(Dropout(0.5, rng=3)(v) * g)), x)
    np.testing.assert_allclose(grad_x, numeric, rtol=1e-6, atol=1e-8)
    assert np.any(grad_x == 0) and np.any(grad_x != 0)  # some units dropped, some kept


def test_dropout_in_eval_mode_is_the_identity_like_torch():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5, 3))
    layer = Dropout(0.9, rng=0).eval()
    _assert_matches_torch(layer, x, rng)  # to_torch keeps eval mode: torch is the identity too
    np.testing.assert_array_equal(layer(x), x)
    g = rng.normal(size=x.shape)
    np.testing.assert_array_equal(layer.backward(g), g)


def test_dropout_with_p_zero_keeps_everything_in_training():
    x = np.random.default_rng(5).normal(size=(4, 4))
    np.testing.assert_array_equal(Dropout(0.0, rng=0)(x), x)


@pytest.mark.parametrize(
    ("p", "error"), [(1.0, ValueError), (1.5, ValueError), (-0.1, ValueError), ("0.5", TypeError)]
)
def test_dropout_rejects_bad_p(p, error):
    with pytest.raises(error, match="p must"):
        Dropout(p)


# --- Sequential -----------------------------------------------------------------------------


def test_sequential_matches_torch_and_finite_differences():
    rng = np.random.default_rng(6)
    net = _mlp(rng)
    x = rng.normal(size=(7, 4))
    hidden = net[:3](x)  # the ReLU's input: finite differences need it away from the kink at 0
    assert np.abs(hidden).min() > 1e-3
    _assert_matches_torch(net, x, rng)
    _assert_matches_finite_differences(net, x, rng)


@settings(max_examples=25, deadline=None)
@given(
    n=st.integers(1, 5),
    sizes=st.lists(st.integers(1, 5), min_size=2, max_size=4),
    seed=st.integers(0, 2**32 - 1),
    magnitude=st.sampled_from([1.0, 1e3]),
)
def test_sequential_matches_torch_for_random_architectures(n, sizes, seed, magnitude):
    rng = np.random.default_rng(seed)
    layers = []
    for d_in, d_out in zip(sizes[:-1], sizes[1:], strict=True):
        layers += [Dense(d_in, d_out, rng=rng), ACTIVATIONS[rng.integers(3)]()]
    x = magnitude * rng.normal(size=(n, sizes[0]))
    _assert_matches_torch(Sequential(*layers), x, rng, scale=magnitude * 100)


def test_gradients_accumulate_over_two_backward_calls_until_zero_grad():
    rng = np.random.default_rng(7)
    net = _mlp(rng)
    x1, x2 = rng.normal(size=(3, 4)), rng.normal(size=(5, 4))
    g1, g2 = rng.normal(size=(3, 2)), rng.normal(size=(5, 2))
    net.zero_grad()
    net(x1)
    net.backward(g1)
    net(x2)
    net.backward(g2)
    accumulated = [p.grad.copy() for p in net.parameters()]
    # the loss is a sum over samples, so one backward over both batches gives the same sum
    net.zero_grad()
    net(np.vstack([x1, x2]))
    net.backward(np.vstack([g1, g2]))
    for got, expected in zip(accumulated, net.parameters(), strict=True):
        np.testing.assert_allclose(got, expected.grad, rtol=1e-12, atol=1e-14)
    net.zero_grad()
    assert all(np.all(p.grad == 0) for p in net.parameters())


def test_a_module_used_twice_gets_both_gradient_contributions():
    rng = np.random.default_rng(8)
    shared = Dense(3, 3, rng=rng)
    net = Sequential(shared, Tanh(), shared)
    assert net.parameters() == [shared.weight, shared.bias]  # listed once
    twin = to_torch(net)
    assert twin[0] is twin[2]
    x = rng.normal(size=(4, 3))
    _assert_matches_torch(net, x, rng)
    _assert_matches_finite_differences(net, x, rng)


def test_nested_sequential_matches_torch():
    rng = np.random.default_rng(9)
    net = Sequential(Sequential(Dense(2, 3, rng=rng), Tanh()), Dense(3, 1, rng=rng))
    assert list(net.state_dict()) == ["0.0.weight", "0.0.bias", "1.weight", "1.bias"]
    _assert_matches_torch(net, rng.normal(size=(5, 2)), rng)


def test_train_and_eval_propagate_to_every_child_and_to_torch():
    net = Sequential(Dense(2, 2, rng=0), Dropout(0.5), Sequential(Tanh(), Dropout(0.2)))
    modules = [net, *net.layers, *net[2].layers]
    assert net.eval() is net
    assert not any(m.training for m in modules)
    assert not any(m.training for m in to_torch(net).modules())
    net.train()
    assert all(m.training for m in modules)
    with pytest.raises(TypeError, match="mode"):
        net.train("yes")


def test_sequential_indexing_and_length():
    a, b, c = Dense(2, 3, rng=0), ReLU(), Dense(3, 1, rng=1)
    net = Sequential(a, b, c)
    assert len(net) == 3 and net[0] is a and net[-1] is c
    assert isinstance(net[1:], Sequential) and net[1:].layers == [b, c]


def test_sequential_rejects_non_modules():
    with pytest.raises(TypeError, match="position 1"):
        Sequential(Dense(2, 2, rng=0), ReLU)  # the class, not an instance
    with pytest.raises(TypeError, match="position 0"):
        Sequential("relu")


# --- backward checks shared by every module -------------------------------------------------


def _fresh_modules():
    return [Dense(3, 2, rng=0), Sigmoid(), Tanh(), ReLU(), Dropout(0.5, rng=0), _mlp(0)[:2]]


@pytest.mark.parametrize("module", _fresh_modules(), ids=repr)
def test_backward_before_forward_raises_runtime_error(module):
    with pytest.raises(RuntimeError, match="forward.*before backward"):
        module.backward(np.ones((2, 2)))


@pytest.mark.parametrize("module", _fresh_modules(), ids=repr)
def test_backward_rejects_grad_out_of_the_wrong_shape(module):
    x = np.random.default_rng(0).normal(size=(4, 3)) if not isinstance(module, Sequential) else (
        np.random.default_rng(0).normal(size=(4, 4))
    )
    out = module(x)
    with pytest.raises(ValueError, match=r"grad_out must have the shape of the forward output"):
        module.backward(np.ones(out.shape[0]))  # (N,) against (N, D): never broadcast
    with pytest.raises(ValueError, match="grad_out"):
        module.backward(np.full(out.shape, np.nan))


@pytest.mark.parametrize("module", _fresh_modules(), ids=repr)
def test_forward_and_backward_leave_the_callers_arrays_alone(module):
    rng = np.random.default_rng(10)
    x = rng.normal(size=(4, 4 if isinstance(module, Sequential) else 3))
    x_before = x.copy()
    out = module(x)
    g = rng.normal(size=out.shape)
    g_before = g.copy()
    module.backward(g)
    np.testing.assert_array_equal(x, x_before)
    np.testing.assert_array_equal(g, g_before)


@pytest.mark.parametrize(
    "module",
    [*_fresh_modules(), _mlp(1), Sequential(Tanh(), Dense(4, 2, rng=0))],
    ids=repr,
)
def test_backward_without_input_grad_returns_none_and_the_same_parameter_gradients(module):
    # input_grad=True is checked against torch and finite differences above.
    rng = np.random.default_rng(11)
    x = rng.normal(size=(4, 4 if isinstance(module, Sequential) else 3))
    g = rng.normal(size=module(x).shape)
    module.zero_grad()
    module.backward(g)
    expected = {name: p.grad.copy() for name, p in module.named_parameters().items()}
    module.zero_grad()
    assert module.backward(g, input_grad=False) is None
    for name, p in module.named_parameters().items():
        np.testing.assert_array_equal(p.grad, expected[name], err_msg=name)


@pytest.mark.parametrize(
    "module",
    [Dense(2, 3, rng=0), Sequential(Dense(2, 3, rng=0), ReLU(), Dense(3, 1, rng=1))],
    ids=repr,
)
def test_forward_reports_an_overflow_inside_the_module(module):
    # Finite x and weights whose product exceeds float64 (about 1.8e308): numpy warns, then
    # forward says what overflowed instead of returning inf or NaN.
    x = np.full((2, module.parameters()[0].value.shape[0]), 1e10)
    module.parameters()[0].value[...] = 1e300
    message = r"overflowed: .*\(largest \|x\| 1e\+10, largest \|weight\| 1e\+300\)"
    numpy_warning = r"(overflow|invalid value) encountered"
    with pytest.warns(RuntimeWarning, match=numpy_warning):
        with pytest.raises(ValueError, match=message):
            module(x)


def test_a_saturating_activation_after_an_overflow_gives_a_finite_output_as_in_torch():
    net = Sequential(Dense(2, 3, rng=0), Sigmoid())
    net[0].weight.value[...] = 1e300
    x = np.full((2, 2), 1e10)
    with torch.no_grad():
        expected = to_torch(net)(torch.from_numpy(x)).numpy()  # sigmoid(inf) = 1
    with pytest.warns(RuntimeWarning, match="overflow"):  # inside the Dense, as in torch
        np.testing.assert_array_equal(net(x), expected)


def test_backward_rejects_an_input_grad_that_is_not_a_bool():
    net = _mlp(0)
    net(np.ones((2, 4)))
    with pytest.raises(TypeError, match="input_grad must be True or False, got str 'no'"):
        net.backward(np.ones((2, 2)), input_grad="no")


def test_sequential_checks_its_input_and_grad_out_and_every_layers_shape():
    net = _mlp(0)
    with pytest.raises(ValueError, match="x must be finite, got NaN"):
        net(np.full((2, 4), np.nan))
    with pytest.raises(TypeError, match="x must hold real numbers"):
        net(np.array([["a", "b", "c", "d"]]))
    net(np.ones((2, 4)))
    with pytest.raises(ValueError, match="grad_out must be finite, got inf"):
        net.backward(np.full((2, 2), np.inf))
    mismatched = Sequential(Dense(2, 3, rng=0), ReLU(), Dense(4, 1, rng=1))
    with pytest.raises(ValueError, match=r"\(N, 4\) for Dense\(4, 1\), got shape \(5, 3\)"):
        mismatched(np.ones((5, 2)))


def test_base_module_needs_forward_and_backward():
    with pytest.raises(NotImplementedError, match="forward"):
        Module()(np.ones(2))
    with pytest.raises(NotImplementedError, match="backward"):
        Module().backward(np.ones(2))


# --- state dicts ----------------------------------------------------------------------------


def test_state_dict_round_trip_gives_the_same_outputs():
    rng = np.random.default_rng(11)
    net, other = _mlp(rng), _mlp(rng)
    x = rng.normal(size=(3, 4))
    assert not np.allclose(net(x), other(x))
    state = net.state_dict()
    assert list(state) == ["0.weight", "0.bias", "2.weight", "2.bias", "4.weight", "4.bias"]
    other.load_state_dict(state)
    np.testing.assert_array_equal(other(x), net(x))
    state["0.weight"] += 1.0  # a copy: changing it changes neither network
    np.testing.assert_array_equal(other(x), net(x))


def test_state_dict_names_match_torch_with_weights_transposed():
    net = _mlp(0)
    torch_state = to_torch(net).state_dict()
    assert list(net.state_dict()) == list(torch_state)
    for name, value in net.state_dict().items():
        expected = torch_state[name].numpy()
        np.testing.assert_array_equal(value, expected.T if name.endswith("weight") else expected)


def test_load_state_dict_keeps_the_parameter_objects():
    net = _mlp(0)
    weight = net[0].weight
    net.load_state_dict(_mlp(1).state_dict())
    assert net[0].weight is weight  # optimizers holding the Parameter see the new values
    np.testing.assert_array_equal(weight.value, _mlp(1)[0].weight.value)


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda s: s.pop("0.bias"), ValueError, r"missing \['0.bias'\]"),
        (lambda s: s.update({"9.weight": np.ones(2)}), ValueError, r"unexpected \['9.weight'\]"),
        (lambda s: s.update({"0.weight": np.ones((5, 4))}), ValueError, r"shape \(4, 5\)"),
        (lambda s: s.update({"0.bias": np.ones((5, 1))}), ValueError, r"shape \(5,\)"),
        (lambda s: s.update({"4.bias": "x"}), TypeError, "4.bias"),
    ],
)
def test_load_state_dict_rejects_wrong_names_and_shapes_and_changes_nothing(change, error, match):
    net = _mlp(0)
    before = net.state_dict()
    state = _mlp(1).state_dict()
    change(state)
    with pytest.raises(error, match=match):
        net.load_state_dict(state)
    for name, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_rejects_a_non_dict():
    with pytest.raises(TypeError, match="state must be a dict"):
        _mlp(0).load_state_dict([np.ones(2)])


# --- to_torch -------------------------------------------------------------------------------


def test_to_torch_builds_float64_twins_with_the_same_weights():
    net = _mlp(0)
    twin = to_torch(net)
    assert isinstance(twin, torch.nn.Sequential)
    assert [type(m).__name__ for m in twin] == [
        "Linear", "Tanh", "Linear", "ReLU", "Linear", "Sigmoid"
    ]
    assert all(p.dtype == torch.float64 for p in twin.parameters())
    assert to_torch(Dropout(0.25)).p == 0.25


def test_to_torch_rejects_unknown_modules():
    class Custom(Module):
        pass

    with pytest.raises(TypeError, match="module must be"):
        to_torch(Custom())
    with pytest.raises(TypeError, match="module must be"):
        to_torch(torch.nn.Linear(2, 2))
