"""Shape primitives: reshape, permute, expand, indexing, cat, pad, clone — and the composites
on them (view, transpose, t, squeeze, unsqueeze, flatten, stack, split, chunk, narrow, repeat).

None of these change values, only where they sit, so every backward moves the
gradient back to where each value came from: reshape back, permute by the
inverse permutation, scatter-add for indexing (a value read twice gets both
gradients), slice for cat.

Reshape, permute, expand and basic indexing return views: NumPy arrays that share
the input's memory (``ViewFunction``), as PyTorch's views do. An in-place change
of a view therefore changes its base too, and counts on the base's version.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function, ViewFunction
from minidl.autograd.tensor import Tensor
from minidl.ops.checks import normalize_dim


class Reshape(ViewFunction):
    """Same values, new shape; the gradient is reshaped back."""

    def forward(ctx, a, shape=None):
        ctx.shape = a.shape
        return a.reshape(shape)

    def backward(ctx, grad):
        return grad.reshape(ctx.shape)


class Permute(ViewFunction):
    """z = a with axes reordered by ``dims``; the gradient uses the inverse order."""

    def forward(ctx, a, dims=None):
        ctx.inverse = tuple(np.argsort(dims))
        return np.transpose(a, dims)

    def backward(ctx, grad):
        return np.transpose(grad, ctx.inverse)


class Expand(ViewFunction):
    """Broadcast ``a`` to ``shape`` without copying; the engine sums the gradient back."""

    def forward(ctx, a, shape=None):
        return np.broadcast_to(a, shape)

    def backward(ctx, grad):
        return grad  # engine.unbroadcast reduces it to the input's shape


def _reads_each_once(index) -> bool:
    """True unless the index holds an integer array (which may repeat an element)."""
    parts = index if isinstance(index, tuple) else (index,)
    for p in parts:
        if isinstance(p, (list, np.ndarray)) and np.asarray(p).dtype != np.bool_:
            return False
    return True


def private_index(index):
    """A copy of the arrays (and lists) in ``index``, so that changing the user's index
    array after ``x[idx]`` cannot change what backward scatters into."""
    if isinstance(index, tuple):
        return tuple(private_index(i) for i in index)
    if isinstance(index, (np.ndarray, list)):
        return np.array(index, copy=True)
    return index


class GetItem(ViewFunction):
    """z = a[index] (slices, integer arrays, boolean masks).

    Backward scatters the gradient into zeros of a's shape. With integer arrays
    an element can be read several times, so the scatter must add (``np.add.at``)
    rather than assign. Index arrays are copied (``private_index``).
    """

    def forward(ctx, a, index=None):
        index = private_index(index)
        ctx.shape, ctx.dtype, ctx.index = a.shape, a.dtype, index
        return np.asarray(a[index])

    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        if _reads_each_once(ctx.index):
            full[ctx.index] = grad
        else:
            np.add.at(full, ctx.index, grad)
        return full


class SetItem(Function):
    """z = a with z[index] = value (value broadcast to a[index]'s shape).

    dL/da = g, except 0 where value was written; dL/dvalue = g[index], summed back to
    value's shape by the engine. Where an integer index repeats a position, the last write
    wins (NumPy's rule) and only that element of value gets the gradient.
    """

    def forward(ctx, a, value, index=None):
        index = private_index(index)
        out = np.array(a, copy=True)
        out[index] = value
        selected = np.shape(a[index])
        ids = np.arange(int(np.prod(selected))).reshape(selected)
        writer = np.full(a.shape, -1)
        writer[index] = ids
        ctx.index, ctx.won = index, writer[index] == ids
        return out

    def backward(ctx, grad):
        grad_a = np.array(grad, copy=True)
        grad_a[ctx.index] = 0
        grad_value = None
        if ctx.needs_input_grad[1]:
            grad_value = np.where(ctx.won, grad[ctx.index], np.zeros((), grad.dtype))
        return grad_a, grad_value


class Cat(Function):
    """z = [a_1; a_2; ...] along ``dim``; each input gets its slice of the gradient."""

    def forward(ctx, *arrays, dim=0):
        ctx.dim = dim
        ctx.bounds = np.cumsum([x.shape[dim] for x in arrays])[:-1]
        return np.concatenate(arrays, axis=dim)

    def backward(ctx, grad):
        return tuple(np.split(grad, ctx.bounds, axis=ctx.dim))


class Clone(Function):
    """z = a copy of a, in its own C-contiguous memory;  dz/da = 1."""

    def forward(ctx, a):
        return np.array(a, order="C", copy=True)

    def backward(ctx, grad):
        return grad


class Pad(Function):
    """Constant padding; the gradient is the centre crop of the incoming gradient."""

    def forward(ctx, a, widths=None, value=0.0):
        ctx.crop = tuple(slice(before, before + n) for (before, _), n in zip(widths, a.shape))
        return np.pad(a, widths, mode="constant", constant_values=value)

    def backward(ctx, grad):
        return grad[ctx.crop]


# ---- functional forms -------------------------------------------------------
def _shape_arg(shape):
    """Accept reshape(2, 3) and reshape((2, 3)) alike."""
    if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
        return tuple(shape[0])
    return tuple(shape)


def reshape(a, *shape):
    """Same elements in a new shape; one dimension may be -1 (inferred)."""
    shape = _shape_arg(shape)
    known = int(np.prod([n for n in shape if n != -1]))
    if any(n < -1 for n in shape) or shape.count(-1) > 1 or (
        -1 not in shape and known != a.data.size
    ) or (-1 in shape and (known == 0 or a.data.size % known)):
        raise ValueError(f"reshape: cannot view a tensor of shape {a.shape} "
                         f"({a.data.size} elements) as {shape}")
    return Reshape.apply(a, shape=shape)


view = reshape


def permute(a, *dims):
    """Reorder the axes: the output's axis i is the input's axis dims[i]."""
    dims = _shape_arg(dims)
    n = a.ndim
    if len(dims) != n or any(not -n <= d < n for d in dims) or sorted(d % n for d in dims) != list(
        range(n)
    ):
        raise ValueError(f"permute: {dims} is not a permutation of the {n} axes of {a.shape}")
    return Permute.apply(a, dims=tuple(d % n for d in dims))


def t(a):
    """The transpose of a matrix; 0-D and 1-D tensors are returned as they are (PyTorch)."""
    if a.ndim > 2:
        raise ValueError(f"t: expects a tensor with at most 2 dimensions, got shape {a.shape}; "
                         "use transpose(dim0, dim1) or permute")
    return a if a.ndim < 2 else Permute.apply(a, dims=(1, 0))


def transpose(a, dim0, dim1):
    """Swap two axes."""
    dims = list(range(a.ndim))
    d0, d1 = normalize_dim(dim0, a.ndim, "transpose"), normalize_dim(dim1, a.ndim, "transpose")
    dims[d0], dims[d1] = dims[d1], dims[d0]
    return Permute.apply(a, dims=tuple(dims))


def expand(a, *shape):
    """Broadcast to ``shape`` (-1 keeps a dimension). No copy is made."""
    shape = _shape_arg(shape)
    lead = len(shape) - a.ndim
    if lead < 0:
        raise ValueError(f"expand: cannot expand shape {a.shape} to fewer dimensions {shape}")
    if any(n == -1 for n in shape[:lead]) or any(n < -1 for n in shape):
        raise ValueError(f"expand: size -1 only keeps an existing dimension and sizes cannot be "
                         f"negative (shape {a.shape} -> {shape})")
    target = tuple(a.shape[i - lead] if n == -1 else n for i, n in enumerate(shape))
    for i, n in enumerate(a.shape):
        if n != 1 and n != target[lead + i]:
            raise ValueError(f"expand: dimension {i} of size {n} cannot become {target[lead + i]} "
                             f"(shape {a.shape} -> {shape}); only size-1 dims expand")
    return Expand.apply(a, shape=target)


def squeeze(a, dim=None):
    """Remove axes of length 1 (all of them, or just ``dim`` if it has length 1)."""
    if dim is None:
        shape = tuple(n for n in a.shape if n != 1)
    elif a.ndim == 0:
        normalize_dim(dim, 0, "squeeze")
        shape = ()
    else:
        d = normalize_dim(dim, a.ndim, "squeeze")
        shape = a.shape if a.shape[d] != 1 else a.shape[:d] + a.shape[d + 1:]
    return Reshape.apply(a, shape=shape)


def unsqueeze(a, dim):
    """Insert an axis of length 1 at position ``dim``."""
    d = normalize_dim(dim, a.ndim + 1, "unsqueeze")
    return Reshape.apply(a, shape=a.shape[:d] + (1,) + a.shape[d:])


def flatten(a, start_dim=0, end_dim=-1):
    """Merge axes start_dim..end_dim into one."""
    if a.ndim == 0:
        return Reshape.apply(a, shape=(1,))
    s = normalize_dim(start_dim, a.ndim, "flatten")
    e = normalize_dim(end_dim, a.ndim, "flatten")
    if s > e:
        raise ValueError(f"flatten: start_dim {start_dim} comes after end_dim {end_dim}")
    merged = int(np.prod(a.shape[s:e + 1]))
    return Reshape.apply(a, shape=a.shape[:s] + (merged,) + a.shape[e + 1:])


def repeat(a, *sizes):
    """Tile ``a``: ``sizes[i]`` copies along each dimension (``np.tile``), e.g. [x, y] -> [x, y,
    x, y]. More sizes than dimensions add leading dimensions.

    A composite: interleave axes of length 1, expand them to the repeat counts and merge,
    [n0, n1] -> [1, n0, 1, n1] -> [r0, n0, r1, n1] -> [r0 n0, r1 n1]; expand's backward
    sums the copies' gradients.
    """
    sizes = _shape_arg(sizes)
    if len(sizes) < a.ndim or any(not isinstance(r, (int, np.integer)) or r < 0 for r in sizes):
        raise ValueError(f"repeat: expected at least {a.ndim} non-negative int repeat counts "
                         f"(one per dimension of {a.shape}), got {sizes}")
    shape = (1,) * (len(sizes) - a.ndim) + a.shape
    spread = tuple(v for n in shape for v in (1, n))
    copies = tuple(v for r, n in zip(sizes, shape) for v in (r, n))
    merged = tuple(r * n for r, n in zip(sizes, shape))
    return reshape(expand(reshape(a, spread), copies), merged)


def clone(a):
    """A copy in new memory that stays in the graph (the gradient passes through)."""
    return Clone.apply(a)


def contiguous(a):
    """``a`` itself if its array is C-contiguous, else a contiguous clone (as PyTorch)."""
    return a if a.data.flags.c_contiguous else Clone.apply(a)


def _index_arrays(index):
    """Tensors inside an index become their ndarrays."""
    if isinstance(index, tuple):
        return tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return index.data if isinstance(index, Tensor) else index


def getitem(a, index):
    """``a[index]`` with NumPy's indexing rules, differentiable."""
    index = _index_arrays(index)
    try:
        a.data[index]  # fail here, with NumPy's message, before recording anything
    except (IndexError, ValueError, TypeError) as error:
        raise IndexError(
            f"getitem: index {index!r} is invalid for shape {a.shape}: {error}"
        ) from None
    return GetItem.apply(a, index=index)


def setitem(a, index, value):
    """A copy of ``a`` with ``a[index] = value`` (what ``x[index] = value`` writes in place)."""
    index = _index_arrays(index)
    try:
        np.broadcast_to(np.empty(np.shape(value.data if isinstance(value, Tensor) else value)),
                        np.shape(a.data[index]))
    except (IndexError, ValueError, TypeError) as error:
        raise IndexError(f"setitem: cannot write a value of shape {np.shape(value)} at index "
                         f"{index!r} of shape {a.shape}: {error}") from None
    return SetItem.apply(a, value, index=index)


def cat(tensors, dim=0):
    """Concatenate along an existing axis; all other axes must agree."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("cat: expected a non-empty list of tensors")
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat: zero-dimensional tensors cannot be concatenated (use stack)")
    d = normalize_dim(dim, first.ndim, "cat")
    for k, t in enumerate(tensors[1:], 1):
        if t.ndim != first.ndim or any(
            n != m for i, (n, m) in enumerate(zip(t.shape, first.shape)) if i != d
        ):
            raise ValueError(f"cat: tensor {k} has shape {t.shape}, incompatible with "
                             f"{first.shape} outside dim {d}")
    return Cat.apply(*tensors, dim=d)


def stack(tensors, dim=0):
    """Join same-shape tensors along a new axis ``dim`` (unsqueeze, then cat)."""
    tensors = list(tensors)
    if not tensors:
        raise ValueError("stack: expected a non-empty list of tensors")
    for k, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack: tensor {k} has shape {t.shape}, expected {tensors[0].shape}")
    return cat([unsqueeze(t, dim) for t in tensors], dim=dim)


def split(a, split_size_or_sections, dim=0):
    """Cut into pieces along ``dim``: of one size (the last may be smaller) or of given sizes."""
    d = normalize_dim(dim, a.ndim, "split")
    n = a.shape[d]
    if isinstance(split_size_or_sections, (int, np.integer)):
        if split_size_or_sections <= 0:
            raise ValueError(f"split: split size must be positive, got {split_size_or_sections}")
        sizes = [min(split_size_or_sections, n - s) for s in range(0, n, split_size_or_sections)]
    else:
        sizes = list(split_size_or_sections)
        if any(size < 0 for size in sizes) or sum(sizes) != n:
            raise ValueError(f"split: sections {sizes} must be non-negative and add up to "
                             f"dim {d} of size {n}")
    pieces, start = [], 0
    for size in sizes:
        index = (slice(None),) * d + (slice(start, start + size),)
        pieces.append(GetItem.apply(a, index=index))
        start += size
    return tuple(pieces)


def chunk(a, chunks: int, dim=0):
    """Split into ``chunks`` pieces of ceil(n / chunks) along ``dim`` (the last may be smaller,
    and there may be fewer pieces), as PyTorch."""
    if isinstance(chunks, bool) or not isinstance(chunks, (int, np.integer)) or chunks <= 0:
        raise ValueError(f"chunk: chunks must be a positive int, got {chunks!r}")
    n = a.shape[normalize_dim(dim, a.ndim, "chunk")]
    return split(a, max(-(-n // chunks), 1), dim)


def narrow(a, dim, start, length):
    """The slice start:start+length along ``dim`` (a view; ``start`` may be negative)."""
    d = normalize_dim(dim, a.ndim, "narrow")
    n = a.shape[d]
    first = start + n if start < 0 else start
    if not -n <= start <= n or length < 0 or first + length > n:
        raise IndexError(f"narrow: start {start} and length {length} do not fit in dim {d} "
                         f"of size {n}")
    return GetItem.apply(a, index=(slice(None),) * d + (slice(first, first + length),))


def pad(a, pad, mode="constant", value=0.0):
    """Pad with a constant, PyTorch's order: ``pad = (left, right, top, bottom, ...)``
    starting from the last axis."""
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    if len(pad) % 2 or len(pad) // 2 > a.ndim:
        raise ValueError(f"pad: pad {pad} must have an even length of at most 2 * {a.ndim}")
    if any(p < 0 for p in pad):
        raise ValueError(f"pad: negative padding {pad} is not supported")
    widths = [(0, 0)] * a.ndim
    for k in range(len(pad) // 2):
        widths[a.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
    return Pad.apply(a, widths=tuple(widths), value=value)
