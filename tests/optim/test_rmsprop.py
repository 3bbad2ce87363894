"""RMSprop (centered, momentum) against a NumPy version of its update rule, from PyTorch's docs."""

import numpy as np
import pytest

from minidl.optim import RMSprop
from tests.optim.quadratic import run_optimizer, run_reference


def rmsprop_ref(lr, alpha, eps, weight_decay=0.0, momentum=0.0, centered=False):
    def update(p, g, state):
        g = g + weight_decay * p
        state["s"] = alpha * state.get("s", 0.0) + (1 - alpha) * g ** 2
        var = state["s"]
        if centered:
            state["a"] = alpha * state.get("a", 0.0) + (1 - alpha) * g
            var = var - state["a"] ** 2
        step = g / (np.sqrt(var) + eps)
        if momentum:
            state["buf"] = momentum * state.get("buf", 0.0) + step
            step = state["buf"]
        return p - lr * step
    return update


RMSPROP_CASES = [
    dict(lr=0.01, alpha=0.99, eps=1e-8),
    dict(lr=0.01, alpha=0.9, eps=1e-6, weight_decay=0.1, momentum=0.5),
    dict(lr=0.01, alpha=0.9, eps=1e-8, centered=True),
    dict(lr=0.01, alpha=0.95, eps=1e-8, centered=True, momentum=0.9),
]


@pytest.mark.parametrize("kw", RMSPROP_CASES)
def test_rmsprop_matches_reference(kw):
    got = run_optimizer(lambda ps: RMSprop(ps, **kw), 6)
    want = run_reference(rmsprop_ref(**kw), 6)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
