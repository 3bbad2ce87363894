"""Multi-head attention and the Transformer's encoder and decoder layers (Vaswani et al. 2017).

PyTorch's names, argument order, parameter names and shapes, so that a state dict
carries over (``minidl/utils/torch_bridge.py``):

* ``MultiheadAttention(embed_dim, num_heads, dropout, bias, add_bias_kv, add_zero_attn,
  kdim, vdim, batch_first)`` with ``in_proj_weight`` [3E, E] (the query, key and value
  projections stacked; ``q_proj_weight``, ``k_proj_weight``, ``v_proj_weight`` when
  kdim or vdim differ from E), ``in_proj_bias`` [3E] and ``out_proj`` (a Linear E -> E):

      head_h = attention(Q W_q^h, K W_k^h, V W_v^h)       (h = 1..H, each of size E / H)
      output = concat(head_1, ..., head_H) W_o + b_o

  Each head looks at the sequence through its own E / H-dimensional projection, so
  different heads can attend to different positions at the same cost as one head of
  size E. The attention itself is ``attention_weights`` in ``minidl/ops/attention.py``.
* ``TransformerEncoderLayer``: self-attention, then a two-layer feed-forward network,
  each wrapped as x + dropout(sublayer(x)) and layer-normalized (after the sum by
  default, as the paper; before it with ``norm_first=True``).
* ``TransformerDecoderLayer``: self-attention over the targets, then attention from the
  targets to the encoder's output ("memory"), then the feed-forward network.

Masks follow ``nn.MultiheadAttention``: a **bool** ``attn_mask`` or
``key_padding_mask`` is True where attention is *not allowed* (the opposite of
``F.scaled_dot_product_attention``'s bool mask); a float mask is added to the scores.
Layouts: [L, N, E] (sequence first, PyTorch's default) or [N, L, E] with
``batch_first=True``; a 2-D [L, E] input is one unbatched sequence.
Two extra keys, as PyTorch's options: ``add_bias_kv`` appends a learned key and value
(``bias_k``, ``bias_v`` [1, 1, E]) to every sequence after the projections, and
``add_zero_attn`` appends an all-zero key and value to every head; either gives each
query somewhere to put attention when no real key fits (every mask is extended so that
the added keys are always allowed).
"""

from __future__ import annotations

import numpy as np

from minidl.nn import init
from minidl.nn.dropout import Dropout
from minidl.nn.linear import Linear
from minidl.nn.module import Module, Parameter
from minidl.nn.norm import LayerNorm
from minidl.ops.activation import gelu, relu
from minidl.ops.attention import attention_weights
from minidl.ops.dropout import dropout
from minidl.ops.linear import linear
from minidl.ops.matmul import matmul
from minidl.ops.shape import cat, transpose

ACTIVATIONS = {"relu": relu, "gelu": gelu}


