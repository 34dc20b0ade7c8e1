"""dlhelpers.optim against torch.optim (float64), against updates derived by hand, and bad input.

Tolerances: parameters after every step rtol=1e-12 and atol=1e-13 times the size of the
updates (torch evaluates a * b + c in a different order, so the last bits can differ);
learning rates of the schedules rtol=1e-12, atol=1e-15. Resuming from a state dict is exact.
"""

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dlhelpers.losses import MSELoss
from dlhelpers.nn import Dense, Parameter, Sequential, Tanh, to_torch
from dlhelpers.optim import (
    SGD,
    Adam,
    AdamW,
    CosineAnnealingLR,
    LRScheduler,
    Optimizer,
    StepLR,
)

SHAPES = [(3, 2), (2,), (1,)]
RTOL = 1e-12


def _assert_steps_match_torch(make_ours, make_theirs, *, steps=6, grad_scale=1.0, seed=0):
    """Feed both optimizers the same random gradients; compare the parameters after each step."""
    rng = np.random.default_rng(seed)
    ours = [Parameter(rng.normal(size=shape)) for shape in SHAPES]
    theirs = [torch.tensor(p.value, requires_grad=True) for p in ours]
    opt, torch_opt = make_ours(ours), make_theirs(theirs)
    for _ in range(steps):
        for p, t in zip(ours, theirs, strict=True):
            g = grad_scale * rng.normal(size=p.value.shape)
            p.grad[...] = g
            t.grad = torch.tensor(g)
        opt.step()
        torch_opt.step()
        atol = 1e-13 * steps * max(1.0, opt.lr * grad_scale)
        for p, t in zip(ours, theirs, strict=True):
            np.testing.assert_allclose(p.value, t.detach().numpy(), rtol=RTOL, atol=atol)


SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.3, momentum=0.5, weight_decay=1e-3),
]
ADAM_SETTINGS = [
    dict(),
    dict(lr=0.01, betas=(0.8, 0.99)),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, betas=(0.0, 0.0), eps=1e-6),
    dict(lr=0.02, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.5),
]


# --- SGD ------------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", SGD_SETTINGS, ids=str)
def test_sgd_matches_torch_step_for_step(kwargs):
    _assert_steps_match_torch(
        lambda ps: SGD(ps, **kwargs), lambda ts: torch.optim.SGD(ts, **kwargs)
    )


@settings(max_examples=25, deadline=None)
@given(
    lr=st.floats(1e-4, 1.0),
    momentum=st.floats(0.0, 0.99),
    weight_decay=st.floats(0.0, 0.1),
    grad_scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_sgd_matches_torch_for_random_settings(lr, momentum, weight_decay, grad_scale, seed):
    kwargs = dict(lr=lr, momentum=momentum, weight_decay=weight_decay)
    _assert_steps_match_torch(
        lambda ps: SGD(ps, **kwargs),
        lambda ts: torch.optim.SGD(ts, **kwargs),
        steps=5,
        grad_scale=grad_scale,
        seed=seed,
    )


def test_plain_sgd_is_the_lectures_update():
    w0, g = np.array([1.0, -2.0]), np.array([0.5, 4.0])
    w = Parameter(w0)
    w.grad[...] = g
    opt = SGD([w], lr=0.1)
    opt.step()
    np.testing.assert_allclose(w.value, w0 - 0.1 * g, rtol=1e-15)  # W <- W - eta dJ/dW
    np.testing.assert_array_equal(opt.state_dict()["momentum_buffer.0"], 0.0)  # not used


def test_sgd_with_momentum_and_weight_decay_by_hand_for_two_steps():
    lr, mu, lam = 0.1, 0.9, 0.5
    w0, g1, g2 = 1.0, 2.0, -1.0
    # step 1: the buffer starts at the first (decayed) gradient, as in torch
    d1 = g1 + lam * w0
    b1 = d1
    w1 = w0 - lr * b1
    # step 2: the buffer remembers mu times the previous one
    d2 = g2 + lam * w1
    b2 = mu * b1 + d2
    w2 = w1 - lr * b2

    w = Parameter([w0])
    opt = SGD([w], lr=lr, momentum=mu, weight_decay=lam)
    for g, expected in [(g1, w1), (g2, w2)]:
        w.grad[...] = g
        opt.step()
        np.testing.assert_allclose(w.value, [expected], rtol=1e-15)


# --- Adam -----------------------------------------------------------------------------------


@pytest.mark.parametrize("kwargs", ADAM_SETTINGS, ids=str)
def test_adam_matches_torch_step_for_step(kwargs):
    _assert_steps_match_torch(
        lambda ps: Adam(ps, **kwargs), lambda ts: torch.optim.Adam(ts, **kwargs)
    )


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [(Adam, torch.optim.Adam), (AdamW, torch.optim.AdamW)],
    ids=["Adam", "AdamW"],
)
@settings(max_examples=25, deadline=None)
@given(
    lr=st.floats(1e-4, 0.5),
    beta1=st.floats(0.0, 0.99),
    beta2=st.floats(0.0, 0.9999),
    eps=st.floats(1e-10, 1e-3),
    weight_decay=st.floats(0.0, 0.1),
    grad_scale=st.sampled_from([1e-3, 1.0, 1e3]),
    seed=st.integers(0, 2**32 - 1),
)
def test_adam_and_adamw_match_torch_for_random_settings(
    ours, theirs, lr, beta1, beta2, eps, weight_decay, grad_scale, seed
):
    kwargs = dict(lr=lr, betas=(beta1, beta2), eps=eps, weight_decay=weight_decay)
    _assert_steps_match_torch(
        lambda ps: ours(ps, **kwargs),
        lambda ts: theirs(ts, **kwargs),
        steps=5,
        grad_scale=grad_scale,
        seed=seed,
    )


