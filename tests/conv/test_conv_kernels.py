"""Every numba kernel of conv / pool / norm against its plain-NumPy twin, on small inputs.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loops are also checked as plain Python (keep the inputs small).
"""

import numpy as np
import pytest

from minidl.kernels import conv as kconv
from minidl.kernels import norm as knorm
from minidl.kernels import pool as kpool
from minidl.ops.pool import adaptive_taps, pool_taps
from minidl.ops.upsample import interp_taps

pytestmark = pytest.mark.kernel
RNG = np.random.default_rng(3)

# (x shape, window (kh, kw, sh, sw, ph, pw, dh, dw), output grid)
WINDOWS = [
    ((2, 3, 5, 6), (3, 3, 1, 1, 1, 1, 1, 1), (5, 6)),     # "same" 3x3
    ((1, 2, 7, 6), (3, 2, 2, 1, 1, 0, 1, 2), (4, 4)),     # stride, dilation, uneven
    ((2, 1, 4, 4), (3, 3, 2, 2, 2, 2, 1, 1), (3, 3)),     # padding wider than a tap
    ((1, 2, 5, 5), (2, 2, 1, 1, 0, 0, 2, 2), (3, 3)),     # dilation only
    ((1, 1, 3, 3), (2, 2, 2, 2, 0, 0, 1, 1), (2, 2)),     # a larger grid than conv gives
    ((1, 2, 1, 1), (1, 1, 1, 1, 0, 0, 1, 1), (1, 1)),     # 1x1
]


