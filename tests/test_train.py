"""Tests of dlhelpers.train and dlhelpers.checkpoint: fit, History, EarlyStopping, diverging
runs, drop_last, checkpoints, resuming, crash safety.

Oracles: losses and accuracies recomputed independently after training (torch.nn.functional,
dlhelpers.losses, scikit-learn's accuracy_score); replaying a run for fewer epochs (the weights
early stopping restores, or a diverged run gives back, must equal those of a run stopped at
that epoch); a plain torch loop over torch's DataLoader(drop_last=True); an uninterrupted run
(a resumed or killed-and-resumed run must end with exactly its weights and history).
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import os
import pickle
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score

from dlhelpers import losses, nn, optim
from dlhelpers.data import make_moons
from dlhelpers.train import (
    CHECKPOINT_FORMAT,
    DivergenceError,
    EarlyStopping,
    History,
    fit,
    load_checkpoint,
    save_checkpoint,
)

X_ALL, Y_ALL = make_moons(200, noise=0.2, rng=0)


@pytest.fixture(autouse=True, scope="module")
def _one_torch_thread():
    """These models are tiny: one thread is faster than two threads waiting on each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
X_TRAIN, Y_TRAIN, X_VAL, Y_VAL = X_ALL[:150], Y_ALL[:150], X_ALL[150:], Y_ALL[150:]


# ---------------------------------------------------------------------------------------------
# Models for both backends, and helpers
# ---------------------------------------------------------------------------------------------


def torch_model(task="ce", seed=0, dropout=0.0, hidden=16, dtype=torch.float32, lr=0.05):
    """(model, optimizer, loss) for a torch net; `task` picks the output layer and the loss."""
    torch.manual_seed(seed)
    out, head, loss = {
        "ce": (2, [], torch.nn.CrossEntropyLoss()),
        "bce": (1, [torch.nn.Sigmoid()], torch.nn.BCELoss()),
        "bce_logits": (1, [], torch.nn.BCEWithLogitsLoss()),
        "mse": (1, [], torch.nn.MSELoss()),
    }[task]
    layers = [torch.nn.Linear(2, hidden), torch.nn.Tanh()]
    layers += [torch.nn.Dropout(dropout)] if dropout else []
    model = torch.nn.Sequential(*layers, torch.nn.Linear(hidden, out), *head).to(dtype)
    return model, torch.optim.Adam(model.parameters(), lr=lr), loss


def numpy_model(task="ce", seed=0, dropout=0.0, hidden=16, lr=0.05):
    """(model, optimizer, loss) for a dlhelpers.nn net."""
    out, head, loss = {
        "ce": (2, [], losses.CrossEntropyLoss()),
        "bce": (1, [nn.Sigmoid()], losses.BCELoss()),
        "mse": (1, [], losses.MSELoss()),
    }[task]
    layers = [nn.Dense(2, hidden, rng=seed), nn.Tanh()]
    layers += [nn.Dropout(dropout, rng=seed + 100)] if dropout else []
    model = nn.Sequential(*layers, nn.Dense(hidden, out, rng=seed + 1), *head)
    return model, optim.Adam(model.parameters(), lr=lr), loss


BACKENDS = {"torch": torch_model, "numpy": numpy_model}


def targets(task, y):
    """Targets in the form each loss expects: labels (N,), or (N, 1) floats."""
    if task == "ce":
        return y
    if task == "mse":  # a regression target: a smooth function of the inputs
        return np.sin(X_ALL[: len(y), :1] * 2.0) if len(y) == len(X_TRAIN) else None
    return y.reshape(-1, 1).astype(np.float64)


