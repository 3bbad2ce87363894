"""Conv, pooling, up-sampling and normalization Modules: shapes, PyTorch's default init, modes,
buffers, the functional op they call, errors, and a small conv net that learns."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.optim import SGD

RNG = np.random.default_rng(2)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


@pytest.mark.parametrize("cls, args, weight_shape, fan_in", [
    (nn.Conv2d, (4, 6, 3), (6, 4, 3, 3), 36),
    (nn.Conv2d, (4, 6, (3, 2), 1, 0, 1, 2), (6, 2, 3, 2), 12),
    (nn.ConvTranspose2d, (4, 6, 3), (4, 6, 3, 3), 54),
    (nn.ConvTranspose2d, (4, 6, 2, 2, 0, 0, 2), (4, 3, 2, 2), 12),
])
def test_conv_layers_have_pytorch_shapes_and_default_init(cls, args, weight_shape, fan_in):
    minidl.manual_seed(0)
    layer = cls(*args)
    assert layer.weight.shape == weight_shape and layer.bias.shape == (6,)
    assert layer.weight.dtype == np.float32
    bound = 1 / math.sqrt(fan_in)  # kaiming_uniform_(a=sqrt(5)) and the bias rule
    assert np.abs(layer.weight.data).max() <= bound
    assert np.abs(layer.weight.data).max() > 0.8 * bound  # uniform over the whole range
    assert np.abs(layer.bias.data).max() <= bound
    minidl.manual_seed(0)
    np.testing.assert_array_equal(cls(*args).weight.data, layer.weight.data)


def test_conv2d_module_calls_conv2d():
    layer = nn.Conv2d(3, 4, 3, stride=2, padding=1, bias=False)
    assert layer.bias is None and len(list(layer.parameters())) == 1
    x = _x(2, 3, 7, 7)
    np.testing.assert_array_equal(layer(x).data, F.conv2d(x, layer.weight, None, 2, 1).data)
    assert "stride=(2, 2)" in repr(layer) and "bias=False" in repr(layer)


def test_conv_transpose2d_module_output_size():
    layer = nn.ConvTranspose2d(3, 2, 3, stride=2, padding=1)
    x = _x(1, 3, 4, 4)
    assert layer(x).shape == (1, 2, 7, 7)
    assert layer(x, output_size=(8, 8)).shape == (1, 2, 8, 8)
    np.testing.assert_array_equal(
        layer(x, output_size=[1, 2, 8, 8]).data,
        F.conv_transpose2d(x, layer.weight, layer.bias, 2, 1, output_padding=1).data)
    with pytest.raises(ValueError, match=r"ConvTranspose2d: output_size \(9, 9\) is not "):
        layer(x, output_size=(9, 9))


@pytest.mark.parametrize("make", [lambda: nn.Conv2d(4, 6, 3, groups=4),
                                  lambda: nn.Conv2d(0, 2, 3),
                                  lambda: nn.ConvTranspose2d(3, 2, 3, groups=2)])
def test_conv_layer_argument_errors(make):
    with pytest.raises(ValueError, match=r"(Conv2d|ConvTranspose2d): "):
        make()


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


def test_batchnorm2d_training_and_evaluation():
    bn = nn.BatchNorm2d(3)
    assert [n for n, _ in bn.named_parameters()] == ["weight", "bias"]
    assert list(bn.state_dict()) == ["weight", "bias", "running_mean", "running_var",
                                     "num_batches_tracked"]
    x = Tensor((RNG.standard_normal((8, 3, 4, 4)) * 2 + 5).astype(np.float32))
    y = bn(x)
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)
    assert int(bn.num_batches_tracked) == 1
    np.testing.assert_allclose(bn.running_mean, 0.1 * x.data.mean(axis=(0, 2, 3)), rtol=1e-5)
    bn.eval()
    before = bn.running_mean.copy()
    z = bn(x)
    np.testing.assert_array_equal(bn.running_mean, before)  # evaluation changes no state
    want = (x.data - bn.running_mean[None, :, None, None]) / np.sqrt(
        bn.running_var[None, :, None, None] + bn.eps)
    np.testing.assert_allclose(z.data, want, rtol=1e-5, atol=1e-5)


def test_batchnorm_momentum_none_is_a_cumulative_average():
    bn = nn.BatchNorm1d(2, momentum=None)
    batches = [RNG.standard_normal((5, 2)).astype(np.float32) for _ in range(3)]
    for b in batches:
        bn(Tensor(b))
    np.testing.assert_allclose(bn.running_mean, np.mean([b.mean(axis=0) for b in batches],
                                                        axis=0), rtol=1e-5, atol=1e-6)


def test_batchnorm_without_running_stats_or_affine():
    bn = nn.BatchNorm2d(3, affine=False, track_running_stats=False)
    assert list(bn.parameters()) == [] and bn.running_mean is None
    bn.eval()  # still uses the batch statistics
    y = bn(_x(4, 3, 2, 2))
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)


def test_batchnorm1d_accepts_2d_and_3d_and_checks_its_input_before_counting():
    bn = nn.BatchNorm1d(4)
    assert bn(_x(5, 4)).shape == (5, 4) and bn(_x(5, 4, 3)).shape == (5, 4, 3)
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected input \[N, C\] or \[N, C, L\]"):
        bn(_x(2, 4, 3, 3))
    with pytest.raises(ValueError, match=r"BatchNorm1d: expected 4 channels"):
        bn(_x(5, 3))
    assert int(bn.num_batches_tracked) == 2
    with pytest.raises(ValueError, match=r"BatchNorm2d: expected input \[N, C, H, W\]"):
        nn.BatchNorm2d(4)(_x(5, 4))


def test_batchnorm_gradcheck_through_the_module():
    bn = nn.BatchNorm2d(2).double()
    bn.weight.data[:] = [1.5, -0.5]
    x = Tensor(RNG.standard_normal((3, 2, 2, 2)), requires_grad=True)
    assert minidl.gradcheck(lambda x, w, b: bn(x), [x, bn.weight, bn.bias])


def test_layer_norm_group_norm_instance_norm_modules():
    ln = nn.LayerNorm((3, 4))
    assert ln.weight.shape == (3, 4) and ln.bias.shape == (3, 4)
    x = _x(2, 3, 4)
    np.testing.assert_array_equal(ln(x).data, F.layer_norm(x, (3, 4), ln.weight, ln.bias).data)
    assert nn.LayerNorm(4, elementwise_affine=False).weight is None
    assert nn.LayerNorm(4, bias=False).bias is None
    gn = nn.GroupNorm(2, 4)
    x = _x(2, 4, 3, 3)
    np.testing.assert_array_equal(gn(x).data, F.group_norm(x, 2, gn.weight, gn.bias).data)
    with pytest.raises(ValueError, match="GroupNorm: num_groups=3 must divide num_channels=4"):
        nn.GroupNorm(3, 4)
    with pytest.raises(ValueError, match=r"GroupNorm: expected input \[N, 4, \*\]"):
        gn(_x(2, 3, 3, 3))
    inorm = nn.InstanceNorm2d(4)
    assert list(inorm.parameters()) == []
    np.testing.assert_allclose(inorm(x).data.mean(axis=(2, 3)), 0, atol=1e-5)
    tracked = nn.InstanceNorm2d(4, affine=True, track_running_stats=True)
    tracked(x)
    assert np.any(tracked.running_mean != 0)
    tracked.eval()
    y = tracked(x)
    want = (x.data - tracked.running_mean[None, :, None, None]) / np.sqrt(
        tracked.running_var[None, :, None, None] + 1e-5)
    np.testing.assert_allclose(y.data, want, rtol=1e-5, atol=1e-5)


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


def test_a_small_conv_net_learns():
    minidl.manual_seed(0)
    model = nn.Sequential(
        nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.ConvTranspose2d(4, 4, 2, stride=2), nn.GroupNorm(2, 4), nn.ReLU(),
        nn.Conv2d(4, 2, 3, padding=1), nn.AdaptiveAvgPool2d(1), nn.Flatten())
    rng = np.random.default_rng(0)
    images = rng.standard_normal((16, 1, 8, 8)).astype(np.float32)
    labels = np.arange(16) % 2
    images[labels == 1, :, 2:6, 2:6] += 2.0  # class 1: a bright square
    x, y = Tensor(images), Tensor(labels)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
