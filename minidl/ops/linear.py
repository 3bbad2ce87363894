"""linear: the fully connected layer as a function (``F.linear``).

    y = x W^T + b        x: [..., in_features], W: [out_features, in_features], b: [out_features]

A composite of matmul and add: their backward gives dL/dx = g W, dL/dW = g^T x
(summed over the leading axes) and dL/db = sum of g, with nothing written here.
The layer that owns W and b is ``nn.Linear`` (``minidl/nn/linear.py``).
"""

from __future__ import annotations

from minidl.ops.matmul import matmul
from minidl.ops.shape import permute


def linear(x, weight, bias=None):
    """y = x W^T + b.  x: [..., in], weight: [out, in], bias: [out] or None -> y: [..., out]."""
    if weight.ndim != 2:
        raise ValueError(f"linear: weight must be 2-D [out, in], got shape {weight.shape}")
    if x.ndim < 1 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear: expected input with last dimension {weight.shape[1]}, "
                         f"got shape {tuple(x.shape)}")
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {bias.shape}")
    out = matmul(x, permute(weight, 1, 0))
    return out if bias is None else out + bias
