r"""Training: a loop with a progress bar, a history, early stopping and resumable checkpoints.

Introduced in `07_optimization_learning_rate.ipynb` (`fit`, comparing optimizers), with early
stopping and checkpoints in `08_regularization.ipynb`, and used for the real data of
`09_capstone_digits.ipynb`. One `fit` trains either kind of model of the course:

- a torch `nn.Module` with a `torch.optim` optimizer and a torch loss (numpy arrays in);
- a numpy `dlhelpers.nn` model with a `dlhelpers.optim` optimizer and a `dlhelpers.losses`
  loss object (`forward(y_hat, y)`, then `backward()`).

torch is imported only when a torch model is trained: numpy users never load it.

Each epoch runs the mini-batch gradient descent of `05_gradient_descent.ipynb`,

.. math:: W \leftarrow W - \eta \frac{\partial J_{\text{batch}}}{\partial W}
          \quad\text{for every mini-batch},

then measures the loss (and accuracy, for classification) on the whole training and
validation sets in evaluation mode, so both curves are measured the same way (dropout off).

A run that diverges stops at once, the same way for both kinds of model: the first loss
that is inf or NaN (of a mini-batch, or of the training or validation set after an epoch)
raises `DivergenceError`, after the model got back finite weights (see `fit`).

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

The checkpoint file format (`save_checkpoint`, `load_checkpoint`, written atomically) lives
in `dlhelpers.checkpoint`; its names are importable from here too.
"""

from __future__ import annotations

import copy
import math
import numbers
import sys
from dataclasses import dataclass, field, fields

import numpy as np
from tqdm.auto import tqdm

from dlhelpers import losses, nn
from dlhelpers.data import _check_features_and_targets, batches
from dlhelpers.seeding import as_rng
from dlhelpers.validation import as_label_array, check_number, describe

# Seeds of the per-epoch shuffling generators are drawn from [0, 2**63).
_SEED_LIMIT = 2**63
# What fit measures after each epoch, by the prefix of the History's lists.
_PART_NAMES = {"train": "training", "val": "validation"}
# The checkpoint format's public names, importable from here (see __getattr__ at the end).
_CHECKPOINT_NAMES = ("CHECKPOINT_FORMAT", "CHECKPOINT_VERSION", "load_checkpoint",
                     "save_checkpoint")


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




class DivergenceError(FloatingPointError):
    """Training diverged: a loss became inf or NaN. Raised by `fit` (introduced in
    `07_optimization_learning_rate.ipynb`), the same way for both kinds of model.

    A FloatingPointError, Python's error for floating-point arithmetic gone wrong (numpy raises
    it too, under `np.errstate(all="raise")`), not a ValueError: no argument was wrong, the
    numbers ran away, usually because the learning rate is too large for the data's scale.

    Before it is raised the model gets finite weights back, and the message says which:
    early stopping's best weights when it holds some, otherwise those of the last epoch whose
    losses were all finite (epoch 0: the weights `fit` started with). The message names the
    epoch, the mini-batch, the learning rate and the usual cures. Attributes:

    - `epoch`: the epoch that diverged; `batch`: its mini-batch (1, 2, ...), or None when the
      first non-finite loss was that of the whole training or validation set, `part`
      ("train" or "val"), measured after the epoch;
    - `loss`: that loss, inf or NaN (NaN also when the model's output held inf or NaN);
    - `lr`: the learning rate at that moment, one per parameter group (a list);
    - `history`: the History of the finite epochs, as `fit` would have returned it;
    - `restored`: "best" (early stopping's) or "last" (the last finite epoch's), and
      `restored_epoch`, the epoch whose weights the model holds now.
    """

    # Defaults only so that a pickled error (from another process) can be rebuilt.
    def __init__(self, message: str, *, epoch: int = 0, batch: int | None = None,
                 part: str = "train", loss: float = math.nan, lr: list[float] | None = None,
                 history: History | None = None, restored: str = "last",
                 restored_epoch: int = 0):
        super().__init__(message)
        self.epoch, self.batch, self.part, self.loss, self.lr = epoch, batch, part, loss, lr
        self.history, self.restored, self.restored_epoch = history, restored, restored_epoch


