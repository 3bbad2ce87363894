"""Sorting along a dimension: sort, argsort, topk.

The indices come from NumPy's stable sort (equal values keep their order, in both
directions; NaN counts as larger than every number, as in PyTorch). The values are
``gather(a, dim, indices)``, so sorting is a composite: the gradient of each sorted
value goes back to the element it came from, with nothing written here.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.ops.checks import normalize_dim
from minidl.ops.indexing import gather

SortResult = namedtuple("SortResult", ["values", "indices"])


def _order(values: np.ndarray, axis: int, descending: bool) -> np.ndarray:
    """Stable argsort along ``axis``. Descending: sort the reversed array ascending and reverse
    back, which keeps equal values in their original order (and puts NaN first)."""
    if not descending:
        return np.argsort(values, axis=axis, kind="stable")
    n = values.shape[axis]
    reversed_order = np.argsort(np.flip(values, axis), axis=axis, kind="stable")
    return np.flip(n - 1 - reversed_order, axis)


def argsort(a, dim=-1, descending=False, stable=False):
    """Indices that sort ``a`` along ``dim`` (int64, no gradient). Always stable."""
    if a.ndim == 0:
        return Tensor(np.zeros((), dtype=np.int64))
    axis = normalize_dim(dim, a.ndim, "argsort")
    return Tensor(_order(a.data, axis, descending).astype(np.int64))


def sort(a, dim=-1, descending=False, stable=False):
    """``(values, indices)`` of ``a`` sorted along ``dim``; the values are differentiable."""
    if a.ndim == 0:
        return SortResult(a, Tensor(np.zeros((), dtype=np.int64)))
    normalize_dim(dim, a.ndim, "sort")  # so that a bad dim names sort, not argsort
    indices = argsort(a, dim, descending)
    return SortResult(gather(a, dim, indices), indices)


def topk(a, k, dim=-1, largest=True, sorted=True):
    """``(values, indices)`` of the k largest (or smallest) elements along ``dim``, largest
    first (smallest first for ``largest=False``). The values are differentiable."""
    axis = normalize_dim(dim, a.ndim, "topk")
    n = a.shape[axis] if a.ndim else 1
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 0 <= k <= n:
        raise ValueError(f"topk: k must be an int in [0, {n}] (the size of dim {dim}), "
                         f"got {k!r}")
    if a.ndim == 0:
        return SortResult(a, Tensor(np.zeros((), dtype=np.int64)))
    order = _order(a.data, axis, descending=largest)
    indices = Tensor(np.take(order, np.arange(k), axis=axis).astype(np.int64))
    return SortResult(gather(a, axis, indices), indices)
