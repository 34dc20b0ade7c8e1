r"""Training: a loop with a progress bar, a history, early stopping and resumable checkpoints.

Introduced in `07_optimization_learning_rate.ipynb` (`fit`, comparing optimizers), with early
stopping and checkpoints in `08_regularization.ipynb`, and used for the real data of
`09_capstone_digits.ipynb`. One `fit` trains either kind of model of the course:

- a torch `nn.Module` with a `torch.optim` optimizer and a torch loss (numpy arrays in);
- a numpy `dlhelpers.nn` model with a `dlhelpers.optim` optimizer and a `dlhelpers.losses`
  loss object (`forward(y_hat, y)`, then `backward()`).

Each epoch runs the mini-batch gradient descent of `05_gradient_descent.ipynb`,

.. math:: W \leftarrow W - \eta \frac{\partial J_{\text{batch}}}{\partial W}
          \quad\text{for every mini-batch},

then measures the loss (and accuracy, for classification) on the whole training and
validation sets in evaluation mode, so both curves are measured the same way (dropout off).

Reproducible and resumable. The shuffling of epoch e uses its own generator,
`numpy.random.default_rng([seed, e])`, so it depends only on the seed and the epoch: a run
resumed at epoch e needs no saved shuffling state. The other randomness lives in the model
(numpy `Dropout` generators; torch's global generator for torch dropout): checkpoints store
it and `load_checkpoint` restores it. Resuming from a checkpoint therefore ends with exactly
the weights of an uninterrupted run::

    checkpoint = load_checkpoint(path, model, optimizer, early_stopping=stopper)
    history = fit(model, optimizer, loss_fn, X, y, epochs=50, rng=checkpoint["extra"]["seed"],
                  history=checkpoint["history"], start_epoch=checkpoint["epoch"],
                  checkpoint_path=path, early_stopping=stopper)

Checkpoints are written atomically (a temporary file in the same directory, flushed to disk,
then renamed over the old one), so a crash at any moment leaves either the previous checkpoint
or the new one, never half a file. One process writes a given checkpoint path at a time.
"""

from __future__ import annotations

import contextlib
import copy
import json
import numbers
import os
import pickle
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from dlhelpers import losses, nn
from dlhelpers.data import _check_features_and_targets, batches
from dlhelpers.seeding import as_rng
from dlhelpers.validation import as_label_array, check_number, describe

CHECKPOINT_FORMAT = "dlhelpers-checkpoint"
CHECKPOINT_VERSION = 1
# Seeds of the per-epoch shuffling generators are drawn from [0, 2**63).
_SEED_LIMIT = 2**63

# Which losses are classification losses, and how a prediction is read off the output.
_ARGMAX_LOSSES = (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss, losses.CrossEntropyLoss)
_PROBABILITY_LOSSES = (torch.nn.BCELoss, losses.BCELoss)
_LOGIT_LOSSES = (torch.nn.BCEWithLogitsLoss,)


# ---------------------------------------------------------------------------------------------
# History and early stopping
# ---------------------------------------------------------------------------------------------


@dataclass
class History:
    """What `fit` measured after each epoch, one entry per epoch.

    `epochs` holds the epoch numbers (1, 2, ...). `val_loss` and `val_acc` stay empty without
    validation data; `train_acc` and `val_acc` stay empty for regression losses such as MSE.

    >>> h = History(epochs=[1], train_loss=[0.7])
    >>> History.from_dict(h.to_dict()) == h
    True
    """

    epochs: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)

    def to_dict(self) -> dict[str, list]:
        """Plain lists of Python numbers, for checkpoints."""
        return {f.name: list(getattr(self, f.name)) for f in fields(self)}

    @classmethod
    def from_dict(cls, values) -> History:
        """The inverse of `to_dict`, checking that the lists fit together."""
        names = [f.name for f in fields(cls)]
        if not isinstance(values, dict) or sorted(values) != sorted(names):
            got = sorted(values) if isinstance(values, dict) else describe(values)
            raise ValueError(f"history must be a dict with the keys {names}, got {got}")
        lists = {}
        for name in names:
            entries = values[name]
            if not isinstance(entries, (list, tuple)) or not all(
                isinstance(v, numbers.Real) and not isinstance(v, bool) for v in entries
            ):
                raise ValueError(f"history[{name!r}] must be a list of numbers, got {entries!r}")
            lists[name] = [int(v) if name == "epochs" else float(v) for v in entries]
        n = len(lists["epochs"])
        for name in names[1:]:
            if len(lists[name]) not in ({0, n} if name != "train_loss" else {n}):
                raise ValueError(
                    f"history[{name!r}] must have one entry per epoch ({n}), "
                    f"got {len(lists[name])}"
                )
        return cls(**lists)


