"""The normalization kernels against their plain-NumPy twins.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loops are also checked as plain Python (keep the inputs small).
"""

import numpy as np
import pytest

from minidl.kernels import norm as knorm

pytestmark = pytest.mark.kernel
RNG = np.random.default_rng(3)


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


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(2, 3, 2, 5), (1, 1, 4, 1), (0, 2, 2, 3)])
def test_group_norm_kernels_equal_their_twins(dtype, shape):
    N, G, Cg, M = shape
    x = (RNG.standard_normal(shape) * 3 + 2).astype(dtype)
    g = RNG.standard_normal(shape).astype(dtype)
    w, b = (RNG.standard_normal((G, Cg)).astype(dtype) for _ in range(2))
    tol = dict(rtol=1e-5, atol=1e-5)

    out, mean, invstd = np.empty_like(x), np.empty((N, G)), np.empty((N, G))
    knorm.group_norm_forward(x, w, b, 1e-5, out, mean, invstd)
    want_out, want_mean, want_invstd = knorm.group_norm_forward_reference(x, w, b, 1e-5)
    for got, want in ((out, want_out), (mean, want_mean), (invstd, want_invstd)):
        np.testing.assert_allclose(got, want, **tol)

    dx, sum_g, sum_gxhat = np.empty_like(x), np.empty((N, G, Cg)), np.empty((N, G, Cg))
    knorm.group_norm_backward(g, x, w, mean, invstd, dx, sum_g, sum_gxhat, True)
    want = knorm.group_norm_backward_reference(g, x, w, mean, invstd)
    for got, w_ in zip((dx, sum_g, sum_gxhat), want):
        np.testing.assert_allclose(got, w_, **tol)

    # without the input gradient only the sums are written
    sums = np.full((N, G, Cg), np.nan), np.full((N, G, Cg), np.nan)
    knorm.group_norm_backward(g, x, w, mean, invstd, np.empty((0, 0, 0, 0), dtype), *sums, False)
    np.testing.assert_allclose(sums[0], want[1], **tol)
    np.testing.assert_allclose(sums[1], want[2], **tol)