def weights(model) -> dict[str, np.ndarray]:
    """The model's weights as numpy arrays (copies)."""
    if isinstance(model, torch.nn.Module):
        return {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    return model.state_dict()


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


def quiet_fit(model, optimizer, loss, **kwargs):
    """fit on the moons with validation data and no progress bar."""
    arguments = dict(X_val=X_VAL, y_val=Y_VAL, epochs=6, batch_size=32, rng=0, progress=False)
    arguments.update(kwargs)
    return fit(model, optimizer, loss, X_TRAIN, Y_TRAIN, **arguments)


# ---------------------------------------------------------------------------------------------
# fit: learning, history, accuracy, modes, progress
# ---------------------------------------------------------------------------------------------


def _loss_and_accuracy(model, loss_name, X, y):
    """Recompute loss and accuracy independently of fit (functional losses, sklearn)."""
    if isinstance(model, torch.nn.Module):
        model.eval()
        with torch.no_grad():
            dtype = next(model.parameters()).dtype
            out = model(torch.from_numpy(X).to(dtype))
            yt = torch.from_numpy(y)
            F = torch.nn.functional
            loss = {
                "ce": lambda: F.cross_entropy(out, yt.long()),
                "bce": lambda: F.binary_cross_entropy(out, yt.to(dtype)),
                "bce_logits": lambda: F.binary_cross_entropy_with_logits(out, yt.to(dtype)),
                "mse": lambda: F.mse_loss(out, yt.to(dtype)),
            }[loss_name]()
            out = out.numpy()
        loss = float(loss)
    else:
        model.eval()
        out = model(X)
        loss = {
            "ce": lambda: losses.cross_entropy(y, out),
            "bce": lambda: losses.binary_cross_entropy(y, out),
            "mse": lambda: losses.mean_squared_error(y, out),
        }[loss_name]()
    if loss_name == "mse":
        return loss, None
    if loss_name == "ce":
        predicted = out.argmax(axis=1)
    else:
        predicted = (out > (0.0 if loss_name == "bce_logits" else 0.5)).astype(int).ravel()
    return loss, accuracy_score(y.ravel().astype(int), predicted)


CASES = [("torch", "ce"), ("torch", "bce"), ("torch", "bce_logits"), ("torch", "mse"),
         ("numpy", "ce"), ("numpy", "bce"), ("numpy", "mse")]


@pytest.mark.parametrize("backend, task", CASES)
def test_fit_learns_and_history_matches_an_independent_evaluation(backend, task):
    model, optimizer, loss = BACKENDS[backend](task)
    if task == "mse":
        y_train, y_val = np.sin(2 * X_TRAIN[:, :1]), np.sin(2 * X_VAL[:, :1])
    else:
        y_train, y_val = targets(task, Y_TRAIN), targets(task, Y_VAL)
    initial_loss, _ = _loss_and_accuracy(model, task, X_TRAIN, y_train)
    history = fit(model, optimizer, loss, X_TRAIN, y_train, X_val=X_VAL, y_val=y_val,
                  epochs=8, rng=0, progress=False)
    assert history.epochs == list(range(1, 9))
    assert len(history.train_loss) == len(history.val_loss) == 8
    assert history.train_loss[-1] < 0.6 * initial_loss
    final_train = _loss_and_accuracy(model, task, X_TRAIN, y_train)
    final_val = _loss_and_accuracy(model, task, X_VAL, y_val)
    tolerance = 1e-6 if backend == "torch" else 1e-12  # float32 vs float64
    assert history.train_loss[-1] == pytest.approx(final_train[0], rel=tolerance)
    assert history.val_loss[-1] == pytest.approx(final_val[0], rel=tolerance)
    if task == "mse":
        assert history.train_acc == [] and history.val_acc == []  # no accuracy for regression
    else:
        assert len(history.train_acc) == len(history.val_acc) == 8
        assert history.train_acc[-1] == final_train[1]
        assert history.val_acc[-1] == final_val[1]
        assert history.val_acc[-1] > 0.75


@pytest.mark.parametrize("backend", BACKENDS)
def test_history_without_validation_data_has_empty_val_lists(backend):
    history = fit(*BACKENDS[backend](), X_TRAIN, Y_TRAIN, epochs=3, rng=0, progress=False)
    assert history.epochs == [1, 2, 3]
    assert len(history.train_loss) == len(history.train_acc) == 3
    assert history.val_loss == [] and history.val_acc == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_is_reproducible_with_a_seed(backend):
    results = []
    for rng in (0, 0, 1):
        model, optimizer, loss = BACKENDS[backend](dropout=0.2)
        torch.manual_seed(5)  # torch dropout draws from torch's generator
        quiet_fit(model, optimizer, loss, epochs=3, rng=rng)
        results.append(weights(model))
    assert_same_weights(results[0], results[1])
    assert not np.array_equal(results[0]["0.weight"], results[2]["0.weight"])


def test_fit_uses_the_torch_models_dtype():
    model, optimizer, loss = torch_model(dtype=torch.float64)
    history = quiet_fit(model, optimizer, loss, epochs=2)
    assert all(p.dtype == torch.float64 for p in model.parameters())
    final_loss, _ = _loss_and_accuracy(model, "ce", X_TRAIN, Y_TRAIN)
    assert history.train_loss[-1] == pytest.approx(final_loss, rel=1e-12)


class _ModeSpy(torch.nn.Module):
    """Records (training mode, grad enabled) at every forward call."""

    def __init__(self):
        super().__init__()
        self.linear = torch.nn.Linear(2, 2)
        self.calls = []

    def forward(self, x):
        self.calls.append((self.training, torch.is_grad_enabled(), len(x)))
        return self.linear(x)


def test_fit_trains_in_train_mode_evaluates_in_eval_mode_and_restores_the_mode():
    model = _ModeSpy().eval()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    quiet_fit(model, optimizer, torch.nn.CrossEntropyLoss(), epochs=1, batch_size=50)
    # 150 training samples in batches of 50, then the whole training and validation sets.
    assert model.calls == [(True, True, 50)] * 3 + [(False, False, 150), (False, False, 50)]
    assert model.training is False  # as before the call
    model.train()
    quiet_fit(model, optimizer, torch.nn.CrossEntropyLoss(), epochs=1)
    assert model.training is True


def test_numpy_model_mode_is_restored_after_fit():
    model, optimizer, loss = numpy_model(dropout=0.5)
    model.eval()
    quiet_fit(model, optimizer, loss, epochs=1)
    assert model.training is False and model[2].training is False


def test_progress_false_prints_nothing(capfd):
    quiet_fit(*numpy_model(), epochs=2)
    quiet_fit(*torch_model(), epochs=2)
    out, err = capfd.readouterr()
    assert out == "" and err == ""


def test_progress_bar_shows_the_losses(capfd):
    quiet_fit(*numpy_model(), epochs=2, progress=True)
    out, err = capfd.readouterr()
    assert "2/2" in err and "train_loss=" in err and "val_acc=" in err


# ---------------------------------------------------------------------------------------------
# fit: bad input
# ---------------------------------------------------------------------------------------------


def test_fit_refuses_targets_that_would_broadcast():
    model, optimizer, loss = numpy_model("bce")
    with pytest.raises(ValueError, match=r"output has shape \(32, 1\).*y_train.reshape\(-1, 1\)"):
        fit(model, optimizer, loss, X_TRAIN, Y_TRAIN.astype(float), epochs=1, progress=False)
    model, optimizer, loss = torch_model("mse")
    with pytest.raises(ValueError, match=r"output has shape \(32, 1\)"):
        fit(model, optimizer, loss, X_TRAIN, np.zeros(150), epochs=1, progress=False)


def test_fit_explains_labels_out_of_range():
    model, optimizer, loss = torch_model("ce")
    with pytest.raises(ValueError, match="labels from 1 to 2 but the model outputs 2 scores"):
        fit(model, optimizer, loss, X_TRAIN, Y_TRAIN + 1, epochs=1, progress=False)
    model, optimizer, loss = numpy_model("ce")
    with pytest.raises(ValueError, match=r"labels from -1 to 0 .*\(labels 0 to 1\)"):
        fit(model, optimizer, loss, X_TRAIN, Y_TRAIN - 1, epochs=1, progress=False)


@pytest.mark.parametrize("backend, task, fix", [
    ("torch", "bce", "astype(float)"), ("torch", "bce_logits", "astype(float)"),
    ("torch", "mse", "astype(float)"), ("torch", "ce", "astype(int)"),
    ("numpy", "bce", "astype(float)"), ("numpy", "ce", "astype(int)"),
])
@pytest.mark.parametrize("part", ["train", "val"])
def test_boolean_targets_are_refused_with_the_conversion_that_fixes_them(backend, task, fix,
                                                                         part):
    model, optimizer, loss = BACKENDS[backend](task)
    y_train, y_val = targets("ce", Y_TRAIN), targets("ce", Y_VAL)
    if task != "ce":
        y_train, y_val = y_train.reshape(-1, 1), y_val.reshape(-1, 1)
    y_train, y_val = (y_train == 1, y_val) if part == "train" else (y_train, y_val == 1)
    if task != "ce":  # the other part as the loss wants it
        y_train, y_val = (y_train, y_val.astype(float)) if part == "train" else \
            (y_train.astype(float), y_val)
    with pytest.raises(TypeError, match=rf"y_{part} must hold numbers, got dtype bool: "
                                        rf"convert it with y_{part}\.{re.escape(fix)}"):
        fit(model, optimizer, loss, X_TRAIN, y_train, X_val=X_VAL, y_val=y_val, epochs=1,
            progress=False)
    # The suggested conversion works.
    converted = {"astype(float)": float, "astype(int)": int}[fix]
    fit(model, optimizer, loss, X_TRAIN, y_train.astype(converted), X_val=X_VAL,
        y_val=y_val.astype(converted), epochs=1, progress=False)


@pytest.mark.parametrize("backend, task", [("torch", "bce"), ("torch", "bce_logits"),
                                           ("numpy", "bce")])
def test_binary_cross_entropy_targets_outside_0_1_are_refused(backend, task):
    model, optimizer, loss = BACKENDS[backend](task)
    with pytest.raises(ValueError, match=r"y_train must hold targets in \[0, 1\].*from -1 to 1"):
        fit(model, optimizer, loss, X_TRAIN, 2 * targets(task, Y_TRAIN) - 1, epochs=1,
            progress=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_column_labels_for_cross_entropy_suggest_ravel(backend):
    model, optimizer, loss = BACKENDS[backend]("ce")
    with pytest.raises(ValueError, match=r"shape \(150, 1\): use y_train\.ravel\(\)"):
        fit(model, optimizer, loss, X_TRAIN, Y_TRAIN.reshape(-1, 1), epochs=1, progress=False)


@pytest.mark.parametrize("backend", BACKENDS)
def test_bce_on_a_model_without_sigmoid_suggests_adding_one(backend):
    if backend == "torch":  # the logits model, given the loss on probabilities
        model, optimizer, _ = torch_model("bce_logits")
        loss, fix = torch.nn.BCELoss(), r"torch\.nn\.Sigmoid\(\).*BCEWithLogitsLoss"
    else:
        model = nn.Sequential(nn.Dense(2, 4, rng=0), nn.Tanh(), nn.Dense(4, 1, rng=1))
        optimizer, loss, fix = optim.SGD(model.parameters(), lr=0.1), losses.BCELoss(), "Sigmoid"
    with pytest.raises(ValueError, match=rf"BCELoss needs probabilities in \[0, 1\].*{fix}"):
        fit(model, optimizer, loss, X_TRAIN, targets("bce", Y_TRAIN), epochs=1, progress=False)


# ---------------------------------------------------------------------------------------------
# drop_last, and BatchNorm1d with a last mini-batch of one sample
# ---------------------------------------------------------------------------------------------


def batch_norm_model():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.BatchNorm1d(8), torch.nn.ReLU(),
                                torch.nn.Linear(8, 2))
    return model, torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)