def test_adam_by_hand_for_two_steps():
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    w0 = np.array([0.5, -1.0, 2.0])
    g1 = np.array([1e-4, -3.0, 1e3])  # wildly different scales
    g2 = np.array([2e-4, 1.0, -1e3])
    # step 1: m_1 = (1 - b1) g, v_1 = (1 - b2) g^2, and bias correction undoes both factors,
    # so every weight moves by lr * g / (|g| + eps): about lr, whatever the gradient's scale
    w1 = w0 - lr * g1 / (np.abs(g1) + eps)
    # step 2: m_2 = (1 - b1)(b1 g1 + g2), v_2 = (1 - b2)(b2 g1^2 + g2^2)
    m_hat = (1 - b1) * (b1 * g1 + g2) / (1 - b1**2)
    v_hat = (1 - b2) * (b2 * g1**2 + g2**2) / (1 - b2**2)
    w2 = w1 - lr * m_hat / (np.sqrt(v_hat) + eps)

    w = Parameter(w0)
    opt = Adam([w], lr=lr, betas=(b1, b2), eps=eps)
    for g, expected in [(g1, w1), (g2, w2)]:
        w.grad[...] = g
        opt.step()
        np.testing.assert_allclose(w.value, expected, rtol=1e-13)
    np.testing.assert_allclose(np.abs(w1 - w0), lr, rtol=1e-3)


def test_adam_worst_case_step_is_lr_times_1_minus_beta1_over_sqrt_1_minus_beta2():
    # Kingma & Ba, section 2.1: a large gradient after a long run of tiny ones moves the weight
    # by up to about lr (1 - b1) / sqrt(1 - b2), 3.16 lr for the default betas: more than lr.
    lr, b1, b2, eps, g0, T = 0.01, 0.9, 0.999, 1e-8, 1e-6, 5000
    # after T steps of g0: m_T = (1 - b1^T) g0, v_T = (1 - b2^T) g0^2; then one step of 1
    m = b1 * (1 - b1**T) * g0 + (1 - b1)
    v = b2 * (1 - b2**T) * g0**2 + (1 - b2)
    expected = lr * (m / (1 - b1 ** (T + 1))) / (np.sqrt(v / (1 - b2 ** (T + 1))) + eps)

    w = Parameter([0.0])
    opt = Adam([w], lr=lr, betas=(b1, b2), eps=eps)
    w.grad[...] = g0
    for _ in range(T):
        opt.step()
    before = w.value.copy()
    w.grad[...] = 1.0
    opt.step()
    step = (before - w.value)[0]
    assert step == pytest.approx(expected, rel=1e-9)
    assert 3 * lr < step < lr * (1 - b1) / np.sqrt(1 - b2)


