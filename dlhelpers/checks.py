"""Exercise checkers: instant, specific feedback for the "Check yourself" cells.

Used by every notebook's exercises and by the visible tests of the nbgrader assignments::

    from dlhelpers import checks
    checks.check_sigmoid(my_sigmoid)          # shows the report
    checks.check_sigmoid(my_sigmoid, hint=2)  # the same, with the formula in the hint

Each ``check_<exercise>(fn, hint=None)`` calls your function on several cases, edge cases
included (very large |z|, zeros, (N, 1) against (N,) shapes), and shows a report (see
`dlhelpers.checking`, the engine): "not attempted yet" while the cell still raises
``NotImplementedError``; otherwise PASS or FAIL per case, with the reason, the input, the expected
and the received value, and a hint that names the concept first and the formula on later
attempts, never the code. It returns a `checking.Report`, true when every case passed.

Expected values are computed when you call the checker, by the course's reference
implementations (`activations`, `losses`, `nn`, `optim`, `gradcheck`), PyTorch or scikit-learn,
never read from stored numbers. Values match when, entry by entry,
``|got - expected| <= atol + rtol * |expected|`` with **rtol = 1e-6, atol = 1e-8** (as
`numpy.allclose`); integer answers (counts, epochs) must match exactly.

`NOTEBOOK` maps each checker to the notebook that uses it; a hint names only that notebook or
earlier ones.
"""

from __future__ import annotations

import numpy as np

from dlhelpers import activations, gradcheck, losses, nn, optim, train
from dlhelpers.checking import ATOL, RTOL, Case, Hints, Report, case, run

NOTEBOOK: dict[str, int] = {}


def _exercise(notebook: int):
    """Register a checker with the notebook that uses it."""
    def register(checker):
        NOTEBOOK[checker.__name__] = notebook
        return checker
    return register


# ---------------------------------------------------------------------------------------------
# 00 why deep learning
# ---------------------------------------------------------------------------------------------


def _matmul_flops(n, k, m) -> int:
    # Each of the n*m outputs is a length-k dot product: k multiplications and k additions.
    return 2 * n * k * m


def _dense_flops(batch, d_in, d_out) -> int:
    return _matmul_flops(batch, d_in, d_out) + batch * d_out  # X @ W, then one addition of b


def _largest_square_matmul(budget) -> int:
    n = 0
    while _matmul_flops(n + 1, n + 1, n + 1) <= budget:  # count up: no cube roots to round
        n += 1
    return n


@_exercise(0)
def check_dense_flops(fn, hint=None) -> Report:
    """Check fn(batch, d_in, d_out): FLOPs of X @ W + b, X (batch, d_in), W (d_in, d_out)."""
    cases = [
        case("one sample, one input, one output", batch=1, d_in=1, d_out=1),
        case("(2, 3) @ (3, 4) + b", batch=2, d_in=3, d_out=4),
        case("digits layer: 64 pixels to 32 units", batch=100, d_in=64, d_out=32),
        case("a wide layer", batch=256, d_in=1000, d_out=1000),
    ]
    return run("check_dense_flops", fn, _dense_flops, cases, Hints(
        concept="Count the matrix product as in section 4, then the bias: it is added once "
                "to every entry of the (batch, d_out) result.",
        formula="FLOPs = 2 * batch * d_in * d_out (the product) + batch * d_out (the bias)."),
        hint=hint)


@_exercise(0)
def check_largest_square_matmul(fn, hint=None) -> Report:
    """Check fn(budget): the largest n whose (n, n) @ (n, n) product costs at most budget FLOPs."""
    cases = [
        case("a budget of 2 FLOPs", budget=2),
        case("too small for n = 1", budget=1),
        case("exactly 2 * 10^3", budget=2000),
        case("just below 2 * 10^3", budget=1999),
        case("one GFLOP", budget=10**9),
    ]
    return run("check_largest_square_matmul", fn, _largest_square_matmul, cases, Hints(
        concept="An (n, n) @ (n, n) product costs 2 n^3 FLOPs, which grows with n: look for the "
                "last n that still fits the budget, and watch the case where the budget is "
                "exactly 2 n^3.",
        formula="n = floor(cube root of (budget / 2)); a floating-point cube root can land "
                "just below a whole number, so check n + 1 against the budget too."),
        hint=hint)


# ---------------------------------------------------------------------------------------------
# 01 the perceptron
# ---------------------------------------------------------------------------------------------


def _perceptron_forward(X, w, w0):
    return activations.sigmoid(w0 + X @ w)  # (N, D) @ (D,) -> (N,)


def _step(X, w, w0):
    return (w0 + X @ w > 0).astype(np.int64)  # (N,) 1 where the score is positive, else 0


def _perceptron_update(w, w0, x, y, lr):
    y_hat = _step(x[None, :], w, w0)[0]  # step prediction, 0 on the boundary
    return w + lr * (y - y_hat) * x, w0 + lr * (y - y_hat)


def _count_mistakes(X, y, w, w0) -> int:
    return int(np.sum(_step(X, w, w0) != y))


_GATE_INPUTS = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])  # (4, 2)


def _and_weights():
    return np.array([1.0, 1.0]), -1.5  # one of many: the line x1 + x2 = 1.5


def _computes_and(got, args) -> str | None:
    w, w0 = got
    wrong = _step(_GATE_INPUTS, np.asarray(w, dtype=float), float(w0)) != [0, 0, 0, 1]
    return None if not wrong.any() else (
        f"step(w0 + x @ w) is wrong for input(s) {_GATE_INPUTS[wrong].astype(int).tolist()}")


@_exercise(1)
def check_perceptron_forward(fn, hint=None) -> Report:
    """Check fn(X, w, w0) = sigmoid(w0 + X @ w) for X (N, D), w (D,): a (N,) result."""
    rng = np.random.default_rng(1)
    cases = [
        case("two features", X=rng.normal(size=(4, 2)), w=np.array([0.5, -1.0]), w0=0.5),
        case("single sample (1, D)", X=rng.normal(size=(1, 3)), w=rng.normal(size=3), w0=-1.0),
        case("zero weights give 0.5", X=rng.normal(size=(3, 2)), w=np.zeros(2), w0=0.0),
        case("large scores", X=np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]),
             w=np.array([1e4, -1e4]), w0=0.0),
    ]
    return run("check_perceptron_forward", fn, _perceptron_forward, cases, Hints(
        concept="One score per sample: the weighted sum of its features plus the bias, then "
                "the activation g, the sigmoid.",
        formula="y_hat = sigmoid(w0 + X w), with X w the (N,) vector of weighted sums.",
        reasons={"warning": "exp(-z) overflows for z < -709: use the sigmoid imported from "
                            "dlhelpers at the top of this notebook, which never overflows."}),
        hint=hint)


