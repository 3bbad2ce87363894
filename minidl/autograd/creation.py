"""Tensor factories, with PyTorch's names and arguments.

From data: ``tensor`` (copies), ``as_tensor`` and ``from_numpy`` (share an ndarray's memory).
Filled: ``zeros``, ``ones``, ``full``, ``empty``, ``eye``, ``arange``, ``linspace`` and the
``*_like`` forms. Random: ``randn``, ``rand``, ``randint``, ``multinomial`` and ``randn_like``,
``rand_like``; they draw from the generator that ``minidl.manual_seed`` controls (or from
an explicit ``generator=np.random.default_rng(seed)``).

Floating tensors are float32 unless ``dtype`` says otherwise. ``device`` is accepted
everywhere for PyTorch code and must be the CPU. Every size must be a non-negative int:
``zeros(2.5)`` and ``randn(-1)`` raise an error naming the factory.
"""

from __future__ import annotations

import operator

import numpy as np

from minidl import random
from minidl.autograd.dtypes import DEFAULT_FLOAT, as_dtype, check_device
from minidl.autograd.tensor import Tensor, to_array


# ---- argument checks ---------------------------------------------------------------------
def _size(size: tuple, op: str) -> tuple:
    """Accept ``zeros(2, 3)`` and ``zeros((2, 3))`` alike; every dimension a non-negative int."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    dims = []
    for n in size:
        try:
            if isinstance(n, (bool, np.bool_)):
                raise TypeError
            n = operator.index(n)
        except TypeError:
            raise TypeError(f"{op}: size must be a sequence of ints, got {n!r} in "
                            f"{tuple(size)}") from None
        if n < 0:
            raise ValueError(f"{op}: size cannot be negative, got {n} in {tuple(size)}")
        dims.append(n)
    return tuple(dims)


def _float_dtype(dtype, op: str) -> np.dtype:
    """``dtype`` (float32 if None), which must be floating point (random normal, linspace)."""
    dtype = np.dtype(DEFAULT_FLOAT) if dtype is None else as_dtype(dtype, op)
    if dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point dtype, got {dtype}")
    return dtype


def _dtype(dtype):
    """float32 unless given (not ``dtype or ...``: an np.dtype is falsy)."""
    return DEFAULT_FLOAT if dtype is None else dtype


def _rng(generator) -> np.random.Generator:
    return random.generator() if generator is None else generator


def _make(array: np.ndarray, requires_grad: bool, device, op: str) -> Tensor:
    check_device(device, op)
    return Tensor(array, requires_grad=requires_grad)


# ---- from data -----------------------------------------------------------------------
def tensor(data, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """A new Tensor holding a copy of array-like ``data``."""
    array = to_array(data, dtype, "tensor")
    if array is data or isinstance(data, Tensor) and array is data.data:
        array = array.copy()
    return _make(array, requires_grad, device, "tensor")


def as_tensor(data, dtype=None, device=None) -> Tensor:
    """``data`` as a Tensor without a copy where possible (a Tensor of that dtype is returned
    as is; an ndarray's memory is shared)."""
    check_device(device, "as_tensor")
    if isinstance(data, Tensor):
        return data if dtype is None else data.to(dtype)
    return Tensor(data, dtype=dtype)


def from_numpy(array: np.ndarray) -> Tensor:
    """A Tensor sharing ``array``'s memory and dtype: changing one changes the other."""
    if not isinstance(array, np.ndarray):
        raise TypeError(f"from_numpy: expected an np.ndarray, got {type(array).__name__}")
    return Tensor(array)


def is_tensor(obj) -> bool:
    return isinstance(obj, Tensor)


# ---- filled --------------------------------------------------------------------------
def zeros(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = np.zeros(_size(size, "zeros"), dtype=_dtype(dtype))
    return _make(array, requires_grad, device, "zeros")


def ones(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = np.ones(_size(size, "ones"), dtype=_dtype(dtype))
    return _make(array, requires_grad, device, "ones")


def empty(*size, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Uninitialized memory (whatever was there: fill it before reading it), as PyTorch."""
    array = np.empty(_size(size, "empty"), dtype=_dtype(dtype))
    return _make(array, requires_grad, device, "empty")


def full(size, fill_value, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    """Every element ``fill_value``; the dtype follows it (bool, int64 or float32) unless given."""
    shape = _size(size if isinstance(size, (tuple, list)) else (size,), "full")
    if dtype is None:
        dtype = to_array(fill_value, op="full").dtype
    return _make(np.full(shape, fill_value, dtype=dtype), requires_grad, device, "full")


def zeros_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = np.zeros(t.shape, dtype=t.dtype if dtype is None else dtype)
    return _make(array, requires_grad, device, "zeros_like")


def ones_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = np.ones(t.shape, dtype=t.dtype if dtype is None else dtype)
    return _make(array, requires_grad, device, "ones_like")


def full_like(t: Tensor, fill_value, dtype=None, device=None,
              requires_grad: bool = False) -> Tensor:
    array = np.full(t.shape, fill_value, dtype=t.dtype if dtype is None else dtype)
    return _make(array, requires_grad, device, "full_like")


def empty_like(t: Tensor, dtype=None, device=None, requires_grad: bool = False) -> Tensor:
    array = np.empty(t.shape, dtype=t.dtype if dtype is None else dtype)
    return _make(array, requires_grad, device, "empty_like")


def eye(n: int, m: int | None = None, dtype=None, device=None,
        requires_grad: bool = False) -> Tensor:
    """The n x m identity matrix (m = n by default)."""
    n, m = _size((n, n if m is None else m), "eye")
    return _make(np.eye(n, m, dtype=_dtype(dtype)), requires_grad, device, "eye")


def arange(start, end=None, step=1, dtype=None, device=None,
           requires_grad: bool = False) -> Tensor:
    """Values start, start + step, ... below end (``arange(n)``: 0..n-1).

    Integer arguments give int64, floating ones float32 (as ``torch.arange``).
    """
    if end is None:
        start, end = 0, start
    for name, value in (("start", start), ("end", end), ("step", step)):
        if not isinstance(value, (int, float, np.integer, np.floating)) or not np.isfinite(value):
            raise ValueError(f"arange: {name} must be a finite number, got {value!r}")
    if step == 0:
        raise ValueError("arange: step must be nonzero, got 0")
    if (end - start) * step < 0:
        raise ValueError(f"arange: the step {step} goes away from end {end} (start {start})")
    values = np.arange(start, end, step, dtype=None if dtype is None else as_dtype(dtype,
                                                                                   "arange"))
    if dtype is None and values.dtype.kind == "f":
        values = values.astype(DEFAULT_FLOAT)
    return _make(values, requires_grad, device, "arange")


def linspace(start, end, steps: int, dtype=None, device=None,
             requires_grad: bool = False) -> Tensor:
    """``steps`` evenly spaced values from start to end, both included."""
    (steps,) = _size((steps,), "linspace")
    values = np.linspace(start, end, steps).astype(_float_dtype(dtype, "linspace"))
    return _make(values, requires_grad, device, "linspace")


# ---- random ----------------------------------------------------------------------------
def randn(*size, dtype=None, generator=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of the standard normal N(0, 1)."""
    shape = _size(size, "randn")
    data = _rng(generator).standard_normal(shape).astype(_float_dtype(dtype, "randn"))
    return _make(data, requires_grad, device, "randn")


def rand(*size, dtype=None, generator=None, device=None, requires_grad: bool = False) -> Tensor:
    """Samples of the uniform distribution on [0, 1)."""
    shape = _size(size, "rand")
    data = _rng(generator).random(shape).astype(_float_dtype(dtype, "rand"))
    return _make(data, requires_grad, device, "rand")


def randn_like(t: Tensor, dtype=None, generator=None, device=None,
               requires_grad: bool = False) -> Tensor:
    return randn(t.shape, dtype=t.dtype if dtype is None else dtype, generator=generator,
                 device=device, requires_grad=requires_grad)


def rand_like(t: Tensor, dtype=None, generator=None, device=None,
              requires_grad: bool = False) -> Tensor:
    return rand(t.shape, dtype=t.dtype if dtype is None else dtype, generator=generator,
                device=device, requires_grad=requires_grad)


def randint(low, high=None, size=None, dtype=None, generator=None, device=None) -> Tensor:
    """Integers drawn uniformly from [low, high): ``randint(high, size)`` or
    ``randint(low, high, size)``, as in PyTorch."""
    if size is None:  # randint(high, size)
        low, high, size = 0, low, high
    if size is None:
        raise TypeError("randint: missing the size argument, e.g. randint(0, 10, (3,))")
    shape = _size(size if isinstance(size, (tuple, list)) else (size,), "randint")
    if not high > low:
        raise ValueError(f"randint: expected low < high, got low={low}, high={high}")
    data = _rng(generator).integers(low, high, size=shape)
    return _make(data.astype(np.int64 if dtype is None else dtype), False, device, "randint")


def normal_like(t: Tensor, mean, std, generator, op: str) -> np.ndarray:
    """Samples of N(mean, std^2) shaped and typed like ``t`` (for ``t.normal_()``)."""
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {t.dtype}")
    if not std >= 0:
        raise ValueError(f"{op}: std must be non-negative, got {std}")
    return _rng(generator).normal(mean, std, t.shape).astype(t.dtype)


def uniform_like(t: Tensor, low, high, generator, op: str) -> np.ndarray:
    """Samples of the uniform distribution on [low, high) shaped and typed like ``t``."""
    if t.dtype.kind != "f":
        raise TypeError(f"{op}: expected a floating-point tensor, got dtype {t.dtype}")
    if not low <= high:
        raise ValueError(f"{op}: expected a <= b, got a={low}, b={high}")
    return _rng(generator).uniform(low, high, t.shape).astype(t.dtype)


def multinomial(input: Tensor, num_samples: int, replacement: bool = False,
                generator=None) -> Tensor:
    """Draw category indices with probabilities proportional to the rows of ``input``.

    input: [K] or [N, K] non-negative weights (they need not sum to 1) -> int64
    [num_samples] or [N, num_samples]. Without replacement, each category is drawn at
    most once per row, so a row needs at least ``num_samples`` nonzero weights.
    """
    weights = np.asarray(input.data if isinstance(input, Tensor) else input)
    if weights.ndim not in (1, 2) or weights.dtype.kind != "f":
        raise ValueError(f"multinomial: expected a 1-D or 2-D floating-point tensor of "
                         f"weights, got shape {weights.shape} and dtype {weights.dtype}")
    (num_samples,) = _size((num_samples,), "multinomial")
    rows = weights.reshape(-1, weights.shape[-1]).astype(np.float64)
    if not np.isfinite(rows).all() or (rows < 0).any() or (rows.sum(axis=1) <= 0).any():
        raise ValueError("multinomial: weights must be finite, non-negative and have a "
                         "positive sum in every row")
    if not replacement and (num_samples > (rows > 0).sum(axis=1)).any():
        raise ValueError(f"multinomial: cannot draw {num_samples} samples without "
                         f"replacement from a row with fewer nonzero weights")
    rng = _rng(generator)
    samples = np.stack([rng.choice(row.size, num_samples, replace=replacement, p=row / row.sum())
                        for row in rows])
    return Tensor(samples.reshape(weights.shape[:-1] + (num_samples,)).astype(np.int64))