# --- AdamW ----------------------------------------------------------------------------------

ADAMW_SETTINGS = [
    dict(),  # torch's default weight_decay=1e-2
    dict(lr=0.1, weight_decay=0.1),
    dict(lr=0.01, betas=(0.8, 0.99), weight_decay=0.0),
    dict(lr=0.05, betas=(0.0, 0.0), eps=1e-6, weight_decay=0.3),
    dict(lr=0.02, betas=(0.5, 0.9), eps=1e-3, weight_decay=2.0),
]


@pytest.mark.parametrize("kwargs", ADAMW_SETTINGS, ids=str)
def test_adamw_matches_torch_for_many_steps(kwargs):
    _assert_steps_match_torch(
        lambda ps: AdamW(ps, **kwargs), lambda ts: torch.optim.AdamW(ts, **kwargs), steps=200
    )


def test_adamw_default_weight_decay_is_torchs():
    ours = AdamW([Parameter([1.0])]).state_dict()
    theirs = torch.optim.AdamW([torch.zeros(1)]).defaults
    assert (ours["lr"], ours["weight_decay"], ours["eps"]) == (
        theirs["lr"], theirs["weight_decay"], theirs["eps"]
    )
    assert (ours["beta1"], ours["beta2"]) == theirs["betas"]


def test_adamw_by_hand_for_three_steps():
    # the update re-derived: shrink by (1 - lr lam), then Adam's step on the data gradient alone
    lr, b1, b2, eps, lam = 0.01, 0.9, 0.999, 1e-8, 0.5
    w = np.array([0.5, -1.0, 2.0])
    grads = [np.array([1e-4, -3.0, 1e3]), np.array([2e-4, 1.0, -1e3]), np.array([0.0, 0.5, 1.0])]
    m = v = np.zeros(3)
    expected = []
    for t, g in enumerate(grads, start=1):
        w = (1 - lr * lam) * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        w = w - lr * (m / (1 - b1**t)) / (np.sqrt(v / (1 - b2**t)) + eps)
        expected.append(w)

    p = Parameter([0.5, -1.0, 2.0])
    opt = AdamW([p], lr=lr, betas=(b1, b2), eps=eps, weight_decay=lam)
    for g, want in zip(grads, expected, strict=True):
        p.grad[...] = g
        opt.step()
        np.testing.assert_allclose(p.value, want, rtol=1e-13)


def test_adamw_decays_in_proportion_to_the_weight_where_adam_moves_every_weight_alike():
    # the example: w = (2, 0.5, 0.01), no data gradient, lr = 0.01, lam = 1
    w0 = np.array([2.0, 0.5, 0.01])
    moved = {}
    for cls in (Adam, AdamW):
        w = Parameter(w0)
        cls([w], lr=0.01, weight_decay=1.0).step()  # w.grad is 0
        moved[cls] = w.value - w0
    np.testing.assert_allclose(moved[AdamW], -0.01 * 1.0 * w0, rtol=1e-12)  # -eta lam w
    np.testing.assert_allclose(moved[Adam], -0.01, rtol=1e-6)  # about -eta, whatever w


# --- training a network: gradients that depend on the parameters ----------------------------


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (lambda ps: SGD(ps, 0.1, momentum=0.9, weight_decay=1e-2),
         lambda ts: torch.optim.SGD(ts, 0.1, momentum=0.9, weight_decay=1e-2)),
        (lambda ps: Adam(ps, 0.01, weight_decay=1e-2),
         lambda ts: torch.optim.Adam(ts, 0.01, weight_decay=1e-2)),
    ],
    ids=["SGD", "Adam"],
)
def test_training_a_network_matches_torch(ours, theirs):
    rng = np.random.default_rng(1)
    net = Sequential(Dense(3, 4, rng=rng), Tanh(), Dense(4, 1, rng=rng))
    twin = to_torch(net)
    x, y = rng.normal(size=(16, 3)), rng.normal(size=(16, 1))
    opt, torch_opt = ours(net.parameters()), theirs(list(twin.parameters()))
    loss_fn = MSELoss()
    for _ in range(8):
        opt.zero_grad()
        loss = loss_fn(net(x), y)
        net.backward(loss_fn.backward())
        opt.step()
        torch_opt.zero_grad()
        torch_loss = torch.nn.functional.mse_loss(twin(torch.from_numpy(x)), torch.from_numpy(y))
        torch_loss.backward()
        torch_opt.step()
        assert loss == pytest.approx(torch_loss.item(), rel=1e-12)
    for name, value in net.state_dict().items():
        expected = twin.state_dict()[name].numpy()
        expected = expected.T if name.endswith("weight") else expected
        np.testing.assert_allclose(value, expected, rtol=1e-11, atol=1e-13, err_msg=name)