class MultiheadAttention(Module):
    """Multi-head attention (PyTorch's ``nn.MultiheadAttention``).

    Args:
        embed_dim: E, the model width (query size and output size).
        num_heads: H; E must be divisible by H (each head has E / H dimensions).
        dropout: dropout on the attention weights, in training mode.
        bias: biases in the input and output projections.
        add_bias_kv: append a learned key and value to every sequence (``bias_k``,
            ``bias_v``, [1, 1, E], Xavier-normal init as PyTorch).
        add_zero_attn: append an all-zero key and value to every head.
        kdim, vdim: key and value sizes (default E).
        batch_first: inputs and outputs [N, L, E] instead of [L, N, E].

    ``forward(query, key, value, key_padding_mask=None, need_weights=True,
    attn_mask=None, average_attn_weights=True, is_causal=False)`` ->
    ``(attn_output, attn_weights)``: the output has the query's shape; the weights
    are [N, L, S] averaged over heads (or [N, H, L, S]), None if not ``need_weights``.
    attn_mask: [L, S] or [N * H, L, S]; key_padding_mask: [N, S] (True = ignore that key).
    """

    def __init__(self, embed_dim: int, num_heads: int, dropout: float = 0.0, bias: bool = True,
                 add_bias_kv: bool = False, add_zero_attn: bool = False, kdim=None, vdim=None,
                 batch_first: bool = False, dtype=None):
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0 or embed_dim % num_heads:
            raise ValueError(f"MultiheadAttention: embed_dim must be a positive multiple of "
                             f"num_heads, got embed_dim={embed_dim}, num_heads={num_heads}")
        self.embed_dim, self.num_heads = embed_dim, num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self._qkv_same_embed_dim = self.kdim == embed_dim and self.vdim == embed_dim
        self.dropout, self.batch_first = dropout, batch_first
        dtype = dtype or np.float32
        if self._qkv_same_embed_dim:
            self.in_proj_weight = Parameter(np.zeros((3 * embed_dim, embed_dim), dtype))
            for name in ("q_proj_weight", "k_proj_weight", "v_proj_weight"):
                self.register_parameter(name, None)
        else:
            self.q_proj_weight = Parameter(np.zeros((embed_dim, embed_dim), dtype))
            self.k_proj_weight = Parameter(np.zeros((embed_dim, self.kdim), dtype))
            self.v_proj_weight = Parameter(np.zeros((embed_dim, self.vdim), dtype))
            self.register_parameter("in_proj_weight", None)
        if bias:
            self.in_proj_bias = Parameter(np.zeros(3 * embed_dim, dtype))
        else:
            self.register_parameter("in_proj_bias", None)
        self.out_proj = Linear(embed_dim, embed_dim, bias=bias, dtype=dtype)
        if add_bias_kv:
            self.bias_k = Parameter(np.zeros((1, 1, embed_dim), dtype))
            self.bias_v = Parameter(np.zeros((1, 1, embed_dim), dtype))
        else:
            self.bias_k = self.bias_v = None
        self.add_zero_attn = add_zero_attn
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        """PyTorch's init: Xavier-uniform projections, zero biases (out_proj.weight keeps
        Linear's default)."""
        if self._qkv_same_embed_dim:
            init.xavier_uniform_(self.in_proj_weight)
        else:
            for weight in (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight):
                init.xavier_uniform_(weight)
        if self.in_proj_bias is not None:
            init.zeros_(self.in_proj_bias)
            init.zeros_(self.out_proj.bias)
        if self.bias_k is not None:
            init.xavier_normal_(self.bias_k)
            init.xavier_normal_(self.bias_v)

    def projection(self, which: int):
        """(weight, bias) of the query (0), key (1) or value (2) projection."""
        e = self.embed_dim
        if self._qkv_same_embed_dim:
            weight = self.in_proj_weight[which * e:(which + 1) * e]
        else:
            weight = (self.q_proj_weight, self.k_proj_weight, self.v_proj_weight)[which]
        bias = None if self.in_proj_bias is None else self.in_proj_bias[which * e:(which + 1) * e]
        return weight, bias

    def forward(self, query, key, value, key_padding_mask=None, need_weights: bool = True,
                attn_mask=None, average_attn_weights: bool = True, is_causal: bool = False):
        batched = query.ndim == 3
        self._check_inputs(query, key, value, batched)
        if is_causal and attn_mask is None:
            raise ValueError("MultiheadAttention: is_causal=True is a hint that attn_mask is "
                             "causal; pass the mask too (e.g. an upper-triangular bool mask)")
        if not batched:           # one sequence: a batch of one, sequence first
            query, key, value = (x.unsqueeze(1) for x in (query, key, value))
            if key_padding_mask is not None:
                key_padding_mask = np.asarray(getattr(key_padding_mask, "data",
                                                      key_padding_mask))[None]
        elif self.batch_first:    # the maths below is sequence first, as PyTorch's
            query, key, value = (transpose(x, 0, 1) for x in (query, key, value))
        output, weights = self._attend(query, key, value, key_padding_mask, attn_mask)
        if not batched:
            output = output.squeeze(1)
        elif self.batch_first:
            output = transpose(output, 0, 1)
        if not need_weights:
            return output, None
        if average_attn_weights:
            weights = weights.mean(dim=1)
        return output, weights if batched else weights.squeeze(0)

    def _attend(self, query, key, value, key_padding_mask, attn_mask):
        """query [L, N, E], key [S, N, kdim], value [S, N, vdim] -> ([L, N, E], [N, H, L, S])."""
        target_len, batch, _ = query.shape
        source_len = key.shape[0]
        heads, head_dim = self.num_heads, self.head_dim
        mask = self._merged_mask(attn_mask, key_padding_mask, batch, target_len, source_len,
                                 query.dtype)
        q, k, v = (linear(x, *self.projection(i)) for i, x in enumerate((query, key, value)))
        if self.bias_k is not None:  # one learned key and value more: [S + 1, N, E]
            k = cat([k, self.bias_k.expand(1, batch, self.embed_dim)], dim=0)
            v = cat([v, self.bias_v.expand(1, batch, self.embed_dim)], dim=0)

        def split_heads(x):  # [T, N, E] -> [N, H, T, head_dim]
            return x.reshape(x.shape[0], batch, heads, head_dim).permute(1, 2, 0, 3)

        q, k, v = split_heads(q), split_heads(k), split_heads(v)
        if self.add_zero_attn:  # one zero key and value more in every head
            zeros = np.zeros((batch, heads, 1, head_dim), k.dtype)
            k, v = cat([k, zeros], dim=2), cat([v, zeros], dim=2)
        extra_keys = k.shape[2] - source_len
        if mask is not None and extra_keys:  # the added keys are never masked
            mask = np.pad(mask, [(0, 0)] * (mask.ndim - 1) + [(0, extra_keys)])
        weights = attention_weights(q, k, mask, op="MultiheadAttention")   # [N, H, L, S]
        weights = dropout(weights, self.dropout, self.training)
        heads_out = matmul(weights, v)                                     # [N, H, L, hd]
        merged = heads_out.permute(2, 0, 1, 3).reshape(target_len, batch, self.embed_dim)
        return self.out_proj(merged), weights

    def _merged_mask(self, attn_mask, key_padding_mask, batch, target_len, source_len, dtype):
        """One additive mask [N, H, L, S] (or broadcastable) from both masks, or None."""
        mask = None
        if attn_mask is not None:
            attn = _additive(attn_mask, "attn_mask", dtype)
            if attn.shape == (target_len, source_len):
                mask = attn
            elif attn.shape == (batch * self.num_heads, target_len, source_len):
                mask = attn.reshape(batch, self.num_heads, target_len, source_len)
            else:
                raise ValueError(f"MultiheadAttention: attn_mask must be [L, S] = "
                                 f"[{target_len}, {source_len}] or [N * num_heads, L, S] = "
                                 f"[{batch * self.num_heads}, {target_len}, {source_len}], "
                                 f"got {attn.shape}")
        if key_padding_mask is not None:
            padding = _additive(key_padding_mask, "key_padding_mask", dtype)
            if padding.shape != (batch, source_len):
                raise ValueError(f"MultiheadAttention: key_padding_mask must be [N, S] = "
                                 f"[{batch}, {source_len}], got {padding.shape}")
            padding = padding[:, None, None, :]
            mask = padding if mask is None else mask + padding
        return mask

    def _check_inputs(self, query, key, value, batched: bool) -> None:
        name = "MultiheadAttention"
        dims = 3 if batched else 2
        if query.ndim not in (2, 3) or key.ndim != dims or value.ndim != dims:
            raise ValueError(f"{name}: query, key and value must all be 3-D (batched) or all "
                             f"2-D (one sequence), got {query.shape}, {key.shape}, {value.shape}")
        for what, x, size in (("query", query, self.embed_dim), ("key", key, self.kdim),
                              ("value", value, self.vdim)):
            if x.shape[-1] != size:
                raise ValueError(f"{name}: expected {what} with embedding dimension {size}, got "
                                 f"shape {x.shape}")
        seq_axis = 1 if batched and self.batch_first else 0
        if key.shape[:-1] != value.shape[:-1]:
            raise ValueError(f"{name}: key {key.shape} and value {value.shape} must have the same "
                             "number of positions and batch size")
        if batched and query.shape[1 - seq_axis] != key.shape[1 - seq_axis]:
            raise ValueError(f"{name}: query {query.shape} and key {key.shape} have different "
                             f"batch sizes (batch_first={self.batch_first})")

    def extra_repr(self) -> str:
        return (f"embed_dim={self.embed_dim}, num_heads={self.num_heads}, dropout={self.dropout}, "
                f"batch_first={self.batch_first}")


