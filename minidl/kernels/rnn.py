"""Gate arithmetic of the fused recurrent layers (minidl/ops/rnn.py), one step at a time.

Per time step a fused layer does one matrix product (h(t-1) W_hh^T) and then the
gate arithmetic on [B, G*H] arrays. The transcendental functions (tanh, and
sigmoid written through it) run as one SIMD pass over all gates at once, outside the
gate kernels: NumPy's ``np.tanh`` for float64, ``tanh_float32`` below for float32
(a call of tanh inside a numba loop would go to the C library one element at a time:
numba is built here without a vector math library). The gate kernels do the rest,
the products and sums that would otherwise take a dozen NumPy calls, each with its
own temporary:

    sigmoid(a) = (1 + tanh(a / 2)) / 2

so the layer scales the sigmoid gates' pre-activations by 1/2 (exact in binary
floating point), takes one tanh over all gates at once, and these kernels turn the
sigmoid blocks into 0.5 v + 0.5 as they read them.

    lstm_gates:           i, f, o = 0.5 v + 0.5, g = v  (v = tanh of the scaled blocks);
                          c = f c_prev + i g
    lstm_gates_backward:  dL/d(pre-activations) of one step, and dL/dc_prev
    gru_gates:            r, z from tanh; pre_n = gi_n + r (gh_n + b_hn)
    gru_output:           h = n + z (h_prev - n)
    gru_gates_backward:   dL/d(input part), dL/d(hidden part) of one step, and the direct
                          part of dL/dh_prev

Shapes: B sequences, H hidden units; gate blocks side by side in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n). Every array is C-contiguous or a row-contiguous slice.

float32 tanh. NumPy's float32 ``np.tanh`` costs a few nanoseconds per element here,
and in an LSTM step it takes longer than the matrix product. For float32 the layers
use instead ``tanh_float32`` below, a rational function that numba compiles into
SIMD code (additions, multiplications, one division, no library call):

    tanh(v) ~ v P(v^2) / Q(v^2)  for |v| <= 9,   +-1 beyond
    P of degree 6 and Q of degree 3, fitted to tanh on [0, 9] (``fit_tanh_rational``)

The fit's relative error is below 1e-8; evaluated in float32 the result is within
6 units in the last place of the exact tanh (NumPy's float32 tanh is within 2), and
float32 tanh(v) is 1 beyond |v| = 9.01. float64 arrays keep NumPy's tanh.
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit

# P and Q of tanh_float32 (low degree first), from fit_tanh_rational() rounded to float32
TANH_P = tuple(np.float32(c) for c in (1.0, 0.130840048, 0.00310395006, 1.11542422e-05,
                                       -2.02249471e-08, 5.27780701e-11, -8.48833129e-14))
TANH_Q = tuple(np.float32(c) for c in (1.0, 0.464173317, 0.0244951546, 0.000254613638))
TANH_LIMIT = np.float32(9.0)  # float32 tanh rounds to +-1 beyond |v| = 9.01
ONE = np.float32(1.0)


@njit(error_model="numpy")
def tanh_rational(v):
    """tanh of one float32 v, as v P(v^2) / Q(v^2) (module docstring), by Horner's rule in
    float32; +-1 beyond +-9 (and never beyond +-1). NaN stays NaN."""
    w = TANH_LIMIT if v > TANH_LIMIT else v
    w = -TANH_LIMIT if w < -TANH_LIMIT else w
    z = w * w
    p = (((((TANH_P[6] * z + TANH_P[5]) * z + TANH_P[4]) * z + TANH_P[3]) * z + TANH_P[2]) * z
         + TANH_P[1]) * z + TANH_P[0]
    q = ((TANH_Q[3] * z + TANH_Q[2]) * z + TANH_Q[1]) * z + TANH_Q[0]
    t = w * p / q
    t = ONE if t > ONE or v > TANH_LIMIT else t  # rounding can lift t just above 1
    return -ONE if t < -ONE or v < -TANH_LIMIT else t


# The two loops below work in place on purpose: LLVM vectorizes a loop only after a run-time
# check that its output does not overlap its inputs, and an output that *is* an input (as in
# out = tanh(out + b)) fails that check and runs the scalar loop, several times slower.
@njit(error_model="numpy")
def tanh_float32(x):
    """x[k] = tanh(x[k]), in place, for a 1-D float32 array."""
    for k in range(x.size):
        x[k] = tanh_rational(x[k])


@njit(error_model="numpy")
def tanh_sum_float32(a, b):
    """a[k] = tanh(a[k] + b[k]), in place in a, for 1-D float32 arrays."""
    for k in range(a.size):
        a[k] = tanh_rational(a[k] + b[k])


def fit_tanh_rational(limit=9.0, rounds=400):
    """The coefficients of TANH_P and TANH_Q: a fit of v P(v^2) / Q(v^2) to tanh on
    [0, limit] with Q(0) = 1, by least squares on the relative error, reweighted each
    round towards the points where it is largest (Lawson's algorithm, which approaches
    the minimax fit). Returns (P, Q) in float64, low degree first."""
    v = np.concatenate([np.linspace(1e-4, 1, 4000), np.linspace(1, limit, 8000)])
    target = np.tanh(v)
    z = (v / limit) ** 2  # scaled to [0, 1] so that the columns are alike in size
    powers = z[:, None] ** np.arange(7)
    # v P(z) - tanh(v) (Q(z) - 1) = tanh(v), linear in the unknowns p0..p6, q1..q3; each row
    # is divided by tanh(v), so that the residual is the relative error
    A = np.concatenate([v[:, None] * powers / target[:, None], -powers[:, 1:4]], axis=1)
    weight = np.ones_like(v)
    for _ in range(rounds):
        sol = np.linalg.lstsq(A * weight[:, None], weight, rcond=None)[0]
        p, q = sol[:7], np.concatenate([[1.0], sol[7:]])
        fit = v * np.polyval(p[::-1], z) / np.polyval(q[::-1], z)
        error = np.abs(fit - target) / target
        weight *= (error / error.mean()) ** 0.3
        weight /= weight.mean()
    scale = limit ** -2.0  # back from z = (v / limit)^2 to v^2
    return p * scale ** np.arange(7), q * scale ** np.arange(4)


# The gate kernels loop over the rows b and, inside a row, over 1-D views of the gate blocks
# (``act[b, H:2 * H]``): with one index per array and no H-sized offsets, LLVM vectorizes
# the inner loop; the same loop indexing act[b, H + j] ran 2-3x slower.
@njit
def lstm_gates(act, c_prev, c):
    """act: [B, 4H], on entry tanh of the pre-activations with the i, f, o blocks halved;
    on exit the gates i, f, g, o.  c[b, j] = f c_prev[b, j] + i g  (c, c_prev: [B, H])."""
    B, H = c.shape
    for b in range(B):
        gate_i, gate_f, gate_g, gate_o = (act[b, :H], act[b, H:2 * H], act[b, 2 * H:3 * H],
                                          act[b, 3 * H:])
        cell_prev, cell = c_prev[b], c[b]
        for j in range(H):
            i = 0.5 * gate_i[j] + 0.5
            f = 0.5 * gate_f[j] + 0.5
            gate_i[j] = i
            gate_f[j] = f
            gate_o[j] = 0.5 * gate_o[j] + 0.5
            cell[j] = f * cell_prev[j] + i * gate_g[j]


@njit
def lstm_gates_backward(dh, dc, act, c_prev, tanh_c, da, dc_prev):
    """One LSTM step backwards, with h = o tanh(c), c = f c_prev + i g:

        dc_total = dc + dh o (1 - tanh(c)^2)
        da_i = dc_total g i (1 - i)        da_f = dc_total c_prev f (1 - f)
        da_g = dc_total i (1 - g^2)        da_o = dh tanh(c) o (1 - o)
        dc_prev = dc_total f

    dh, dc: dL/dh, dL/dc of this step [B, H];  act: the gates i, f, g, o [B, 4H];
    c_prev, tanh_c: [B, H];  da: [B, 4H] and dc_prev: [B, H] (written).
    """
    B, H = dh.shape
    for b in range(B):
        gate_i, gate_f, gate_g, gate_o = (act[b, :H], act[b, H:2 * H], act[b, 2 * H:3 * H],
                                          act[b, 3 * H:])
        da_i, da_f, da_g, da_o = da[b, :H], da[b, H:2 * H], da[b, 2 * H:3 * H], da[b, 3 * H:]
        dh_b, dc_b, cell_prev, tanh_cell, dc_prev_b = dh[b], dc[b], c_prev[b], tanh_c[b], \
            dc_prev[b]
        for j in range(H):
            i, f, g, o = gate_i[j], gate_f[j], gate_g[j], gate_o[j]
            t = tanh_cell[j]
            total = dc_b[j] + dh_b[j] * o * (1 - t * t)
            da_i[j] = total * g * i * (1 - i)
            da_f[j] = total * cell_prev[j] * f * (1 - f)
            da_g[j] = total * i * (1 - g * g)
            da_o[j] = dh_b[j] * t * o * (1 - o)
            dc_prev_b[j] = total * f


@njit
def gru_gates(rz, gi_n, gh_n, b_hn, pre_n):
    """rz: [B, 2H], on entry tanh of the halved r, z pre-activations, on exit r, z.
    pre_n[b, j] = gi_n[b, j] + r (gh_n[b, j] + b_hn[j])  (gi_n, gh_n, pre_n: [B, H]; b_hn: [H])."""
    B, H = pre_n.shape
    for b in range(B):
        gate_r, gate_z = rz[b, :H], rz[b, H:]
        gi_b, gh_b, pre_b = gi_n[b], gh_n[b], pre_n[b]
        for j in range(H):
            r = 0.5 * gate_r[j] + 0.5
            gate_r[j] = r
            gate_z[j] = 0.5 * gate_z[j] + 0.5
            pre_b[j] = gi_b[j] + r * (gh_b[j] + b_hn[j])


@njit
def gru_output(n, z, h_prev, h):
    """h[b, j] = n + z (h_prev - n)  (= (1 - z) n + z h_prev).  All [B, H] (z may be a slice)."""
    B, H = h.shape
    for b in range(B):
        n_b, z_b, h_prev_b, h_b = n[b], z[b], h_prev[b], h[b]
        for j in range(H):
            h_b[j] = n_b[j] + z_b[j] * (h_prev_b[j] - n_b[j])


@njit
def gru_gates_backward(dh, rz, n, gh_n, b_hn, h_prev, dgi, dgh, dh_prev):
    """One GRU step backwards, with h = n + z (h_prev - n), n = tanh(gi_n + r hn),
    hn = gh_n + b_hn, r = sigmoid(gi_r + gh_r), z = sigmoid(gi_z + gh_z):

        dn = dh (1 - z),   da_n = dn (1 - n^2),   dz = dh (h_prev - n),   dr = da_n hn
        dgi = [dr r (1 - r), dz z (1 - z), da_n]     (the input part's pre-activations)
        dgh = [dr r (1 - r), dz z (1 - z), da_n r]   (the hidden part's, bias b_hh included)
        dh_prev = dh z                                (the direct path; the layer adds dgh W_hh)

    dh, n, gh_n, h_prev: [B, H];  rz: [B, 2H];  b_hn: [H];  dgi, dgh: [B, 3H] and
    dh_prev: [B, H] (written).
    """
    B, H = dh.shape
    for b in range(B):
        gate_r, gate_z = rz[b, :H], rz[b, H:]
        dgi_r, dgi_z, dgi_n = dgi[b, :H], dgi[b, H:2 * H], dgi[b, 2 * H:]
        dgh_r, dgh_z, dgh_n = dgh[b, :H], dgh[b, H:2 * H], dgh[b, 2 * H:]
        dh_b, n_b, gh_b, h_prev_b, dh_prev_b = dh[b], n[b], gh_n[b], h_prev[b], dh_prev[b]
        for j in range(H):
            r, z, nn = gate_r[j], gate_z[j], n_b[j]
            d = dh_b[j]
            da_n = d * (1 - z) * (1 - nn * nn)
            dr = da_n * (gh_b[j] + b_hn[j]) * r * (1 - r)
            dz = d * (h_prev_b[j] - nn) * z * (1 - z)
            dgi_r[j] = dr
            dgi_z[j] = dz
            dgi_n[j] = da_n
            dgh_r[j] = dr
            dgh_z[j] = dz
            dgh_n[j] = da_n * r
            dh_prev_b[j] = d * z


# ---- plain-NumPy twins (the tests hold the kernels against these) -----------
def tanh_sum_float32_reference(a, b):
    """tanh(a + b) by NumPy, in float64 (the kernels are held to it within 6 float32 ulps)."""
    return np.tanh(a.astype(np.float64) + b.astype(np.float64))


def _blocks(a, n):
    """The n gate blocks of a [B, n*H] array, as views."""
    return np.split(a, n, axis=1)


def lstm_gates_reference(tanh_halved, c_prev):
    """(gates [B, 4H], c [B, H]) from tanh of the scaled pre-activations."""
    t_i, t_f, g, t_o = _blocks(tanh_halved, 4)
    i, f, o = (0.5 * t + 0.5 for t in (t_i, t_f, t_o))
    return np.concatenate([i, f, g, o], axis=1), f * c_prev + i * g


def lstm_gates_backward_reference(dh, dc, act, c_prev, tanh_c):
    i, f, g, o = _blocks(act, 4)
    total = dc + dh * o * (1 - tanh_c**2)
    da = np.concatenate([total * g * i * (1 - i), total * c_prev * f * (1 - f),
                         total * i * (1 - g**2), dh * tanh_c * o * (1 - o)], axis=1)
    return da, total * f


def gru_gates_reference(tanh_halved_rz, gi_n, gh_n, b_hn):
    """(r, z as [B, 2H], pre_n [B, H])."""
    rz = 0.5 * tanh_halved_rz + 0.5
    r = rz[:, :gi_n.shape[1]]
    return rz, gi_n + r * (gh_n + b_hn)


def gru_output_reference(n, z, h_prev):
    return (1 - z) * n + z * h_prev


def gru_gates_backward_reference(dh, rz, n, gh_n, b_hn, h_prev):
    """(dgi, dgh, dh_prev) by the chain rule, one factor at a time."""
    r, z = _blocks(rz, 2)
    dn = dh * (1 - z)
    da_n = dn * (1 - n**2)
    da_r = da_n * (gh_n + b_hn) * r * (1 - r)
    da_z = dh * (h_prev - n) * z * (1 - z)
    dgi = np.concatenate([da_r, da_z, da_n], axis=1)
    dgh = np.concatenate([da_r, da_z, da_n * r], axis=1)
    return dgi, dgh, dh * z
