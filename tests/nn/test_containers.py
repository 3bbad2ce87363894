"""Sequential, ModuleList, ModuleDict."""

from collections import OrderedDict

import numpy as np
import pytest

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor

rng = np.random.default_rng(0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- containers --------------------------------------------------------------------
def test_sequential_runs_in_order_and_indexes():
    a, b = nn.Linear(3, 4), nn.Linear(4, 2)
    seq = nn.Sequential(a, nn.Tanh(), b)
    x = Tensor(rng.normal(size=(2, 3)).astype(np.float32))
    np.testing.assert_allclose(seq(x).data, b(F.tanh(a(x))).data)
    assert len(seq) == 3 and seq[0] is a and seq[-1] is b
    assert isinstance(seq[1:], nn.Sequential) and list(seq[1:])[1] is b
    named = nn.Sequential(OrderedDict(first=a, second=b))
    assert [n for n, _ in named.named_parameters()] == ["first.weight", "first.bias",
                                                         "second.weight", "second.bias"]
    with pytest.raises(IndexError, match="Sequential: index 3 is out of range for 3 modules"):
        seq[3]
    with pytest.raises(TypeError, match="Sequential: expected a Module, got function"):
        nn.Sequential(F.relu)


def test_module_list():
    layers = nn.ModuleList([nn.Linear(2, 2) for _ in range(3)])
    layers.append(nn.ReLU())
    layers.insert(0, nn.Identity())
    assert len(layers) == 5 and isinstance(layers[0], nn.Identity)
    assert [n for n, _ in layers.named_children()] == ["0", "1", "2", "3", "4"]
    assert len(list(layers.parameters())) == 6
    layers[1] = nn.Tanh()
    assert len(list(layers.parameters())) == 4
    with pytest.raises(TypeError, match="does not define forward"):
        layers(Tensor(np.zeros(2)))


def test_module_dict():
    heads = nn.ModuleDict({"cls": nn.Linear(4, 3), "box": nn.Linear(4, 4)})
    assert list(heads) == ["cls", "box"] and "cls" in heads
    assert [n for n, _ in heads.named_parameters()][:2] == ["cls.weight", "cls.bias"]
    heads["extra"] = nn.ReLU()
    assert heads.pop("extra").__class__ is nn.ReLU
    with pytest.raises(KeyError, match="ModuleDict: no module named 'mask'"):
        heads["mask"]
