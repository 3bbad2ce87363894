"""RoIPool and RoIAlign kernels, forward and backward, each beside its NumPy twin.

Both cut a fixed-size [C, out_h, out_w] feature block out of a feature map for
every region of interest (RoI), a row ``(batch_index, x1, y1, x2, y2)`` of
``rois: [K, 5]`` in input-image coordinates; ``spatial_scale`` (e.g. 1/16)
maps them onto the feature map. The semantics are torchvision's CPU kernels
(torchvision/csrc/ops/cpu/roi_pool_kernel.cpp, roi_align_kernel.cpp).

Memory order: both forward kernels read, and RoIAlign's input gradient writes, a
channels-last copy of the feature map, [N, H, W, C]. A bin's pixels, or a sample's four
corners, then give one contiguous loop over all C channels, which LLVM vectorizes, and a
bin's geometry (its rows and columns, a sample's bilinear weights) is computed once for
all channels. Looping channel by channel over the [N, C, H, W] map instead reads memory
a whole plane apart at every step and repeats the geometry C times; ``python -m
minidl.bench vision`` times the kernels against their NumPy twins.

Races: forward kernels run in parallel over RoIs (each owns its output block). A
backward scatter-adds into the input gradient, and two RoIs may touch the same pixel:
RoIPool's runs in parallel over channels (each thread owns whole channels of the input
gradient: no two threads write one element), RoIAlign's runs serially, RoI by RoI, over
the channels-last gradient. The RoIAlign box gradient runs in parallel over RoIs (each
owns its row of the box gradient).

The callers (``minidl.ops.roi``) validate input: rois finite, x1 <= x2,
y1 <= y2, integral batch indices in [0, N).
"""

from __future__ import annotations

import math

import numpy as np

from minidl.utils.jit import njit, prange


# ---- RoIPool -----------------------------------------------------------------
@njit
def round_half_away(x):
    """C's round(): halves go away from zero (Python's round and np.round go to even)."""
    return math.floor(x + 0.5) if x >= 0 else -math.floor(-x + 0.5)


@njit
def roi_pool_bin(rois, k, ph, pw, out_h, out_w, spatial_scale, height, width):
    """Feature-map rows [h0, h1) and columns [w0, w1) pooled into output bin (ph, pw) of RoI k.

        x1, y1, x2, y2 = round(spatial_scale * box)           quantize the box to cells
        roi_w = max(x2 - x1 + 1, 1),  bin_w = roi_w / out_w    (inclusive ends: "+1")
        w0 = floor(pw * bin_w) + x1,  w1 = ceil((pw + 1) * bin_w) + x1, both clamped to [0, W]
    """
    x1 = round_half_away(rois[k, 1] * spatial_scale)
    y1 = round_half_away(rois[k, 2] * spatial_scale)
    x2 = round_half_away(rois[k, 3] * spatial_scale)
    y2 = round_half_away(rois[k, 4] * spatial_scale)
    bin_h = max(y2 - y1 + 1, 1) / out_h
    bin_w = max(x2 - x1 + 1, 1) / out_w
    h0 = min(max(math.floor(ph * bin_h) + y1, 0), height)
    h1 = min(max(math.ceil((ph + 1) * bin_h) + y1, 0), height)
    w0 = min(max(math.floor(pw * bin_w) + x1, 0), width)
    w1 = min(max(math.ceil((pw + 1) * bin_w) + x1, 0), width)
    return h0, h1, w0, w1


