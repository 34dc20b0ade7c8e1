r"""Optimizers and learning-rate schedules for `dlhelpers.nn` parameters, as in `torch.optim`.

Plain SGD is introduced in `05_gradient_descent.ipynb`; momentum, weight decay, Adam and the
schedules in `07_optimization_learning_rate.ipynb`. Ordered simple to complex. Each update is
step-for-step equal to torch's (float64, up to rounding).

The usual loop, as in torch:

>>> from dlhelpers.nn import Dense
>>> layer = Dense(2, 1, rng=0)
>>> opt = SGD(layer.parameters(), lr=0.1)
>>> out = layer(np.ones((4, 2)))
>>> opt.zero_grad()
>>> _ = layer.backward(np.ones_like(out))  # dJ/dout, e.g. from a loss's backward()
>>> opt.step()
"""

from __future__ import annotations

import math

import numpy as np

from dlhelpers.nn import Module, Parameter
from dlhelpers.validation import as_float_array, check_number, check_state_keys, describe


class _Stateful:
    """state_dict()/load_state_dict() from the attribute names in `_numbers` and `_arrays`.

    `_arrays` name lists with one array per parameter, saved as "<name>.<i>".
    """

    _numbers: tuple[str, ...] = ()
    _arrays: tuple[str, ...] = ()

    def state_dict(self) -> dict:
        """A copy of the state: numbers and numpy arrays only (savable with `np.savez`)."""
        state = {name: getattr(self, name) for name in self._numbers}
        for name in self._arrays:
            for i, array in enumerate(getattr(self, name)):
                state[f"{name}.{i}"] = array.copy()
        return state

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict()`; names, kinds and shapes must match. Checks all, then loads."""
        current = self.state_dict()
        check_state_keys(state, current)
        loaded = {}
        for key, now in current.items():
            name, value = f"state[{key!r}]", state[key]
            if isinstance(now, np.ndarray):
                loaded[key] = as_float_array(value, name).copy()
                if loaded[key].shape != now.shape:
                    raise ValueError(f"{name} must have shape {now.shape}, got {loaded[key].shape}")
            else:
                if isinstance(value, np.ndarray) and value.ndim == 0:  # as stored by np.savez
                    value = value.item()
                loaded[key] = type(now)(check_number(value, name, integer=isinstance(now, int)))
        for name in self._numbers:
            setattr(self, name, loaded[name])
        for name in self._arrays:
            setattr(self, name, [loaded[f"{name}.{i}"] for i in range(len(getattr(self, name)))])


def _check_params(params) -> list[Parameter]:
    if isinstance(params, Module):
        raise TypeError("params must be a list of Parameters: pass model.parameters(), not model")
    if not isinstance(params, (list, tuple)):
        raise TypeError(f"params must be a list of Parameters, got {describe(params)}")
    if len(params) == 0:
        raise ValueError("params must not be empty: the optimizer has nothing to update")
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"params[{i}] must be a Parameter, got {describe(p)}")
        if any(p is q for q in params[:i]):
            raise ValueError(f"params[{i}] appears twice in params; it would be updated twice")
    return list(params)


def _check_below_one(value, name: str):
    check_number(value, name, low=0)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


class Optimizer(_Stateful):
    """Base class: holds the parameters and the learning rate `lr` (schedules change it)."""

    def __init__(self, params, lr):
        self.params = _check_params(params)
        self.lr = float(check_number(lr, "lr", low=0, low_open=True))

    def zero_grad(self) -> None:
        """Reset every parameter's `.grad` to 0 (gradients accumulate until then)."""
        for p in self.params:
            p.grad.fill(0.0)

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define step()")


class SGD(Optimizer):
    r"""Stochastic gradient descent with momentum and weight decay, as `torch.optim.SGD`.

    For each parameter W with gradient :math:`\nabla_W J`, learning rate :math:`\eta`,
    momentum :math:`\mu` and weight decay :math:`\lambda`:

    .. math::
        g_t &= \nabla_W J + \lambda W_{t-1}
            \qquad \text{(the gradient of } J + \tfrac{\lambda}{2}\lVert W \rVert^2) \\
        b_t &= \mu\, b_{t-1} + g_t, \qquad b_0 = 0 \\
        W_t &= W_{t-1} - \eta\, b_t

    With :math:`\mu = 0`, :math:`b_t = g_t` and this is the lecture's
    :math:`W \leftarrow W - \eta\,\partial J/\partial W`; the buffer is then not used and
    stays 0 (torch keeps none).
    torch starts its buffer at :math:`b_1 = g_1`, which is exactly what :math:`b_0 = 0` gives
    (torch's dampening = 0, nesterov = False).

    >>> w = Parameter([1.0]); w.grad[:] = 2.0
    >>> SGD([w], lr=0.1).step(); w.value
    array([0.8])
    """

    _numbers = ("lr", "momentum", "weight_decay")
    _arrays = ("momentum_buffer",)

    def __init__(self, params, lr, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = float(check_number(momentum, "momentum", low=0))
        self.weight_decay = float(check_number(weight_decay, "weight_decay", low=0))
        self.momentum_buffer = [np.zeros_like(p.value) for p in self.params]

    def step(self) -> None:
        """Update every parameter in place from its current `.grad`."""
        check_number(self.lr, "lr", low=0)
        for p, b in zip(self.params, self.momentum_buffer, strict=True):
            g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad  # g_t
            if self.momentum:
                b *= self.momentum
                b += g  # b_t = mu b_{t-1} + g_t, in place
            p.value -= self.lr * (b if self.momentum else g)  # W_t = W_{t-1} - eta b_t


class Adam(Optimizer):
    r"""Adam, as `torch.optim.Adam` (weight decay added to the gradient, as L2).

    .. math::
        g_t &= \nabla_W J + \lambda W_{t-1} \\
        m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t
            \qquad v_t = \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2
            \qquad m_0 = v_0 = 0 \\
        \hat{m}_t &= \frac{m_t}{1 - \beta_1^t} \qquad \hat{v}_t = \frac{v_t}{1 - \beta_2^t}
            \qquad \text{(bias correction: } m_0 = v_0 = 0 \text{ pulls early } m_t, v_t
            \text{ towards 0)} \\
        W_t &= W_{t-1} - \eta\, \frac{\hat{m}_t}{\sqrt{\hat{v}_t} + \epsilon}

    Each weight moves by about :math:`\eta` at most per step, whatever the gradient's scale.

    >>> w = Parameter([1.0]); w.grad[:] = 50.0
    >>> Adam([w], lr=0.1).step(); w.value.round(6)  # first step: about -lr * sign(g)
    array([0.9])
    """

    _numbers = ("lr", "beta1", "beta2", "eps", "weight_decay", "t")
    _arrays = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {describe(betas)}")
        self.beta1 = _check_below_one(betas[0], "betas[0]")
        self.beta2 = _check_below_one(betas[1], "betas[1]")
        self.eps = float(check_number(eps, "eps", low=0, low_open=True))
        self.weight_decay = float(check_number(weight_decay, "weight_decay", low=0))
        self.t = 0  # steps taken
        self.exp_avg = [np.zeros_like(p.value) for p in self.params]  # m
        self.exp_avg_sq = [np.zeros_like(p.value) for p in self.params]  # v

    def step(self) -> None:
        """Update every parameter in place from its current `.grad`."""
        check_number(self.lr, "lr", low=0)
        self.t += 1
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            g = p.grad + self.weight_decay * p.value  # g_t
            m[...] = self.beta1 * m + (1 - self.beta1) * g  # m_t
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g  # v_t
            m_hat = m / (1 - self.beta1**self.t)
            v_hat = v / (1 - self.beta2**self.t)
            p.value -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)


class LRScheduler(_Stateful):
    """Base class of the schedules: sets `optimizer.lr` to `lr_at(epoch)` on every `step()`.

    Call `step()` once per epoch, after that epoch's optimizer steps, as in torch.
    """

    _numbers = ("base_lr", "last_epoch")

    def __init__(self, optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(
                f"optimizer must be a dlhelpers.optim optimizer, got {describe(optimizer)}; "
                "for a torch optimizer use torch.optim.lr_scheduler"
            )
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.last_epoch = 0

    def lr_at(self, epoch: int) -> float:
        raise NotImplementedError(f"{type(self).__name__} must define lr_at(epoch)")

    def step(self) -> None:
        """Move to the next epoch and set the optimizer's learning rate."""
        self.last_epoch += 1
        self.optimizer.lr = self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """The current learning rate, in a one-element list as torch's `get_last_lr()`."""
        return [self.lr_at(self.last_epoch)]


class StepLR(LRScheduler):
    r"""Multiply the learning rate by `gamma` every `step_size` epochs, as torch's StepLR.

    .. math:: \eta_t = \eta_0\, \gamma^{\lfloor t / \text{step\_size} \rfloor}

    >>> opt = SGD([Parameter([0.0])], lr=1.0)
    >>> schedule = StepLR(opt, step_size=2, gamma=0.5)
    >>> for _ in range(4): schedule.step()
    >>> opt.lr
    0.25
    """

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = check_number(step_size, "step_size", low=1, integer=True)
        self.gamma = float(check_number(gamma, "gamma", low=0, low_open=True))

    def lr_at(self, epoch: int) -> float:
        return self.base_lr * self.gamma ** (epoch // self.step_size)


class CosineAnnealingLR(LRScheduler):
    r"""Lower the learning rate along half a cosine, from its start to `eta_min` at `T_max`.

    As torch's CosineAnnealingLR (its closed form); after `T_max` epochs it rises again.

    .. math:: \eta_t = \eta_{min} + \frac{1}{2}(\eta_0 - \eta_{min})
              \left(1 + \cos\frac{\pi t}{T_{max}}\right)

    >>> opt = SGD([Parameter([0.0])], lr=1.0)
    >>> schedule = CosineAnnealingLR(opt, T_max=4)
    >>> for _ in range(2): schedule.step()
    >>> round(opt.lr, 12)
    0.5
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = check_number(T_max, "T_max", low=1, integer=True)
        self.eta_min = float(check_number(eta_min, "eta_min", low=0))

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2  # 1 at t = 0, 0 at t = T_max
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