class EarlyStopping:
    """Stop training when the monitored score stops improving; keep the best weights.

    After each epoch `fit` calls `step(score, model, epoch)`. An improvement is a val loss
    below best - min_delta (or, for an accuracy, above best + min_delta); it records
    `best_score` and `best_epoch` and keeps a deep copy of the model's weights. After
    `patience` epochs in a row without improvement, `step` returns True, `stopped_epoch` is
    set, and `fit` stops and restores the best weights (the lecture's "early checkpoint").

    `monitor` is one of "val_loss", "val_acc", "train_loss", "train_acc".

    >>> stopper = EarlyStopping(patience=3)
    >>> stopper.best_epoch, stopper.stopped_epoch
    (0, 0)
    """

    MONITORS = ("val_loss", "val_acc", "train_loss", "train_acc")

    def __init__(self, patience: int, min_delta: float = 0.0, monitor: str = "val_loss"):
        self.patience = check_number(patience, "patience", low=1, integer=True)
        self.min_delta = check_number(min_delta, "min_delta", low=0)
        if monitor not in self.MONITORS:
            raise ValueError(f"monitor must be one of {self.MONITORS}, got {monitor!r}")
        self.monitor = monitor
        self.best_score: float | None = None
        self.best_epoch = 0  # 0: no epoch seen yet
        self.stopped_epoch = 0  # 0: not stopped
        self.wait = 0  # epochs since the last improvement
        self.best_state: dict | None = None

    def _improves(self, score: float) -> bool:
        if self.best_score is None:
            return True
        if self.monitor.endswith("loss"):
            return score < self.best_score - self.min_delta
        return score > self.best_score + self.min_delta

    def step(self, score: float, model, epoch: int) -> bool:
        """Record the score of `epoch`; return True when training should stop."""
        score = float(check_number(score, "score"))
        if self._improves(score):
            self.best_score, self.best_epoch, self.wait = score, epoch, 0
            self.best_state = copy.deepcopy(model.state_dict())
            return False
        self.wait += 1
        if self.wait >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def restore_best(self, model) -> None:
        """Load the best weights seen so far back into `model`."""
        if self.best_state is None:
            raise RuntimeError("EarlyStopping has not seen an epoch yet: no best weights")
        model.load_state_dict(copy.deepcopy(self.best_state))

    def state_dict(self) -> dict:
        """Everything needed to continue after a restart, for checkpoints."""
        return {
            "monitor": self.monitor,
            "best_score": self.best_score,
            "best_epoch": self.best_epoch,
            "stopped_epoch": self.stopped_epoch,
            "wait": self.wait,
            "best_state": self.best_state,
        }

    def load_state_dict(self, state) -> None:
        if not isinstance(state, dict) or sorted(state) != sorted(self.state_dict()):
            raise ValueError(
                f"state must be a dict with the keys {sorted(self.state_dict())}, "
                f"got {describe(state)}"
            )
        if state["monitor"] != self.monitor:
            raise ValueError(
                f"the saved early stopping monitored {state['monitor']!r}, this one "
                f"monitors {self.monitor!r}"
            )
        for name in ("best_epoch", "stopped_epoch", "wait"):
            check_number(state[name], f"state[{name!r}]", low=0, integer=True)
        if state["best_score"] is not None:
            check_number(state["best_score"], "state['best_score']")
        self.best_score = state["best_score"]
        self.best_epoch = state["best_epoch"]
        self.stopped_epoch = state["stopped_epoch"]
        self.wait = state["wait"]
        self.best_state = copy.deepcopy(state["best_state"])


# ---------------------------------------------------------------------------------------------
# The two backends: the same steps for torch and for numpy models
# ---------------------------------------------------------------------------------------------


def _is_torch(model) -> bool:
    if isinstance(model, torch.nn.Module):
        return True
    if isinstance(model, nn.Module):
        return False
    raise TypeError(
        f"model must be a torch.nn.Module or a dlhelpers.nn.Module, got {describe(model)}"
    )


def _backend(model) -> type:
    """The backend class for `model`: _TorchBackend or _NumpyBackend (TypeError otherwise)."""
    return _TorchBackend if _is_torch(model) else _NumpyBackend


def _prediction_kind(loss_fn) -> str | None:
    """How to read class predictions off the model output, from the loss; None: regression."""
    for kind, types in (
        ("argmax", _ARGMAX_LOSSES), ("probability", _PROBABILITY_LOSSES), ("logit", _LOGIT_LOSSES)
    ):
        if isinstance(loss_fn, types):
            return kind
    return None


