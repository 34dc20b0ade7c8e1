r"""Optimizers and learning-rate schedules for `dlhelpers.nn` parameters, as in `torch.optim`.

Plain SGD is introduced in `05_gradient_descent.ipynb`; momentum, weight decay, Adam and the
schedules in `07_optimization_learning_rate.ipynb`; AdamW in `08_regularization.ipynb`. Ordered
simple to complex. Each update is step-for-step equal to torch's (float64, up to rounding).

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
from collections.abc import Callable

import numpy as np

from dlhelpers.nn import Module, Parameter
from dlhelpers.validation import as_float_array, check_number, check_state_keys, describe


def _positive(value, name: str) -> float:
    return float(check_number(value, name, low=0, low_open=True))


def _non_negative(value, name: str) -> float:
    return float(check_number(value, name, low=0))


def _check_below_one(value, name: str) -> float:
    check_number(value, name, low=0)
    if value >= 1:
        raise ValueError(f"{name} must be in [0, 1), got {value}")
    return float(value)


def _count(value, name: str) -> int:
    """A number of steps or epochs taken so far."""
    return int(check_number(value, name, low=0, integer=True))


def _period(value, name: str) -> int:
    """A number of epochs between changes (step_size, T_max)."""
    return int(check_number(value, name, low=1, integer=True))


class _Stateful:
    """state_dict()/load_state_dict() from the attributes named in `_numbers` and `_arrays`.

    `_numbers` maps each number's name to its check, `check(value, name) -> value`: `__init__`
    (through `_checked`) and `load_state_dict` both use it, so a loaded state must satisfy the
    same ranges as the constructor's arguments. `_arrays` name lists with one array per
    parameter, saved as "<name>.<i>".
    """

    _numbers: dict[str, Callable] = {}
    _arrays: tuple[str, ...] = ()

    def _checked(self, name: str, value, label: str | None = None):
        """`value` for the number `name`, checked as `load_state_dict` checks it (as `label`)."""
        return self._numbers[name](value, label or name)

    def state_dict(self) -> dict:
        """A copy of the state: numbers and numpy arrays only (savable with `np.savez`)."""
        state = {name: getattr(self, name) for name in self._numbers}
        for name in self._arrays:
            for i, array in enumerate(getattr(self, name)):
                state[f"{name}.{i}"] = array.copy()
        return state

    def load_state_dict(self, state) -> None:
        """Restore a `state_dict()`; names, kinds, shapes and ranges must match.

        Checks everything, then loads: a bad state changes nothing.
        """
        current = self.state_dict()
        try:
            check_state_keys(state, current)
        except ValueError as error:  # e.g. a StepLR state loaded into a CosineAnnealingLR
            raise ValueError(f"{type(self).__name__}.load_state_dict: {error}") from None
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
                loaded[key] = self._numbers[key](value, name)
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


class Optimizer(_Stateful):
    """Base class: holds the parameters and the learning rate `lr` (schedules change it)."""

    _numbers = {"lr": _non_negative}  # a schedule may lower lr to 0, and step() allows that

    def __init__(self, params, lr):
        self.params = _check_params(params)
        self.lr = _positive(lr, "lr")  # but a new optimizer with lr = 0 would never move

    def zero_grad(self) -> None:
        """Reset every parameter's `.grad` to 0 (gradients accumulate until then)."""
        for p in self.params:
            p.grad.fill(0.0)

    def step(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} must define step()")

    def _check_grads(self) -> None:
        """Raise unless every `.grad` is an array of its parameter's shape (never broadcast).

        Only O(1) per parameter, since step() runs in every training loop: no pass over values.
        """
        for i, p in enumerate(self.params):
            if not isinstance(p.grad, np.ndarray):
                raise TypeError(f"params[{i}].grad must be a numpy array, got {describe(p.grad)}")
            if p.grad.shape != p.value.shape:
                raise ValueError(
                    f"params[{i}].grad must have the shape of params[{i}].value "
                    f"{p.value.shape}, got {p.grad.shape}"
                )


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

    _numbers = {**Optimizer._numbers, "momentum": _non_negative, "weight_decay": _non_negative}
    _arrays = ("momentum_buffer",)

    def __init__(self, params, lr, momentum: float = 0.0, weight_decay: float = 0.0):
        super().__init__(params, lr)
        self.momentum = self._checked("momentum", momentum)
        self.weight_decay = self._checked("weight_decay", weight_decay)
        self.momentum_buffer = [np.zeros_like(p.value) for p in self.params]

    def step(self) -> None:
        """Update every parameter in place from its current `.grad`."""
        check_number(self.lr, "lr", low=0)
        self._check_grads()
        for p, b in zip(self.params, self.momentum_buffer, strict=True):  # b: shape of p.value
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

    Whatever the gradient's scale, a step moves each weight by about :math:`\eta` at most in
    common cases, and by up to about :math:`\eta \max(1, (1 - \beta_1)/\sqrt{1 - \beta_2})`
    in the worst case, a large gradient after a long run of tiny ones (3.16 :math:`\eta` for
    the default betas; Kingma & Ba 2015, section 2.1).

    >>> w = Parameter([1.0]); w.grad[:] = 50.0
    >>> Adam([w], lr=0.1).step(); w.value.round(6)  # first step: about -lr * sign(g)
    array([0.9])
    """

    _numbers = {
        **Optimizer._numbers,
        "beta1": _check_below_one,
        "beta2": _check_below_one,
        "eps": _positive,
        "weight_decay": _non_negative,
        "t": _count,
    }
    _arrays = ("exp_avg", "exp_avg_sq")

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise TypeError(f"betas must be a pair (beta1, beta2), got {describe(betas)}")
        self.beta1 = self._checked("beta1", betas[0], "betas[0]")
        self.beta2 = self._checked("beta2", betas[1], "betas[1]")
        self.eps = self._checked("eps", eps)
        self.weight_decay = self._checked("weight_decay", weight_decay)
        self.t = 0  # steps taken
        self.exp_avg = [np.zeros_like(p.value) for p in self.params]  # m, shape of p.value
        self.exp_avg_sq = [np.zeros_like(p.value) for p in self.params]  # v, shape of p.value

    def step(self) -> None:
        """Update every parameter in place from its current `.grad`."""
        check_number(self.lr, "lr", low=0)
        self._check_grads()
        self.t += 1
        for p, m, v in zip(self.params, self.exp_avg, self.exp_avg_sq, strict=True):
            g = self._decayed_gradient(p)  # g_t, same shape as p.value
            m[...] = self.beta1 * m + (1 - self.beta1) * g  # m_t, same shape as p.value
            v[...] = self.beta2 * v + (1 - self.beta2) * g * g  # v_t, same shape as p.value
            m_hat = m / (1 - self.beta1**self.t)  # same shape as p.value
            v_hat = v / (1 - self.beta2**self.t)  # same shape as p.value
            p.value -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)  # same shape as p.value

    def _decayed_gradient(self, p: Parameter) -> np.ndarray:
        """g_t: weight decay as L2, added to the gradient (it then goes through m and v)."""
        return p.grad + self.weight_decay * p.value


class AdamW(Adam):
    r"""Adam with decoupled weight decay (Loshchilov & Hutter 2019), as `torch.optim.AdamW`.

    Adam adds :math:`\lambda W` to the gradient, so the decay is divided by
    :math:`\sqrt{\hat{v}_t}` like the rest: every weight moves by about :math:`\eta` whatever
    its size. AdamW shrinks the weights directly, as plain SGD's L2 does, then takes Adam's step
    on the data gradient alone:

    .. math::
        W' &= (1 - \eta\lambda)\, W_{t-1} \qquad g_t = \nabla_W J \\
        W_t &= W' - \eta\, \frac{\hat{m}_t}{\sqrt{\hat{v}_t} + \epsilon}
            \qquad (m_t, v_t, \hat{m}_t, \hat{v}_t \text{ as in Adam})

    The default :math:`\lambda = 0.01` is torch's. Introduced in `08_regularization.ipynb`.

    >>> w = Parameter([2.0, 0.5]); w.grad[:] = 0.0  # no data gradient: only the decay acts
    >>> AdamW([w], lr=0.1, weight_decay=0.1).step(); w.value  # each shrinks by 1 %
    array([1.98 , 0.495])
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2):
        super().__init__(params, lr, betas, eps, weight_decay)

    def _decayed_gradient(self, p: Parameter) -> np.ndarray:
        """Shrink `p` in place by (1 - eta lambda); g_t is the data gradient alone."""
        p.value *= 1 - self.lr * self.weight_decay  # same shape as p.value
        return p.grad


class LRScheduler(_Stateful):
    """Base class of the schedules: sets `optimizer.lr` to `lr_at(epoch)` on every `step()`.

    Call `step()` once per epoch, after that epoch's optimizer steps, as in torch. The state
    holds each schedule's settings too (as torch's), checked on loading like the constructor's
    arguments; a state of another kind of schedule is refused.
    """

    _numbers = {"base_lr": _non_negative, "last_epoch": _count}

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

    _numbers = {**LRScheduler._numbers, "step_size": _period, "gamma": _positive}

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1):
        super().__init__(optimizer)
        self.step_size = self._checked("step_size", step_size)
        self.gamma = self._checked("gamma", gamma)

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

    _numbers = {**LRScheduler._numbers, "T_max": _period, "eta_min": _non_negative}

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0):
        super().__init__(optimizer)
        self.T_max = self._checked("T_max", T_max)
        self.eta_min = self._checked("eta_min", eta_min)

    def lr_at(self, epoch: int) -> float:
        cosine = (1 + math.cos(math.pi * epoch / self.T_max)) / 2  # 1 at t = 0, 0 at t = T_max
        return self.eta_min + (self.base_lr - self.eta_min) * cosine
