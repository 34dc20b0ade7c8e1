r"""Neural-network layers in numpy, with the same names and shapes as `torch.nn`.

Introduced in `03_building_neural_networks.ipynb` (forward passes); `backward` is added in
`06_backpropagation.ipynb`. Every module has

- `forward(x)`: computes the output and keeps in `self._cache` what backward will need;
- `backward(grad_out) -> grad_in`: given :math:`\partial J / \partial \mathrm{out}`, returns
  :math:`\partial J / \partial x` by the chain rule and *adds* (`+=`) the gradients of its
  parameters into `Parameter.grad`, until `zero_grad()` resets them. `backward(grad_out,
  input_grad=False)` skips :math:`\partial J / \partial x` and returns None.

`forward` and `backward` check their argument (a finite array of the right shape), then call
`_forward` and `_backward`, where the math is. A `Sequential` checks its input once and calls
its layers' `_forward` and `_backward` directly: the values inside a network come from its own
layers, and checking each of them again would cost more than the arithmetic of a small layer.

Layers store weights as (in_features, out_features), the lecture's :math:`X W + b`;
`torch.nn.Linear` stores the transpose. `to_torch` converts a model to its torch twin.

>>> net = Sequential(Dense(2, 3, rng=0), ReLU(), Dense(3, 1, rng=1), Sigmoid())
>>> net(np.zeros((4, 2))).shape
(4, 1)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dlhelpers.activations import (  # without checks: Module.forward and backward check
    _relu,
    _relu_derivative,
    _sigmoid,
    _sigmoid_derivative,
    _tanh,
    _tanh_derivative,
)
from dlhelpers.seeding import as_rng
from dlhelpers.validation import as_float_array, check_number, check_state_keys, describe

if TYPE_CHECKING:  # torch is imported by to_torch only, when it is used
    import torch


class Parameter:
    """A trainable array: `.value` (float64) and `.grad`, dJ/dvalue, of the same shape.

    The value is a copy, so optimizers updating it in place never change the caller's array.

    >>> Parameter([1.0, 2.0]).grad
    array([0., 0.])
    """

    def __init__(self, value):
        self.value = as_float_array(value, "value").copy()
        self.grad = np.zeros_like(self.value)

    def __repr__(self) -> str:
        return f"Parameter(shape={self.value.shape})"


class Module:
    """Base class of every layer: parameters, train/eval mode, state dicts.

    Subclasses implement `_forward(x)` and `_backward(grad_out, input_grad)`, which may assume
    finite float64 arrays; `forward` and `backward` check their argument and call them.
    `__call__` runs forward, as in torch. Parameters are the `Parameter` attributes, in the
    order they were assigned.
    """

    def __init__(self):
        self.training = True
        self._cache = None  # what forward saved for backward

    def __call__(self, x):
        return self.forward(x)

    def forward(self, x) -> np.ndarray:
        """The module's output for input x (a finite array).

        An output with inf or NaN for a finite x means a value overflowed float64 inside the
        module (a huge x, or weights that a diverging training run has blown up): numpy warns,
        and this raises ValueError saying so instead of returning it. (An overflow that a
        saturating activation absorbs, sigmoid(inf) = 1, leaves a finite output, as in torch.)
        """
        x = as_float_array(x, "x")
        out = self._forward(x)
        if not np.isfinite(out).all():
            largest_weight = max((np.abs(p.value).max() for p in self.parameters()), default=0)
            raise ValueError(
                f"{type(self).__name__} overflowed: its output has inf or NaN for a finite x "
                f"(largest |x| {np.abs(x).max():.3g}, largest |weight| {largest_weight:.3g}); "
                "scale x down, or lower the learning rate if training made the weights grow"
            )
        return out

    def backward(self, grad_out, input_grad: bool = True):
        """dJ/dx from grad_out = dJ/dout; adds the parameters' gradients into `.grad`.

        `input_grad=False` skips dJ/dx and returns None, as torch skips the gradient of an
        input that does not require one: a training loop needs only the parameters' gradients,
        and for a network's first layer dJ/dx is a whole matrix product.
        """
        if not isinstance(input_grad, bool):
            raise TypeError(f"input_grad must be True or False, got {describe(input_grad)}")
        return self._backward(as_float_array(grad_out, "grad_out"), input_grad)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} must define _forward(x)")

    def _backward(self, grad_out: np.ndarray, input_grad: bool):
        raise NotImplementedError(
            f"{type(self).__name__} must define _backward(grad_out, input_grad)"
        )

    def named_parameters(self) -> dict[str, Parameter]:
        return {name: v for name, v in vars(self).items() if isinstance(v, Parameter)}

    def parameters(self) -> list[Parameter]:
        return list(self.named_parameters().values())

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad.fill(0.0)

    def train(self, mode: bool = True) -> Module:
        """Training mode (the default): Dropout drops units. Returns the module, as torch."""
        if not isinstance(mode, bool):
            raise TypeError(f"mode must be True or False, got {describe(mode)}")
        self.training = mode
        return self

    def eval(self) -> Module:
        """Evaluation mode: Dropout passes its input through unchanged."""
        return self.train(False)

    def state_dict(self) -> dict[str, np.ndarray]:
        """A copy of every parameter's value, by name (e.g. "0.weight" in a Sequential)."""
        return {name: p.value.copy() for name, p in self.named_parameters().items()}

    def load_state_dict(self, state) -> None:
        """Copy values from `state` into the parameters; names and shapes must match exactly.

        Everything is checked before anything is copied, so a bad `state` changes nothing.
        """
        params = self.named_parameters()
        check_state_keys(state, params)
        values = {name: as_float_array(state[name], f"state[{name!r}]") for name in params}
        for name, p in params.items():
            if values[name].shape != p.value.shape:
                raise ValueError(
                    f"state[{name!r}] must have shape {p.value.shape}, got {values[name].shape}"
                )
        for name, p in params.items():
            p.value[...] = values[name]  # in place: optimizers keep pointing at p.value

    def _saved(self):
        if self._cache is None:
            raise RuntimeError(
                f"call {type(self).__name__}.forward(x) before backward(grad_out): "
                "backward needs the values that forward saves"
            )
        return self._cache

    @staticmethod
    def _check_grad_out(grad_out: np.ndarray, shape: tuple[int, ...]) -> None:
        if grad_out.shape != shape:
            raise ValueError(
                f"grad_out must have the shape of the forward output {shape}, "
                f"got {grad_out.shape}"
            )


