"""The exercise checkers: right answers pass, typical wrong answers fail with useful feedback.

Each checker is run on a correct solution written the way a student would (independently of
`dlhelpers`), which must pass with PASS lines only; on the stub a notebook ships (raise
NotImplementedError), which must give the same "not attempted yet" verdict every time; and on
typical mistakes (overflow, missing minus sign, transposed W, in-place changes, exceptions,
wrong shapes or types, constants), which must fail with the reason, expected and got, and a
hint that names the concept first and the formula later, never code. The checkers compare with
rtol=1e-6, atol=1e-8; `test_tolerance_is_the_documented_one` pins that down.
"""

import math
import re

import numpy as np
import pytest
import torch

from dlhelpers import checking, checks

# ---- correct solutions, as a student would write them ---------------------------------------


def sigmoid(z):
    e = np.exp(-np.abs(z))
    return np.where(z >= 0, 1 / (1 + e), e / (1 + e))


def log_softmax(z):
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def perceptron_update(w, w0, x, y, lr):
    y_hat = 1 if w0 + x @ w > 0 else 0
    return w + lr * (y - y_hat) * x, w0 + lr * (y - y_hat)


def numerical_gradient(f, x, eps):
    x = x.copy()
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + eps
        plus = f(x)
        x[i] = old - eps
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * eps)
    return grad


def momentum_step(w, grad, velocity, lr, momentum):
    velocity = momentum * velocity + grad
    return w - lr * velocity, velocity


def adam_step(w, grad, m, v, t, lr, beta1, beta2, eps):
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad**2
    m_hat, v_hat = m / (1 - beta1**t), v / (1 - beta2**t)
    return w - lr * m_hat / (np.sqrt(v_hat) + eps), m, v


def dropout(X, p, rng, training):
    if not training:
        return X
    keep = rng.random(X.shape) >= p
    return X * keep / (1 - p)


def early_stopping(val_losses, patience, min_delta):
    best, best_epoch, waited = float("inf"), None, 0
    for epoch, loss in enumerate(val_losses):
        if loss < best - min_delta:
            best, best_epoch, waited = loss, epoch, 0
        else:
            waited += 1
            if waited == patience:
                return best_epoch, epoch
    return best_epoch, None


def confusion(y_true, y_pred, n_classes):
    C = np.zeros((n_classes, n_classes), dtype=int)
    for t, p in zip(y_true, y_pred, strict=True):
        C[t, p] += 1
    return C


def count_mistakes(X, y, w, w0):
    return int(np.sum((w0 + X @ w > 0).astype(int) != y))


def largest_square_matmul(budget):
    n = int(round((budget / 2) ** (1 / 3)))
    while 2 * n**3 > budget:
        n -= 1
    while 2 * (n + 1) ** 3 <= budget:
        n += 1
    return n


def mlp_forward(X, weights, biases):
    H = X
    for k, (W, b) in enumerate(zip(weights, biases, strict=True)):
        H = H @ W + b
        if k < len(weights) - 1:
            H = np.maximum(0, H)
    return H


def baseline_bce(y):
    p = np.mean(y)
    if p in (0.0, 1.0):
        return 0.0
    return -(p * np.log(p) + (1 - p) * np.log(1 - p))


def steps_to_converge(curvature, lr, tol):
    factor = abs(1 - lr * curvature)
    if tol >= 1:
        return 0
    if factor == 0:
        return 1
    if factor >= 1:
        return None
    return math.ceil(math.log(tol) / math.log(factor) - 1e-12)


def first_epoch_below(lr0, step_size, gamma, lr_min):
    k = 0
    while lr0 * gamma**k >= lr_min:
        k += 1
    return k * step_size


def per_class_recall(C):
    totals = C.sum(axis=1)
    return np.divide(np.diag(C), totals, out=np.zeros(len(C)), where=totals > 0)


def most_confused(C):
    off = C - np.diag(np.diag(C)) - np.eye(len(C), dtype=int)
    i, j = np.unravel_index(np.argmax(off), C.shape)
    return int(i), int(j)


