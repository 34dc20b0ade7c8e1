"""Exercise checkers: instant, specific feedback for the "check yourself" cells.

Used by every notebook's exercises and by the visible tests of the nbgrader assignments::

    from dlhelpers import checks
    checks.check_sigmoid(sigmoid)

Each ``check_<exercise>(fn)`` calls your function on several cases, edge cases included (very
large |z|, zeros, (N, 1) against (N,) shapes), and prints one line per case, for example::

    PASS check_sigmoid [large negative z]: z=array([-1e+04, -800, -1]) expected [0, 0, 0.2689]
    got [0, 0, 0.2689] shape (3,)

(on one line), then a summary such as ``check_sigmoid: 6/6 cases passed`` and, when a case
failed, a hint on the usual mistake. It returns True only if every case passed.

A checker never raises because of your code: an exception, a wrong type or shape, NaN, a numpy
RuntimeWarning (an overflow in ``np.exp``, a ``log(0)``) or a change made in place to one of
your inputs is a FAIL line. Your function receives copies of the inputs.

Expected values are computed when you call the checker, by the course's reference
implementations (`activations`, `losses`, `nn`, `optim`, `gradcheck`, scikit-learn's metrics),
never read from stored numbers. Values match when, entry by entry,
``|got - expected| <= atol + rtol * |expected|`` with **rtol = 1e-6, atol = 1e-8** (as
`numpy.allclose`); integer answers (counts, epochs) must match exactly. Printed values are
rounded to 4 significant digits and long arrays abbreviated.

Checkers by notebook:

- 00 `check_matmul_flops`
- 01 `check_perceptron_forward`, `check_perceptron_update`
- 02 `check_sigmoid`, `check_tanh`, `check_relu` and `check_*_derivative` for each
- 03 `check_dense_forward`, `check_parameter_count`
- 04 `check_binary_cross_entropy`, `check_mean_squared_error`, `check_softmax`,
  `check_cross_entropy`
- 05 `check_gradient_descent_step`
- 06 `check_dense_backward`, `check_numerical_gradient`, `check_bce_gradient`
- 07 `check_momentum_step`, `check_adam_step`, `check_step_decay`, `check_cosine_schedule`
- 08 `check_dropout`, `check_l2_penalty`, `check_early_stopping`
- 09 `check_accuracy`, `check_confusion_matrix`
"""

from __future__ import annotations

import copy
import numbers
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from dlhelpers import activations, gradcheck, losses, nn, optim, train
from dlhelpers.validation import is_torch

RTOL = 1e-6
ATOL = 1e-8


# ---------------------------------------------------------------------------------------------
# The engine: run the cases, compare, print one line per case, a summary and hints.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One call of the student's function: `args` in order (positional), a label to print.

    For a random output (dropout), `prop(got, args)` returns what is wrong or None, and `wants`
    says in words what it checks; type and shape are still compared with the reference output.
    """

    label: str
    args: dict
    prop: Callable[[object, dict], str | None] | None = None
    wants: str = ""


def _case(label: str, /, **args) -> Case:
    return Case(label, args)


_RAISED = object()  # stands for "no result": the student's function raised

# Failure kinds, in the order their hints are printed, with the hint used unless a checker
# gives its own.
_HINTS = {
    "todo": "Replace `raise NotImplementedError()` with your solution, then run the cell again.",
    "exception": "Your function raised an error (message above): call it yourself on the "
    "failing case's input to see where.",
    "mutation": "Your function changed one of its input arrays in place (e.g. `w -= lr * grad` "
    "or `X[mask] = 0`): build a new array instead (`w = w - lr * grad`, or work on X.copy()).",
    "warning": "numpy warned while running your function (an overflow in np.exp, or log(0)): "
    "use the numerically stable form from the notebook.",
    "type": "Return a numpy array (np.ndarray) for array results and a number for scalar "
    "results; a torch tensor converts with .detach().numpy(). Did you forget `return`?",
    "shape": "Shapes matter: (N,) and (N, 1) are different. Keep the input's shape, and use "
    "keepdims=True for sums along an axis.",
    "nan": "NaN comes from 0/0, inf - inf or 0 * log(0): see the stable form in the notebook.",
    "value": "Compare your formula with the notebook's, entry by entry, on the failing case.",
    "property": "Re-read the definition in the notebook and test your function on a small input.",
}


def _run(name: str, fn, reference: Callable, cases: list[Case], *, hints=None,
         outputs: tuple[str, ...] = ()) -> bool:
    """Run every case, print a PASS/FAIL line for each, a summary and hints; True if all pass.

    `reference(*args)` gives the expected value; `outputs` names the entries of a tuple result.
    """
    if not callable(fn):
        print(f"FAIL {name}: expected your function, got {_show(fn)}; "
              "run the cell that defines it first")
        return False
    seen: set[str] = set()
    passed = 0
    for case in cases:
        kinds = _run_case(name, fn, reference, case, outputs)
        passed += not kinds
        seen |= kinds
    print(f"{name}: {passed}/{len(cases)} cases passed")
    for kind, default in _HINTS.items():
        if kind in seen:
            print(f"Hint: {(hints or {}).get(kind, default)}")
    return passed == len(cases)


def _run_case(name: str, fn, reference: Callable, case: Case, outputs) -> set[str]:
    expected = reference(*copy.deepcopy(case.args).values())
    given = copy.deepcopy(case.args)  # case.args itself stays pristine: we compare against it
    got, problems = _call(fn, given)
    problems += [("mutation", f"changed its input {key} in place")
                 for key in case.args if not _same(case.args[key], given[key])]
    if got is not _RAISED:
        problems += _compare(expected, got, outputs, exact_values=case.prop is None)
        if case.prop is not None and not problems:
            message = case.prop(got, given)
            problems += [("property", message)] if message else []
    wanted = case.wants or _show(expected, shape=_shape(expected) != _shape(got))
    line = (f"{'FAIL' if problems else 'PASS'} {name} [{case.label}]: {_show_args(case.args)} "
            f"expected {wanted} got {_show(got)}")
    print(line + "".join(f" -- {message}" for _, message in problems))
    return {kind for kind, _ in problems}


def _call(fn, args: dict):
    """Call fn(*args); return (result, problems) with exceptions and RuntimeWarnings as problems."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(
        over="warn", divide="warn", invalid="warn"
    ):
        warnings.simplefilter("always")
        try:
            result = fn(*args.values())
        except Exception as error:  # any error in the student's code is a FAIL, not a crash
            kind = "todo" if isinstance(error, NotImplementedError) else "exception"
            return _RAISED, [(kind, f"raised {type(error).__name__}: {error}")]
    messages = dict.fromkeys(str(w.message) for w in caught if issubclass(w.category,
                                                                          RuntimeWarning))
    return result, [
        ("warning", f"overflow warning ({m})" if "overflow" in m else f"RuntimeWarning ({m})")
        for m in messages
    ]


