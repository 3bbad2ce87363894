"""Upsample modules."""


import numpy as np
import pytest

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor

RNG = np.random.default_rng(2)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


def test_upsample_modules():
    x = _x(1, 2, 3, 4)
    up = nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False)
    np.testing.assert_array_equal(up(x).data, F.interpolate(x, scale_factor=2, mode="bilinear",
                                                            align_corners=False).data)
    np.testing.assert_array_equal(nn.UpsamplingBilinear2d(size=(5, 7))(x).data,
                                  F.interpolate(x, (5, 7), mode="bilinear",
                                                align_corners=True).data)
    assert nn.UpsamplingNearest2d(scale_factor=3)(x).shape == (1, 2, 9, 12)
    assert "mode='bilinear'" in repr(up)
    with pytest.raises(ValueError, match="Upsample: give exactly one of size and scale_factor"):
        nn.Upsample()
    with pytest.raises(ValueError, match="Upsample: mode must be one of"):
        nn.Upsample(size=3, mode="cubic")