class Dense(Module):
    r"""A fully connected layer, as `torch.nn.Linear` (with the weight transposed).

    .. math:: z_i = w_{0,i} + \sum_j x_j w_{j,i}
              \qquad\text{for a batch:}\qquad Z = X W + b

    backward, with :math:`G = \partial J / \partial Z`:

    .. math:: \frac{\partial J}{\partial X} = G W^\top, \qquad
              \frac{\partial J}{\partial W} = X^\top G, \qquad
              \frac{\partial J}{\partial b} = \sum_{n} G_n

    W and b start uniform in :math:`[-1/\sqrt{D_{in}}, 1/\sqrt{D_{in}}]`, as in torch.

    Shape: x (N, D_in) -> (N, D_out); weight (D_in, D_out), bias (D_out,).

    >>> Dense(3, 2, rng=0)(np.ones((5, 3))).shape
    (5, 2)
    """

    def __init__(self, in_features: int, out_features: int, rng=None):
        super().__init__()
        self.in_features = check_number(in_features, "in_features", low=1, integer=True)
        self.out_features = check_number(out_features, "out_features", low=1, integer=True)
        rng = as_rng(rng)
        bound = 1.0 / np.sqrt(in_features)
        self.weight = Parameter(rng.uniform(-bound, bound, size=(in_features, out_features)))
        self.bias = Parameter(rng.uniform(-bound, bound, size=out_features))

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if x.ndim != 2 or x.shape[1] != self.in_features:
            hint = "; for a single sample use x.reshape(1, -1)" if x.ndim == 1 else ""
            raise ValueError(
                f"x must be a batch of shape (N, {self.in_features}) for "
                f"Dense({self.in_features}, {self.out_features}), got shape {x.shape}{hint}"
            )
        self._cache = x
        z = x @ self.weight.value  # (N, D_in) @ (D_in, D_out)
        z += self.bias.value  # + (D_out,) on every row, in place: no second (N, D_out) array
        return z

    def _backward(self, grad_out: np.ndarray, input_grad: bool) -> np.ndarray | None:
        x = self._saved()
        self._check_grad_out(grad_out, (x.shape[0], self.out_features))
        self.weight.grad += x.T @ grad_out  # (D_in, N) @ (N, D_out)
        self.bias.grad += grad_out.sum(axis=0)  # (N, D_out) -> (D_out,)
        if not input_grad:
            return None
        return grad_out @ self.weight.value.T  # (N, D_out) @ (D_out, D_in)

    def __repr__(self) -> str:
        return f"Dense({self.in_features}, {self.out_features})"


