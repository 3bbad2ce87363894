"""LR schedules against their closed forms, warmup (Goyal et al. 2017) and composition."""

import math

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.optim import SGD, Adam
from minidl.optim.lr_scheduler import (
    CosineAnnealingLR,
    LambdaLR,
    MultiStepLR,
    StepLR,
    WarmupLR,
)


def make_opt(lr=0.1, lrs=None):
    if lrs is None:
        return SGD([Tensor(np.ones(2), requires_grad=True)], lr=lr, momentum=0.9)
    return SGD([{"params": [Tensor(np.ones(2), requires_grad=True)], "lr": x} for x in lrs],
               lr=lr)


def lrs_over(sched, steps):
    """lr of group 0 at t = 0 .. steps-1, read from the optimizer each time."""
    out = []
    for _ in range(steps):
        out.append(sched.optimizer.param_groups[0]["lr"])
        assert sched.get_last_lr()[0] == out[-1]
        sched.step()
    return np.array(out)


def test_step_lr():
    sched = StepLR(make_opt(0.1), step_size=3, gamma=0.5)
    t = np.arange(10)
    np.testing.assert_allclose(lrs_over(sched, 10), 0.1 * 0.5 ** (t // 3))
    assert sched.last_epoch == 10


def test_multistep_lr():
    sched = MultiStepLR(make_opt(1.0), milestones=[5, 2, 7], gamma=0.1)
    want = [1.0 if t < 2 else 0.1 if t < 5 else 0.01 if t < 7 else 0.001 for t in range(10)]
    np.testing.assert_allclose(lrs_over(sched, 10), want)


def test_lambda_lr_per_group():
    opt = make_opt(lrs=[1.0, 2.0])
    sched = LambdaLR(opt, [lambda t: 0.9 ** t, lambda t: 1 / (t + 1)])
    for t in range(5):
        np.testing.assert_allclose(sched.get_last_lr(), [0.9 ** t, 2.0 / (t + 1)])
        sched.step()
    with pytest.raises(ValueError, match="LambdaLR: expected 2 lr_lambdas"):
        LambdaLR(opt, [lambda t: 1.0])


def test_cosine_annealing():
    sched = CosineAnnealingLR(make_opt(0.5), T_max=10, eta_min=0.01)
    t = np.arange(11)
    want = 0.01 + (0.5 - 0.01) * (1 + np.cos(np.pi * t / 10)) / 2
    np.testing.assert_allclose(lrs_over(sched, 11), want, rtol=1e-12)


def test_linear_warmup_goyal():
    """Gradual warmup: from lr/k, a constant increment per step, reaching lr at warmup_steps."""
    k, warmup = 8, 5
    sched = WarmupLR(make_opt(0.8), warmup_steps=warmup, start_factor=1 / k, mode="linear")
    got = lrs_over(sched, 9)
    np.testing.assert_allclose(got[:6], np.linspace(0.1, 0.8, 6), rtol=1e-12)
    np.testing.assert_allclose(np.diff(got[:6]), (0.8 - 0.1) / warmup, rtol=1e-9)
    np.testing.assert_allclose(got[5:], 0.8)


def test_constant_warmup_goyal():
    sched = WarmupLR(make_opt(0.8), warmup_steps=3, start_factor=0.25, mode="constant")
    np.testing.assert_allclose(lrs_over(sched, 6), [0.2, 0.2, 0.2, 0.8, 0.8, 0.8])


def test_warmup_composes_with_cosine():
    opt = make_opt(1.0)
    cosine = CosineAnnealingLR(opt, T_max=20)
    sched = WarmupLR(opt, warmup_steps=4, start_factor=0.1, after=cosine)
    got = lrs_over(sched, 21)
    t = np.arange(21)
    cos = (1 + np.cos(np.pi * t / 20)) / 2
    factor = np.where(t < 4, 0.1 + 0.9 * t / 4, 1.0)
    np.testing.assert_allclose(got, factor * cos, rtol=1e-12)
    assert cosine.last_epoch == sched.last_epoch == 21


def test_warmup_composes_with_multistep_per_group():
    opt = make_opt(lrs=[0.4, 0.04])
    sched = WarmupLR(opt, 2, start_factor=0.5, mode="constant",
                     after=MultiStepLR(opt, [3], gamma=0.1))
    want = [[0.2, 0.02], [0.2, 0.02], [0.4, 0.04], [0.04, 0.004], [0.04, 0.004]]
    for row in want:
        np.testing.assert_allclose(sched.get_last_lr(), row, rtol=1e-12)
        np.testing.assert_allclose([g["lr"] for g in opt.param_groups], row, rtol=1e-12)
        sched.step()


def test_scheduler_changes_the_optimizer_step():
    p = Tensor(np.zeros(1), requires_grad=True)
    opt = SGD([p], lr=1.0)
    sched = StepLR(opt, step_size=1, gamma=0.5)
    for _ in range(3):
        p.grad = np.ones(1)
        opt.step()
        sched.step()
    np.testing.assert_allclose(p.data, -(1 + 0.5 + 0.25))


def test_scheduler_and_optimizer_resume(tmp_path):
    def build():
        opt = Adam([Tensor(np.ones(2), requires_grad=True)], lr=0.1)
        return opt, WarmupLR(opt, 3, after=CosineAnnealingLR(opt, T_max=10))

    opt, sched = build()
    for _ in range(4):
        sched.step()
    minidl.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict()},
                tmp_path / "c.npz")
    saved = minidl.load(tmp_path / "c.npz")
    opt2, sched2 = build()
    opt2.load_state_dict(saved["optimizer"])
    sched2.load_state_dict(saved["scheduler"])
    assert sched2.last_epoch == 4 and sched2.after.last_epoch == 4
    assert opt2.param_groups[0]["lr"] == opt.param_groups[0]["lr"]
    sched.step()
    sched2.step()
    assert sched2.get_last_lr() == sched.get_last_lr()