CORRECT = {
    "check_dense_flops": lambda b, d_in, d_out: 2 * b * d_in * d_out + b * d_out,
    "check_largest_square_matmul": largest_square_matmul,
    "check_perceptron_forward": lambda X, w, w0: sigmoid(w0 + X @ w),
    "check_perceptron_update": perceptron_update,
    "check_count_mistakes": count_mistakes,
    "check_and_gate": lambda: (np.array([2.0, 2.0]), -3.0),
    "check_sigmoid": sigmoid,
    "check_tanh": np.tanh,
    "check_relu": lambda z: np.maximum(0, z),
    "check_sigmoid_derivative": lambda z: sigmoid(z) * (1 - sigmoid(z)),
    "check_tanh_derivative": lambda z: 1 - np.tanh(z) ** 2,
    "check_relu_derivative": lambda z: (z > 0).astype(float),
    "check_leaky_relu": lambda z, alpha: np.where(z > 0, z, alpha * z),
    "check_logit": lambda p: np.log(p) - np.log1p(-p),
    "check_dense_forward": lambda X, W, b: X @ W + b,
    "check_parameter_count": lambda s: sum(a * b + b for a, b in zip(s, s[1:], strict=False)),
    "check_hidden_units_for_budget": lambda budget, n_in, n_out: max(
        0, (budget - n_out) // (n_in + 1 + n_out)),
    "check_mlp_forward": mlp_forward,
    "check_binary_cross_entropy": lambda y, p: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)),
    "check_mean_squared_error": lambda y, p: np.mean((y - p) ** 2),
    "check_softmax": lambda z: np.exp(log_softmax(z)),
    "check_cross_entropy": lambda y, z: -np.mean(log_softmax(z)[np.arange(len(y)), y]),
    "check_mean_absolute_error": lambda y, p: np.mean(np.abs(y - p)),
    "check_baseline_bce": baseline_bce,
    "check_gradient_descent_step": lambda w, grad, lr: w - lr * grad,
    "check_steps_to_converge": steps_to_converge,
    "check_updates_per_epoch": lambda n, b: -(-n // b),
    "check_dense_backward": lambda X, W, b, g: (g @ W.T, X.T @ g, g.sum(axis=0)),
    "check_numerical_gradient": numerical_gradient,
    "check_bce_gradient": lambda y, p: (-y / p + (1 - y) / (1 - p)) / y.size,
    "check_relu_backward": lambda z, g: g * (z > 0),
    "check_momentum_step": momentum_step,
    "check_adam_step": adam_step,
    "check_step_decay": lambda epoch, lr0, step, gamma: lr0 * gamma ** (epoch // step),
    "check_cosine_schedule": lambda e, lr0, T, lo: lo + (lr0 - lo) * (1 + math.cos(math.pi * e / T))
    / 2,
    "check_first_epoch_below": first_epoch_below,
    "check_dropout": dropout,
    "check_l2_penalty": lambda ws, lam: lam / 2 * sum(np.sum(w**2) for w in ws),
    "check_weight_decay_step": lambda w, g, lr, lam: w - lr * (g + lam * w),
    "check_early_stopping": early_stopping,
    "check_accuracy": lambda y, p: np.mean(y == p),
    "check_confusion_matrix": confusion,
    "check_per_class_recall": per_class_recall,
    "check_most_confused": most_confused,
}

# ---- typical mistakes ----------------------------------------------------------------------


def naive_tanh(z):
    return (np.exp(z) - np.exp(-z)) / (np.exp(z) + np.exp(-z))


def gd_in_place(w, grad, lr):
    w -= lr * grad
    return w


def update_in_place(w, w0, x, y, lr):
    y_hat = 1 if w0 + x @ w > 0 else 0
    w += lr * (y - y_hat) * x
    return w, w0 + lr * (y - y_hat)


def update_at_zero(w, w0, x, y, lr):
    y_hat = 1 if w0 + x @ w >= 0 else 0  # predicts 1 on the boundary
    return w + lr * (y - y_hat) * x, w0 + lr * (y - y_hat)


def forward_differences(f, x, eps):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        nudged = x.copy()
        nudged[i] += eps
        grad[i] = (f(nudged) - f(x)) / eps
    return grad


def nudges_without_restoring(f, x, eps):
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        x[i] += eps
        plus = f(x)
        x[i] -= 2 * eps
        grad[i] = (plus - f(x)) / (2 * eps)
    return grad


def global_rng_dropout(X, p, rng, training):
    if not training:
        return X
    return X * (np.random.default_rng(0).random(X.shape) >= p) / (1 - p)


def raises(*args):
    return 1 / 0


WRONG = [
    # (checker, wrong solution, text expected in a FAIL line)
    ("check_sigmoid", lambda z: 1 / (1 + np.exp(-z)), 'numpy warned "overflow encountered'),
    ("check_sigmoid", lambda z: 1 / (1 + np.exp(z)), "wrong value"),
    ("check_tanh", naive_tanh, "numpy warned \"overflow"),
    ("check_relu", lambda z: np.max([0, np.max(z)]), "wrong shape: expected (3,), got ()"),
    ("check_relu_derivative", lambda z: np.abs(np.sign(z)), "wrong value"),
    ("check_relu_derivative", lambda z: (z >= 0).astype(float), "wrong value"),
    ("check_sigmoid_derivative", lambda z: z * (1 - z), "wrong value"),
    ("check_tanh_derivative", lambda z: 1 - np.tanh(z), "wrong value"),
    ("check_dense_flops", lambda b, d_in, d_out: 2 * b * d_in * d_out, "wrong value"),
    ("check_largest_square_matmul", lambda budget: int((budget / 2) ** (1 / 3)), "wrong value"),
    ("check_count_mistakes", lambda X, y, w, w0: int(np.sum((w0 + X @ w >= 0) != y)),
     "wrong value"),
    ("check_count_mistakes", lambda X, y, w, w0: np.mean((w0 + X @ w > 0) != y), "wrong value"),
    ("check_and_gate", lambda: (np.array([1.0, 1.0]), -0.5), "wrong for input(s) [[0, 1], [1, 0]]"),
    ("check_leaky_relu", lambda z, alpha: np.maximum(0, z), "wrong value"),
    ("check_logit", lambda p: np.log(p / (1 + p)), "wrong value"),
    ("check_hidden_units_for_budget",
     lambda budget, n_in, n_out: (budget - n_out) // (n_in + n_out), "wrong value"),
    ("check_mlp_forward", lambda X, Ws, bs: mlp_forward(X, Ws, bs) if len(Ws) == 1 else np.maximum(
        0, mlp_forward(X, Ws, bs)), "wrong value"),
    ("check_mean_absolute_error", lambda y, p: np.mean((y - p) ** 2), "wrong value"),
    ("check_baseline_bce", lambda y: -(np.mean(y) * np.log(np.mean(y))
                                       + (1 - np.mean(y)) * np.log(1 - np.mean(y))),
     "numpy warned"),
    ("check_steps_to_converge", lambda c, lr, tol: int(math.log(tol) / math.log(abs(1 - lr * c))),
     "raised"),
    ("check_updates_per_epoch", lambda n, b: n // b, "wrong value"),
    ("check_relu_backward", lambda z, g: (z > 0).astype(float), "wrong value"),
    ("check_first_epoch_below", lambda lr0, s, gamma, lo: math.ceil(math.log(lo / lr0)
                                                                   / math.log(gamma)) * s,
     "wrong value"),
    ("check_weight_decay_step", lambda w, g, lr, lam: w - lr * g - lam * w, "wrong value"),
    ("check_per_class_recall", lambda C: np.diag(C) / C.sum(axis=0), "wrong value"),
    ("check_per_class_recall", lambda C: np.diag(C) / C.sum(axis=1), "numpy warned"),
    ("check_most_confused", lambda C: np.unravel_index(np.argmax(C), C.shape), "wrong value"),
    ("check_perceptron_forward", lambda X, w, w0: sigmoid(X @ w), "wrong value"),
    ("check_perceptron_forward", lambda X, w, w0: sigmoid(w0 + X @ w.reshape(-1, 1)),
     "wrong shape: expected (4,), got (4, 1)"),
    ("check_perceptron_update", update_in_place, "changed its input w in place"),
    ("check_perceptron_update", update_at_zero, "w0_new: wrong value"),
    ("check_dense_forward", lambda X, W, b: X @ W.T + b, "wrong value"),
    ("check_dense_forward", lambda X, W, b: X @ W.T + b, "raised ValueError"),
    ("check_parameter_count", lambda s: sum(a * b for a, b in zip(s, s[1:], strict=False)),
     "wrong value"),
    ("check_binary_cross_entropy",
     lambda y, p: np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), "wrong value"),
    ("check_binary_cross_entropy",
     lambda y, p: -(y * np.log(p) + (1 - y) * np.log(1 - p)), "wrong shape"),
    ("check_mean_squared_error", lambda y, p: np.sum((y - p) ** 2), "wrong value"),
    ("check_softmax", lambda z: np.exp(z) / np.exp(z).sum(axis=1, keepdims=True),
     "numpy warned \"overflow"),
    ("check_softmax", lambda z: np.exp(log_softmax(z)) / len(z), "wrong value"),
    ("check_cross_entropy",
     lambda y, z: -np.mean(np.log(np.exp(log_softmax(z)))[np.arange(len(y)), y]),
     "numpy warned \"divide by zero encountered in log\""),
    ("check_gradient_descent_step", gd_in_place, "changed its input w in place"),
    ("check_gradient_descent_step", lambda w, grad, lr: w + lr * grad, "wrong value"),
    ("check_dense_backward", lambda X, W, b, g: (g @ W.T, g.T @ X, g.sum(axis=0)),
     "grad_W: wrong value"),
    ("check_dense_backward", lambda X, W, b, g: (g @ W.T, X.T @ g, g.sum()),
     "grad_b: wrong shape: expected (3,), got ()"),
    ("check_dense_backward", lambda X, W, b, g: g @ W.T, "expected a tuple of 3 values"),
    ("check_numerical_gradient", forward_differences, "wrong value"),
    ("check_numerical_gradient", nudges_without_restoring, "changed its input x in place"),
    ("check_bce_gradient", lambda y, p: -y / p + (1 - y) / (1 - p), "wrong value"),
    ("check_momentum_step",
     lambda w, g, v, lr, mu: (w - (mu * v + lr * g), mu * v + lr * g), "wrong value"),
    ("check_adam_step",
     lambda w, g, m, v, t, lr, b1, b2, eps: adam_step(w, g, m, v, 10**9, lr, b1, b2, eps),
     "wrong value"),
    ("check_step_decay", lambda epoch, lr0, step, gamma: lr0 * gamma ** (epoch / step),
     "wrong value"),
    ("check_cosine_schedule", lambda e, lr0, T, lo: lo + (lr0 - lo) * (1 + math.cos(e / T)) / 2,
     "wrong value"),
    ("check_dropout", lambda X, p, rng, training: X * (rng.random(X.shape) >= p),
     "neither 0 nor X / (1 - p)"),
    ("check_dropout", lambda X, p, rng, training: X * (rng.random(X.shape) < p) / (1 - p),
     "dropped 0.8"),
    ("check_dropout", global_rng_dropout, "did not draw the mask from rng"),
    ("check_dropout", lambda X, p, rng, training: dropout(X, p, rng, True), "wrong value"),
    ("check_l2_penalty", lambda ws, lam: lam * sum(np.sum(w**2) for w in ws), "wrong value"),
    ("check_early_stopping", lambda losses, patience, delta: (int(np.argmin(losses)),
                                                             len(losses) - 1), "wrong value"),
    ("check_early_stopping",
     lambda losses, patience, delta: early_stopping(losses, patience, -1e-12), "wrong value"),
    ("check_accuracy", lambda y, p: np.sum(y == p), "wrong value"),
    ("check_confusion_matrix", lambda t, p, c: confusion(t, p, c).T, "wrong value"),
    ("check_confusion_matrix", lambda t, p, c: confusion(t, p, max(t.max(), p.max()) + 1),
     "wrong shape: expected (4, 4), got (3, 3)"),
    # generic failures: exceptions, types, NaN, constants
    ("check_sigmoid", raises, "raised ZeroDivisionError: division by zero"),
    ("check_sigmoid", lambda z: list(sigmoid(z)), "expected a numpy array, got list"),
    ("check_sigmoid", lambda z: torch.sigmoid(torch.tensor(z)), "returned a torch tensor"),
    ("check_sigmoid", lambda z: None, "returned None"),
    ("check_sigmoid", lambda z: np.full(z.shape, np.nan), "NaN in the output"),
    ("check_relu", lambda z: np.array(["0"] * z.size).reshape(z.shape), "expected numbers"),
    ("check_mean_squared_error", lambda y, p: "0.5", "expected a number, got str"),
    ("check_accuracy", lambda y, p: 0.5, "wrong value"),
    ("check_dense_flops", lambda b, d_in, d_out: 48, "wrong value"),
]


@pytest.fixture(autouse=True)
def fresh_hint_levels(monkeypatch):
    """Each test starts as a student who has not failed any checker yet."""
    monkeypatch.setattr(checking, "_failed_runs", {})


def run(capsys, checker_name, fn, **kwargs):
    """Run a checker outside IPython (it prints); return (its report, the printed lines)."""
    report = getattr(checks, checker_name)(fn, **kwargs)
    lines = capsys.readouterr().out.splitlines()
    assert lines == str(report).splitlines()
    return report, lines


def test_every_checker_has_a_correct_solution_and_a_notebook():
    names = {name for name in dir(checks) if name.startswith("check_")}
    assert names == set(CORRECT) == set(checks.NOTEBOOK)
    for notebook in range(10):  # every notebook has exercises
        assert sum(n == notebook for n in checks.NOTEBOOK.values()) >= 2


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_solution_passes_with_only_pass_lines(capsys, name):
    report, lines = run(capsys, name, CORRECT[name])
    assert report and report.status == "pass" and report.passed == report.total
    header, *case_lines = lines
    assert header.startswith(f"PASS {name}: ")
    assert len(case_lines) == report.total >= (1 if name == "check_and_gate" else 4)
    assert all(line.startswith("PASS ") for line in case_lines), lines


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_the_stub_is_not_attempted_yet_the_same_every_time(capsys, name):
    def my_answer(*args):
        """The stub as a notebook ships it."""
        raise NotImplementedError

    first, lines = run(capsys, name, my_answer)
    assert not first and first.status == "todo"
    assert lines[0] == f"TODO {name}: not attempted yet."
    assert " ".join(lines[1:]) == ("Write the body of my_answer in place of its line `raise "
                                   "NotImplementedError`, then run the cell again.")
    assert run(capsys, name, my_answer)[1] == lines  # deterministic: no counter moved
    assert checking._failed_runs == {}


def test_overflow_is_the_reason_even_when_the_numbers_look_right(capsys):
    report, lines = run(capsys, "check_sigmoid", lambda z: 1 / (1 + np.exp(-z)))
    assert not report and report.passed == 5
    assert lines[0] == "FAIL check_sigmoid: 5 of 6 cases passed."
    failing = [line for line in lines if line.startswith("FAIL ")][1:]
    assert len(failing) == 1
    assert failing[0].startswith('FAIL large negative z: numpy warned "overflow encountered in')
    assert any("exp(-z) overflows for z < -709" in line for line in lines)


def hint_text(lines):
    return " ".join(lines[lines.index(""):]) if "" in lines else ""


def test_hints_escalate_from_concept_to_formula(capsys):
    wrong = lambda z: 1 / (1 + np.exp(z))  # noqa: E731 - the sign of the exponent flipped
    first = hint_text(run(capsys, "check_sigmoid", wrong)[1])
    assert "Hint: The sigmoid squashes" in first and "Formula:" not in first
    assert "hint=2" in first
    second = hint_text(run(capsys, "check_sigmoid", wrong)[1])
    assert "Hint: The sigmoid squashes" in second and "Formula: sigmoid(z) =" in second
    # Another checker starts again at the concept; hint=2 asks for the formula at once.
    assert "Formula:" not in hint_text(run(capsys, "check_tanh", lambda z: z)[1])
    assert "Formula:" in hint_text(run(capsys, "check_relu", lambda z: z, hint=2)[1])
    with pytest.raises(ValueError, match="hint must be 1"):
        checks.check_relu(lambda z: z, hint=3)


CODE_IN_HINTS = ["np.", "numpy.", "keepdims", "axis=", "def ", "lambda", ".sum(", ".mean(",
                 "astype", "+=", "-=", "return w", "for i in", "for t, p", "range(", "[:,", "**"]


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_hints_show_no_code_and_name_only_notebooks_already_seen(capsys, name):
    _, lines = run(capsys, name, lambda *args: None, hint=2)  # every kind of hint this gives
    hints = hint_text(lines)
    assert "Hint:" in hints and "Formula:" in hints
    assert not [code for code in CODE_IN_HINTS if code in hints], hints
    checker = getattr(checks, name)
    source = " ".join(str(h) for h in checker.__code__.co_consts)  # the hint texts
    for notebook in re.findall(r"notebook (\d+)", hints + source):
        assert int(notebook) <= checks.NOTEBOOK[name], (name, notebook)


def test_reports_wrap_between_numbers_never_inside_one(capsys, monkeypatch):
    wrong = lambda X, W, b, g: (g @ W.T, g.T @ X, g.sum())  # noqa: E731 - long tuples
    report, lines = run(capsys, "check_dense_backward", wrong)
    assert max(map(len, lines)) <= checking.WIDTH
    monkeypatch.setattr(checking, "WIDTH", 10**6)
    monkeypatch.setattr(checking, "_failed_runs", {})
    unwrapped = str(checks.check_dense_backward(wrong))
    capsys.readouterr()
    assert str(report).split() == unwrapped.split()  # the same words: none was cut


def test_fail_is_red_in_html_and_plain_in_text(capsys):
    report, lines = run(capsys, "check_relu", lambda z: np.abs(z))
    page = report.html()
    assert '<span style="color:#b71c1c;font-weight:bold">FAIL</span> check_relu' in page
    assert '<span style="color:#1b7a1b">PASS</span> zeros' in page
    assert "white-space:pre;" in page  # the browser does not wrap inside a number either
    assert "<" not in str(report)


def test_in_ipython_the_report_is_displayed_once_as_text_and_html(capsys, monkeypatch):
    shown = []
    monkeypatch.setattr(checking, "_ipython", lambda: object())
    monkeypatch.setattr("IPython.display.display", lambda data, raw: shown.append(data))
    report = checks.check_relu(lambda z: np.maximum(0, z))
    assert capsys.readouterr().out == ""
    assert shown == [{"text/plain": str(report), "text/html": report.html()}]
    # As a cell's last value it adds nothing (no trailing True/False): it was shown already.
    assert report._ipython_display_() is None


@pytest.mark.parametrize(("name", "wrong", "reason"), WRONG,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(WRONG)])
def test_typical_mistake_fails_with_reason_expected_got_and_a_hint(capsys, name, wrong, reason):
    report, lines = run(capsys, name, wrong)
    assert not report and report.status == "fail"
    assert lines[0] == f"FAIL {name}: {report.passed} of {report.total} cases passed."
    failing = [line for line in lines[1:] if line.startswith("FAIL ")]
    assert len(failing) == report.total - report.passed > 0
    assert reason in " ".join(str(report).split()), str(report)
    if "raised" not in reason:
        assert "  expected: " in str(report) and "  got:      " in str(report)
    assert any(line.startswith("Hint: ") for line in lines)


def test_missing_minus_sign_in_bce_gets_the_minus_sign_hint(capsys):
    _, lines = run(capsys, "check_binary_cross_entropy",
                   lambda y, p: np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)), hint=2)
    assert "minus sign" in hint_text(lines)
    assert lines[0] == "FAIL check_binary_cross_entropy: 0 of 4 cases passed."


