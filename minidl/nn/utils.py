"""Gradient clipping, called between ``loss.backward()`` and ``optimizer.step()``.

    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), max_norm=1.0)
    opt.step()

Clipping by norm (Pascanu, Mikolov & Bengio, 2013, "On the difficulty of
training recurrent neural networks") rescales all gradients together, so the
update keeps its direction and only its length is capped; it tames the rare
exploding step of an RNN. Clipping by value clamps each element separately.
Both change ``p.grad`` in place and skip parameters whose ``.grad`` is None.
"""

from __future__ import annotations

import math
import numbers
import warnings

import numpy as np

from minidl.autograd.tensor import Tensor


def _grads(op: str, parameters) -> list[np.ndarray]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for p in params:
        if not isinstance(p, Tensor):
            raise TypeError(f"{op}: expected Tensors (e.g. model.parameters()), "
                            f"got {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def clip_grad_norm_(parameters, max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False, foreach=None) -> Tensor:
    """Scale all gradients by one factor so that their joint norm is at most ``max_norm``.

        total = (sum over every gradient element g of |g|^norm_type)^(1/norm_type)
              = max |g|                                    for norm_type = inf
        coef = max_norm / (total + 1e-6)
        if coef < 1:  g <- g * coef                        for every gradient

    (the 1e-6 is PyTorch's, against division by zero). Returns the total norm
    *before* clipping as a 0-d Tensor (use ``.item()``), as PyTorch does: it is
    worth logging, since a norm that keeps hitting the cap means the lr is too high.

    A total norm that is inf or nan (a gradient overflowed) raises RuntimeError
    when ``error_if_nonfinite=True``, before any gradient changes. The default is
    False, as in PyTorch 2.x; then the rule above is applied as PyTorch applies it
    (coef = 0 for an inf norm, nan for a nan norm, so the gradients become zeros
    and nans) and a RuntimeWarning says so: the next optimizer step would write
    nans into the weights, so skip it. ``foreach`` is accepted for PyTorch's
    signature and ignored (it selects a CUDA fast path there).
    """
    op = "clip_grad_norm_"
    norm_type = float(norm_type)
    if not isinstance(max_norm, numbers.Real) or not max_norm >= 0:
        raise ValueError(f"{op}: max_norm must be a number >= 0, got {max_norm!r}")
    if not norm_type > 0:
        raise ValueError(f"{op}: norm_type must be > 0 (or inf), got {norm_type}")
    grads = _grads(op, parameters)
    if not grads:
        return Tensor(np.float32(0.0))
    if math.isinf(norm_type):
        total = max(float(np.max(np.abs(g))) if g.size else 0.0 for g in grads)
    else:
        total = sum(_power_sum(g, norm_type) for g in grads) ** (1.0 / norm_type)
    coef = max_norm / (total + 1e-6)
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise RuntimeError(f"{op}: the total norm of the gradients is {total} (nan or "
                               "inf); pass error_if_nonfinite=False to clip anyway")
        warnings.warn(f"{op}: the total norm of the gradients is {total}; they were multiplied "
                      f"by {coef} as PyTorch does, so they now hold nan (skip this optimizer "
                      "step, or pass error_if_nonfinite=True to raise instead)",
                      RuntimeWarning, stacklevel=2)
    if not coef >= 1:  # also when coef is nan, as in PyTorch
        with np.errstate(invalid="ignore"):  # inf * 0: already reported above
            for g in grads:
                g *= coef
    return Tensor(np.asarray(total, dtype=grads[0].dtype))


def _power_sum(g, p: float) -> float:
    """sum over g of |g|^p, accumulated in float64. For p = 2 as np.square(g) computed in
    float64: the same numbers as |float64(g)|^2 (NumPy squares for ** 2.0), without a
    float64 copy of g and an abs pass first, which for a large weight took most of the time."""
    if p == 2.0:
        return float(np.sum(np.square(g, dtype=np.float64)))
    return float(np.sum(np.abs(g.astype(np.float64)) ** p))


def clip_grad_value_(parameters, clip_value: float) -> None:
    """Clamp every gradient element into [-clip_value, clip_value], in place."""
    op = "clip_grad_value_"
    if not isinstance(clip_value, numbers.Real) or not clip_value >= 0:
        raise ValueError(f"{op}: clip_value must be a number >= 0, got {clip_value!r}")
    for g in _grads(op, parameters):
        np.clip(g, -clip_value, clip_value, out=g)