def test_batch_norm_with_a_one_sample_last_batch_asks_for_drop_last():
    X, y = X_TRAIN[:65], Y_TRAIN[:65]  # 65 = 4 * 16 + 1
    model, optimizer = batch_norm_model()
    before = weights(model)
    with pytest.raises(ValueError, match=r"1 sample \(65 samples, batch_size 16\).*"
                                         r"BatchNorm1d.*drop_last=True"):
        fit(model, optimizer, torch.nn.CrossEntropyLoss(), X, y, epochs=2, batch_size=16,
            progress=False)
    assert_same_weights(weights(model), before)  # refused before any step
    with pytest.raises(ValueError, match="batch_size must be at least 2 .* BatchNorm1d"):
        fit(model, optimizer, torch.nn.CrossEntropyLoss(), X, y, epochs=2, batch_size=1,
            progress=False)


def test_drop_last_trains_a_batch_norm_model_as_torchs_data_loader_would():
    X, y = X_TRAIN[:65], Y_TRAIN[:65]
    model, optimizer = batch_norm_model()
    fit(model, optimizer, torch.nn.CrossEntropyLoss(), X, y, epochs=2, batch_size=16,
        drop_last=True, rng=0, progress=False)
    # Oracle: a plain torch loop over DataLoader(drop_last=True), reading the samples in the
    # order fit shuffles them (the generator of epoch e is seeded with [seed, e]).
    reference, reference_optimizer = batch_norm_model()
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(X).float(), torch.from_numpy(y))
    for epoch in (1, 2):
        order = np.random.default_rng([0, epoch]).permutation(len(X)).tolist()
        loader = torch.utils.data.DataLoader(dataset, batch_size=16, sampler=order,
                                             drop_last=True)
        reference.train()
        for X_batch, y_batch in loader:
            reference_optimizer.zero_grad()
            torch.nn.functional.cross_entropy(reference(X_batch), y_batch).backward()
            reference_optimizer.step()
    assert_same_weights(weights(model), weights(reference))  # running statistics included


class _CountingSGD(optim.SGD):
    steps = 0

    def step(self):
        self.steps += 1
        super().step()


@pytest.mark.parametrize("drop_last, steps_per_epoch", [(False, 5), (True, 4)])
def test_numpy_fit_drops_the_short_last_batch_when_asked(drop_last, steps_per_epoch):
    model, _, loss = numpy_model()
    optimizer = _CountingSGD(model.parameters(), lr=0.1)
    fit(model, optimizer, loss, X_TRAIN, Y_TRAIN, epochs=3, batch_size=32, drop_last=drop_last,
        progress=False)  # 150 = 4 * 32 + 22
    assert optimizer.steps == 3 * steps_per_epoch


def test_importing_train_and_checkpoint_does_not_import_torch():
    code = ("import sys, dlhelpers.{}; "
            "print('torch' in sys.modules)")
    run = lambda module: subprocess.run(  # noqa: E731
        [sys.executable, "-c", code.format(module)], capture_output=True, text=True, check=True
    ).stdout.strip()
    if run("nn") == "True":
        pytest.skip("dlhelpers.nn itself imports torch (until issue 12 makes it torch-free)")
    assert run("train") == "False"
    assert run("checkpoint") == "False"


@pytest.mark.parametrize("backend, task", [("torch", "mse"), ("torch", "bce"),
                                           ("numpy", "mse"), ("numpy", "bce")])
@pytest.mark.parametrize("part, bad", [("train", np.nan), ("val", np.inf)])
def test_fit_refuses_targets_that_are_not_finite(backend, task, part, bad):
    # Without the check torch's MSELoss trains to a history of [nan] and BCELoss fails
    # with torch's own "all elements of target should be between 0 and 1".
    model, optimizer, loss = BACKENDS[backend](task)
    y_train, y_val = np.sin(2 * X_TRAIN[:, :1]), np.sin(2 * X_VAL[:, :1]) ** 2
    if task == "bce":
        y_train, y_val = targets(task, Y_TRAIN), targets(task, Y_VAL)
    bad_targets = (y_train if part == "train" else y_val).copy()
    bad_targets[7, 0] = bad
    y_train, y_val = (bad_targets, y_val) if part == "train" else (y_train, bad_targets)
    before = weights(model)
    name = "NaN" if np.isnan(bad) else "inf"
    with pytest.raises(ValueError, match=rf"y_{part} must be finite, got {name}.*\(\d+, 1\)"):
        fit(model, optimizer, loss, X_TRAIN, y_train, X_val=X_VAL, y_val=y_val, epochs=1,
            progress=False)
    assert_same_weights(weights(model), before)  # refused before any training step


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"epochs": 0}, ValueError, "epochs"),
        ({"epochs": 2.0}, TypeError, "epochs"),
        ({"batch_size": 0}, ValueError, "batch_size"),
        ({"start_epoch": 7}, ValueError, "start_epoch"),
        ({"y_val": None}, ValueError, "X_val and y_val"),
        ({"X_val": X_VAL[:, :1]}, ValueError, "X_val must have 2 columns"),
        ({"progress": "no"}, TypeError, "progress"),
        ({"drop_last": 1}, TypeError, "drop_last"),
        ({"drop_last": True, "batch_size": 151}, ValueError, "drop_last=True would leave no"),
        ({"rng": -1}, ValueError, "rng"),
        ({"rng": "seed"}, TypeError, "rng"),
        ({"history": {"epochs": []}}, TypeError, "history"),
        ({"history": History(epochs=[1], train_loss=[0.5])}, ValueError, "start_epoch"),
        ({"early_stopping": 3}, TypeError, "early_stopping"),
        ({"scheduler": "cosine"}, TypeError, "scheduler"),
        ({"checkpoint_path": "/nonexistent/dir/ckpt.npz"}, FileNotFoundError, "directory"),
    ],
)
def test_fit_rejects_bad_arguments(kwargs, error, match):
    model, optimizer, loss = numpy_model()
    with pytest.raises(error, match=match):
        quiet_fit(model, optimizer, loss, **kwargs)


def test_fit_rejects_mixed_backends_and_foreign_optimizers():
    torch_net, torch_opt, torch_loss = torch_model()
    numpy_net, numpy_opt, numpy_loss = numpy_model()
    with pytest.raises(TypeError, match="optimizer must be a torch.optim"):
        quiet_fit(torch_net, numpy_opt, torch_loss)
    with pytest.raises(TypeError, match="loss_fn must be a torch loss"):
        quiet_fit(torch_net, torch_opt, numpy_loss)
    with pytest.raises(TypeError, match="optimizer must be a dlhelpers.optim"):
        quiet_fit(numpy_net, torch_opt, numpy_loss)
    with pytest.raises(TypeError, match="loss_fn must be a dlhelpers.losses"):
        quiet_fit(numpy_net, numpy_opt, torch_loss)
    with pytest.raises(TypeError, match="model must be a torch.nn.Module or a dlhelpers"):
        quiet_fit(lambda x: x, numpy_opt, numpy_loss)
    other_net, other_opt, _ = numpy_model(seed=3)
    with pytest.raises(ValueError, match="optimizer must update the model's parameters"):
        quiet_fit(numpy_net, other_opt, numpy_loss)
    other_torch, other_torch_opt, _ = torch_model(seed=3)
    with pytest.raises(ValueError, match="optimizer must update the model's parameters"):
        quiet_fit(torch_net, other_torch_opt, torch_loss)