def _check_output(output_shape, y: np.ndarray, kind: str | None, y_name: str) -> None:
    """Refuse outputs that the loss would silently broadcast or index out of range."""
    if kind == "argmax":
        if len(output_shape) != 2:
            raise ValueError(
                f"the model output must be class scores of shape (N, C) for {y_name} with "
                f"class labels, got shape {tuple(output_shape)}"
            )
        if y.min() < 0 or y.max() >= output_shape[1]:
            raise ValueError(
                f"{y_name} holds class labels from {y.min()} to {y.max()} but the model outputs "
                f"{output_shape[1]} scores per sample (labels 0 to {output_shape[1] - 1})"
            )
    elif tuple(output_shape) != y.shape:
        hint = ""
        if y.ndim == 1 and tuple(output_shape) == (len(y), 1):
            hint = f", e.g. {y_name}.reshape(-1, 1)"
        elif y.shape == (len(y), 1) and tuple(output_shape) == (len(y),):
            hint = f", e.g. {y_name}.ravel()"
        raise ValueError(
            f"the model output has shape {tuple(output_shape)} but the {y_name} batch has shape "
            f"{y.shape}: give {y_name} the output's shape{hint}"
        )


def _accuracy(output: np.ndarray, y: np.ndarray, kind: str) -> float:
    r"""Fraction of correct predictions.

    .. math:: \text{acc} = \frac{1}{n} \sum_i [\hat{c}^{(i)} = y^{(i)}]

    with :math:`\hat{c}` the argmax of the scores (several classes), or
    :math:`[\hat{y} > 0.5]` for probabilities and :math:`[z > 0]` for logits (two classes).
    """
    if kind == "argmax":
        return float(np.mean(output.argmax(axis=1) == y))  # (N, C) -> (N,)
    predicted = output > (0.5 if kind == "probability" else 0.0)  # same shape as y
    return float(np.mean(predicted == (y > 0.5)))


def _check_updates_model(model, optimizer_params) -> None:
    model_params = {id(p) for p in model.parameters()}
    if not any(id(p) in model_params for p in optimizer_params):
        raise ValueError(
            "optimizer must update the model's parameters, but it holds other parameters: "
            "create it with the model's parameters(), after building the model"
        )


