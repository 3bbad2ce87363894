"""Embedding: a lookup table of learned vectors, one row per token id.

    y[..., :] = W[idx[...], :]        idx: [...] integers, W: [num_embeddings, dim] -> y: [..., dim]

A composite: integer indexing ``W[idx]`` (``getitem``) is already differentiable,
and its backward scatter-adds, so a token that appears k times in the batch
gets the sum of its k gradients.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.elementwise import where
from minidl.ops.shape import GetItem


def _indices(idx, num_embeddings: int, op: str) -> np.ndarray:
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
    array = _indices(idx, weight.shape[0], "embedding")
    rows = GetItem.apply(weight, index=array)
    if padding_idx is None:
        return rows
    # Same values, but the gradient only flows where the index is not padding.
    not_padding = (array != padding_idx)[..., None]
    return where(not_padding, rows, rows.detach())


class Embedding(Module):
    """A table of ``num_embeddings`` vectors of size ``embedding_dim``, initialized N(0, 1).

    Args:
        num_embeddings: vocabulary size V.
        embedding_dim: vector size D.
        padding_idx: this row starts at zero and is never updated by gradients.

    Shapes: idx [...] integers in [0, V) -> [..., D].
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype=None):
        super().__init__()
        if padding_idx is not None:
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"Embedding: padding_idx {padding_idx} must be within "
                                 f"[-{num_embeddings}, {num_embeddings})")
            padding_idx %= num_embeddings
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        self.padding_idx = padding_idx
        shape = (num_embeddings, embedding_dim)
        self.weight = Parameter(np.zeros(shape, dtype=dtype or np.float32))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.normal_(self.weight)
        if self.padding_idx is not None:
            self.weight.data[self.padding_idx] = 0

    def forward(self, idx):
        array = _indices(idx, self.num_embeddings, "Embedding")
        return embedding(array, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