@pytest.mark.parametrize("shape, window, out_hw", WINDOWS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_im2col_equals_its_twin(shape, window, out_hw, dtype):
    x = RNG.standard_normal(shape).astype(dtype)
    cols = np.full((shape[0], shape[1] * window[0] * window[1]) + out_hw, np.nan, dtype)
    kconv.im2col(x, window, cols)
    np.testing.assert_array_equal(cols, kconv.im2col_reference(x, window, *out_hw))


@pytest.mark.parametrize("shape, window, out_hw", WINDOWS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_col2im_equals_its_twin(shape, window, out_hw, dtype):
    cols = RNG.standard_normal((shape[0], shape[1] * window[0] * window[1]) + out_hw)
    cols = cols.astype(dtype)
    x = np.zeros(shape, dtype)
    kconv.col2im(cols, window, x)
    np.testing.assert_allclose(x, kconv.col2im_reference(cols, window, shape), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("shape, window, out_hw", WINDOWS)
def test_col2im_is_the_transpose_of_im2col(shape, window, out_hw):
    """<im2col(x), c> = <x, col2im(c)> for random x and c: the pair is adjoint."""
    x = RNG.standard_normal(shape)
    c = RNG.standard_normal((shape[0], shape[1] * window[0] * window[1]) + out_hw)
    cols = np.empty_like(c)
    kconv.im2col(x, window, cols)
    back = np.zeros(shape)
    kconv.col2im(c, window, back)
    assert np.isclose(np.vdot(cols, c), np.vdot(x, back))


@pytest.mark.parametrize("n_out, stride, offset, n_in", [
    (5, 1, -1, 5), (4, 2, -3, 7), (3, 1, 4, 5), (6, 3, 2, 4), (2, 1, -5, 3)])
def test_valid_range_matches_a_scan(n_out, stride, offset, n_in):
    inside = [o for o in range(n_out) if 0 <= o * stride + offset < n_in]
    lo, hi = kconv.valid_range(n_out, stride, offset, n_in)
    assert list(range(lo, hi)) == inside


def _taps_cases():
    """Per-axis tap tables of every op that uses the window kernels."""
    return [
        (pool_taps(7, 4, 3, 2, 1, 1), pool_taps(6, 3, 2, 2, 0, 1)),        # max pool
        (pool_taps(7, 2, 2, 2, 1, 3), pool_taps(5, 5, 1, 1, 0, 1)),        # dilation
        (adaptive_taps(7, 3), adaptive_taps(5, 4)),                        # adaptive bins
        (interp_taps(7, 10, "bilinear", False, None, np.float64),
         interp_taps(5, 3, "nearest", False, None, np.float64)),           # interpolation
    ]


@pytest.mark.parametrize("taps", _taps_cases())
def test_window_max_equals_its_twin(taps):
    th, tw = taps
    x = RNG.standard_normal((2, 3, 7, tw.index.max() + 1 + 1))
    x[0, 0, :3, :3] = 1.5  # ties: the first maximum in window order wins
    x[1, 2, 2, 1] = np.nan  # NaN propagates, as in PyTorch
    out = np.empty((2, 3, len(th.count), len(tw.count)))
    argmax = np.empty(out.shape, np.int64)
    kpool.window_max(x, th.index, th.count, tw.index, tw.count, out, argmax)
    want, want_arg = kpool.window_max_reference(x, th.index, th.count, tw.index, tw.count)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(argmax, want_arg)


def test_scatter_add_planes_equals_its_twin():
    grad = RNG.standard_normal((2, 3, 6))
    index = RNG.integers(0, 4, (2, 3, 6))  # repeated indices must add up
    dx = np.zeros((2, 3, 5))
    kpool.scatter_add_planes(grad, index, dx)
    np.testing.assert_allclose(dx, kpool.scatter_add_planes_reference(grad, index, 5))


@pytest.mark.parametrize("taps", _taps_cases())
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_window_sum_and_its_backward_equal_their_twins(taps, dtype):
    th, tw = taps
    th = th._replace(weight=RNG.uniform(0.1, 1, th.weight.shape).astype(dtype))
    tw = tw._replace(weight=RNG.uniform(0.1, 1, tw.weight.shape).astype(dtype))
    in_hw = (7, int(tw.index.max()) + 1)
    x = RNG.standard_normal((2, 3) + in_hw).astype(dtype)
    out = np.empty((2, 3, len(th.count), len(tw.count)), dtype)
    kpool.window_sum(x, *th, *tw, out)
    np.testing.assert_allclose(out, kpool.window_sum_reference(x, *th, *tw), rtol=1e-5,
                               atol=1e-6)
    grad = RNG.standard_normal(out.shape).astype(dtype)
    dx = np.zeros_like(x)
    kpool.window_sum_backward(grad, *th, *tw, dx)
    want = kpool.window_sum_backward_reference(grad, *th, *tw, in_hw)
    np.testing.assert_allclose(dx, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_norm_kernels_equal_their_twins(dtype):
    x = (RNG.standard_normal((3, 4, 5)) * 3 + 2).astype(dtype)
    g = RNG.standard_normal((3, 4, 5)).astype(dtype)
    a, b, d = (RNG.standard_normal(4).astype(dtype) for _ in range(3))
    tol = dict(rtol=1e-5, atol=1e-5)

    mean, var = np.empty(4), np.empty(4)
    knorm.channel_stats(x, mean, var)
    want_mean, want_var = knorm.channel_stats_reference(x)
    np.testing.assert_allclose(mean, want_mean, **tol)
    np.testing.assert_allclose(var, want_var, **tol)

    out = np.empty_like(x)
    knorm.channel_affine(x, a, b, out)
    np.testing.assert_allclose(out, knorm.channel_affine_reference(x, a, b), **tol)

    sum_g, sum_gx = np.empty(4), np.empty(4)
    knorm.channel_grad_sums(g, x, mean, sum_g, sum_gx)
    want_g, want_gx = knorm.channel_grad_sums_reference(g, x, mean)
    np.testing.assert_allclose(sum_g, want_g, **tol)
    np.testing.assert_allclose(sum_gx, want_gx, **tol)

    knorm.channel_affine2(g, x, a, b, d, out)
    np.testing.assert_allclose(out, knorm.channel_affine2_reference(g, x, a, b, d), **tol)