def test_fit_checks_early_stopping_against_the_data():
    with pytest.raises(ValueError, match="pass X_val and y_val"):
        fit(*numpy_model(), X_TRAIN, Y_TRAIN, epochs=2, progress=False,
            early_stopping=EarlyStopping(2))
    with pytest.raises(ValueError, match="this loss has no accuracy"):
        fit(*numpy_model("mse"), X_TRAIN, np.zeros((150, 1)), epochs=2, progress=False,
            early_stopping=EarlyStopping(2, monitor="train_acc"))
    stopper = EarlyStopping(2)
    quiet_fit(*numpy_model(), epochs=2, early_stopping=stopper)
    with pytest.raises(ValueError, match="already been used"):
        quiet_fit(*numpy_model(), epochs=2, early_stopping=stopper)


def test_fit_does_not_change_the_callers_history_or_data():
    model, optimizer, loss = numpy_model()
    first = quiet_fit(model, optimizer, loss, epochs=2)
    snapshot = first.to_dict()
    X_copy = X_TRAIN.copy()
    second = quiet_fit(model, optimizer, loss, epochs=4, history=first, start_epoch=2)
    assert first.to_dict() == snapshot
    assert second.epochs == [1, 2, 3, 4]
    np.testing.assert_array_equal(X_TRAIN, X_copy)


# ---------------------------------------------------------------------------------------------
# History and EarlyStopping on their own
# ---------------------------------------------------------------------------------------------


def test_history_round_trips_and_validates():
    history = History(epochs=[1, 2], train_loss=[0.5, 0.4], val_loss=[0.6, 0.5],
                      train_acc=[0.7, 0.8], val_acc=[0.6, 0.7])
    assert History.from_dict(history.to_dict()) == history
    with pytest.raises(ValueError, match="keys"):
        History.from_dict({"epochs": [1]})
    bad = history.to_dict() | {"val_loss": [0.6]}
    with pytest.raises(ValueError, match=r"history\['val_loss'\] must have one entry per epoch"):
        History.from_dict(bad)
    with pytest.raises(ValueError, match="list of numbers"):
        History.from_dict(history.to_dict() | {"train_loss": ["a", "b"]})


def _net_with_weight(value: float):
    layer = nn.Dense(1, 1, rng=0)
    layer.load_state_dict({"weight": np.array([[value]]), "bias": np.array([0.0])})
    return layer


def test_early_stopping_tracks_the_best_epoch_with_min_delta():
    stopper = EarlyStopping(patience=2, min_delta=0.02)
    layer = _net_with_weight(0.0)
    decisions = []
    # epoch 2 improves; 0.85 does not; 0.79 is not below 0.8 - 0.02: the 2nd miss stops.
    for epoch, score in enumerate([1.0, 0.8, 0.85, 0.79], start=1):
        layer.weight.value[...] = epoch  # the weights "of" this epoch
        decisions.append(stopper.step(score, layer, epoch))
    assert decisions == [False, False, False, True]
    assert (stopper.best_epoch, stopper.best_score, stopper.stopped_epoch) == (2, 0.8, 4)
    assert stopper.best_state["weight"][0, 0] == 2.0  # a copy taken at epoch 2
    stopper.restore_best(layer)
    assert layer.weight.value[0, 0] == 2.0
    layer.weight.value[...] = 9.0
    assert stopper.best_state["weight"][0, 0] == 2.0  # restoring did not share memory


def test_early_stopping_on_accuracy_maximizes():
    stopper = EarlyStopping(patience=1, monitor="val_acc")
    layer = _net_with_weight(0.0)
    assert stopper.step(0.5, layer, 1) is False
    assert stopper.step(0.7, layer, 2) is False
    assert stopper.step(0.6, layer, 3) is True
    assert (stopper.best_epoch, stopper.best_score) == (2, 0.7)


def test_early_stopping_keeps_a_deep_copy_of_torch_weights():
    model, _, _ = torch_model()
    stopper = EarlyStopping(patience=3)
    stopper.step(1.0, model, 1)
    saved = stopper.best_state["0.weight"].clone()
    with torch.no_grad():
        model[0].weight.add_(1.0)
    assert torch.equal(stopper.best_state["0.weight"], saved)


@pytest.mark.parametrize(
    "kwargs, error",
    [({"patience": 0}, ValueError), ({"patience": 1.5}, TypeError),
     ({"patience": 2, "min_delta": -1.0}, ValueError),
     ({"patience": 2, "monitor": "loss"}, ValueError)],
)
def test_early_stopping_rejects_bad_arguments(kwargs, error):
    with pytest.raises(error, match=next(k for k in ("monitor", "min_delta", "patience")
                                         if k in kwargs)):
        EarlyStopping(**kwargs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fit_with_early_stopping_restores_the_weights_of_the_best_epoch(backend):
    # Validation labels flipped: the better the model learns, the worse the val loss gets,
    # so early stopping must fire.
    make = BACKENDS[backend]
    stopper = EarlyStopping(patience=3)
    model, optimizer, loss = make()
    history = quiet_fit(model, optimizer, loss, y_val=1 - Y_VAL, epochs=30,
                        early_stopping=stopper)
    best = int(np.argmin(history.val_loss)) + 1  # first epoch with the lowest val loss
    assert stopper.best_epoch == best
    assert stopper.best_score == min(history.val_loss)
    assert stopper.stopped_epoch == best + 3 == history.epochs[-1] < 30
    # Oracle: the same run stopped after best_epoch epochs (same seed, same batches).
    replay, replay_optimizer, _ = make()
    quiet_fit(replay, replay_optimizer, loss, y_val=1 - Y_VAL, epochs=best)
    assert_same_weights(weights(model), weights(replay))
    # ...and not the weights of the last epoch.
    last, last_optimizer, _ = make()
    quiet_fit(last, last_optimizer, loss, y_val=1 - Y_VAL, epochs=stopper.stopped_epoch)
    assert not np.array_equal(weights(model)["0.weight"], weights(last)["0.weight"])


# ---------------------------------------------------------------------------------------------
# A diverging run: one DivergenceError for both backends, finite weights back
# ---------------------------------------------------------------------------------------------

# The set-up: regression with targets of size ~10, SGD with lr = 5, far too large.
_X_REG = np.random.default_rng(0).normal(size=(64, 3))
_Y_REG = _X_REG @ np.array([[1.0], [2.0], [-1.0]]) * 5  # (64, 3) @ (3, 1)


def diverging_model(backend):
    """(model, optimizer, loss): Linear(3, 8), ReLU, Linear(8, 1), SGD(lr=5), MSE."""
    if backend == "torch":
        torch.manual_seed(0)
        model = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.ReLU(), torch.nn.Linear(8, 1))
        return model, torch.optim.SGD(model.parameters(), lr=5.0), torch.nn.MSELoss()
    model = nn.Sequential(nn.Dense(3, 8, rng=0), nn.ReLU(), nn.Dense(8, 1, rng=1))
    return model, optim.SGD(model.parameters(), lr=5.0), losses.MSELoss()