def _same(before, after) -> bool:
    """True if an input still equals its pristine copy (generators and functions are skipped)."""
    if isinstance(before, np.ndarray):
        return (isinstance(after, np.ndarray) and before.shape == after.shape
                and np.array_equal(before, after, equal_nan=True))
    if isinstance(before, (list, tuple)):
        return len(before) == len(after) and all(map(_same, before, after))
    if isinstance(before, numbers.Number):
        return before == after
    return True


def _compare(expected, got, outputs=(), label="", *, exact_values=True) -> list[tuple[str, str]]:
    """Problems with `got` against `expected`: type, shape, NaN, then values (if exact_values)."""
    where = f"{label}: " if label else ""
    if isinstance(expected, tuple):
        names = outputs or tuple(f"value {i}" for i in range(len(expected)))
        if not isinstance(got, (tuple, list)) or len(got) != len(expected):
            return [("type", f"expected a tuple of {len(expected)} values "
                             f"({', '.join(names)}), got {_type_name(got)}")]
        return [problem for e, g, n in zip(expected, got, names, strict=True)
                for problem in _compare(e, g, label=n, exact_values=exact_values)]
    if expected is None:
        return [] if got is None else [("value", f"{where}expected None, got {_type_name(got)}")]
    problem = _kind_problem(np.asarray(expected), got)
    if problem:
        return [(problem[0], where + problem[1])]
    e, g = np.asarray(expected), np.asarray(got)
    if np.isnan(g).any():
        return [("nan", f"{where}NaN in the output")]
    if not exact_values:
        return []
    if np.issubdtype(e.dtype, np.integer):
        wrong = g != e
    else:
        wrong = ~np.isclose(g, e, rtol=RTOL, atol=ATOL)
    if not wrong.any():
        return []
    if not e.ndim:
        return [("value", f"{where}wrong value")]
    error = float(np.max(np.abs(g.astype(np.float64) - e)))
    return [("value", f"{where}wrong value: {wrong.sum()} of {wrong.size} entries differ, "
                      f"largest error {error:.3g}")]


def _kind_problem(expected: np.ndarray, got) -> tuple[str, str] | None:
    if got is None:
        return "type", "returned None (missing `return`?)"
    if is_torch(got):
        return "type", "returned a torch tensor: return a numpy array (.detach().numpy())"
    if not isinstance(got, (numbers.Real, np.generic, np.ndarray)):
        wanted = "a numpy array" if expected.ndim else "a number"
        return "type", f"expected {wanted}, got {_type_name(got)}"
    dtype = np.asarray(got).dtype
    if dtype.kind not in "biuf":
        return "type", f"expected numbers, got dtype {dtype}"
    if np.shape(got) != expected.shape:
        return "shape", f"wrong shape: expected {expected.shape}, got {np.shape(got)}"
    return None


# Printing: numbers to 4 significant digits, arrays abbreviated.


def _type_name(value) -> str:
    return type(value).__name__


def _shape(value):
    return value.shape if isinstance(value, np.ndarray) else None


def _array_text(array: np.ndarray) -> str:
    text = np.array2string(
        array, separator=", ", threshold=6, edgeitems=2, max_line_width=10**6,
        formatter={"float_kind": lambda v: f"{v:.4g}", "int_kind": str, "bool": str},
    )
    return " ".join(text.split())


def _show(value, shape: bool = True) -> str:
    """A value as printed in a PASS/FAIL line."""
    if value is _RAISED:
        return "an exception"
    if value is None:
        return "None"
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in "biuf":
            return f"array of dtype {value.dtype}"
        return _array_text(value) + (f" shape {value.shape}" if shape else "")
    if isinstance(value, (tuple, list)):
        inner = ", ".join(_show(v) for v in value)
        return f"({inner})" if isinstance(value, tuple) else f"list [{inner}]"
    if isinstance(value, (bool, np.bool_)):
        return str(value)
    if isinstance(value, (numbers.Integral, np.integer)):
        return str(int(value))
    if isinstance(value, (numbers.Real, np.floating)):
        return f"{float(value):.4g}"
    if is_torch(value):
        return f"torch {_type_name(value)}"
    return f"{_type_name(value)} {value!r}"[:60]


def _show_arg(value) -> str:
    """An input as printed: small arrays in full, larger ones by shape, functions by name."""
    if isinstance(value, np.ndarray):
        return f"array({_array_text(value)})" if value.size <= 6 else f"array(shape {value.shape})"
    if isinstance(value, list):
        return "[" + ", ".join(_show_arg(v) for v in value) + "]"
    if isinstance(value, np.random.Generator):
        return "Generator"
    if callable(value):
        return getattr(value, "__name__", _type_name(value))
    return _show(value)


def _show_args(args: dict) -> str:
    return " ".join(f"{key}={_show_arg(value)}" for key, value in args.items())


# ---------------------------------------------------------------------------------------------
# 00 why deep learning
# ---------------------------------------------------------------------------------------------


def _matmul_flops(n, k, m) -> int:
    # Each of the n*m outputs is a length-k dot product: k multiplications and k additions.
    return 2 * n * k * m


