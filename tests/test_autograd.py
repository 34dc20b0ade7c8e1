"""dlhelpers.autograd against PyTorch (float64) and finite differences.

Tolerances: values and gradients agree with torch.autograd to rtol=1e-10, atol=1e-12 (both
compute in float64; only the last bits of exp/log/tanh may differ). Against central finite
differences (eps=1e-6) the relative error of the gradient is below 1e-6.
"""

import math

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from hypothesis import assume, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from dlhelpers.autograd import Value, draw_graph  # noqa: E402
from dlhelpers.gradcheck import numerical_gradient, relative_error  # noqa: E402

RTOL, ATOL = 1e-10, 1e-12


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# Each expression is written once and evaluated with Values and with torch tensors: both have
# + - * / **, unary -, and the methods exp, log, tanh, sigmoid, relu. Every one reuses nodes.
def reuse_products(a, b, c):
    return a * b + a * a + b / a - c * a


def neuron(a, b, c):
    z = a * b + c * (a - 1.5)  # a used three times
    return z.tanh() * a + (a - b).sigmoid() / (1 + b * b)


def every_op(a, b, c):
    d = (a * a + 1).log() * b - b.exp() / (a * a + 2)
    e = d**2 + (-a).relu() + 3 - c * a
    return e * c.sigmoid() + 2 / (e * e + 1) - (c**3 - 2 / b + (c**2 + 1) ** 0.5)


def shared_subexpression(a, b, c):
    h = (a * b + c).tanh()  # h used in four places
    return h * h + h.exp() * h + (1 - h).relu() * b


EXPRESSIONS = [reuse_products, neuron, every_op, shared_subexpression]
INPUTS = [(1.5, -2.0, 0.7), (-0.3, 0.8, -1.9), (2.2, 1.1, 3.0)]


def run_ours(expression, inputs):
    leaves = [Value(x) for x in inputs]
    out = expression(*leaves)
    out.backward()
    return out.data, [leaf.grad for leaf in leaves]


def run_torch(expression, inputs):
    leaves = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in inputs]
    out = expression(*leaves)
    out.backward()
    return out.item(), [leaf.grad.item() for leaf in leaves]


@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("expression", EXPRESSIONS, ids=lambda f: f.__name__)
def test_value_and_every_leaf_gradient_match_torch(expression, inputs):
    ours, our_grads = run_ours(expression, inputs)
    theirs, their_grads = run_torch(expression, inputs)
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(our_grads, their_grads, rtol=RTOL, atol=ATOL)


def test_gradient_of_x_times_x_accumulates_both_uses():
    x = Value(3.0)
    y = x * x
    y.backward()
    assert x.grad == 6.0  # 3 if the second use overwrote the first


def test_micrograd_sanity_check():
    def expression(x):
        z = 2 * x + 2 + x
        q = z.relu() + z * x
        h = (z * z).relu()
        return h + q + q * x

    ours, (our_grad,) = run_ours(expression, [-4.0])
    theirs, (their_grad,) = run_torch(expression, [-4.0])
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(our_grad, their_grad, rtol=RTOL, atol=ATOL)


def test_micrograd_more_ops():
    def expression(a, b):
        c = a + b
        d = a * b + b**3
        c = c + c + 1
        c = c + 1 + c + (-a)
        d = d + d * 2 + (b + a).relu()
        d = d + 3 * d + (b - a).relu()
        e = c - d
        f = e**2
        g = f / 2.0
        return g + 10.0 / f

    ours, our_grads = run_ours(expression, [-4.0, 2.0])
    theirs, their_grads = run_torch(expression, [-4.0, 2.0])
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(our_grads, their_grads, rtol=RTOL, atol=ATOL)


def smooth(a, b, c):
    """A smooth expression with reuse, defined for every real input."""
    h = (a * b).tanh()
    return h * a + (a - b).sigmoid() / (1 + b * b) + (a * a + 1).log() * c - (c * h).exp() * h


coordinate = st.floats(min_value=-3, max_value=3, allow_nan=False)


@settings(max_examples=40, deadline=None)
@given(a=coordinate, b=coordinate, c=coordinate)
def test_random_inputs_match_torch(a, b, c):
    def expression(a, b, c):
        return smooth(a, b, c) + (c - a).relu() * b + a / (c * c + 0.5)

    ours, our_grads = run_ours(expression, [a, b, c])
    theirs, their_grads = run_torch(expression, [a, b, c])
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(our_grads, their_grads, rtol=RTOL, atol=ATOL)


