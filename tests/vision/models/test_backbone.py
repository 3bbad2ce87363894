"""Backbone stages and strides, the FPN's top-down sums, norm choices, bad arguments."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.vision.models import FPN, Backbone, conv_norm_relu, norm_layer


def image(n=2, size=32, seed=0):
    return Tensor(np.random.default_rng(seed).random((n, 3, size, size), dtype=np.float32))


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_backbone_stage_shapes_and_strides(norm):
    minidl.manual_seed(0)
    net = Backbone(widths=(8, 16, 24), depth=2, norm=norm)
    maps = net.features(image(size=32))
    assert [tuple(m.shape) for m in maps] == [(2, 8, 16, 16), (2, 16, 8, 8), (2, 24, 4, 4)]
    assert net.strides == (2, 4, 8) and net.out_channels == 24
    np.testing.assert_array_equal(net(image(size=32)).data, maps[-1].data)


def test_conv_norm_relu_has_no_bias_before_a_norm_and_keeps_the_size():
    block = conv_norm_relu(3, 5, norm="batch")
    assert block[0].bias is None and isinstance(block[1], nn.BatchNorm2d)
    assert conv_norm_relu(3, 5, norm="none")[0].bias is not None
    assert tuple(block(image(size=9)).shape) == (2, 5, 9, 9)
    assert tuple(conv_norm_relu(3, 5, dilation=2)(image(size=9)).shape) == (2, 5, 9, 9)
    assert (block(image()).data >= 0).all()


def test_standardized_input_ignores_each_images_colour_offset_and_contrast():
    minidl.manual_seed(0)
    net = Backbone(widths=(4, 8), depth=1, standardize_input=True).eval()
    x = image(size=16).data
    rng = np.random.default_rng(1)
    recoloured = x * rng.uniform(0.5, 2, (2, 3, 1, 1)) + rng.uniform(-1, 1, (2, 3, 1, 1))
    np.testing.assert_allclose(net(Tensor(recoloured.astype(np.float32))).data,
                               net(Tensor(x)).data, atol=1e-4)
    plain = Backbone(widths=(4, 8), depth=1).eval()
    assert isinstance(plain.standardize, nn.Identity) and not plain.state_dict().keys() - \
        net.state_dict().keys()


def test_norm_layer_group_count_divides_the_channels():
    assert norm_layer("group", 24).num_groups == 8
    assert norm_layer("group", 6).num_groups == 2
    with pytest.raises(ValueError, match="norm_layer: norm must be one of"):
        norm_layer("layer", 8)
    with pytest.raises(ValueError, match="Backbone: need at least one stage"):
        Backbone(widths=())


def nearest_up2(x):
    """Nearest-neighbour x2 up-sampling written with np.repeat (independent of interpolate)."""
    return np.repeat(np.repeat(x, 2, axis=2), 2, axis=3)


def test_fpn_is_lateral_plus_upsampled_coarser_level_then_smoothed():
    minidl.manual_seed(1)
    c = [Tensor(np.random.default_rng(i).standard_normal((1, ch, s, s)).astype(np.float32))
         for i, (ch, s) in enumerate([(4, 8), (6, 4), (8, 2)])]
    fpn = FPN([4, 6, 8], out_channels=5)
    out = fpn(c)
    assert [tuple(o.shape) for o in out] == [(1, 5, 8, 8), (1, 5, 4, 4), (1, 5, 2, 2)]

    def conv(layer, x):
        return F.conv2d(Tensor(x), layer.weight, layer.bias, padding=layer.padding).data

    p2 = conv(fpn.lateral[2], c[2].data)
    p1 = conv(fpn.lateral[1], c[1].data) + nearest_up2(p2)
    p0 = conv(fpn.lateral[0], c[0].data) + nearest_up2(p1)
    for level, p in enumerate([p0, p1, p2]):
        np.testing.assert_allclose(out[level].data, conv(fpn.smooth[level], p), atol=1e-5)


def test_fpn_finest_level_gets_gradient_from_the_coarsest_input():
    c = [Tensor(np.ones((1, 2, 4, 4), np.float32)),
         Tensor(np.ones((1, 3, 2, 2), np.float32), requires_grad=True)]
    FPN([2, 3], 4)(c)[0].sum().backward()
    assert np.abs(c[1].grad).sum() > 0


def test_fpn_checks_the_number_of_maps():
    with pytest.raises(ValueError, match="FPN: built for 2 maps, got 1"):
        FPN([2, 3], 4)([Tensor(np.ones((1, 2, 4, 4), np.float32))])
