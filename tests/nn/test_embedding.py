"""nn.Embedding: lookup, scatter-add gradient, padding_idx, init, errors."""


import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, gradcheck

rng = np.random.default_rng(0)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


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
