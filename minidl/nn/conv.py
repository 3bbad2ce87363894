"""Convolution layers: Conv2d and ConvTranspose2d (PyTorch's arguments, layouts and init).

The maths and the gradients are in minidl/ops/conv.py; a layer owns the weight and
bias and remembers its hyper-parameters.

Init (PyTorch's default, ``reset_parameters``): weight ~ kaiming_uniform_(a=sqrt(5)),
which is U(-1/sqrt(fan_in), 1/sqrt(fan_in)), and bias ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)),
with fan_in = weight.shape[1] * kh * kw (Cin/groups * kh * kw for Conv2d; for
ConvTranspose2d PyTorch's rule gives Cout/groups * kh * kw).
"""

from __future__ import annotations

import numpy as np

from minidl.nn import init
from minidl.nn.module import Module, Parameter
from minidl.ops.conv import conv2d, conv_transpose2d, pair_arg


class _ConvNd(Module):
    """What Conv2d and ConvTranspose2d share: arguments, parameters, init, repr."""

    def __init__(self, name, in_channels, out_channels, kernel_size, stride, padding, dilation,
                 groups, bias, weight_shape, dtype):
        super().__init__()
        for what, n in (("in_channels", in_channels), ("out_channels", out_channels)):
            if not isinstance(n, (int, np.integer)) or n < 1:
                raise ValueError(f"{name}: {what} must be a positive int, got {n!r}")
        if not isinstance(groups, (int, np.integer)) or groups < 1 or in_channels % groups \
                or out_channels % groups:
            raise ValueError(f"{name}: groups={groups!r} must divide in_channels={in_channels} "
                             f"and out_channels={out_channels}")
        self.in_channels, self.out_channels, self.groups = in_channels, out_channels, groups
        self.kernel_size = pair_arg(kernel_size, "kernel_size", name, 1)
        self.stride = pair_arg(stride, "stride", name, 1)
        self.padding = pair_arg(padding, "padding", name, 0)
        self.dilation = pair_arg(dilation, "dilation", name, 1)
        dtype = dtype or np.float32
        self.weight = Parameter(np.zeros(weight_shape + self.kernel_size, dtype=dtype))
        if bias:
            self.bias = Parameter(np.zeros(out_channels, dtype=dtype))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        init.default_layer_init_(self.weight, self.bias)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}")
        if self.padding != (0, 0):
            text += f", padding={self.padding}"
        if self.dilation != (1, 1):
            text += f", dilation={self.dilation}"
        if getattr(self, "output_padding", (0, 0)) != (0, 0):
            text += f", output_padding={self.output_padding}"
        if self.groups != 1:
            text += f", groups={self.groups}"
        if self.bias is None:
            text += ", bias=False"
        return text


class Conv2d(_ConvNd):
    """2-D convolution layer: y = conv2d(x, weight, bias).

    Args:
        in_channels, out_channels: Cin and Cout.
        kernel_size, stride, padding, dilation: ints or (h, w) pairs.
        groups: split channels into independent groups (groups = in_channels: depthwise).
        bias: learn a per-channel bias.

    Shapes: [N, Cin, H, W] -> [N, Cout, Hout, Wout] with
    Hout = floor((H + 2 padding - dilation (k - 1) - 1) / stride) + 1.
    weight: [Cout, Cin/groups, kh, kw];  bias: [Cout].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 dilation=1, groups: int = 1, bias: bool = True, dtype=None):
        super().__init__("Conv2d", in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias, (out_channels, in_channels // max(groups, 1)),
                         dtype)

    def forward(self, x):
        return conv2d(x, self.weight, self.bias, self.stride, self.padding, self.dilation,
                      self.groups)


class ConvTranspose2d(_ConvNd):
    """2-D transposed convolution layer (the gradient of Conv2d with respect to its input).

    Args as Conv2d, plus ``output_padding`` (< stride or < dilation): extra rows/columns at
    the bottom/right, to pick the output size among those a strided Conv2d maps to the same
    input size. ``forward(x, output_size=None)`` can compute it from a wanted (H, W).

    Shapes: [N, Cin, H, W] -> [N, Cout, Hout, Wout] with
    Hout = (H - 1) stride - 2 padding + dilation (k - 1) + output_padding + 1.
    weight: [Cin, Cout/groups, kh, kw] (PyTorch's layout);  bias: [Cout].
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 output_padding=0, groups: int = 1, bias: bool = True, dilation=1, dtype=None):
        self_name = "ConvTranspose2d"
        super().__init__(self_name, in_channels, out_channels, kernel_size, stride, padding,
                         dilation, groups, bias, (in_channels, out_channels // max(groups, 1)),
                         dtype)
        self.output_padding = pair_arg(output_padding, "output_padding", self_name, 0)

    def _output_padding_for(self, x, output_size):
        """The output_padding that makes the output (H, W) = output_size[-2:]."""
        wanted = tuple(int(v) for v in tuple(output_size)[-2:])
        smallest = tuple((n - 1) * s - 2 * p + d * (k - 1) + 1 for n, s, p, d, k in
                         zip(x.shape[2:], self.stride, self.padding, self.dilation,
                             self.kernel_size))
        extra = tuple(w - m for w, m in zip(wanted, smallest))
        if any(e < 0 or e >= max(s, d) for e, s, d in zip(extra, self.stride, self.dilation)):
            raise ValueError(f"ConvTranspose2d: output_size {wanted} is not reachable from input "
                             f"{tuple(x.shape)}: the sizes possible are {smallest} up to "
                             f"{smallest} + (stride or dilation) - 1")
        return extra

    def forward(self, x, output_size=None):
        output_padding = self.output_padding
        if output_size is not None:
            output_padding = self._output_padding_for(x, output_size)
        return conv_transpose2d(x, self.weight, self.bias, self.stride, self.padding,
                                output_padding, self.groups, self.dilation)