@_exercise(1)
def check_perceptron_update(fn, hint=None) -> Report:
    """Check fn(w, w0, x, y, lr) -> (w_new, w0_new), Rosenblatt's rule with y in {0, 1}.

    yhat = 1 if w0 + x @ w > 0 else 0; w_new = w + lr (y - yhat) x; w0_new = w0 + lr (y - yhat).
    """
    w = np.array([1.0, -1.0])
    cases = [
        case("right prediction: no change", w=w, w0=0.5, x=np.array([2.0, 1.0]), y=1, lr=0.1),
        case("false negative (y=1, yhat=0)", w=w, w0=0.5, x=np.array([-1.0, 2.0]), y=1, lr=0.1),
        case("false positive (y=0, yhat=1)", w=w, w0=0.5, x=np.array([2.0, 1.0]), y=0, lr=0.1),
        case("score exactly 0 predicts 0", w=w, w0=0.0, x=np.array([1.0, 1.0]), y=1, lr=1.0),
        case("three features", w=np.array([0.2, -0.4, 0.1]), w0=-0.3,
             x=np.array([1.0, 0.5, -2.0]), y=1, lr=0.5),
    ]
    return run("check_perceptron_update", fn, _perceptron_update, cases, Hints(
        concept="Predict with the step function first (0 when the score is exactly 0); a right "
                "prediction changes nothing, a wrong one moves w towards or away from x.",
        formula="y_hat = 1 if w0 + x . w > 0 else 0; w_new = w + lr (y - y_hat) x; "
                "w0_new = w0 + lr (y - y_hat)."),
        outputs=("w_new", "w0_new"), hint=hint)


@_exercise(1)
def check_count_mistakes(fn, hint=None) -> Report:
    """Check fn(X, y, w, w0): how many samples the step perceptron misclassifies (an int)."""
    rng = np.random.default_rng(17)
    X = rng.normal(size=(20, 2))
    cases = [
        case("no mistakes", X=X, y=_step(X, np.array([1.0, -2.0]), 0.3),
             w=np.array([1.0, -2.0]), w0=0.3),
        case("every sample wrong", X=X, y=1 - _step(X, np.array([1.0, -2.0]), 0.3),
             w=np.array([1.0, -2.0]), w0=0.3),
        case("points on the boundary predict 0", X=np.array([[1.0, 1.0], [2.0, 0.0]]),
             y=np.array([1, 0]), w=np.array([1.0, -1.0]), w0=0.0),
        case("random labels", X=X, y=rng.integers(0, 2, 20), w=rng.normal(size=2), w0=-0.5),
    ]
    return run("check_count_mistakes", fn, _count_mistakes, cases, Hints(
        concept="Predict every sample with the step function (0 on the boundary), compare with "
                "its label, and count the disagreements: a whole number, not a fraction.",
        formula="mistakes = number of i with step(w0 + x_i . w) != y_i, where step(z) = 1 for "
                "z > 0 and 0 otherwise."),
        hint=hint)


@_exercise(1)
def check_and_gate(fn, hint=None) -> Report:
    """Check fn() -> (w, w0): weights for which step(w0 + x @ w) is x1 AND x2 on {0, 1}^2."""
    cases = [Case("the four inputs (0,0), (0,1), (1,0), (1,1)", {}, prop=_computes_and,
                  wants="outputs 0, 0, 0, 1 (any w (2,) and number w0 that give them)")]
    return run("check_and_gate", fn, _and_weights, cases, Hints(
        concept="Draw the four inputs: the decision boundary w0 + x1 w1 + x2 w2 = 0 must leave "
                "(1, 1) alone on the positive side.",
        formula="With w1 = w2 = 1 the score is x1 + x2 + w0, which is 0, 1, 1 or 2: pick w0 so "
                "that only 2 + w0 is positive."),
        outputs=("w", "w0"), hint=hint)


# ---------------------------------------------------------------------------------------------
# 02 activation functions
# ---------------------------------------------------------------------------------------------


def _activation_cases() -> list[Case]:
    rng = np.random.default_rng(2)
    return [
        case("small z", z=np.array([-2.0, -0.5, 0.5, 2.0])),
        case("zeros", z=np.zeros(3)),
        case("large positive z", z=np.array([1.0, 800.0, 1e4])),
        case("large negative z", z=np.array([-1e4, -800.0, -1.0])),
        case("column vector (N, 1)", z=rng.normal(size=(4, 1))),
        case("matrix (2, 3)", z=3 * rng.normal(size=(2, 3))),
    ]


_STABLE_SIGMOID = ("exp(-z) overflows for z < -709, even though the sigmoid itself is just "
                   "close to 0 there. Section 5 shows a form that only ever takes exp of a "
                   "negative number.")


@_exercise(2)
def check_sigmoid(fn, hint=None) -> Report:
    """Check fn(z) = 1 / (1 + exp(-z)), elementwise, for any shape and any finite z."""
    return run("check_sigmoid", fn, activations.sigmoid, _activation_cases(), Hints(
        concept="The sigmoid squashes any z into (0, 1), 1/2 at z = 0, and must not overflow "
                "for huge |z|.",
        formula="sigmoid(z) = 1 / (1 + e^(-z)) for z >= 0 and e^z / (1 + e^z) for z < 0 "
                "(the same number, written so that the exponent is never positive).",
        reasons={"warning": _STABLE_SIGMOID}), hint=hint)


@_exercise(2)
def check_tanh(fn, hint=None) -> Report:
    """Check fn(z) = (e^z - e^-z) / (e^z + e^-z), elementwise, for any finite z."""
    return run("check_tanh", fn, activations.tanh, _activation_cases(), Hints(
        concept="tanh is an S-curve from -1 to 1 through 0; written with exponentials it "
                "overflows for |z| > 709, so use a form that does not.",
        formula="tanh(z) = (e^z - e^-z) / (e^z + e^-z) = 2 sigmoid(2z) - 1 (numpy also has "
                "tanh built in).",
        reasons={"warning": "e^z overflows for z > 709: numpy's own tanh, or 2 sigmoid(2z) - 1 "
                            "with a stable sigmoid, never does.",
                 "nan": "inf / inf is NaN: for large |z|, e^z overflows."}), hint=hint)


@_exercise(2)
def check_relu(fn, hint=None) -> Report:
    """Check fn(z) = max(0, z), elementwise."""
    return run("check_relu", fn, activations.relu, _activation_cases(), Hints(
        concept="ReLU keeps positive entries and replaces negative ones by 0, entry by entry: "
                "the output has the shape of z.",
        formula="ReLU(z) = max(0, z) for each entry (an elementwise maximum, not the largest "
                "entry of the array).",
        reasons={"shape": "ReLU keeps the shape of z: take the maximum of 0 and each entry, "
                          "not of the whole array."}), hint=hint)


@_exercise(2)
def check_sigmoid_derivative(fn, hint=None) -> Report:
    """Check fn(z) = sigmoid(z) (1 - sigmoid(z)), elementwise, for any finite z."""
    return run("check_sigmoid_derivative", fn, activations.sigmoid_derivative,
               _activation_cases(), Hints(
        concept="The sigmoid's slope is largest (1/4) at z = 0 and vanishes for large |z|: "
                "it is expressed through the sigmoid's own value.",
        formula="sigmoid'(z) = s (1 - s) with s = sigmoid(z) (apply the sigmoid first).",
        reasons={"warning": _STABLE_SIGMOID}), hint=hint)


@_exercise(2)
def check_tanh_derivative(fn, hint=None) -> Report:
    """Check fn(z) = 1 - tanh(z)^2, elementwise, for any finite z."""
    return run("check_tanh_derivative", fn, activations.tanh_derivative, _activation_cases(),
               Hints(concept="tanh's slope is 1 at z = 0 and vanishes for large |z|; like the "
                             "sigmoid's, it is expressed through tanh's own value.",
                     formula="tanh'(z) = 1 - tanh(z)^2.",
                     reasons={"warning": "The exponential form overflows for |z| > 709: use "
                                         "numpy's tanh."}), hint=hint)