# ---------------------------------------------------------------------------------------------
# The two backends: the same steps for torch and for numpy models
# ---------------------------------------------------------------------------------------------


def _torch():
    """The torch module, imported only when a torch model is used."""
    import torch

    return torch


def _loaded_torch():
    """torch if it has been imported, else None: a torch model, loss or optimizer can only
    exist once it has, so looking for one needs no import."""
    return sys.modules.get("torch")


def _is_torch(model) -> bool:
    torch = _loaded_torch()
    if torch is not None and isinstance(model, torch.nn.Module):
        return True
    if isinstance(model, nn.Module):
        return False
    raise TypeError(
        f"model must be a torch.nn.Module or a dlhelpers.nn.Module, got {describe(model)}"
    )


def _backend(model) -> type:
    """The backend class for `model`: _TorchBackend or _NumpyBackend (TypeError otherwise)."""
    return _TorchBackend if _is_torch(model) else _NumpyBackend


def _check_optimizer(model, optimizer) -> None:
    """Raise unless `optimizer` is of `model`'s kind (torch.optim or dlhelpers.optim) and
    updates its parameters."""
    _backend(model).check_optimizer(model, optimizer)


def _prediction_kind(loss_fn) -> str | None:
    """How to read class predictions off the model output, from the loss; None: regression.

    "argmax" (CrossEntropyLoss, NLLLoss), "probability" (BCELoss), "logit" (BCEWithLogitsLoss).
    """
    kinds = [("argmax", losses.CrossEntropyLoss), ("probability", losses.BCELoss)]
    torch = _loaded_torch()
    if torch is not None:
        kinds += [("argmax", (torch.nn.CrossEntropyLoss, torch.nn.NLLLoss)),
                  ("probability", torch.nn.BCELoss), ("logit", torch.nn.BCEWithLogitsLoss)]
    for kind, types in kinds:
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



def _is_torch_object(value) -> bool:
    """A torch optimizer or module (a loss, a model), found without importing torch."""
    torch = _loaded_torch()
    return torch is not None and isinstance(value, (torch.optim.Optimizer, torch.nn.Module))


def _check_probabilities(low: float, high: float, torch_model: bool) -> None:
    """BCELoss takes probabilities: a model without a final Sigmoid gives raw scores."""
    if low < 0 or high > 1:
        fix = ("end the model with torch.nn.Sigmoid(), or give the raw outputs to "
               "torch.nn.BCEWithLogitsLoss()" if torch_model
               else "end the model with dlhelpers.nn.Sigmoid()")
        raise ValueError(
            f"BCELoss needs probabilities in [0, 1] from the model, but its outputs range from "
            f"{low:.3g} to {high:.3g}: {fix}"
        )


