"""Indexing along a dimension: gather, scatter, scatter_add — and masked_fill, copy, nonzero.

For ``dim = 1`` of a 3-D tensor (PyTorch's definitions, the other dims alike):

    gather:       out[i][j][k]              = a[i][index[i][j][k]][k]
    scatter:      out = a; out[i][index[i][j][k]][k]  = src[i][j][k]
    scatter_add:  out = a; out[i][index[i][j][k]][k] += src[i][j][k]

``index`` has as many dimensions as ``a`` and may be smaller than it in every
dimension but ``dim``; its entries lie in [0, a.shape[dim]). Gather and
scatter_add are each other's backward: gather reads, so its gradient is added
back where it was read from; scatter_add adds, so src's gradient is read from
where it went. Scatter is ``setitem`` at the positions that ``index`` names.
Index arrays are copied, so changing the user's array later cannot change a gradient.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.ops.checks import normalize_dim
from minidl.ops.elementwise import where
from minidl.ops.shape import setitem


def _positions(index: np.ndarray, dim: int) -> tuple:
    """The full NumPy index of the elements that ``index`` addresses: an open grid over
    every dimension, with ``index`` itself along ``dim``."""
    grid = list(np.indices(index.shape, sparse=True))
    grid[dim] = index
    return tuple(grid)


def _leading(src, shape: tuple):
    """The corner of ``src`` (an array or a Tensor) that an index of ``shape`` uses (index
    may be smaller than src)."""
    return src[tuple(slice(0, n) for n in shape)]


class Gather(Function):
    """out = a[positions];  dL/da = the gradient added back into those positions."""

    def forward(ctx, a, index=None, dim=0):
        ctx.shape, ctx.positions = a.shape, _positions(index, dim)
        return a[ctx.positions]

    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.add.at(full, ctx.positions, grad)  # an element read twice gets both gradients
        return full


class ScatterAdd(Function):
    """out = a, then out[positions] += src;  dL/da = g, dL/dsrc = g[positions]."""

    def forward(ctx, a, src, index=None, dim=0):
        ctx.positions, ctx.index_shape = _positions(index, dim), index.shape
        ctx.src_shape = src.shape
        out = np.array(a, copy=True)
        np.add.at(out, ctx.positions, _leading(src, index.shape))
        return out

    def backward(ctx, grad):
        grad_src = None
        if ctx.needs_input_grad[1]:
            grad_src = np.zeros(ctx.src_shape, dtype=grad.dtype)
            _leading(grad_src, ctx.index_shape)[...] = grad[ctx.positions]
        return grad, grad_src


class CopyInto(Function):
    """out = src broadcast to a's shape, in a's dtype;  dL/da = 0, dL/dsrc = g (summed back)."""

    def forward(ctx, a, src):
        return np.broadcast_to(src, a.shape).astype(a.dtype)

    def backward(ctx, grad):
        return np.zeros_like(grad), grad


# ---- functional forms -------------------------------------------------------
def _checked_index(op: str, a, dim, index, src=None) -> tuple:
    """(dim as 0..ndim-1, a private int64 copy of index), or an error naming ``op``."""
    d = normalize_dim(dim, a.ndim, op)
    idx = np.array(index.data if isinstance(index, Tensor) else index, copy=True)
    if idx.dtype.kind not in "iu":
        raise TypeError(f"{op}: index must hold integers, got dtype {idx.dtype}")
    if idx.ndim != a.ndim:
        raise ValueError(f"{op}: index must have as many dimensions as the input, got index "
                         f"shape {idx.shape} for input shape {a.shape}")
    too_big = [k for k in range(a.ndim) if k != d and idx.shape[k] > a.shape[k]]
    if src is not None and np.ndim(src):
        too_big += [k for k in range(a.ndim) if idx.shape[k] > np.shape(src)[k]]
        if np.ndim(src) != a.ndim:
            raise ValueError(f"{op}: src must have as many dimensions as the input, got "
                             f"shape {np.shape(src)} for input shape {a.shape}")
    if too_big:
        raise ValueError(f"{op}: index of shape {idx.shape} is larger than the input "
                         f"{a.shape} (or src) in dimension {too_big[0]}")
    if idx.size and (idx.min() < 0 or idx.max() >= a.shape[d]):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise IndexError(f"{op}: index {int(bad)} is out of bounds for dimension {d} with size "
                         f"{a.shape[d]}")
    return d, idx.astype(np.int64, copy=False)


def gather(a, dim, index):
    """out[..., j, ...] = a[..., index[..., j, ...], ...] along ``dim``; out has index's shape."""
    d, idx = _checked_index("gather", a, dim, index)
    return Gather.apply(a, index=idx, dim=d)


def scatter_add(a, dim, index, src):
    """A copy of ``a`` with src[j] added at position index[j] along ``dim`` (repeats add up)."""
    if np.ndim(src) == 0:
        raise ValueError("scatter_add: src must be a tensor with as many dimensions as the input")
    d, idx = _checked_index("scatter_add", a, dim, index, src)
    return ScatterAdd.apply(a, src, index=idx, dim=d)


def scatter(a, dim, index, src):
    """A copy of ``a`` with src[j] (or the number ``src``) written at index[j] along ``dim``.

    A composite: ``a[positions] = src`` (``setitem``), so where ``index`` repeats a position
    the last write wins and only that src element gets the gradient.
    """
    d, idx = _checked_index("scatter", a, dim, index, src)
    if np.ndim(src):  # only the corner of src that index covers is written
        src = _leading(src, idx.shape)
    return setitem(a, _positions(idx, d), src)


def masked_fill(a, mask, value):
    """``value`` where the bool ``mask`` is True, ``a`` elsewhere (mask broadcasts to a).

    A composite of ``where``; the value (a number or a 0-d tensor) takes a's dtype.
    """
    mask_dtype = mask.dtype if isinstance(mask, (Tensor, np.ndarray)) else np.asarray(mask).dtype
    if mask_dtype != np.bool_:
        raise TypeError(f"masked_fill: mask must be a bool tensor, got dtype {mask_dtype}")
    if np.ndim(value) != 0:
        raise ValueError(f"masked_fill: value must be a number or a 0-d tensor, got shape "
                         f"{np.shape(value)}")
    value = value.to(a.dtype) if isinstance(value, Tensor) else np.asarray(value, a.dtype)
    return where(mask, value, a)


def copy_into(a, src):
    """src broadcast to a's shape and converted to a's dtype (what ``a.copy_(src)`` writes)."""
    src_shape = np.shape(src.data if isinstance(src, Tensor) else src)
    try:
        np.broadcast_shapes(src_shape, a.shape)
    except ValueError:
        raise ValueError(f"copy_: src of shape {src_shape} cannot be broadcast to "
                         f"{a.shape}") from None
    if np.broadcast_shapes(src_shape, a.shape) != a.shape:
        raise ValueError(f"copy_: src of shape {src_shape} cannot be broadcast to {a.shape}")
    return CopyInto.apply(a, src)


def nonzero(a, as_tuple: bool = False):
    """Indices of the nonzero elements: an int64 [n, ndim] tensor, one row per element in
    row-major order, or (``as_tuple``) one 1-D tensor per dimension, as ``np.nonzero``."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if as_tuple:
        return tuple(Tensor(i.astype(np.int64)) for i in np.nonzero(np.atleast_1d(data)))
    return Tensor(np.argwhere(data).astype(np.int64))
