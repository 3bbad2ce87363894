"""Normalization layers: batch norm, layer norm, group norm (and instance norm through it).

All three standardize x over some set S of its elements and apply a learned affine map:

    mu = mean_S(x),  var = mean_S((x - mu)^2)  (biased),  xhat = (x - mu) / sqrt(var + eps)
    y  = weight * xhat + bias

    batch norm (Ioffe & Szegedy 2015):  S = (N, H, W) for each channel; affine per channel
    layer norm (Ba, Kiros & Hinton 2016): S = the trailing ``normalized_shape`` dims of each
                                          sample; affine per element of normalized_shape
    group norm (Wu & He 2018):  S = (C/G channels, H, W) of each sample and group; affine per
                                channel.  G = 1: layer norm over (C, H, W) but with a per-channel
                                affine;  G = C: instance norm (Ulyanov et al. 2016), each
                                channel of each image on its own.

Each is a primitive with the closed-form backward (derived once by hand, instead of
letting autograd walk the mean/var graph). With g = dL/dy, n = |S|:

    dL/dbias = sum g,   dL/dweight = sum g * xhat   (summed over where each is shared)
    gxhat = g * weight
    dL/dx = (1 / sqrt(var + eps)) * (gxhat - mean_S(gxhat) - xhat * mean_S(gxhat * xhat))

(the two subtracted means are the gradient flowing through mu and through var).
Batch norm in training mode also updates running estimates in place:

    running_mean <- (1 - momentum) running_mean + momentum mu
    running_var  <- (1 - momentum) running_var  + momentum var * n / (n - 1)   (unbiased)

and in evaluation mode normalizes with them instead (then mu, var are constants and
dL/dx = g * weight / sqrt(running_var + eps)). Batch norm and group norm run in the numba
kernels of minidl/kernels/norm.py (group norm fused: one kernel each way); layer norm
reduces over contiguous rows, which NumPy does well.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.kernels import norm as kernels
from minidl.ops.checks import check_float, kernel_array


class BatchNormFunction(Function):
    """Batch norm of x: [N, C, M] (M = spatial positions, 1 for [N, C]); see the module doc."""

    def forward(ctx, x, weight, bias, running_mean=None, running_var=None, training=True,
                momentum=0.1, eps=1e-5):
        N, C = x.shape[:2]
        M = int(np.prod(x.shape[2:]))  # explicit sizes: N may be 0
        x3 = kernel_array(x, "batch_norm").reshape(N, C, M)
        count = N * M
        if training:
            mean, var = np.empty(C), np.empty(C)
            kernels.channel_stats(x3, mean, var)
            if running_mean is not None:
                running_mean *= 1 - momentum
                running_mean += momentum * mean
            if running_var is not None:
                running_var *= 1 - momentum
                running_var += momentum * var * (count / (count - 1))
        else:
            mean, var = running_mean.astype(np.float64), running_var.astype(np.float64)
        invstd = 1.0 / np.sqrt(var + eps)
        w = np.ones(C) if weight is None else weight.astype(np.float64)
        b = np.zeros(C) if bias is None else bias.astype(np.float64)
        scale = w * invstd  # y = scale * x + (b - mean * scale)
        out = np.empty_like(x3)
        kernels.channel_affine(x3, scale.astype(x3.dtype), (b - mean * scale).astype(x3.dtype), out)
        ctx.save_for_backward(x3, mean, invstd, scale)
        ctx.training, ctx.count, ctx.shape = training, count, x.shape
        return out.reshape(x.shape)

    def backward(ctx, grad):
        x3, mean, invstd, scale = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g3 = np.ascontiguousarray(grad, dtype=x3.dtype).reshape(x3.shape)
        C = x3.shape[1]
        sum_g, sum_gx = np.empty(C), np.empty(C)
        kernels.channel_grad_sums(g3, x3, mean, sum_g, sum_gx)
        grad_bias = sum_g
        grad_weight = sum_gx * invstd  # sum g * xhat
        grad_x = None
        if need_x:
            # dx = scale * (g - sum_g / n - xhat * grad_weight / n), written as a g + b x + d
            a = scale
            b = -scale * invstd * grad_weight / ctx.count if ctx.training else np.zeros(C)
            d = -scale * sum_g / ctx.count - b * mean if ctx.training else np.zeros(C)
            grad_x = np.empty(ctx.shape, x3.dtype)  # owned, not a view: a leaf keeps it as is
            kernels.channel_affine2(g3, x3, *(v.astype(x3.dtype) for v in (a, b, d)),
                                    grad_x.reshape(x3.shape))
        return (grad_x, grad_weight if need_w else None, grad_bias if need_b else None)


def _standardize_rows(x2, eps):
    """xhat and 1/std of each row of x2: [R, M] (statistics over the last axis)."""
    mean = x2.mean(axis=1, keepdims=True)
    centred = x2 - mean
    var = np.einsum("rm,rm->r", centred, centred)[:, None] / x2.shape[1]
    invstd = 1.0 / np.sqrt(var + eps)
    return centred * invstd, invstd


def _standardize_rows_backward(gxhat, xhat, invstd):
    """dL/dx of xhat = standardize(x) over rows, from gxhat = dL/dxhat (see the module doc)."""
    M = xhat.shape[1]
    mean_g = gxhat.mean(axis=1, keepdims=True)
    mean_gx = np.einsum("rm,rm->r", gxhat, xhat)[:, None] / M
    return invstd * (gxhat - mean_g - xhat * mean_gx)


class LayerNormFunction(Function):
    """Layer norm over the last ``ndim`` axes: x viewed as [R, M], affine per column."""

    def forward(ctx, x, weight, bias, ndim=1, eps=1e-5):
        M = int(np.prod(x.shape[x.ndim - ndim:]))
        xhat, invstd = _standardize_rows(x.reshape(-1, M), eps)
        out = xhat if weight is None else xhat * weight.reshape(M)
        if bias is not None:
            out = out + bias.reshape(M)
        ctx.save_for_backward(xhat, invstd, weight)
        ctx.shape, ctx.normalized_shape = x.shape, x.shape[x.ndim - ndim:]
        return out.reshape(x.shape).astype(x.dtype, copy=False)

    def backward(ctx, grad):
        xhat, invstd, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g2 = grad.reshape(xhat.shape)
        grad_w = (g2 * xhat).sum(axis=0).reshape(ctx.normalized_shape) if need_w else None
        grad_b = g2.sum(axis=0).reshape(ctx.normalized_shape) if need_b else None
        grad_x = None
        if need_x:
            gxhat = g2 if weight is None else g2 * weight.reshape(-1)
            grad_x = _standardize_rows_backward(gxhat, xhat, invstd).reshape(ctx.shape)
        return grad_x, grad_w, grad_b


class GroupNormFunction(Function):
    """Group norm of x: [N, C, M] (M = spatial positions), G groups of C/G channels, fused:
    one numba kernel each way over x viewed as [N, G, C/G, M] (minidl/kernels/norm.py)."""

    def forward(ctx, x, weight, bias, num_groups=1, eps=1e-5, op="group_norm"):
        N, C = x.shape[:2]
        G = num_groups
        M = int(np.prod(x.shape[2:]))  # explicit sizes: N may be 0
        x4 = kernel_array(x, op).reshape(N, G, C // G, M)
        w = np.ones(C) if weight is None else weight
        b = np.zeros(C) if bias is None else bias
        w, b = (v.astype(x4.dtype, copy=False).reshape(G, C // G) for v in (w, b))
        out = np.empty_like(x4)
        mean, invstd = np.empty((N, G)), np.empty((N, G))
        kernels.group_norm_forward(x4, w, b, float(eps), out, mean, invstd)
        ctx.save_for_backward(x4, w, mean, invstd)
        ctx.shape = x.shape
        return out.reshape(x.shape)

    def backward(ctx, grad):
        x4, w, mean, invstd = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        g4 = np.ascontiguousarray(grad, dtype=x4.dtype).reshape(x4.shape)
        # dx in x's own shape (owned, not a view): a leaf keeps it without the engine's copy
        dx = np.empty(ctx.shape, x4.dtype) if need_x else None
        dx4 = dx.reshape(x4.shape) if need_x else np.empty((0, 0, 0, 0), x4.dtype)
        sum_g, sum_gxhat = np.empty(x4.shape[:3]), np.empty(x4.shape[:3])
        kernels.group_norm_backward(g4, x4, w, mean, invstd, dx4, sum_g, sum_gxhat, need_x)
        C = w.size
        return (dx,
                sum_gxhat.sum(axis=0).reshape(C) if need_w else None,
                sum_g.sum(axis=0).reshape(C) if need_b else None)


# ---- argument checks --------------------------------------------------------
def _array(t):
    """The ndarray behind a Tensor or array (None stays None)."""
    return t.data if isinstance(t, Tensor) else t


def _check_vector(op, name, v, C, x):
    if v is not None and tuple(v.shape) != (C,):
        raise ValueError(f"{op}: {name} must have shape ({C},) for an input with {C} channels "
                         f"(input {tuple(x.shape)}), got {tuple(v.shape)}")


# ---- functional forms -------------------------------------------------------
def batch_norm(input, running_mean, running_var, weight=None, bias=None, training=False,
               momentum=0.1, eps=1e-5):
    """Batch normalization (Ioffe & Szegedy 2015) with PyTorch's arguments.

    input: [N, C], [N, C, L] or [N, C, H, W]; statistics per channel over all other axes.
    running_mean, running_var: [C] arrays (or Tensors) or None. With ``training=True`` the
    batch statistics normalize and the running buffers are updated in place (biased variance
    to normalize, unbiased into running_var); with ``training=False`` the running buffers
    normalize. weight, bias: [C] or None.
    """
    op = "batch_norm"
    if input.ndim not in (2, 3, 4):
        raise ValueError(f"{op}: expected input [N, C], [N, C, L] or [N, C, H, W], got shape "
                         f"{tuple(input.shape)}")
    check_float(input, op)
    C = input.shape[1]
    rm, rv = _array(running_mean), _array(running_var)
    for name, v in (("running_mean", rm), ("running_var", rv), ("weight", weight),
                    ("bias", bias)):
        _check_vector(op, name, v, C, input)
    if not training and (rm is None or rv is None):
        raise ValueError(f"{op}: running_mean and running_var are needed when training=False")
    if training and int(np.prod(input.shape)) // C <= 1:
        raise ValueError(f"{op}: expected more than 1 value per channel when training, got "
                         f"input {tuple(input.shape)}")
    return BatchNormFunction.apply(input, weight, bias, running_mean=rm, running_var=rv,
                                   training=bool(training), momentum=float(momentum),
                                   eps=float(eps))


def layer_norm(input, normalized_shape, weight=None, bias=None, eps=1e-5):
    """Layer normalization (Ba et al. 2016): standardize over the trailing ``normalized_shape``.

    input: [*, *normalized_shape];  weight, bias: normalized_shape or None.
    """
    op = "layer_norm"
    check_float(input, op)
    shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
        else tuple(normalized_shape)
    k = len(shape)
    if k == 0 or tuple(input.shape[input.ndim - k:]) != shape:
        raise ValueError(f"{op}: input {tuple(input.shape)} does not end with normalized_shape "
                         f"{shape}")
    for name, v in (("weight", weight), ("bias", bias)):
        if v is not None and tuple(v.shape) != shape:
            raise ValueError(f"{op}: {name} must have shape {shape}, got {tuple(v.shape)}")
    return LayerNormFunction.apply(input, weight, bias, ndim=k, eps=float(eps))


def group_norm(input, num_groups, weight=None, bias=None, eps=1e-5):
    """Group normalization (Wu & He 2018): standardize each sample over groups of C/G channels
    (and all spatial positions); per-channel affine.

    input: [N, C, *];  weight, bias: [C] or None.  num_groups = 1 normalizes over (C, H, W)
    like layer norm (but with a per-channel affine); num_groups = C is instance norm.
    """
    return _group_norm("group_norm", input, num_groups, weight, bias, eps)


def _group_norm(op, input, num_groups, weight, bias, eps):
    """group_norm, its errors naming ``op`` (group_norm, or instance_norm that calls it)."""
    if input.ndim < 2:
        raise ValueError(f"{op}: expected input [N, C, *], got shape {tuple(input.shape)}")
    check_float(input, op)
    C = input.shape[1]
    if not isinstance(num_groups, (int, np.integer)) or num_groups < 1 or C % num_groups:
        raise ValueError(f"{op}: num_groups={num_groups!r} must be a positive divisor of the "
                         f"{C} channels of input {tuple(input.shape)}")
    for name, v in (("weight", weight), ("bias", bias)):
        _check_vector(op, name, v, C, input)
    return GroupNormFunction.apply(input, weight, bias, num_groups=int(num_groups),
                                   eps=float(eps), op=op)


def instance_norm(input, running_mean=None, running_var=None, weight=None, bias=None,
                  use_input_stats=True, momentum=0.1, eps=1e-5):
    """Instance normalization (Ulyanov et al. 2016), PyTorch's arguments: each channel of each
    sample standardized over its spatial positions, i.e. ``group_norm`` with num_groups = C.

    With running buffers and ``use_input_stats=True`` they are updated in place with the
    per-instance statistics averaged over the batch (unbiased variance, as PyTorch);
    ``use_input_stats=False`` normalizes with the running buffers (``batch_norm`` in
    evaluation mode). A composite of the primitives above. An empty batch (N = 0) leaves the
    running buffers as they are.
    """
    op = "instance_norm"
    if input.ndim < 3:
        raise ValueError(f"{op}: expected input [N, C, *] with spatial dims, got shape "
                         f"{tuple(input.shape)}")
    C = input.shape[1]
    if not use_input_stats:
        return batch_norm(input, running_mean, running_var, weight, bias, False, momentum, eps)
    rm, rv = _array(running_mean), _array(running_var)
    _check_vector(op, "running_mean", rm, C, input)
    _check_vector(op, "running_var", rv, C, input)
    out = _group_norm(op, input, C, weight, bias, eps)
    N, M = input.shape[0], int(np.prod(input.shape[2:]))
    if N == 0:  # an empty batch has no statistics to add to the running ones
        return out
    x = _array(input).reshape(N, C, M).astype(np.float64)
    if rm is not None:
        rm *= 1 - momentum
        rm += momentum * x.mean(axis=2).mean(axis=0)
    if rv is not None:
        rv *= 1 - momentum
        rv += momentum * (x.var(axis=2) * (M / max(M - 1, 1))).mean(axis=0)
    return out
