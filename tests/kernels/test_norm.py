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
