"""A transposing copy, tile by tile.

``nn.Linear`` computes x W^T with a transposed view of W, so the gradient that reaches
the weight is a transposed view too, and the engine stores a C-contiguous copy of it as
``W.grad``. NumPy copies a transposed matrix in the order of the output, reading the
input a whole row apart at every step: for a large weight (a detector's fully connected
head, millions of entries) that strided walk misses the cache on nearly every element
and takes many times as long as a plain copy. ``transpose_into`` copies square tiles
instead: the T x T entries of a tile come from T rows of the input and go to T rows of
the output, all of which stay in the L1 cache while the tile is copied.

    transpose_into:  out[i, j] = a[j, i],  tile by tile
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit

TILE = 16  # tile side: 16 x 16 float32 = 1 KB in and out


@njit
def transpose_into(a, out):
    """out[i, j] = a[j, i].  a: [C, R] (C-contiguous), out: [R, C] (C-contiguous, written)."""
    C, R = a.shape
    for j0 in range(0, C, TILE):
        j1 = min(j0 + TILE, C)
        for i0 in range(0, R, TILE):
            for i in range(i0, min(i0 + TILE, R)):
                row = out[i]
                for j in range(j0, j1):
                    row[np.uint64(j)] = a[j, i]


# ---- plain-NumPy twin ----------------------------------------------------------
def transpose_reference(a):
    """a.T as a new C-contiguous array (NumPy's strided copy)."""
    return np.ascontiguousarray(a.T)