def check_matmul_flops(fn) -> bool:
    """Check fn(n, k, m): floating point operations of an (n, k) @ (k, m) product, 2 n k m."""
    cases = [
        _case("(1, 1) @ (1, 1)", n=1, k=1, m=1),
        _case("(2, 3) @ (3, 4)", n=2, k=3, m=4),
        _case("matrix times vector", n=1000, k=500, m=1),
        _case("square 1000", n=1000, k=1000, m=1000),
    ]
    return _run("check_matmul_flops", fn, _matmul_flops, cases, hints={
        "value": "Each of the n*m entries of the result is a dot product of length k: k "
                 "multiplications and k additions, so 2*n*k*m in total."})


# ---------------------------------------------------------------------------------------------
# 01 the perceptron
# ---------------------------------------------------------------------------------------------


def _perceptron_forward(X, w, w0):
    return activations.sigmoid(w0 + X @ w)  # (N, D) @ (D,) -> (N,)


def _perceptron_update(w, w0, x, y, lr):
    y_hat = 1.0 if w0 + x @ w > 0 else 0.0  # step prediction, 0 on the boundary
    return w + lr * (y - y_hat) * x, w0 + lr * (y - y_hat)


def check_perceptron_forward(fn) -> bool:
    """Check fn(X, w, w0) = sigmoid(w0 + X @ w) for X (N, D), w (D,): a (N,) result."""
    rng = np.random.default_rng(1)
    cases = [
        _case("two features", X=rng.normal(size=(4, 2)), w=np.array([0.5, -1.0]), w0=0.5),
        _case("single sample (1, D)", X=rng.normal(size=(1, 3)), w=rng.normal(size=3), w0=-1.0),
        _case("zero weights give 0.5", X=rng.normal(size=(3, 2)), w=np.zeros(2), w0=0.0),
        _case("large scores", X=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
              w=np.array([1e4, -1e4]), w0=0.0),
    ]
    return _run("check_perceptron_forward", fn, _perceptron_forward, cases, hints={
        "value": "z = w0 + X @ w has shape (N,), one score per sample; then apply the sigmoid "
                 "1 / (1 + exp(-z)).",
        "warning": "np.exp(-z) overflows for z < -709: use dlhelpers.sigmoid or the stable form "
                   "from notebook 02."})


def check_perceptron_update(fn) -> bool:
    """Check fn(w, w0, x, y, lr) -> (w_new, w0_new), Rosenblatt's rule with y in {0, 1}.

    yhat = 1 if w0 + x @ w > 0 else 0; w_new = w + lr (y - yhat) x; w0_new = w0 + lr (y - yhat).
    """
    w = np.array([1.0, -1.0])
    cases = [
        _case("right prediction: no change", w=w, w0=0.5, x=np.array([2.0, 1.0]), y=1, lr=0.1),
        _case("false negative (y=1, yhat=0)", w=w, w0=0.5, x=np.array([-1.0, 2.0]), y=1, lr=0.1),
        _case("false positive (y=0, yhat=1)", w=w, w0=0.5, x=np.array([2.0, 1.0]), y=0, lr=0.1),
        _case("score exactly 0 predicts 0", w=w, w0=0.0, x=np.array([1.0, 1.0]), y=1, lr=1.0),
        _case("three features", w=np.array([0.2, -0.4, 0.1]), w0=-0.3,
              x=np.array([1.0, 0.5, -2.0]), y=1, lr=0.5),
    ]
    return _run("check_perceptron_update", fn, _perceptron_update, cases,
                outputs=("w_new", "w0_new"), hints={
        "value": "Predict with the step function, yhat = 1 if w0 + x @ w > 0 else 0 (0 when the "
                 "score is exactly 0), then w + lr*(y - yhat)*x and w0 + lr*(y - yhat): nothing "
                 "changes when the prediction is right."})


# ---------------------------------------------------------------------------------------------
# 02 activation functions
# ---------------------------------------------------------------------------------------------


def _activation_cases() -> list[Case]:
    rng = np.random.default_rng(2)
    return [
        _case("small z", z=np.array([-2.0, -0.5, 0.5, 2.0])),
        _case("zeros", z=np.zeros(3)),
        _case("large positive z", z=np.array([1.0, 800.0, 1e4])),
        _case("large negative z", z=np.array([-1e4, -800.0, -1.0])),
        _case("column vector (N, 1)", z=rng.normal(size=(4, 1))),
        _case("matrix (2, 3)", z=3 * rng.normal(size=(2, 3))),
    ]


_STABLE_SIGMOID = ("np.exp(-z) overflows for z < -709: with e = np.exp(-np.abs(z)), use "
                   "1 / (1 + e) where z >= 0 and e / (1 + e) where z < 0 (np.where).")


def check_sigmoid(fn) -> bool:
    """Check fn(z) = 1 / (1 + exp(-z)), elementwise, for any shape and any finite z."""
    return _run("check_sigmoid", fn, activations.sigmoid, _activation_cases(), hints={
        "warning": _STABLE_SIGMOID,
        "value": "sigmoid(z) = 1 / (1 + exp(-z)): mind the minus sign in the exponent."})


def check_tanh(fn) -> bool:
    """Check fn(z) = (e^z - e^-z) / (e^z + e^-z), elementwise, for any finite z."""
    return _run("check_tanh", fn, activations.tanh, _activation_cases(), hints={
        "warning": "e^z overflows for z > 709: use np.tanh, or 2 * sigmoid(2 z) - 1 with a "
                   "stable sigmoid.",
        "nan": "inf / inf is NaN: for large |z| e^z overflows; use np.tanh.",
        "value": "tanh(z) = (e^z - e^-z) / (e^z + e^-z), between -1 and 1."})


def check_relu(fn) -> bool:
    """Check fn(z) = max(0, z), elementwise."""
    return _run("check_relu", fn, activations.relu, _activation_cases(), hints={
        "value": "ReLU(z) = max(0, z) entry by entry: np.maximum(0, z). np.max(z) would reduce "
                 "the whole array to one number.",
        "shape": "ReLU keeps the shape of z: np.maximum(0, z), not np.max."})