def _additive(mask, name: str, dtype) -> np.ndarray:
    """nn.MultiheadAttention's mask as an array to add: bool True (masked) -> -inf."""
    mask = np.asarray(getattr(mask, "data", mask))
    if mask.dtype == np.bool_:
        return np.where(mask, -np.inf, 0.0).astype(dtype)
    if mask.dtype.kind != "f":
        raise TypeError(f"MultiheadAttention: {name} must be bool (True = masked) or float "
                        f"(added to the scores), got {mask.dtype}")
    return mask.astype(dtype)


def _activation(activation):
    if callable(activation):
        return activation
    if activation not in ACTIVATIONS:
        raise ValueError(f"Transformer layer: activation must be 'relu', 'gelu' or a callable, "
                         f"got {activation!r}")
    return ACTIVATIONS[activation]


def _build_layer(layer, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                 batch_first, norm_first, bias, decoder: bool) -> None:
    """The sub-modules of an encoder (or decoder) layer, assigned in PyTorch's order so that
    ``state_dict`` lists them as PyTorch does: self_attn, (multihead_attn), linear1, dropout,
    linear2, norm1, norm2, (norm3), dropout1, dropout2, (dropout3)."""
    def attention():
        return MultiheadAttention(d_model, nhead, dropout=dropout, bias=bias,
                                  batch_first=batch_first)

    def norm():
        return LayerNorm(d_model, eps=layer_norm_eps, bias=bias)

    layer.self_attn = attention()
    if decoder:
        layer.multihead_attn = attention()
    layer.linear1 = Linear(d_model, dim_feedforward, bias=bias)
    layer.dropout = Dropout(dropout)
    layer.linear2 = Linear(dim_feedforward, d_model, bias=bias)
    layer.norm_first = norm_first
    layer.norm1, layer.norm2 = norm(), norm()
    if decoder:
        layer.norm3 = norm()
    layer.dropout1, layer.dropout2 = Dropout(dropout), Dropout(dropout)
    if decoder:
        layer.dropout3 = Dropout(dropout)
    layer.activation = _activation(activation)