class _TorchBackend:
    """fit's steps for a torch model: tensors in the model's dtype, autograd, torch.optim."""

    @staticmethod
    def check_optimizer(model, optimizer) -> None:
        """Raise unless `optimizer` is a torch.optim optimizer of `model`'s parameters."""
        if not isinstance(optimizer, _torch().optim.Optimizer):
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
        self.torch = _torch()
        float_params = [p for p in model.parameters() if p.is_floating_point()]
        self.dtype = float_params[0].dtype if float_params else self.torch.get_default_dtype()

    def check_batch_size(self, n_samples: int, batch_size: int, drop_last: bool) -> None:
        """BatchNorm1d cannot normalize a single sample in training mode: say so before
        training, instead of torch's error in the middle of it."""
        if not any(isinstance(m, self.torch.nn.BatchNorm1d) for m in self.model.modules()):
            return
        if batch_size == 1:
            raise ValueError(
                "batch_size must be at least 2 for a model with BatchNorm1d, which cannot "
                "normalize a single sample in training mode, got 1"
            )
        if n_samples % batch_size == 1 and not drop_last:
            raise ValueError(
                f"the last mini-batch of every epoch would hold 1 sample ({n_samples} samples, "
                f"batch_size {batch_size}), which BatchNorm1d cannot normalize in training "
                "mode: pass drop_last=True to leave it out, or change batch_size"
            )

    def learning_rates(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def _tensors(self, X, y, labels: bool):
        X_t = self.torch.from_numpy(np.ascontiguousarray(X)).to(self.dtype)
        y_t = self.torch.from_numpy(np.ascontiguousarray(y))
        return X_t, y_t.to(self.torch.long if labels else self.dtype)

    def _loss(self, output, y_t, y, kind, y_name):
        """The loss tensor of `output`, or None if the output holds inf or NaN."""
        _check_output(output.shape, y, kind, y_name)
        if not bool(self.torch.isfinite(output).all()):
            return None
        if kind == "probability":
            _check_probabilities(output.min().item(), output.max().item(), torch_model=True)
        return self.loss_fn(output, y_t)

    def train_step(self, X, y, kind, y_name) -> float:
        """One gradient step on the batch; return its loss. A non-finite loss: no step."""
        X_t, y_t = self._tensors(X, y, kind == "argmax")
        self.optimizer.zero_grad()
        loss = self._loss(self.model(X_t), y_t, y, kind, y_name)
        value = math.nan if loss is None else loss.item()
        if math.isfinite(value):
            loss.backward()
            self.optimizer.step()
        return value

    def evaluate(self, X, y, kind, y_name) -> tuple[float, np.ndarray]:
        """The loss on (X, y) and the model's output."""
        X_t, y_t = self._tensors(X, y, kind == "argmax")
        with self.torch.no_grad():
            output = self.model(X_t)
            loss = self._loss(output, y_t, y, kind, y_name)
        return (math.nan if loss is None else float(loss)), output.numpy()

    def step_scheduler(self, scheduler, metric: float) -> None:
        if isinstance(scheduler, self.torch.optim.lr_scheduler.ReduceLROnPlateau):
            scheduler.step(metric)
        else:
            scheduler.step()


class _NumpyBackend:
    """fit's steps for a numpy model: forward, loss.backward(), model.backward, optimizer.step.

    Values that overflow float64 while a run diverges become inf or NaN, which the loss
    reports (as torch's do), instead of numpy's warnings and the model's overflow error.
    """

    @staticmethod
    def check_optimizer(model, optimizer) -> None:
        """Raise unless `optimizer` is a dlhelpers.optim optimizer of `model`'s parameters."""
        if _is_torch_object(optimizer) or not all(
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
        if _is_torch_object(loss_fn) or not all(
            callable(getattr(loss_fn, name, None)) for name in ("forward", "backward")
        ):
            raise TypeError(
                "loss_fn must be a dlhelpers.losses loss object (e.g. BCELoss()) for a numpy "
                f"model, got {describe(loss_fn)}"
            )
        self.model, self.optimizer, self.loss_fn = model, optimizer, loss_fn

    def check_batch_size(self, n_samples: int, batch_size: int, drop_last: bool) -> None:
        """dlhelpers.nn has no batch normalization: every batch size works."""

    def learning_rates(self) -> list[float]:
        lr = getattr(self.optimizer, "lr", None)
        return [] if lr is None else [float(lr)]

    def _output_and_loss(self, X, y, kind, y_name) -> tuple[np.ndarray, float]:
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow: a non-finite loss
            # `_forward` is `forward` without its overflow check: fit reports it instead.
            output = self.model._forward(X)
            _check_output(output.shape, y, kind, y_name)
            if not np.isfinite(output).all():
                return output, math.nan
            if kind == "probability":
                _check_probabilities(output.min(), output.max(), torch_model=False)
            try:
                return output, float(self.loss_fn.forward(output, y))
            except ValueError:
                # For finite outputs and targets of the same shape, MSELoss raises only when
                # the loss overflows float64: the inf that torch would return.
                if isinstance(self.loss_fn, losses.MSELoss):
                    return output, math.inf
                raise

    def train_step(self, X, y, kind, y_name) -> float:
        """One gradient step on the batch; return its loss. A non-finite loss: no step."""
        self.optimizer.zero_grad()
        _, loss = self._output_and_loss(X, y, kind, y_name)
        if math.isfinite(loss):
            with np.errstate(over="ignore", invalid="ignore"):  # the next loss reports it
                # dJ/dy_hat, back through every layer; dJ/dX is not needed
                self.model.backward(self.loss_fn.backward(), input_grad=False)
                self.optimizer.step()
        return loss

    def evaluate(self, X, y, kind, y_name) -> tuple[float, np.ndarray]:
        """The loss on (X, y) and the model's output."""
        output, loss = self._output_and_loss(X, y, kind, y_name)
        return loss, output

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
        drop_last: bool = False, X_val=None, y_val=None, rng=None, progress: bool = True,
        early_stopping=None, scheduler=None, checkpoint_path=None,
        history: History | None = None, start_epoch: int = 0) -> History:
    """Train `model` by mini-batch gradient descent for `epochs` epochs; return the History.

    Each epoch, in `model.train()` mode: for every mini-batch of `batch_size` samples
    (shuffled with a generator seeded by (seed, epoch)), compute the loss, backpropagate,
    `optimizer.step()`. Then, in `model.eval()` mode, measure loss and accuracy on the whole
    training set and on (X_val, y_val) if given; step `scheduler` (torch's ReduceLROnPlateau
    gets the val loss, or the train loss); update `early_stopping`; save a checkpoint to
    `checkpoint_path` if given. At the end, the model gets the best weights back when
    `early_stopping` is given, and its train/eval mode as before the call.

    `drop_last=True` leaves out the last mini-batch of every epoch when it is smaller than
    `batch_size`, as torch's `DataLoader(drop_last=True)` (the shuffling changes which samples
    that is). A torch model with `BatchNorm1d` needs it when one sample would be left over:
    BatchNorm cannot normalize a single sample in training mode, and fit says so up front.

    A diverging run fails loudly, the same way for torch and numpy models: the first loss that
    is inf or NaN (of a mini-batch, before its step; or of the training or validation set after
    an epoch, whichever score early stopping watches) raises `DivergenceError`, a
    FloatingPointError naming the epoch, the mini-batch, the learning rate and the usual
    cures. Before that, the model gets early stopping's best weights back if it holds some,
    otherwise the weights of the last epoch whose losses were all finite (those `fit` started
    with if there is none); the error says which. Nothing of the diverged epoch is recorded or
    saved: `error.history` holds the finite epochs and the checkpoint keeps the last of them.
    The optimizer's state (momentum, Adam's moments) is not restored: train on with a new one.

    Accuracy is reported for CrossEntropyLoss/NLLLoss (argmax of the scores), BCELoss
    (probability > 0.5) and BCEWithLogitsLoss (logit > 0), torch or dlhelpers; not for
    regression losses. Targets must have the output's shape ((N, 1) for an (N, 1) output) or
    be integer labels (N,) for the multi-class losses; binary cross-entropy targets lie in
    [0, 1]. Errors say the fix where it is clear (`y_train.astype(float)` for boolean targets).

    To resume: `start_epoch` epochs are already done (`epochs` is the total), `history` is the
    history so far, and `rng` must be the same seed as before (a checkpoint written by `fit`
    stores it as `extra["seed"]`). See the module docstring.

    Shape: X_train (N, D), y_train (N,) labels or the output's shape; X_val, y_val likewise.

    Raises TypeError or ValueError for a bad argument (naming it), DivergenceError (a
    FloatingPointError) when the loss becomes inf or NaN.

    >>> import torch
    >>> from dlhelpers.data import make_moons
    >>> X, y = make_moons(64, noise=0.1, rng=0)
    >>> net = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    >>> opt = torch.optim.Adam(net.parameters(), lr=0.01)
    >>> h = fit(net, opt, torch.nn.CrossEntropyLoss(), X, y, epochs=3, rng=0, progress=False)
    >>> h.epochs
    [1, 2, 3]
    """
    from dlhelpers import checkpoint  # it builds on History and EarlyStopping, defined here

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
    n_batches = _count_batches(len(X_train), batch_size, drop_last)
    backend.check_batch_size(len(X_train), batch_size, drop_last)
    if not isinstance(progress, bool):
        raise TypeError(f"progress must be True or False, got {describe(progress)}")
    history = _continued_history(history, start_epoch)
    _check_early_stopping(early_stopping, start_epoch, has_val=X_val is not None, kind=kind)
    if scheduler is not None and not callable(getattr(scheduler, "step", None)):
        raise TypeError(f"scheduler must have a step() method, got {describe(scheduler)}")
    if checkpoint_path is not None:
        checkpoint._check_directory(checkpoint._checkpoint_path(checkpoint_path))
    seed = _shuffle_seed(rng)

    fallback = _Fallback(model, early_stopping, start_epoch)
    was_training = model.training
    bar = tqdm(range(start_epoch + 1, epochs + 1), total=epochs, initial=start_epoch,
               disable=not progress, desc="training", unit="epoch")

    def diverged(loss: float, epoch: int, batch: int | None, part: str) -> DivergenceError:
        """Put finite weights back; the error that says so."""
        restored, restored_epoch = fallback.restore()
        lr = backend.learning_rates()
        where = (f"mini-batch {batch} of {n_batches}" if batch is not None else
                 f"the whole {_PART_NAMES[part]} set measured after the epoch")
        message = _divergence_message(
            f"{where}: the loss is {loss}", epoch, lr, history, restored, restored_epoch,
            early_stopping, checkpoint_path, fallback.saved_epoch)
        return DivergenceError(message, epoch=epoch, batch=batch, part=part, loss=loss, lr=lr,
                               history=history, restored=restored,
                               restored_epoch=restored_epoch)

    try:
        for epoch in bar:
            if early_stopping is not None and early_stopping.stopped_epoch:
                break  # resumed from a checkpoint written when early stopping fired
            model.train()
            epoch_rng = np.random.default_rng([seed, epoch])
            mini_batches = batches(X_train, y_train, batch_size, rng=epoch_rng,
                                   drop_last=drop_last)
            for batch, (X_batch, y_batch) in enumerate(mini_batches, start=1):
                loss = backend.train_step(X_batch, y_batch, kind, "y_train")
                if not math.isfinite(loss):
                    raise diverged(loss, epoch, batch, "train")
            model.eval()
            scores = _measure(backend, kind, X_train, y_train, X_val, y_val)
            for part in _PART_NAMES:
                loss = scores.get(f"{part}_loss", 0.0)
                if not math.isfinite(loss):
                    raise diverged(loss, epoch, None, part)
            _record(history, epoch, scores)
            fallback.finite_epoch(epoch)
            bar.set_postfix({name: f"{value:.4f}" for name, value in scores.items()})
            if scheduler is not None:
                backend.step_scheduler(scheduler, scores.get("val_loss", scores["train_loss"]))
            stop = early_stopping is not None and early_stopping.step(
                scores[early_stopping.monitor], model, epoch
            )
            if checkpoint_path is not None:
                checkpoint.save_checkpoint(
                    checkpoint_path, model, optimizer, epoch=epoch, history=history,
                    scheduler=scheduler, early_stopping=early_stopping, seed=seed)
                fallback.saved_epoch = epoch
            if stop:
                break
    finally:
        bar.close()
        model.train(was_training)
    if early_stopping is not None and early_stopping.best_state is not None:
        early_stopping.restore_best(model)
    return history


def _check_training_data(X, y, kind, part):
    """X and y checked and converted for `kind` of loss; errors name y_{part} and the fix."""
    name = f"y_{part}"
    X, y = _check_features_and_targets(X, y, name)  # finite numbers, one per row of X
    if y.dtype == bool:
        fix = f"{name}.astype(int), labels 0 and 1" if kind == "argmax" else f"{name}.astype(float)"
        raise TypeError(f"{name} must hold numbers, got dtype bool: convert it with {fix}")
    if kind == "argmax":
        if y.shape == (len(y), 1):
            raise ValueError(
                f"{name} must be class labels of shape (N,) for this loss, got shape {y.shape}: "
                f"use {name}.ravel()"
            )
        y = as_label_array(y, name)
    elif kind is not None and (y.min() < 0 or y.max() > 1):
        raise ValueError(
            f"{name} must hold targets in [0, 1] (0 or 1 for two classes) for binary "
            f"cross-entropy, got values from {y.min():.4g} to {y.max():.4g}"
        )
    return X, y


def _count_batches(n_samples: int, batch_size: int, drop_last) -> int:
    """Mini-batches per epoch; a ValueError if drop_last would leave none."""
    if not isinstance(drop_last, bool):
        raise TypeError(f"drop_last must be True or False, got {describe(drop_last)}")
    if drop_last and n_samples < batch_size:
        raise ValueError(
            f"drop_last=True would leave no mini-batch: batch_size ({batch_size}) is larger "
            f"than the {n_samples} training samples; lower batch_size"
        )
    return n_samples // batch_size if drop_last else -(-n_samples // batch_size)


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


def _measure(backend, kind, X_train, y_train, X_val, y_val) -> dict:
    """Loss (and accuracy) on the training set and on the validation set if given."""
    scores = {}
    parts = [("train", X_train, y_train)] + ([("val", X_val, y_val)] if X_val is not None else [])
    for part, X, y in parts:
        loss, output = backend.evaluate(X, y, kind, f"y_{part}")
        scores[f"{part}_loss"] = loss
        if kind is not None and math.isfinite(loss):
            scores[f"{part}_acc"] = _accuracy(output, y, kind)
    return scores


def _record(history: History, epoch: int, scores: dict) -> None:
    history.epochs.append(epoch)
    for name, value in scores.items():
        getattr(history, name).append(value)


# ---------------------------------------------------------------------------------------------
# A diverged run: finite weights back, and an error that says what happened
# ---------------------------------------------------------------------------------------------


class _Fallback:
    """What fit falls back on when a run diverges: early stopping's best weights if it holds
    some, else a copy of the weights of the last finite epoch; and the last checkpoint's epoch.
    """

    def __init__(self, model, early_stopping, start_epoch: int):
        self.model, self.early_stopping = model, early_stopping
        self.epoch, self.state = start_epoch, copy.deepcopy(model.state_dict())
        self.saved_epoch: int | None = None  # the epoch of the last checkpoint fit wrote

    def finite_epoch(self, epoch: int) -> None:
        """Keep the weights of `epoch`, whose losses were finite (unless early stopping
        keeps its best ones: then they are never needed)."""
        if self.early_stopping is None:
            self.epoch, self.state = epoch, copy.deepcopy(self.model.state_dict())

    def restore(self) -> tuple[str, int]:
        """Load the finite weights back into the model; return ("best" or "last", epoch)."""
        stopper = self.early_stopping
        if stopper is not None and stopper.best_state is not None:
            stopper.restore_best(self.model)
            return "best", stopper.best_epoch
        self.model.load_state_dict(copy.deepcopy(self.state))
        return "last", self.epoch


def _divergence_message(what: str, epoch: int, lr: list[float], history: History,
                        restored: str, restored_epoch: int, early_stopping,
                        checkpoint_path, saved_epoch: int | None) -> str:
    rate = ", ".join(f"{value:g}" for value in lr) or "unknown"
    parts = [f"Training diverged in epoch {epoch}, {what} (learning rate {rate})."]
    if restored == "best":
        parts.append(
            f"The model has early stopping's best weights back, those of epoch "
            f"{restored_epoch} ({early_stopping.monitor} {early_stopping.best_score:.4g})."
        )
    elif restored_epoch:
        parts.append(f"The model has its weights of epoch {restored_epoch} back, the last "
                     "epoch whose losses were finite.")
    else:
        parts.append("The model has the weights it started with back: no epoch ended with "
                     "finite losses.")
    if history.epochs:
        parts.append(f"error.history holds the finite epochs, up to epoch {history.epochs[-1]}.")
    if checkpoint_path is not None:
        parts.append(f"The checkpoint {checkpoint_path} still holds epoch {saved_epoch}."
                     if saved_epoch is not None else
                     f"No checkpoint was written to {checkpoint_path} in this run.")
    smaller = f"(e.g. {max(lr) / 10:g}) " if lr else ""
    parts.append(
        f"Usual cures: a smaller learning rate {smaller}with a new optimizer (this one's "
        "momentum or moments may hold inf or NaN); inputs standardized "
        "(dlhelpers.data.standardize) and regression targets scaled to about 1; a schedule "
        "that lowers the learning rate."
    )
    return " ".join(parts)


def __getattr__(name: str):
    """The checkpoint format's public names, from `dlhelpers.checkpoint`, which builds on
    History and EarlyStopping above and is therefore imported on first use."""
    if name in _CHECKPOINT_NAMES:
        from dlhelpers import checkpoint

        return getattr(checkpoint, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