@njit(parallel=True)
def roi_pool_forward_kernel(input, rois, out_h, out_w, spatial_scale, with_argmax=True):
    """Max over each bin; remembers where the max was for the backward.

        for k in prange(K), ph, pw:       bins (h0, h1, w0, w1) from roi_pool_bin
            for c: out[k, c, ph, pw] = max of input[n, c, h0:h1, w0:w1]
                   argmax[k, c, ph, pw] = h * W + w of the first maximum (row-major scan)
        an empty bin (h1 <= h0 or w1 <= w0) gives 0 and argmax -1.

    The scan reads a channels-last copy of the input, ``pixels[n, h, w, :]``: each pixel
    of a bin updates the running maxima of all C channels in one contiguous loop, written
    with selects rather than a branch, so LLVM vectorizes it. A scan of one channel plane
    at a time (input[n, c, h, w], c outermost) reads memory a whole plane apart for every
    channel and cannot be vectorized. Same maxima, same first-maximum argmax, same NaNs.

    ``with_argmax=False`` (no gradient will be needed, e.g. at evaluation) skips the argmax:
    the scan then only keeps the maxima, and the second output is an empty array.

    input: [N, C, H, W], rois: [K, 5] -> out: [K, C, out_h, out_w], argmax: int64, same shape.
    """
    _, channels, height, width = input.shape
    num_rois = rois.shape[0]
    pixels = np.ascontiguousarray(input.transpose((0, 2, 3, 1)))  # [N, H, W, C]
    # every element is written once below (empty bins too), so no zero-filling first
    out = np.empty((num_rois, channels, out_h, out_w), dtype=input.dtype)
    argmax = np.empty((num_rois if with_argmax else 0, channels, out_h, out_w), dtype=np.int64)
    for k in prange(num_rois):
        n = int(rois[k, 0])
        best = np.empty(channels, dtype=input.dtype)  # the running max of each channel
        where = np.empty(channels, dtype=np.int64)  # and its pixel, h * W + w
        for ph in range(out_h):
            for pw in range(out_w):
                h0, h1, w0, w1 = roi_pool_bin(rois, k, ph, pw, out_h, out_w, spatial_scale,
                                              height, width)
                if h1 <= h0 or w1 <= w0:
                    out[k, :, ph, pw] = 0
                    if with_argmax:
                        argmax[k, :, ph, pw] = -1
                    continue
                best[:] = pixels[n, h0, w0]
                where[:] = h0 * width + w0
                for h in range(h0, h1):
                    for w in range(w0, w1):
                        pixel, index = pixels[n, h, w], h * width + w
                        if with_argmax:
                            for c in range(channels):
                                larger = pixel[c] > best[c]  # strict: the first maximum stays
                                best[c] = pixel[c] if larger else best[c]
                                where[c] = index if larger else where[c]
                        else:
                            for c in range(channels):
                                best[c] = pixel[c] if pixel[c] > best[c] else best[c]
                out[k, :, ph, pw] = best
                if with_argmax:
                    argmax[k, :, ph, pw] = where
    return out, argmax


@njit(parallel=True)
def roi_pool_backward_kernel(grad_out, argmax, rois, num_images, height, width):
    """Each output's gradient goes to the input element that was its max.

        for c in prange(C), k, ph, pw:      parallel over channels: no write races
            if argmax[k, c, ph, pw] >= 0:
                grad_in[n_k, c, argmax // W, argmax % W] += grad_out[k, c, ph, pw]

    The gradient planes are addressed flat (h * W + w is the argmax itself), so the loop
    needs no integer division.

    grad_out, argmax: [K, C, out_h, out_w] -> grad_in: [N, C, H, W].
    """
    num_rois, channels, out_h, out_w = grad_out.shape
    grad_in = np.zeros((num_images, channels, height * width), dtype=grad_out.dtype)
    for c in prange(channels):
        for k in range(num_rois):
            plane = grad_in[int(rois[k, 0]), c]
            grad_bins, where = grad_out[k, c], argmax[k, c]
            for ph in range(out_h):
                for pw in range(out_w):
                    index = where[ph, pw]
                    if index >= 0:
                        plane[index] += grad_bins[ph, pw]
    return grad_in.reshape(num_images, channels, height, width)


