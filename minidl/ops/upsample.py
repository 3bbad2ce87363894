"""Resizing images: ``interpolate`` with nearest, nearest-exact, bilinear and area modes.

Every mode computes each output pixel as a weighted sum of a few input pixels,
and the weights factor into a row part (depending on oy) times a column part
(depending on ox). So interpolation is the ``WindowSum`` primitive of
minidl/ops/pool.py with per-axis tap tables, and its backward is the transpose
of the same linear map (each input pixel collects the gradient of every output
that read it, with the weight it was read with).

Source positions follow PyTorch exactly (aten/src/ATen/native/UpSample.h), in the
input's float type (float32 arithmetic for float32 inputs, as PyTorch's CPU code):

    scale = 1 / scale_factor if a scale factor is passed on, else in / out
    nearest:        src = min(floor(o * scale), in - 1)       (o itself if out = in; o // 2 if
                                                               out = 2 in)
    nearest-exact:  src = min(floor((o + 0.5) * scale), in - 1)
    bilinear, align_corners=True:   src = o (in - 1) / (out - 1)          (0 if out = 1)
    bilinear, align_corners=False:  src = max((o + 0.5) scale - 0.5, 0)   (pixel centres)
        i0 = min(floor(src), in - 1),  i1 = min(i0 + 1, in - 1),
        weights (1 - l, l) with l = clamp(src - i0, 0, 1)
    area: adaptive average pooling to the output size.

With ``scale_factor`` the output size is floor(in * scale_factor).
"""

from __future__ import annotations

import math

import numpy as np

from minidl.ops.checks import check_float
from minidl.ops.conv import check_4d, is_int
from minidl.ops.pool import Taps, WindowSum, adaptive_average

MODES = ("nearest", "nearest-exact", "bilinear", "area")


def _scale(in_size, out_size, scale_factor, ftype):
    """PyTorch's compute_scales_value: 1 / scale_factor if one is passed on, else in / out."""
    if scale_factor is not None and scale_factor > 0:
        return ftype(1.0 / scale_factor)
    return ftype(in_size) / ftype(out_size)


def nearest_source_index(in_size, out_size, scale_factor=None, exact=False):
    """Input position read by each output position in nearest(-exact) mode: int64 [out]."""
    o = np.arange(out_size)
    if not exact and out_size == in_size:
        return o
    if not exact and out_size == 2 * in_size:
        return o >> 1
    scale = _scale(in_size, out_size, scale_factor, np.float32)  # PyTorch uses float here
    position = o.astype(np.float32) + np.float32(0.5) if exact else o.astype(np.float32)
    return np.minimum(np.floor(position * scale).astype(np.int64), in_size - 1)


def bilinear_source(in_size, out_size, align_corners, scale_factor=None, ftype=np.float64):
    """Both taps of linear interpolation along one axis: (i0, i1, weight0, weight1), each [out]."""
    o = np.arange(out_size).astype(ftype)
    if align_corners:
        scale = ftype(in_size - 1) / ftype(out_size - 1) if out_size > 1 else ftype(0)
        src = scale * o
    else:
        scale = _scale(in_size, out_size, scale_factor, ftype)
        src = np.maximum(scale * (o + ftype(0.5)) - ftype(0.5), ftype(0))
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    lam = np.clip(src - i0.astype(ftype), ftype(0), ftype(1))
    i1 = np.minimum(i0 + 1, in_size - 1)
    return i0, i1, ftype(1) - lam, lam


def interp_taps(in_size, out_size, mode, align_corners, scale_factor, dtype) -> Taps:
    """The tap table of one axis for ``interpolate``."""
    if mode == "bilinear":
        i0, i1, w0, w1 = bilinear_source(in_size, out_size, align_corners, scale_factor,
                                         np.dtype(dtype).type)
        return Taps(np.stack([i0, i1], axis=1), np.stack([w0, w1], axis=1).astype(dtype),
                    np.full(out_size, 2, np.int64))
    index = nearest_source_index(in_size, out_size, scale_factor, exact=mode == "nearest-exact")
    return Taps(index[:, None], np.ones((out_size, 1), dtype), np.ones(out_size, np.int64))


def _two(value, name):
    """A number or a pair of numbers -> a pair (for size and scale_factor)."""
    pair = (value, value) if np.isscalar(value) else tuple(value)
    if len(pair) != 2:
        raise ValueError(f"interpolate: {name} must be a number or a pair, got {value!r}")
    return pair


def interpolate(input, size=None, scale_factor=None, mode="nearest", align_corners=None,
                recompute_scale_factor=None):
    """Resize [N, C, H, W] images to ``size`` or by ``scale_factor`` (PyTorch's semantics).

    mode: 'nearest' (PyTorch's legacy nearest, what nn.Upsample uses by default),
    'nearest-exact' (pixel-centre nearest, as PIL and scikit-image), 'bilinear' (with
    ``align_corners``: True maps corner pixels onto corner pixels, False (default) maps pixel
    centres as if pixels were unit squares), 'area' (adaptive average pooling).
    ``recompute_scale_factor=True`` computes the weights from the sizes instead of the factor.
    """
    op = "interpolate"
    check_4d(input, op)
    check_float(input, op)
    if mode not in MODES:
        raise ValueError(f"{op}: mode must be one of {MODES}, got {mode!r}")
    if align_corners is not None and mode != "bilinear":
        raise ValueError(f"{op}: align_corners can only be set with mode='bilinear', "
                         f"got mode={mode!r}")
    if (size is None) == (scale_factor is None):
        raise ValueError(f"{op}: give exactly one of size and scale_factor, got size={size!r}, "
                         f"scale_factor={scale_factor!r}")
    in_hw = tuple(input.shape[2:])
    if size is not None:
        if recompute_scale_factor:
            raise ValueError(f"{op}: recompute_scale_factor is meaningless with an explicit size")
        out_hw = _two(size, "size")
        if not all(is_int(s) for s in out_hw):
            raise TypeError(f"{op}: size must be an int or a pair of ints, got {size!r}")
        out_hw = tuple(int(s) for s in out_hw)
        scales = (None, None)
    else:
        factors = tuple(float(s) for s in _two(scale_factor, "scale_factor"))
        if min(factors) <= 0:
            raise ValueError(f"{op}: scale_factor must be positive, got {scale_factor!r}")
        out_hw = tuple(math.floor(n * f) for n, f in zip(in_hw, factors))
        scales = (None, None) if recompute_scale_factor else factors
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output size {out_hw} of input {tuple(input.shape)} must be "
                         f"positive")
    if mode == "area":
        return adaptive_average(input, out_hw, op)
    dtype = input.dtype.newbyteorder("=")  # the taps' weights, in native byte order
    taps = [interp_taps(n, m, mode, bool(align_corners), s, dtype)
            for n, m, s in zip(in_hw, out_hw, scales)]
    return WindowSum.apply(input, taps_h=taps[0], taps_w=taps[1], op=op)