def test_zero_grad_resets_every_gradient():
    params = [Parameter(np.ones(s)) for s in SHAPES]
    for p in params:
        p.grad += 3.0
    SGD(params, lr=0.1).zero_grad()
    assert all(np.all(p.grad == 0) for p in params)


def test_step_leaves_the_gradients_alone():
    w = Parameter([1.0, 2.0])
    w.grad[...] = [0.5, -0.5]
    Adam([w], weight_decay=0.1).step()
    np.testing.assert_array_equal(w.grad, [0.5, -0.5])


@pytest.mark.parametrize(
    "make",
    [lambda ps: SGD(ps, 0.1), lambda ps: SGD(ps, 0.1, momentum=0.9, weight_decay=0.1),
     lambda ps: Adam(ps, 0.1)],
    ids=["SGD", "SGD-momentum", "Adam"],
)
def test_step_rejects_a_grad_of_another_shape_and_changes_nothing(make):
    params = [Parameter([1.0, 2.0]), Parameter([3.0, 4.0])]
    opt = make(params)
    params[0].grad[...] = 1.0
    params[1].grad = np.array([5.0])  # would broadcast over params[1].value
    before = opt.state_dict()
    with pytest.raises(ValueError, match=r"params\[1\]\.grad must have .* \(2,\), got \(1,\)"):
        opt.step()
    np.testing.assert_array_equal(params[0].value, [1.0, 2.0])  # not even the first one moved
    np.testing.assert_array_equal(params[1].value, [3.0, 4.0])
    for name, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, before[name])  # Adam's t did not count it
    params[1].grad = [5.0, 5.0]
    with pytest.raises(TypeError, match=r"params\[1\]\.grad must be a numpy array, got list"):
        opt.step()


# --- schedules ------------------------------------------------------------------------------

SCHEDULES = [
    (lambda o: StepLR(o, step_size=3), lambda t: torch.optim.lr_scheduler.StepLR(t, 3)),
    (lambda o: StepLR(o, 7, gamma=0.5), lambda t: torch.optim.lr_scheduler.StepLR(t, 7, 0.5)),
    (
        lambda o: CosineAnnealingLR(o, T_max=10),
        lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, T_max=10),
    ),
    (
        lambda o: CosineAnnealingLR(o, T_max=30, eta_min=1e-3),
        lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, T_max=30, eta_min=1e-3),
    ),
    (
        lambda o: CosineAnnealingLR(o, T_max=7, eta_min=0.05),
        lambda t: torch.optim.lr_scheduler.CosineAnnealingLR(t, T_max=7, eta_min=0.05),
    ),
]


@pytest.mark.parametrize("make_optimizer", [lambda ps: SGD(ps, 0.1), lambda ps: Adam(ps, 0.1)])
@pytest.mark.parametrize(("ours", "theirs"), SCHEDULES)
def test_schedules_match_torch_for_30_epochs(make_optimizer, ours, theirs):
    opt = make_optimizer([Parameter([0.0])])
    torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.1)
    schedule, torch_schedule = ours(opt), theirs(torch_opt)
    for _ in range(31):  # epochs 0 to 30; the cosine ones pass T_max and rise again
        expected = torch_schedule.get_last_lr()[0]
        assert opt.lr == pytest.approx(expected, rel=RTOL, abs=1e-15)
        assert schedule.get_last_lr() == pytest.approx(
            torch_schedule.get_last_lr(), rel=RTOL, abs=1e-15
        )
        torch_opt.step()  # torch wants optimizer.step() before scheduler.step()
        schedule.step()
        torch_schedule.step()


