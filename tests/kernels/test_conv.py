"""The conv kernels (im2col, col2im, valid ranges) against their plain-NumPy twins.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loops are also checked as plain Python (keep the inputs small).
"""

import numpy as np
import pytest

from minidl.kernels import conv as kconv

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
    cols = np.full((shape[1] * window[0] * window[1], shape[0]) + out_hw, np.nan, dtype)
    kconv.im2col(x, window, cols)
    np.testing.assert_array_equal(cols, kconv.im2col_reference(x, window, *out_hw))


@pytest.mark.parametrize("shape, window, out_hw", WINDOWS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_col2im_equals_its_twin(shape, window, out_hw, dtype):
    cols = RNG.standard_normal((shape[1] * window[0] * window[1], shape[0]) + out_hw)
    cols = cols.astype(dtype)
    x = np.zeros(shape, dtype)
    kconv.col2im(cols, window, x)
    np.testing.assert_allclose(x, kconv.col2im_reference(cols, window, shape), rtol=1e-6,
                               atol=1e-6)


@pytest.mark.parametrize("shape, window, out_hw", WINDOWS)
def test_col2im_is_the_transpose_of_im2col(shape, window, out_hw):
    """<im2col(x), c> = <x, col2im(c)> for random x and c: the pair is adjoint."""
    x = RNG.standard_normal(shape)
    c = RNG.standard_normal((shape[1] * window[0] * window[1], shape[0]) + out_hw)
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
