"""Training throughput: one MLP on scikit-learn's digits, trained four ways in the same run.

The network: 64-128-10, ReLU, softmax cross-entropy, plain SGD (lr 0.1), batch 64, 20 epochs.
Trainers: `dlhelpers.nn` + `dlhelpers.optim`; a bare hand-written numpy loop (the floor: the
same arithmetic, loss value included, with no checks and no abstractions); torch on the CPU;
scikit-learn's `MLPClassifier`. Each is timed `REPEATS` times, interleaved with the others, and
reported as the median seconds per epoch and as the median, over rounds, of its time divided by
the bare loop's and by torch's in the same round. Then the scalar `Value` engine on a small
network, per sample, against the vectorized numpy network: why frameworks vectorize.
"""

from __future__ import annotations

import statistics
import time
import warnings

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.neural_network import MLPClassifier
from threadpoolctl import threadpool_limits

from bench.common import median_seconds
from dlhelpers import data, losses, nn, optim
from dlhelpers.autograd import Value

EPOCHS, BATCH, LR, HIDDEN, REPEATS, SEED = 20, 64, 0.1, 128, 15, 0
TARGET_X_BARE, TARGET_X_TORCH = 1.5, 0.5


def _digits():
    X, y = data.load_digits()
    X_train, _, X_test, y_train, _, y_test = data.train_val_test_split(
        X, y, val_size=0.1, test_size=0.2, rng=SEED
    )
    X_train, X_test = data.standardize(X_train, X_test)
    return X_train, y_train, X_test, y_test


def _batch_order(n: int, epoch: int) -> list[np.ndarray]:
    # The same shuffled mini-batches for every trainer.
    order = np.random.default_rng((SEED, epoch)).permutation(n)
    return [order[i : i + BATCH] for i in range(0, n, BATCH)]


def train_dlhelpers(X, y) -> nn.Sequential:
    model = nn.Sequential(nn.Dense(64, HIDDEN, rng=SEED), nn.ReLU(), nn.Dense(HIDDEN, 10, rng=SEED))
    loss_fn, optimizer = losses.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=LR)
    for epoch in range(EPOCHS):
        for index in _batch_order(len(X), epoch):
            optimizer.zero_grad()
            loss_fn.forward(model(X[index]), y[index])
            model.backward(loss_fn.backward(), input_grad=False)  # as torch: x needs no grad
            optimizer.step()
    return model


def train_bare_numpy(X, y) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(SEED)
    bound1, bound2 = 1 / np.sqrt(64), 1 / np.sqrt(HIDDEN)
    W1, b1 = rng.uniform(-bound1, bound1, (64, HIDDEN)), np.zeros(HIDDEN)
    W2, b2 = rng.uniform(-bound2, bound2, (HIDDEN, 10)), np.zeros(10)
    for epoch in range(EPOCHS):
        epoch_loss = 0.0
        for index in _batch_order(len(X), epoch):
            x, target = X[index], y[index]
            z1 = x @ W1 + b1  # (B, 64) @ (64, H)
            h = np.maximum(z1, 0.0)
            logits = h @ W2 + b2  # (B, H) @ (H, 10)
            shifted = logits - logits.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # (B, 10)
            rows = np.arange(len(target))
            epoch_loss -= log_p[rows, target].mean()  # every trainer computes the loss
            p = np.exp(log_p)
            p[rows, target] -= 1.0
            d_logits = p / len(target)  # dJ/dlogits, (B, 10)
            d_h = (d_logits @ W2.T) * (z1 > 0)  # (B, H)
            W2 -= LR * (h.T @ d_logits)
            b2 -= LR * d_logits.sum(axis=0)
            W1 -= LR * (x.T @ d_h)
            b1 -= LR * d_h.sum(axis=0)
    return W1, b1, W2, b2


def train_torch(X, y) -> torch.nn.Module:
    torch.manual_seed(SEED)
    model = torch.nn.Sequential(
        torch.nn.Linear(64, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10)
    )
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)
    X_t, y_t = torch.tensor(X, dtype=torch.float32), torch.tensor(y)
    for epoch in range(EPOCHS):
        for index in _batch_order(len(X), epoch):
            index_t = torch.from_numpy(index)
            optimizer.zero_grad()
            torch.nn.functional.cross_entropy(model(X_t[index_t]), y_t[index_t]).backward()
            optimizer.step()
    return model