def diverging_fit(model, optimizer, loss, **kwargs):
    arguments = dict(X_val=_X_REG[:16], y_val=_Y_REG[:16], epochs=8, batch_size=32, rng=0,
                     progress=False)
    arguments.update(kwargs)
    return fit(model, optimizer, loss, _X_REG, _Y_REG, **arguments)


def all_finite(model) -> bool:
    return all(np.isfinite(w).all() for w in weights(model).values())


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("patience", [None, 3])
@pytest.mark.parametrize("with_checkpoint", [False, True])
def test_a_diverging_run_raises_and_gives_back_finite_weights(backend, patience,
                                                              with_checkpoint, tmp_path):
    model, optimizer, loss = diverging_model(backend)
    stopper = EarlyStopping(patience) if patience else None
    path = tmp_path / "ckpt" if with_checkpoint else None
    with pytest.raises(DivergenceError) as caught:
        diverging_fit(model, optimizer, loss, early_stopping=stopper, checkpoint_path=path)
    error = caught.value
    assert isinstance(error, FloatingPointError)
    assert error.part == "train" and error.batch is not None and not np.isfinite(error.loss)
    assert error.lr == [5.0]
    # The message names the epoch, the mini-batch, the learning rate and the cures.
    message = str(error)
    assert f"epoch {error.epoch}, mini-batch {error.batch} of 2" in message
    assert "learning rate 5" in message and "smaller learning rate (e.g. 0.5)" in message
    assert "standardize" in message
    sent = pickle.loads(pickle.dumps(error))  # e.g. from a worker process
    assert (str(sent), sent.epoch, sent.batch, sent.lr, sent.history) == \
        (message, error.epoch, error.batch, error.lr, error.history)
    # The history holds exactly the finite epochs, those before the diverged one.
    history = error.history
    assert history.epochs == list(range(1, error.epoch))
    assert np.isfinite(history.train_loss + history.val_loss).all()
    # Finite weights back: early stopping's best, else the last finite epoch's. Oracle: the
    # same run (same seed, same batches) stopped after that epoch.
    if stopper is not None and history.epochs:
        assert (error.restored, error.restored_epoch) == ("best", stopper.best_epoch)
        assert "best weights back, those of epoch" in message
    else:
        assert (error.restored, error.restored_epoch) == ("last", error.epoch - 1)
    assert all_finite(model)
    replay, replay_optimizer, _ = diverging_model(backend)
    if error.restored_epoch:
        replayed = diverging_fit(replay, replay_optimizer, loss, epochs=error.restored_epoch)
        assert replayed.train_loss == history.train_loss[: error.restored_epoch]
    assert_same_weights(weights(model), weights(replay))
    # The checkpoint on disk is that of the last finite epoch, never a diverged state.
    if with_checkpoint:
        if not history.epochs:
            assert not path.exists()
        else:
            checked, checked_optimizer, _ = diverging_model(backend)
            saved = load_checkpoint(path, checked, checked_optimizer)
            assert saved["epoch"] == history.epochs[-1] and saved["history"] == history
            assert all_finite(checked)
            last, last_optimizer, _ = diverging_model(backend)
            diverging_fit(last, last_optimizer, loss, epochs=history.epochs[-1])
            assert_same_weights(weights(checked), weights(last))
            assert f"{path} still holds epoch {saved['epoch']}" in message


def test_the_diverging_runs_have_finite_epochs_before_they_diverge():
    # Not an expected result but a check of the set-up: the test above must see finite epochs
    # before the divergence (a history, a best epoch, a checkpoint), for both backends.
    epochs = {}
    for backend in BACKENDS:
        model, optimizer, loss = diverging_model(backend)
        with pytest.raises(DivergenceError) as caught:
            diverging_fit(model, optimizer, loss)
        epochs[backend] = caught.value.epoch
    assert min(epochs.values()) >= 2


class _TorchNaN(torch.nn.Module):
    """Identity, except in eval mode on inputs of `rows` rows from the `from_call`-th on: NaN."""

    def __init__(self, rows: int, from_call: int):
        super().__init__()
        self.rows, self.from_call, self.calls = rows, from_call, 0

    def forward(self, x):
        if not self.training and len(x) == self.rows:
            self.calls += 1
            if self.calls >= self.from_call:
                return torch.full_like(x, float("nan"))
        return x


class _NumpyNaN(nn.Module):
    """The numpy twin of _TorchNaN."""

    def __init__(self, rows: int, from_call: int):
        super().__init__()
        self.rows, self.from_call, self.calls = rows, from_call, 0

    def _forward(self, x):
        if not self.training and len(x) == self.rows:
            self.calls += 1
            if self.calls >= self.from_call:
                return np.full_like(x, np.nan)
        return x

    def _backward(self, grad_out, input_grad):
        return grad_out


def nan_model(backend, task, rows=None, from_call=None):
    """The moons model of BACKENDS, with a layer that turns the output NaN when told to."""
    model, optimizer, loss = BACKENDS[backend](task)
    if rows is None:
        return model, optimizer, loss
    if backend == "torch":
        return torch.nn.Sequential(model, _TorchNaN(rows, from_call)), optimizer, loss
    return nn.Sequential(model, _NumpyNaN(rows, from_call)), optimizer, loss


def task_fit(model, optimizer, loss, task, **kwargs):
    """quiet_fit with the targets of `task` (labels, (N, 1) floats, or a regression)."""
    if task == "mse":
        y_train, y_val = np.sin(2 * X_TRAIN[:, :1]), np.sin(2 * X_VAL[:, :1])
    else:
        y_train, y_val = targets(task, Y_TRAIN), targets(task, Y_VAL)
    arguments = dict(X_val=X_VAL, y_val=y_val, epochs=6, batch_size=32, rng=0, progress=False)
    arguments.update(kwargs)
    return fit(model, optimizer, loss, X_TRAIN, y_train, **arguments)


@pytest.mark.parametrize("backend, task", [("torch", "ce"), ("torch", "bce"), ("numpy", "ce"),
                                           ("numpy", "bce")])
@pytest.mark.parametrize("part", ["train", "val"])
@pytest.mark.parametrize("monitor", [None, "val_loss", "val_acc"])
def test_a_nan_loss_measured_after_an_epoch_stops_training(backend, task, part, monitor,
                                                           tmp_path):
    # From epoch 4 on, the model's output on the whole training (or validation) set is NaN:
    # for BCELoss torch used to fail inside the loss, and with early stopping watching
    # val_acc a NaN val loss went unnoticed.
    rows = len(X_TRAIN) if part == "train" else len(X_VAL)
    model, optimizer, loss = nan_model(backend, task, rows, from_call=4)
    stopper = None if monitor is None else EarlyStopping(patience=50, monitor=monitor)
    path = tmp_path / "ckpt"
    with pytest.raises(DivergenceError) as caught:
        task_fit(model, optimizer, loss, task, early_stopping=stopper, checkpoint_path=path)
    error = caught.value
    assert (error.epoch, error.batch, error.part) == (4, None, part)
    assert np.isnan(error.loss)
    where = {"train": "training", "val": "validation"}[part]
    assert f"epoch 4, the whole {where} set measured after the epoch" in str(error)
    # Oracle: the same model trained without the NaN layer, for 3 epochs and for the epoch
    # whose weights the model got back.
    three, three_optimizer, _ = nan_model(backend, task)
    assert task_fit(three, three_optimizer, loss, task, epochs=3) == error.history
    restored_epoch = stopper.best_epoch if stopper else 3
    assert (error.restored, error.restored_epoch) == ("best" if stopper else "last",
                                                     restored_epoch)
    replay, replay_optimizer, _ = nan_model(backend, task)
    task_fit(replay, replay_optimizer, loss, task, epochs=restored_epoch)
    inner = model[0] if backend == "torch" else model.layers[0]
    assert_same_weights(weights(inner), weights(replay))
    # The checkpoint holds epoch 3, not the diverged epoch 4.
    checked, _, _ = BACKENDS[backend](task)
    checked = torch.nn.Sequential(checked, torch.nn.Identity()) if backend == "torch" else \
        nn.Sequential(checked, _NumpyNaN(0, 1))
    assert load_checkpoint(path, checked)["epoch"] == 3
    inner = checked[0] if backend == "torch" else checked.layers[0]
    assert_same_weights(weights(inner), weights(three))


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_output_that_overflows_is_a_divergence_and_leaves_the_weights(backend):
    # Weights so large that the output overflows (float32 for torch, float64 for numpy): the
    # first mini-batch diverges. numpy's Module.forward used to raise its own overflow error.
    model, optimizer, loss = BACKENDS[backend]("mse")
    if backend == "torch":
        with torch.no_grad():
            for p in model.parameters():
                p.mul_(1e20)
    else:
        for p in model.parameters():
            p.value *= 1e160
    before = weights(model)
    with pytest.raises(DivergenceError, match="epoch 1, mini-batch 1 of 5: the loss is") as caught:
        task_fit(model, optimizer, loss, "mse")
    assert not np.isfinite(caught.value.loss)
    assert (caught.value.restored, caught.value.restored_epoch) == ("last", 0)
    assert "the weights it started with back" in str(caught.value)
    assert caught.value.history == History()
    assert_same_weights(weights(model), before)


