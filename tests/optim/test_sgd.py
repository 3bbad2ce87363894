"""SGD (momentum, dampening, Nesterov, weight decay) against a NumPy version of its update rule,
written here from PyTorch's docs."""

import numpy as np
import pytest

from minidl.optim import SGD
from tests.optim.quadratic import run_optimizer, run_reference


# ---- references, written from the formulas --------------------------------------------------
def sgd_ref(lr, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
    def update(p, g, state):
        d = g + weight_decay * p
        if momentum:
            if "b" in state:
                state["b"] = momentum * state["b"] + (1 - dampening) * d
            else:
                state["b"] = d.copy()
            d = d + momentum * state["b"] if nesterov else state["b"]
        return p - lr * d
    return update


SGD_CASES = [
    dict(lr=0.1),
    dict(lr=0.1, weight_decay=0.05),
    dict(lr=0.05, momentum=0.9),
    dict(lr=0.05, momentum=0.9, dampening=0.3),
    dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01),
]


@pytest.mark.parametrize("kw", SGD_CASES)
def test_sgd_matches_reference(kw):
    got = run_optimizer(lambda ps: SGD(ps, **kw), 6)
    want = run_reference(sgd_ref(**kw), 6)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)
