"""The exercise checkers: right answers pass, typical wrong answers fail with useful feedback.

Each checker is run on a correct solution written the way a student would (independently of
`dlhelpers`), which must pass with PASS lines only, and on typical mistakes (overflow, missing
minus sign, transposed W, in-place changes, exceptions, wrong shapes or types, constants),
which must fail with a FAIL line showing expected and got, and a hint. The checkers compare
with rtol=1e-6, atol=1e-8; `test_tolerance_is_the_documented_one` pins that down.
"""

import math

import numpy as np
import pytest
import torch

from dlhelpers import activations, checks

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


CORRECT = {
    "check_matmul_flops": lambda n, k, m: 2 * n * k * m,
    "check_perceptron_forward": lambda X, w, w0: sigmoid(w0 + X @ w),
    "check_perceptron_update": perceptron_update,
    "check_sigmoid": sigmoid,
    "check_tanh": np.tanh,
    "check_relu": lambda z: np.maximum(0, z),
    "check_sigmoid_derivative": lambda z: sigmoid(z) * (1 - sigmoid(z)),
    "check_tanh_derivative": lambda z: 1 - np.tanh(z) ** 2,
    "check_relu_derivative": lambda z: (z > 0).astype(float),
    "check_dense_forward": lambda X, W, b: X @ W + b,
    "check_parameter_count": lambda s: sum(a * b + b for a, b in zip(s, s[1:], strict=False)),
    "check_binary_cross_entropy": lambda y, p: -np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)),
    "check_mean_squared_error": lambda y, p: np.mean((y - p) ** 2),
    "check_softmax": lambda z: np.exp(log_softmax(z)),
    "check_cross_entropy": lambda y, z: -np.mean(log_softmax(z)[np.arange(len(y)), y]),
    "check_gradient_descent_step": lambda w, grad, lr: w - lr * grad,
    "check_dense_backward": lambda X, W, b, g: (g @ W.T, X.T @ g, g.sum(axis=0)),
    "check_numerical_gradient": numerical_gradient,
    "check_bce_gradient": lambda y, p: (-y / p + (1 - y) / (1 - p)) / y.size,
    "check_momentum_step": momentum_step,
    "check_adam_step": adam_step,
    "check_step_decay": lambda epoch, lr0, step, gamma: lr0 * gamma ** (epoch // step),
    "check_cosine_schedule": lambda e, lr0, T, lo: lo + (lr0 - lo) * (1 + math.cos(math.pi * e / T))
    / 2,
    "check_dropout": dropout,
    "check_l2_penalty": lambda ws, lam: lam / 2 * sum(np.sum(w**2) for w in ws),
    "check_early_stopping": early_stopping,
    "check_accuracy": lambda y, p: np.mean(y == p),
    "check_confusion_matrix": confusion,
}


def run(capsys, checker_name, fn):
    """Run a checker; return (its result, the printed lines)."""
    result = getattr(checks, checker_name)(fn)
    return result, capsys.readouterr().out.splitlines()


def test_every_checker_has_a_correct_solution_here():
    names = {name for name in dir(checks) if name.startswith("check_")}
    assert names == set(CORRECT)


@pytest.mark.parametrize("name", sorted(CORRECT))
def test_correct_solution_passes_with_only_pass_lines(capsys, name):
    result, lines = run(capsys, name, CORRECT[name])
    assert result is True
    *case_lines, summary = lines
    assert len(case_lines) >= 4
    assert all(line.startswith(f"PASS {name} [") for line in case_lines), lines
    assert all(" expected " in line and " got " in line for line in case_lines)
    assert summary == f"{name}: {len(case_lines)}/{len(case_lines)} cases passed"


def test_pass_line_format(capsys):
    _, lines = run(capsys, "check_sigmoid", sigmoid)
    line = next(line for line in lines if "[large negative z]" in line)
    assert line == (
        "PASS check_sigmoid [large negative z]: z=array([-1e+04, -800, -1]) "
        f"expected [0, 0, {activations.sigmoid(-1.0):.4g}] got [0, 0, 0.2689] shape (3,)"
    )


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


def todo(*args):
    raise NotImplementedError()


WRONG = [
    # (checker, wrong solution, text expected in a FAIL line)
    ("check_sigmoid", lambda z: 1 / (1 + np.exp(-z)), "overflow warning (overflow encountered"),
    ("check_sigmoid", lambda z: 1 / (1 + np.exp(z)), "wrong value"),
    ("check_tanh", naive_tanh, "overflow warning"),
    ("check_relu", lambda z: np.max([0, np.max(z)]), "wrong shape: expected (3,), got ()"),
    ("check_relu_derivative", lambda z: np.abs(np.sign(z)), "wrong value"),
    ("check_relu_derivative", lambda z: (z >= 0).astype(float), "wrong value"),
    ("check_sigmoid_derivative", lambda z: z * (1 - z), "wrong value"),
    ("check_tanh_derivative", lambda z: 1 - np.tanh(z), "wrong value"),
    ("check_matmul_flops", lambda n, k, m: n * k * m, "wrong value"),
    ("check_matmul_flops", lambda n, k, m: n * m * (2 * k - 1), "wrong value"),
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
     "overflow warning"),
    ("check_softmax", lambda z: np.exp(log_softmax(z)) / len(z), "wrong value"),
    ("check_cross_entropy",
     lambda y, z: -np.mean(np.log(np.exp(log_softmax(z)))[np.arange(len(y)), y]),
     "RuntimeWarning (divide by zero encountered in log)"),
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
    ("check_sigmoid", todo, "raised NotImplementedError"),
    ("check_sigmoid", lambda z: list(sigmoid(z)), "expected a numpy array, got list"),
    ("check_sigmoid", lambda z: torch.sigmoid(torch.tensor(z)), "returned a torch tensor"),
    ("check_sigmoid", lambda z: None, "returned None"),
    ("check_sigmoid", lambda z: np.full(z.shape, np.nan), "NaN in the output"),
    ("check_relu", lambda z: np.array(["0"] * z.size).reshape(z.shape), "expected numbers"),
    ("check_mean_squared_error", lambda y, p: "0.5", "expected a number, got str"),
    ("check_accuracy", lambda y, p: 0.5, "wrong value"),
    ("check_matmul_flops", lambda n, k, m: 48, "wrong value"),
]