class _TorchBackend:
    """fit's steps for a torch model: tensors in the model's dtype, autograd, torch.optim."""

    @staticmethod
    def check_optimizer(model, optimizer) -> None:
        """Raise unless `optimizer` is a torch.optim optimizer of `model`'s parameters."""
        if not isinstance(optimizer, torch.optim.Optimizer):
            raise TypeError(
                "optimizer must be a torch.optim optimizer for a torch model, "
                f"got {describe(optimizer)}"
            )
        _check_updates_model(model, [p for g in optimizer.param_groups for p in g["params"]])

    def __init__(self, model, optimizer, loss_fn):
        self.check_optimizer(model, optimizer)
        if isinstance(loss_fn, losses._Loss) or not callable(loss_fn):
            raise TypeError(
                "loss_fn must be a torch loss (e.g. torch.nn.BCELoss()) for a torch model, "
                f"got {describe(loss_fn)}"
            )
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn
        float_params = [p for p in model.parameters() if p.is_floating_point()]
        self.dtype = float_params[0].dtype if float_params else torch.get_default_dtype()

    def _tensors(self, X, y, labels: bool):
        X_t = torch.from_numpy(np.ascontiguousarray(X)).to(self.dtype)
        y_t = torch.from_numpy(np.ascontiguousarray(y)).to(torch.long if labels else self.dtype)
        return X_t, y_t

    def train_step(self, X, y, kind, y_name) -> None:
        X_t, y_t = self._tensors(X, y, kind == "argmax")
        self.optimizer.zero_grad()
        output = self.model(X_t)
        _check_output(output.shape, y, kind, y_name)
        self.loss_fn(output, y_t).backward()
        self.optimizer.step()

    def evaluate(self, X, y, kind, y_name) -> tuple[float, np.ndarray]:
        X_t, y_t = self._tensors(X, y, kind == "argmax")
        with torch.no_grad():
            output = self.model(X_t)
            _check_output(output.shape, y, kind, y_name)
            loss = float(self.loss_fn(output, y_t))
        return loss, output.numpy()

    def step_scheduler(self, scheduler, metric: float) -> None:
        if isinstance(scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        else:
            scheduler.step()


class _NumpyBackend:
    """fit's steps for a numpy model: forward, loss.backward(), model.backward, optimizer.step."""

    @staticmethod
    def check_optimizer(model, optimizer) -> None:
        """Raise unless `optimizer` is a dlhelpers.optim optimizer of `model`'s parameters."""
        if isinstance(optimizer, torch.optim.Optimizer) or not all(
            callable(getattr(optimizer, name, None)) for name in ("step", "zero_grad")
        ):
            raise TypeError(
                "optimizer must be a dlhelpers.optim optimizer (with step() and zero_grad()) "
                f"for a numpy model, got {describe(optimizer)}"
            )
        if getattr(optimizer, "params", None) is not None:
            _check_updates_model(model, optimizer.params)

    def __init__(self, model, optimizer, loss_fn):
        self.check_optimizer(model, optimizer)
        if isinstance(loss_fn, torch.nn.Module) or not all(
            callable(getattr(loss_fn, name, None)) for name in ("forward", "backward")
        ):
            raise TypeError(
                "loss_fn must be a dlhelpers.losses loss object (e.g. BCELoss()) for a numpy "
                f"model, got {describe(loss_fn)}"
            )
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn

    def train_step(self, X, y, kind, y_name) -> None:
        self.optimizer.zero_grad()
        output = self.model(X)
        _check_output(output.shape, y, kind, y_name)
        self.loss_fn.forward(output, y)
        # dJ/dy_hat, back through every layer; dJ/dX is not needed
        self.model.backward(self.loss_fn.backward(), input_grad=False)
        self.optimizer.step()

    def evaluate(self, X, y, kind, y_name) -> tuple[float, np.ndarray]:
        output = self.model(X)
        _check_output(output.shape, y, kind, y_name)
        return float(self.loss_fn.forward(output, y)), output

    def step_scheduler(self, scheduler, metric: float) -> None:
        scheduler.step()


# ---------------------------------------------------------------------------------------------
# fit
# ---------------------------------------------------------------------------------------------


def _shuffle_seed(rng) -> int:
    """The seed of the per-epoch shuffling generators: `rng` itself if it is a seed."""
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        return int(check_number(rng, "rng", low=0, integer=True))
    return int(as_rng(rng).integers(_SEED_LIMIT))


def fit(model, optimizer, loss_fn, X_train, y_train, *, epochs: int, batch_size: int = 32,
        X_val=None, y_val=None, rng=None, progress: bool = True, early_stopping=None,
        scheduler=None, checkpoint_path=None, history: History | None = None,
        start_epoch: int = 0) -> History:
    """Train `model` by mini-batch gradient descent for `epochs` epochs; return the History.

    Each epoch, in `model.train()` mode: for every mini-batch of `batch_size` samples
    (shuffled with a generator seeded by (seed, epoch)), compute the loss, backpropagate,
    `optimizer.step()`. Then, in `model.eval()` mode, measure loss and accuracy on the whole
    training set and on (X_val, y_val) if given; step `scheduler` (torch's ReduceLROnPlateau
    gets the val loss, or the train loss); update `early_stopping`; save a checkpoint to
    `checkpoint_path` if given. At the end, the model gets the best weights back when
    `early_stopping` is given, and its train/eval mode as before the call.

    Accuracy is reported for CrossEntropyLoss/NLLLoss (argmax of the scores), BCELoss
    (probability > 0.5) and BCEWithLogitsLoss (logit > 0), torch or dlhelpers; not for
    regression losses. Targets must have the output's shape ((N, 1) for an (N, 1) output) or
    be integer labels (N,) for the multi-class losses.

    To resume: `start_epoch` epochs are already done (`epochs` is the total), `history` is the
    history so far, and `rng` must be the same seed as before (a checkpoint written by `fit`
    stores it as `extra["seed"]`). See the module docstring.

    Shape: X_train (N, D), y_train (N,) labels or the output's shape; X_val, y_val likewise.

    >>> import torch
    >>> from dlhelpers.data import make_moons
    >>> X, y = make_moons(64, noise=0.1, rng=0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> opt = torch.optim.Adam(net.parameters(), lr=0.01)
    >>> h = fit(net, opt, torch.nn.CrossEntropyLoss(), X, y, epochs=3, rng=0, progress=False)
    >>> h.epochs
    [1, 2, 3]
    """
    backend = _backend(model)(model, optimizer, loss_fn)
    kind = _prediction_kind(loss_fn)
    X_train, y_train = _check_training_data(X_train, y_train, kind, "train")
    if (X_val is None) != (y_val is None):
        raise ValueError("X_val and y_val must be given together (or neither)")
    if X_val is not None:
        X_val, y_val = _check_training_data(X_val, y_val, kind, "val")
        if X_val.shape[1] != X_train.shape[1]:
            raise ValueError(
                f"X_val must have {X_train.shape[1]} columns like X_train, got {X_val.shape}"
            )
    check_number(epochs, "epochs", low=1, integer=True)
    check_number(start_epoch, "start_epoch", low=0, high=epochs, integer=True)
    check_number(batch_size, "batch_size", low=1, integer=True)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {describe(progress)}")
    history = _continued_history(history, start_epoch)
    _check_early_stopping(early_stopping, start_epoch, has_val=X_val is not None, kind=kind)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method, got {describe(scheduler)}")
    if checkpoint_path is not None:
        _check_directory(_checkpoint_path(checkpoint_path))
    seed = _shuffle_seed(rng)

    was_training = model.training
    bar = tqdm(range(start_epoch + 1, epochs + 1), total=epochs, initial=start_epoch,
               disable=not progress, desc="training", unit="epoch")
    try:
        for epoch in bar:
            if early_stopping is not None and early_stopping.stopped_epoch:
                break  # resumed from a checkpoint written when early stopping fired
            model.train()
            epoch_rng = np.random.default_rng([seed, epoch])
            for X_batch, y_batch in batches(X_train, y_train, batch_size, rng=epoch_rng):
                backend.train_step(X_batch, y_batch, kind, "y_train")
            model.eval()
            scores = _measure(backend, kind, epoch, history, X_train, y_train, X_val, y_val)
            bar.set_postfix({name: f"{value:.4f}" for name, value in scores.items()})
            if scheduler is not None:
                backend.step_scheduler(scheduler, scores.get("val_loss", scores["train_loss"]))
            stop = early_stopping is not None and early_stopping.step(
                scores[early_stopping.monitor], model, epoch
            )
            if checkpoint_path is not None:
                save_checkpoint(checkpoint_path, model, optimizer, epoch=epoch, history=history,
                                scheduler=scheduler, early_stopping=early_stopping, seed=seed)
            if stop:
                break
    finally:
        bar.close()
        model.train(was_training)
    if early_stopping is not None and early_stopping.best_state is not None:
        early_stopping.restore_best(model)
    return history


def _check_training_data(X, y, kind, part):
    X, y = _check_features_and_targets(X, y, f"y_{part}")  # finite numbers, one per row of X
    if kind == "argmax":
        y = as_label_array(y, f"y_{part}")
    elif y.dtype == bool:
        raise TypeError(f"y_{part} must hold numbers, got dtype {y.dtype}")
    return X, y


def _continued_history(history, start_epoch: int) -> History:
    """A copy of `history` (never changed in place) that must end at `start_epoch`."""
    if history is None:
        return History()
    if not isinstance(history, History):
        raise TypeError(f"history must be a History or None, got {describe(history)}")
    last = history.epochs[-1] if history.epochs else 0
    if last != start_epoch:
        raise ValueError(
            f"history ends at epoch {last} but start_epoch is {start_epoch}; resume with "
            "start_epoch=checkpoint['epoch'] and history=checkpoint['history']"
        )
    return History.from_dict(history.to_dict())


def _check_early_stopping(early_stopping, start_epoch: int, *, has_val: bool, kind) -> None:
    if early_stopping is None:
        return
    if not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {describe(early_stopping)}")
    if early_stopping.monitor.startswith("val") and not has_val:
        raise ValueError(
            f"early_stopping monitors {early_stopping.monitor!r}: pass X_val and y_val"
        )
    if early_stopping.monitor.endswith("acc") and kind is None:
        raise ValueError(
            f"early_stopping monitors {early_stopping.monitor!r}, but this loss has no accuracy"
        )
    if start_epoch == 0 and early_stopping.best_epoch:
        raise ValueError(
            "early_stopping has already been used (best_epoch "
            f"{early_stopping.best_epoch}); create a new EarlyStopping for a new run"
        )


def _measure(backend, kind, epoch, history, X_train, y_train, X_val, y_val) -> dict:
    """Evaluate on the training (and validation) set, append to history, return the scores."""
    scores = {}
    parts = [("train", X_train, y_train)] + ([("val", X_val, y_val)] if X_val is not None else [])
    for part, X, y in parts:
        loss, output = backend.evaluate(X, y, kind, f"y_{part}")
        scores[f"{part}_loss"] = loss
        if kind is not None:
            scores[f"{part}_acc"] = _accuracy(output, y, kind)
    history.epochs.append(epoch)
    for name, value in scores.items():
        getattr(history, name).append(value)
    return scores


# ---------------------------------------------------------------------------------------------
# Checkpoints
# ---------------------------------------------------------------------------------------------


def save_checkpoint(path, model, optimizer=None, epoch: int = 0, history: History | None = None,
                    *, scheduler=None, early_stopping: EarlyStopping | None = None,
                    **extra) -> Path:
    """Save everything needed to resume training to `path`, atomically; return the path.

    The checkpoint holds the model's weights, the optimizer's state (Adam's moments, ...), the
    scheduler's and early stopping's state if given, the epoch, the history, the random state
    of the model's randomness (numpy Dropout generators, or torch's global generator) and any
    `extra` keyword values (numbers, strings, lists, dicts, arrays/tensors), under a format
    version. Torch models are saved with `torch.save`, numpy models with `np.savez` (no pickle).
    The optimizer must be one of the model's kind (torch.optim for a torch model,
    dlhelpers.optim for a numpy model) and update its parameters, else TypeError/ValueError.

    The file is written to a temporary file in the same directory, flushed and fsync'ed, then
    renamed over `path` (`os.replace`, atomic): a crash leaves the old or the new checkpoint,
    never a broken one. It gets the mode of any new file (0o666 minus the umask). Temporary
    files left by a crashed earlier save are removed.

    >>> import tempfile, os
    >>> net = nn.Sequential(nn.Dense(2, 1, rng=0))
    >>> path = save_checkpoint(os.path.join(tempfile.mkdtemp(), "ckpt.npz"), net, epoch=3)
    >>> load_checkpoint(path, net)["epoch"]
    3
    """
    path = _checkpoint_path(path)
    torch_model = _is_torch(model)
    if optimizer is not None:
        _backend(model).check_optimizer(model, optimizer)
    check_number(epoch, "epoch", low=0, integer=True)
    if history is not None and not isinstance(history, History):
        raise TypeError(f"history must be a History or None, got {describe(history)}")
    if early_stopping is not None and not isinstance(early_stopping, EarlyStopping):
        raise TypeError(f"early_stopping must be an EarlyStopping, got {describe(early_stopping)}")
    _check_directory(path)
    content = {
        "format": CHECKPOINT_FORMAT,
        "version": CHECKPOINT_VERSION,
        "backend": "torch" if torch_model else "numpy",
        "epoch": int(epoch),
        "history": None if history is None else history.to_dict(),
        "model": model.state_dict(),
        "optimizer": None if optimizer is None else optimizer.state_dict(),
        "scheduler": None if scheduler is None else scheduler.state_dict(),
        "early_stopping": None if early_stopping is None else early_stopping.state_dict(),
        "rng": _rng_state(model),
        "extra": _plain(extra, "extra", torch_model),
    }
    if torch_model:
        _atomic_write(path, lambda file: torch.save(content, file))
    else:
        arrays = {}
        meta = json.dumps(_encode(content, "", arrays)).encode()
        arrays["meta"] = np.frombuffer(meta, dtype=np.uint8)
        _atomic_write(path, lambda file: np.savez(file, **arrays))
    return path


def load_checkpoint(path, model, optimizer=None, *, scheduler=None,
                    early_stopping: EarlyStopping | None = None,
                    restore_rng: bool = True) -> dict:
    """Load a checkpoint of `save_checkpoint` into `model` (and optimizer, scheduler, ...).

    Returns {"epoch": int, "history": History or None, "extra": dict}. With
    `restore_rng=True` the model's random state is restored too (numpy Dropout generators, or
    torch's global generator), so training continues exactly as it would have.

    Torch checkpoints are read with `torch.load(weights_only=True)` and numpy ones with
    `np.load(allow_pickle=False)`: a file that would run code when loaded is refused. Either
    everything loads or nothing changes.

    Raises FileNotFoundError for a missing file, TypeError for an optimizer of the other kind
    of model (as `save_checkpoint`), and ValueError, saying what is wrong, for a truncated,
    corrupt or foreign file or a checkpoint of a different model.
    """
    path = _checkpoint_path(path)
    torch_model = _is_torch(model)
    if optimizer is not None:
        _backend(model).check_optimizer(model, optimizer)
    if not isinstance(restore_rng, bool):
        raise TypeError(f"restore_rng must be True or False, got {describe(restore_rng)}")
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint file at {path}")
    content = _read_torch(path) if torch_model else _read_numpy(path)
    _check_content(content, path, "torch" if torch_model else "numpy")
    parts = [(model, "model"), (optimizer, "optimizer"), (scheduler, "scheduler"),
             (early_stopping, "early_stopping")]
    parts = [(target, name) for target, name in parts if target is not None]
    for _, name in parts:
        if content[name] is None:
            raise ValueError(f"checkpoint {path} has no {name} state to load")
    try:
        history = None if content["history"] is None else History.from_dict(content["history"])
    except ValueError as error:
        raise ValueError(f"checkpoint {path} has a broken history: {error}") from error
    # Load all or nothing: keep the current states, the random state too (the generators are
    # set one by one), to put back if any part does not fit.
    backups = [(target, copy.deepcopy(target.state_dict())) for target, _ in parts]
    rng_backup = _rng_state(model)
    try:
        for target, name in parts:
            target.load_state_dict(copy.deepcopy(content[name]))
        if restore_rng:
            _restore_rng(model, content["rng"])
    except BaseException as error:
        for target, state in backups:
            target.load_state_dict(state)
        _restore_rng(model, rng_backup)
        if isinstance(error, (ValueError, TypeError, KeyError, RuntimeError, IndexError,
                              OverflowError)):
            raise ValueError(f"checkpoint {path} does not fit: {error}") from error
        raise
    return {"epoch": content["epoch"], "history": history, "extra": content["extra"]}


def _checkpoint_path(path) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or a pathlib.Path, got {describe(path)}")
    return Path(path)


def _check_directory(path: Path) -> None:
    if not path.parent.is_dir():
        raise FileNotFoundError(f"the directory of checkpoint path {path} does not exist")


def _plain(value, name: str, torch_model: bool):
    """`value` if a checkpoint can store it safely (no pickled objects), else TypeError."""
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, (str, int)):
                raise TypeError(f"{name} keys must be strings or integers, got {key!r}")
            _plain(item, f"{name}[{key!r}]", torch_model)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _plain(item, f"{name}[{i}]", torch_model)
    elif not isinstance(value, (str, int, float, bool, type(None))):
        array_type = torch.Tensor if torch_model else np.ndarray
        if not isinstance(value, array_type):
            raise TypeError(
                f"{name} must be a number, string, list, dict or {array_type.__name__} "
                f"to be stored in a checkpoint, got {describe(value)}"
            )
    return value