def test_initial_lr_is_remembered():
    opt = make_opt(0.3)
    StepLR(opt, 2)
    assert opt.param_groups[0]["initial_lr"] == 0.3
    with pytest.raises(KeyError, match="initial_lr"):
        StepLR(make_opt(0.3), 2, last_epoch=5)


@pytest.mark.parametrize("make, error, match", [
    (lambda o: StepLR(o, step_size=0), ValueError, "StepLR: step_size must be an int >= 1"),
    (lambda o: StepLR(o, step_size=2, gamma=-1), ValueError, "StepLR: gamma must be"),
    (lambda o: MultiStepLR(o, [1.5]), ValueError, "MultiStepLR: each milestone"),
    (lambda o: CosineAnnealingLR(o, T_max=0), ValueError, "CosineAnnealingLR: T_max"),
    (lambda o: WarmupLR(o, 5, start_factor=0), ValueError, r"WarmupLR: start_factor .* \(0, 1\]"),
    (lambda o: WarmupLR(o, 5, mode="cubic"), ValueError, "WarmupLR: mode must be"),
    (lambda o: WarmupLR(o, -1), ValueError, "WarmupLR: warmup_steps must be an int >= 0"),
    (lambda o: WarmupLR(o, 5, after=StepLR(make_opt(), 1)), ValueError, "same optimizer"),
    (lambda o: StepLR("opt", 2), TypeError, "StepLR: expected an Optimizer"),
])
def test_bad_input(make, error, match):
    opt = make_opt()
    with pytest.raises(error, match=match):
        make(opt)


def test_warmup_zero_steps_is_the_after_schedule():
    opt = make_opt(0.1)
    sched = WarmupLR(opt, 0, after=StepLR(opt, 2, gamma=0.5))
    np.testing.assert_allclose(lrs_over(sched, 5), 0.1 * 0.5 ** (np.arange(5) // 2))
    assert math.isclose(sched.get_lr()[0], 0.1 * 0.5 ** 2)


def test_resume_from_the_flat_layout_of_earlier_versions():
    sched = StepLR(make_opt(0.1), step_size=2, gamma=0.5)
    sched.load_state_dict({"last_epoch": np.array(3), "base_lrs": np.array([0.1])})
    assert sched.last_epoch == 3 and sched.get_last_lr() == [0.1 * 0.5]


ALL_SCHEDULERS = {
    "StepLR": (lambda o: StepLR(o, step_size=2, gamma=0.5), lambda t: 0.5 ** (t // 2)),
    "MultiStepLR": (lambda o: MultiStepLR(o, [1, 3], gamma=0.1),
                    lambda t: 0.1 ** ((t >= 1) + (t >= 3))),
    "LambdaLR": (lambda o: LambdaLR(o, lambda t: 1 / (1 + t)), lambda t: 1 / (1 + t)),
    "CosineAnnealingLR": (lambda o: CosineAnnealingLR(o, T_max=4),
                          lambda t: (1 + math.cos(math.pi * t / 4)) / 2),
    "WarmupLR": (lambda o: WarmupLR(o, 2, start_factor=0.5), lambda t: min(1, 0.5 + 0.25 * t)),
}


@pytest.mark.parametrize("name", list(ALL_SCHEDULERS))
def test_get_last_lr_of_every_scheduler_is_the_lr_of_every_group(name):
    make, factor = ALL_SCHEDULERS[name]
    opt = make_opt(lrs=[0.4, 0.02])
    sched = make(opt)
    for t in range(5):
        want = [0.4 * factor(t), 0.02 * factor(t)]
        np.testing.assert_allclose(sched.get_last_lr(), want, rtol=1e-12)
        assert sched.get_last_lr() == [g["lr"] for g in opt.param_groups]
        sched.step()


@pytest.mark.parametrize("lr_lambda, match", [(lambda t: 1 - t, "would be -0.1"),
                                              (lambda t: math.nan if t else 1.0, "would be nan")])
def test_a_schedule_that_would_set_a_bad_lr_raises_and_keeps_the_last_one(lr_lambda, match):
    opt = make_opt(0.1)
    sched = LambdaLR(opt, lr_lambda)
    if "-0.1" in match:
        sched.step()  # t = 1: lr 0
    with pytest.raises(ValueError, match=f"LambdaLR: the lr for step .* {match}"):
        sched.step()
    assert opt.param_groups[0]["lr"] == sched.get_last_lr()[0] >= 0
