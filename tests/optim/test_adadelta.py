"""Adadelta against a NumPy version of its update rule, written here from PyTorch's docs
(torch.optim.Adadelta) and Zeiler (2012), Algorithm 1."""

import numpy as np
import pytest

from minidl.optim import Adadelta
from tests.optim.quadratic import references_differ, run_optimizer, run_reference


def adadelta_ref(lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, eps_outside_sqrt=False):
    """Zeiler's Algorithm 1 with PyTorch's lr factor and weight decay. ``eps_outside_sqrt``
    is a plausible misreading, used only to show that the cases tell it apart."""
    def rms(x):
        return np.sqrt(x) + eps if eps_outside_sqrt else np.sqrt(x + eps)

    def update(p, g, state):
        g = g + weight_decay * p
        state["Eg2"] = rho * state.get("Eg2", 0.0) + (1 - rho) * g ** 2
        dx = rms(state.get("Edx2", 0.0)) / rms(state["Eg2"]) * g
        state["Edx2"] = rho * state.get("Edx2", 0.0) + (1 - rho) * dx ** 2
        return p - lr * dx
    return update


ADADELTA_CASES = [
    dict(),
    dict(lr=0.5, rho=0.8, eps=1e-2),
    dict(lr=2.0, rho=0.95, eps=1e-4, weight_decay=0.2),
]


@pytest.mark.parametrize("kw", ADADELTA_CASES)
def test_adadelta_matches_reference(kw):
    got = run_optimizer(lambda ps: Adadelta(ps, **kw), 6)
    want = run_reference(adadelta_ref(**kw), 6)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


def test_the_cases_tell_the_formula_from_its_misreadings():
    def differs(kw, **wrong):
        return references_differ(adadelta_ref(**kw), adadelta_ref(**{**kw, **wrong}))

    assert differs(ADADELTA_CASES[1], eps_outside_sqrt=True)
    assert differs(ADADELTA_CASES[1], lr=1.0)       # lr multiplies the step
    assert differs(ADADELTA_CASES[2], weight_decay=0.0)
    assert differs(ADADELTA_CASES[1], rho=0.9)


def test_first_step_size_is_about_sqrt_eps_over_rms_of_g():
    """u = 0 at the start, so the first step is lr * sqrt(eps) / sqrt((1 - rho) g^2 + eps) * g."""
    got = run_optimizer(lambda ps: Adadelta(ps, lr=1.0, rho=0.9, eps=1e-6), 1)[0]
    start = run_reference(lambda p, g, state: p, 1)[0]
    g = run_reference(lambda p, g, state: g, 1)[0]
    np.testing.assert_allclose(start - got, 1e-3 * g / np.sqrt(0.1 * g ** 2 + 1e-6), rtol=1e-12)