def _atomic_write(path: Path, write) -> None:
    """Write with `write(file)` to a temporary file beside `path`, fsync, rename onto `path`.

    The file gets the mode a plain `open(path, "w")` would give it (0o666 minus the umask).
    """
    file = tempfile.NamedTemporaryFile(
        dir=path.parent, prefix=f".{path.name}.", suffix=".tmp", delete=False
    )
    try:
        # NamedTemporaryFile creates mode 0600; give the checkpoint the mode of any new file.
        os.chmod(file.name, 0o666 & ~_umask())
        with file:
            write(file)
            file.flush()
            os.fsync(file.fileno())  # the bytes are on disk before the rename makes them visible
        os.replace(file.name, path)  # atomic: readers see the old file or the new one
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(file.name)
        raise
    if hasattr(os, "O_DIRECTORY"):  # make the rename itself durable (POSIX)
        directory = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
    _remove_stale_temporaries(path)


def _umask() -> int:
    """The process umask. Reading it means setting it: os.umask returns the old value."""
    umask = os.umask(0o077)  # for that moment the strictest mask, should a thread create a file
    os.umask(umask)
    return umask


def _remove_stale_temporaries(path: Path) -> None:
    """Delete temporary files of earlier saves to `path` that a crash left behind."""
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]+\.tmp")
    for leftover in path.parent.iterdir():
        if pattern.fullmatch(leftover.name):
            with contextlib.suppress(FileNotFoundError):
                leftover.unlink()


