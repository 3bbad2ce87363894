"""Tensor factories: tensor, zeros, ones, full, arange, eye, randn, rand, *_like.

Floating tensors are float32 unless ``dtype`` says otherwise. Random ones draw
from the generator that ``minidl.manual_seed`` controls.
"""

from __future__ import annotations

import numpy as np

from minidl import random
from minidl.autograd.tensor import DEFAULT_FLOAT, Tensor, _to_array


def _shape(shape):
    return tuple(shape[0]) if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape


def tensor(data, requires_grad: bool = False, dtype=None) -> Tensor:
    """A new Tensor from array-like ``data`` (a copy)."""
    if isinstance(data, Tensor):
        data = data.data
    array = np.array(data, copy=True) if isinstance(data, np.ndarray) else _to_array(data)
    return Tensor(array, requires_grad=requires_grad, dtype=dtype)


def zeros(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def ones(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad)


def full(shape, value, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    return Tensor(np.full(shape, value, dtype=dtype), requires_grad=requires_grad)


def zeros_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.zeros_like(t.data), requires_grad=requires_grad)


def ones_like(t: Tensor, requires_grad: bool = False) -> Tensor:
    return Tensor(np.ones_like(t.data), requires_grad=requires_grad)


def arange(start, stop=None, step=1, dtype=None) -> Tensor:
    """Values start, start + step, ... below stop (``arange(n)``: 0..n-1).

    Integer arguments give int64, floating ones float32 (as ``torch.arange``).
    """
    if stop is None:
        start, stop = 0, start
    values = np.arange(start, stop, step, dtype=dtype)
    if dtype is None and values.dtype.kind == "f":
        values = values.astype(DEFAULT_FLOAT)
    return Tensor(values)


def eye(n: int, dtype=DEFAULT_FLOAT) -> Tensor:
    return Tensor(np.eye(n, dtype=dtype))


def randn(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal N(0, 1)."""
    data = random.generator().standard_normal(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def rand(*shape, dtype=DEFAULT_FLOAT, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1)."""
    data = random.generator().random(_shape(shape)).astype(dtype)
    return Tensor(data, requires_grad=requires_grad)


def randint(low: int, high: int, shape) -> Tensor:
    return Tensor(random.generator().integers(low, high, size=shape))
