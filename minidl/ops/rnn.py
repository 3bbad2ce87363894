"""Fused recurrent layers: a whole sequence through one RNN, LSTM or GRU layer as one primitive.

The readable form of a recurrent layer is a loop over time of a cell written in
primitives (minidl/nn/rnn_cell.py: ``lstm_step`` and friends); autograd then
records about 17 ops per step and walks them back one by one. These primitives
compute the same thing with the work rearranged (as cuDNN and PyTorch's CPU
kernels do):

1. the input part of every gate at every step in one matrix product,
   x W_ih^T + b: [T*B, I] @ [I, G*H], before the loop;
2. per step, one product h(t-1) W_hh^T and the gate arithmetic (minidl/kernels/rnn.py;
   one tanh for all gates, sigmoid written as (1 + tanh(a/2)) / 2; for float32 the
   tanh is the kernels' SIMD rational one, ``_tanh`` below);
3. a hand-written backward through time that keeps dL/d(pre-activations) of every
   step, and at the end turns them into the weight gradients with one matrix
   product each:

       dL/dW_ih = sum_t da(t)^T x(t)  = da^T @ x          ([G*H, T*B] @ [T*B, I])
       dL/dW_hh = sum_t da(t)^T h(t-1) = da^T @ h_prev
       dL/db = sum over t and b of da,   dL/dx = da @ W_ih

The equations are those of the cells (PyTorch's gate order and GRU variant), and the
tests hold every layer against the unrolled cell in float64, values and gradients.

Shapes: x [T, B, I] (time first), h0 (and c0) [B, H], weight_ih [G*H, I],
weight_hh [G*H, H], biases [G*H] or None. ``reverse=True`` runs from t = T-1 down
to 0 (the backward direction of a bidirectional layer); outputs stay in time order.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function
from minidl.kernels import rnn as kernels
from minidl.ops.conv import cast_to, common_dtype


def _steps(T: int, reverse: bool):
    """The order in which a layer visits the time steps."""
    return range(T - 1, -1, -1) if reverse else range(T)


def _previous(seq, first, reverse: bool):
    """[T, B, H]: the state each step started from (``first`` for the first step visited)."""
    prev = np.empty_like(seq)
    if reverse:
        prev[:-1], prev[-1] = seq[1:], first
    else:
        prev[1:], prev[0] = seq[:-1], first
    return prev


def _tanh(x, plus=None):
    """x = tanh(x + plus) (plus optional), element-wise, in place in x.

    float32 C-contiguous arrays go through ``tanh_float32`` / ``tanh_sum_float32`` of
    minidl/kernels/rnn.py (a rational function compiled to SIMD code, several times faster
    than NumPy's float32 tanh and within 6 ulps of the exact tanh); anything else through
    NumPy (float64 keeps np.tanh's accuracy)."""
    arrays = (x,) if plus is None else (x, plus)
    if all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays):
        if plus is None:
            kernels.tanh_float32(x.reshape(-1))
        else:
            kernels.tanh_sum_float32(x.reshape(-1), plus.reshape(-1))
        return
    if plus is not None:
        x += plus
    np.tanh(x, out=x)


def _halve_sigmoid_gates(w, num_gates):
    """w (weight rows or bias) with every gate block but the third (LSTM's g, GRU's n, the
    tanh ones) multiplied by 1/2, which is exact: tanh of these pre-activations then gives
    the sigmoid gates as (1 + tanh) / 2."""
    blocks = np.split(np.array(w), num_gates, axis=0)
    for k, block in enumerate(blocks):
        if k != 2:
            block *= 0.5
    return np.concatenate(blocks, axis=0)


def _bias(b, size, dtype):
    return np.zeros(size, dtype) if b is None else b


def _input_products(x, w_ih, bias):
    """x(t) W_ih^T + bias for every step at once: [T, B, G*H]."""
    T, B, I = x.shape
    return (np.matmul(x.reshape(T * B, I), w_ih.T) + bias).reshape(T, B, w_ih.shape[0])


def _parameter_grads(needs, x, w_ih, h_prev, da_input, da_hidden):
    """The gradients of (x, weight_ih, weight_hh, bias_ih, bias_hh), each where ``needs``
    says so, from the pre-activation gradients of all steps: da_input [T, B, G*H] of the
    input part, da_hidden of the hidden part (the same array for the RNN and the LSTM).
    Each is one product (or sum) over all steps."""
    need_x, need_w_ih, need_w_hh, need_b_ih, need_b_hh = needs
    T, B, I = x.shape
    gi = da_input.reshape(T * B, da_input.shape[2])  # explicit sizes: B may be 0
    gh = da_hidden.reshape(T * B, da_hidden.shape[2])
    return (np.matmul(gi, w_ih).reshape(T, B, I) if need_x else None,
            np.matmul(gi.T, x.reshape(T * B, I)) if need_w_ih else None,
            np.matmul(gh.T, h_prev.reshape(T * B, h_prev.shape[2])) if need_w_hh else None,
            gi.sum(axis=0) if need_b_ih else None,
            gh.sum(axis=0) if need_b_hh else None)


class RNNLayer(Function):
    """h(t) = act(x(t) W_ih^T + b_ih + h(t-1) W_hh^T + b_hh), act = tanh or relu.

    Returns y: [T, B, H], the h(t) in time order (the final state is y[T-1], or y[0]
    when ``reverse``)."""

    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False, nonlinearity="tanh"):
        x = np.ascontiguousarray(x)
        T, B, _ = x.shape
        H = w_hh.shape[1]
        pre_x = _input_products(x, w_ih, _bias(b_ih, H, x.dtype) + _bias(b_hh, H, x.dtype))
        w_hh_t = np.ascontiguousarray(w_hh.T)
        y = np.empty((T, B, H), x.dtype)
        h = h0
        for t in _steps(T, reverse):
            np.matmul(h, w_hh_t, out=y[t])
            if nonlinearity == "tanh":
                _tanh(y[t], pre_x[t])
            else:
                y[t] += pre_x[t]
                np.maximum(y[t], 0, out=y[t])
            h = y[t]
        ctx.save_for_backward(x, h0, w_ih, w_hh, y)
        ctx.reverse, ctx.nonlinearity = reverse, nonlinearity
        return y

    def backward(ctx, grad):
        x, h0, w_ih, w_hh, y = ctx.saved_tensors
        need_x, need_h0, *need_params = ctx.needs_input_grad
        grad = np.asarray(grad, dtype=y.dtype)
        T = y.shape[0]
        # dL/d(pre-activation) = dL/dh times act', which reads off h itself
        slope = 1 - y * y if ctx.nonlinearity == "tanh" else (y > 0).astype(y.dtype)
        da = np.empty_like(y)
        dh = np.zeros_like(h0)
        for t in _steps(T, not ctx.reverse):
            np.add(grad[t], dh, out=da[t])
            da[t] *= slope[t]
            dh = np.matmul(da[t], w_hh)
        h_prev = _previous(y, h0, ctx.reverse)
        dx, *dparams = _parameter_grads((need_x, *need_params), x, w_ih, h_prev, da, da)
        return (dx, dh if need_h0 else None, *dparams)