@pytest.mark.parametrize(("name", "wrong", "reason"), WRONG,
                         ids=[f"{name}-{i}" for i, (name, _, _) in enumerate(WRONG)])
def test_typical_mistake_fails_with_expected_got_and_a_hint(capsys, name, wrong, reason):
    result, lines = run(capsys, name, wrong)
    assert result is False
    failing = [line for line in lines if line.startswith(f"FAIL {name} [")]
    assert failing, lines
    assert all(" expected " in line and " got " in line for line in failing)
    assert any(reason in line for line in failing), "\n".join(lines)
    summary = next(line for line in lines if line.startswith(f"{name}: "))
    assert summary.endswith(f"/{len(failing) + sum(x.startswith('PASS') for x in lines)} "
                            "cases passed")
    assert any(line.startswith("Hint: ") for line in lines)


def test_overflowing_sigmoid_fails_only_where_it_overflows(capsys):
    _, lines = run(capsys, "check_sigmoid", lambda z: 1 / (1 + np.exp(-z)))
    failing = [line for line in lines if line.startswith("FAIL")]
    assert len(failing) == 1 and "[large negative z]" in failing[0]
    assert "check_sigmoid: 5/6 cases passed" in lines
    assert any("np.exp(-z) overflows" in line for line in lines if line.startswith("Hint"))


def test_missing_minus_sign_in_bce_gets_the_minus_sign_hint(capsys):
    _, lines = run(capsys, "check_binary_cross_entropy",
                   lambda y, p: np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    assert any("minus sign" in line for line in lines if line.startswith("Hint"))
    assert "check_binary_cross_entropy: 0/4 cases passed" in lines


def test_not_implemented_gets_the_todo_hint(capsys):
    _, lines = run(capsys, "check_relu", todo)
    assert any("raise NotImplementedError()" in line for line in lines if line.startswith("Hint"))


def test_not_a_function_fails_without_raising(capsys):
    result, lines = run(capsys, "check_sigmoid", None)
    assert result is False
    assert lines == ["FAIL check_sigmoid: expected your function, got None; "
                     "run the cell that defines it first"]


def test_mutating_student_does_not_corrupt_expected_values(capsys):
    def sigmoid_then_zero_input(z):
        out = sigmoid(z)
        z += 1.0
        return out

    result, lines = run(capsys, "check_sigmoid", sigmoid_then_zero_input)
    assert result is False
    failing = [line for line in lines if line.startswith("FAIL")]
    assert len(failing) == 6
    # Only the in-place change is reported: the values, computed from untouched copies, agree.
    assert all(line.endswith(" -- changed its input z in place") for line in failing)
    assert any("[large negative z]: z=array([-1e+04, -800, -1])" in line for line in failing)


def test_checkers_restore_the_warning_filters():
    # pytest turns RuntimeWarning into an error (pyproject.toml); a checker must not change that.
    checks.check_sigmoid(lambda z: 1 / (1 + np.exp(-z)))
    with pytest.raises(RuntimeWarning), np.errstate(over="warn"):
        np.exp(np.array([1e4]))


def test_expected_values_come_from_the_reference_at_call_time(capsys, monkeypatch):
    # A different reference changes the verdict: nothing is a stored number.
    monkeypatch.setattr(checks.activations, "relu", lambda z: np.abs(z))
    assert run(capsys, "check_relu", np.abs)[0] is True
    assert run(capsys, "check_relu", lambda z: np.maximum(0, z))[0] is False


def test_tolerance_is_the_documented_one(capsys):
    assert (checks.RTOL, checks.ATOL) == (1e-6, 1e-8)
    assert "rtol = 1e-6, atol = 1e-8" in checks.__doc__
    assert run(capsys, "check_tanh", lambda z: np.tanh(z) * (1 + 1e-8))[0] is True
    assert run(capsys, "check_tanh", lambda z: np.tanh(z) * (1 + 1e-5))[0] is False


def test_integer_answers_must_be_exact_but_may_be_floats(capsys):
    assert run(capsys, "check_parameter_count",
               lambda s: float(sum(a * b + b for a, b in zip(s, s[1:], strict=False))))[0]
    assert not run(capsys, "check_matmul_flops", lambda n, k, m: 2 * n * k * m + 1)[0]


def test_checkers_are_deterministic(capsys):
    first = run(capsys, "check_dropout", dropout)[1]
    assert run(capsys, "check_dropout", dropout)[1] == first


@pytest.mark.parametrize("answer", [None, 0.5, "0.5", {"w": 1}, [[1, 2], [3]], object()],
                         ids=["None", "constant", "str", "dict", "ragged", "object"])
@pytest.mark.parametrize("name", sorted(CORRECT))
def test_any_strange_answer_fails_every_checker_without_raising(capsys, name, answer):
    result, lines = run(capsys, name, lambda *args: answer)
    assert result is False
    assert lines[-1].startswith("Hint: ")
    assert all(line.startswith(("FAIL", "PASS", "Hint", name)) for line in lines)