@_exercise(2)
def check_relu_derivative(fn, hint=None) -> Report:
    """Check fn(z) = 1 where z > 0 and 0 where z <= 0 (0 at z = 0, as PyTorch)."""
    return run("check_relu_derivative", fn, activations.relu_derivative, _activation_cases(),
               Hints(concept="ReLU is flat (slope 0) for negative z and the identity (slope 1) "
                             "for positive z; at exactly 0 we follow PyTorch's choice.",
                     formula="ReLU'(z) = 1 for z > 0 and 0 for z <= 0, as floats."), hint=hint)


def _leaky_relu(z, alpha):
    import torch  # PyTorch as the oracle

    return torch.nn.functional.leaky_relu(torch.from_numpy(z), alpha).numpy()


def _logit(p):
    import torch

    return torch.logit(torch.from_numpy(p)).numpy()


@_exercise(2)
def check_leaky_relu(fn, hint=None) -> Report:
    """Check fn(z, alpha) = z for z > 0 and alpha * z otherwise, elementwise."""
    rng = np.random.default_rng(18)
    cases = [
        case("small z, alpha 0.01", z=np.array([-2.0, -0.5, 0.0, 0.5, 2.0]), alpha=0.01),
        case("alpha 0.2", z=np.array([-3.0, 3.0]), alpha=0.2),
        case("alpha 0 is ReLU", z=rng.normal(size=4), alpha=0.0),
        case("alpha 1 is the identity", z=rng.normal(size=3), alpha=1.0),
        case("matrix (2, 3), large |z|", z=np.array([[-1e4, 800.0, -1.0], [1.0, -800.0, 1e4]]),
             alpha=0.1),
    ]
    return run("check_leaky_relu", fn, _leaky_relu, cases, Hints(
        concept="A leaky ReLU keeps a small slope alpha for negative z instead of 0, so the "
                "gradient never vanishes completely; positive z pass unchanged.",
        formula="LeakyReLU(z) = z for z > 0 and alpha z for z <= 0, entry by entry."), hint=hint)


@_exercise(2)
def check_logit(fn, hint=None) -> Report:
    """Check fn(p) = log(p / (1 - p)), the inverse of the sigmoid, for 0 < p < 1."""
    cases = [
        case("one half gives 0", p=np.array([0.5])),
        case("symmetric pair", p=np.array([0.2, 0.8])),
        case("sigmoid(2) gives 2", p=activations.sigmoid(np.array([2.0, -3.0]))),
        case("close to 0 and 1", p=np.array([1e-10, 1 - 1e-6])),
        case("column (N, 1)", p=np.array([[0.1], [0.7], [0.99]])),
    ]
    return run("check_logit", fn, _logit, cases, Hints(
        concept="Undo the sigmoid: solve p = 1 / (1 + e^(-z)) for z. The answer is 0 at p = 1/2, "
                "positive above it, and grows without bound as p approaches 1.",
        formula="z = log(p / (1 - p)) = log(p) - log(1 - p)."), hint=hint)


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


def _hidden_units_for_budget(budget, n_in, n_out) -> int:
    h = 0
    while _parameter_count([n_in, h + 1, n_out]) <= budget:  # count up: the count grows with h
        h += 1
    return h


def _mlp_forward(X, weights, biases):
    layers = []
    for W, b in zip(weights, biases, strict=True):
        layers += [_dense(W, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])(X)  # no ReLU after the last layer


def _dense_cases() -> list[Case]:
    rng = np.random.default_rng(3)
    return [
        case("square W (D_in = D_out)", X=rng.normal(size=(4, 3)), W=rng.normal(size=(3, 3)),
             b=rng.normal(size=3)),
        case("3 inputs -> 2 outputs", X=rng.normal(size=(5, 3)), W=rng.normal(size=(3, 2)),
             b=rng.normal(size=2)),
        case("single sample (1, D_in)", X=rng.normal(size=(1, 4)), W=rng.normal(size=(4, 2)),
             b=rng.normal(size=2)),
        case("zero bias", X=rng.normal(size=(3, 2)), W=rng.normal(size=(2, 4)), b=np.zeros(4)),
    ]


@_exercise(3)
def check_dense_forward(fn, hint=None) -> Report:
    """Check fn(X, W, b) = X @ W + b with X (N, D_in), W (D_in, D_out), b (D_out,)."""
    return run("check_dense_forward", fn, _dense_forward, _dense_cases(), Hints(
        concept="Each of the D_out outputs is one perceptron's weighted sum: W holds one column "
                "per output, (D_in, D_out), and the bias is added to every sample's row.",
        formula="Z = X W + b: (N, D_in) times (D_in, D_out) gives (N, D_out); b (D_out,) is "
                "added to each row.",
        reasons={"shape": "The output has one row per sample and one column per output: "
                          "(N, D_out)."}), hint=hint)


@_exercise(3)
def check_parameter_count(fn, hint=None) -> Report:
    """Check fn(layer_sizes): weights + biases of an MLP, e.g. [2, 3, 1] -> 2*3+3 + 3*1+1."""
    cases = [
        case("one layer", layer_sizes=[2, 1]),
        case("one hidden layer", layer_sizes=[2, 3, 1]),
        case("two hidden layers", layer_sizes=[4, 8, 8, 3]),
        case("digits MLP", layer_sizes=[64, 32, 10]),
    ]
    return run("check_parameter_count", fn, _parameter_count, cases, Hints(
        concept="Only the connections between consecutive layers carry parameters: the input "
                "layer has none of its own.",
        formula="sum over consecutive pairs (a, b) of layer_sizes of a b + b (weights plus "
                "biases)."), hint=hint)


@_exercise(3)
def check_hidden_units_for_budget(fn, hint=None) -> Report:
    """Check fn(budget, n_in, n_out): the largest hidden width h such that the network
    [n_in, h, n_out] has at most `budget` parameters (0 if not even h = 1 fits)."""
    cases = [
        case("the [2, 3, 1] network's own count", budget=13, n_in=2, n_out=1),
        case("one parameter short", budget=12, n_in=2, n_out=1),
        case("digits: 64 pixels, 10 classes", budget=10_000, n_in=64, n_out=10),
        case("too small for any hidden unit", budget=5, n_in=3, n_out=2),
    ]
    return run("check_hidden_units_for_budget", fn, _hidden_units_for_budget, cases, Hints(
        concept="Write the parameter count of [n_in, h, n_out] as a function of h: it grows by "
                "the same amount for each extra hidden unit. Then find the last h that fits.",
        formula="count(h) = (n_in + 1) h + (h + 1) n_out = h (n_in + 1 + n_out) + n_out, so "
                "h = floor((budget - n_out) / (n_in + 1 + n_out)), and 0 if that is negative."),
        hint=hint)


