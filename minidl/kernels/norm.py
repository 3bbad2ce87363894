"""Normalization kernels: batch norm's per-channel loops and group norm's fused loops.

Batch norm reduces over every axis but the channel axis (N and the M spatial
positions), which NumPy does with strided passes and temporaries. These loops
do each job in one or two passes over contiguous memory, accumulating in
float64 (the speed-up over the NumPy formulas is in ``python -m minidl.bench conv``).

The two summing kernels are compiled with ``fastmath={"reassoc", "contract"}``:
it lets LLVM reorder the additions of a long sum into several SIMD partial sums.
Without it every add waits for the previous one, one element at a time.
(Only reassociation and fused multiply-add are allowed; NaNs still propagate.)

    channel_stats:      mean[c] = sum_{n,m} x / NM,   var[c] = sum_{n,m} (x - mean[c])^2 / NM
    channel_affine:     out[n, c, m] = a[c] x[n, c, m] + b[c]
    channel_grad_sums:  sum_g[c] = sum_{n,m} g,       sum_gx[c] = sum_{n,m} g (x - mean[c])
    channel_affine2:    out[n, c, m] = a[c] g[n, c, m] + b[c] x[n, c, m] + d[c]

Group norm standardizes each (sample n, group k) block of C/G channels x M positions,
a few kilobytes that stay in the L1/L2 cache. So each kernel does all its passes over
one block before it moves to the next, and x (and g) are read from memory once:

    group_norm_forward:   mu, s = mean and sqrt(var + eps) of block (n, k);
                          out = w[c] (x - mu) / s + b[c]
    group_norm_backward:  per channel the sums of g and g xhat (for dL/dw, dL/db), then
                          dx = (w[c] g - mean(w g) - xhat mean(w g xhat)) / s
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit

SUMS = {"reassoc", "contract"}  # fastmath flags for long reductions (see above)


@njit(fastmath=SUMS)
def channel_stats(x, mean, var):
    """mean[c], var[c] (biased) of x[:, c, :], in two passes (the second centred, for accuracy).

    x: [N, C, M];  mean, var: [C] float64 (written).
    """
    N, C, M = x.shape
    for c in range(C):
        total = 0.0
        for n in range(N):
            for m in range(M):
                total += x[n, c, m]
        mu = total / (N * M)
        squares = 0.0
        for n in range(N):
            for m in range(M):
                d = x[n, c, m] - mu
                squares += d * d
        mean[c] = mu
        var[c] = squares / (N * M)


@njit
def channel_affine(x, a, b, out):
    """out[n, c, m] = a[c] * x[n, c, m] + b[c].  x, out: [N, C, M];  a, b: [C]."""
    N, C, M = x.shape
    for n in range(N):
        for c in range(C):
            scale, shift = a[c], b[c]
            for m in range(M):
                out[n, c, m] = scale * x[n, c, m] + shift


@njit(fastmath=SUMS)
def channel_grad_sums(g, x, mean, sum_g, sum_gx):
    """sum_g[c] = sum g[:, c, :];  sum_gx[c] = sum g[:, c, :] * (x[:, c, :] - mean[c]).

    g, x: [N, C, M];  mean: [C];  sum_g, sum_gx: [C] float64 (written).
    """
    N, C, M = x.shape
    for c in range(C):
        mu = mean[c]
        total, total_x = 0.0, 0.0
        for n in range(N):
            for m in range(M):
                total += g[n, c, m]
                total_x += g[n, c, m] * (x[n, c, m] - mu)
        sum_g[c] = total
        sum_gx[c] = total_x


@njit
def channel_affine2(g, x, a, b, d, out):
    """out[n, c, m] = a[c] * g[n, c, m] + b[c] * x[n, c, m] + d[c] (batch norm's input gradient).

    g, x, out: [N, C, M];  a, b, d: [C].
    """
    N, C, M = x.shape
    for n in range(N):
        for c in range(C):
            ac, bc, dc = a[c], b[c], d[c]
            for m in range(M):
                out[n, c, m] = ac * g[n, c, m] + bc * x[n, c, m] + dc


@njit(fastmath=SUMS)
def group_norm_forward(x, weight, bias, eps, out, mean, invstd):
    """Group norm of each block x[n, k] (C/G channels x M positions), then the affine map:

        mu = mean(x[n, k]),  var = mean((x[n, k] - mu)^2),  invstd = 1 / sqrt(var + eps)
        out[n, k, c, m] = weight[k, c] * (x[n, k, c, m] - mu) * invstd + bias[k, c]

    x, out: [N, G, C/G, M];  weight, bias: [G, C/G];  mean, invstd: [N, G] float64 (written).
    """
    N, G, Cg, M = x.shape
    count = Cg * M
    for n in range(N):
        for k in range(G):
            total = 0.0
            for c in range(Cg):
                for m in range(M):
                    total += x[n, k, c, m]
            mu = total / count
            squares = 0.0
            for c in range(Cg):
                for m in range(M):
                    d = x[n, k, c, m] - mu
                    squares += d * d
            inv = 1.0 / np.sqrt(squares / count + eps)
            mean[n, k] = mu
            invstd[n, k] = inv
            for c in range(Cg):
                scale = weight[k, c] * inv
                shift = bias[k, c] - mu * scale
                for m in range(M):
                    out[n, k, c, m] = scale * x[n, k, c, m] + shift


@njit(fastmath=SUMS)
def group_norm_backward(g, x, weight, mean, invstd, dx, sum_g, sum_gxhat, input_grad):
    """Group norm's backward over each block (n, k), with xhat = (x - mu) invstd:

        sum_g[n, k, c] = sum_m g,   sum_gxhat[n, k, c] = sum_m g xhat   (for dL/db, dL/dw)
        dx = invstd (w[c] g - mean(w g) - xhat mean(w g xhat))  (means over the block;
                                                                 only if ``input_grad``)

    g, x, dx: [N, G, C/G, M];  weight: [G, C/G];  mean, invstd: [N, G];
    sum_g, sum_gxhat: [N, G, C/G] float64 (written).
    """
    N, G, Cg, M = x.shape
    count = Cg * M
    for n in range(N):
        for k in range(G):
            mu, inv = mean[n, k], invstd[n, k]
            total_wg, total_wgx = 0.0, 0.0
            for c in range(Cg):
                sg, sgx = 0.0, 0.0
                for m in range(M):
                    sg += g[n, k, c, m]
                    sgx += g[n, k, c, m] * (x[n, k, c, m] - mu)
                sum_g[n, k, c] = sg
                sum_gxhat[n, k, c] = sgx * inv
                total_wg += weight[k, c] * sg
                total_wgx += weight[k, c] * sgx * inv
            if not input_grad:
                continue
            mean_wg, mean_wgx = total_wg / count, total_wgx / count
            # dx = a g + b x + d, the formula above with xhat expanded
            b = -inv * inv * mean_wgx
            d = -inv * mean_wg - b * mu
            for c in range(Cg):
                a = inv * weight[k, c]
                for m in range(M):
                    dx[n, k, c, m] = a * g[n, k, c, m] + b * x[n, k, c, m] + d


# ---- plain-NumPy twins ------------------------------------------------------
def channel_stats_reference(x):
    """(mean, var) over axes 0 and 2, in float64."""
    x = x.astype(np.float64)
    return x.mean(axis=(0, 2)), x.var(axis=(0, 2))


def channel_affine_reference(x, a, b):
    return a[None, :, None] * x + b[None, :, None]


def channel_grad_sums_reference(g, x, mean):
    g, x = g.astype(np.float64), x.astype(np.float64)
    return g.sum(axis=(0, 2)), (g * (x - mean[None, :, None])).sum(axis=(0, 2))


def channel_affine2_reference(g, x, a, b, d):
    return a[None, :, None] * g + b[None, :, None] * x + d[None, :, None]


def group_norm_forward_reference(x, weight, bias, eps):
    """(out, mean, invstd) of group_norm_forward, with NumPy means over the last two axes."""
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=(2, 3))
    invstd = 1.0 / np.sqrt(x64.var(axis=(2, 3)) + eps)
    xhat = (x64 - mean[:, :, None, None]) * invstd[:, :, None, None]
    return weight[None, :, :, None] * xhat + bias[None, :, :, None], mean, invstd


def group_norm_backward_reference(g, x, weight, mean, invstd):
    """(dx, sum_g, sum_gxhat) of group_norm_backward, from the textbook formula."""
    g, x = g.astype(np.float64), x.astype(np.float64)
    inv = invstd[:, :, None, None]
    xhat = (x - mean[:, :, None, None]) * inv
    wg = weight[None, :, :, None] * g
    dx = inv * (wg - wg.mean(axis=(2, 3), keepdims=True)
                - xhat * (wg * xhat).mean(axis=(2, 3), keepdims=True))
    return dx, g.sum(axis=3), (g * xhat).sum(axis=3)