@settings(max_examples=40, deadline=None)
@given(a=coordinate, b=coordinate, c=coordinate)
def test_random_inputs_match_finite_differences(a, b, c):
    _, our_grads = run_ours(smooth, [a, b, c])

    def f(v):
        return smooth(*(Value(x) for x in v)).data

    numeric = numerical_gradient(f, np.array([a, b, c]))
    assume(np.linalg.norm(numeric) > 1e-6)  # relative error of two near-zero vectors is noise
    assert relative_error(np.array(our_grads), numeric) < 1e-6


def test_backward_twice_accumulates_leaf_gradients_like_torch():
    def expression(x, w):
        y = x * w  # an intermediate result: its grad must not be passed on twice
        return (y * 3).tanh() + y

    leaves = [Value(0.4), Value(-0.7)]
    out = expression(*leaves)
    out.backward()
    out.backward()
    tensors = [torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.4, -0.7)]
    t_out = expression(*tensors)
    t_out.backward(retain_graph=True)
    t_out.backward()
    np.testing.assert_allclose(
        [leaf.grad for leaf in leaves], [t.grad.item() for t in tensors], rtol=RTOL, atol=ATOL
    )


def test_sigmoid_and_exp_are_stable_at_the_extremes():
    for z in (-1000.0, 1000.0):
        x = Value(z)
        y = x.sigmoid()
        y.backward()
        t = torch.tensor(z, dtype=torch.float64, requires_grad=True)
        t.sigmoid().backward()
        assert math.isfinite(y.data) and math.isfinite(x.grad)
        np.testing.assert_allclose([y.data, x.grad], [t.sigmoid().item(), t.grad.item()])
    assert Value(-1000.0).exp().data == 0.0


def test_a_long_chain_needs_no_recursion():
    x = Value(1.0)
    y = x
    for _ in range(5000):
        y = y + x
    y.backward()
    assert x.grad == 5001.0


def test_constructor_rejects_bad_data():
    for bad in ("3", None, [1.0], np.array([1.0, 2.0]), True):
        with pytest.raises(TypeError, match="data must be a number"):
            Value(bad)
    for bad in (float("nan"), float("inf"), -float("inf")):
        with pytest.raises(ValueError, match="data must be finite"):
            Value(bad)
    with pytest.raises(TypeError, match="label must be a string"):
        Value(1.0, label=3)


def test_operations_reject_bad_operands_and_domains():
    x = Value(2.0, label="x")
    with pytest.raises(TypeError, match="other operand of \\+"):
        x + "a"
    with pytest.raises(TypeError, match="other operand of \\*"):
        None * x
    with pytest.raises(ValueError, match="finite"):
        x * float("nan")
    with pytest.raises(TypeError, match="exponent must be a plain number"):
        x ** Value(2.0)
    with pytest.raises(ValueError, match="log needs a positive number.*label='z'"):
        Value(0.0, label="z").log()
    with pytest.raises(ValueError, match="log needs a positive number"):
        Value(-1.0).log()
    with pytest.raises(ValueError, match="fractional power"):
        Value(-2.0) ** 0.5
    with pytest.raises(ValueError, match="no finite derivative"):
        Value(0.0) ** -1
    with pytest.raises(ValueError, match="division by zero"):
        x / 0
    with pytest.raises(ValueError, match="division by zero"):
        1 / Value(0.0)
    with pytest.raises(ValueError, match="exp of .* overflows"):
        Value(710.0).exp()
    with pytest.raises(ValueError, match="overflows"):
        Value(1e200) * 1e200
    with pytest.raises(ValueError, match="overflows"):
        Value(10.0) ** 400


@pytest.mark.parametrize(
    ("make", "op"),
    [
        (lambda: Value(1e-160) ** -1, r"\*\*-1"),  # d/dx = -x**-2 = -1e320
        (lambda: Value(1.0) / Value(1e-300), "/"),  # d/db = -a / b**2 = -1e300
        (lambda: Value(1e-320).log(), "log"),  # d/dx = 1 / x, beyond 1.8e308
    ],
    ids=["pow", "div", "log"],
)
def test_a_gradient_beyond_float64_is_a_clear_error(make, op):
    out = make()
    assert math.isfinite(out.data)  # the forward value itself is representable
    with pytest.raises(ValueError, match=f"gradient through {op} of .* overflows"):
        out.backward()


