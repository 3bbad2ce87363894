"""RoIAlign / RoIPool layers, map_levels, infer_scale and MultiScaleRoIAlign."""

import math

import numpy as np
import pytest

import minidl.nn.functional as F
from minidl import Tensor, gradcheck
from minidl.vision.roi import MultiScaleRoIAlign, RoIAlign, RoIPool, infer_scale, map_levels
from tests.ops.test_roi import random_rois

RNG = np.random.default_rng(11)


# ---- layers and the multi-scale RoIAlign -------------------------------------------------
def test_layers_call_the_ops():
    x = Tensor(RNG.standard_normal((1, 2, 6, 6)))
    rois = random_rois(3, 1, 12, 12, RNG)
    np.testing.assert_array_equal(RoIAlign(3, 0.5, 2)(x, rois).data,
                                  F.roi_align(x, rois, 3, 0.5, 2).data)
    np.testing.assert_array_equal(RoIPool((2, 3), 0.5)(x, rois).data,
                                  F.roi_pool(x, rois, (2, 3), 0.5).data)
    assert "sampling_ratio=2" in repr(RoIAlign(3, 0.5, 2))


def test_map_levels_formula():
    canonical = 32.0
    sides = np.array([8.0, 15.9, 16.0, 31.9, 32.0, 64.0, 200.0, 0.0])
    boxes = np.stack([np.zeros(8), np.zeros(8), sides, sides], axis=1)
    # k = floor(4 + log2(side / 32)) clamped to [2, 5], as an index from k_min = 2
    want = [min(max(math.floor(4 + math.log2(s / canonical) + 1e-6), 2), 5) - 2 if s > 0 else 0
            for s in sides]
    np.testing.assert_array_equal(map_levels(boxes, 2, 5, canonical, 4), want)
    assert want == [0, 0, 1, 1, 2, 3, 3, 0]
    # the scale is sqrt(w h), not a side: 8 x 128 and 128 x 8 have sqrt(area) 32 -> level 4
    # (index 2), where the width (8 or 128) would give level 2 or 6
    thin = np.array([[0.0, 0, 8, 128], [0.0, 0, 128, 8]])
    np.testing.assert_array_equal(map_levels(thin, 2, 6, canonical, 4), [2, 2])


def test_infer_scale():
    assert infer_scale((16, 12), (64, 48)) == 0.25
    assert infer_scale((17, 13), (64, 48)) == 0.25  # rounded to a power of 2
    with pytest.raises(ValueError, match="not one power-of-2 scale"):
        infer_scale((16, 24), (64, 48))


def test_multiscale_roi_align_pools_each_roi_from_its_level():
    feats = [Tensor(RNG.standard_normal((2, 2, 16, 16)), requires_grad=True),
             Tensor(RNG.standard_normal((2, 2, 8, 8)), requires_grad=True),
             Tensor(RNG.standard_normal((2, 2, 4, 4)), requires_grad=True)]
    boxes = [np.array([[1.0, 2, 9, 8], [3, 3, 40, 50], [0, 0, 60, 60]]),
             np.array([[5.0, 5, 21, 21], [10, 12, 13, 14]])]
    pooler = MultiScaleRoIAlign(output_size=3, sampling_ratio=2, canonical_scale=16,
                                canonical_level=3)
    out = pooler(feats, boxes, [(64, 64), (64, 64)])
    assert out.shape == (5, 2, 3, 3)
    rois = np.concatenate([np.concatenate([np.full((len(b), 1), i), b], 1)
                           for i, b in enumerate(boxes)])
    levels = map_levels(rois, 2, 4, 16, 3)  # strides 4, 8, 16 -> k_min 2, k_max 4
    assert sorted(set(levels.tolist())) == [0, 1, 2]
    for r, level in enumerate(levels):
        want = F.roi_align(feats[level], rois[r:r + 1], 3, 0.5 ** (level + 2), 2)
        np.testing.assert_allclose(out.data[r:r + 1], want.data)
    out.sum().backward()
    assert all(f.grad is not None and np.abs(f.grad).sum() > 0 for f in feats)
    named = MultiScaleRoIAlign(["p3", "p2"], 3, 2, canonical_scale=16, canonical_level=3)
    by_name = named({"p2": feats[0], "p3": feats[1], "p4": feats[2]}, boxes, [(64, 64)] * 2)
    assert by_name.shape == (5, 2, 3, 3)


def test_multiscale_roi_align_takes_the_scales_from_the_largest_image():
    # one 16 x 16 feature map; images of 40 x 40 and 64 x 64 (padded to one batch): the
    # scale is 16 / 64 = 1/4 (the largest image, as torchvision). The first image alone
    # would give 2^round(log2(16 / 40)) = 1/2.
    feats = [Tensor(RNG.standard_normal((2, 1, 16, 16)))]
    boxes = [np.array([[4.0, 8, 30, 36]]), np.array([[10.0, 2, 50, 60]])]
    out = MultiScaleRoIAlign(output_size=2, sampling_ratio=2)(feats, boxes, [(40, 40), (64, 64)])
    rois = np.array([[0, 4.0, 8, 30, 36], [1, 10.0, 2, 50, 60]])
    np.testing.assert_allclose(out.data, F.roi_align(feats[0], rois, 2, 0.25, 2).data)


def test_multiscale_roi_align_gradient_reaches_boxes():
    feats = [Tensor(RNG.standard_normal((1, 1, 8, 8))), Tensor(RNG.standard_normal((1, 1, 4, 4)))]
    boxes = [Tensor(np.array([[1.13, 2.27, 5.71, 6.33], [2.21, 1.37, 27.7, 29.3]]),
                    requires_grad=True)]
    pooler = MultiScaleRoIAlign(output_size=2, sampling_ratio=2, canonical_scale=8,
                                canonical_level=3)
    assert gradcheck(lambda b: pooler(feats, [b], [(32, 32)]), boxes, atol=1e-6, rtol=1e-4)