def check_sigmoid_derivative(fn) -> bool:
    """Check fn(z) = sigmoid(z) (1 - sigmoid(z)), elementwise, for any finite z."""
    return _run("check_sigmoid_derivative", fn, activations.sigmoid_derivative,
                _activation_cases(), hints={
        "warning": _STABLE_SIGMOID,
        "value": "sigmoid'(z) = s (1 - s) with s = sigmoid(z): apply the sigmoid first, "
                 "not z * (1 - z)."})


def check_tanh_derivative(fn) -> bool:
    """Check fn(z) = 1 - tanh(z)^2, elementwise, for any finite z."""
    return _run("check_tanh_derivative", fn, activations.tanh_derivative, _activation_cases(),
                hints={
        "warning": "Use np.tanh: the exponential form overflows for |z| > 709.",
        "value": "tanh'(z) = 1 - tanh(z)**2."})


def check_relu_derivative(fn) -> bool:
    """Check fn(z) = 1 where z > 0 and 0 where z <= 0 (0 at z = 0, as PyTorch)."""
    return _run("check_relu_derivative", fn, activations.relu_derivative, _activation_cases(),
                hints={
        "value": "ReLU'(z) = 1 for z > 0 and 0 for z < 0; at z = 0 we use 0, as PyTorch does: "
                 "(z > 0).astype(float)."})


# ---------------------------------------------------------------------------------------------
# 03 building neural networks
# ---------------------------------------------------------------------------------------------


def _dense(W, b) -> nn.Dense:
    layer = nn.Dense(*W.shape, rng=0)
    layer.weight.value[...] = W
    layer.bias.value[...] = b
    return layer


def _dense_forward(X, W, b):
    return _dense(W, b)(X)


def _parameter_count(layer_sizes) -> int:
    layers = [nn.Dense(a, b, rng=0) for a, b in zip(layer_sizes[:-1], layer_sizes[1:],
                                                      strict=True)]
    return sum(p.value.size for layer in layers for p in layer.parameters())


def _dense_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    return [
        _case("square W (D_in = D_out)", X=rng.normal(size=(4, 3)), W=rng.normal(size=(3, 3)),
              b=rng.normal(size=3)),
        _case("3 inputs -> 2 outputs", X=rng.normal(size=(5, 3)), W=rng.normal(size=(3, 2)),
              b=rng.normal(size=2)),
        _case("single sample (1, D_in)", X=rng.normal(size=(1, 4)), W=rng.normal(size=(4, 2)),
              b=rng.normal(size=2)),
        _case("zero bias", X=rng.normal(size=(3, 2)), W=rng.normal(size=(2, 4)), b=np.zeros(4)),
    ]


def check_dense_forward(fn) -> bool:
    """Check fn(X, W, b) = X @ W + b with X (N, D_in), W (D_in, D_out), b (D_out,)."""
    return _run("check_dense_forward", fn, _dense_forward, _dense_cases(), hints={
        "value": "W has shape (D_in, D_out): X @ W + b, not X @ W.T; b is added to every row.",
        "shape": "The output has one row per sample and one column per output: (N, D_out)."})


def check_parameter_count(fn) -> bool:
    """Check fn(layer_sizes): weights + biases of an MLP, e.g. [2, 3, 1] -> 2*3+3 + 3*1+1."""
    cases = [
        _case("one layer", layer_sizes=[2, 1]),
        _case("one hidden layer", layer_sizes=[2, 3, 1]),
        _case("two hidden layers", layer_sizes=[4, 8, 8, 3]),
        _case("digits MLP", layer_sizes=[64, 32, 10]),
    ]
    return _run("check_parameter_count", fn, _parameter_count, cases, hints={
        "value": "A Dense layer from a to b units has a*b weights and b biases; sum over "
                 "consecutive pairs of layer_sizes (the input layer has no parameters)."})


# ---------------------------------------------------------------------------------------------
# 04 quantifying loss
# ---------------------------------------------------------------------------------------------


def _pair_cases(probabilities: bool) -> list[Case]:
    """(y, y_hat) cases: (N,), (N, 1), near-perfect, confidently wrong; or real-valued for MSE."""
    rng = np.random.default_rng(4)
    if probabilities:
        return [
            _case("four samples (N,)", y=np.array([1.0, 0.0, 1.0, 0.0]),
                  y_hat=np.array([0.9, 0.2, 0.6, 0.4])),
            _case("column vectors (N, 1)", y=rng.integers(0, 2, (5, 1)).astype(float),
                  y_hat=rng.uniform(0.05, 0.95, (5, 1))),
            _case("confident and right", y=np.array([1.0, 0.0]), y_hat=np.array([0.999, 0.001])),
            _case("confident and wrong", y=np.array([1.0, 0.0]), y_hat=np.array([0.001, 0.999])),
        ]
    return [
        _case("four samples (N,)", y=np.array([1.0, 2.0, 3.0, 4.0]),
              y_hat=np.array([1.5, 2.0, 2.0, 5.0])),
        _case("column vectors (N, 1)", y=rng.normal(size=(5, 1)), y_hat=rng.normal(size=(5, 1))),
        _case("perfect prediction", y=np.array([0.5, -1.0, 2.0]), y_hat=np.array([0.5, -1.0, 2.0])),
        _case("several outputs (N, 3)", y=rng.normal(size=(4, 3)), y_hat=rng.normal(size=(4, 3))),
    ]


def check_binary_cross_entropy(fn) -> bool:
    """Check fn(y, y_hat) = -(1/n) sum[y log y_hat + (1 - y) log(1 - y_hat)], a number."""
    return _run("check_binary_cross_entropy", fn, losses.binary_cross_entropy,
                _pair_cases(probabilities=True), hints={
        "value": "J = -(1/n) sum[y log(y_hat) + (1 - y) log(1 - y_hat)]. The minus sign "
                 "(missing in the lecture notes) makes J >= 0; average with np.mean.",
        "shape": "A loss is one number: average over all entries (np.mean) and return it."})


