"""Activation modules against NumPy references, and their reprs."""

import math

import numpy as np
import pytest

import minidl.nn as nn
from minidl import Tensor
from minidl.testing import check_op

rng = np.random.default_rng(0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- activation modules ------------------------------------------------------------
def softmax_ref(a, axis):
    e = np.exp(a - a.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


ACTIVATIONS = [
    (nn.ReLU(), lambda a: np.where(a > 0, a, 0.0)),
    (nn.LeakyReLU(0.2), lambda a: np.where(a > 0, a, 0.2 * a)),
    (nn.ELU(0.5), lambda a: np.where(a > 0, a, 0.5 * (np.exp(a) - 1))),
    (nn.Sigmoid(), lambda a: 1 / (1 + np.exp(-a))),
    (nn.Tanh(), np.tanh),
    (nn.GELU(), lambda a: 0.5 * a * (1 + np.tanh(math.sqrt(2 / math.pi) * (a + 0.044715 * a**3)))),
    (nn.Softmax(dim=1), lambda a: softmax_ref(a, 1)),
    (nn.LogSoftmax(dim=-1), lambda a: np.log(softmax_ref(a, -1))),
]


@pytest.mark.parametrize("module,ref", ACTIVATIONS, ids=lambda v: type(v).__name__)
def test_activation_modules(module, ref):
    x = rng.normal(size=(3, 4))
    x[np.abs(x) < 1e-3] = 0.5  # keep away from the kink of ReLU-like functions
    check_op(module, ref, [x])
    assert list(module.parameters()) == []


def test_activation_reprs():
    assert repr(nn.LeakyReLU(0.2)) == "LeakyReLU(negative_slope=0.2)"
    assert repr(nn.Softmax(dim=1)) == "Softmax(dim=1)"
    assert repr(nn.ReLU()) == "ReLU()"
