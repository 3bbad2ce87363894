"""The recurrent gate kernels against their plain-NumPy twins.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1,
so the loops are also checked as plain Python (keep the inputs small).
"""

import numpy as np
import pytest

from minidl.kernels import rnn as krnn

pytestmark = pytest.mark.kernel
RNG = np.random.default_rng(5)
B, H = 3, 4
TOL = dict(rtol=1e-6, atol=1e-6)


def _rand(*shape, dtype=np.float64, low=-1.0, high=1.0):
    return RNG.uniform(low, high, shape).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_lstm_kernels_equal_their_twins(dtype):
    tanh_halved, c_prev = _rand(B, 4 * H, dtype=dtype), _rand(B, H, dtype=dtype)
    act, c = tanh_halved.copy(), np.empty((B, H), dtype)
    krnn.lstm_gates(act, c_prev, c)
    want_act, want_c = krnn.lstm_gates_reference(tanh_halved, c_prev)
    np.testing.assert_allclose(act, want_act, **TOL)
    np.testing.assert_allclose(c, want_c, **TOL)

    dh, dc, tanh_c = (_rand(B, H, dtype=dtype) for _ in range(3))
    da, dc_prev = np.empty((B, 4 * H), dtype), np.empty((B, H), dtype)
    krnn.lstm_gates_backward(dh, dc, act, c_prev, tanh_c, da, dc_prev)
    want_da, want_dc_prev = krnn.lstm_gates_backward_reference(dh, dc, act, c_prev, tanh_c)
    np.testing.assert_allclose(da, want_da, **TOL)
    np.testing.assert_allclose(dc_prev, want_dc_prev, **TOL)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_gru_kernels_equal_their_twins(dtype):
    tanh_halved = _rand(B, 2 * H, dtype=dtype)
    gi_n, gh_n, b_hn = _rand(B, H, dtype=dtype), _rand(B, H, dtype=dtype), _rand(H, dtype=dtype)
    rz, pre_n = tanh_halved.copy(), np.empty((B, H), dtype)
    krnn.gru_gates(rz, gi_n, gh_n, b_hn, pre_n)
    want_rz, want_pre_n = krnn.gru_gates_reference(tanh_halved, gi_n, gh_n, b_hn)
    np.testing.assert_allclose(rz, want_rz, **TOL)
    np.testing.assert_allclose(pre_n, want_pre_n, **TOL)

    n, h_prev = np.tanh(pre_n), _rand(B, H, dtype=dtype)
    h = np.empty((B, H), dtype)
    krnn.gru_output(n, rz[:, H:], h_prev, h)  # z is a column slice, as in the layer
    np.testing.assert_allclose(h, krnn.gru_output_reference(n, rz[:, H:], h_prev), **TOL)

    dh = _rand(B, H, dtype=dtype)
    dgi, dgh = np.empty((B, 3 * H), dtype), np.empty((B, 3 * H), dtype)
    dh_prev = np.empty((B, H), dtype)
    krnn.gru_gates_backward(dh, rz, n, gh_n, b_hn, h_prev, dgi, dgh, dh_prev)
    want = krnn.gru_gates_backward_reference(dh, rz, n, gh_n, b_hn, h_prev)
    for got, w in zip((dgi, dgh, dh_prev), want):
        np.testing.assert_allclose(got, w, **TOL)


def _ulps(got, want):
    """|got - want| in units of the float32 spacing at want."""
    return np.abs(got.astype(np.float64) - want) / np.spacing(np.abs(want).astype(np.float32))


def test_float32_tanh_kernels_are_within_6_ulps_of_tanh():
    # every region of the fit, both signs, tiny values, and beyond the +-9 cut-off
    x = np.concatenate([np.linspace(-12, 12, 4001), np.logspace(-30, 1.1, 300),
                        -np.logspace(-30, 1.1, 300), [9.0, -9.0, 9.02, -9.02]]).astype(np.float32)
    b = RNG.uniform(-1, 1, x.size).astype(np.float32)
    want = krnn.tanh_sum_float32_reference(x, b)
    got = x.copy()
    krnn.tanh_sum_float32(got, b)
    assert got.dtype == np.float32 and _ulps(got, want).max() <= 6
    assert np.abs(got).max() <= 1
    got = x.copy()
    krnn.tanh_float32(got)
    assert _ulps(got, np.tanh(x.astype(np.float64))).max() <= 6


def test_float32_tanh_at_the_edges():
    x = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-30, 20.0, -20.0], np.float32)
    krnn.tanh_float32(x)
    assert np.isnan(x[0])
    np.testing.assert_array_equal(x[1:], np.array([1, -1, 0, 0, 1e-30, 1, -1], np.float32))
    assert np.signbit(x[4])  # tanh(-0) = -0


def test_tanh_coefficients_are_those_of_the_fit():
    p, q = krnn.fit_tanh_rational()
    np.testing.assert_array_equal(np.array(krnn.TANH_P), p.astype(np.float32))
    np.testing.assert_array_equal(np.array(krnn.TANH_Q), q.astype(np.float32))
    v = np.linspace(0.01, 9, 1001)
    relative = np.abs(v * np.polyval(p[::-1], v * v) / np.polyval(q[::-1], v * v) / np.tanh(v) - 1)
    assert relative.max() < 1e-8
