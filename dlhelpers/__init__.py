"""dlhelpers: the helper package of the course, one small module per lecture concept.

The numpy implementations mirror PyTorch's API, so moving to torch is a change of import.
Modules, in lecture order: activations, losses, nn, autograd, gradcheck, optim, data, train,
plot, checks. The most used names are importable from `dlhelpers` itself.
"""

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
from dlhelpers.train import EarlyStopping, History, fit, load_checkpoint, save_checkpoint

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