class _Activation(Module):
    """An element-wise g(z); backward multiplies by g'(z) (chain rule)."""

    def _forward(self, z: np.ndarray) -> np.ndarray:
        self._cache = z
        return self.g(z)  # same shape as z

    def _backward(self, grad_out: np.ndarray, input_grad: bool) -> np.ndarray | None:
        z = self._saved()
        self._check_grad_out(grad_out, z.shape)
        if not input_grad:
            return None
        return grad_out * self.g_prime(z)  # dJ/dz = dJ/dg * g'(z), element-wise

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Sigmoid(_Activation):
    r"""Element-wise sigmoid, as `torch.nn.Sigmoid`.

    .. math:: g(z) = \frac{1}{1 + e^{-z}}, \qquad g'(z) = g(z)\,(1 - g(z))

    Shape: any; the output has the input's shape.

    >>> Sigmoid()(np.zeros((1, 2)))
    array([[0.5, 0.5]])
    """

    g = staticmethod(_sigmoid)
    g_prime = staticmethod(_sigmoid_derivative)


class Tanh(_Activation):
    r"""Element-wise hyperbolic tangent, as `torch.nn.Tanh`.

    .. math:: g(z) = \frac{e^{z} - e^{-z}}{e^{z} + e^{-z}}, \qquad g'(z) = 1 - g(z)^2

    Shape: any; the output has the input's shape.

    >>> Tanh()(np.zeros((1, 2)))
    array([[0., 0.]])
    """

    g = staticmethod(_tanh)
    g_prime = staticmethod(_tanh_derivative)


class ReLU(_Activation):
    r"""Element-wise Rectified Linear Unit, as `torch.nn.ReLU`.

    .. math:: g(z) = \max(0, z), \qquad g'(z) = \begin{cases} 1 & z > 0 \\ 0 & z \le 0
              \end{cases}

    Shape: any; the output has the input's shape.

    >>> ReLU()(np.array([[-1.0, 2.0]]))
    array([[0., 2.]])
    """

    g = staticmethod(_relu)
    g_prime = staticmethod(_relu_derivative)


class Dropout(Module):
    r"""Inverted dropout, as `torch.nn.Dropout`: zero each unit with probability p in training.

    Training, with a fresh mask :math:`m_i \sim \mathrm{Bernoulli}(1 - p)` on every forward:

    .. math:: y = \frac{m \odot x}{1 - p}, \qquad
              \frac{\partial J}{\partial x} = \frac{m \odot G}{1 - p}

    Dividing by 1 - p keeps :math:`E[y] = x`, so in evaluation mode the layer is the identity
    (:math:`y = x`, :math:`\partial J / \partial x = G`) and needs no rescaling.

    Shape: any; the output has the input's shape.

    >>> Dropout(0.5, rng=0).eval()(np.ones((1, 3)))
    array([[1., 1., 1.]])
    """

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        check_number(p, "p", low=0)
        if p >= 1:
            raise ValueError(f"p must be in [0, 1) (the probability of dropping a unit), got {p}")
        self.p = p
        self.rng = as_rng(rng)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        if self.training:
            keep = self.rng.random(x.shape) >= self.p  # True with probability 1 - p
            self._cache = keep / (1.0 - self.p)  # the mask, already scaled
        else:
            self._cache = np.ones_like(x)
        return x * self._cache

    def _backward(self, grad_out: np.ndarray, input_grad: bool) -> np.ndarray | None:
        scaled_mask = self._saved()
        self._check_grad_out(grad_out, scaled_mask.shape)
        return grad_out * scaled_mask if input_grad else None

    def __repr__(self) -> str:
        return f"Dropout(p={self.p})"


