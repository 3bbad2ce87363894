"""Gaussian helpers for latent-variable models: the closed-form KL and the Gaussian NLL.

Both are composites of elementwise primitives (``exp``, ``log``, ``mul`` ...),
so they have no backward of their own: autograd differentiates the formula.

* ``kl_normal(mu, logvar)``: KL(N(mu, diag exp(logvar)) || N(0, I)), the
  regularizer of a variational autoencoder (Kingma & Welling 2014,
  "Auto-Encoding Variational Bayes", appendix B), or against any diagonal
  Gaussian prior.
* ``gaussian_nll_loss(input, target, var)``: PyTorch's Gaussian negative
  log-likelihood, with its signature, its shapes for ``var`` and its clamp
  (Nix & Weigend 1994, "Estimating the mean and variance of the target
  probability distribution").
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.ops.checks import check_float
from minidl.ops.elementwise import add, div, exp, log, mul, sub
from minidl.ops.loss import _as_tensor, check_reduction, reduce_loss
from minidl.ops.reduce import sum

_KL_REDUCTIONS = ("none", "mean", "sum", "batchmean")


def _same_or_broadcast(shape, to_shape, op: str, name: str, into: str) -> None:
    """``shape`` must broadcast to ``to_shape`` without changing it (same ndim, dims equal or 1)."""
    ok = len(shape) == len(to_shape) and all(a in (b, 1) for a, b in zip(shape, to_shape))
    if not ok:
        raise ValueError(f"{op}: {name} has shape {tuple(shape)}, expected {into}'s shape "
                         f"{tuple(to_shape)} (or that shape with some dimensions equal to 1)")


def kl_normal(mu, logvar, prior_mu=None, prior_logvar=None, reduction: str = "none"):
    """KL divergence between diagonal Gaussians, KL(q || p), in closed form.

    q = N(mu, diag(sigma^2)) with sigma^2 = exp(logvar); p = N(prior_mu,
    diag(exp(prior_logvar))), the standard normal N(0, I) by default. Per
    element (the dimensions are independent, so the KL of the vector is the
    sum over its elements):

        KL = 1/2 (logvar_p - logvar + (sigma^2 + (mu - mu_p)^2) / sigma_p^2 - 1)
           = 1/2 (mu^2 + sigma^2 - logvar - 1)                 against N(0, 1)

    It is 0 exactly when q = p and positive otherwise. Taking the log-variance
    (what a VAE's encoder outputs) keeps sigma^2 positive without a constraint.

    Shapes: ``mu``, ``logvar``: [N, D] (any shape, the same for both);
    ``prior_mu``, ``prior_logvar``: that shape, or broadcastable to it without
    changing it (e.g. [1, D]), or None for 0.

    reduction: 'none' (per element, as ``torch.distributions.kl_divergence``
    of two ``Normal``s), 'sum', 'mean' (over all elements), or 'batchmean'
    (sum / N: the KL per sample of a [N, D] batch, what the VAE's loss needs).
    """
    op = "kl_normal"
    check_reduction(reduction, op, _KL_REDUCTIONS)
    if not isinstance(mu, Tensor):
        raise TypeError(f"{op}: mu must be a Tensor, got {type(mu).__name__}")
    check_float(mu, op, "mu")
    logvar = _as_tensor(logvar, mu)
    check_float(logvar, op, "logvar")
    if tuple(logvar.shape) != tuple(mu.shape):
        raise ValueError(f"{op}: logvar has shape {tuple(logvar.shape)}, expected mu's shape "
                         f"{tuple(mu.shape)}")
    if prior_mu is None and prior_logvar is None:
        kl = mul(sub(add(mul(mu, mu), exp(logvar)), add(logvar, 1.0)), 0.5)
    else:
        prior_mu = _as_tensor(0.0 if prior_mu is None else prior_mu, mu)
        prior_logvar = _as_tensor(0.0 if prior_logvar is None else prior_logvar, mu)
        for name, prior in (("prior_mu", prior_mu), ("prior_logvar", prior_logvar)):
            if prior.ndim:  # a 0-d prior (a number) broadcasts to anything
                _same_or_broadcast(prior.shape, mu.shape, op, name, "mu")
        diff = sub(mu, prior_mu)
        ratio = div(add(exp(logvar), mul(diff, diff)), exp(prior_logvar))
        kl = mul(sub(add(sub(prior_logvar, logvar), ratio), 1.0), 0.5)
    if reduction == "batchmean":
        return div(sum(kl), mu.shape[0] if mu.ndim else 1)
    return reduce_loss(kl, reduction, op)


def _variance_tensor(var, input: Tensor, op: str) -> Tensor:
    """``var`` as a Tensor shaped like ``input`` (PyTorch's three shapes), checked >= 0."""
    if isinstance(var, numbers.Real) and not isinstance(var, bool):
        var = Tensor(np.full(input.shape, var, dtype=input.dtype))
    var = _as_tensor(var, input)
    check_float(var, op, "var")
    shape, wanted = tuple(var.shape), tuple(input.shape)
    if shape != wanted:
        if input.ndim and shape == wanted[:-1]:  # one variance per row: [N, D] and [N]
            var = var.reshape(*shape, 1)
        elif not (input.ndim and shape[:-1] == wanted[:-1] and shape[-1:] == (1,)):
            raise ValueError(
                f"{op}: var has shape {shape}; expected input's shape {wanted}, or {wanted[:-1]} "
                f"or {wanted[:-1] + (1,)} (one variance shared along the last dimension)")
    if np.any(var.data < 0):
        raise ValueError(f"{op}: var has negative entries (min {var.data.min():.3g}); "
                         "a variance is >= 0")
    return var


def gaussian_nll_loss(input, target, var, full: bool = False, eps: float = 1e-6,
                      reduction: str = "mean"):
    """Negative log-likelihood of ``target`` under N(input, var), PyTorch's ``gaussian_nll_loss``.

        loss_i = 1/2 (log(max(var_i, eps)) + (input_i - target_i)^2 / max(var_i, eps))
                 (+ 1/2 log(2 pi) if full)

    which is -log N(target_i; input_i, var_i). With a fixed var it is the MSE
    divided by 2 var (plus a constant): the variance sets how much one squared
    error costs against everything else in the loss.

    Shapes: ``input``: [N, *]; ``target``: the same, or the same with some
    dimensions equal to 1; ``var``: the same as input (heteroscedastic: one
    variance per element), or input's shape without its last dimension, or with
    the last dimension 1 (one variance shared along the last dimension), or a
    number (one variance for all). Negative variances are an error.

    The clamp at ``eps`` changes the value only: as in PyTorch (which clamps a
    copy of var under no_grad), the gradient with respect to var is that of the
    formula at the clamped value, passed straight through to var.

    reduction: 'none', 'mean' (over all elements) or 'sum'.
    """
    op = "gaussian_nll_loss"
    check_reduction(reduction, op)
    if not isinstance(input, Tensor):
        raise TypeError(f"{op}: input must be a Tensor, got {type(input).__name__}")
    check_float(input, op)
    target = _as_tensor(target, input)
    _same_or_broadcast(target.shape, input.shape, op, "target", "input")
    if not (isinstance(eps, numbers.Real) and eps > 0):
        raise ValueError(f"{op}: eps must be a number > 0, got {eps!r}")
    var = _variance_tensor(var, input, op)
    # max(var, eps) in the forward pass, the identity in the backward pass.
    lift = np.maximum(var.data, eps) - var.data
    var = add(var, Tensor(lift.astype(var.dtype)))
    diff = sub(input, target)
    loss = mul(add(log(var), div(mul(diff, diff), var)), 0.5)
    if full:
        loss = add(loss, 0.5 * math.log(2 * math.pi))
    return reduce_loss(loss, reduction, op)