class LSTMLayer(Function):
    """The LSTM cell over a sequence (equations in ``lstm_step``, minidl/nn/rnn_cell.py).

    Returns y: [T + 1, B, H]: y[:T] the h(t) in time order, y[T] the final cell c."""

    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        x = np.ascontiguousarray(x)
        T, B, _ = x.shape
        H = w_hh.shape[1]
        bias = _bias(b_ih, 4 * H, x.dtype) + _bias(b_hh, 4 * H, x.dtype)
        pre_x = _input_products(x, _halve_sigmoid_gates(w_ih, 4), _halve_sigmoid_gates(bias, 4))
        w_hh_t = np.ascontiguousarray(_halve_sigmoid_gates(w_hh, 4).T)
        act = np.empty((T, B, 4 * H), x.dtype)  # the gates i, f, g, o of every step
        c = np.empty((T, B, H), x.dtype)
        tanh_c = np.empty((T, B, H), x.dtype)
        y = np.empty((T + 1, B, H), x.dtype)
        h, c_prev = h0, c0
        for t in _steps(T, reverse):
            a = act[t]
            np.matmul(h, w_hh_t, out=a)
            _tanh(a, pre_x[t])
            kernels.lstm_gates(a, c_prev, c[t])
            np.copyto(tanh_c[t], c[t])
            _tanh(tanh_c[t])
            np.multiply(a[:, 3 * H:], tanh_c[t], out=y[t])
            h, c_prev = y[t], c[t]
        y[T] = c_prev
        ctx.save_for_backward(x, h0, c0, w_ih, w_hh, act, c, tanh_c, y)
        ctx.reverse = reverse
        return y

    def backward(ctx, grad):
        x, h0, c0, w_ih, w_hh, act, c, tanh_c, y = ctx.saved_tensors
        need_x, need_h0, need_c0, *need_params = ctx.needs_input_grad
        grad = np.asarray(grad, dtype=y.dtype)
        T = act.shape[0]
        c_prev = _previous(c, c0, ctx.reverse)
        da = np.empty_like(act)
        dh_from_next = np.zeros_like(h0)
        dh = np.empty_like(h0)
        dc, dc_prev = np.array(grad[T]), np.empty_like(c0)
        for t in _steps(T, not ctx.reverse):
            np.add(grad[t], dh_from_next, out=dh)
            kernels.lstm_gates_backward(dh, dc, act[t], c_prev[t], tanh_c[t], da[t], dc_prev)
            dh_from_next = np.matmul(da[t], w_hh)
            dc, dc_prev = dc_prev, dc
        h_prev = _previous(y[:T], h0, ctx.reverse)
        dx, *dparams = _parameter_grads((need_x, *need_params), x, w_ih, h_prev, da, da)
        return (dx, dh_from_next if need_h0 else None, dc if need_c0 else None, *dparams)