def check_mean_squared_error(fn) -> bool:
    """Check fn(y, y_hat) = (1/n) sum (y - y_hat)^2 over all entries, a number."""
    return _run("check_mean_squared_error", fn, losses.mean_squared_error,
                _pair_cases(probabilities=False), hints={
        "value": "J = (1/n) sum (y - y_hat)**2: square each difference, then average "
                 "(np.mean), do not sum.",
        "shape": "A loss is one number: average over all entries (np.mean) and return it."})


def _row_softmax(z):
    return activations.softmax(z, axis=1)


def check_softmax(fn) -> bool:
    """Check fn(z) = row-wise softmax of scores z (N, C): each row sums to 1."""
    rng = np.random.default_rng(5)
    cases = [
        _case("4 samples, 3 classes", z=rng.normal(size=(4, 3))),
        _case("equal scores give 1/C", z=np.zeros((2, 4))),
        _case("large scores", z=np.array([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])),
        _case("single row (1, C)", z=rng.normal(size=(1, 5))),
        _case("two classes", z=2 * rng.normal(size=(3, 2))),
    ]
    return _run("check_softmax", fn, _row_softmax, cases, hints={
        "warning": "np.exp overflows for scores above 709: subtract each row's maximum first, "
                   "z - z.max(axis=1, keepdims=True); the result is unchanged.",
        "nan": "inf / inf is NaN: subtract each row's maximum before np.exp.",
        "value": "Normalize each row on its own: divide by the row sums, "
                 "np.sum(e, axis=1, keepdims=True), not by the sum of the whole array."})


def check_cross_entropy(fn) -> bool:
    """Check fn(y, logits) = -(1/n) sum_i log softmax(logits_i)[y_i], y (N,) integer labels."""
    rng = np.random.default_rng(6)
    cases = [
        _case("4 samples, 3 classes", y=np.array([0, 2, 1, 2]), logits=rng.normal(size=(4, 3))),
        _case("single sample", y=np.array([1]), logits=rng.normal(size=(1, 4))),
        _case("equal scores give log C", y=np.array([0, 3, 1]), logits=np.zeros((3, 4))),
        _case("large scores", y=np.array([1, 0]),
              logits=np.array([[800.0, 801.0, 799.0], [-800.0, -801.0, -802.0]])),
        _case("confidently wrong", y=np.array([0]), logits=np.array([[0.0, 1000.0]])),
    ]
    return _run("check_cross_entropy", fn, losses.cross_entropy, cases, hints={
        "warning": "Work with log-probabilities: log softmax(z) = z - max - log(sum(exp(z - "
                   "max))) never overflows and never takes log(0).",
        "nan": "Work with log-probabilities (z - max - log(sum(exp(z - max)))), not log(softmax).",
        "value": "Pick each row's log-probability of its true class, "
                 "log_probs[np.arange(N), y], and average with a minus sign.",
        "shape": "A loss is one number: the mean over samples."})


# ---------------------------------------------------------------------------------------------
# 05 gradient descent
# ---------------------------------------------------------------------------------------------


def _optimizer_step(optimizer_class, w, grad, state=None, **settings):
    """One step of a dlhelpers.optim optimizer on a parameter w, from `state` (names as in its
    state_dict(), e.g. {"momentum_buffer.0": velocity}); returns (new w, new state)."""
    parameter = nn.Parameter(w)
    parameter.grad[...] = grad
    optimizer = optimizer_class([parameter], **settings)
    optimizer.load_state_dict({**optimizer.state_dict(), **(state or {})})
    optimizer.step()
    return parameter.value, optimizer.state_dict()


def _gradient_descent_step(w, grad, lr):
    return _optimizer_step(optim.SGD, w, grad, lr=lr)[0]


def check_gradient_descent_step(fn) -> bool:
    """Check fn(w, grad, lr) = w - lr * grad, a new array (w itself must not change)."""
    rng = np.random.default_rng(7)
    cases = [
        _case("vector", w=rng.normal(size=3), grad=rng.normal(size=3), lr=0.1),
        _case("matrix (2, 3)", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)), lr=0.5),
        _case("column (N, 1)", w=rng.normal(size=(3, 1)), grad=rng.normal(size=(3, 1)), lr=0.01),
        _case("zero gradient", w=rng.normal(size=2), grad=np.zeros(2), lr=0.1),
    ]
    return _run("check_gradient_descent_step", fn, _gradient_descent_step, cases, hints={
        "value": "Step against the gradient: w - lr * grad.",
        "mutation": "Return a new array, w - lr * grad; `w -= lr * grad` changes the caller's w."})


# ---------------------------------------------------------------------------------------------
# 06 backpropagation
# ---------------------------------------------------------------------------------------------


def _dense_backward(X, W, b, grad_out):
    layer = _dense(W, b)
    layer(X)
    grad_X = layer.backward(grad_out)
    return grad_X, layer.weight.grad, layer.bias.grad


def _bce_gradient(y, y_hat):
    loss = losses.BCELoss()
    loss(y_hat, y)
    return loss.backward()


def check_dense_backward(fn) -> bool:
    """Check fn(X, W, b, grad_out) -> (grad_X, grad_W, grad_b) for Z = X @ W + b.

    grad_X = grad_out @ W.T (N, D_in), grad_W = X.T @ grad_out (D_in, D_out),
    grad_b = grad_out summed over samples (D_out,).
    """
    rng = np.random.default_rng(8)
    cases = [Case(c.label, {**c.args, "grad_out": rng.normal(size=(len(c.args["X"]),
                                                                   len(c.args["b"])))})
             for c in _dense_cases()]
    return _run("check_dense_backward", fn, _dense_backward, cases,
                outputs=("grad_X", "grad_W", "grad_b"), hints={
        "value": "For Z = X @ W + b: grad_X = grad_out @ W.T, grad_W = X.T @ grad_out, "
                 "grad_b = grad_out.sum(axis=0).",
        "shape": "Each gradient has the shape of what it differentiates: grad_X like X "
                 "(N, D_in), grad_W like W (D_in, D_out), grad_b like b (D_out,)."})


