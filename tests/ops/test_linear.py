"""F.linear against explicit loops."""


import numpy as np

import minidl.nn.functional as F
from minidl import Tensor
from minidl.testing import check_op

rng = np.random.default_rng(0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- Linear ------------------------------------------------------------------------
def linear_ref(x, w, b):
    """y[..., o] = sum_i x[..., i] w[o, i] + b[o], by explicit loops over the output."""
    out = np.zeros(x.shape[:-1] + (w.shape[0],))
    for o in range(w.shape[0]):
        out[..., o] = (x * w[o]).sum(axis=-1) + b[o]
    return out


def test_functional_linear():
    x, w, b = rng.normal(size=(2, 3, 4)), rng.normal(size=(5, 4)), rng.normal(size=5)
    check_op(F.linear, linear_ref, [x, w, b])
    check_op(lambda a, c: F.linear(a, c), lambda a, c: linear_ref(a, c, np.zeros(5)), [x, w])
