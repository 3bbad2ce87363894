"""Conv2d and ConvTranspose2d modules: PyTorch's shapes and default init, the functional op
they call, errors, and a small conv net that learns."""

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
