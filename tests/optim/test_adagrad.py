"""Adagrad against a NumPy version of its update rule, written here from PyTorch's docs
(torch.optim.Adagrad) and Duchi, Hazan & Singer (2011)."""

import numpy as np
import pytest

from minidl.optim import Adagrad
from tests.optim.quadratic import references_differ, run_optimizer, run_reference


def adagrad_ref(lr, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10,
                decay_from_first_step=False, eps_inside_sqrt=False):
    """PyTorch's algorithm box. The two flags are plausible misreadings, used only to show
    that the test cases below can tell them apart from the right formula."""
    def update(p, g, state):
        t = state["t"] = state.get("t", 0) + 1
        decayed_lr = lr / (1 + (t if decay_from_first_step else t - 1) * lr_decay)
        g = g + weight_decay * p
        state["sum"] = state.get("sum", initial_accumulator_value) + g ** 2
        denom = np.sqrt(state["sum"] + eps) if eps_inside_sqrt else np.sqrt(state["sum"]) + eps
        return p - decayed_lr * g / denom
    return update


ADAGRAD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, lr_decay=0.5),
    dict(lr=0.1, weight_decay=0.3, initial_accumulator_value=2.0),
    dict(lr=0.2, eps=0.5, lr_decay=0.1),
]


@pytest.mark.parametrize("kw", ADAGRAD_CASES)
def test_adagrad_matches_reference(kw):
    got = run_optimizer(lambda ps: Adagrad(ps, **kw), 6)
    want = run_reference(adagrad_ref(**kw), 6)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_cases_tell_the_formula_from_its_misreadings():
    """lr decay counted from t instead of t - 1, eps under the square root, a zero start for
    the sum, weight decay ignored: each changes the trajectory of some case above."""
    def differs(kw, **wrong):
        return references_differ(adagrad_ref(**kw), adagrad_ref(**{**kw, **wrong}))

    assert differs(ADAGRAD_CASES[1], decay_from_first_step=True)
    assert differs(ADAGRAD_CASES[3], eps_inside_sqrt=True)
    assert differs(ADAGRAD_CASES[2], initial_accumulator_value=0.0)
    assert differs(ADAGRAD_CASES[2], weight_decay=0.0)


def test_first_step_is_lr_times_the_sign():
    """With a zero start, s = g^2 after one step, so the step is lr * g / |g| (eps aside)."""
    got = run_optimizer(lambda ps: Adagrad(ps, lr=0.1, eps=0.0), 1)[0]
    start = run_reference(lambda p, g, state: p, 1)[0]
    grad = run_reference(lambda p, g, state: g, 1)[0]
    np.testing.assert_allclose(got, start - 0.1 * np.sign(grad), rtol=1e-12)
