"""Checks shared by the primitives: dimensions, and the dtype policy.

The dtype policy (one rule for every op)
----------------------------------------
minidl tensors hold bool, integer or floating-point numbers (``minidl.tensor`` refuses
strings, Python objects and ragged lists). What an op does with integers follows
PyTorch wherever PyTorch gives an integer answer or raises, and raises where PyTorch
would convert silently:

- **Ops whose answer is an integer** accept integer and bool tensors and keep their
  dtype: ``+ - *``, ``//``, ``%``, ``abs``, ``clamp``, ``maximum``, ``sum``, ``max``,
  ``min``, ``argmax``, ``sort``, ``topk``, ``gather``, indexing, reshaping, ``relu``,
  ``matmul``, comparisons (bool). Only floating-point tensors can require gradients
  (``requires_grad=True`` on an integer tensor raises, also as an attribute).
- **Ops that need real numbers** raise a TypeError naming the op when given an integer
  or bool tensor: ``mean``, ``var``, ``std``, ``logsumexp``, ``exp``, ``log``, ``sqrt``,
  ``sin``, ``cos``, ``sigmoid``, ``tanh``, ``softmax``, ``log_softmax``, ``elu``,
  ``leaky_relu``, ``gelu``, ``dropout``, and the pools, norms, convolutions and losses.
  PyTorch raises for the same reductions (``mean`` of a long tensor) and converts the
  element-wise ones (``exp``) to float32; minidl asks for ``x.float()`` in both cases,
  so that no dtype changes behind the student's back. Each op calls
  ``check_float(x, op)``: one place, one message.
- **True division** ``/`` of two integer tensors gives float32, as in PyTorch (NumPy
  would give float64): ``images / 255`` is the one conversion everybody expects.
- **In-place ops** (``x.add_(y)``, ``x += y``) keep the tensor's dtype, so the result
  must fit: adding 0.5 to an integer tensor raises, as in PyTorch; ``copy_`` and
  ``fill_`` convert, as in PyTorch.
- The numba kernels are compiled for float32 and float64 only. float16 (and any
  other float type) gets the same kind of error there, naming the op; NumPy-backed
  ops (elementwise, reductions, matmul) compute float16 as NumPy does.
- An array in non-native byte order (e.g. read from a big-endian file) is turned
  into native order before a kernel sees it (``kernel_array``).
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
