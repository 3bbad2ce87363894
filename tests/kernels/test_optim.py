"""Adam's one-pass kernel against its plain-NumPy twin: the same bits, not just close.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loop is also checked as plain Python (keep the inputs small).
"""

import math

import numpy as np
import pytest

from minidl.kernels import optim as koptim

pytestmark = pytest.mark.kernel


def adam_scalars(t, lr=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, weight_decay=0.0,
                 decoupled=False):
    """The scalar arguments after ``amsgrad``, as Python floats (as Adam.update makes them)."""
    return [1 - lr * weight_decay if decoupled else 1.0, 0.0 if decoupled else weight_decay,
            beta1, 1 - beta1, beta2, 1 - beta2, lr / (1 - beta1 ** t),
            math.sqrt(1 - beta2 ** t), eps]


def gradients(rng, n, dtype):
    """Gradients over many magnitudes (1e-30 .. 1e3), with zeros and both signs."""
    g = rng.standard_normal(n) * 10.0 ** rng.integers(-30, 4, n)
    g[rng.random(n) < 0.1] = 0.0
    return g.astype(dtype)


CASES = [dict(), dict(weight_decay=0.1), dict(weight_decay=0.1, decoupled=True),
         dict(beta1=0.8, beta2=0.9, eps=1e-3, lr=0.05)]


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("amsgrad", [False, True])
@pytest.mark.parametrize("case", CASES)
def test_adam_update_equals_its_twin_bitwise(dtype, amsgrad, case):
    rng = np.random.default_rng(0)
    n = 301  # a vector width's multiple plus a remainder
    start = rng.standard_normal(n).astype(dtype)
    fused = [start.copy()] + [np.zeros(n, dtype) for _ in range(3)]
    twin = [a.copy() for a in fused]
    for t in range(1, 6):
        grad = gradients(rng, n, dtype)
        scalars = adam_scalars(t, **case)
        koptim.adam_update(fused[0], grad, *fused[1:], amsgrad,
                           *(dtype(s) for s in scalars))
        koptim.adam_update_reference(twin[0], grad, *twin[1:], amsgrad, *scalars)
        for got, want in zip(fused, twin):
            np.testing.assert_array_equal(got, want)
    assert not np.array_equal(fused[0], start)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_adam_update_propagates_nan_and_inf_as_numpy_does(dtype):
    param = np.array([1.0, np.inf, 2.0, np.nan, -3.0, 0.0], dtype)
    grad = np.array([np.nan, 1.0, np.inf, 0.5, 0.0, -np.inf], dtype)
    vmax = np.array([0.0, np.nan, 1.0, 0.0, 2.0, 0.0], dtype)
    fused = [param, np.ones(6, dtype), np.ones(6, dtype), vmax]
    twin = [a.copy() for a in fused]
    scalars = adam_scalars(3, weight_decay=0.1)
    with np.errstate(invalid="ignore", over="ignore"):  # NumPy warns (the JIT-ed loop does not)
        koptim.adam_update(fused[0], grad, *fused[1:], True, *(dtype(s) for s in scalars))
        koptim.adam_update_reference(twin[0], grad, *twin[1:], True, *scalars)
    for got, want in zip(fused, twin):
        np.testing.assert_array_equal(got, want)
    assert np.isnan(fused[3][[0, 1]]).all()  # NaN wins the AMSGrad max from either side
