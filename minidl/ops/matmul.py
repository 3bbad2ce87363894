"""Matrix product, batched and broadcast like ``np.matmul`` (and PyTorch's strict forms
``mm`` for two matrices and ``bmm`` for two equal-length stacks of matrices).

    C = A B,   dL/dA = dL/dC B^T,   dL/dB = A^T dL/dC

For stacks of matrices ([..., n, k] @ [..., k, m]) the batch axes broadcast; the
engine sums the gradient over broadcast batch axes. 1-D operands are treated
as a row (left) or a column (right) vector, as NumPy does.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function


def _swap_last(x):
    return np.swapaxes(x, -1, -2)


class MatMul(Function):
    """C = A @ B with the gradients above (BLAS does the work)."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.matmul(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        # Lift 1-D operands to matrices so one formula covers every case.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g = grad  # give grad the axes the 1-D operands lost: [..., n, m]
        if b.ndim == 1:
            g = np.expand_dims(g, -1)
        if a.ndim == 1:
            g = np.expand_dims(g, -2)
        grad_a = grad_b = None
        if need_a:
            grad_a = np.matmul(g, _swap_last(b2))
            if a.ndim == 1:
                grad_a = grad_a.reshape(-1, a.shape[0]).sum(axis=0)
        if need_b:
            grad_b = np.matmul(_swap_last(a2), g)
            if b.ndim == 1:
                grad_b = grad_b.reshape(-1, b.shape[0]).sum(axis=0)
        return grad_a, grad_b


def matmul(a, b):
    """Matrix product ``a @ b``: [..., n, k] @ [..., k, m] -> [..., n, m]."""
    if a.ndim == 0 or b.ndim == 0:
        raise ValueError(
            f"matmul: both operands need at least 1 dimension, got {a.shape} and {b.shape}"
        )
    k_a = a.shape[-1]
    k_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
    if k_a != k_b:
        raise ValueError(
            f"matmul: shapes {a.shape} and {b.shape} cannot be multiplied ({k_a} != {k_b})"
        )
    try:
        np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except ValueError:
        raise ValueError(
            f"matmul: batch dimensions of {a.shape} and {b.shape} do not broadcast"
        ) from None
    return MatMul.apply(a, b)


def mm(a, b):
    """Product of two matrices: [n, k] @ [k, m] -> [n, m] (no broadcasting, as PyTorch)."""
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError(f"mm: expects two 2-D tensors, got shapes {a.shape} and {b.shape}")
    return matmul(a, b)


def bmm(a, b):
    """Batched product: [B, n, k] @ [B, k, m] -> [B, n, m] (same B, no broadcasting)."""
    if a.ndim != 3 or b.ndim != 3 or a.shape[0] != b.shape[0]:
        raise ValueError(f"bmm: expects two 3-D tensors with the same batch size, got shapes "
                         f"{a.shape} and {b.shape}")
    return matmul(a, b)