# ---------------------------------------------------------------------------------------------
# Checkpoints: round trip
# ---------------------------------------------------------------------------------------------


def _schedule(backend, optimizer):
    if backend == "torch":
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.5)
    return optim.StepLR(optimizer, step_size=2, gamma=0.5)


def _assert_same_state(a, b):
    """Equal nested states (dicts, lists, arrays, tensors, numbers), exactly."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys()
        for key in a:
            _assert_same_state(a[key], b[key])
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same_state(x, y)
    elif isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, np.ndarray):
        np.testing.assert_array_equal(a, b)
    else:
        assert a == b


@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoint_round_trip(backend, tmp_path):
    make = BACKENDS[backend]
    model, optimizer, loss = make(dropout=0.2)
    scheduler, stopper = _schedule(backend, optimizer), EarlyStopping(patience=50)
    history = quiet_fit(model, optimizer, loss, epochs=3, scheduler=scheduler,
                        early_stopping=stopper)
    extra_array = torch.arange(3) if backend == "torch" else np.arange(3)
    path = save_checkpoint(tmp_path / "ckpt", model, optimizer, epoch=3, history=history,
                           scheduler=scheduler, early_stopping=stopper, note="hi",
                           values=[1, 2.5, None], array=extra_array)
    assert path == tmp_path / "ckpt" and path.is_file()
    assert os.listdir(tmp_path) == ["ckpt"]  # no temporary file left

    fresh, fresh_optimizer, _ = make(seed=9, dropout=0.2)
    fresh_scheduler, fresh_stopper = _schedule(backend, fresh_optimizer), EarlyStopping(50)
    loaded = load_checkpoint(path, fresh, fresh_optimizer, scheduler=fresh_scheduler,
                             early_stopping=fresh_stopper)
    assert loaded["epoch"] == 3
    assert loaded["history"] == history
    assert loaded["extra"]["note"] == "hi" and loaded["extra"]["values"] == [1, 2.5, None]
    _assert_same_state(loaded["extra"]["array"], extra_array)
    assert_same_weights(weights(fresh), weights(model))
    _assert_same_state(fresh_optimizer.state_dict(), optimizer.state_dict())
    _assert_same_state(fresh_scheduler.state_dict(), scheduler.state_dict())
    _assert_same_state(fresh_stopper.state_dict(), stopper.state_dict())


def test_numpy_checkpoints_are_npz_with_flat_keys_and_no_pickle(tmp_path):
    model, optimizer, _ = numpy_model()
    path = save_checkpoint(tmp_path / "ckpt.npz", model, optimizer, epoch=1)
    with np.load(path, allow_pickle=False) as archive:
        names = set(archive.files)
        np.testing.assert_array_equal(archive["model/0.weight"], model.state_dict()["0.weight"])
    assert {"meta", "model/0.weight", "model/2.bias", "optimizer/exp_avg.0"} <= names


def test_load_checkpoint_can_skip_the_random_state(tmp_path):
    model, optimizer, _ = numpy_model(dropout=0.5)
    path = save_checkpoint(tmp_path / "c.npz", model, optimizer)
    dropout_rng = model[2].rng
    before = dropout_rng.bit_generator.state
    dropout_rng.random(10)  # move the generator on
    load_checkpoint(path, model, restore_rng=False)
    assert dropout_rng.bit_generator.state != before
    load_checkpoint(path, model)
    assert dropout_rng.bit_generator.state == before


# ---------------------------------------------------------------------------------------------
# Resuming gives exactly the uninterrupted run
# ---------------------------------------------------------------------------------------------


def _run(backend, path, epochs, *, resume, y_val=Y_VAL, patience=50, restore_rng=True):
    """Train a dropout net with Adam, a schedule and early stopping; optionally resume.

    A resumed run starts like a restarted program: other initial weights, another random state
    (torch's generator seeded with 9, a new numpy Dropout generator); the checkpoint must
    restore all of it.
    """
    model, optimizer, loss = BACKENDS[backend](seed=9 if resume else 0, dropout=0.3)
    scheduler, stopper = _schedule(backend, optimizer), EarlyStopping(patience)
    start, history, rng = 0, None, 0
    if resume:
        saved = load_checkpoint(path, model, optimizer, scheduler=scheduler,
                                early_stopping=stopper, restore_rng=restore_rng)
        start, history, rng = saved["epoch"], saved["history"], saved["extra"]["seed"]
    history = quiet_fit(model, optimizer, loss, y_val=y_val, epochs=epochs, rng=rng,
                        scheduler=scheduler, early_stopping=stopper, checkpoint_path=path,
                        history=history, start_epoch=start)
    return weights(model), history


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_gives_exactly_the_uninterrupted_run(backend, tmp_path):
    expected_weights, expected_history = _run(backend, tmp_path / "a", 8, resume=False)
    _run(backend, tmp_path / "b", 3, resume=False)  # "interrupted" after epoch 3
    assert load_checkpoint(tmp_path / "b", BACKENDS[backend](dropout=0.3)[0])["epoch"] == 3
    resumed_weights, resumed_history = _run(backend, tmp_path / "b", 8, resume=True)
    assert_same_weights(resumed_weights, expected_weights)
    assert resumed_history == expected_history
    # Control: without the saved random state the dropout masks differ, and so do the weights.
    _run(backend, tmp_path / "c", 3, resume=False)
    other_weights, _ = _run(backend, tmp_path / "c", 8, resume=True, restore_rng=False)
    assert not np.array_equal(other_weights["0.weight"], expected_weights["0.weight"])


@pytest.mark.parametrize("backend", BACKENDS)
def test_resuming_after_early_stopping_fired_restores_the_best_weights(backend, tmp_path):
    flipped = 1 - Y_VAL
    expected, expected_history = _run(backend, tmp_path / "a", 30, resume=False,
                                      y_val=flipped, patience=2)
    stopped = expected_history.epochs[-1]
    assert stopped < 30
    _run(backend, tmp_path / "b", stopped, resume=False, y_val=flipped, patience=2)
    resumed, resumed_history = _run(backend, tmp_path / "b", 30, resume=True, y_val=flipped,
                                    patience=2)
    assert resumed_history == expected_history  # no further epoch was trained
    assert_same_weights(resumed, expected)


# ---------------------------------------------------------------------------------------------
# Checkpoints: bad files are refused with clear errors
# ---------------------------------------------------------------------------------------------


@pytest.fixture(params=list(BACKENDS))
def saved(request, tmp_path):
    """(backend, path of a valid checkpoint, a fresh model and optimizer to load into)."""
    backend = request.param
    model, optimizer, _ = BACKENDS[backend]()
    path = save_checkpoint(tmp_path / "ckpt", model, optimizer, epoch=2)
    fresh, fresh_optimizer, _ = BACKENDS[backend](seed=4)
    return backend, path, fresh, fresh_optimizer


def test_missing_file_raises_file_not_found_with_the_path(saved, tmp_path):
    _, _, model, _ = saved
    missing = tmp_path / "nothing-here.ckpt"
    with pytest.raises(FileNotFoundError, match=re.escape(str(missing))):
        load_checkpoint(missing, model)


@pytest.mark.parametrize("keep", [0.0, 0.5, 0.95])
def test_truncated_file_is_refused(saved, keep):
    _, path, model, _ = saved
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    before = weights(model)
    with pytest.raises(ValueError, match="not a complete zip archive.*truncated"):
        load_checkpoint(path, model)
    assert_same_weights(weights(model), before)


def test_random_bytes_are_refused(saved):
    _, path, model, _ = saved
    path.write_bytes(np.random.default_rng(0).bytes(5000))
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(path, model)


def test_a_flipped_byte_inside_the_weights_is_detected(saved):
    backend, path, model, _ = saved
    data = bytearray(path.read_bytes())
    raw = weights(BACKENDS[backend]()[0])["0.weight"]  # the saved model's first weights
    start = bytes(data).find(np.ascontiguousarray(raw).tobytes())
    assert start > 0, "the weights' bytes should be stored verbatim"
    data[start + 5] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="corrupted"):
        load_checkpoint(path, model)


class _Payload:
    """Unpickling this object creates a directory: proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_the_malicious_payload_really_runs_code_when_unpickled(tmp_path):
    # Control for the next two tests: plain pickle would run it.
    marker = tmp_path / "ran"
    pickle.loads(pickle.dumps(_Payload(marker)))
    assert marker.is_dir()


def test_torch_checkpoints_are_loaded_with_weights_only(tmp_path):
    model, _, _ = torch_model()
    marker, path = tmp_path / "ran", tmp_path / "evil.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "model": _Payload(marker)}, path)
    with pytest.raises(ValueError, match="refused.*weights_only=True"):
        load_checkpoint(path, model)
    assert not marker.exists()
    plain = tmp_path / "evil.pkl"
    plain.write_bytes(pickle.dumps(_Payload(marker)))
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(plain, model)
    assert not marker.exists()


def test_numpy_checkpoints_are_loaded_without_pickle(tmp_path):
    model, _, _ = numpy_model()
    marker, path = tmp_path / "ran", tmp_path / "evil.npz"
    payload = np.empty(1, dtype=object)
    payload[0] = _Payload(marker)
    np.savez(path, meta=np.frombuffer(b"{}", dtype=np.uint8), evil=payload)
    with pytest.raises(ValueError, match="corrupted.*allow_pickle"):
        load_checkpoint(path, model)
    assert not marker.exists()


def test_foreign_archives_are_refused(tmp_path):
    torch_net, _, _ = torch_model()
    numpy_net, _, _ = numpy_model()
    bare = tmp_path / "state.pt"
    torch.save(torch_net.state_dict(), bare)  # a torch file, but not a checkpoint
    with pytest.raises(ValueError, match="not a dlhelpers checkpoint"):
        load_checkpoint(bare, torch_net)
    arrays = tmp_path / "arrays.npz"
    np.savez(arrays, w=np.zeros(3))
    with pytest.raises(ValueError, match="zip archive but not a dlhelpers checkpoint"):
        load_checkpoint(arrays, numpy_net)
    future = tmp_path / "future.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "version": 99}, future)
    with pytest.raises(ValueError, match="format version 99.*reads version 1"):
        load_checkpoint(future, torch_net)


def test_checkpoint_of_the_other_backend_is_refused(tmp_path):
    torch_net, _, _ = torch_model()
    numpy_net, _, _ = numpy_model()
    torch_file = save_checkpoint(tmp_path / "t", torch_net)
    numpy_file = save_checkpoint(tmp_path / "n", numpy_net)
    with pytest.raises(ValueError, match="checkpoint of a torch model.*numpy"):
        load_checkpoint(torch_file, numpy_net)
    with pytest.raises(ValueError, match=r"checkpoint of a numpy \(dlhelpers.nn\) model.*torch"):
        load_checkpoint(numpy_file, torch_net)


def test_checkpoint_of_another_architecture_is_refused_and_changes_nothing(saved):
    backend, path, _, _ = saved
    other, other_optimizer, _ = BACKENDS[backend](hidden=8)
    before = weights(other)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(path, other, other_optimizer)
    assert_same_weights(weights(other), before)


def test_a_failing_part_rolls_back_the_parts_already_loaded(tmp_path):
    # The model fits, the optimizer does not (SGD state into Adam): the model must not change.
    model, _, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model, optim.SGD(model.parameters(), lr=0.1))
    fresh, fresh_adam, _ = numpy_model(seed=4)
    before = weights(fresh)
    with pytest.raises(ValueError, match="does not fit"):
        load_checkpoint(path, fresh, fresh_adam)
    assert_same_weights(weights(fresh), before)