def graph_of_a_neuron():
    x, w, b = Value(2.0, label="x"), Value(-0.5, label="w"), Value(0.3, label="b")
    n = x * w + b
    n.label = "n"
    o = (n * n).tanh() + 1  # n used twice, 1 a constant
    o.label = "o"
    o.backward()
    return o


def test_draw_graph_has_one_text_per_node_showing_label_data_and_grad():
    o = graph_of_a_neuron()
    fig = draw_graph(o)
    assert isinstance(fig, Figure)
    (ax,) = fig.axes
    values = []
    stack = [o]
    while stack:
        node = stack.pop()
        if all(node is not v for v in values):
            values.append(node)
            stack.extend(node._prev)
    n_ops = sum(1 for v in values if v._prev)
    assert len(values) == 9 and n_ops == 5
    texts = [t.get_text() for t in ax.texts]
    assert len(texts) == len(values) + n_ops
    for v in values:
        expected = [v.label] if v.label else []
        expected += [f"data {v.data:.4g}", f"grad {v.grad:.4g}"]
        assert "\n".join(expected) in texts
    assert sorted(t for t in texts if "data" not in t) == sorted(["×", "+", "×", "tanh", "+"])
    # One arrow into every operation per use of an input (n * n: two), one out of each.
    arrows = [p for p in ax.patches if type(p).__name__ == "FancyArrowPatch"]
    assert len(arrows) == sum(len(v._prev) + 1 for v in values if v._prev) == 14


def _drawn_arrows(fig):
    """Every arrow of a drawn graph as its path in pixels."""
    fig.canvas.draw()
    (ax,) = fig.axes
    return [
        p.get_transform().transform_path(p.get_path())
        for p in ax.patches
        if type(p).__name__ == "FancyArrowPatch"
    ]


def _box(fig, label):
    """The pixel extent of the box whose text starts with `label`."""
    (text,) = [t for t in fig.axes[0].texts if t.get_text().split("\n")[0] == label]
    return text.get_bbox_patch().get_window_extent()


def test_draw_graph_draws_every_use_of_a_reused_node_as_its_own_edge():
    # 06's example: f = x*x + x, x is used three times (twice by the product, once by the sum)
    x = Value(3.0, label="x")
    a = x * x
    a.label = "a"
    f = a + x
    f.label = "f"
    f.backward()
    fig = draw_graph(f)
    arrows = _drawn_arrows(fig)
    # x -> × twice, a -> +, x -> +, × -> a, + -> f: six edges, as many as x's grad has terms + 3
    assert len(arrows) == 6
    # no two arrows drawn on top of each other (the two uses of x in x*x are bent apart)
    for i, p in enumerate(arrows):
        for q in arrows[:i]:
            assert p.vertices.shape != q.vertices.shape or not np.allclose(
                p.vertices, q.vertices, atol=2.0
            )
    # the arrow x -> + leaves x's box, and is not drawn through a's box (it arcs over it)
    x_box, a_box = _box(fig, "x"), _box(fig, "a")
    leaving_x = [p for p in arrows if abs(p.vertices[0, 0] - x_box.x1) < 3]
    assert len(leaving_x) == 3
    long_arrow = max(leaving_x, key=lambda p: p.vertices[:, 0].max())
    assert long_arrow.vertices[:, 0].max() > a_box.x1  # the one into the +
    curve = [  # points along the drawn curve (the path's vertices include control points)
        segment(t)
        for segment, _ in long_arrow.iter_bezier()
        for t in np.linspace(0, 1, 50)
    ]
    assert not any(a_box.contains(*point) for point in curve)
    assert max(y for _, y in curve) > a_box.y1  # over it
    for p in leaving_x:
        if p is not long_arrow:
            assert p.vertices[:, 0].max() < a_box.x0  # the two into the ×
    plt.close(fig)


def test_draw_graph_into_given_axes_and_errors():
    fig, ax = plt.subplots()
    assert draw_graph(Value(1.0, label="alone"), ax=ax) is fig
    assert [t.get_text() for t in ax.texts] == ["alone\ndata 1\ngrad 0"]
    with pytest.raises(TypeError, match="value must be a Value"):
        draw_graph(3.0)
    big = Value(0.0)
    for _ in range(200):
        big = big + 1
    with pytest.raises(ValueError, match="at most"):
        draw_graph(big)
