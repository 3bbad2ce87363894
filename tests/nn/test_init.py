"""nn.init: gains, fans, exact bounds and sample statistics, seeding, PyTorch's Linear default."""

import math

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl.nn import init


def empty(*shape, dtype=np.float32):
    return nn.Parameter(np.zeros(shape, dtype=dtype))


def test_calculate_gain_table():
    assert init.calculate_gain("linear") == 1 and init.calculate_gain("conv2d") == 1
    assert init.calculate_gain("sigmoid") == 1
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(math.sqrt(2 / 1.04))
    assert init.calculate_gain("selu") == 0.75
    with pytest.raises(ValueError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")


def test_fans():
    assert init._calculate_fan_in_and_fan_out(empty(5, 3)) == (3, 5)
    assert init._calculate_fan_in_and_fan_out(empty(8, 4, 3, 3)) == (36, 72)
    with pytest.raises(ValueError, match=r"fewer than 2 dimensions \(shape \(5,\)\)"):
        init._calculate_fan_in_and_fan_out(empty(5))


@pytest.mark.parametrize("mode,fan", [("fan_in", 4 * 9), ("fan_out", 16 * 9)])
def test_kaiming_uniform_bound_is_exact(mode, fan):
    w = empty(16, 4, 3, 3, dtype=np.float64)
    init.kaiming_uniform_(w, a=0, mode=mode, nonlinearity="relu")
    bound = math.sqrt(2) * math.sqrt(3 / fan)
    assert np.abs(w.data).max() <= bound
    assert np.abs(w.data).max() > 0.97 * bound  # 576 samples reach close to the edge


def test_sample_statistics_on_a_large_tensor():
    minidl.manual_seed(0)
    fan_in, fan_out = 200, 300
    w = empty(fan_out, fan_in, dtype=np.float64)
    checks = [
        (lambda: init.xavier_uniform_(w, gain=2.0), 4.0 * 2 / (fan_in + fan_out)),
        (lambda: init.xavier_normal_(w, gain=0.5), 0.25 * 2 / (fan_in + fan_out)),
        (lambda: init.kaiming_normal_(w, mode="fan_out", nonlinearity="relu"), 2 / fan_out),
        (lambda: init.kaiming_uniform_(w, a=math.sqrt(5)), 1 / (3 * fan_in)),
        (lambda: init.normal_(w, 0.0, 0.3), 0.09),
        (lambda: init.uniform_(w, -2, 2), 16 / 12),
    ]
    for fill, variance in checks:
        fill()
        assert abs(w.data.mean()) < 0.05 * math.sqrt(variance)
        assert w.data.var() == pytest.approx(variance, rel=0.02)  # 60,000 samples


def test_trunc_normal_stays_in_range():
    w = empty(50, 50)
    init.trunc_normal_(w, std=1.0, a=-0.5, b=0.5)
    assert w.data.min() >= -0.5 and w.data.max() <= 0.5


def test_constant_fills_keep_dtype_and_identity():
    w = empty(2, 3, dtype=np.float64)
    array = w.data
    assert init.constant_(w, 0.25) is w and (w.data == 0.25).all() and w.data is array
    init.ones_(w)
    assert (w.data == 1).all() and w.dtype == np.float64
    init.zeros_(w)
    assert (w.data == 0).all()


def test_init_errors():
    with pytest.raises(ValueError, match="mode must be 'fan_in' or 'fan_out'"):
        init.kaiming_uniform_(empty(2, 2), mode="fan_avg")
    with pytest.raises(ValueError, match="uniform_: expected a <= b"):
        init.uniform_(empty(2), 1.0, 0.0)


def test_same_seed_same_init():
    minidl.manual_seed(3)
    a = nn.Linear(5, 4)
    minidl.manual_seed(3)
    b = nn.Linear(5, 4)
    np.testing.assert_array_equal(a.weight.data, b.weight.data)
    np.testing.assert_array_equal(a.bias.data, b.bias.data)
    c = nn.Linear(5, 4)
    assert not np.array_equal(a.weight.data, c.weight.data)


def test_explicit_generator():
    w1, w2 = empty(3, 3), empty(3, 3)
    init.normal_(w1, generator=np.random.default_rng(7))
    init.normal_(w2, generator=np.random.default_rng(7))
    np.testing.assert_array_equal(w1.data, w2.data)


def test_linear_default_init_is_pytorchs():
    """kaiming_uniform_(a=sqrt(5)) gives bound sqrt(6 / ((1 + 5) fan_in)) = 1/sqrt(fan_in)."""
    minidl.manual_seed(0)
    layer = nn.Linear(64, 256)
    bound = 1 / math.sqrt(64)
    for p in (layer.weight, layer.bias):
        assert p.dtype == np.float32
        assert np.abs(p.data).max() <= bound
        assert np.abs(p.data).max() > 0.95 * bound
    assert layer.weight.data.var() == pytest.approx(bound ** 2 / 3, rel=0.05)
