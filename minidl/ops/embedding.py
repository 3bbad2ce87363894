"""embedding: a lookup table of learned vectors, one row per token id.

    y[..., :] = W[idx[...], :]        idx: [...] integers, W: [num_embeddings, dim] -> y: [..., dim]

A composite: integer indexing ``W[idx]`` (``getitem``) is already differentiable,
and its backward scatter-adds, so a token that appears k times in the batch
gets the sum of its k gradients.
The layer that owns the table is ``nn.Embedding`` (``minidl/nn/embedding.py``).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.ops.elementwise import where
from minidl.ops.shape import GetItem


def check_indices(idx, num_embeddings: int, op: str) -> np.ndarray:
    """The index array, checked: integer dtype and every value in [0, num_embeddings)."""
    array = idx.data if isinstance(idx, Tensor) else np.asarray(idx)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{op}: indices must be integers, got dtype {array.dtype}")
    if array.size and (array.min() < 0 or array.max() >= num_embeddings):
        bad = array.min() if array.min() < 0 else array.max()
        raise IndexError(f"{op}: index {int(bad)} is out of range for {num_embeddings} "
                         f"embeddings (valid 0..{num_embeddings - 1})")
    return array


def embedding(idx, weight, padding_idx: int | None = None):
    """Rows of ``weight`` picked by ``idx``.  idx: [...] ints, weight: [V, D] -> [..., D].

    Rows looked up at ``padding_idx`` get no gradient (their value is returned as is).
    """
    if weight.ndim != 2:
        raise ValueError(f"embedding: weight must be 2-D [num_embeddings, dim], "
                         f"got shape {weight.shape}")
    array = check_indices(idx, weight.shape[0], "embedding")
    rows = GetItem.apply(weight, index=array)
    if padding_idx is None:
        return rows
    # Same values, but the gradient only flows where the index is not padding.
    not_padding = (array != padding_idx)[..., None]
    return where(not_padding, rows, rows.detach())
