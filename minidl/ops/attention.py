"""Scaled dot-product attention (Vaswani et al., "Attention Is All You Need", 2017), a composite.

    weights = softmax(Q K^T * scale + mask)        scale = 1 / sqrt(E) by default
    output  = dropout(weights) V

Q: [..., L, E] (L queries), K: [..., S, E] (S keys), V: [..., S, Ev] -> [..., L, Ev].
Each query's output is an average of the values, weighted by how well the query
matches each key; dividing by sqrt(E) keeps the dot products of unit-variance
vectors at unit variance, so the softmax does not saturate at initialization.

Written with matmul, softmax and dropout only: no backward to write (the
gradient of each piece is already known). ``F.scaled_dot_product_attention``
follows PyTorch's signature and its mask convention:

* a **bool** ``attn_mask`` is True where a query *may* attend to a key
  (``nn.MultiheadAttention`` uses the opposite: True there means *masked*);
* a **float** ``attn_mask`` is added to the scores (use -inf to forbid a pair);
* ``is_causal=True`` lets query i see keys 0..i only (upper-left aligned).

One difference from PyTorch: a query that may attend to no key at all (a row
of the mask that forbids everything) is an error here, where PyTorch returns
NaN for it: a softmax over nothing has no meaning, and a NaN would spread
silently through the rest of the network.
"""

from __future__ import annotations

import math

import numpy as np

from minidl.ops.activation import softmax
from minidl.ops.checks import check_float
from minidl.ops.dropout import dropout
from minidl.ops.matmul import matmul
from minidl.ops.shape import transpose

OP = "scaled_dot_product_attention"


def _raw(x) -> np.ndarray:
    return np.asarray(getattr(x, "data", x))


def additive_mask(attn_mask, is_causal: bool, query_len: int, key_len: int, dtype,
                  op: str = OP):
    """The mask as an array added to the scores (0 = attend, -inf = do not), or None.

    attn_mask: None, bool (True = may attend) or float (added), broadcastable to
    [..., L, S]; is_causal: the lower-triangular L x S mask (query i sees keys <= i).
    """
    if is_causal:
        if attn_mask is not None:
            raise ValueError(f"{op}: give attn_mask or is_causal=True, not both")
        attn_mask = np.tril(np.ones((query_len, key_len), dtype=bool))
    if attn_mask is None:
        return None
    mask = _raw(attn_mask)
    if mask.ndim < 2 or mask.shape[-2:] not in ((query_len, key_len), (1, key_len),
                                                (query_len, 1), (1, 1)):
        raise ValueError(f"{op}: attn_mask must broadcast to [..., L, S] = [..., {query_len}, "
                         f"{key_len}] (L queries, S keys), got shape {mask.shape}")
    if mask.dtype == np.bool_:
        return np.where(mask, 0.0, -np.inf).astype(dtype)
    check_float(mask, op, "attn_mask (bool or float)")
    return mask.astype(dtype)


def _check_rows_attend(mask: np.ndarray, op: str) -> None:
    """Every query must be allowed at least one key (see the module docstring)."""
    row_open = np.isfinite(mask).any(axis=-1) | (mask.shape[-1] == 0)
    if not row_open.all():
        where = np.unravel_index(int(np.argmin(row_open)), row_open.shape)
        raise ValueError(f"{op}: the mask forbids every key for query {where[-1]} (mask index "
                         f"{tuple(int(i) for i in where)}); softmax over no keys is undefined")


def attention_weights(query, key, attn_mask=None, is_causal: bool = False, scale=None,
                      op: str = OP):
    """softmax(Q K^T * scale + mask) over the keys: [..., L, S], each row summing to 1.

    query: [..., L, E], key: [..., S, E] (leading axes broadcast); attn_mask, is_causal:
    as ``scaled_dot_product_attention``; scale: default 1 / sqrt(E).
    """
    for name, x in (("query", query), ("key", key)):
        check_float(x, op, name)
        if x.ndim < 2:
            raise ValueError(f"{op}: {name} must be [..., length, E], got shape {x.shape}")
    if query.shape[-1] != key.shape[-1]:
        raise ValueError(f"{op}: query and key need the same embedding size E, got query "
                         f"{query.shape} and key {key.shape}")
    try:
        batch = np.broadcast_shapes(query.shape[:-2], key.shape[:-2])
    except ValueError:
        raise ValueError(f"{op}: the leading (batch, head) axes of query {query.shape} and "
                         f"key {key.shape} do not broadcast") from None
    query_len, key_len = query.shape[-2], key.shape[-2]
    scale = 1.0 / math.sqrt(query.shape[-1]) if scale is None else float(scale)
    scores = matmul(query, transpose(key, -2, -1)) * scale
    mask = additive_mask(attn_mask, is_causal, query_len, key_len, query.dtype, op)
    if mask is not None:
        try:
            full = np.broadcast_to(mask, batch + (query_len, key_len))
        except ValueError:
            raise ValueError(f"{op}: attn_mask {mask.shape} does not broadcast to the scores "
                             f"{batch + (query_len, key_len)}") from None
        _check_rows_attend(full, op)
        scores = scores + mask
    return softmax(scores, -1)


def scaled_dot_product_attention(query, key, value, attn_mask=None, dropout_p: float = 0.0,
                                 is_causal: bool = False, scale=None):
    """softmax(Q K^T / sqrt(E) + mask) V, with PyTorch's signature (torch.nn.functional).

    query: [..., L, E]; key: [..., S, E]; value: [..., S, Ev] -> [..., L, Ev].
    attn_mask: bool (True = may attend) or float (added to the scores), broadcastable
    to [..., L, S]; dropout_p: dropout on the weights (applied whenever > 0, as
    PyTorch's function; pass 0.0 in eval); is_causal: query i sees keys 0..i;
    scale: default 1 / sqrt(E).
    """
    check_float(value, OP, "value")
    if value.ndim < 2 or value.shape[-2] != key.shape[-2]:
        raise ValueError(f"{OP}: key and value need the same number of positions S, got key "
                         f"{key.shape} and value {value.shape}")
    weights = attention_weights(query, key, attn_mask, is_causal, scale)
    return matmul(dropout(weights, dropout_p), value)
