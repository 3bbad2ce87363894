"""Checks shared by the primitives: dimensions, and the dtype policy.

The dtype policy (one rule for every op; DESIGN.md, "dtypes"):

- An op that needs real numbers (means, pools, norms, convolutions, losses, ...)
  raises a TypeError naming the op when given an integer or bool tensor, as
  PyTorch does for ``mean`` of a long tensor. Nothing is cast behind your back:
  call ``.float()`` first.
- The numba kernels are compiled for float32 and float64 only. float16 (and any
  other float type) gets the same kind of error there, naming the op; NumPy-backed
  ops (elementwise, reductions, matmul) compute float16 as NumPy does.
- An array in non-native byte order (e.g. read from a big-endian file) is turned
  into native order before a kernel sees it.
"""

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


KERNEL_FLOATS = (np.float32, np.float64)


def check_float(x, op: str, name: str = "input") -> None:
    """Raise a TypeError naming ``op`` unless ``x`` (Tensor or ndarray) holds floating point."""
    dtype = x.dtype
    if dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point {name} (float32 or float64), got "
                        f"{dtype}; convert it first, e.g. x.float()")


def kernel_array(array: np.ndarray, op: str, name: str = "input") -> np.ndarray:
    """``array`` as a numba kernel reads it: float32 or float64, native byte order, C-contiguous.

    Raises a TypeError naming ``op`` for integer, bool and float16 arrays (the dtype policy
    above); copies only when the byte order or the memory layout needs it.
    """
    check_float(array, op, name)
    if array.dtype.type not in KERNEL_FLOATS:
        raise TypeError(f"{op}: the numba kernels take float32 or float64 {name}s, got "
                        f"{array.dtype}; convert it first, e.g. x.float()")
    if not array.dtype.isnative:  # e.g. big-endian float32 read from a file
        array = array.astype(array.dtype.newbyteorder("="))
    return np.ascontiguousarray(array)