def _describe_archive(path: Path) -> str:
    """What kind of file `path` is: 'torch', 'numpy', or raise ValueError for anything else."""
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path} is not a dlhelpers checkpoint: it is not a complete zip archive "
            "(the file is truncated or corrupted, or was not written by save_checkpoint)"
        )
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
            damaged = archive.testzip()  # reads every entry and checks its CRC-32 checksum
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as error:
        raise ValueError(f"{path} is a corrupted zip archive: {error}") from error
    if damaged is not None:
        raise ValueError(f"{path} is corrupted: entry {damaged!r} fails its checksum")
    if "meta.npy" in names:
        return "numpy"
    if any(name.endswith("/data.pkl") for name in names):
        return "torch"
    raise ValueError(f"{path} is a zip archive but not a dlhelpers checkpoint")


def _wrong_backend(path: Path, found: str, wanted: str) -> ValueError:
    kinds = {"torch": "a torch model", "numpy": "a numpy (dlhelpers.nn) model"}
    return ValueError(
        f"{path} is a checkpoint of {kinds[found]}, but the model to load into is {kinds[wanted]}"
    )


def _read_torch(path: Path):
    found = _describe_archive(path)
    if found != "torch":
        raise _wrong_backend(path, found, "torch")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        raise ValueError(
            f"{path} was refused: it holds objects that only arbitrary code could rebuild, "
            f"and checkpoints are loaded with weights_only=True ({error})"
        ) from error
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path} could not be read, it is corrupted: {error}") from error


