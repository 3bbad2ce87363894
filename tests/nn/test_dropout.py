"""nn.Dropout and nn.Dropout2d: inverted dropout, the same mask in backward, seeding."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, gradcheck

rng = np.random.default_rng(0)
RNG = np.random.default_rng(2)


def t64(a, grad=False):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


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


def test_dropout2d_zeros_whole_channels_and_is_reproducible():
    x = Tensor(np.ones((8, 16, 3, 3), np.float32))
    drop = nn.Dropout2d(0.5)
    minidl.manual_seed(3)
    y = drop(x).data
    per_map = y.reshape(8, 16, 9)
    assert np.all(per_map.min(axis=2) == per_map.max(axis=2))  # each map all 0 or all 2
    assert set(np.unique(per_map)) == {0.0, 2.0}
    minidl.manual_seed(3)
    np.testing.assert_array_equal(drop(x).data, y)
    drop.eval()
    assert drop(x) is x
