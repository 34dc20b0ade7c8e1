"""dlhelpers: the helper package of the course, one small module per lecture concept.

The numpy implementations mirror PyTorch's API, so moving to torch is a change of import.
Modules, in lecture order: activations, losses, nn, autograd, gradcheck, optim, data, train,
plot, checks. The most used names are importable from `dlhelpers` itself.

`import dlhelpers` does not import torch (about 2 s): `dlhelpers.train`, the one module that
needs torch at import, is loaded when one of its names is first used.
"""

import importlib.util
import sys

from dlhelpers.activations import (
    relu,
    relu_derivative,
    sigmoid,
    sigmoid_derivative,
    softmax,
    tanh,
    tanh_derivative,
)
from dlhelpers.autograd import Value
from dlhelpers.data import batches, load_digits, make_moons, train_val_test_split
from dlhelpers.gradcheck import numerical_gradient, relative_error
from dlhelpers.losses import (
    BCELoss,
    CrossEntropyLoss,
    MSELoss,
    binary_cross_entropy,
    cross_entropy,
    mean_squared_error,
)
from dlhelpers.nn import Dense, Dropout, Module, Parameter, ReLU, Sequential, Sigmoid, Tanh
from dlhelpers.optim import SGD, Adam
from dlhelpers.seeding import set_seed


def _lazy_submodule(name: str):
    """The submodule `dlhelpers.<name>`, executed on its first attribute access."""
    full_name = f"{__name__}.{name}"
    if full_name in sys.modules:
        return sys.modules[full_name]
    spec = importlib.util.find_spec(full_name)
    spec.loader = importlib.util.LazyLoader(spec.loader)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full_name] = module
    spec.loader.exec_module(module)
    return module


train = _lazy_submodule("train")
_FROM_TRAIN = {"EarlyStopping", "History", "fit", "load_checkpoint", "save_checkpoint"}


def __getattr__(name: str):
    if name in _FROM_TRAIN:
        return getattr(train, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SGD",
    "Adam",
    "BCELoss",
    "CrossEntropyLoss",
    "Dense",
    "Dropout",
    "EarlyStopping",
    "History",
    "MSELoss",
    "Module",
    "Parameter",
    "ReLU",
    "Sequential",
    "Sigmoid",
    "Tanh",
    "Value",
    "batches",
    "binary_cross_entropy",
    "cross_entropy",
    "fit",
    "load_checkpoint",
    "load_digits",
    "make_moons",
    "mean_squared_error",
    "numerical_gradient",
    "relative_error",
    "relu",
    "relu_derivative",
    "save_checkpoint",
    "set_seed",
    "sigmoid",
    "sigmoid_derivative",
    "softmax",
    "tanh",
    "tanh_derivative",
    "train_val_test_split",
]