def check_numerical_gradient(fn) -> bool:
    """Check fn(f, x, eps): central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)."""

    def sum_of_squares(x):
        return float(np.sum(x**2))

    def sum_of_sines(x):
        return float(np.sum(np.sin(x)))

    def sum_of_exps(x):
        return float(np.sum(np.exp(x)))

    rng = np.random.default_rng(9)
    cases = [
        _case("sum of squares, vector", f=sum_of_squares, x=rng.normal(size=3), eps=1e-5),
        _case("matrix (2, 3)", f=sum_of_sines, x=rng.normal(size=(2, 3)), eps=1e-5),
        _case("central, not forward differences", f=sum_of_exps, x=np.array([0.5, 1.0, 2.0]),
              eps=1e-3),
        _case("a single entry (1,)", f=sum_of_squares, x=np.array([3.0]), eps=1e-4),
    ]
    return _run("check_numerical_gradient", fn, gradcheck.numerical_gradient, cases, hints={
        "value": "For each entry i: (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), nudging one "
                 "entry at a time in both directions (central, not forward, differences).",
        "mutation": "Nudge a copy, x = x.copy(), or put each entry back after nudging it.",
        "shape": "The gradient has the shape of x: start from np.zeros_like(x)."})


def check_bce_gradient(fn) -> bool:
    """Check fn(y, y_hat) = dJ/dy_hat of the mean BCE: (y_hat - y) / (y_hat (1 - y_hat)) / n."""
    return _run("check_bce_gradient", fn, _bce_gradient, _pair_cases(probabilities=True), hints={
        "value": "dJ/dy_hat = (1/n) (-y / y_hat + (1 - y) / (1 - y_hat)) = "
                 "(1/n) (y_hat - y) / (y_hat (1 - y_hat)); the 1/n comes from the mean.",
        "shape": "The gradient has the shape of y_hat."})


# ---------------------------------------------------------------------------------------------
# 07 optimization: learning rate
# ---------------------------------------------------------------------------------------------


def _momentum_step(w, grad, velocity, lr, momentum):
    w_new, state = _optimizer_step(optim.SGD, w, grad, {"momentum_buffer.0": velocity}, lr=lr,
                                   momentum=momentum)
    # Without momentum SGD keeps no velocity (as torch): b_t = g_t, the gradient itself.
    return w_new, state["momentum_buffer.0"] if momentum else np.array(grad, dtype=np.float64)


def _adam_step(w, grad, m, v, t, lr, beta1, beta2, eps):
    # dlhelpers.optim.Adam counts its steps in t and adds 1 before updating: load t - 1.
    w_new, state = _optimizer_step(optim.Adam, w, grad,
                                   {"t": t - 1, "exp_avg.0": m, "exp_avg_sq.0": v},
                                   lr=lr, betas=(beta1, beta2), eps=eps)
    return w_new, state["exp_avg.0"], state["exp_avg_sq.0"]


def _scheduled_lr(schedule_class, epoch, lr0, **settings) -> float:
    """The learning rate a dlhelpers.optim schedule sets after `epoch` calls of step()."""
    optimizer = optim.SGD([nn.Parameter([0.0])], lr=lr0)
    schedule = schedule_class(optimizer, **settings)
    for _ in range(epoch):
        schedule.step()
    return optimizer.lr


def _step_decay(epoch, lr0, step_size, gamma):
    return _scheduled_lr(optim.StepLR, epoch, lr0, step_size=step_size, gamma=gamma)


def _cosine_schedule(epoch, lr0, T_max, eta_min):
    return _scheduled_lr(optim.CosineAnnealingLR, epoch, lr0, T_max=T_max, eta_min=eta_min)


def check_momentum_step(fn) -> bool:
    """Check fn(w, grad, velocity, lr, momentum) -> (w_new, velocity_new), torch's convention:

    velocity_new = momentum * velocity + grad; w_new = w - lr * velocity_new.
    """
    rng = np.random.default_rng(10)
    cases = [
        _case("first step (velocity 0)", w=rng.normal(size=3), grad=rng.normal(size=3),
              velocity=np.zeros(3), lr=0.1, momentum=0.9),
        _case("running velocity", w=rng.normal(size=3), grad=rng.normal(size=3),
              velocity=rng.normal(size=3), lr=0.05, momentum=0.9),
        _case("momentum 0 is plain SGD", w=rng.normal(size=2), grad=rng.normal(size=2),
              velocity=rng.normal(size=2), lr=0.1, momentum=0.0),
        _case("matrix (2, 3)", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)),
              velocity=rng.normal(size=(2, 3)), lr=0.01, momentum=0.5),
    ]
    return _run("check_momentum_step", fn, _momentum_step, cases,
                outputs=("w_new", "velocity_new"), hints={
        "value": "PyTorch's convention: velocity = momentum * velocity + grad, then "
                 "w = w - lr * velocity (lr multiplies the velocity, not the gradient inside it)."})


def check_adam_step(fn) -> bool:
    """Check fn(w, grad, m, v, t, lr, beta1, beta2, eps) -> (w_new, m_new, v_new).

    t counts steps from 1 (this step included); m_new, v_new are the moments before bias
    correction, as torch.optim.Adam keeps them.
    """
    rng = np.random.default_rng(11)
    settings = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    cases = [
        _case("first step (t = 1)", w=rng.normal(size=3), grad=rng.normal(size=3),
              m=np.zeros(3), v=np.zeros(3), t=1, **settings),
        _case("later step (t = 10)", w=rng.normal(size=3), grad=rng.normal(size=3),
              m=0.1 * rng.normal(size=3), v=0.01 * rng.uniform(size=3), t=10, **settings),
        _case("matrix (2, 3), lr 0.1", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)),
              m=np.zeros((2, 3)), v=np.zeros((2, 3)), t=1,
              **{**settings, "lr": 0.1, "beta1": 0.8, "beta2": 0.99}),
        _case("tiny gradients: eps outside the root", w=np.ones(2), grad=np.array([1e-9, -1e-8]),
              m=np.zeros(2), v=np.zeros(2), t=1, **settings),
    ]
    return _run("check_adam_step", fn, _adam_step, cases, outputs=("w_new", "m_new", "v_new"),
                hints={
        "value": "m = beta1 m + (1 - beta1) grad; v = beta2 v + (1 - beta2) grad**2; "
                 "m_hat = m / (1 - beta1**t); v_hat = v / (1 - beta2**t); "
                 "w = w - lr m_hat / (sqrt(v_hat) + eps). Return m and v, not m_hat and v_hat."})


