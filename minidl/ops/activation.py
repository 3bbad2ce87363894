"""Activation functions and softmax.

ReLU, leaky ReLU, ELU, sigmoid, tanh, softmax and log-softmax are primitives
(their gradients are short closed forms, cheaper than the composite's graph);
GELU is a composite of tanh, to show that a composite needs no backward.

dtypes: ReLU works on integers (as PyTorch); the others need floating point and
raise for integer tensors (``ops/checks.py``).
"""

from __future__ import annotations

import math

import numpy as np

from minidl.autograd.function import Function
from minidl.ops.checks import check_float, normalize_dim


class ReLU(Function):
    """z = max(a, 0);  dz/da = [a > 0]."""

    def forward(ctx, a):
        ctx.save_for_backward(a > 0)
        return np.maximum(a, 0)  # not a * (a > 0): that gives NaN at a = -inf

    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return grad * positive


class LeakyReLU(Function):
    """z = a if a > 0 else slope * a;  dz/da = 1 or slope."""

    def forward(ctx, a, slope=0.01):
        positive = a > 0
        ctx.save_for_backward(positive)
        ctx.slope = slope
        return np.where(positive, a, a * slope)

    def backward(ctx, grad):
        (positive,) = ctx.saved_tensors
        return np.where(positive, grad, grad * ctx.slope)


class ELU(Function):
    """z = a if a > 0 else alpha (e^a - 1);  dz/da = 1 or z + alpha (Clevert et al. 2015)."""

    def forward(ctx, a, alpha=1.0):
        out = np.where(a > 0, a, alpha * np.expm1(np.minimum(a, 0)))
        ctx.save_for_backward(a > 0, out)
        ctx.alpha = alpha
        return out

    def backward(ctx, grad):
        positive, out = ctx.saved_tensors
        return np.where(positive, grad, grad * (out + ctx.alpha))


class Sigmoid(Function):
    """z = 1 / (1 + e^-a);  dz/da = z (1 - z). Computed without overflow for large |a|."""

    def forward(ctx, a):
        # With e = exp(-|a|) <= 1 (never overflows): a >= 0 gives 1 / (1 + e),
        # a < 0 gives e / (1 + e). One exp, one where, one in-place division.
        e = np.exp(-np.abs(a))
        out = np.where(a >= 0, np.ones((), a.dtype), e)
        out /= 1 + e
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out * (1 - out)


class Tanh(Function):
    """z = tanh(a);  dz/da = 1 - z^2."""

    def forward(ctx, a):
        out = np.tanh(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * (1 - out * out)


class Softmax(Function):
    """s_i = e^(a_i - m) / sum_j e^(a_j - m) (m = max, for stability);
    dL/da_i = s_i (g_i - sum_j g_j s_j)."""

    def forward(ctx, a, dim=-1):
        shifted = np.exp(a - a.max(axis=dim, keepdims=True))
        out = shifted / shifted.sum(axis=dim, keepdims=True)
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    def backward(ctx, grad):
        (s,) = ctx.saved_tensors
        return s * (grad - (grad * s).sum(axis=ctx.dim, keepdims=True))


class LogSoftmax(Function):
    """z_i = a_i - logsumexp(a);  dL/da_i = g_i - softmax(a)_i sum_j g_j."""

    def forward(ctx, a, dim=-1):
        shifted = a - a.max(axis=dim, keepdims=True)
        out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
        ctx.save_for_backward(out)
        ctx.dim = dim
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad - np.exp(out) * grad.sum(axis=ctx.dim, keepdims=True)


# ---- functional forms -------------------------------------------------------
def relu(a):
    return ReLU.apply(a)


def leaky_relu(a, negative_slope=0.01):
    check_float(a, "leaky_relu")
    return LeakyReLU.apply(a, slope=negative_slope)


def elu(a, alpha=1.0):
    check_float(a, "elu")
    return ELU.apply(a, alpha=alpha)


def sigmoid(a):
    check_float(a, "sigmoid")
    return Sigmoid.apply(a)


def tanh(a):
    check_float(a, "tanh")
    return Tanh.apply(a)


def softmax(a, dim):
    """Softmax over ``dim``: non-negative, sums to 1 along that axis."""
    check_float(a, "softmax")
    return Softmax.apply(a, dim=normalize_dim(dim, a.ndim, "softmax"))


def log_softmax(a, dim):
    """log(softmax(a)) over ``dim``, computed stably."""
    check_float(a, "log_softmax")
    return LogSoftmax.apply(a, dim=normalize_dim(dim, a.ndim, "log_softmax"))


def gelu(a, approximate="tanh"):
    """GELU(a) = a Phi(a) (Hendrycks & Gimpel 2016), via the tanh approximation
    0.5 a (1 + tanh(sqrt(2/pi) (a + 0.044715 a^3))). A composite: no backward written."""
    if approximate != "tanh":
        raise ValueError(f"gelu: only approximate='tanh' is implemented, got {approximate!r}")
    check_float(a, "gelu")
    inner = math.sqrt(2 / math.pi) * (a + 0.044715 * a * a * a)
    return 0.5 * a * (1 + tanh(inner))