@_exercise(3)
def check_mlp_forward(fn, hint=None) -> Report:
    """Check fn(X, weights, biases): dense layers with ReLU between them, none after the last.

    weights[k] has shape (D_k, D_k+1), biases[k] (D_k+1,); returns (N, D_last).
    """
    rng = np.random.default_rng(19)

    def layers(*sizes):
        return ([rng.normal(size=(a, b)) for a, b in zip(sizes[:-1], sizes[1:], strict=True)],
                [rng.normal(size=b) for b in sizes[1:]])

    cases = []
    for label, sizes in [("one layer: no ReLU at all", (3, 2)), ("one hidden layer", (2, 4, 1)),
                         ("two hidden layers", (3, 5, 4, 2)), ("single sample", (4, 3, 3))]:
        weights, biases = layers(*sizes)
        n = 1 if label == "single sample" else 6
        cases.append(case(label, X=rng.normal(size=(n, sizes[0])), weights=weights,
                          biases=biases))
    return run("check_mlp_forward", fn, _mlp_forward, cases, Hints(
        concept="A deep network repeats the dense layer; the non-linearity goes between layers, "
                "and the last layer's scores are left as they are.",
        formula="H_0 = X; H_k+1 = ReLU(H_k W_k + b_k) for every layer but the last; the output "
                "is H_L-1 W_L-1 + b_L-1."), hint=hint)


# ---------------------------------------------------------------------------------------------
# 04 quantifying loss
# ---------------------------------------------------------------------------------------------


def _pair_cases(probabilities: bool) -> list[Case]:
    """(y, y_hat) cases: (N,), (N, 1), near-perfect, confidently wrong; or real-valued for MSE."""
    rng = np.random.default_rng(4)
    if probabilities:
        return [
            case("four samples (N,)", y=np.array([1.0, 0.0, 1.0, 0.0]),
                 y_hat=np.array([0.9, 0.2, 0.6, 0.4])),
            case("column vectors (N, 1)", y=rng.integers(0, 2, (5, 1)).astype(float),
                 y_hat=rng.uniform(0.05, 0.95, (5, 1))),
            case("confident and right", y=np.array([1.0, 0.0]), y_hat=np.array([0.999, 0.001])),
            case("confident and wrong", y=np.array([1.0, 0.0]), y_hat=np.array([0.001, 0.999])),
        ]
    return [
        case("four samples (N,)", y=np.array([1.0, 2.0, 3.0, 4.0]),
             y_hat=np.array([1.5, 2.0, 2.0, 5.0])),
        case("column vectors (N, 1)", y=rng.normal(size=(5, 1)), y_hat=rng.normal(size=(5, 1))),
        case("perfect prediction", y=np.array([0.5, -1.0, 2.0]), y_hat=np.array([0.5, -1.0, 2.0])),
        case("several outputs (N, 3)", y=rng.normal(size=(4, 3)), y_hat=rng.normal(size=(4, 3))),
    ]


_ONE_NUMBER = "A loss is one number: the mean over all entries."


@_exercise(4)
def check_binary_cross_entropy(fn, hint=None) -> Report:
    """Check fn(y, y_hat) = -(1/n) sum[y log y_hat + (1 - y) log(1 - y_hat)], a number."""
    return run("check_binary_cross_entropy", fn, losses.binary_cross_entropy,
               _pair_cases(probabilities=True), Hints(
        concept="Binary cross-entropy is minus the mean log-likelihood: each sample contributes "
                "minus the log of the probability given to its true class, so the loss is >= 0 "
                "and large for confident mistakes.",
        formula="J = -(1/n) sum_i [y_i log(y_hat_i) + (1 - y_i) log(1 - y_hat_i)]; the minus sign "
                "in front makes J >= 0.",
        reasons={"shape": _ONE_NUMBER}), hint=hint)


@_exercise(4)
def check_mean_squared_error(fn, hint=None) -> Report:
    """Check fn(y, y_hat) = (1/n) sum (y - y_hat)^2 over all entries, a number."""
    return run("check_mean_squared_error", fn, losses.mean_squared_error,
               _pair_cases(probabilities=False), Hints(
        concept="Square each difference between target and prediction, then average over all "
                "entries (a mean, not a sum).",
        formula="J = (1/n) sum_i (y_i - y_hat_i)^2, n the number of entries.",
        reasons={"shape": _ONE_NUMBER}), hint=hint)


def _row_softmax(z):
    return activations.softmax(z, axis=1)


@_exercise(4)
def check_softmax(fn, hint=None) -> Report:
    """Check fn(z) = row-wise softmax of scores z (N, C): each row sums to 1."""
    rng = np.random.default_rng(5)
    cases = [
        case("4 samples, 3 classes", z=rng.normal(size=(4, 3))),
        case("equal scores give 1/C", z=np.zeros((2, 4))),
        case("large scores", z=np.array([[1000.0, 1001.0, 1002.0], [-1e4, 0.0, 1e4]])),
        case("single row (1, C)", z=rng.normal(size=(1, 5))),
        case("two classes", z=2 * rng.normal(size=(3, 2))),
    ]
    return run("check_softmax", fn, _row_softmax, cases, Hints(
        concept="Each row (one sample) becomes a probability distribution over its C classes on "
                "its own; subtracting the row's maximum first changes nothing but prevents "
                "overflow.",
        formula="softmax(z)_ic = e^(z_ic - m_i) / sum_k e^(z_ik - m_i), with m_i the maximum of "
                "row i.",
        reasons={"warning": "e^z overflows for scores above 709: subtract each row's maximum "
                            "before exponentiating; the result is unchanged.",
                 "nan": "inf / inf is NaN: subtract each row's maximum before exponentiating."}),
        hint=hint)


@_exercise(4)
def check_cross_entropy(fn, hint=None) -> Report:
    """Check fn(y, logits) = -(1/n) sum_i log softmax(logits_i)[y_i], y (N,) integer labels."""
    rng = np.random.default_rng(6)
    cases = [
        case("4 samples, 3 classes", y=np.array([0, 2, 1, 2]), logits=rng.normal(size=(4, 3))),
        case("single sample", y=np.array([1]), logits=rng.normal(size=(1, 4))),
        case("equal scores give log C", y=np.array([0, 3, 1]), logits=np.zeros((3, 4))),
        case("large scores", y=np.array([1, 0]),
             logits=np.array([[800.0, 801.0, 799.0], [-800.0, -801.0, -802.0]])),
        case("confidently wrong", y=np.array([0]), logits=np.array([[0.0, 1000.0]])),
    ]
    return run("check_cross_entropy", fn, losses.cross_entropy, cases, Hints(
        concept="Each sample contributes minus the log-probability of its true class. Compute "
                "the log-probabilities directly from the logits, never the log of a probability "
                "that may have rounded to 0.",
        formula="J = -(1/n) sum_i [z_i,y_i - m_i - log sum_k e^(z_ik - m_i)], m_i the maximum "
                "of row i.",
        reasons={"warning": "Work with log-probabilities, z - m - log sum e^(z - m): they never "
                            "overflow and never take log(0).",
                 "nan": "Work with log-probabilities, not the log of the softmax.",
                 "shape": "A loss is one number: the mean over samples."}), hint=hint)


def _mean_absolute_error(y, y_hat) -> float:
    import torch

    return torch.nn.functional.l1_loss(torch.from_numpy(y_hat), torch.from_numpy(y)).item()


def _baseline_bce(y) -> float:
    from scipy.special import entr  # entr(p) = -p log p, and 0 at p = 0

    p = float(np.mean(y))
    return float(entr(p) + entr(1 - p))


