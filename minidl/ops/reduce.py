"""Reductions over dimensions: sum, mean, var, std, max, min, amax, amin, argmax, argmin,
logsumexp, all, any.

``dim`` is None (all axes), an int or a tuple of ints; ``keepdim=True`` keeps the
reduced axes with length 1. A reduction's backward broadcasts the incoming
gradient back over the reduced axes, so it first puts them back
(``_expand_reduced``).

dtypes (as PyTorch): sum, max, min and the arg-reductions work on integers too;
mean, var, std and logsumexp need floating point and raise otherwise.
"""

from __future__ import annotations

from collections import namedtuple

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.ops.checks import check_float, normalize_dim, normalize_dims
from minidl.ops.elementwise import maximum, minimum

MinMax = namedtuple("MinMax", ["values", "indices"])


def _expand_reduced(grad, axes, keepdim):
    """Re-insert the reduced axes (length 1) so ``grad`` broadcasts against the input."""
    return grad if keepdim else np.expand_dims(grad, axes)


class Sum(Function):
    """z = sum_i a_i over ``axes``;  dz/da_i = 1."""

    def forward(ctx, a, axes=None, keepdim=False):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        return np.sum(a, axis=axes, keepdims=keepdim)

    def backward(ctx, grad):
        return np.broadcast_to(_expand_reduced(grad, ctx.axes, ctx.keepdim), ctx.shape)


class Mean(Function):
    """z = (1/n) sum_i a_i over ``axes``;  dz/da_i = 1/n."""

    def forward(ctx, a, axes=None, keepdim=False):
        ctx.shape, ctx.axes, ctx.keepdim = a.shape, axes, keepdim
        ctx.count = int(np.prod([a.shape[i] for i in axes]))
        return np.mean(a, axis=axes, keepdims=keepdim)

    def backward(ctx, grad):
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdim) / ctx.count
        return np.broadcast_to(grad, ctx.shape)


class Var(Function):
    """z = sum_i (a_i - mean)^2 / (n - correction);  dz/da_i = 2 (a_i - mean) / (n - correction).

    (The mean's own dependence on a_i drops out because sum_i (a_i - mean) = 0.)
    """

    def forward(ctx, a, axes=None, correction=1, keepdim=False):
        count = int(np.prod([a.shape[i] for i in axes]))
        centered = a - a.mean(axis=axes, keepdims=True)
        ctx.save_for_backward(centered)
        ctx.axes, ctx.keepdim, ctx.denominator = axes, keepdim, count - correction
        return np.sum(centered * centered, axis=axes, keepdims=keepdim) / ctx.denominator

    def backward(ctx, grad):
        (centered,) = ctx.saved_tensors
        grad = _expand_reduced(grad, ctx.axes, ctx.keepdim)
        return grad * (2.0 / ctx.denominator) * centered


class Amax(Function):
    """z = max_i a_i over ``axes`` (min if not ``largest``); the gradient is shared evenly
    by the elements that tie for the max (as torch.amax and the full torch.max)."""

    def forward(ctx, a, axes=None, keepdim=False, largest=True):
        reduce = np.max if largest else np.min
        out = reduce(a, axis=axes, keepdims=True)
        winners = a == out
        share = winners / winners.sum(axis=axes, keepdims=True)
        ctx.save_for_backward(share.astype(a.dtype, copy=False) if a.dtype.kind == "f" else share)
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else np.squeeze(out, axis=axes)

    def backward(ctx, grad):
        (share,) = ctx.saved_tensors
        return _expand_reduced(grad, ctx.axes, ctx.keepdim) * share


class MaxAlongDim(Function):
    """z = max_i a_i along one ``axis`` (min if not ``largest``), with the index of the winner.

    The gradient goes to that one index (the first one at ties), as PyTorch's
    ``max(dim)`` does: z is a gather, a[..., index, ...], so backward scatters.
    """

    def forward(ctx, a, axis=0, keepdim=False, largest=True):
        find = np.argmax if largest else np.argmin
        index = np.expand_dims(find(a, axis=axis), axis)  # length 1 along axis
        ctx.shape, ctx.axis, ctx.keepdim, ctx.index = a.shape, axis, keepdim, index
        values = np.take_along_axis(a, index, axis)
        return values if keepdim else np.squeeze(values, axis)

    def backward(ctx, grad):
        full = np.zeros(ctx.shape, dtype=grad.dtype)
        np.put_along_axis(full, ctx.index, _expand_reduced(grad, ctx.axis, ctx.keepdim), ctx.axis)
        return full


class LogSumExp(Function):
    """z = log sum_i exp(a_i), computed as m + log sum_i exp(a_i - m) with m = max_i a_i
    so that large a_i do not overflow;  dz/da_i = softmax(a)_i."""

    def forward(ctx, a, axes=None, keepdim=False):
        m = np.max(a, axis=axes, keepdims=True)
        m = np.where(np.isfinite(m), m, 0)  # all -inf: exp(-inf - 0) = 0, log 0 = -inf
        shifted = np.exp(a - m)
        total = shifted.sum(axis=axes, keepdims=True)
        with np.errstate(divide="ignore"):  # log 0 = -inf is the right answer there
            out = m + np.log(total)
        # All -inf: the output stays -inf under any finite change, so its gradient is 0.
        ctx.save_for_backward(shifted / np.where(total > 0, total, 1))
        ctx.axes, ctx.keepdim = axes, keepdim
        return out if keepdim else np.squeeze(out, axis=axes)

    def backward(ctx, grad):
        (softmax,) = ctx.saved_tensors
        return _expand_reduced(grad, ctx.axes, ctx.keepdim) * softmax


