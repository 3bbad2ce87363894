"""python -m minidl.bench conv (minidl/bench/conv.py), section 4: the three ways to one convolution.

The loop nest ``direct_conv`` is a numba kernel: marked ``kernel``, so
tests/test_kernels_without_jit.py reruns it with NUMBA_DISABLE_JIT=1 (inputs kept small).
"""

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl.bench import conv as bench_conv

RNG = np.random.default_rng(5)
# N, C, H, W, O, k, pad: widths that are and are not multiples of the 4-pixel block
SHAPES = [(2, 3, 5, 7, 4, 3, 1), (1, 2, 6, 8, 3, 1, 0), (2, 1, 7, 5, 2, 5, 2),
          (1, 4, 4, 9, 5, 3, 0), (1, 1, 3, 1, 1, 3, 1)]


def _case(N, C, H, W, O, k, pad, dtype):
    x = RNG.standard_normal((N, C, H, W)).astype(dtype)
    w = RNG.standard_normal((O, C, k, k)).astype(dtype)
    return x, w


def _minidl_conv(x, w, pad):
    return F.conv2d(minidl.tensor(x), minidl.tensor(w), None, 1, pad).data


@pytest.mark.kernel
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_the_loop_nest_equals_its_twin_and_conv2d(shape, dtype):
    *_, pad = shape
    x, w = _case(*shape, dtype)
    x_last = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))).transpose(0, 2, 3, 1).copy()
    w_last = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    H_out, W_out = x_last.shape[1] - w.shape[2] + 1, x_last.shape[2] - w.shape[3] + 1
    out = np.full((x.shape[0], H_out, W_out, w.shape[0]), np.nan, dtype)
    bench_conv.direct_conv(x_last, w_last, out)
    reference = bench_conv.direct_conv_reference(x_last, w_last)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    np.testing.assert_allclose(out, reference, rtol=tol, atol=tol)
    np.testing.assert_allclose(out.transpose(0, 3, 1, 2), _minidl_conv(x, w, pad),
                               rtol=tol, atol=tol)


@pytest.mark.parametrize("shape", SHAPES)
def test_the_shifted_products_equal_conv2d(shape):
    *_, pad = shape
    x, w = _case(*shape, np.float64)
    np.testing.assert_allclose(bench_conv.shifted_products_conv(x, w, pad),
                               _minidl_conv(x, w, pad), rtol=1e-12, atol=1e-12)


def test_the_routes_case_times_each_way():
    *seconds, flops = bench_conv.conv_routes_case(N=2, C=3, H=8, W=6, O=4, k=3, pad=1,
                                                  repeat=1)
    assert len(seconds) == 4 and all(s > 0 for s in seconds)
    assert flops == 2 * 2 * 4 * 8 * 6 * 3 * 9