@_exercise(4)
def check_mean_absolute_error(fn, hint=None) -> Report:
    """Check fn(y, y_hat) = (1/n) sum |y - y_hat| over all entries, a number."""
    return run("check_mean_absolute_error", fn, _mean_absolute_error,
               _pair_cases(probabilities=False), Hints(
        concept="Like the mean squared error, but each miss counts by its size, not its square: "
                "one big error weighs less than in the MSE.",
        formula="J = (1/n) sum_i |y_i - y_hat_i|.", reasons={"shape": _ONE_NUMBER}), hint=hint)


@_exercise(4)
def check_baseline_bce(fn, hint=None) -> Report:
    """Check fn(y): the lowest BCE any constant prediction reaches on labels y (N,) in {0, 1}.

    The best constant is p = mean(y); the answer is -(p log p + (1 - p) log(1 - p)), with
    0 log 0 = 0 (all labels equal: the loss is 0).
    """
    cases = [
        case("half ones", y=np.array([1.0, 0.0, 1.0, 0.0])),
        case("one in four", y=np.array([0.0, 0.0, 1.0, 0.0])),
        case("all ones", y=np.ones(5)),
        case("all zeros", y=np.zeros(3)),
        case("column (N, 1)", y=np.array([[1.0], [1.0], [0.0]])),
    ]
    return run("check_baseline_bce", fn, _baseline_bce, cases, Hints(
        concept="A model that ignores its input predicts one number p for every sample; the p "
                "with the lowest BCE is the fraction of ones. When every label is the same, that "
                "p is 0 or 1 and the loss is exactly 0, although log(0) appears in the formula.",
        formula="p = mean(y); J = -(p log p + (1 - p) log(1 - p)), where a term with a factor 0 "
                "counts as 0.",
        reasons={"warning": "0 times log(0) gives a warning and NaN: treat p = 0 and p = 1 "
                            "separately (their loss is 0)."}), hint=hint)


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


def _steps_to_converge(curvature, lr, tol):
    # Gradient descent on J(w) = curvature w^2 / 2 from w = 1: count steps until |w| <= tol.
    w, steps = 1.0, 0
    while abs(w) > tol:
        w_next = float(_gradient_descent_step(np.array([w]), np.array([curvature * w]), lr)[0])
        if abs(w_next) >= abs(w):
            return None  # the error no longer shrinks: never converges
        w, steps = w_next, steps + 1
    return steps


def _updates_per_epoch(n_samples, batch_size) -> int:
    import torch

    return len(torch.utils.data.DataLoader(range(n_samples), batch_size=batch_size))


@_exercise(5)
def check_gradient_descent_step(fn, hint=None) -> Report:
    """Check fn(w, grad, lr) = w - lr * grad, a new array (w itself must not change)."""
    rng = np.random.default_rng(7)
    cases = [
        case("vector", w=rng.normal(size=3), grad=rng.normal(size=3), lr=0.1),
        case("matrix (2, 3)", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)), lr=0.5),
        case("column (N, 1)", w=rng.normal(size=(3, 1)), grad=rng.normal(size=(3, 1)), lr=0.01),
        case("zero gradient", w=rng.normal(size=2), grad=np.zeros(2), lr=0.1),
    ]
    return run("check_gradient_descent_step", fn, _gradient_descent_step, cases, Hints(
        concept="The gradient points uphill: step a distance proportional to the learning rate "
                "in the opposite direction, and return a new array.",
        formula="w_new = w - lr grad.",
        reasons={"mutation": "Return a new array: an in-place update (-=) changes the caller's "
                             "w as well."}), hint=hint)


@_exercise(5)
def check_steps_to_converge(fn, hint=None) -> Report:
    """Check fn(curvature, lr, tol): gradient descent steps on J(w) = curvature w^2 / 2 from
    w = 1 until |w| <= tol; None if the steps never get there (|1 - lr curvature| >= 1)."""
    cases = [
        case("error halves every step", curvature=1.0, lr=0.5, tol=1e-3),
        case("one step lands on the minimum", curvature=2.0, lr=0.5, tol=1e-6),
        case("zig-zag that still converges", curvature=3.0, lr=0.5, tol=1e-2),
        case("exactly at the limit 2 / curvature", curvature=4.0, lr=0.5, tol=1e-3),
        case("too large: diverges", curvature=5.0, lr=0.5, tol=1e-3),
        case("already close enough", curvature=1.0, lr=0.1, tol=1.0),
    ]
    return run("check_steps_to_converge", fn, _steps_to_converge, cases, Hints(
        concept="Section 3: each step multiplies the error by the same factor 1 - lr * "
                "curvature. Count the steps until its size is at most tol; if the factor's size "
                "is 1 or more the error never shrinks.",
        formula="after t steps |w| = |1 - lr c|^t; t = smallest whole number with "
                "|1 - lr c|^t <= tol, i.e. ceil(log(tol) / log|1 - lr c|); 0 if tol >= 1; 1 if "
                "the factor is 0; None if |1 - lr c| >= 1.",
        reasons={"warning": "log(0) appears when the factor 1 - lr * curvature is 0: one step "
                            "then reaches the minimum exactly."}), hint=hint)


@_exercise(5)
def check_updates_per_epoch(fn, hint=None) -> Report:
    """Check fn(n_samples, batch_size): mini-batch updates in one epoch (the last batch may be
    smaller; it is still a step)."""
    cases = [
        case("batches fit exactly", n_samples=100, batch_size=10),
        case("a smaller last batch", n_samples=101, batch_size=10),
        case("full batch", n_samples=64, batch_size=64),
        case("batch larger than the data", n_samples=5, batch_size=32),
        case("stochastic (batch of 1)", n_samples=7, batch_size=1),
    ]
    return run("check_updates_per_epoch", fn, _updates_per_epoch, cases, Hints(
        concept="An epoch visits every sample once, one mini-batch per update; a leftover "
                "partial batch is still an update.",
        formula="updates = ceil(n_samples / batch_size)."), hint=hint)


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


def _relu_backward(z, grad_out):
    layer = nn.ReLU()
    layer(z)
    return layer.backward(grad_out)


@_exercise(6)
def check_dense_backward(fn, hint=None) -> Report:
    """Check fn(X, W, b, grad_out) -> (grad_X, grad_W, grad_b) for Z = X @ W + b.

    grad_X = grad_out @ W.T (N, D_in), grad_W = X.T @ grad_out (D_in, D_out),
    grad_b = grad_out summed over samples (D_out,).
    """
    rng = np.random.default_rng(8)
    cases = [Case(c.label, {**c.args, "grad_out": rng.normal(size=(len(c.args["X"]),
                                                                   len(c.args["b"])))})
             for c in _dense_cases()]
    return run("check_dense_backward", fn, _dense_backward, cases, Hints(
        concept="Each gradient has the shape of what it differentiates; the shapes alone tell "
                "you which matrices to multiply and which to transpose. The bias is used by "
                "every sample, so its gradient adds up over samples.",
        formula="grad_X = grad_out W^T, grad_W = X^T grad_out, grad_b = sum over samples (rows) "
                "of grad_out.",
        reasons={"shape": "grad_X like X (N, D_in), grad_W like W (D_in, D_out), grad_b like b "
                          "(D_out,)."}),
        outputs=("grad_X", "grad_W", "grad_b"), hint=hint)


