"""interpolate: PyTorch's index formulas checked by a direct loop, against the data pipeline's
resize_bilinear, on hand-worked examples, float64 gradcheck, and errors."""

import math

import numpy as np
import pytest

import minidl.nn.functional as F
from minidl import Tensor
from minidl.data.transforms import resize_bilinear
from minidl.testing import check_op
from tests.ops.test_conv import check_dtype_policy, check_empty_batch

RNG = np.random.default_rng(8)


def source_position(o, n_in, n_out, align_corners, scale_factor):
    """PyTorch's area_pixel_compute_source_index for linear modes (float64)."""
    if align_corners:
        return o * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
    scale = 1.0 / scale_factor if scale_factor else n_in / n_out
    return max((o + 0.5) * scale - 0.5, 0.0)


def bilinear_loop(x, out_hw, align_corners=False, scale_factor=(None, None)):
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    out = np.zeros((N, C, Ho, Wo))
    for oy in range(Ho):
        sy = source_position(oy, H, Ho, align_corners, scale_factor[0])
        y0 = min(int(math.floor(sy)), H - 1)
        y1, ly = min(y0 + 1, H - 1), min(max(sy - y0, 0.0), 1.0)
        for ox in range(Wo):
            sx = source_position(ox, W, Wo, align_corners, scale_factor[1])
            x0 = min(int(math.floor(sx)), W - 1)
            x1, lx = min(x0 + 1, W - 1), min(max(sx - x0, 0.0), 1.0)
            out[:, :, oy, ox] = ((1 - ly) * ((1 - lx) * x[:, :, y0, x0] + lx * x[:, :, y0, x1])
                                 + ly * ((1 - lx) * x[:, :, y1, x0] + lx * x[:, :, y1, x1]))
    return out


def nearest_loop(x, out_hw, exact=False):
    N, C, H, W = x.shape
    Ho, Wo = out_hw
    out = np.zeros((N, C, Ho, Wo))
    shift = 0.5 if exact else 0.0
    for oy in range(Ho):
        iy = min(int(math.floor((oy + shift) * H / Ho)), H - 1)
        for ox in range(Wo):
            ix = min(int(math.floor((ox + shift) * W / Wo)), W - 1)
            out[:, :, oy, ox] = x[:, :, iy, ix]
    return out


@pytest.mark.parametrize("shape, size", [((2, 3, 4, 5), (7, 9)), ((1, 2, 6, 6), (3, 4)),
                                         ((1, 1, 3, 5), (3, 5)), ((1, 1, 1, 4), (3, 1)),
                                         ((1, 2, 2, 3), (5, 6))])
@pytest.mark.parametrize("align_corners", [False, True])
def test_bilinear_matches_loop_resize_bilinear_and_gradcheck(shape, size, align_corners):
    x = RNG.standard_normal(shape)
    check_op(lambda t: F.interpolate(t, size=size, mode="bilinear",
                                     align_corners=align_corners),
             lambda a: bilinear_loop(a, size, align_corners), [x])
    np.testing.assert_allclose(
        F.interpolate(Tensor(x), size=size, mode="bilinear", align_corners=align_corners).data,
        resize_bilinear(x, size, align_corners=align_corners), atol=1e-12)


@pytest.mark.parametrize("shape, size", [((2, 3, 4, 5), (8, 10)), ((1, 2, 3, 5), (5, 3)),
                                         ((1, 1, 4, 4), (4, 4)), ((1, 1, 6, 7), (4, 3))])
@pytest.mark.parametrize("mode", ["nearest", "nearest-exact"])
def test_nearest_matches_loop_and_gradcheck(shape, size, mode):
    check_op(lambda t: F.interpolate(t, size=size, mode=mode),
             lambda a: nearest_loop(a, size, exact=mode == "nearest-exact"),
             [RNG.standard_normal(shape)])