def train_sklearn(X, y) -> MLPClassifier:
    model = MLPClassifier(
        hidden_layer_sizes=(HIDDEN,), solver="sgd", learning_rate_init=LR, momentum=0.0,
        batch_size=BATCH, max_iter=EPOCHS, alpha=0.0, tol=0.0, n_iter_no_change=EPOCHS + 1,
        random_state=SEED,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return model.fit(X, y)


def _accuracy(name, model, X, y) -> float:
    if name == "dlhelpers.nn":
        model.eval()
        scores = model(X)
    elif name == "bare numpy":
        W1, b1, W2, b2 = model
        scores = np.maximum(X @ W1 + b1, 0) @ W2 + b2
    elif name == "torch":
        with torch.no_grad():
            scores = model(torch.tensor(X, dtype=torch.float32)).numpy()
    else:
        return float(model.score(X, y))
    return float(np.mean(scores.argmax(axis=1) == y))


TRAINERS = {
    "dlhelpers.nn": train_dlhelpers,
    "bare numpy": train_bare_numpy,
    "torch": train_torch,
    "scikit-learn MLPClassifier": train_sklearn,
}


def _value_network_step(weights, x, target):
    """Forward and backward of a 64-16-10 network for one sample with the scalar engine."""
    W1, W2 = weights
    hidden = [sum((w * xi for w, xi in zip(row, x, strict=True)), Value(0.0)).relu()
              for row in W1]
    logits = [sum((w * h for w, h in zip(row, hidden, strict=True)), Value(0.0)) for row in W2]
    exps = [logit.exp() for logit in logits]
    loss = -(exps[target] / sum(exps, Value(0.0))).log()
    loss.backward()
    return loss


def value_engine_rows(X, y) -> list[tuple[str, float]]:
    rng = np.random.default_rng(SEED)
    W1 = [[Value(v) for v in row] for row in rng.normal(0, 0.1, (16, 64))]
    W2 = [[Value(v) for v in row] for row in rng.normal(0, 0.1, (10, 16))]
    x, target = [float(v) for v in X[0]], int(y[0])
    per_sample_value = median_seconds(lambda: _value_network_step((W1, W2), x, target), 3)

    model = nn.Sequential(nn.Dense(64, 16, rng=SEED), nn.ReLU(), nn.Dense(16, 10, rng=SEED))
    loss_fn = losses.CrossEntropyLoss()

    def numpy_step(rows):
        loss_fn.forward(model(X[rows]), y[rows])
        model.backward(loss_fn.backward())

    one = np.array([0])
    per_sample_numpy = median_seconds(lambda: numpy_step(one), 50)
    batch = np.arange(256)
    per_sample_batched = median_seconds(lambda: numpy_step(batch), 20) / len(batch)
    return [
        ("`Value` engine, one sample at a time", per_sample_value),
        ("`dlhelpers.nn`, one sample at a time", per_sample_numpy),
        ("`dlhelpers.nn`, batches of 256", per_sample_batched),
    ]


def run() -> str:
    # One thread for numpy's BLAS and for torch: on a shared 2-core machine, threads waiting on
    # each other make small matrix products erratic; one thread makes every trainer comparable.
    torch.set_num_threads(1)
    with threadpool_limits(1):
        return _run()


def _run() -> str:
    X, y, X_test, y_test = _digits()
    times = {name: [] for name in TRAINERS}
    accuracy = {}
    for _ in range(REPEATS + 1):  # the first round is a warm-up, not counted
        for name, train in TRAINERS.items():
            start = time.perf_counter()
            model = train(X, y)
            times[name].append(time.perf_counter() - start)
            accuracy[name] = _accuracy(name, model, X_test, y_test)
    times = {name: t[1:] for name, t in times.items()}

    def ratio(name, peer):
        # Per round, then the median: trainers timed seconds apart share the machine's state.
        return statistics.median(a / b for a, b in zip(times[name], times[peer], strict=True))

    lines = [
        "### 1. Training throughput",
        "",
        f"MLP 64-{HIDDEN}-10, ReLU, softmax cross-entropy, SGD lr {LR}, batch {BATCH}, "
        f"{EPOCHS} epochs on {len(X)} digits, {REPEATS} rounds with the trainers interleaved; "
        "medians of the times and of the ratios within a round. numpy in float64, torch in "
        "float32; one thread each. Targets for dlhelpers.nn: at most "
        f"{TARGET_X_BARE}x the bare loop and {TARGET_X_TORCH}x torch.",
        "",
        "| trainer | ms per epoch | x bare numpy | x torch | test accuracy |",
        "|---|---:|---:|---:|---:|",
    ]
    for name in TRAINERS:
        lines.append(
            f"| {name} | {statistics.median(times[name]) / EPOCHS * 1e3:.2f} "
            f"| {ratio(name, 'bare numpy'):.2f} | {ratio(name, 'torch'):.2f} "
            f"| {accuracy[name]:.3f} |"
        )
    met = (
        ratio("dlhelpers.nn", "bare numpy") <= TARGET_X_BARE
        and ratio("dlhelpers.nn", "torch") <= TARGET_X_TORCH
    )
    lines += ["", f"dlhelpers.nn within both targets: {'yes' if met else '**no**'}."]
    rows = value_engine_rows(X, y)
    slowest = rows[0][1]
    lines += [
        "",
        "Why frameworks vectorize: forward and backward of a 64-16-10 network, per sample.",
        "",
        "| engine | µs per sample | times faster than `Value` |",
        "|---|---:|---:|",
    ]
    lines += [f"| {name} | {s * 1e6:.1f} | {slowest / s:,.0f} |" for name, s in rows]
    return "\n".join(lines)