@_exercise(6)
def check_numerical_gradient(fn, hint=None) -> Report:
    """Check fn(f, x, eps): central differences (f(x + eps e_i) - f(x - eps e_i)) / (2 eps)."""

    def sum_of_squares(x):
        return float(np.sum(x**2))

    def sum_of_sines(x):
        return float(np.sum(np.sin(x)))

    def sum_of_exps(x):
        return float(np.sum(np.exp(x)))

    rng = np.random.default_rng(9)
    cases = [
        case("sum of squares, vector", f=sum_of_squares, x=rng.normal(size=3), eps=1e-5),
        case("matrix (2, 3)", f=sum_of_sines, x=rng.normal(size=(2, 3)), eps=1e-5),
        case("central, not forward differences", f=sum_of_exps, x=np.array([0.5, 1.0, 2.0]),
             eps=1e-3),
        case("a single entry (1,)", f=sum_of_squares, x=np.array([3.0]), eps=1e-4),
    ]
    return run("check_numerical_gradient", fn, gradcheck.numerical_gradient, cases, Hints(
        concept="Nudge one entry at a time, in both directions, and watch f change; put the "
                "entry back before nudging the next one.",
        formula="grad_i = (f(x + eps e_i) - f(x - eps e_i)) / (2 eps), e_i the array with 1 at "
                "entry i and 0 elsewhere.",
        reasons={"mutation": "Put each entry back after nudging it, or nudge a copy of x.",
                 "shape": "The gradient has the shape of x."}), hint=hint)


@_exercise(6)
def check_bce_gradient(fn, hint=None) -> Report:
    """Check fn(y, y_hat) = dJ/dy_hat of the mean BCE: (y_hat - y) / (y_hat (1 - y_hat)) / n."""
    return run("check_bce_gradient", fn, _bce_gradient, _pair_cases(probabilities=True), Hints(
        concept="Differentiate the mean BCE with respect to each prediction separately; the "
                "1/n of the mean stays in every entry.",
        formula="dJ/dy_hat_i = (1/n) (-y_i / y_hat_i + (1 - y_i) / (1 - y_hat_i)) "
                "= (1/n) (y_hat_i - y_i) / (y_hat_i (1 - y_hat_i)).",
        reasons={"shape": "The gradient has the shape of y_hat."}), hint=hint)


@_exercise(6)
def check_relu_backward(fn, hint=None) -> Report:
    """Check fn(z, grad_out) = dJ/dz for a = ReLU(z), given grad_out = dJ/da (same shape)."""
    rng = np.random.default_rng(20)
    cases = [
        case("mixed signs", z=np.array([-2.0, -0.5, 0.5, 2.0]),
             grad_out=np.array([1.0, 2.0, 3.0, 4.0])),
        case("z = 0 passes nothing back", z=np.zeros(3), grad_out=np.ones(3)),
        case("matrix (3, 4)", z=rng.normal(size=(3, 4)), grad_out=rng.normal(size=(3, 4))),
        case("negative upstream gradient", z=np.array([1.0, -1.0]),
             grad_out=np.array([-5.0, -5.0])),
    ]
    return run("check_relu_backward", fn, _relu_backward, cases, Hints(
        concept="Chain rule: multiply the gradient arriving from the next layer by ReLU's local "
                "derivative, entry by entry.",
        formula="dJ/dz = dJ/da * ReLU'(z): grad_out where z > 0, and 0 where z <= 0."),
        hint=hint)


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


def _first_epoch_below(lr0, step_size, gamma, lr_min) -> int:
    epoch = 0
    while _step_decay(epoch, lr0, step_size, gamma) >= lr_min:
        epoch += step_size  # the rate only changes at multiples of step_size
    return epoch


@_exercise(7)
def check_momentum_step(fn, hint=None) -> Report:
    """Check fn(w, grad, velocity, lr, momentum) -> (w_new, velocity_new), torch's convention:

    velocity_new = momentum * velocity + grad; w_new = w - lr * velocity_new.
    """
    rng = np.random.default_rng(10)
    cases = [
        case("first step (velocity 0)", w=rng.normal(size=3), grad=rng.normal(size=3),
             velocity=np.zeros(3), lr=0.1, momentum=0.9),
        case("running velocity", w=rng.normal(size=3), grad=rng.normal(size=3),
             velocity=rng.normal(size=3), lr=0.05, momentum=0.9),
        case("momentum 0 is plain SGD", w=rng.normal(size=2), grad=rng.normal(size=2),
             velocity=rng.normal(size=2), lr=0.1, momentum=0.0),
        case("matrix (2, 3)", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)),
             velocity=rng.normal(size=(2, 3)), lr=0.01, momentum=0.5),
    ]
    return run("check_momentum_step", fn, _momentum_step, cases, Hints(
        concept="The velocity is a running sum of past gradients, each older one shrunk by the "
                "momentum factor; the step follows the velocity, not the raw gradient.",
        formula="b_t = mu b_t-1 + g_t; w_t = w_t-1 - lr b_t (lr multiplies the whole "
                "velocity, as in PyTorch)."),
        outputs=("w_new", "velocity_new"), hint=hint)


@_exercise(7)
def check_adam_step(fn, hint=None) -> Report:
    """Check fn(w, grad, m, v, t, lr, beta1, beta2, eps) -> (w_new, m_new, v_new).

    t counts steps from 1 (this step included); m_new, v_new are the moments before bias
    correction, as torch.optim.Adam keeps them.
    """
    rng = np.random.default_rng(11)
    settings = {"lr": 1e-3, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8}
    cases = [
        case("first step (t = 1)", w=rng.normal(size=3), grad=rng.normal(size=3),
             m=np.zeros(3), v=np.zeros(3), t=1, **settings),
        case("later step (t = 10)", w=rng.normal(size=3), grad=rng.normal(size=3),
             m=0.1 * rng.normal(size=3), v=0.01 * rng.uniform(size=3), t=10, **settings),
        case("matrix (2, 3), lr 0.1", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)),
             m=np.zeros((2, 3)), v=np.zeros((2, 3)), t=1,
             **{**settings, "lr": 0.1, "beta1": 0.8, "beta2": 0.99}),
        case("tiny gradients: eps outside the root", w=np.ones(2), grad=np.array([1e-9, -1e-8]),
             m=np.zeros(2), v=np.zeros(2), t=1, **settings),
    ]
    return run("check_adam_step", fn, _adam_step, cases, Hints(
        concept="Adam keeps two running averages, of the gradient and of its square, corrects "
                "both for starting at 0, and divides one by the square root of the other. Return "
                "the uncorrected averages.",
        formula="m = beta1 m + (1 - beta1) g; v = beta2 v + (1 - beta2) g^2; "
                "m_hat = m / (1 - beta1^t); v_hat = v / (1 - beta2^t); "
                "w = w - lr m_hat / (sqrt(v_hat) + eps)."),
        outputs=("w_new", "m_new", "v_new"), hint=hint)


@_exercise(7)
def check_step_decay(fn, hint=None) -> Report:
    """Check fn(epoch, lr0, step_size, gamma) = lr0 * gamma ** (epoch // step_size)."""
    cases = [
        case("epoch 0", epoch=0, lr0=0.1, step_size=10, gamma=0.1),
        case("last epoch before the first drop", epoch=9, lr0=0.1, step_size=10, gamma=0.1),
        case("first drop", epoch=10, lr0=0.1, step_size=10, gamma=0.1),
        case("two drops", epoch=25, lr0=0.5, step_size=10, gamma=0.5),
        case("step_size 1", epoch=3, lr0=1.0, step_size=1, gamma=0.9),
    ]
    return run("check_step_decay", fn, _step_decay, cases, Hints(
        concept="The rate stays constant for step_size epochs, then is multiplied by gamma: "
                "count the completed blocks of step_size epochs.",
        formula="lr = lr0 gamma^floor(epoch / step_size) (whole blocks only)."), hint=hint)