def roi_pool_reference(input: np.ndarray, rois: np.ndarray, out_h: int, out_w: int,
                       spatial_scale: float):
    """NumPy twin of ``roi_pool_forward_kernel``: (out, argmax), each bin's max over all
    channels at once."""
    _, channels, height, width = input.shape
    out = np.zeros((rois.shape[0], channels, out_h, out_w), dtype=input.dtype)
    argmax = np.full(out.shape, -1, dtype=np.int64)
    corners = rois[:, 1:].astype(np.float64) * spatial_scale
    corners = (np.sign(corners) * np.floor(np.abs(corners) + 0.5)).astype(np.int64)
    for k, (x1, y1, x2, y2) in enumerate(corners):
        n = int(rois[k, 0])
        bin_h = max(y2 - y1 + 1, 1) / out_h
        bin_w = max(x2 - x1 + 1, 1) / out_w
        rows = np.clip(np.stack([np.floor(np.arange(out_h) * bin_h),
                                 np.ceil(np.arange(1, out_h + 1) * bin_h)], 1) + y1, 0, height)
        cols = np.clip(np.stack([np.floor(np.arange(out_w) * bin_w),
                                 np.ceil(np.arange(1, out_w + 1) * bin_w)], 1) + x1, 0, width)
        for ph, (h0, h1) in enumerate(rows.astype(np.int64)):
            for pw, (w0, w1) in enumerate(cols.astype(np.int64)):
                if h1 <= h0 or w1 <= w0:
                    continue
                region = input[n, :, h0:h1, w0:w1].reshape(channels, -1)
                best = region.argmax(axis=1)  # first maximum in row-major order
                out[k, :, ph, pw] = region[np.arange(channels), best]
                argmax[k, :, ph, pw] = (h0 + best // (w1 - w0)) * width + w0 + best % (w1 - w0)
    return out, argmax


def roi_pool_backward_reference(grad_out: np.ndarray, argmax: np.ndarray, rois: np.ndarray,
                                num_images: int, height: int, width: int) -> np.ndarray:
    """NumPy twin of ``roi_pool_backward_kernel``: one ``np.add.at`` scatter."""
    num_rois, channels = grad_out.shape[:2]
    grad_in = np.zeros((num_images, channels, height * width), dtype=grad_out.dtype)
    images = np.broadcast_to(rois[:, 0].astype(np.int64)[:, None, None, None], argmax.shape)
    chans = np.broadcast_to(np.arange(channels)[None, :, None, None], argmax.shape)
    hit = argmax >= 0
    np.add.at(grad_in, (images[hit], chans[hit], argmax[hit]), grad_out[hit])
    return grad_in.reshape(num_images, channels, height, width)


# ---- RoIAlign ----------------------------------------------------------------
@njit
def roi_align_geometry(rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """Where RoI k's sample points are (Mask R-CNN's RoIAlign, He et al. 2017):

        offset = 0.5 if aligned else 0     (aligned: pixel centres are at +0.5, Detectron2)
        y0 = y1 * spatial_scale - offset,  roi_h = y2 * spatial_scale - offset - y0
        if not aligned: roi_h = max(roi_h, 1)       (clamped; "fixed" is True then)
        grid_h = sampling_ratio if > 0 else ceil(roi_h / out_h)      (adaptive)
        sample (ph, iy) at y = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h,  bin_h = roi_h / out_h

    Returns (y0, x0, roi_h, roi_w, grid_h, grid_w, h_fixed, w_fixed).
    """
    offset = 0.5 if aligned else 0.0
    x0 = rois[k, 1] * spatial_scale - offset
    y0 = rois[k, 2] * spatial_scale - offset
    roi_w = rois[k, 3] * spatial_scale - offset - x0
    roi_h = rois[k, 4] * spatial_scale - offset - y0
    w_fixed = h_fixed = False
    if not aligned:
        if roi_w < 1.0:
            roi_w, w_fixed = 1.0, True
        if roi_h < 1.0:
            roi_h, h_fixed = 1.0, True
    grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
    grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
    return y0, x0, roi_h, roi_w, grid_h, grid_w, h_fixed, w_fixed


@njit
def bilinear_corners(y, x, height, width):
    """The four pixels around (y, x) and the fractions, with torchvision's border rules:

        y < -1 or y > H (same for x)  -> outside: the sample counts as 0
        y <= 0 -> y = 0;  y_low = int(y);  y_low >= H - 1 -> y = y_low = y_high = H - 1
        value = (1-ly)(1-lx) v[yl, xl] + (1-ly) lx v[yl, xh] + ly (1-lx) v[yh, xl] + ly lx v[yh, xh]

    Returns (inside, y_low, y_high, x_low, x_high, ly, lx, y_moves, x_moves); ``y_moves``
    is False where y was clamped, so the value does not change with y there.
    """
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return False, 0, 0, 0, 0, 0.0, 0.0, False, False
    y_moves = x_moves = True
    if y <= 0:
        y, y_moves = 0.0, False
    if x <= 0:
        x, x_moves = 0.0, False
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y, y_moves = float(y_low), False
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x, x_moves = float(x_low), False
    else:
        x_high = x_low + 1
    return True, y_low, y_high, x_low, x_high, y - y_low, x - x_low, y_moves, x_moves


@njit
def bilinear_weights(ly, lx):
    """The weights of the four corners (yl, xl), (yl, xh), (yh, xl), (yh, xh) of a sample
    ``ly`` down and ``lx`` right of (yl, xl): (1-ly)(1-lx), (1-ly) lx, ly (1-lx), ly lx."""
    return (1 - ly) * (1 - lx), (1 - ly) * lx, ly * (1 - lx), ly * lx


@njit(parallel=True)
def roi_align_forward_kernel(input, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """Average of grid_h x grid_w bilinear samples in each bin.

        for k in prange(K), ph, pw:
            out[k, :, ph, pw] = sum over (iy, ix) of bilinear(input[n_k], y, x) / count
        count = max(grid_h * grid_w, 1)

    Like RoIPool's forward, the samples read a channels-last copy ``pixels[n, y, x, :]``:
    each sample's four weights are computed once and applied to all C channels in one
    contiguous, vectorized loop.

    input: [N, C, H, W], rois: [K, 5] -> out: [K, C, out_h, out_w].
    """
    _, channels, height, width = input.shape
    num_rois = rois.shape[0]
    pixels = np.ascontiguousarray(input.transpose((0, 2, 3, 1)))  # [N, H, W, C]
    out = np.empty((num_rois, channels, out_h, out_w), dtype=input.dtype)  # all written below
    for k in prange(num_rois):
        n = int(rois[k, 0])
        y0, x0, roi_h, roi_w, grid_h, grid_w, _, _ = roi_align_geometry(
            rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        count = max(grid_h * grid_w, 1)
        total = np.empty(channels, dtype=input.dtype)  # the bin's sum, per channel
        for ph in range(out_h):
            for pw in range(out_w):
                total[:] = 0
                for iy in range(grid_h):
                    y = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        inside, yl, yh, xl, xh, ly, lx, _, _ = bilinear_corners(y, x, height, width)
                        if not inside:
                            continue
                        w1, w2, w3, w4 = bilinear_weights(ly, lx)
                        v1, v2 = pixels[n, yl, xl], pixels[n, yl, xh]
                        v3, v4 = pixels[n, yh, xl], pixels[n, yh, xh]
                        for c in range(channels):
                            top = w1 * v1[c] + w2 * v2[c]
                            bottom = w3 * v3[c] + w4 * v4[c]
                            total[c] += top + bottom
                for c in range(channels):
                    out[k, c, ph, pw] = total[c] / count
    return out


@njit
def roi_align_backward_kernel(grad_out, rois, num_images, height, width, spatial_scale,
                              sampling_ratio, aligned):
    """Input gradient: each sample hands grad / count to its four pixels with its weights.

        for k, ph, pw, iy, ix:
            g = grad_out[k, :, ph, pw] / count
            grad_in[n, :, yl, xl] += (1-ly)(1-lx) g, ... (the four bilinear weights)

    Channels-last, as the forward: the gradient goes into ``grad_pixels[n, y, x, :]``, each
    sample's weights computed once and applied to all C channels in one vectorized loop,
    then it is transposed back. Serial: two RoIs may share a pixel, and this order (RoI by
    RoI, sample by sample) adds every element's contributions in a fixed sequence.

    grad_out: [K, C, out_h, out_w] -> grad_in: [N, C, H, W].
    """
    num_rois, channels, out_h, out_w = grad_out.shape
    grads = np.ascontiguousarray(grad_out.transpose((0, 2, 3, 1)))  # [K, out_h, out_w, C]
    grad_pixels = np.zeros((num_images, height, width, channels), dtype=grad_out.dtype)
    for k in range(num_rois):
        n = int(rois[k, 0])
        y0, x0, roi_h, roi_w, grid_h, grid_w, _, _ = roi_align_geometry(
            rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        count = max(grid_h * grid_w, 1)
        for ph in range(out_h):
            for pw in range(out_w):
                g = grads[k, ph, pw]
                for iy in range(grid_h):
                    y = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        inside, yl, yh, xl, xh, ly, lx, _, _ = bilinear_corners(
                            y, x, height, width)
                        if not inside:
                            continue
                        w1, w2, w3, w4 = bilinear_weights(ly, lx)
                        p1, p2 = grad_pixels[n, yl, xl], grad_pixels[n, yl, xh]
                        p3, p4 = grad_pixels[n, yh, xl], grad_pixels[n, yh, xh]
                        for c in range(channels):
                            share = g[c] / count
                            p1[c] += w1 * share
                            p2[c] += w2 * share
                            p3[c] += w3 * share
                            p4[c] += w4 * share
    return np.ascontiguousarray(grad_pixels.transpose((0, 3, 1, 2)))


@njit(parallel=True)
def roi_align_backward_boxes_kernel(grad_out, input, rois, spatial_scale, sampling_ratio, aligned):
    """Box gradient (an extension: torchvision's roi_align gives none).

    A sample sits at y = y0 + f * roi_h with f = (ph + (iy + 0.5) / grid_h) / out_h, so

        dy/dy1 = s (1 - f),  dy/dy2 = s f     (s = spatial_scale; dy/dy1 = s, dy/dy2 = 0
                                               when roi_h was clamped to 1)
        dvalue/dy = (1-lx)(v[yh, xl] - v[yl, xl]) + lx (v[yh, xh] - v[yl, xh])   (0 if clamped)

    and the same for x. The grid size and the clamps are piecewise constant in the
    box, so this is the exact gradient away from the points where they jump.

    grad_out: [K, C, out_h, out_w] -> grad_rois: [K, 5] (column 0, the batch index, gets 0).
    """
    _, channels, height, width = input.shape
    num_rois, _, out_h, out_w = grad_out.shape
    grad_rois = np.zeros((num_rois, 5), dtype=grad_out.dtype)
    for k in prange(num_rois):
        n = int(rois[k, 0])
        y0, x0, roi_h, roi_w, grid_h, grid_w, h_fixed, w_fixed = roi_align_geometry(
            rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        count = max(grid_h * grid_w, 1)
        gx1 = gy1 = gx2 = gy2 = 0.0
        for ph in range(out_h):
            for pw in range(out_w):
                for iy in range(grid_h):
                    y = y0 + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    fy = (ph + (iy + 0.5) / grid_h) / out_h
                    for ix in range(grid_w):
                        x = x0 + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        fx = (pw + (ix + 0.5) / grid_w) / out_w
                        inside, yl, yh, xl, xh, ly, lx, y_moves, x_moves = bilinear_corners(
                            y, x, height, width)
                        if not inside:
                            continue
                        dvdy = dvdx = 0.0
                        for c in range(channels):
                            g = grad_out[k, c, ph, pw]
                            v1, v2 = input[n, c, yl, xl], input[n, c, yl, xh]
                            v3, v4 = input[n, c, yh, xl], input[n, c, yh, xh]
                            dvdy += g * ((1 - lx) * (v3 - v1) + lx * (v4 - v2))
                            dvdx += g * ((1 - ly) * (v2 - v1) + ly * (v4 - v3))
                        if y_moves:
                            gy1 += dvdy * (1.0 if h_fixed else 1.0 - fy)
                            gy2 += dvdy * (0.0 if h_fixed else fy)
                        if x_moves:
                            gx1 += dvdx * (1.0 if w_fixed else 1.0 - fx)
                            gx2 += dvdx * (0.0 if w_fixed else fx)
        scale = spatial_scale / count
        grad_rois[k, 1] = gx1 * scale
        grad_rois[k, 2] = gy1 * scale
        grad_rois[k, 3] = gx2 * scale
        grad_rois[k, 4] = gy2 * scale
    return grad_rois


# ---- RoIAlign twin: separable bilinear interpolation as matrix products -------
def _interpolation_matrix(coords: np.ndarray, size: int):
    """Rows of bilinear weights along one axis, torchvision's border rules included.

    coords: [S] sample positions -> (A, dA): [S, size] with value(s) = A[s] @ v and
    dA[s] = d A[s] / d coord (zero where the coordinate was clamped or outside).
    Because the 2-D rule is separable (outside if y OR x is outside; each axis clamped
    on its own), RoIAlign's samples are A_y @ v @ A_x^T.
    """
    A = np.zeros((coords.size, size))
    dA = np.zeros((coords.size, size))
    inside = (coords >= -1.0) & (coords <= size)
    c = np.clip(coords, 0.0, None)
    low = np.minimum(np.floor(c).astype(np.int64), size - 1)
    high = np.minimum(low + 1, size - 1)
    frac = np.where(low >= size - 1, 0.0, c - low)
    moves = inside & (coords > 0) & (low < size - 1)
    rows = np.arange(coords.size)
    np.add.at(A, (rows, low), np.where(inside, 1 - frac, 0.0))
    np.add.at(A, (rows, high), np.where(inside, frac, 0.0))
    np.add.at(dA, (rows, low), np.where(moves, -1.0, 0.0))
    np.add.at(dA, (rows, high), np.where(moves, 1.0, 0.0))
    return A, dA


def _roi_align_axis_reference(start, length, out_size, grid, spatial_scale, fixed):
    """Sample positions along one axis of one RoI and their derivatives by (lo, hi) box ends."""
    f = ((np.arange(out_size)[:, None] + (np.arange(grid)[None, :] + 0.5) / grid) / out_size)
    coords = (start + f * length).reshape(-1)
    if fixed:
        d_lo, d_hi = np.full(coords.size, spatial_scale), np.zeros(coords.size)
    else:
        d_lo, d_hi = spatial_scale * (1 - f.reshape(-1)), spatial_scale * f.reshape(-1)
    return coords, d_lo, d_hi


def _roi_align_parts_reference(input, rois, k, out_h, out_w, spatial_scale, sampling_ratio,
                               aligned):
    """For RoI k: (n, A_y, dA_y, A_x, dA_x, dy/d(y1, y2), dx/d(x1, x2), grid_h, grid_w)."""
    height, width = input.shape[2:]
    offset = 0.5 if aligned else 0.0
    n = int(rois[k, 0])
    x0, y0 = rois[k, 1] * spatial_scale - offset, rois[k, 2] * spatial_scale - offset
    roi_w = rois[k, 3] * spatial_scale - offset - x0
    roi_h = rois[k, 4] * spatial_scale - offset - y0
    w_fixed, h_fixed = (not aligned and roi_w < 1), (not aligned and roi_h < 1)
    roi_w, roi_h = (1.0 if w_fixed else roi_w), (1.0 if h_fixed else roi_h)
    grid_h = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_h / out_h))
    grid_w = sampling_ratio if sampling_ratio > 0 else int(np.ceil(roi_w / out_w))
    ys, dy_lo, dy_hi = _roi_align_axis_reference(y0, roi_h, out_h, max(grid_h, 0), spatial_scale,
                                                 h_fixed)
    xs, dx_lo, dx_hi = _roi_align_axis_reference(x0, roi_w, out_w, max(grid_w, 0), spatial_scale,
                                                 w_fixed)
    Ay, dAy = _interpolation_matrix(ys, height)
    Ax, dAx = _interpolation_matrix(xs, width)
    return n, Ay, dAy, Ax, dAx, (dy_lo, dy_hi), (dx_lo, dx_hi), max(grid_h, 0), max(grid_w, 0)


def _bin_mean(samples, out_h, grid_h, out_w, grid_w):
    """[C, out_h * grid_h, out_w * grid_w] samples -> [C, out_h, out_w] sums / max(count, 1)."""
    channels = samples.shape[0]
    grouped = samples.reshape(channels, out_h, grid_h, out_w, grid_w)
    return grouped.sum(axis=(2, 4)) / max(grid_h * grid_w, 1)


def roi_align_reference(input, rois, out_h, out_w, spatial_scale, sampling_ratio, aligned):
    """NumPy twin of ``roi_align_forward_kernel``: per RoI, samples = A_y @ v @ A_x^T
    (one matrix product per channel, batched by ``@``)."""
    out = np.zeros((rois.shape[0], input.shape[1], out_h, out_w))
    for k in range(rois.shape[0]):
        n, Ay, _, Ax, _, _, _, gh, gw = _roi_align_parts_reference(
            input, rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned)
        samples = Ay @ input[n].astype(np.float64) @ Ax.T  # [C, S_y, S_x]
        out[k] = _bin_mean(samples, out_h, gh, out_w, gw)
    return out.astype(input.dtype)


def _spread(grad_k, out_h, grid_h, out_w, grid_w):
    """dL/d(sample) from dL/d(bin): each sample of a bin gets the bin's gradient / count."""
    spread = np.repeat(np.repeat(grad_k, grid_h, axis=1), grid_w, axis=2)
    return spread / max(grid_h * grid_w, 1)


def roi_align_backward_reference(grad_out, input, rois, spatial_scale, sampling_ratio, aligned):
    """NumPy twin of both RoIAlign backward kernels: (grad_input, grad_rois).

    grad_input[n] += A_y^T G A_x per RoI, and the box gradient sums
    G * (dA_y v A_x^T) * dy/d(y1, y2) (and the same for x) over samples and channels.
    """
    num_rois, _, out_h, out_w = grad_out.shape
    grad_in = np.zeros(input.shape)
    grad_rois = np.zeros((num_rois, 5))
    for k in range(num_rois):
        n, Ay, dAy, Ax, dAx, (dy_lo, dy_hi), (dx_lo, dx_hi), gh, gw = _roi_align_parts_reference(
            input, rois, k, out_h, out_w, spatial_scale, sampling_ratio, aligned)
        G = _spread(grad_out[k].astype(np.float64), out_h, gh, out_w, gw)  # [C, S_y, S_x]
        v = input[n].astype(np.float64)
        grad_in[n] += Ay.T @ G @ Ax
        along_y = (G * (dAy @ v @ Ax.T)).sum(axis=(0, 2))  # sum of G dvalue/dy per sample row
        along_x = (G * (Ay @ v @ dAx.T)).sum(axis=(0, 1))
        grad_rois[k, 1:] = [along_x @ dx_lo, along_y @ dy_lo, along_x @ dx_hi, along_y @ dy_hi]
    return grad_in.astype(grad_out.dtype), grad_rois.astype(grad_out.dtype)