class TransformerEncoderLayer(Module):
    """Self-attention and a feed-forward network, each with a residual and a LayerNorm.

        post-norm (norm_first=False, the paper):  x = norm1(x + SA(x));  x = norm2(x + FF(x))
        pre-norm  (norm_first=True):              x = x + SA(norm1(x));  x = x + FF(norm2(x))
        FF(x) = linear2(dropout(activation(linear1(x))))

    Args (PyTorch's order): d_model, nhead, dim_feedforward=2048, dropout=0.1,
    activation ("relu", "gelu" -- minidl's gelu is the tanh approximation -- or a
    callable), layer_norm_eps=1e-5, batch_first=False, norm_first=False, bias=True.
    ``forward(src, src_mask=None, src_key_padding_mask=None, is_causal=False)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True):
        super().__init__()
        _build_layer(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                     batch_first, norm_first, bias, decoder=False)

    def forward(self, src, src_mask=None, src_key_padding_mask=None, is_causal: bool = False):
        x = src
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), src_mask, src_key_padding_mask, is_causal)
            return x + self._ff_block(self.norm2(x))
        x = self.norm1(x + self._sa_block(x, src_mask, src_key_padding_mask, is_causal))
        return self.norm2(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _ff_block(self, x):
        return self.dropout2(self.linear2(self.dropout(self.activation(self.linear1(x)))))


class TransformerDecoderLayer(Module):
    """Self-attention over the targets, attention to the memory, a feed-forward network.

        post-norm:  x = norm1(x + SA(x));  x = norm2(x + MHA(x, memory));  x = norm3(x + FF(x))
        pre-norm:   x = x + SA(norm1(x));  x = x + MHA(norm2(x), memory);  x = x + FF(norm3(x))

    Args: as ``TransformerEncoderLayer``. ``forward(tgt, memory, tgt_mask=None,
    memory_mask=None, tgt_key_padding_mask=None, memory_key_padding_mask=None,
    tgt_is_causal=False, memory_is_causal=False)``.
    """

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int = 2048,
                 dropout: float = 0.1, activation="relu", layer_norm_eps: float = 1e-5,
                 batch_first: bool = False, norm_first: bool = False, bias: bool = True):
        super().__init__()
        _build_layer(self, d_model, nhead, dim_feedforward, dropout, activation, layer_norm_eps,
                     batch_first, norm_first, bias, decoder=True)

    def forward(self, tgt, memory, tgt_mask=None, memory_mask=None, tgt_key_padding_mask=None,
                memory_key_padding_mask=None, tgt_is_causal: bool = False,
                memory_is_causal: bool = False):
        x = tgt
        if self.norm_first:
            x = x + self._sa_block(self.norm1(x), tgt_mask, tgt_key_padding_mask, tgt_is_causal)
            x = x + self._mha_block(self.norm2(x), memory, memory_mask, memory_key_padding_mask,
                                    memory_is_causal)
            return x + self._ff_block(self.norm3(x))
        x = self.norm1(x + self._sa_block(x, tgt_mask, tgt_key_padding_mask, tgt_is_causal))
        x = self.norm2(x + self._mha_block(x, memory, memory_mask, memory_key_padding_mask,
                                           memory_is_causal))
        return self.norm3(x + self._ff_block(x))

    def _sa_block(self, x, attn_mask, key_padding_mask, is_causal):
        x = self.self_attn(x, x, x, attn_mask=attn_mask, key_padding_mask=key_padding_mask,
                           need_weights=False, is_causal=is_causal)[0]
        return self.dropout1(x)

    def _mha_block(self, x, memory, attn_mask, key_padding_mask, is_causal):
        x = self.multihead_attn(x, memory, memory, attn_mask=attn_mask,
                                key_padding_mask=key_padding_mask, need_weights=False,
                                is_causal=is_causal)[0]
        return self.dropout2(x)

    def _ff_block(self, x):
        return self.dropout3(self.linear2(self.dropout(self.activation(self.linear1(x)))))