def check_step_decay(fn) -> bool:
    """Check fn(epoch, lr0, step_size, gamma) = lr0 * gamma ** (epoch // step_size)."""
    cases = [
        _case("epoch 0", epoch=0, lr0=0.1, step_size=10, gamma=0.1),
        _case("last epoch before the first drop", epoch=9, lr0=0.1, step_size=10, gamma=0.1),
        _case("first drop", epoch=10, lr0=0.1, step_size=10, gamma=0.1),
        _case("two drops", epoch=25, lr0=0.5, step_size=10, gamma=0.5),
        _case("step_size 1", epoch=3, lr0=1.0, step_size=1, gamma=0.9),
    ]
    return _run("check_step_decay", fn, _step_decay, cases, hints={
        "value": "lr = lr0 * gamma ** (epoch // step_size): integer division (//), so the rate "
                 "stays constant for step_size epochs, then drops."})


def check_cosine_schedule(fn) -> bool:
    """Check fn(epoch, lr0, T_max, eta_min) = eta_min + (lr0 - eta_min)(1 + cos(pi epoch/T_max))/2.

    The values for 0 <= epoch <= T_max, as torch's CosineAnnealingLR.
    """
    cases = [
        _case("epoch 0 gives lr0", epoch=0, lr0=0.1, T_max=10, eta_min=0.0),
        _case("halfway", epoch=5, lr0=0.1, T_max=10, eta_min=0.0),
        _case("epoch T_max gives eta_min", epoch=10, lr0=0.1, T_max=10, eta_min=0.001),
        _case("eta_min > 0", epoch=3, lr0=0.5, T_max=20, eta_min=0.01),
    ]
    return _run("check_cosine_schedule", fn, _cosine_schedule, cases, hints={
        "value": "lr = eta_min + (lr0 - eta_min) * (1 + cos(pi * epoch / T_max)) / 2: lr0 at "
                 "epoch 0, eta_min at epoch T_max (np.cos takes radians)."})


# ---------------------------------------------------------------------------------------------
# 08 regularization
# ---------------------------------------------------------------------------------------------


def _dropout(X, p, rng, training):
    layer = nn.Dropout(p, rng=rng).train(training)
    return layer(X)


def _l2_penalty(weights_list, lam) -> float:
    # lam/2 sum w^2: its gradient lam * w is torch.optim.SGD's weight_decay=lam (see optim.SGD).
    return lam / 2 * sum(float(np.sum(w**2)) for w in weights_list)


def _early_stopping(val_losses, patience, min_delta):
    """dlhelpers.train.EarlyStopping's rule, on epochs counted from 0; stop_epoch None if the
    patience never runs out."""
    stopper = train.EarlyStopping(patience, min_delta)
    weightless = nn.Sequential()  # step() keeps the best weights; only the rule matters here
    for epoch, loss in enumerate(val_losses):
        if stopper.step(loss, weightless, epoch):
            return stopper.best_epoch, epoch
    return stopper.best_epoch, None


_DROPOUT_SEED = 12


def _zero_or_scaled(got, args) -> str | None:
    X, p = args["X"], args["p"]
    ok = (got == 0) | np.isclose(got, X / (1 - p), rtol=RTOL, atol=ATOL)
    return None if ok.all() else f"{(~ok).sum()} entries are neither 0 nor X / (1 - p)"


def _dropped_fraction(got, args) -> str | None:
    fraction, p = float(np.mean(got == 0)), args["p"]
    return None if abs(fraction - p) <= 0.03 else f"dropped {fraction:.3f} of the entries"


def _mean_kept(got, args) -> str | None:
    got_mean, x_mean = float(np.mean(got)), float(np.mean(args["X"]))
    ok = abs(got_mean - x_mean) <= 0.03 * abs(x_mean)
    return None if ok else f"mean {got_mean:.4g} instead of about {x_mean:.4g}"


def _drew_from_rng(got, args) -> str | None:
    untouched = np.random.default_rng(_DROPOUT_SEED).bit_generator.state
    used = args["rng"].bit_generator.state != untouched
    return None if used else "did not draw the mask from rng (np.random instead?)"


def check_dropout(fn) -> bool:
    """Check fn(X, p, rng, training): inverted dropout, by its properties (the mask is random).

    In evaluation mode (training=False) the output is X. In training each entry is 0 (with
    probability p, drawn from `rng`) or X / (1 - p), so the mean is kept; p = 0 keeps X.
    """
    rng = np.random.default_rng(13)
    X, large = rng.normal(size=(4, 3)), rng.uniform(1.0, 2.0, size=(100, 100))

    def dropout_case(label, X, p, training=True, prop=None, wants=""):
        args = {"X": X, "p": p, "rng": np.random.default_rng(_DROPOUT_SEED), "training": training}
        return Case(label, args, prop, wants)

    cases = [
        dropout_case("evaluation mode returns X", X, 0.5, training=False),
        dropout_case("p = 0 keeps everything", X, 0.0),
        dropout_case("entries are 0 or X / (1 - p)", X, 0.5, prop=_zero_or_scaled,
                     wants="each entry 0 or X / (1 - p)"),
        dropout_case("mask drawn from rng", X, 0.5, prop=_drew_from_rng,
                     wants="rng used (rng.random(X.shape))"),
        dropout_case("drops about p of a large array", large, 0.2, prop=_dropped_fraction,
                     wants="0.2 +- 0.03 of the entries dropped"),
        dropout_case("keeps the mean of a large array", large, 0.5, prop=_mean_kept,
                     wants="mean within 3% of X's mean"),
    ]
    return _run("check_dropout", fn, _dropout, cases, hints={
        "value": "In evaluation mode return X unchanged; with p = 0 nothing is dropped.",
        "property": "Inverted dropout: keep = rng.random(X.shape) >= p (True with probability "
                    "1 - p), then X * keep / (1 - p) in training; X itself in evaluation."})


