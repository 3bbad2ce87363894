"""Activation modules: thin wrappers around the functional ops (maths in minidl/ops/activation.py).

They hold no parameters; they exist so activations can sit inside a Sequential
and show up in a model's repr.
"""

from __future__ import annotations

from minidl.nn.module import Module
from minidl.ops import activation as A


class ReLU(Module):
    """max(x, 0). ``inplace`` is accepted for PyTorch compatibility and ignored:
    minidl never overwrites an input (its backward may still need it)."""

    def __init__(self, inplace: bool = False):
        super().__init__()

    def forward(self, x):
        return A.relu(x)


class LeakyReLU(Module):
    """x if x > 0 else negative_slope * x."""

    def __init__(self, negative_slope: float = 0.01, inplace: bool = False):
        super().__init__()
        self.negative_slope = negative_slope

    def forward(self, x):
        return A.leaky_relu(x, self.negative_slope)

    def extra_repr(self) -> str:
        return f"negative_slope={self.negative_slope}"


class ELU(Module):
    """x if x > 0 else alpha (e^x - 1) (Clevert et al. 2015)."""

    def __init__(self, alpha: float = 1.0, inplace: bool = False):
        super().__init__()
        self.alpha = alpha

    def forward(self, x):
        return A.elu(x, self.alpha)

    def extra_repr(self) -> str:
        return f"alpha={self.alpha}"


class Sigmoid(Module):
    """1 / (1 + e^-x)."""

    def forward(self, x):
        return A.sigmoid(x)


class Tanh(Module):
    """tanh(x)."""

    def forward(self, x):
        return A.tanh(x)


class GELU(Module):
    """x Phi(x) (Hendrycks & Gimpel 2016), via F.gelu's tanh approximation
    (PyTorch's ``approximate='tanh'``, the default here)."""

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        self.approximate = approximate

    def forward(self, x):
        return A.gelu(x, approximate=self.approximate)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """softmax over ``dim`` (default: the last axis)."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return A.softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """log(softmax(x)) over ``dim`` (default: the last axis), computed stably."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x):
        return A.log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