def test_step_uses_the_scheduled_learning_rate():
    w = Parameter([0.0])
    opt = SGD([w], lr=1.0)
    schedule = StepLR(opt, step_size=1, gamma=0.5)
    for epoch in range(4):
        before = w.value.copy()
        w.grad[...] = 1.0
        opt.step()
        np.testing.assert_allclose(before - w.value, [0.5**epoch], rtol=1e-15)
        schedule.step()


def test_schedule_formulas_by_hand():
    opt = SGD([Parameter([0.0])], lr=0.2)
    cosine = CosineAnnealingLR(opt, T_max=8, eta_min=0.02)
    assert cosine.lr_at(0) == pytest.approx(0.2)
    assert cosine.lr_at(4) == pytest.approx(0.02 + (0.2 - 0.02) / 2)  # halfway: cos(pi/2) = 0
    assert cosine.lr_at(8) == pytest.approx(0.02)  # the bottom at T_max
    step = StepLR(SGD([Parameter([0.0])], lr=0.2), step_size=5, gamma=0.1)
    assert [step.lr_at(t) for t in (0, 4, 5, 9, 10)] == pytest.approx(
        [0.2, 0.2, 0.02, 0.02, 0.002]
    )


# --- state dicts ----------------------------------------------------------------------------

MAKERS = [
    lambda ps, lr=0.1: SGD(ps, lr, momentum=0.9, weight_decay=0.01),
    lambda ps, lr=0.1: Adam(ps, lr, betas=(0.8, 0.9), weight_decay=0.01),
    lambda ps, lr=0.1: AdamW(ps, lr, betas=(0.8, 0.9), weight_decay=0.1),
]


def _set_grads(params, grads):
    for p, g in zip(params, grads, strict=True):
        p.grad[...] = g


@pytest.mark.parametrize("make", MAKERS, ids=["SGD", "Adam", "AdamW"])
def test_state_dict_round_trip_resumes_identically(make):
    rng = np.random.default_rng(3)
    params = [Parameter(rng.normal(size=s)) for s in SHAPES]
    grads = [[rng.normal(size=s) for s in SHAPES] for _ in range(6)]
    opt = make(params)
    for g in grads[:3]:
        _set_grads(params, g)
        opt.step()
    state = opt.state_dict()
    assert all(isinstance(v, (int, float, np.ndarray)) for v in state.values())

    resumed_params = [Parameter(p.value) for p in params]
    resumed = make(resumed_params, lr=1.0)  # the state dict brings back lr too
    resumed.load_state_dict(state)
    assert resumed.lr == opt.lr
    fresh_params = [Parameter(p.value) for p in params]
    fresh = make(fresh_params)  # without the state: momentum and step count start again
    for array in state.values():
        if isinstance(array, np.ndarray):
            array += 1.0  # a copy: changing it changes neither optimizer
    for g in grads[3:]:
        for group, o in [(params, opt), (resumed_params, resumed), (fresh_params, fresh)]:
            _set_grads(group, g)
            o.step()
    for p, q, r in zip(params, resumed_params, fresh_params, strict=True):
        np.testing.assert_array_equal(q.value, p.value)
        assert not np.allclose(r.value, p.value, rtol=1e-6)


@pytest.mark.parametrize("make", MAKERS, ids=["SGD", "Adam", "AdamW"])
def test_state_dict_survives_np_savez(make):
    params = [Parameter(np.ones(s)) for s in SHAPES]
    opt = make(params)
    _set_grads(params, [np.ones(s) for s in SHAPES])
    opt.step()
    buffer = io.BytesIO()
    np.savez(buffer, **opt.state_dict())
    buffer.seek(0)
    with np.load(buffer) as stored:
        loaded = {name: stored[name] for name in stored.files}  # numbers come back as 0-d arrays
    other = make([Parameter(np.ones(s)) for s in SHAPES])
    other.load_state_dict(loaded)
    for name, value in opt.state_dict().items():
        np.testing.assert_array_equal(other.state_dict()[name], value)
        assert type(other.state_dict()[name]) is type(value)