def check_l2_penalty(fn) -> bool:
    """Check fn(weights_list, lam) = lam / 2 * (sum of the squares of every array's entries).

    Convention: the 1/2 makes the penalty's gradient lam * W, which is what
    `torch.optim.SGD(weight_decay=lam)` (and `dlhelpers.optim.SGD`) adds to the gradient.
    """
    rng = np.random.default_rng(14)
    cases = [
        _case("one weight matrix", weights_list=[rng.normal(size=(3, 2))], lam=0.1),
        _case("weights and biases", weights_list=[rng.normal(size=(2, 3)), rng.normal(size=3),
                                                  rng.normal(size=(3, 1)), rng.normal(size=1)],
              lam=0.01),
        _case("lam = 0", weights_list=[rng.normal(size=(2, 2))], lam=0.0),
        _case("zero weights", weights_list=[np.zeros((2, 2)), np.zeros(2)], lam=0.5),
    ]
    return _run("check_l2_penalty", fn, _l2_penalty, cases, hints={
        "value": "lam / 2 * sum over every array W in weights_list of np.sum(W ** 2); the 1/2 "
                 "makes the gradient lam * W, torch's weight_decay=lam.",
        "shape": "The penalty is one number: add up the sums of every array."})


def check_early_stopping(fn) -> bool:
    """Check fn(val_losses, patience, min_delta) -> (best_epoch, stop_epoch), epochs from 0.

    An epoch improves when its loss < best - min_delta (best_epoch is the last one that did);
    training stops at the epoch where `patience` epochs in a row have not improved;
    stop_epoch is None if that never happens.
    """
    cases = [
        _case("stops after patience", val_losses=[1.0, 0.8, 0.7, 0.72, 0.71, 0.73, 0.69],
              patience=3, min_delta=0.0),
        _case("keeps improving: never stops", val_losses=[1.0, 0.9, 0.8, 0.7], patience=2,
              min_delta=0.0),
        _case("equal loss is no improvement", val_losses=[0.5, 0.5, 0.5], patience=2,
              min_delta=0.0),
        _case("an improvement resets the count", val_losses=[1.0, 1.1, 1.2, 0.9, 1.0, 1.1, 1.2],
              patience=3, min_delta=0.0),
        _case("min_delta ignores tiny gains", val_losses=[1.0, 0.99, 0.985, 0.98, 0.5],
              patience=3, min_delta=0.05),
        _case("patience 1", val_losses=[0.9, 0.8, 0.85, 0.7], patience=1, min_delta=0.0),
    ]
    return _run("check_early_stopping", fn, _early_stopping, cases,
                outputs=("best_epoch", "stop_epoch"), hints={
        "value": "Keep the best loss so far; an epoch improves only if loss < best - min_delta "
                 "(then best_epoch = epoch and the count restarts at 0), otherwise count it; "
                 "stop at the epoch where the count reaches patience; stop_epoch = None if it "
                 "never does. Epochs count from 0."})


# ---------------------------------------------------------------------------------------------
# 09 capstone: handwritten digits
# ---------------------------------------------------------------------------------------------


def _accuracy(y_true, y_pred) -> float:
    from sklearn.metrics import accuracy_score  # imported when used: it takes ~1 s

    return float(accuracy_score(y_true, y_pred))


def _confusion_matrix(y_true, y_pred, n_classes):
    from sklearn.metrics import confusion_matrix  # imported when used: it takes ~1 s

    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def check_accuracy(fn) -> bool:
    """Check fn(y_true, y_pred) = the fraction of predictions equal to the labels."""
    rng = np.random.default_rng(15)
    cases = [
        _case("half right", y_true=np.array([0, 1, 1, 0]), y_pred=np.array([0, 0, 1, 1])),
        _case("all right", y_true=np.array([2, 0, 1]), y_pred=np.array([2, 0, 1])),
        _case("none right", y_true=np.array([1, 1, 0]), y_pred=np.array([0, 0, 1])),
        _case("10 classes, 50 samples", y_true=rng.integers(0, 10, 50),
              y_pred=rng.integers(0, 10, 50)),
    ]
    return _run("check_accuracy", fn, _accuracy, cases, hints={
        "value": "The fraction correct, np.mean(y_true == y_pred): a number between 0 and 1, "
                 "not the count."})


def check_confusion_matrix(fn) -> bool:
    """Check fn(y_true, y_pred, n_classes): C[i, j] = count of true class i predicted as j."""
    rng = np.random.default_rng(16)
    cases = [
        _case("3 classes", y_true=np.array([0, 0, 1, 1, 2, 2, 2]),
              y_pred=np.array([0, 1, 1, 2, 2, 0, 2]), n_classes=3),
        _case("perfect predictions: diagonal", y_true=np.array([0, 1, 2, 1]),
              y_pred=np.array([0, 1, 2, 1]), n_classes=3),
        _case("rows true, columns predicted", y_true=np.zeros(4, dtype=np.int64),
              y_pred=np.ones(4, dtype=np.int64), n_classes=2),
        _case("a class that never appears", y_true=rng.integers(0, 3, 20),
              y_pred=rng.integers(0, 3, 20), n_classes=4),
    ]
    return _run("check_confusion_matrix", fn, _confusion_matrix, cases, hints={
        "value": "C[i, j] counts samples of true class i predicted as j: rows are the truth, "
                 "columns the prediction. for t, p in zip(y_true, y_pred): C[t, p] += 1.",
        "shape": "C has shape (n_classes, n_classes), even when a class never appears: start "
                 "from np.zeros((n_classes, n_classes), dtype=int)."})