def test_a_random_state_that_does_not_fit_rolls_back_the_generators_already_set(tmp_path):
    # Two Dropout layers; the checkpoint's state of the second is not a PCG64 state (as if
    # corrupted), so restoring it fails after the first generator was already set.
    def two_dropouts(seed):
        return nn.Sequential(nn.Dense(2, 4, rng=seed), nn.Dropout(0.5, rng=seed + 1),
                             nn.Dense(4, 2, rng=seed + 2), nn.Dropout(0.5, rng=seed + 3))

    saved_model = two_dropouts(0)
    saved_model[3].rng = np.random.Generator(np.random.MT19937(0))
    path = save_checkpoint(tmp_path / "c.npz", saved_model)
    model = two_dropouts(10)
    before = weights(model)
    first, second = (model[i].rng.bit_generator.state for i in (1, 3))
    assert first != saved_model[1].rng.bit_generator.state  # a load would change it
    with pytest.raises(ValueError, match="does not fit.*PCG64"):
        load_checkpoint(path, model)
    assert model[1].rng.bit_generator.state == first
    assert model[3].rng.bit_generator.state == second
    assert_same_weights(weights(model), before)


def test_asking_for_a_part_the_checkpoint_lacks_is_an_error(tmp_path):
    model, optimizer, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model)
    with pytest.raises(ValueError, match="has no optimizer state"):
        load_checkpoint(path, model, optimizer)


# ---------------------------------------------------------------------------------------------
# Checkpoints: writing
# ---------------------------------------------------------------------------------------------


