"""Image transforms on plain NumPy arrays.

``resize_bilinear`` is the reference for bilinear resizing in minidl: it follows
PyTorch's ``F.interpolate(x, size, mode='bilinear', align_corners=False)``
exactly, so ``minidl.nn.functional.interpolate`` is tested against it.
"""

from __future__ import annotations

import numbers

import numpy as np


def bilinear_matrix(in_size: int, out_size: int, align_corners: bool = False) -> np.ndarray:
    """The [out_size, in_size] matrix R with ``resized = R @ signal`` along one axis.

    Output pixel j samples the input at the source coordinate

        align_corners=False:  src = (j + 0.5) * in_size / out_size - 0.5, clamped at 0
                              (pixel centres line up: pixel j covers [j, j + 1))
        align_corners=True:   src = j * (in_size - 1) / (out_size - 1)
                              (the first and last pixel centres line up)

    and mixes its two neighbours: i0 = floor(src), i1 = min(i0 + 1, in_size - 1),
    weight (1 - lam) on i0 and lam = src - i0 on i1.
    """
    j = np.arange(out_size, dtype=np.float64)
    if align_corners:
        src = j * ((in_size - 1) / (out_size - 1)) if out_size > 1 else np.zeros(out_size)
    else:
        src = np.maximum((j + 0.5) * (in_size / out_size) - 0.5, 0.0)
    i0 = np.minimum(np.floor(src).astype(np.int64), in_size - 1)
    i1 = np.minimum(i0 + 1, in_size - 1)
    lam = src - i0
    matrix = np.zeros((out_size, in_size))
    rows = np.arange(out_size)
    np.add.at(matrix, (rows, i0), 1 - lam)   # add.at: i0 == i1 at the border adds up to 1
    np.add.at(matrix, (rows, i1), lam)
    return matrix


def resize_bilinear(images: np.ndarray, size, align_corners: bool = False) -> np.ndarray:
    """Resize the last two axes of ``images`` with bilinear interpolation.

    images: [..., H, W] (e.g. [N, C, H, W]); size: int s (-> s x s) or (h, w).
    Returns [..., h, w], float (integer input is converted to float32 first).
    Bilinear = linear along rows, then along columns: ``out = R_h @ x @ R_w^T``
    with the matrices of ``bilinear_matrix``. No antialiasing (as PyTorch's
    default), so strong downscaling skips pixels.
    """
    images = np.asarray(images)
    if images.ndim < 2:
        raise ValueError(f"resize_bilinear: expected images [..., H, W], got shape {images.shape}")
    h, w = (size, size) if isinstance(size, numbers.Integral) else tuple(size)
    if not all(isinstance(s, numbers.Integral) and s >= 1 for s in (h, w)):
        raise ValueError(f"resize_bilinear: size must be a positive int or a pair of them, "
                         f"got {size!r}")
    if images.dtype.kind != "f":
        images = images.astype(np.float32)
    rows = bilinear_matrix(images.shape[-2], h, align_corners).astype(images.dtype)
    cols = bilinear_matrix(images.shape[-1], w, align_corners).astype(images.dtype)
    return rows @ images @ cols.T
