"""Normalization modules: BatchNorm (modes, buffers, momentum), LayerNorm, GroupNorm,
InstanceNorm."""


import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor

RNG = np.random.default_rng(2)


def _x(*shape):
    return Tensor(RNG.standard_normal(shape).astype(np.float32))


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
