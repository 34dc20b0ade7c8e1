"""Models, data and helpers shared by tests/test_train.py and tests/test_checkpoint.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlhelpers import losses, nn, optim
from dlhelpers.data import make_moons
from dlhelpers.train import fit

X_ALL, Y_ALL = make_moons(200, noise=0.2, rng=0)


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
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