def test_hand_worked_examples():
    row = Tensor(np.arange(4.0).reshape(1, 1, 1, 4))
    up = F.interpolate(row, scale_factor=(1, 2), mode="bilinear", align_corners=False).data
    np.testing.assert_allclose(up[0, 0, 0], [0, 0.25, 0.75, 1.25, 1.75, 2.25, 2.75, 3])
    up = F.interpolate(row, size=(1, 7), mode="bilinear", align_corners=True).data
    np.testing.assert_allclose(up[0, 0, 0], [0, 0.5, 1, 1.5, 2, 2.5, 3])
    np.testing.assert_array_equal(F.interpolate(row, scale_factor=(1, 2)).data[0, 0, 0],
                                  [0, 0, 1, 1, 2, 2, 3, 3])
    three = Tensor(np.arange(3.0).reshape(1, 1, 1, 3))
    np.testing.assert_array_equal(F.interpolate(three, size=(1, 5)).data[0, 0, 0],
                                  [0, 0, 1, 1, 2])     # floor(o * 3/5)
    np.testing.assert_array_equal(F.interpolate(three, size=(1, 5), mode="nearest-exact")
                                  .data[0, 0, 0], [0, 0, 1, 2, 2])  # floor((o + .5) * 3/5)


def test_scale_factor_is_used_for_the_weights_unless_recomputed():
    x = RNG.standard_normal((1, 2, 5, 5))
    # output floor(5 * 1.5) = 7, but the source positions use 1 / 1.5, not 5 / 7
    got = F.interpolate(Tensor(x), scale_factor=1.5, mode="bilinear").data
    np.testing.assert_allclose(got, bilinear_loop(x, (7, 7), scale_factor=(1.5, 1.5)))
    again = F.interpolate(Tensor(x), scale_factor=1.5, mode="bilinear",
                          recompute_scale_factor=True).data
    np.testing.assert_allclose(again, bilinear_loop(x, (7, 7)))
    assert not np.allclose(got, again)


def test_float32_index_arithmetic_as_pytorch():
    """PyTorch computes nearest's source index in float32: floor(o * float32(in / out))."""
    x = np.arange(29.0).reshape(1, 1, 1, 29)
    got = F.interpolate(Tensor(x), size=(1, 35)).data[0, 0, 0]
    scale = np.float32(29) / np.float32(35)
    want = np.minimum(np.floor(np.arange(35, dtype=np.float32) * scale), 28)
    np.testing.assert_array_equal(got, want)


def test_area_mode_is_adaptive_average_pooling():
    x = RNG.standard_normal((1, 2, 6, 7))
    np.testing.assert_allclose(F.interpolate(Tensor(x), size=(3, 2), mode="area").data,
                               F.adaptive_avg_pool2d(Tensor(x), (3, 2)).data)


def test_float32_input_gives_float32_output():
    x = Tensor(RNG.standard_normal((1, 1, 3, 3)).astype(np.float32), requires_grad=True)
    y = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=True)
    y.sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad.sum(), 36, rtol=1e-6)  # each output spreads weight 1


@pytest.mark.parametrize("kwargs, match", [
    (dict(size=4, mode="bicubic"), r"interpolate: mode must be one of"),
    (dict(size=4, align_corners=True), r"interpolate: align_corners can only be set with"),
    (dict(size=4, scale_factor=2), r"interpolate: give exactly one of size and scale_factor"),
    (dict(), r"interpolate: give exactly one of size and scale_factor"),
    (dict(scale_factor=-1.0), r"interpolate: scale_factor must be positive"),
    (dict(scale_factor=0.1), r"interpolate: the output size \(0, 0\)"),
    (dict(size=3, recompute_scale_factor=True), r"recompute_scale_factor is meaningless"),
])
def test_bad_arguments_raise_clear_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        F.interpolate(Tensor(np.zeros((1, 1, 4, 4))), **kwargs)


def test_non_4d_input_raises():
    with pytest.raises(ValueError, match=r"interpolate: expected a 4-D input \[N, C, H, W\]"):
        F.interpolate(Tensor(np.zeros((1, 4, 4))), size=2)


# ---- the dtype policy and empty batches ----------------------------------------------------
@pytest.mark.parametrize("mode", ["nearest", "bilinear", "area"])
def test_interpolate_follows_the_dtype_policy_and_takes_an_empty_batch(mode):
    def op(x):
        return F.interpolate(x, size=(5, 7), mode=mode)

    check_dtype_policy("interpolate", op, RNG.integers(0, 3, (2, 3, 4, 6)))
    check_empty_batch(op, (2, 3, 4, 6))


def test_non_integer_size_names_the_op():
    with pytest.raises(TypeError, match=r"interpolate: size must be an int or a pair of ints"):
        F.interpolate(Tensor(np.ones((1, 1, 4, 4))), size=(2.5, 3))