class GRULayer(Function):
    """The GRU cell over a sequence (equations in ``gru_step``, minidl/nn/rnn_cell.py).

    Returns y: [T, B, H], the h(t) in time order."""

    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh, reverse=False):
        x = np.ascontiguousarray(x)
        T, B, _ = x.shape
        H = w_hh.shape[1]
        b_ih, b_hh = _bias(b_ih, 3 * H, x.dtype), _bias(b_hh, 3 * H, x.dtype)
        # r and z add both biases; n's hidden bias sits inside r * (W_hn h + b_hn)
        bias = b_ih + np.concatenate([b_hh[:2 * H], np.zeros(H, x.dtype)])
        pre_x = _input_products(x, _halve_sigmoid_gates(w_ih, 3), _halve_sigmoid_gates(bias, 3))
        w_hh_t = np.ascontiguousarray(_halve_sigmoid_gates(w_hh, 3).T)
        b_hn = b_hh[2 * H:]
        gh = np.empty((T, B, 3 * H), x.dtype)  # h(t-1) W_hh^T (r, z halved) of every step
        rz = np.empty((T, B, 2 * H), x.dtype)
        n = np.empty((T, B, H), x.dtype)
        y = np.empty((T, B, H), x.dtype)
        h = h0
        for t in _steps(T, reverse):
            np.matmul(h, w_hh_t, out=gh[t])
            np.add(pre_x[t, :, :2 * H], gh[t, :, :2 * H], out=rz[t])
            _tanh(rz[t])
            kernels.gru_gates(rz[t], pre_x[t, :, 2 * H:], gh[t, :, 2 * H:], b_hn, n[t])
            _tanh(n[t])
            kernels.gru_output(n[t], rz[t, :, H:], h, y[t])
            h = y[t]
        ctx.save_for_backward(x, h0, w_ih, w_hh, b_hn, gh, rz, n, y)
        ctx.reverse = reverse
        return y

    def backward(ctx, grad):
        x, h0, w_ih, w_hh, b_hn, gh, rz, n, y = ctx.saved_tensors
        need_x, need_h0, *need_params = ctx.needs_input_grad
        grad = np.asarray(grad, dtype=y.dtype)
        T, _, H = y.shape
        h_prev = _previous(y, h0, ctx.reverse)
        dgi, dgh = np.empty_like(gh), np.empty_like(gh)
        dh_from_next = np.zeros_like(h0)
        dh, dh_direct = np.empty_like(h0), np.empty_like(h0)
        for t in _steps(T, not ctx.reverse):
            np.add(grad[t], dh_from_next, out=dh)
            kernels.gru_gates_backward(dh, rz[t], n[t], gh[t, :, 2 * H:], b_hn, h_prev[t],
                                       dgi[t], dgh[t], dh_direct)
            dh_from_next = np.matmul(dgh[t], w_hh)
            dh_from_next += dh_direct
        dx, *dparams = _parameter_grads((need_x, *need_params), x, w_ih, h_prev, dgi, dgh)
        return (dx, dh_from_next if need_h0 else None, *dparams)


# ---- functional forms -----------------------------------------------------------------
def _same_dtype(*tensors):
    """Inputs of mixed float types are computed in the widest one (as the composite does)."""
    dtype = common_dtype(*tensors)
    return [cast_to(t, dtype) for t in tensors]


def rnn_layer(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reverse=False,
              nonlinearity="tanh"):
    """An Elman RNN layer over x: [T, B, I] from h0: [B, H] -> (output [T, B, H], h_T)."""
    args = _same_dtype(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    y = RNNLayer.apply(*args, reverse=bool(reverse), nonlinearity=nonlinearity)
    return y, y[0 if reverse else -1]


def lstm_layer(x, h0, c0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reverse=False):
    """An LSTM layer over x: [T, B, I] from (h0, c0) -> (output [T, B, H], (h_T, c_T))."""
    args = _same_dtype(x, h0, c0, weight_ih, weight_hh, bias_ih, bias_hh)
    y = LSTMLayer.apply(*args, reverse=bool(reverse))
    T = x.shape[0]
    return y[:T], (y[0 if reverse else T - 1], y[T])


def gru_layer(x, h0, weight_ih, weight_hh, bias_ih=None, bias_hh=None, reverse=False):
    """A GRU layer over x: [T, B, I] from h0: [B, H] -> (output [T, B, H], h_T)."""
    args = _same_dtype(x, h0, weight_ih, weight_hh, bias_ih, bias_hh)
    y = GRULayer.apply(*args, reverse=bool(reverse))
    return y, y[0 if reverse else -1]