def test_save_checkpoint_rejects_bad_arguments(tmp_path):
    model, _, _ = numpy_model()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        save_checkpoint(tmp_path / "missing" / "c.npz", model)
    with pytest.raises(TypeError, match=r"extra\['thing'\]"):
        save_checkpoint(tmp_path / "c.npz", model, thing=object())
    with pytest.raises(TypeError, match="path"):
        save_checkpoint(3, model)
    with pytest.raises(ValueError, match="epoch"):
        save_checkpoint(tmp_path / "c.npz", model, epoch=-1)
    with pytest.raises(TypeError, match="history"):
        save_checkpoint(tmp_path / "c.npz", model, history=[1.0])
    assert list(tmp_path.iterdir()) == []


def test_save_checkpoint_refuses_an_optimizer_of_the_other_backend(tmp_path):
    # Before the check, a torch model with a dlhelpers optimizer was saved, and loading the
    # file failed with "holds objects that only arbitrary code could rebuild".
    torch_net, torch_opt, _ = torch_model()
    numpy_net, numpy_opt, _ = numpy_model()
    with pytest.raises(TypeError, match="optimizer must be a torch.optim optimizer for a "
                                        "torch model, got SGD"):
        save_checkpoint(tmp_path / "t", torch_net, optim.SGD(numpy_net.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="optimizer must be a dlhelpers.optim optimizer .*"
                                        "for a numpy model, got Adam"):
        save_checkpoint(tmp_path / "n", numpy_net, torch_opt)
    with pytest.raises(ValueError, match="optimizer must update the model's parameters"):
        save_checkpoint(tmp_path / "n", numpy_net, numpy_model(seed=3)[1])
    assert list(tmp_path.iterdir()) == []
    # load_checkpoint applies the same check before reading the file.
    path = save_checkpoint(tmp_path / "n", numpy_net, numpy_opt)
    with pytest.raises(TypeError, match="optimizer must be a dlhelpers.optim optimizer"):
        load_checkpoint(path, numpy_net, torch_opt)


@pytest.mark.skipif(os.name != "posix", reason="file modes and the umask are POSIX")
@pytest.mark.parametrize("umask", [0o022, 0o027])
@pytest.mark.parametrize("backend", BACKENDS)
def test_checkpoints_get_the_mode_of_a_normally_created_file(backend, umask, tmp_path):
    # NamedTemporaryFile creates 0600 files; a checkpoint must follow the umask like any file.
    model = BACKENDS[backend]()[0]
    old = os.umask(umask)
    try:
        normal = tmp_path / "normal"
        normal.write_bytes(b"")
        path = save_checkpoint(tmp_path / "ckpt", model)
        path = save_checkpoint(path, model)  # replacing an existing checkpoint, too
    finally:
        os.umask(old)
    assert stat.S_IMODE(normal.stat().st_mode) == 0o666 & ~umask
    assert stat.S_IMODE(path.stat().st_mode) == stat.S_IMODE(normal.stat().st_mode)


def test_a_failed_write_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    model, _, _ = numpy_model()
    path = save_checkpoint(tmp_path / "c.npz", model, epoch=1)

    def fail_halfway(file, **arrays):
        file.write(b"PK\x03\x04 half a zip")
        raise OSError("disk full")

    monkeypatch.setattr(np, "savez", fail_halfway)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, model, epoch=2)
    monkeypatch.undo()
    assert load_checkpoint(path, model)["epoch"] == 1
    assert os.listdir(tmp_path) == ["c.npz"]


def test_leftover_temporary_files_of_a_crash_are_removed(tmp_path):
    model, _, _ = numpy_model()
    leftover = tmp_path / ".c.npz.k2j4h5g6.tmp"
    leftover.write_bytes(b"half")
    unrelated = tmp_path / ".other.npz.k2j4h5g6.tmp"
    unrelated.write_bytes(b"someone else's")
    save_checkpoint(tmp_path / "c.npz", model)
    assert sorted(os.listdir(tmp_path)) == [".other.npz.k2j4h5g6.tmp", "c.npz"]


# ---------------------------------------------------------------------------------------------
# The kill test: SIGKILL at random moments never leaves a broken checkpoint
# ---------------------------------------------------------------------------------------------

HELPER = Path(__file__).with_name("_resumable_training.py")
KILL_EPOCHS = 60
KILL_TRIALS = 12


def _load_helper():
    spec = importlib.util.spec_from_file_location("_resumable_training", HELPER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(),
                    reason="needs fork() to start the killed runs quickly")
def test_runs_killed_at_random_moments_resume_to_the_uninterrupted_result(tmp_path):
    helper = _load_helper()
    started = time.perf_counter()
    reference_model, reference = helper.train(tmp_path / "reference.npz", KILL_EPOCHS)
    run_time = time.perf_counter() - started  # scales the delays to this machine's speed

    checkpoint = tmp_path / "run" / "ckpt.npz"
    checkpoint.parent.mkdir()
    temporary = re.compile(r"\.ckpt\.npz\.[a-z0-9_]+\.tmp")
    # Seeded kill moments, counted from the start of training (after loading the checkpoint);
    # together about 40% of one whole run, so the runs are killed long before the end.
    delays = np.random.default_rng(2024).uniform(0.1, 0.7, size=KILL_TRIALS) * run_time
    delays /= KILL_TRIALS
    context = multiprocessing.get_context("fork")  # starts at once, no torch import per run
    last_epoch, killed, seen_temporaries = 0, 0, set()
    for delay in delays:
        training = context.Event()
        run = context.Process(target=helper.train, args=(checkpoint, KILL_EPOCHS, training.set))
        run.start()
        assert training.wait(timeout=60), "the run did not start training"
        time.sleep(delay)
        run.kill()  # SIGKILL: no clean-up code runs
        run.join()
        assert run.exitcode in (-signal.SIGKILL, 0), f"the run failed: exit code {run.exitcode}"
        killed += run.exitcode == -signal.SIGKILL
        names = set(os.listdir(checkpoint.parent))
        # Only the checkpoint and temporary files; a temporary never takes the checkpoint name.
        assert all(name == "ckpt.npz" or temporary.fullmatch(name) for name in names), names
        seen_temporaries |= names - {"ckpt.npz"}
        if not checkpoint.exists():
            continue  # killed before the first epoch ended
        _, model, optimizer, scheduler, stopper = helper.build()
        saved = load_checkpoint(checkpoint, model, optimizer, scheduler=scheduler,
                                early_stopping=stopper)  # never corrupt
        epoch = saved["epoch"]
        assert last_epoch <= epoch <= KILL_EPOCHS
        # The checkpoint is the uninterrupted run's state at that epoch.
        assert saved["history"].train_loss == reference.train_loss[:epoch]
        assert saved["history"].val_loss == reference.val_loss[:epoch]
        last_epoch = epoch
        if run.exitcode == 0:
            break  # this machine ran much faster than during the reference run: finished
    assert killed >= 10
    assert last_epoch > 0  # the kills landed during training

    # Finish in a fresh interpreter, from whatever the last kill left.
    result = tmp_path / "result.npz"
    subprocess.run([sys.executable, str(HELPER), str(checkpoint), str(KILL_EPOCHS), str(result)],
                   check=True, timeout=120)
    with np.load(result) as finished:
        assert_same_weights({k: finished[k] for k in reference_model.state_dict()},
                            reference_model.state_dict())
        np.testing.assert_array_equal(finished["train_loss"], reference.train_loss)
        np.testing.assert_array_equal(finished["val_loss"], reference.val_loss)
    assert os.listdir(checkpoint.parent) == ["ckpt.npz"]  # leftovers cleaned by later saves
    print(f"kill test: {killed} kills, {len(seen_temporaries)} killed mid-write (temporary file "
          f"left), last checkpoint at epoch {last_epoch} of {KILL_EPOCHS}, "
          f"one run takes {run_time:.2f} s")
