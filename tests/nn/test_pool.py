"""Pooling modules call their functional ops."""


import numpy as np

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor

RNG = np.random.default_rng(2)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


def test_pooling_modules_call_their_ops():
    x = _x(2, 3, 8, 6)
    np.testing.assert_array_equal(nn.MaxPool2d(3, 2, 1)(x).data, F.max_pool2d(x, 3, 2, 1).data)
    np.testing.assert_array_equal(nn.AvgPool2d(2, count_include_pad=False)(x).data,
                                  F.avg_pool2d(x, 2).data)
    assert nn.AdaptiveAvgPool2d(1)(x).shape == (2, 3, 1, 1)
    assert nn.AdaptiveAvgPool2d((None, 2))(x).shape == (2, 3, 8, 2)
    assert nn.AdaptiveMaxPool2d((3, 3))(x).shape == (2, 3, 3, 3)
    pool, unpool = nn.MaxPool2d(2, return_indices=True), nn.MaxUnpool2d(2)
    y, idx = pool(x)
    restored = unpool(y, idx)
    assert restored.shape == x.shape
    np.testing.assert_array_equal(restored.data[restored.data != 0], x.data[restored.data != 0])
    assert "kernel_size=3" in repr(nn.MaxPool2d(3))