@_exercise(7)
def check_cosine_schedule(fn, hint=None) -> Report:
    """Check fn(epoch, lr0, T_max, eta_min) = eta_min + (lr0 - eta_min)(1 + cos(pi epoch/T_max))/2.

    The values for 0 <= epoch <= T_max, as torch's CosineAnnealingLR.
    """
    cases = [
        case("epoch 0 gives lr0", epoch=0, lr0=0.1, T_max=10, eta_min=0.0),
        case("halfway", epoch=5, lr0=0.1, T_max=10, eta_min=0.0),
        case("epoch T_max gives eta_min", epoch=10, lr0=0.1, T_max=10, eta_min=0.001),
        case("eta_min > 0", epoch=3, lr0=0.5, T_max=20, eta_min=0.01),
    ]
    return run("check_cosine_schedule", fn, _cosine_schedule, cases, Hints(
        concept="Half a cosine wave carries the rate smoothly from lr0 at epoch 0 down to "
                "eta_min at epoch T_max (angles in radians).",
        formula="lr = eta_min + (lr0 - eta_min) (1 + cos(pi epoch / T_max)) / 2."), hint=hint)


@_exercise(7)
def check_first_epoch_below(fn, hint=None) -> Report:
    """Check fn(lr0, step_size, gamma, lr_min): the first epoch whose step-decay rate
    lr0 * gamma ** (epoch // step_size) is below lr_min (0 if lr0 already is)."""
    cases = [
        case("two drops needed", lr0=0.1, step_size=10, gamma=0.5, lr_min=0.03),
        case("lr0 already below", lr0=0.01, step_size=5, gamma=0.5, lr_min=0.1),
        case("exactly lr_min is not below", lr0=1.0, step_size=3, gamma=0.5, lr_min=0.25),
        case("drop every epoch", lr0=1.0, step_size=1, gamma=0.1, lr_min=1e-3),
    ]
    return run("check_first_epoch_below", fn, _first_epoch_below, cases, Hints(
        concept="Invert the step decay: the rate changes only at multiples of step_size, so find "
                "how many drops k are needed, then the epoch where the k-th drop happens.",
        formula="k = smallest whole number with lr0 gamma^k < lr_min (count k up from 0, which "
                "avoids rounding in a logarithm); epoch = k step_size."), hint=hint)


# ---------------------------------------------------------------------------------------------
# 08 regularization
# ---------------------------------------------------------------------------------------------


def _dropout(X, p, rng, training):
    layer = nn.Dropout(p, rng=rng).train(training)
    return layer(X)


def _l2_penalty(weights_list, lam) -> float:
    # lam/2 sum w^2: its gradient lam * w is torch.optim.SGD's weight_decay=lam (see optim.SGD).
    return lam / 2 * sum(float(np.sum(w**2)) for w in weights_list)


def _weight_decay_step(w, grad, lr, lam):
    return _optimizer_step(optim.SGD, w, grad, lr=lr, weight_decay=lam)[0]


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
    return None if abs(fraction - p) <= 0.03 else f"dropped {fraction:.2f} of the entries"


def _mean_kept(got, args) -> str | None:
    got_mean, x_mean = float(np.mean(got)), float(np.mean(args["X"]))
    ok = abs(got_mean - x_mean) <= 0.03 * abs(x_mean)
    return None if ok else f"mean {got_mean:.3g} instead of about {x_mean:.3g}"


def _drew_from_rng(got, args) -> str | None:
    untouched = np.random.default_rng(_DROPOUT_SEED).bit_generator.state
    used = args["rng"].bit_generator.state != untouched
    return None if used else "did not draw the mask from rng (a global random generator?)"


@_exercise(8)
def check_dropout(fn, hint=None) -> Report:
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
                     wants="random numbers drawn from rng"),
        dropout_case("drops about p of a large array", large, 0.2, prop=_dropped_fraction,
                     wants="0.2 +- 0.03 of the entries dropped"),
        dropout_case("keeps the mean of a large array", large, 0.5, prop=_mean_kept,
                     wants="mean within 3% of X's mean"),
    ]
    return run("check_dropout", fn, _dropout, cases, Hints(
        concept="Inverted dropout: in training, keep each entry with probability 1 - p and "
                "scale the kept ones up so the mean stays the same; in evaluation mode it does "
                "nothing. Draw the random numbers from rng.",
        formula="keep_ij = (u_ij >= p) with u uniform in [0, 1) from rng; output = X keep / "
                "(1 - p) in training, X in evaluation.",
        reasons={"property": "Check what each entry can become, and where the random numbers "
                             "come from."}), hint=hint)


@_exercise(8)
def check_l2_penalty(fn, hint=None) -> Report:
    """Check fn(weights_list, lam) = lam / 2 * (sum of the squares of every array's entries).

    Convention: the 1/2 makes the penalty's gradient lam * W, which is what
    `torch.optim.SGD(weight_decay=lam)` (and `dlhelpers.optim.SGD`) adds to the gradient.
    """
    rng = np.random.default_rng(14)
    cases = [
        case("one weight matrix", weights_list=[rng.normal(size=(3, 2))], lam=0.1),
        case("weights and biases", weights_list=[rng.normal(size=(2, 3)), rng.normal(size=3),
                                                 rng.normal(size=(3, 1)), rng.normal(size=1)],
             lam=0.01),
        case("lam = 0", weights_list=[rng.normal(size=(2, 2))], lam=0.0),
        case("zero weights", weights_list=[np.zeros((2, 2)), np.zeros(2)], lam=0.5),
    ]
    return run("check_l2_penalty", fn, _l2_penalty, cases, Hints(
        concept="The penalty adds up the squares of every parameter in every array into one "
                "number; the factor 1/2 makes its gradient exactly lam W.",
        formula="penalty = (lam / 2) sum over arrays W of sum_ij W_ij^2.",
        reasons={"shape": "The penalty is one number: add up the sums of every array."}),
        hint=hint)


@_exercise(8)
def check_weight_decay_step(fn, hint=None) -> Report:
    """Check fn(w, grad, lr, lam): one SGD step on loss + (lam / 2) ||w||^2, a new array."""
    rng = np.random.default_rng(21)
    cases = [
        case("vector", w=rng.normal(size=3), grad=rng.normal(size=3), lr=0.1, lam=0.01),
        case("lam = 0 is plain SGD", w=rng.normal(size=3), grad=rng.normal(size=3), lr=0.1,
             lam=0.0),
        case("zero gradient: only the decay", w=np.array([1.0, -2.0]), grad=np.zeros(2),
             lr=0.5, lam=0.1),
        case("matrix (2, 3)", w=rng.normal(size=(2, 3)), grad=rng.normal(size=(2, 3)), lr=0.01,
             lam=0.5),
    ]
    return run("check_weight_decay_step", fn, _weight_decay_step, cases, Hints(
        concept="The L2 penalty's own gradient, lam w, adds to the loss's gradient before the "
                "usual gradient-descent step: every step also shrinks w towards 0.",
        formula="w_new = w - lr (grad + lam w) = (1 - lr lam) w - lr grad.",
        reasons={"mutation": "Return a new array: an in-place update changes the caller's w."}),
        hint=hint)


