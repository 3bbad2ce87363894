"""Dropout (Srivastava et al. 2014), inverted: scale the kept units at training time.

    m_i ~ Bernoulli(1 - p)          (keep with probability 1 - p)
    y   = x * m / (1 - p)           so that E[y] = x and evaluation needs no rescaling

A composite: ``x * mask`` with a constant mask, whose gradient (mask / (1 - p)
times the incoming gradient) the multiplication already knows. The mask is drawn
from ``minidl.random.generator()``, so ``manual_seed`` fixes it.
"""

from __future__ import annotations

import numpy as np

from minidl import random
from minidl.ops.checks import check_float
from minidl.ops.elementwise import mul


def check_dropout_p(p, op: str) -> None:
    """Raise naming ``op`` unless ``p`` is a probability in [0, 1) (shared with nn.Dropout,
    nn.RNN, ...)."""
    if not isinstance(p, (int, float)) or isinstance(p, bool) or not 0 <= p < 1:
        raise ValueError(f"{op}: dropout probability p must be in [0, 1), got {p!r}")


def _mask(shape, p: float, dtype, generator) -> np.ndarray:
    """keep / (1 - p): 0 for dropped units, 1 / (1 - p) for kept ones."""
    rng = random.generator() if generator is None else generator
    keep = rng.random(shape) >= p
    return keep.astype(dtype) / np.asarray(1 - p, dtype=dtype)


def dropout(x, p: float = 0.5, training: bool = True, generator=None):
    """Zero each element with probability ``p`` and scale the rest by 1 / (1 - p).

    x: any shape. With ``p == 0`` or ``training=False`` x is returned unchanged.
    """
    check_dropout_p(p, "dropout")
    check_float(x, "dropout")
    if not training or p == 0:
        return x
    return mul(x, _mask(x.shape, p, x.dtype, generator))


def dropout2d(x, p: float = 0.5, training: bool = True, generator=None):
    """Channel dropout (Tompson et al. 2015): zero whole feature maps.

    x: [N, C, H, W] (or [N, C, L]); one Bernoulli draw per (n, c), broadcast over space.
    """
    check_dropout_p(p, "dropout2d")
    check_float(x, "dropout2d")
    if x.ndim < 3:
        raise ValueError(f"dropout2d: expected input [N, C, ...] with at least 3 dims, "
                         f"got shape {x.shape}")
    if not training or p == 0:
        return x
    shape = x.shape[:2] + (1,) * (x.ndim - 2)
    return mul(x, _mask(shape, p, x.dtype, generator))