class Sequential(Module):
    r"""Modules applied one after another, as `torch.nn.Sequential`.

    .. math:: \hat{y} = f_k(\dots f_2(f_1(x)))

    backward runs the modules in reverse, each turning :math:`\partial J/\partial f_i` into
    :math:`\partial J/\partial f_{i-1}`. A module may appear twice (shared weights): each use
    keeps its own saved values and both add into the same gradients.

    Parameters are named "<position>.<name>" ("0.weight", "0.bias", "2.weight", ...), as in
    torch; a shared parameter is listed once.

    >>> net = Sequential(Dense(2, 4, rng=0), Tanh(), Dense(4, 1, rng=1))
    >>> len(net), list(net.state_dict())
    (3, ['0.weight', '0.bias', '2.weight', '2.bias'])
    """

    def __init__(self, *modules: Module):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(
                    f"Sequential takes Modules, got {describe(module)} at position {i}"
                )
        self.layers = list(modules)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def _forward(self, x: np.ndarray) -> np.ndarray:
        saved = []
        for layer in self.layers:
            x = layer._forward(x)
            saved.append(layer._cache)  # per position, so a module used twice keeps both
        self._cache = saved
        return x

    def _backward(self, grad_out: np.ndarray, input_grad: bool) -> np.ndarray | None:
        saved = self._saved()
        for position in reversed(range(len(self.layers))):
            layer = self.layers[position]
            layer._cache = saved[position]  # what this position's forward saw
            # Only the first layer's dJ/dx is the network's own input gradient.
            grad_out = layer._backward(grad_out, input_grad or position > 0)
        return grad_out

    def named_parameters(self) -> dict[str, Parameter]:
        named = {}
        for i, layer in enumerate(self.layers):
            for name, p in layer.named_parameters().items():
                if not any(p is q for q in named.values()):
                    named[f"{i}.{name}"] = p
        return named

    def train(self, mode: bool = True) -> Sequential:
        super().train(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def __repr__(self) -> str:
        return f"Sequential({', '.join(map(repr, self.layers))})"


def to_torch(module: Module) -> torch.nn.Module:
    """The torch twin of a numpy module (float64, same weights, same train/eval mode).

    A Sequential becomes a `torch.nn.Sequential`, Dense a `torch.nn.Linear` (weight
    transposed), and so on; a module used twice becomes one torch module used twice.

    >>> to_torch(Sequential(Dense(2, 1, rng=0), Sigmoid()))
    Sequential(
      (0): Linear(in_features=2, out_features=1, bias=True)
      (1): Sigmoid()
    )
    """
    return _to_torch(module, {})


def _to_torch(module: Module, converted: dict[int, torch.nn.Module]) -> torch.nn.Module:
    import torch  # here, not at the top: `import dlhelpers` stays free of torch's 2 s import

    if id(module) in converted:
        return converted[id(module)]
    if isinstance(module, Sequential):
        twin = torch.nn.Sequential(*(_to_torch(layer, converted) for layer in module.layers))
    elif isinstance(module, Dense):
        twin = torch.nn.Linear(module.in_features, module.out_features, dtype=torch.float64)
        with torch.no_grad():
            twin.weight.copy_(torch.from_numpy(module.weight.value.T))  # (D_out, D_in)
            twin.bias.copy_(torch.from_numpy(module.bias.value))
    elif isinstance(module, Dropout):
        twin = torch.nn.Dropout(module.p)
    elif type(module) in (Sigmoid, Tanh, ReLU):
        twin = getattr(torch.nn, type(module).__name__)()
    else:
        raise TypeError(
            f"module must be a Sequential, Dense, Sigmoid, Tanh, ReLU or Dropout, "
            f"got {describe(module)}"
        )
    converted[id(module)] = twin.train(module.training)
    return twin

