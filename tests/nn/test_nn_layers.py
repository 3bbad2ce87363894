"""Layers: Linear, containers, Identity, Flatten, activation modules, Dropout, Embedding."""

import math
from collections import OrderedDict

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, gradcheck
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


def test_identity_and_flatten():
    x = Tensor(rng.normal(size=(2, 3, 4, 5)))
    assert nn.Identity(54, any_arg=1)(x) is x
    assert nn.Flatten()(x).shape == (2, 60)
    assert nn.Flatten(0, 1)(x).shape == (6, 4, 5)
    check_op(lambda a: nn.Flatten()(a), lambda a: a.reshape(2, -1), [x.data])


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


# ---- dropout -----------------------------------------------------------------------
def test_dropout_is_inverted_and_unbiased():
    minidl.manual_seed(0)
    x = Tensor(np.ones((200, 500), dtype=np.float32))
    y = F.dropout(x, p=0.3).data
    kept = y != 0
    assert abs(kept.mean() - 0.7) < 0.01
    np.testing.assert_allclose(y[kept], 1 / 0.7, rtol=1e-6)
    assert abs(y.mean() - 1) < 0.02
    assert y.dtype == np.float32


def test_dropout_gradient_uses_the_same_mask():
    x = t64(rng.normal(size=(4, 5)), grad=True)
    fn = lambda a: F.dropout(a, 0.4, generator=np.random.default_rng(5))  # noqa: E731
    assert gradcheck(fn, [x])
    y = fn(x)
    y.sum().backward()
    np.testing.assert_allclose(x.grad, (y.data != 0) / 0.6)


def test_dropout_identity_cases():
    x = Tensor(rng.normal(size=(3, 3)))
    assert F.dropout(x, 0.5, training=False) is x
    assert F.dropout(x, 0.0) is x
    layer = nn.Dropout(0.5).eval()
    assert layer(x) is x


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
def test_dropout_probability_out_of_range(p):
    with pytest.raises(ValueError, match=r"dropout: dropout probability p must be in \[0, 1\)"):
        F.dropout(Tensor(np.ones(3)), p)
    with pytest.raises(ValueError, match=r"Dropout: dropout probability p must be in \[0, 1\)"):
        nn.Dropout(p)


def test_same_seed_same_dropout_mask():
    x = Tensor(np.ones((10, 10), dtype=np.float32))
    layer = nn.Dropout(0.5)
    minidl.manual_seed(11)
    a = layer(x).data
    minidl.manual_seed(11)
    b = layer(x).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, layer(x).data)


def test_dropout2d_drops_whole_channels():
    minidl.manual_seed(2)
    x = Tensor(np.ones((4, 8, 3, 3), dtype=np.float32))
    y = nn.Dropout2d(0.5)(x).data
    per_channel = y.reshape(4, 8, 9)
    assert ((per_channel == 0).all(axis=2) | (per_channel == 2).all(axis=2)).all()
    with pytest.raises(ValueError, match="dropout2d: expected input"):
        F.dropout2d(Tensor(np.ones((2, 3))))


# ---- embedding ---------------------------------------------------------------------
def test_embedding_forward_and_scatter_add_gradient():
    emb = nn.Embedding(6, 3).double()
    idx = np.array([[1, 4, 1], [0, 1, 5]])
    out = emb(Tensor(idx))
    want = np.stack([[emb.weight.data[i] for i in row] for row in idx])
    np.testing.assert_array_equal(out.data, want)
    g = rng.normal(size=out.shape)
    out.backward(g)
    expected = np.zeros((6, 3))
    for (n, k), i in np.ndenumerate(idx):
        expected[i] += g[n, k]  # token 1 appears three times: three gradients add up
    np.testing.assert_allclose(emb.weight.grad, expected, rtol=1e-12)
    assert gradcheck(lambda w: F.embedding(idx, w), [emb.weight])


def test_embedding_padding_idx_gets_no_gradient():
    minidl.manual_seed(0)
    emb = nn.Embedding(5, 2, padding_idx=0)
    np.testing.assert_array_equal(emb.weight.data[0], 0.0)
    emb.weight.data[0] = 3.0  # the row's value is still returned as is
    idx = np.array([0, 2, 0, 4])
    out = emb(idx)
    np.testing.assert_array_equal(out.data[0], 3.0)
    out.sum().backward()
    np.testing.assert_array_equal(emb.weight.grad[0], 0.0)
    np.testing.assert_array_equal(emb.weight.grad[2], 1.0)
    assert repr(emb).startswith("Embedding(5, 2, padding_idx=0)")


def test_embedding_init_is_standard_normal():
    minidl.manual_seed(0)
    w = nn.Embedding(1000, 50).weight.data
    assert abs(w.mean()) < 0.01 and abs(w.std() - 1) < 0.01


def test_embedding_errors():
    emb = nn.Embedding(10, 2)
    with pytest.raises(IndexError, match=r"Embedding: index 10 is out of range for 10 "
                                         r"embeddings \(valid 0..9\)"):
        emb(np.array([1, 10]))
    with pytest.raises(IndexError, match="index -1 is out of range"):
        emb(np.array([-1, 3]))
    with pytest.raises(TypeError, match="Embedding: indices must be integers"):
        emb(np.array([1.0, 2.0]))
    with pytest.raises(ValueError, match="padding_idx 10 must be within"):
        nn.Embedding(10, 2, padding_idx=10)
