"""Embedding: a layer that owns a lookup table of learned vectors, one row per token id.

    y[..., :] = W[idx[...], :]        idx: [...] integers, W: [num_embeddings, dim] -> y: [..., dim]

The lookup is ``F.embedding`` in ``minidl/ops/embedding.py``; this module owns W.
"""

from __future__ import annotations

import numpy as np

from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.embedding import check_indices, embedding


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
        array = check_indices(idx, self.num_embeddings, "Embedding")
        return embedding(array, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        text = f"{self.num_embeddings}, {self.embedding_dim}"
        return text + (f", padding_idx={self.padding_idx}" if self.padding_idx is not None else "")
