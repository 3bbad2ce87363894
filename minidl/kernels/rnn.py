"""Gate arithmetic of the fused recurrent layers (minidl/ops/rnn.py), one step at a time.

Per time step a fused layer does one matrix product (h(t-1) W_hh^T) and then the
gate arithmetic on [B, G*H] arrays. The transcendental functions (tanh, and
sigmoid written through it) are left to NumPy's ufuncs, which use SIMD; a call of
tanh inside a numba loop goes to the C library one element at a time (numba is
built here without a vector math library). These kernels do the rest, the products and sums that
would otherwise take a dozen NumPy calls, each with its own temporary:

    sigmoid(a) = (1 + tanh(a / 2)) / 2

so the layer scales the sigmoid gates' pre-activations by 1/2 (exact in binary
floating point), takes one ``np.tanh`` over all gates at once, and these kernels
turn the sigmoid blocks into 0.5 v + 0.5 as they read them.

    lstm_gates:           i, f, o = 0.5 v + 0.5, g = v  (v = tanh of the scaled blocks);
                          c = f c_prev + i g
    lstm_gates_backward:  dL/d(pre-activations) of one step, and dL/dc_prev
    gru_gates:            r, z from tanh; pre_n = gi_n + r (gh_n + b_hn)
    gru_output:           h = n + z (h_prev - n)
    gru_gates_backward:   dL/d(input part), dL/d(hidden part) of one step, and the direct
                          part of dL/dh_prev

Shapes: B sequences, H hidden units; gate blocks side by side in PyTorch's order
(LSTM i, f, g, o; GRU r, z, n). Every array is C-contiguous or a row-contiguous slice.
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit
def lstm_gates(act, c_prev, c):
    """act: [B, 4H], on entry tanh of the pre-activations with the i, f, o blocks halved;
    on exit the gates i, f, g, o.  c[b, j] = f c_prev[b, j] + i g  (c, c_prev: [B, H])."""
    B, H = c.shape
    for b in range(B):
        for j in range(H):
            i = 0.5 * act[b, j] + 0.5
            f = 0.5 * act[b, H + j] + 0.5
            o = 0.5 * act[b, 3 * H + j] + 0.5
            act[b, j] = i
            act[b, H + j] = f
            act[b, 3 * H + j] = o
            c[b, j] = f * c_prev[b, j] + i * act[b, 2 * H + j]


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
        for j in range(H):
            i, f = act[b, j], act[b, H + j]
            g, o = act[b, 2 * H + j], act[b, 3 * H + j]
            t = tanh_c[b, j]
            total = dc[b, j] + dh[b, j] * o * (1 - t * t)
            da[b, j] = total * g * i * (1 - i)
            da[b, H + j] = total * c_prev[b, j] * f * (1 - f)
            da[b, 2 * H + j] = total * i * (1 - g * g)
            da[b, 3 * H + j] = dh[b, j] * t * o * (1 - o)
            dc_prev[b, j] = total * f


@njit
def gru_gates(rz, gi_n, gh_n, b_hn, pre_n):
    """rz: [B, 2H], on entry tanh of the halved r, z pre-activations, on exit r, z.
    pre_n[b, j] = gi_n[b, j] + r (gh_n[b, j] + b_hn[j])  (gi_n, gh_n, pre_n: [B, H]; b_hn: [H])."""
    B, H = pre_n.shape
    for b in range(B):
        for j in range(H):
            r = 0.5 * rz[b, j] + 0.5
            rz[b, j] = r
            rz[b, H + j] = 0.5 * rz[b, H + j] + 0.5
            pre_n[b, j] = gi_n[b, j] + r * (gh_n[b, j] + b_hn[j])


@njit
def gru_output(n, z, h_prev, h):
    """h[b, j] = n + z (h_prev - n)  (= (1 - z) n + z h_prev).  All [B, H] (z may be a slice)."""
    B, H = h.shape
    for b in range(B):
        for j in range(H):
            h[b, j] = n[b, j] + z[b, j] * (h_prev[b, j] - n[b, j])


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
        for j in range(H):
            r, z, nn = rz[b, j], rz[b, H + j], n[b, j]
            d = dh[b, j]
            da_n = d * (1 - z) * (1 - nn * nn)
            dr = da_n * (gh_n[b, j] + b_hn[j]) * r * (1 - r)
            dz = d * (h_prev[b, j] - nn) * z * (1 - z)
            dgi[b, j] = dr
            dgi[b, H + j] = dz
            dgi[b, 2 * H + j] = da_n
            dgh[b, j] = dr
            dgh[b, H + j] = dz
            dgh[b, 2 * H + j] = da_n * r
            dh_prev[b, j] = d * z


# ---- plain-NumPy twins (the tests hold the kernels against these) -----------
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
