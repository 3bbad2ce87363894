"""Small helpers shared by the primitives: dimension normalization and checks."""

from __future__ import annotations

import numpy as np


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """Turn a possibly negative ``dim`` into 0..ndim-1, or raise naming ``op``.

    A 0-d tensor accepts dim 0 and -1, as in PyTorch.
    """
    if isinstance(dim, bool) or not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be an int, got {dim!r}")
    n = max(ndim, 1)
    if not -n <= dim < n:
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return int(dim) % n if ndim else 0


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``None`` -> all axes; an int or a sequence -> a sorted tuple of non-negative axes.

    A 0-d tensor has no axes to reduce, so any valid ``dim`` gives ``()``.
    """
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, (int, np.integer)) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats an axis")
    return axes if ndim else ()