def test_not_a_function_fails_without_raising(capsys):
    report, lines = run(capsys, "check_sigmoid", None)
    assert not report
    assert lines == ["FAIL check_sigmoid: expected your function, got None; run the cell that",
                     "defines it first"] or lines == [
        "FAIL check_sigmoid: expected your function, got None; run the cell that defines it first"]


def test_mutating_student_does_not_corrupt_expected_values(capsys):
    def sigmoid_then_zero_input(z):
        out = sigmoid(z)
        z += 1.0
        return out

    report, lines = run(capsys, "check_sigmoid", sigmoid_then_zero_input)
    assert report.passed == 0
    failing = [line for line in lines[1:] if line.startswith("FAIL")]
    assert len(failing) == 6
    # Only the in-place change is reported: the values, computed from untouched copies, agree.
    assert all(line.endswith(": changed its input z in place") for line in failing)
    assert "  input:    z=array([-1e+04, -800, -1])" in lines


def test_checkers_restore_the_warning_filters():
    # pytest turns RuntimeWarning into an error (pyproject.toml); a checker must not change that.
    checks.check_sigmoid(lambda z: 1 / (1 + np.exp(-z)))
    with pytest.raises(RuntimeWarning), np.errstate(over="warn"):
        np.exp(np.array([1e4]))


