"""im2col / col2im: the data movement that turns a convolution into one matrix product.

A 2-D convolution (cross-correlation, as in every framework) of x: [N, C, H, W]
with a window of kh x kw taps, stride s, zero padding p and dilation d reads,
for output pixel (oy, ox) and tap (i, j), the input pixel

    iy = oy * s_h - p_h + i * d_h,      ix = ox * s_w - p_w + j * d_w      (0 outside x).

``im2col`` copies those pixels into a matrix, one row per (channel, tap) and
one column per (image, output pixel):

    cols[(c * kh + i) * kw + j, n, oy, ox] = x[n, c, iy, ix]

so the convolution of a batch of images with weight w: [Cout, C, kh, kw] becomes
one matrix product, w.reshape(Cout, C*kh*kw) @ cols.reshape(C*kh*kw, N*Hout*Wout),
done by BLAS (Chellapilla, Puri & Simard 2006, "High performance convolutional
neural networks for document processing"; Caffe's im2col). The images sit side by
side in the columns, so a batch of small images is one large product rather than
many small ones. ``col2im`` is the adjoint (the transpose) of ``im2col``: it adds
every column entry back onto the pixel it was read from. Input gradient of a
convolution, and the forward pass of a transposed convolution, are both
``col2im`` of a matrix product.

Kernel arguments: ``window = (kh, kw, s_h, s_w, p_h, p_w, d_h, d_w)``; the output
grid (Hout, Wout) is read off ``cols``' shape. Every array must be C-contiguous.

Why the loops look as they do:
* the inner loop over ox copies a run of one input row; ``valid_range`` finds
  the run that lies inside the image once per (tap, row), so the loop body has
  no branch and numba vectorizes it; im2col reads and writes the run through 1-D
  views of the two rows (``x[n, c, iy]``, ``cols[row, n, oy]``), and has a loop of its
  own for stride 1: both let LLVM see a plain contiguous copy (measured 18-38% faster);
* the innermost index is cast to ``np.uint64``: numba then knows it is not
  negative and drops the negative-index wrap-around check, which otherwise
  blocks vectorization;
* the loops are serial, unlike the pool and norm kernels: each im2col / col2im
  runs between two of OpenBLAS's threaded matrix products, whose threads keep
  spinning for a while after each product, so a parallel copy here waits for
  cores and made a convolution 10-20x slower when measured (``python -m
  minidl.bench --vs-torch --only conv``). The outer loops are still written so
  that iterations write disjoint outputs (im2col's rows of ``cols``, col2im's
  (image, channel) planes of x), should a ``prange`` pay off elsewhere.
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit
def valid_range(n_out, stride, offset, n_in):
    """Output positions o in [lo, hi) whose input position o * stride + offset is in [0, n_in)."""
    lo = max(0, (stride - 1 - offset) // stride)  # smallest o with o * stride + offset >= 0
    hi = min(n_out, (n_in - 1 - offset) // stride + 1)  # one past the last inside n_in
    return lo, max(lo, hi)


@njit
def im2col(x, window, cols):
    """cols[(c*kh + i)*kw + j, n, oy, ox] = x[n, c, oy*s_h - p_h + i*d_h, ox*s_w - p_w + j*d_w].

    x: [N, C, H, W];  cols: [C*kh*kw, N, Hout, Wout] (written; zero where the tap
    falls in the padding).
    """
    kh, kw, sh, sw, ph, pw, dh, dw = window
    N, C, H, W = x.shape
    out_h, out_w = cols.shape[2], cols.shape[3]
    for row in range(C * kh * kw):  # iteration ``row`` writes only cols[row]
        c, i, j = row // (kh * kw), row // kw % kh, row % kw
        offset = j * dw - pw
        lo, hi = valid_range(out_w, sw, offset, W)
        for n in range(N):
            for oy in range(out_h):
                out_row = cols[row, n, oy]
                iy = oy * sh - ph + i * dh
                if iy < 0 or iy >= H:  # the whole row is padding
                    for ox in range(out_w):
                        out_row[np.uint64(ox)] = 0
                    continue
                in_row = x[n, c, iy]
                for ox in range(lo):
                    out_row[np.uint64(ox)] = 0
                if sw == 1:  # a contiguous run: copied with vector loads and stores
                    for ox in range(lo, hi):
                        out_row[np.uint64(ox)] = in_row[np.uint64(ox + offset)]
                else:
                    for ox in range(lo, hi):
                        out_row[np.uint64(ox)] = in_row[np.uint64(ox * sw + offset)]
                for ox in range(hi, out_w):
                    out_row[np.uint64(ox)] = 0


@njit
def col2im(cols, window, x):
    """The adjoint of im2col: x[n, c, iy, ix] += cols[(c*kh + i)*kw + j, n, oy, ox] for every
    (i, j, oy, ox) that reads pixel (iy, ix). Entries that fall in the padding are dropped.

    cols: [C*kh*kw, N, Hout, Wout];  x: [N, C, H, W] (accumulated into: pass zeros).
    """
    kh, kw, sh, sw, ph, pw, dh, dw = window
    N, C, H, W = x.shape
    out_h, out_w = cols.shape[2], cols.shape[3]
    for plane in range(N * C):  # iteration ``plane`` adds only into x[n, c]
        n, c = plane // C, plane % C
        for i in range(kh):
            for j in range(kw):
                row = (c * kh + i) * kw + j
                offset = j * dw - pw
                lo, hi = valid_range(out_w, sw, offset, W)
                for oy in range(out_h):
                    iy = oy * sh - ph + i * dh
                    if iy < 0 or iy >= H:
                        continue
                    for ox in range(lo, hi):
                        ix = np.uint64(ox * sw + offset)
                        x[n, c, iy, ix] += cols[row, n, oy, np.uint64(ox)]


# ---- plain-NumPy twins (the tests hold the kernels against these) -----------
def _padded(x, window, out_h, out_w):
    """x zero-padded so that every tap of every output position is inside it."""
    kh, kw, sh, sw, ph, pw, dh, dw = window
    need_h = (out_h - 1) * sh + (kh - 1) * dh + 1  # rows the windows span, padding included
    need_w = (out_w - 1) * sw + (kw - 1) * dw + 1
    H, W = x.shape[2:]
    extra_h, extra_w = max(0, need_h - ph - H), max(0, need_w - pw - W)
    return np.pad(x, ((0, 0), (0, 0), (ph, extra_h), (pw, extra_w)))


def im2col_reference(x, window, out_h, out_w):
    """im2col with NumPy slicing: tap (i, j) is a strided slice of the padded input.
    Returns [C*kh*kw, N, out_h, out_w]."""
    kh, kw, sh, sw, ph, pw, dh, dw = window
    N, C = x.shape[:2]
    xp = _padded(x, window, out_h, out_w)
    cols = np.empty((N, C, kh, kw, out_h, out_w), dtype=x.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = xp[:, :, i * dh: i * dh + (out_h - 1) * sh + 1: sh,
                                  j * dw: j * dw + (out_w - 1) * sw + 1: sw]
    return cols.transpose(1, 2, 3, 0, 4, 5).reshape(C * kh * kw, N, out_h, out_w)


def col2im_reference(cols, window, x_shape):
    """col2im with NumPy slicing: add each tap's slice back into a padded image, then crop.
    cols: [C*kh*kw, N, out_h, out_w]."""
    kh, kw, sh, sw, ph, pw, dh, dw = window
    N, C, H, W = x_shape
    out_h, out_w = cols.shape[2:]
    xp = np.zeros_like(_padded(np.zeros(x_shape, cols.dtype), window, out_h, out_w))
    cols = cols.reshape(C, kh, kw, N, out_h, out_w).transpose(3, 0, 1, 2, 4, 5)
    for i in range(kh):
        for j in range(kw):
            xp[:, :, i * dh: i * dh + (out_h - 1) * sh + 1: sh,
               j * dw: j * dw + (out_w - 1) * sw + 1: sw] += cols[:, :, i, j]
    return xp[:, :, ph: ph + H, pw: pw + W]
