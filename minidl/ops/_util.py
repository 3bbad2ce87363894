"""Small helpers shared by the primitives: dimension normalization and checks."""

from __future__ import annotations


def normalize_dim(dim: int, ndim: int, op: str) -> int:
    """Turn a possibly negative ``dim`` into 0..ndim-1, or raise naming ``op``."""
    if not -ndim <= dim < max(ndim, 1):
        raise IndexError(f"{op}: dim {dim} is out of range for a tensor with {ndim} dimensions")
    return dim % ndim if ndim else 0


def normalize_dims(dim, ndim: int, op: str) -> tuple:
    """``None`` -> all axes; an int or a sequence -> a sorted tuple of non-negative axes."""
    if dim is None:
        return tuple(range(ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    axes = tuple(sorted({normalize_dim(d, ndim, op) for d in dims}))
    if len(axes) != len(dims):
        raise ValueError(f"{op}: dim {dim} repeats an axis")
    return axes
