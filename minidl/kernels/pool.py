"""Window kernels for pooling and interpolation: max with argmax, weighted sums, scatter-add.

Every pooling and resampling op on [N, C, H, W] reads, for output pixel (oy, ox),
a few input rows and a few input columns, and the choice of rows depends only
on oy, the choice of columns only on ox. So each op is described by two small
per-axis tables, built in NumPy by the op (minidl/ops/pool.py, upsample.py):

    index[o, t]   the input position of tap t of output position o   [out, T] int64
    weight[o, t]  its weight (average pooling, interpolation)          [out, T] float
    count[o]      how many taps output o has (the rest of the row is unused)

The kernels then are plain loops:

    window_max:  out[n, c, oy, ox] = max over taps of x[n, c, index_h[oy, a], index_w[ox, b]]
                 and argmax = that pixel's flat index iy * W + ix (PyTorch's convention)
    max_pool_2x2: window_max for 2x2 windows at stride 2 (the common case), unrolled
    window_sum:  out[n, c, oy, ox] = sum over taps of weight_h[oy, a] weight_w[ox, b]
                                     * x[n, c, index_h[oy, a], index_w[ox, b]]
    window_sum_backward: the transpose of window_sum (scatter-add of the gradient)
    scatter_add_planes:  dx[n, c, argmax[n, c, k]] += grad[n, c, k] (max-pool backward)

Max pooling (with padding, dilation, ceil_mode), adaptive max pooling, average
pooling (count_include_pad, divisor_override), adaptive average pooling, and
nearest / bilinear interpolation are these kernels with different tables.

The max-pooling kernels loop over the (image, channel) planes, each read and
written by one iteration (a loop over output pixels would not be: the
scatter-adds of overlapping windows hit the same input pixel). They are serial:
in a network they run between threaded matrix products, and a parallel loop
there made the LeNet-5 training step 2.6x slower than a serial one (see
``minidl/kernels/conv.py`` for why).
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit
def window_max(x, index_h, count_h, index_w, count_w, out, argmax):
    """out[n, c, oy, ox] = max_{a < count_h[oy], b < count_w[ox]} x[n, c, index_h[oy, a],
    index_w[ox, b]]; argmax[n, c, oy, ox] = iy * W + ix of the first maximum (a NaN wins,
    the last one if several, as in PyTorch, so NaNs propagate).

    The loop over a window starts from its first tap and keeps the larger value with a
    select (``best = value if bigger else best``) that the CPU runs without a branch;
    written as ``if value > best or isnan(value)`` it is a branch that the CPU
    mispredicts about half the time on random data. NaNs are rare, so a window is
    scanned again for them only when one was seen.

    x: [N, C, H, W];  out, argmax: [N, C, Hout, Wout].
    """
    N, C, H, W = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for nc in range(N * C):  # iteration nc writes only out[n, c], argmax[n, c]
        n, c = nc // C, nc % C
        plane = x[n, c]
        for oy in range(out_h):
            for ox in range(out_w):
                iy, ix = index_h[oy, 0], index_w[ox, 0]
                best, best_index = plane[iy, ix], iy * W + ix
                saw_nan = False
                for a in range(count_h[oy]):
                    iy = index_h[oy, a]
                    for b in range(count_w[ox]):
                        ix = index_w[ox, b]
                        value = plane[iy, ix]
                        bigger = value > best
                        best = value if bigger else best
                        best_index = iy * W + ix if bigger else best_index
                        saw_nan |= value != value
                if saw_nan:  # the last NaN of the window wins
                    for a in range(count_h[oy]):
                        iy = index_h[oy, a]
                        for b in range(count_w[ox]):
                            ix = index_w[ox, b]
                            if np.isnan(plane[iy, ix]):
                                best, best_index = plane[iy, ix], iy * W + ix
                out[n, c, oy, ox] = best
                argmax[n, c, oy, ox] = best_index


@njit
def max_pool_2x2(x, out, argmax):
    """window_max for the most common window, 2x2 at stride 2 without padding: out[n, c, oy,
    ox] = the max of x[n, c, 2oy:2oy + 2, 2ox:2ox + 2], argmax its flat index iy * W + ix,
    with window_max's rules (the first maximum in the order (0, 0), (0, 1), (1, 0), (1, 1);
    the last NaN if any). The four taps are written out, so there are no tap tables to
    read and no inner loops to run per output pixel.

    x: [N, C, H, W];  out, argmax: [N, C, Hout, Wout] with Hout <= H // 2, Wout <= W // 2.
    """
    N, C, H, W = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    for nc in range(N * C):  # iteration nc writes only out[n, c], argmax[n, c]
        n, c = nc // C, nc % C
        plane = x[n, c]
        for oy in range(out_h):
            top, bottom = plane[2 * oy], plane[2 * oy + 1]
            first = 2 * oy * W  # flat index of the window row's first pixel
            for ox in range(out_w):
                ix = 2 * ox
                v0, v1, v2, v3 = top[ix], top[ix + 1], bottom[ix], bottom[ix + 1]
                best, at = v0, first + ix
                best, at = (v1, first + ix + 1) if v1 > best else (best, at)
                best, at = (v2, first + W + ix) if v2 > best else (best, at)
                best, at = (v3, first + W + ix + 1) if v3 > best else (best, at)
                if best != best or v1 != v1 or v2 != v2 or v3 != v3:  # the last NaN wins
                    for k, v in enumerate((v0, v1, v2, v3)):
                        if v != v:
                            best, at = v, first + (k // 2) * W + ix + k % 2
                out[n, c, oy, ox] = best
                argmax[n, c, oy, ox] = at


@njit
def scatter_add_planes(grad, index, dx):
    """dx[n, c, index[n, c, k]] += grad[n, c, k]: each gradient goes back to the pixel it came from.

    grad, index: [N, C, K];  dx: [N, C, H*W] (accumulated into).
    """
    N, C, K = grad.shape
    for nc in range(N * C):  # iteration nc adds only into its own plane dx[n, c]
        n, c = nc // C, nc % C
        for k in range(K):
            dx[n, c, index[n, c, k]] += grad[n, c, k]


@njit
def window_sum(x, index_h, weight_h, count_h, index_w, weight_w, count_w, out):
    """out[n, c, oy, ox] = sum_{a < count_h[oy], b < count_w[ox]}
    weight_h[oy, a] * weight_w[ox, b] * x[n, c, index_h[oy, a], index_w[ox, b]].

    The weights factor, so this is done in two passes per image plane (as A_h @ x @ A_w^T):
    first every input row is resampled along W into ``rows`` [H, Wout], then output row oy
    is the weighted sum of its input rows of ``rows`` (a contiguous, vectorizable loop),
    instead of summing the taps of each output pixel one by one.

    x: [N, C, H, W];  out: [N, C, Hout, Wout] (written).
    """
    N, C, H = x.shape[0], x.shape[1], x.shape[2]
    out_h, out_w = out.shape[2], out.shape[3]
    rows = np.empty((H, out_w))  # float64: the sums are accumulated in double precision
    acc = np.empty(out_w)
    for n in range(N):
        for c in range(C):
            for iy in range(H):  # pass 1: along W
                for ox in range(out_w):
                    total = 0.0
                    for b in range(count_w[ox]):
                        total += weight_w[ox, b] * x[n, c, iy, index_w[ox, b]]
                    rows[iy, ox] = total
            for oy in range(out_h):  # pass 2: along H
                acc[:] = 0.0
                for a in range(count_h[oy]):
                    weight, iy = weight_h[oy, a], index_h[oy, a]
                    for ox in range(out_w):
                        acc[ox] += weight * rows[iy, ox]
                for ox in range(out_w):
                    out[n, c, oy, ox] = acc[ox]


@njit
def window_sum_backward(grad, index_h, weight_h, count_h, index_w, weight_w, count_w, dx):
    """The transpose of window_sum: dx[n, c, index_h[oy, a], index_w[ox, b]] +=
    weight_h[oy, a] * weight_w[ox, b] * grad[n, c, oy, ox], i.e. dx = A_h^T @ grad @ A_w,
    in the two passes of window_sum taken backwards (rows first, then columns).

    grad: [N, C, Hout, Wout];  dx: [N, C, H, W] (accumulated into).
    """
    N, C, H = dx.shape[0], dx.shape[1], dx.shape[2]
    out_h, out_w = grad.shape[2], grad.shape[3]
    rows = np.empty((H, out_w))
    for n in range(N):
        for c in range(C):
            rows[:] = 0.0
            for oy in range(out_h):  # transpose of pass 2: spread each output row
                for a in range(count_h[oy]):
                    weight, iy = weight_h[oy, a], index_h[oy, a]
                    for ox in range(out_w):
                        rows[iy, ox] += weight * grad[n, c, oy, ox]
            for iy in range(H):  # transpose of pass 1: spread along W
                for ox in range(out_w):
                    g = rows[iy, ox]
                    for b in range(count_w[ox]):
                        dx[n, c, iy, index_w[ox, b]] += weight_w[ox, b] * g


# ---- plain-NumPy twins (the tests hold the kernels against these) -----------
def window_max_reference(x, index_h, count_h, index_w, count_w):
    """window_max, one output position at a time, vectorized over N and C."""
    N, C, H, W = x.shape
    out_h, out_w = len(count_h), len(count_w)
    out = np.empty((N, C, out_h, out_w), x.dtype)
    argmax = np.empty((N, C, out_h, out_w), np.int64)
    for oy in range(out_h):
        rows = index_h[oy, :count_h[oy]]
        for ox in range(out_w):
            cols = index_w[ox, :count_w[ox]]
            flat = (rows[:, None] * W + cols[None, :]).reshape(-1)  # window order: row-major
            values = x.reshape(N, C, H * W)[:, :, flat]
            nan = np.isnan(values)
            # PyTorch keeps the last NaN, else the first maximum
            last_nan = flat.size - 1 - np.argmax(nan[:, :, ::-1], axis=2)
            pick = np.where(nan.any(axis=2), last_nan, np.argmax(values, axis=2))
            argmax[:, :, oy, ox] = flat[pick]
            out[:, :, oy, ox] = np.take_along_axis(values, pick[:, :, None], axis=2)[:, :, 0]
    return out, argmax


def scatter_add_planes_reference(grad, index, plane_size):
    """scatter_add_planes with np.add.at (which adds repeated indices correctly)."""
    N, C, K = grad.shape
    dx = np.zeros((N, C, plane_size), grad.dtype)
    n, c = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    np.add.at(dx, (n[:, :, None], c[:, :, None], index), grad)
    return dx


def tap_matrix(index, weight, count, in_size):
    """The dense [out, in] matrix of one axis' taps: A[o, index[o, t]] += weight[o, t]."""
    A = np.zeros((len(count), in_size))
    for o in range(len(count)):
        np.add.at(A[o], index[o, :count[o]], weight[o, :count[o]])
    return A


def window_sum_reference(x, index_h, weight_h, count_h, index_w, weight_w, count_w):
    """window_sum as two matrix products, out = A_h @ x @ A_w^T (it is separable and linear)."""
    A_h = tap_matrix(index_h, weight_h, count_h, x.shape[2])
    A_w = tap_matrix(index_w, weight_w, count_w, x.shape[3])
    return np.einsum("ph,nchw,qw->ncpq", A_h, x, A_w)


def window_sum_backward_reference(grad, index_h, weight_h, count_h, index_w, weight_w, count_w,
                                  in_hw):
    """The transpose of window_sum_reference: dx = A_h^T @ grad @ A_w."""
    A_h = tap_matrix(index_h, weight_h, count_h, in_hw[0])
    A_w = tap_matrix(index_w, weight_w, count_w, in_hw[1])
    return np.einsum("ph,ncpq,qw->nchw", A_h, grad, A_w)
