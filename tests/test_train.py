"""Tests of dlhelpers.train: fit, History, EarlyStopping, diverging runs, drop_last.

Oracles: losses and accuracies recomputed independently after training (torch.nn.functional,
dlhelpers.losses, scikit-learn's accuracy_score); replaying a run for fewer epochs (the weights
early stopping restores, or a diverged run gives back, must equal those of a run stopped at
that epoch); a plain torch loop over torch's DataLoader(drop_last=True). The checkpoints, and
resuming from them, are tested in tests/test_checkpoint.py.
"""

from __future__ import annotations

import pickle
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from _models import (  # tests/_models.py
    BACKENDS,
    X_TRAIN,
    X_VAL,
    Y_TRAIN,
    Y_VAL,
    assert_same_weights,
    numpy_model,
    one_torch_thread,  # noqa: F401 (an autouse fixture)
    quiet_fit,
    targets,
    torch_model,
    weights,
)
from sklearn.metrics import accuracy_score

from dlhelpers import losses, nn, optim
from dlhelpers.train import DivergenceError, EarlyStopping, History, fit, load_checkpoint

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