def test_schedule_state_dict_round_trip_resumes_identically():
    opt = SGD([Parameter([0.0])], lr=0.5)
    schedule = CosineAnnealingLR(opt, T_max=10)
    for _ in range(4):
        schedule.step()
    resumed_opt = SGD([Parameter([0.0])], lr=0.5)
    resumed = CosineAnnealingLR(resumed_opt, T_max=10)
    resumed.load_state_dict(schedule.state_dict())
    for _ in range(8):
        schedule.step()
        resumed.step()
        assert resumed_opt.lr == opt.lr


def test_schedule_state_holds_its_settings_as_torch():
    # Loading brings back the settings too: a schedule built with other settings then goes on
    # as the saved one would, which is what torch's StepLR does after 3 epochs.
    opt = SGD([Parameter([0.0])], lr=0.5)
    schedule = StepLR(opt, step_size=2, gamma=0.5)
    for _ in range(3):
        schedule.step()
    state = schedule.state_dict()
    assert (state["step_size"], state["gamma"]) == (2, 0.5)
    resumed_opt = SGD([Parameter([0.0])], lr=0.5)
    resumed = StepLR(resumed_opt, step_size=10, gamma=0.1)
    resumed.load_state_dict(state)
    torch_opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.5)
    torch_schedule = torch.optim.lr_scheduler.StepLR(torch_opt, step_size=2, gamma=0.5)
    for _ in range(3):
        torch_opt.step()
        torch_schedule.step()
    for _ in range(8):
        torch_opt.step()
        torch_schedule.step()
        resumed.step()
        assert resumed_opt.lr == pytest.approx(torch_schedule.get_last_lr()[0], rel=RTOL)
    cosine = CosineAnnealingLR(SGD([Parameter([0.0])], lr=0.5), T_max=7, eta_min=0.01)
    assert {"T_max": 7, "eta_min": 0.01}.items() <= cosine.state_dict().items()


@pytest.mark.parametrize(
    ("source", "target", "match"),
    [
        (lambda o: StepLR(o, 2), lambda o: CosineAnnealingLR(o, 10),
         r"CosineAnnealingLR.*missing \['T_max', 'eta_min'\], unexpected \['gamma', 'step_size'\]"),
        (lambda o: CosineAnnealingLR(o, 10), lambda o: StepLR(o, 2),
         r"StepLR.*missing \['gamma', 'step_size'\], unexpected \['T_max', 'eta_min'\]"),
    ],
    ids=["StepLR into cosine", "cosine into StepLR"],
)
def test_schedule_refuses_the_state_of_another_schedule_and_changes_nothing(
    source, target, match
):
    state = source(SGD([Parameter([0.0])], lr=0.1)).state_dict()
    schedule = target(SGD([Parameter([0.0])], lr=0.5))
    schedule.step()
    before = schedule.state_dict()
    with pytest.raises(ValueError, match=match):
        schedule.load_state_dict(state)
    assert schedule.state_dict() == before


@pytest.mark.parametrize(
    ("make", "key", "value", "error", "match"),
    [
        (lambda o: StepLR(o, 2), "step_size", 0, ValueError, "'step_size'.* >= 1, got 0"),
        (lambda o: StepLR(o, 2), "step_size", 2.5, TypeError, "'step_size'.*integer"),
        (lambda o: StepLR(o, 2), "gamma", 0.0, ValueError, "'gamma'.* > 0, got 0.0"),
        (lambda o: StepLR(o, 2), "gamma", np.nan, ValueError, "'gamma'.*finite"),
        (lambda o: CosineAnnealingLR(o, 10), "T_max", -3, ValueError, "'T_max'.* >= 1"),
        (lambda o: CosineAnnealingLR(o, 10), "eta_min", -0.1, ValueError, "'eta_min'.* >= 0"),
        (lambda o: CosineAnnealingLR(o, 10), "last_epoch", -1, ValueError, "'last_epoch'"),
        (lambda o: CosineAnnealingLR(o, 10), "base_lr", -0.5, ValueError, "'base_lr'"),
    ],
)
def test_schedule_load_state_dict_checks_ranges_and_changes_nothing(
    make, key, value, error, match
):
    schedule = make(SGD([Parameter([0.0])], lr=0.1))
    schedule.step()
    before = schedule.state_dict()
    with pytest.raises(error, match=match):
        schedule.load_state_dict({**before, key: value})
    assert schedule.state_dict() == before


