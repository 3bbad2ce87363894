"""Linear (fully connected) layer, plus Identity and Flatten.

    y = x W^T + b        x: [..., in_features], W: [out_features, in_features], b: [out_features]

The maths is ``F.linear`` in ``minidl/ops/linear.py``; this module owns W and b.
"""

from __future__ import annotations

import numpy as np

from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.linear import linear
from minidl.ops.shape import flatten


class Linear(Module):
    """Fully connected layer y = x W^T + b.

    Args:
        in_features: size of the last input dimension.
        out_features: size of the last output dimension.
        bias: learn an additive bias.

    Shapes: input [..., in_features] -> output [..., out_features].
    Init (PyTorch's default): W ~ kaiming_uniform_(a=sqrt(5)), which is
    U(-1/sqrt(in), 1/sqrt(in)), and b ~ U(-1/sqrt(in), 1/sqrt(in)).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype=None):
        super().__init__()
        if in_features < 0 or out_features < 0:
            raise ValueError(f"Linear: feature sizes must be non-negative, got "
                             f"in_features={in_features}, out_features={out_features}")
        self.in_features = in_features
        self.out_features = out_features
        dtype = dtype or np.float32
        self.weight = Parameter(np.zeros((out_features, in_features), dtype=dtype))
        if bias:
            self.bias = Parameter(np.zeros(out_features, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def forward(self, x):
        if x.ndim < 1 or x.shape[-1] != self.in_features:
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, "
                             f"got shape {tuple(x.shape)}")
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"bias={self.bias is not None}")


class Identity(Module):
    """Returns its input unchanged (a placeholder, e.g. to remove a layer from a model)."""

    def __init__(self, *args, **kwargs):
        super().__init__()

    def forward(self, x):
        return x


class Flatten(Module):
    """Merge dims ``start_dim..end_dim`` into one: [N, C, H, W] -> [N, C*H*W] by default."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1):
        super().__init__()
        self.start_dim = start_dim
        self.end_dim = end_dim

    def forward(self, x):
        return flatten(x, self.start_dim, self.end_dim)

    def extra_repr(self) -> str:
        return f"start_dim={self.start_dim}, end_dim={self.end_dim}"

