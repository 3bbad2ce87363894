"""Pooling: max / average, fixed windows and adaptive bins, and max-unpooling.

All of them reduce, for each output pixel (oy, ox), a window of input rows
(chosen by oy) times input columns (chosen by ox). Each op only builds the two
per-axis tap tables (``Taps``: which input positions, with which weights) and
hands them to one of two primitives over the kernels in minidl/kernels/pool.py:

    WindowMax:  y = max over the window, remembering the argmax.
                dL/dx[argmax] += dL/dy (only the winner gets the gradient)
    WindowSum:  y = sum over the window of w_h[oy, a] w_w[ox, b] x[iy_a, ix_b]   (linear)
                dL/dx = the transpose of that sum, scattered back with the same weights

Average pooling is WindowSum with weights 1 / (window size); interpolation
(minidl/ops/upsample.py) is WindowSum with bilinear or nearest weights.

Window geometry follows PyTorch (``torch.nn.functional.max_pool2d`` etc.):

    Hout = floor((H + 2 p - d (k - 1) - 1 + (s - 1 if ceil_mode else 0)) / s) + 1,
    and with ceil_mode the last window must start inside the input or its left padding.

Adaptive pooling (output size fixed, windows adapt) uses bin o = [floor(o H / Hout),
ceil((o + 1) H / Hout)), so the bins cover the input and may overlap by one.
Max pooling: Ranzato et al. 2007; its argmax-based unpooling: Zeiler & Fergus 2014.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.kernels import pool as kernels
from minidl.ops.checks import check_float, kernel_array
from minidl.ops.conv import check_4d, is_int, pair_arg


class Taps(NamedTuple):
    """One axis of a window op: output o reads input positions index[o, :count[o]] with weights
    weight[o, :count[o]] (the rest of each row is unused). index, weight: [out, T]; count: [out]."""

    index: np.ndarray
    weight: np.ndarray
    count: np.ndarray


def _pairs(taps) -> bool:
    """True when output o reads input positions 2o and 2o + 1 and nothing else (a window of 2
    at stride 2 without padding), the case of kernels.max_pool_2x2."""
    index, count = taps.index, taps.count
    return index.shape[1] == 2 and bool((count == 2).all()) and \
        np.array_equal(index, 2 * np.arange(len(count))[:, None] + np.arange(2))


class WindowMax(Function):
    """y[n, c, oy, ox] = max over the window; dL/dx at the argmax += dL/dy.

    The caller passes ``argmax`` (int64, shaped like y): forward fills it with the flat
    index iy * W + ix of each maximum, so ``return_indices=True`` can hand it back.
    """

    def forward(ctx, x, taps_h=None, taps_w=None, argmax=None, op="max_pool2d"):
        x = kernel_array(x, op)
        out = np.empty(argmax.shape, dtype=x.dtype)
        if _pairs(taps_h) and _pairs(taps_w):  # 2x2 at stride 2: the unrolled kernel
            kernels.max_pool_2x2(x, out, argmax)
        else:
            kernels.window_max(x, taps_h.index, taps_h.count, taps_w.index, taps_w.count, out,
                               argmax)
        ctx.argmax, ctx.x_shape = argmax, x.shape
        return out

    def backward(ctx, grad):
        N, C, H, W = ctx.x_shape
        K = ctx.argmax.shape[2] * ctx.argmax.shape[3]  # explicit sizes: N may be 0
        dx = np.zeros(ctx.x_shape, dtype=grad.dtype)  # owned: a leaf keeps it without a copy
        kernels.scatter_add_planes(np.ascontiguousarray(grad).reshape(N, C, K),
                                   ctx.argmax.reshape(N, C, K), dx.reshape(N, C, H * W))
        return dx


class WindowSum(Function):
    """y[n, c, oy, ox] = sum_{a, b} w_h[oy, a] w_w[ox, b] x[n, c, i_h[oy, a], i_w[ox, b]];
    dL/dx is the transpose of that linear map applied to dL/dy."""

    def forward(ctx, x, taps_h=None, taps_w=None, op="avg_pool2d"):
        x = kernel_array(x, op)
        out = np.empty(x.shape[:2] + (len(taps_h.count), len(taps_w.count)), dtype=x.dtype)
        kernels.window_sum(x, *taps_h, *taps_w, out)
        ctx.taps, ctx.x_shape = (taps_h, taps_w), x.shape
        return out

    def backward(ctx, grad):
        taps_h, taps_w = ctx.taps
        dx = np.zeros(ctx.x_shape, dtype=grad.dtype)
        kernels.window_sum_backward(np.ascontiguousarray(grad), *taps_h, *taps_w, dx)
        return dx


class MaxUnpool2dFunction(Function):
    """y = zeros with y[n, c, indices[n, c, k]] = x[n, c, k]; dL/dx = dL/dy gathered at indices.

    (The adjoint of picking the argmax: what max pooling kept goes back where it came from.)
    """

    def forward(ctx, x, indices=None, out_hw=None):
        N, C, h, w = x.shape
        flat_index = indices.reshape(N, C, h * w)
        out = np.zeros((N, C, out_hw[0] * out_hw[1]), dtype=x.dtype)
        np.put_along_axis(out, flat_index, x.reshape(N, C, h * w), axis=2)
        ctx.flat_index, ctx.x_shape = flat_index, x.shape
        return out.reshape((N, C) + tuple(out_hw))

    def backward(ctx, grad):
        N, C = ctx.x_shape[:2]
        picked = np.take_along_axis(grad.reshape(N, C, grad.shape[2] * grad.shape[3]),
                                    ctx.flat_index, axis=2)
        return picked.reshape(ctx.x_shape)


# ---- tap tables -------------------------------------------------------------
def pool_output_size(size, kernel, stride, padding, dilation, ceil_mode) -> int:
    """PyTorch's pooling_output_shape (see the module docstring)."""
    span = dilation * (kernel - 1) + 1
    out = (size + 2 * padding - span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and (out - 1) * stride >= size + padding:
        out -= 1  # the last window would start in the right padding
    return out


def _read_only(taps: Taps) -> Taps:
    for array in taps:
        array.flags.writeable = False
    return taps


# The tap tables depend only on the window's geometry, so each is built once
# (functools.lru_cache) and kept read-only: a layer reuses the same tables every step.
@functools.lru_cache(maxsize=256)
def pool_taps(size, out_size, kernel, stride, padding, dilation, dtype=np.float64) -> Taps:
    """Taps of a pooling window along one axis: tap t of output o reads o*stride - padding
    + t*dilation; taps in the padding are left out. Weights are 1 (set later for averages)."""
    o = np.arange(out_size)[:, None]
    t = np.arange(kernel)[None, :]
    position = o * stride - padding + t * dilation
    inside = (position >= 0) & (position < size)
    count = inside.sum(axis=1)
    order = np.argsort(~inside, axis=1, kind="stable")  # inside taps first, in window order
    index = np.take_along_axis(position, order, axis=1)
    index = np.where(t < count[:, None], index, index[:, :1])  # unused slots: any valid position
    return _read_only(Taps(index.astype(np.int64), np.ones(index.shape, dtype),
                           count.astype(np.int64)))


@functools.lru_cache(maxsize=256)
def adaptive_taps(size, out_size, dtype=np.float64) -> Taps:
    """Taps of adaptive pooling along one axis:
    bin o = [floor(o size / out), ceil((o + 1) size / out))."""
    o = np.arange(out_size)
    start = o * size // out_size
    stop = -((-(o + 1) * size) // out_size)  # ceil division
    count = stop - start
    t = np.arange(count.max())[None, :]
    index = np.minimum(start[:, None] + t, stop[:, None] - 1)
    return _read_only(Taps(index.astype(np.int64), np.ones(index.shape, dtype),
                           count.astype(np.int64)))


def _with_weight(taps: Taps, weight) -> Taps:
    """The same taps with every used tap of output o weighted weight[o]."""
    return taps._replace(weight=np.broadcast_to(np.asarray(weight)[:, None],
                                                taps.index.shape).astype(taps.weight.dtype))


# ---- argument checks --------------------------------------------------------
def _window_args(op, input, kernel_size, stride, padding, dilation, ceil_mode):
    """Validate a pooling window; return (kernel, stride, padding, dilation, out_hw)."""
    check_4d(input, op)
    check_float(input, op)
    kernel = pair_arg(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == () else pair_arg(stride, "stride", op, 1)
    padding = pair_arg(padding, "padding", op, 0)
    dilation = pair_arg(dilation, "dilation", op, 1)
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    out_hw = tuple(pool_output_size(n, k, s, p, d, ceil_mode) for n, k, s, p, d in
                   zip(input.shape[2:], kernel, stride, padding, dilation))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: input {tuple(input.shape)} is too small for kernel {kernel} "
                         f"(stride {stride}, padding {padding}, dilation {dilation}): the output "
                         f"would be {out_hw[0]}x{out_hw[1]}")
    return kernel, stride, padding, dilation, out_hw


def _output_size_arg(op, input, output_size) -> tuple:
    """Adaptive pools: an int or (h, w) pair; None keeps that input size."""
    check_4d(input, op)
    check_float(input, op)
    if output_size is None or is_int(output_size):
        sizes = (output_size, output_size)
    elif isinstance(output_size, (tuple, list)) and len(output_size) == 2:
        sizes = tuple(output_size)
    else:
        sizes = ()
    if len(sizes) != 2 or not all(s is None or is_int(s) for s in sizes):
        raise TypeError(f"{op}: output_size must be an int, a pair of ints or None, got "
                        f"{output_size!r}")
    sizes = tuple(int(n if s is None else s) for s, n in zip(sizes, input.shape[2:]))
    if min(sizes) < 1:
        raise ValueError(f"{op}: output_size must be positive, got {output_size!r}")
    return sizes


# ---- functional forms -------------------------------------------------------
def max_pool2d(input, kernel_size, stride=None, padding=0, dilation=1, ceil_mode=False,
               return_indices=False):
    """Max over each kh x kw window: y[n, c, oy, ox] = max_{i, j} x[n, c, iy, ix] with
    iy = oy s - p + i d, ix = ox s - p + j d.

    input: [N, C, H, W] -> [N, C, Hout, Wout]; the padding never wins (it acts as -inf).
    ``stride`` defaults to ``kernel_size``. With ``return_indices=True`` also returns the
    int64 Tensor of argmax positions, flattened over H*W per channel (as PyTorch), for
    ``max_unpool2d``.
    """
    kernel, stride, padding, dilation, out_hw = _window_args(
        "max_pool2d", input, kernel_size, stride, padding, dilation, ceil_mode)
    taps = [pool_taps(n, m, k, s, p, d) for n, m, k, s, p, d in
            zip(input.shape[2:], out_hw, kernel, stride, padding, dilation)]
    if min(t.count.min() for t in taps) == 0:  # possible when the dilation exceeds the input
        raise ValueError(f"max_pool2d: with input {tuple(input.shape)}, kernel {kernel}, "
                         f"padding {padding} and dilation {dilation} a window holds only "
                         f"padding")
    argmax = np.empty(tuple(input.shape[:2]) + out_hw, dtype=np.int64)
    out = WindowMax.apply(input, taps_h=taps[0], taps_w=taps[1], argmax=argmax, op="max_pool2d")
    return (out, Tensor(argmax)) if return_indices else out


def adaptive_max_pool2d(input, output_size, return_indices=False):
    """Max over adaptive bins so that the output is ``output_size`` (int, pair, None = keep)."""
    op = "adaptive_max_pool2d"
    out_hw = _output_size_arg(op, input, output_size)
    taps = [adaptive_taps(n, m) for n, m in zip(input.shape[2:], out_hw)]
    argmax = np.empty(tuple(input.shape[:2]) + out_hw, dtype=np.int64)
    out = WindowMax.apply(input, taps_h=taps[0], taps_w=taps[1], argmax=argmax, op=op)
    return (out, Tensor(argmax)) if return_indices else out


def avg_pool2d(input, kernel_size, stride=None, padding=0, ceil_mode=False,
               count_include_pad=True, divisor_override=None):
    """Mean over each kh x kw window (PyTorch's divisor rules).

    input: [N, C, H, W] -> [N, C, Hout, Wout]. The divisor is ``divisor_override`` if given,
    else the window size counting the zero padding (``count_include_pad=True``) or only the
    input pixels in the window. Windows that ceil_mode lets run past the padding are cut at
    its edge, and the cut part is never counted.
    """
    op = "avg_pool2d"
    kernel, stride, padding, _, out_hw = _window_args(op, input, kernel_size, stride, padding,
                                                      1, ceil_mode)
    dtype = input.dtype.newbyteorder("=")  # the weights, in native byte order
    taps = []
    for n, m, k, s, p in zip(input.shape[2:], out_hw, kernel, stride, padding):
        t = pool_taps(n, m, k, s, p, 1, dtype)
        start = np.arange(m) * s - p
        padded_size = np.minimum(start + k, n + p) - start  # window inside the padded input
        taps.append(_with_weight(t, 1.0 / (padded_size if count_include_pad else t.count)))
    if divisor_override is not None:
        if not isinstance(divisor_override, (int, np.integer)) or divisor_override == 0:
            raise ValueError(f"{op}: divisor_override must be a non-zero int, got "
                             f"{divisor_override!r}")
        taps = [_with_weight(taps[0], np.full(out_hw[0], 1.0 / divisor_override)),
                _with_weight(taps[1], np.ones(out_hw[1]))]
    return WindowSum.apply(input, taps_h=taps[0], taps_w=taps[1], op=op)


def adaptive_avg_pool2d(input, output_size):
    """Mean over adaptive bins so that the output is ``output_size`` (int, pair, None = keep).

    ``adaptive_avg_pool2d(x, 1)`` is global average pooling (Lin et al. 2013, "Network in
    network"): [N, C, H, W] -> [N, C, 1, 1].
    """
    op = "adaptive_avg_pool2d"
    return adaptive_average(input, _output_size_arg(op, input, output_size), op)


def adaptive_average(input, out_hw, op: str):
    """The mean over adaptive bins giving an [N, C, *out_hw] output (``op`` names the caller in
    errors): adaptive_avg_pool2d, and interpolate's 'area' mode."""
    dtype = input.dtype.newbyteorder("=")  # the weights, in native byte order
    taps = [adaptive_taps(n, m, dtype) for n, m in zip(input.shape[2:], out_hw)]
    taps = [_with_weight(t, 1.0 / t.count) for t in taps]
    return WindowSum.apply(input, taps_h=taps[0], taps_w=taps[1], op=op)


def max_unpool2d(input, indices, kernel_size, stride=None, padding=0, output_size=None):
    """Put each value back where max pooling found it, zeros elsewhere (Zeiler & Fergus 2014).

    input, indices: [N, C, h, w] (indices from ``max_pool2d(..., return_indices=True)``)
    -> [N, C, H, W] with H = (h - 1) s - 2 p + k unless ``output_size`` ((H, W) or the full
    shape) picks one of the sizes that pool to h.
    """
    op = "max_unpool2d"
    check_4d(input, op)
    check_float(input, op)
    kernel = pair_arg(kernel_size, "kernel_size", op, 1)
    stride = kernel if stride is None or stride == () else pair_arg(stride, "stride", op, 1)
    padding = pair_arg(padding, "padding", op, 0)
    index = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if index.shape != tuple(input.shape) or index.dtype.kind not in "iu":
        raise ValueError(f"{op}: indices must be integers shaped like the input "
                         f"{tuple(input.shape)}, got {index.dtype} {index.shape}")
    default = tuple((n - 1) * s - 2 * p + k for n, s, p, k in
                    zip(input.shape[2:], stride, padding, kernel))
    if output_size is None:
        out_hw = default
    else:
        out_hw = tuple(int(v) for v in tuple(output_size)[-2:])
        for size, d, s in zip(out_hw, default, stride):
            if not d - s < size < d + s:
                raise ValueError(f"{op}: output_size {tuple(output_size)} must be within the "
                                 f"stride {stride} of the default size {default}")
    if index.size and (index.min() < 0 or index.max() >= out_hw[0] * out_hw[1]):
        raise ValueError(f"{op}: indices must lie in [0, {out_hw[0] * out_hw[1]}) for the "
                         f"output size {out_hw}, got values in [{index.min()}, {index.max()}]")
    return MaxUnpool2dFunction.apply(input, indices=index.astype(np.int64, copy=False),
                                     out_hw=out_hw)