@pytest.mark.parametrize(
    ("make", "key", "value", "match"),
    [
        (lambda ps: SGD(ps, 0.1, momentum=0.9), "momentum", -5.0, "'momentum'.* >= 0, got -5"),
        (lambda ps: SGD(ps, 0.1), "weight_decay", -1.0, "'weight_decay'.* >= 0"),
        (lambda ps: SGD(ps, 0.1), "lr", -0.1, "'lr'.* >= 0"),
        (lambda ps: SGD(ps, 0.1), "lr", np.nan, "'lr'.*finite"),
        (lambda ps: Adam(ps), "beta2", 1.0, r"'beta2'.* must be in \[0, 1\), got 1.0"),
        (lambda ps: Adam(ps), "beta1", -0.1, "'beta1'.* >= 0"),
        (lambda ps: Adam(ps), "t", -1, "'t'.* >= 0, got -1"),
        (lambda ps: Adam(ps), "eps", 0.0, "'eps'.* > 0"),
        (lambda ps: Adam(ps), "weight_decay", -1.0, "'weight_decay'.* >= 0"),
    ],
)
def test_optimizer_load_state_dict_checks_ranges_as_init_and_changes_nothing(
    make, key, value, match
):
    params = [Parameter(np.ones(s)) for s in SHAPES]
    opt = make(params)
    _set_grads(params, [np.ones(s) for s in SHAPES])
    opt.step()
    before = opt.state_dict()
    state = opt.state_dict()
    for array in state.values():
        if isinstance(array, np.ndarray):
            array += 1.0  # a good change, beside the bad number: it must not be loaded either
    state[key] = value
    with pytest.raises(ValueError, match=match):
        opt.load_state_dict(state)
    for name, array in opt.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_optimizer_state_with_lr_0_from_a_finished_schedule_loads():
    opt = SGD([Parameter([1.0])], lr=0.1)
    schedule = CosineAnnealingLR(opt, T_max=2)
    for _ in range(2):
        schedule.step()
    assert opt.lr == 0.0  # eta_min = 0 at T_max
    other = SGD([Parameter([1.0])], lr=0.1)
    other.load_state_dict(opt.state_dict())
    assert other.lr == 0.0


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        (lambda s: s.pop("lr"), ValueError, r"missing \['lr'\]"),
        (lambda s: s.update({"extra": 1.0}), ValueError, r"unexpected \['extra'\]"),
        (lambda s: s.update({"exp_avg.0": np.ones(2)}), ValueError, r"shape \(3, 2\)"),
        (lambda s: s.update({"exp_avg_sq.1": "x"}), TypeError, "exp_avg_sq.1"),
        (lambda s: s.update({"t": 1.5}), TypeError, "'t'.*integer"),
        (lambda s: s.update({"lr": None}), TypeError, "'lr'"),
        (lambda s: s.update({"beta1": np.inf}), ValueError, "beta1"),
    ],
)
def test_load_state_dict_rejects_wrong_names_kinds_and_shapes_and_changes_nothing(
    change, error, match
):
    opt = Adam([Parameter(np.ones(s)) for s in SHAPES])
    before = opt.state_dict()
    state = opt.state_dict()
    change(state)
    with pytest.raises(error, match=match):
        opt.load_state_dict(state)
    for name, value in opt.state_dict().items():
        np.testing.assert_array_equal(value, before[name])


def test_load_state_dict_rejects_a_non_dict():
    with pytest.raises(TypeError, match="state must be a dict"):
        SGD([Parameter([1.0])], lr=0.1).load_state_dict([0.1])
    with pytest.raises(TypeError, match="state must be a dict"):
        StepLR(SGD([Parameter([1.0])], lr=0.1), 2).load_state_dict(None)


