"""Normalization layers: BatchNorm1d/2d, LayerNorm, GroupNorm, InstanceNorm2d (PyTorch semantics).

The formulas and gradients are in minidl/ops/norm.py. Init as PyTorch: weight = 1,
bias = 0, running_mean = 0, running_var = 1.

Batch norm behaves differently in the two modes (``model.train()`` / ``model.eval()``):
training normalizes with the batch's statistics and updates the running estimates;
evaluation normalizes with the running estimates, so the output of one sample does
not depend on the rest of the batch. Layer, group and instance norm use each
sample's own statistics in both modes.
"""

from __future__ import annotations

import numpy as np

from minidl.nn.module import Module, Parameter
from minidl.ops.norm import batch_norm, group_norm, instance_norm, layer_norm


def _positive(name, what, n):
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{name}: {what} must be a positive int, got {n!r}")


def _init_per_channel_state(module, num_features, eps, momentum, affine,
                            track_running_stats, dtype) -> None:
    """The state batch norm and instance norm share: per-channel affine parameters
    (gamma = 1, beta = 0, PyTorch's init) and the running mean / variance buffers."""
    _positive(type(module).__name__, "num_features", num_features)
    dtype = dtype or np.float32
    module.num_features, module.eps, module.momentum = num_features, eps, momentum
    module.affine, module.track_running_stats = affine, track_running_stats
    if affine:
        module.weight = Parameter(np.ones(num_features, dtype=dtype))
        module.bias = Parameter(np.zeros(num_features, dtype=dtype))
    else:
        module.register_parameter("weight", None)
        module.register_parameter("bias", None)
    running = track_running_stats
    module.register_buffer("running_mean", np.zeros(num_features, dtype) if running else None)
    module.register_buffer("running_var", np.ones(num_features, dtype) if running else None)


class _BatchNorm(Module):
    """Shared by BatchNorm1d and BatchNorm2d; subclasses say which input ranks they accept."""

    ranks: tuple = ()
    layout: str = ""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum=0.1, affine: bool = True,
                 track_running_stats: bool = True, dtype=None):
        super().__init__()
        _init_per_channel_state(self, num_features, eps, momentum, affine,
                                track_running_stats, dtype)
        tracked = np.array(0, dtype=np.int64) if track_running_stats else None
        self.register_buffer("num_batches_tracked", tracked)

    def reset_running_stats(self) -> None:
        if self.track_running_stats:
            self.running_mean[...] = 0
            self.running_var[...] = 1
            self.num_batches_tracked[...] = 0

    def forward(self, x):
        name = type(self).__name__
        if x.ndim not in self.ranks:
            raise ValueError(f"{name}: expected input {self.layout}, got shape {tuple(x.shape)}")
        if x.shape[1] != self.num_features:
            raise ValueError(f"{name}: expected {self.num_features} channels (dim 1), got input "
                             f"{tuple(x.shape)}")
        momentum = 0.0 if self.momentum is None else self.momentum
        if self.training and self.track_running_stats:
            self.num_batches_tracked += 1
            if self.momentum is None:  # cumulative moving average: the mean of all batches
                momentum = 1.0 / float(self.num_batches_tracked)
        use_batch_stats = self.training or self.running_mean is None
        return batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                          use_batch_stats, momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")


class BatchNorm1d(_BatchNorm):
    """Batch norm of [N, C] or [N, C, L]: statistics per channel over the batch (and L).

    Args: num_features (C), eps, momentum (None: cumulative average), affine,
    track_running_stats (False: always use batch statistics, keep no buffers).
    """

    ranks = (2, 3)
    layout = "[N, C] or [N, C, L]"


class BatchNorm2d(_BatchNorm):
    """Batch norm of [N, C, H, W]: statistics per channel over N, H and W.

    Args: num_features (C), eps, momentum (None: cumulative average), affine,
    track_running_stats (False: always use batch statistics, keep no buffers).
    """

    ranks = (4,)
    layout = "[N, C, H, W]"


class LayerNorm(Module):
    """Layer norm over the trailing ``normalized_shape`` dims of each sample.

    Args: normalized_shape (int or tuple), eps, elementwise_affine (learn weight and bias of
    shape normalized_shape), bias (learn the bias; needs elementwise_affine).
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True, dtype=None):
        super().__init__()
        shape = (normalized_shape,) if isinstance(normalized_shape, (int, np.integer)) \
            else tuple(normalized_shape)
        if not shape or any(not isinstance(n, (int, np.integer)) or n < 1 for n in shape):
            raise ValueError(f"LayerNorm: normalized_shape must be positive ints, got "
                             f"{normalized_shape!r}")
        dtype = dtype or np.float32
        self.normalized_shape, self.eps = shape, eps
        self.elementwise_affine = elementwise_affine
        if elementwise_affine:
            self.weight = Parameter(np.ones(shape, dtype=dtype))
        else:
            self.register_parameter("weight", None)
        if elementwise_affine and bias:
            self.bias = Parameter(np.zeros(shape, dtype=dtype))
        else:
            self.register_parameter("bias", None)

    def forward(self, x):
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps}, "
                f"elementwise_affine={self.elementwise_affine}")


class GroupNorm(Module):
    """Group norm: each sample standardized over groups of num_channels / num_groups channels.

    num_groups = 1 is layer norm over (C, H, W) with a per-channel affine; num_groups =
    num_channels is instance norm. Works for any batch size (no batch statistics).
    Args: num_groups, num_channels, eps, affine (per-channel weight and bias).
    """

    def __init__(self, num_groups: int, num_channels: int, eps: float = 1e-5,
                 affine: bool = True, dtype=None):
        super().__init__()
        _positive("GroupNorm", "num_groups", num_groups)
        _positive("GroupNorm", "num_channels", num_channels)
        if num_channels % num_groups:
            raise ValueError(f"GroupNorm: num_groups={num_groups} must divide "
                             f"num_channels={num_channels}")
        dtype = dtype or np.float32
        self.num_groups, self.num_channels, self.eps, self.affine = (num_groups, num_channels,
                                                                      eps, affine)
        if affine:
            self.weight = Parameter(np.ones(num_channels, dtype=dtype))
            self.bias = Parameter(np.zeros(num_channels, dtype=dtype))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        if x.ndim < 2 or x.shape[1] != self.num_channels:
            raise ValueError(f"GroupNorm: expected input [N, {self.num_channels}, *], got shape "
                             f"{tuple(x.shape)}")
        return group_norm(x, self.num_groups, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return f"{self.num_groups}, {self.num_channels}, eps={self.eps}, affine={self.affine}"


class InstanceNorm2d(Module):
    """Instance norm of [N, C, H, W]: each channel of each image over its H x W pixels.

    PyTorch's defaults: affine=False, track_running_stats=False (then both modes use the
    instance statistics; with running stats, evaluation uses them as batch norm does).
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1,
                 affine: bool = False, track_running_stats: bool = False, dtype=None):
        super().__init__()
        _init_per_channel_state(self, num_features, eps, momentum, affine,
                                track_running_stats, dtype)

    def forward(self, x):
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"InstanceNorm2d: expected input [N, {self.num_features}, H, W], "
                             f"got shape {tuple(x.shape)}")
        use_input_stats = self.training or not self.track_running_stats
        return instance_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                             use_input_stats, self.momentum, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.num_features}, eps={self.eps}, momentum={self.momentum}, "
                f"affine={self.affine}, track_running_stats={self.track_running_stats}")