def _read_numpy(path: Path):
    found = _describe_archive(path)
    if found != "numpy":
        raise _wrong_backend(path, found, "numpy")
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {name: archive[name] for name in archive.files}
        meta = json.loads(arrays.pop("meta").tobytes().decode())
        return _decode(meta, arrays)
    except (ValueError, KeyError, TypeError, OSError, EOFError, zipfile.BadZipFile,
            UnicodeDecodeError) as error:
        raise ValueError(f"{path} could not be read, it is corrupted: {error}") from error


def _check_content(content, path: Path, backend: str) -> None:
    if not isinstance(content, dict) or content.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a dlhelpers checkpoint (no {CHECKPOINT_FORMAT!r} tag)")
    if content.get("version") != CHECKPOINT_VERSION:
        raise ValueError(
            f"{path} has checkpoint format version {content.get('version')!r}; this version "
            f"of dlhelpers reads version {CHECKPOINT_VERSION}"
        )
    keys = {"format", "version", "backend", "epoch", "history", "model", "optimizer",
            "scheduler", "early_stopping", "rng", "extra"}
    if set(content) != keys:
        raise ValueError(f"{path} is a damaged checkpoint: keys {sorted(content)}")
    if content["backend"] != backend:
        raise _wrong_backend(path, content["backend"], backend)
    epoch = content["epoch"]
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ValueError(f"{path} is a damaged checkpoint: epoch {epoch!r}")