# --- bad input ------------------------------------------------------------------------------


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize(
    ("lr", "error"),
    [(0.0, ValueError), (-0.1, ValueError), (np.nan, ValueError), ("0.1", TypeError),
     (None, TypeError), (True, TypeError)],
)
def test_optimizers_reject_bad_lr(cls, lr, error):
    with pytest.raises(error, match="lr"):
        cls([Parameter([1.0])], lr=lr)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        ([], ValueError, "params must not be empty"),
        (Dense(2, 1, rng=0), TypeError, r"model.parameters\(\)"),
        (np.ones(3), TypeError, "params must be a list"),
        ((p for p in [Parameter([1.0])]), TypeError, "params must be a list"),
        ([np.ones(3)], TypeError, r"params\[0\] must be a Parameter"),
        ([Parameter([1.0]), torch.zeros(1)], TypeError, r"params\[1\] must be a Parameter"),
    ],
)
def test_optimizers_reject_bad_params(cls, params, error, match):
    with pytest.raises(error, match=match):
        cls(params, lr=0.1)


def test_optimizers_reject_a_parameter_listed_twice():
    w = Parameter([1.0])
    with pytest.raises(ValueError, match="appears twice"):
        SGD([w, Parameter([2.0]), w], lr=0.1)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(momentum=-0.1), ValueError, "momentum"),
        (dict(momentum="0.9"), TypeError, "momentum"),
        (dict(weight_decay=-1.0), ValueError, "weight_decay"),
        (dict(weight_decay=np.inf), ValueError, "weight_decay"),
        (dict(weight_decay=10**400), ValueError, "weight_decay must be finite, got int 1000"),
    ],
)
def test_sgd_rejects_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        SGD([Parameter([1.0])], lr=0.1, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(betas=(1.0, 0.9)), ValueError, r"betas\[0\] must be in \[0, 1\)"),
        (dict(betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be in \[0, 1\)"),
        (dict(betas=(-0.1, 0.9)), ValueError, r"betas\[0\]"),
        (dict(betas=("a", 0.9)), TypeError, r"betas\[0\]"),
        (dict(betas=(0.9,)), TypeError, "betas must be a pair"),
        (dict(betas=0.9), TypeError, "betas must be a pair"),
        (dict(eps=0.0), ValueError, "eps"),
        (dict(eps=-1e-8), ValueError, "eps"),
        (dict(weight_decay=-0.1), ValueError, "weight_decay"),
    ],
)
def test_adam_rejects_bad_hyperparameters(kwargs, error, match):
    with pytest.raises(error, match=match):
        Adam([Parameter([1.0])], **kwargs)


@pytest.mark.parametrize("cls", [SGD, Adam, AdamW])
def test_step_rejects_a_negative_lr_set_after_construction(cls):
    w = Parameter([1.0])
    opt = cls([w], lr=0.1)
    opt.lr = -0.1
    with pytest.raises(ValueError, match="lr must be >= 0"):
        opt.step()
    np.testing.assert_array_equal(w.value, [1.0])


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda o: StepLR(o, step_size=0), ValueError, "step_size"),
        (lambda o: StepLR(o, step_size=2.5), TypeError, "step_size"),
        (lambda o: StepLR(o, 2, gamma=0.0), ValueError, "gamma"),
        (lambda o: StepLR(o, 2, gamma="0.1"), TypeError, "gamma"),
        (lambda o: CosineAnnealingLR(o, T_max=0), ValueError, "T_max"),
        (lambda o: CosineAnnealingLR(o, T_max=1.5), TypeError, "T_max"),
        (lambda o: CosineAnnealingLR(o, 10, eta_min=-0.1), ValueError, "eta_min"),
        (lambda o: StepLR(None, 2), TypeError, "optimizer"),
        (lambda o: CosineAnnealingLR(torch.optim.SGD([torch.zeros(1)], lr=0.1), 10),
         TypeError, "torch.optim.lr_scheduler"),
    ],
)
def test_schedules_reject_bad_arguments(make, error, match):
    with pytest.raises(error, match=match):
        make(SGD([Parameter([1.0])], lr=0.1))


def test_base_classes_need_step_and_lr_at():
    with pytest.raises(NotImplementedError, match="step"):
        Optimizer([Parameter([1.0])], lr=0.1).step()
    with pytest.raises(NotImplementedError, match="lr_at"):
        LRScheduler(SGD([Parameter([1.0])], lr=0.1)).step()