# ---- functional forms -------------------------------------------------------
def sum(a, dim=None, keepdim=False):
    """Sum over ``dim`` (None: all elements)."""
    return Sum.apply(a, axes=normalize_dims(dim, a.ndim, "sum"), keepdim=keepdim)


def mean(a, dim=None, keepdim=False):
    """Mean over ``dim`` (None: all elements)."""
    check_float(a, "mean")
    return Mean.apply(a, axes=normalize_dims(dim, a.ndim, "mean"), keepdim=keepdim)


def _variance(a, dim, unbiased, keepdim, op):
    check_float(a, op)
    axes = normalize_dims(dim, a.ndim, op)
    count = int(np.prod([a.shape[i] for i in axes]))
    if unbiased and count < 2:
        raise ValueError(f"{op}: the unbiased variance needs at least 2 elements, got {count}")
    return Var.apply(a, axes=axes, correction=1 if unbiased else 0, keepdim=keepdim)


def var(a, dim=None, unbiased=True, keepdim=False):
    """Variance over ``dim``; ``unbiased=True`` divides by n - 1 (Bessel), else by n."""
    return _variance(a, dim, unbiased, keepdim, "var")


def std(a, dim=None, unbiased=True, keepdim=False):
    """Standard deviation: sqrt(var) (a composite)."""
    return _variance(a, dim, unbiased, keepdim, "std").sqrt()


def _extreme(a, dim, keepdim, largest, op):
    if isinstance(dim, Tensor):  # max(a, b): PyTorch's other meaning, the element-wise max
        return maximum(a, dim) if largest else minimum(a, dim)
    if a.data.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor (shape {a.shape})")
    if dim is None:
        return Amax.apply(a, axes=normalize_dims(None, a.ndim, op), keepdim=False,
                          largest=largest)
    if not isinstance(dim, (int, np.integer)):
        raise TypeError(f"{op}: dim must be one int when indices are returned, got {dim!r} "
                        f"(use a{op} to reduce several dims)")
    axis = normalize_dim(dim, a.ndim, op)
    if a.ndim == 0:  # nothing to reduce: the value itself, at index 0
        return MinMax(Amax.apply(a, axes=(), keepdim=keepdim, largest=largest),
                      Tensor(np.zeros((), dtype=np.int64)))
    values = MaxAlongDim.apply(a, axis=axis, keepdim=keepdim, largest=largest)
    find = np.argmax if largest else np.argmin
    indices = find(a.data, axis=axis, keepdims=keepdim)
    return MinMax(values, Tensor(indices))


def max(a, dim=None, keepdim=False):
    """Largest value. With ``dim`` (an int), returns ``(values, indices)`` as PyTorch;
    ``max(a, b)`` of two tensors is ``maximum(a, b)``."""
    return _extreme(a, dim, keepdim, True, "max")


def min(a, dim=None, keepdim=False):
    """Smallest value. With ``dim`` (an int), returns ``(values, indices)`` as PyTorch;
    ``min(a, b)`` of two tensors is ``minimum(a, b)``."""
    return _extreme(a, dim, keepdim, False, "min")


def amax(a, dim=None, keepdim=False):
    """Largest value over ``dim`` (None, an int or a tuple); ties share the gradient evenly."""
    if a.data.size == 0:
        raise ValueError(f"amax: cannot reduce an empty tensor (shape {a.shape})")
    return Amax.apply(a, axes=normalize_dims(dim, a.ndim, "amax"), keepdim=keepdim)


def amin(a, dim=None, keepdim=False):
    """Smallest value over ``dim`` (None, an int or a tuple); ties share the gradient evenly."""
    if a.data.size == 0:
        raise ValueError(f"amin: cannot reduce an empty tensor (shape {a.shape})")
    return Amax.apply(a, axes=normalize_dims(dim, a.ndim, "amin"), keepdim=keepdim,
                      largest=False)


def _arg_extreme(a, dim, keepdim, find, op):
    if a.data.size == 0:
        raise ValueError(f"{op}: cannot reduce an empty tensor (shape {a.shape})")
    axis = None if dim is None else normalize_dim(dim, a.ndim, op)
    if axis is None or a.ndim == 0:  # over the flattened tensor
        return Tensor(np.asarray(find(a.data), dtype=np.int64))
    return Tensor(find(a.data, axis=axis, keepdims=keepdim).astype(np.int64, copy=False))


def argmax(a, dim=None, keepdim=False):
    """Index of the largest value (over the flattened tensor when ``dim`` is None). No gradient."""
    return _arg_extreme(a, dim, keepdim, np.argmax, "argmax")


def argmin(a, dim=None, keepdim=False):
    """Index of the smallest value (over the flattened tensor when ``dim`` is None). No gradient."""
    return _arg_extreme(a, dim, keepdim, np.argmin, "argmin")


def logsumexp(a, dim=None, keepdim=False):
    """log(sum(exp(a))) over ``dim``, without overflow."""
    check_float(a, "logsumexp")
    return LogSumExp.apply(a, axes=normalize_dims(dim, a.ndim, "logsumexp"), keepdim=keepdim)


def _logical(a, dim, keepdim, reduce, op):
    axes = normalize_dims(dim, a.ndim, op)
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    return Tensor(np.asarray(reduce(data, axis=axes, keepdims=keepdim)))


def all(a, dim=None, keepdim=False):
    """True where every element over ``dim`` is nonzero (a bool tensor, no gradient)."""
    return _logical(a, dim, keepdim, np.all, "all")


def any(a, dim=None, keepdim=False):
    """True where some element over ``dim`` is nonzero (a bool tensor, no gradient)."""
    return _logical(a, dim, keepdim, np.any, "any")