def test_expected_values_come_from_the_reference_at_call_time(capsys, monkeypatch):
    # A different reference changes the verdict: nothing is a stored number.
    monkeypatch.setattr(checks.activations, "relu", lambda z: np.abs(z))
    assert run(capsys, "check_relu", np.abs)[0]
    assert not run(capsys, "check_relu", lambda z: np.maximum(0, z))[0]


def test_tolerance_is_the_documented_one(capsys):
    assert (checks.RTOL, checks.ATOL) == (1e-6, 1e-8)
    assert (checking.RTOL, checking.ATOL) == (1e-6, 1e-8)
    assert "rtol = 1e-6, atol = 1e-8" in checks.__doc__
    assert "rtol = 1e-6, atol = 1e-8" in checking.__doc__
    assert run(capsys, "check_tanh", lambda z: np.tanh(z) * (1 + 1e-8))[0]
    assert not run(capsys, "check_tanh", lambda z: np.tanh(z) * (1 + 1e-5))[0]


def test_integer_answers_must_be_exact_but_may_be_floats(capsys):
    assert run(capsys, "check_parameter_count",
               lambda s: float(sum(a * b + b for a, b in zip(s, s[1:], strict=False))))[0]
    assert not run(capsys, "check_dense_flops", lambda b, i, o: 2 * b * i * o + b * o + 1)[0]


def test_checkers_are_deterministic(capsys):
    first = run(capsys, "check_dropout", dropout)[1]
    assert run(capsys, "check_dropout", dropout)[1] == first
    wrong = run(capsys, "check_dropout", global_rng_dropout, hint=1)[1]
    assert run(capsys, "check_dropout", global_rng_dropout, hint=1)[1] == wrong


@pytest.mark.parametrize("answer", [None, 0.5, "0.5", {"w": 1}, [[1, 2], [3]], object()],
                         ids=["None", "constant", "str", "dict", "ragged", "object"])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_any_strange_answer_fails_every_checker_without_raising(capsys, name, answer):
    report, lines = run(capsys, name, lambda *args: answer)
    assert not report
    assert lines[0].startswith(f"FAIL {name}: ")
    assert any(line.startswith("Hint: ") for line in lines)