# Random state of the model: numpy generators inside modules, or torch's global generator.


def _generators(module, prefix: str = "") -> dict[str, np.random.Generator]:
    """Every numpy Generator held by `module` or its sub-modules, by attribute path."""
    found = {}
    for name, value in vars(module).items():
        items = value if isinstance(value, (list, tuple)) else [value]
        for i, item in enumerate(items):
            where = f"{prefix}{name}" + (f".{i}" if items is value else "")
            if isinstance(item, np.random.Generator):
                found[where] = item
            elif isinstance(item, nn.Module):
                found.update(_generators(item, where + "."))
    return found


def _rng_state(model):
    """torch's global generator state (torch model), or the states of the model's generators."""
    if isinstance(model, torch.nn.Module):
        return torch.get_rng_state()
    return {where: gen.bit_generator.state for where, gen in _generators(model).items()}


def _restore_rng(model, saved) -> None:
    if isinstance(model, torch.nn.Module):
        if not isinstance(saved, torch.Tensor) or saved.dtype != torch.uint8:
            raise ValueError(f"the saved torch random state is damaged: {describe(saved)}")
        torch.set_rng_state(saved)
        return
    generators = _generators(model)
    if not isinstance(saved, dict) or set(saved) != set(generators):
        found = sorted(saved) if isinstance(saved, dict) else describe(saved)
        raise ValueError(
            f"the checkpoint has random generators at {found}, the model at {sorted(generators)}"
        )
    for where, generator in generators.items():
        generator.bit_generator.state = saved[where]


# Numpy checkpoints: arrays go into the .npz under their path, everything else into JSON.


def _encode(value, key: str, arrays: dict):
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            raise TypeError(f"cannot store an object array at {key!r} without pickle")
        if key in arrays:
            raise ValueError(f"two arrays would be stored under the same name {key!r}")
        arrays[key] = value
        return {"__array__": key}
    if isinstance(value, dict):
        return {"__dict__": [[k, _encode(v, f"{key}/{k}".lstrip("/"), arrays)]
                             for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_encode(v, f"{key}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (str, int, float, bool, type(None))):
        return value
    raise TypeError(f"cannot store {describe(value)} at {key!r} in a numpy checkpoint")


def _decode(value, arrays: dict):
    if isinstance(value, list):
        return [_decode(v, arrays) for v in value]
    if isinstance(value, dict):
        (tag, inner), = value.items()  # every encoded dict has exactly one tag
        if tag == "__array__":
            return arrays[inner]
        if tag == "__tuple__":
            return tuple(_decode(v, arrays) for v in inner)
        if tag == "__dict__":
            return {k: _decode(v, arrays) for k, v in inner}
        raise ValueError(f"unknown tag {tag!r} in the checkpoint's metadata")
    return value
