"""nn.Linear (forward, gradcheck, errors, dtype), Identity and Flatten."""


import numpy as np
import pytest

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, gradcheck
from minidl.testing import check_op
from tests.ops.test_linear import linear_ref

rng = np.random.default_rng(0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def test_linear_module_forward_and_gradcheck():
    layer = nn.Linear(4, 3).double()
    x = t64(rng.normal(size=(6, 4)), grad=True)
    np.testing.assert_allclose(layer(x).data,
                               linear_ref(x.data, layer.weight.data, layer.bias.data),
                               rtol=1e-12)
    assert gradcheck(lambda a, w, b: F.linear(a, w, b), [x, layer.weight, layer.bias])
    assert layer.weight.shape == (3, 4) and layer.bias.shape == (3,)
    assert repr(layer).startswith("Linear(in_features=4, out_features=3, bias=True)")


def test_linear_wrong_last_dim():
    layer = nn.Linear(5, 2)
    with pytest.raises(ValueError, match=r"Linear: expected input with last dimension 5, "
                                         r"got shape \(3, 4\)"):
        layer(Tensor(np.zeros((3, 4), dtype=np.float32)))


def test_linear_float32_output():
    layer = nn.Linear(3, 2)
    assert layer(Tensor(np.ones((1, 3), dtype=np.float32))).dtype == np.float32


def test_identity_and_flatten():
    x = Tensor(rng.normal(size=(2, 3, 4, 5)))
    assert nn.Identity(54, any_arg=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    check_op(lambda a: nn.Flatten()(a), lambda a: a.reshape(2, -1), [x.data])
