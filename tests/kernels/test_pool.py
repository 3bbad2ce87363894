"""The pooling kernels (window max, window sum, scatter-add) against their plain-NumPy twins.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loops are also checked as plain Python (keep the inputs small).
"""

import numpy as np
import pytest

from minidl.kernels import pool as kpool
from minidl.ops.pool import adaptive_taps, pool_taps
from minidl.ops.upsample import interp_taps

pytestmark = pytest.mark.kernel
RNG = np.random.default_rng(3)


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
    x[1, 2, 3, 1] = x[1, 2, 2, 0] = np.nan  # several NaNs in a window: the last one wins
    x[0, 1, 4, 2] = np.inf  # +-inf compare as numbers
    x[0, 1, 5, 0] = -np.inf
    out = np.empty((2, 3, len(th.count), len(tw.count)))
    argmax = np.empty(out.shape, np.int64)
    kpool.window_max(x, th.index, th.count, tw.index, tw.count, out, argmax)
    want, want_arg = kpool.window_max_reference(x, th.index, th.count, tw.index, tw.count)
    np.testing.assert_array_equal(out, want)
    np.testing.assert_array_equal(argmax, want_arg)
    assert np.isnan(out).any()


@pytest.mark.parametrize("shape", [(2, 3, 6), (5, 7, 40)])
def test_scatter_add_planes_equals_its_twin(shape):
    """Repeated indices must add up; with many planes (shared out among numba's threads,
    an odd number of them) every plane still gets exactly its own gradients."""
    grad = RNG.standard_normal(shape)
    index = RNG.integers(0, 4, shape)
    dx = np.zeros(shape[:2] + (5,))
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


@pytest.mark.parametrize("shape", [(2, 3, 6, 8), (1, 2, 7, 5)])  # odd sizes: the last row unused
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_max_pool_2x2_equals_window_max(shape, dtype):
    """The unrolled 2x2 kernel against the general one, ties, NaNs and infinities included."""
    x = RNG.integers(-2, 3, shape).astype(dtype)  # small integers: many ties
    x[0, 0, 0, :2] = np.nan  # two NaNs in one window: the last one wins
    x[0, 1, 3, 3] = np.nan
    x[-1, -1, 0, 0] = np.inf
    x[-1, -1, 1, 1] = -np.inf
    th = pool_taps(shape[2], shape[2] // 2, 2, 2, 0, 1)
    tw = pool_taps(shape[3], shape[3] // 2, 2, 2, 0, 1)
    out_shape = shape[:2] + (shape[2] // 2, shape[3] // 2)
    got, got_arg = np.empty(out_shape, dtype), np.empty(out_shape, np.int64)
    kpool.max_pool_2x2(x, got, got_arg)
    want, want_arg = np.empty(out_shape, dtype), np.empty(out_shape, np.int64)
    kpool.window_max(x, th.index, th.count, tw.index, tw.count, want, want_arg)
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(got_arg, want_arg)
    assert np.isnan(got).any() and np.isinf(got).any()