@_exercise(8)
def check_early_stopping(fn, hint=None) -> Report:
    """Check fn(val_losses, patience, min_delta) -> (best_epoch, stop_epoch), epochs from 0.

    An epoch improves when its loss < best - min_delta (best_epoch is the last one that did);
    training stops at the epoch where `patience` epochs in a row have not improved;
    stop_epoch is None if that never happens.
    """
    cases = [
        case("stops after patience", val_losses=[1.0, 0.8, 0.7, 0.72, 0.71, 0.73, 0.69],
             patience=3, min_delta=0.0),
        case("keeps improving: never stops", val_losses=[1.0, 0.9, 0.8, 0.7], patience=2,
             min_delta=0.0),
        case("equal loss is no improvement", val_losses=[0.5, 0.5, 0.5], patience=2,
             min_delta=0.0),
        case("an improvement resets the count", val_losses=[1.0, 1.1, 1.2, 0.9, 1.0, 1.1, 1.2],
             patience=3, min_delta=0.0),
        case("min_delta ignores tiny gains", val_losses=[1.0, 0.99, 0.985, 0.98, 0.5],
             patience=3, min_delta=0.05),
        case("patience 1", val_losses=[0.9, 0.8, 0.85, 0.7], patience=1, min_delta=0.0),
    ]
    return run("check_early_stopping", fn, _early_stopping, cases, Hints(
        concept="Remember the best validation loss so far and count the epochs since it last "
                "improved by more than min_delta; stop when the count reaches patience.",
        formula="epoch t improves if loss_t < best - min_delta (then best = loss_t, best_epoch "
                "= t, count = 0); otherwise count + 1, and stop_epoch = t when count = "
                "patience; stop_epoch = None if that never happens. Epochs count from 0."),
        outputs=("best_epoch", "stop_epoch"), hint=hint)


# ---------------------------------------------------------------------------------------------
# 09 capstone: handwritten digits
# ---------------------------------------------------------------------------------------------


def _accuracy(y_true, y_pred) -> float:
    from sklearn.metrics import accuracy_score  # imported when used: it takes ~1 s

    return float(accuracy_score(y_true, y_pred))


def _confusion_matrix(y_true, y_pred, n_classes):
    from sklearn.metrics import confusion_matrix  # imported when used: it takes ~1 s

    return confusion_matrix(y_true, y_pred, labels=np.arange(n_classes))


def _samples_from(C):
    """Label arrays (y_true, y_pred) whose confusion matrix is C."""
    pairs = [(t, p) for (t, p), count in np.ndenumerate(C) for _ in range(count)]
    return np.array([t for t, _ in pairs]), np.array([p for _, p in pairs])


def _per_class_recall(C):
    from sklearn.metrics import recall_score

    y_true, y_pred = _samples_from(C)
    return recall_score(y_true, y_pred, labels=np.arange(len(C)), average=None,
                        zero_division=0.0)


def _most_confused(C):
    off_diagonal = np.where(np.eye(len(C), dtype=bool), -1, C)  # (C, C) the diagonal never wins
    true, pred = np.unravel_index(np.argmax(off_diagonal), C.shape)  # first maximum, row-major
    return int(true), int(pred)


def _confusion_cases() -> list[Case]:
    return [
        case("3 classes", C=np.array([[5, 1, 0], [2, 7, 1], [0, 3, 6]])),
        case("perfect: diagonal", C=np.diag([4, 2, 3])),
        case("a class that never appears", C=np.array([[3, 1, 0], [0, 0, 0], [2, 0, 4]])),
        case("ties: the first in reading order", C=np.array([[1, 2, 0], [2, 1, 0], [0, 0, 1]])),
    ]


@_exercise(9)
def check_accuracy(fn, hint=None) -> Report:
    """Check fn(y_true, y_pred) = the fraction of predictions equal to the labels."""
    rng = np.random.default_rng(15)
    cases = [
        case("half right", y_true=np.array([0, 1, 1, 0]), y_pred=np.array([0, 0, 1, 1])),
        case("all right", y_true=np.array([2, 0, 1]), y_pred=np.array([2, 0, 1])),
        case("none right", y_true=np.array([1, 1, 0]), y_pred=np.array([0, 0, 1])),
        case("10 classes, 50 samples", y_true=rng.integers(0, 10, 50),
             y_pred=rng.integers(0, 10, 50)),
    ]
    return run("check_accuracy", fn, _accuracy, cases, Hints(
        concept="Accuracy is a fraction between 0 and 1, not a count.",
        formula="accuracy = (number of i with y_pred_i = y_true_i) / N."), hint=hint)


@_exercise(9)
def check_confusion_matrix(fn, hint=None) -> Report:
    """Check fn(y_true, y_pred, n_classes): C[i, j] = count of true class i predicted as j."""
    rng = np.random.default_rng(16)
    cases = [
        case("3 classes", y_true=np.array([0, 0, 1, 1, 2, 2, 2]),
             y_pred=np.array([0, 1, 1, 2, 2, 0, 2]), n_classes=3),
        case("perfect predictions: diagonal", y_true=np.array([0, 1, 2, 1]),
             y_pred=np.array([0, 1, 2, 1]), n_classes=3),
        case("rows true, columns predicted", y_true=np.zeros(4, dtype=np.int64),
             y_pred=np.ones(4, dtype=np.int64), n_classes=2),
        case("a class that never appears", y_true=rng.integers(0, 3, 20),
             y_pred=rng.integers(0, 3, 20), n_classes=4),
    ]
    return run("check_confusion_matrix", fn, _confusion_matrix, cases, Hints(
        concept="Rows are the truth, columns the prediction; every sample adds 1 to one entry. "
                "The matrix is n_classes square even when a class never appears.",
        formula="C_ij = number of samples with y_true = i and y_pred = j, for 0 <= i, j < "
                "n_classes.",
        reasons={"shape": "C has shape (n_classes, n_classes), even when a class never "
                          "appears."}), hint=hint)


@_exercise(9)
def check_per_class_recall(fn, hint=None) -> Report:
    """Check fn(C) -> (K,) recall of each class from a confusion matrix C (K, K), rows true:
    C[i, i] / (row i's sum), 0 for a class with no samples."""
    return run("check_per_class_recall", fn, _per_class_recall, _confusion_cases(), Hints(
        concept="Recall asks: of the samples that truly are class i (row i), what fraction did "
                "the model find? A class without samples gets 0, not 0/0.",
        formula="recall_i = C_ii / sum_j C_ij, and 0 where sum_j C_ij = 0.",
        reasons={"warning": "0/0 for a class without samples: give it 0 without dividing."}),
        hint=hint)


@_exercise(9)
def check_most_confused(fn, hint=None) -> Report:
    """Check fn(C) -> (true, predicted): the off-diagonal entry of C with the largest count,
    the first in reading order (row by row) on a tie; a (0, 1)-style pair of ints."""
    return run("check_most_confused", fn, _most_confused, _confusion_cases(), Hints(
        concept="Mistakes live off the diagonal: ignore C_ii, find the largest remaining count "
                "and report its row (the true class) and column (the prediction).",
        formula="(i, j) = the first pair in row-major order with i != j and C_ij = max over "
                "k != l of C_kl."), outputs=("true", "predicted"), hint=hint)
