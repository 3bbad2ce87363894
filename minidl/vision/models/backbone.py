"""Small convolutional backbones and the feature pyramid, shared by every vision lesson.

A backbone turns an image [N, 3, H, W] into feature maps. Here it is a stack of
*stages*: each stage halves the resolution with a stride-2 3x3 convolution and
then refines with more 3x3 convolutions, each followed by a normalization and a
ReLU (the VGG / ResNet stem pattern, without residuals to keep it short):

    stage s:  conv3x3(stride 2) -> norm -> ReLU -> [conv3x3 -> norm -> ReLU] x (depth - 1)

With ``widths=(16, 32, 64, 128)`` the four stages have strides 2, 4, 8, 16: a
64 x 64 image gives maps of 32, 16, 8 and 4 pixels. Detectors read the last map
(Fast / Faster R-CNN, YOLO) or all of them through a feature pyramid (SSD,
RetinaNet, Mask R-CNN with FPN).

The feature pyramid network (Lin et al., "Feature Pyramid Networks for Object
Detection", CVPR 2017) adds a top-down path: the coarsest map is projected to a
common width by a 1x1 "lateral" convolution, up-sampled by 2 and added to the
projection of the next finer map, and so on; a 3x3 convolution smooths each sum.
Every level then carries the semantics of the deep layers at its own resolution.
"""

from __future__ import annotations

from minidl.nn.activation import ReLU
from minidl.nn.containers import ModuleList, Sequential
from minidl.nn.conv import Conv2d
from minidl.nn.linear import Identity
from minidl.nn.module import Module
from minidl.nn.norm import BatchNorm2d, GroupNorm, InstanceNorm2d
from minidl.ops.upsample import interpolate

NORMS = ("batch", "group", "none")


def norm_layer(norm: str, channels: int) -> Module:
    """BatchNorm2d, GroupNorm (Wu & He 2018; up to 8 groups) or nothing, by name."""
    if norm == "batch":
        return BatchNorm2d(channels)
    if norm == "group":
        groups = next(g for g in (8, 4, 2, 1) if channels % g == 0)
        return GroupNorm(groups, channels)
    if norm == "none":
        return Sequential()
    raise ValueError(f"norm_layer: norm must be one of {NORMS}, got {norm!r}")


def conv_norm_relu(in_channels: int, out_channels: int, stride: int = 1, norm: str = "batch",
                   kernel_size: int = 3, dilation: int = 1) -> Sequential:
    """conv (padding keeps the size at stride 1) -> norm -> ReLU.

    The convolution has no bias when a normalization follows: the norm's shift
    would cancel it.
    """
    padding = dilation * (kernel_size - 1) // 2
    conv = Conv2d(in_channels, out_channels, kernel_size, stride, padding, dilation,
                  bias=norm == "none")
    return Sequential(conv, norm_layer(norm, out_channels), ReLU())


class Backbone(Module):
    """Stages of conv-norm-ReLU blocks, each halving the resolution.

    Args:
        in_channels: image channels (3 for RGB).
        widths: output channels of each stage; stage s has stride 2^(s+1).
        depth: conv blocks per stage (the first one strided).
        norm: "batch", "group" or "none".
        standardize_input: start with ``InstanceNorm2d(in_channels)`` (no affine): each
            image's channels shifted to mean 0 and scaled to variance 1, so the network
            does not have to learn first that an object's colour says nothing about it.

    Shapes: ``forward(x)``: [N, in_channels, H, W] -> [N, widths[-1], H / 2^S, W / 2^S];
    ``features(x)``: the list of every stage's map, finest first.
    Attributes ``out_channels`` (= widths[-1]) and ``strides`` (one per stage).
    """

    def __init__(self, in_channels: int = 3, widths=(16, 32, 64, 128), depth: int = 2,
                 norm: str = "batch", standardize_input: bool = False):
        super().__init__()
        if not widths or depth < 1:
            raise ValueError(f"Backbone: need at least one stage and depth >= 1, got "
                             f"widths={widths!r}, depth={depth!r}")
        stages, channels = [], in_channels
        self.standardize = InstanceNorm2d(in_channels) if standardize_input else Identity()
        for width in widths:
            blocks = [conv_norm_relu(channels, width, 2, norm)]
            blocks += [conv_norm_relu(width, width, 1, norm) for _ in range(depth - 1)]
            stages.append(Sequential(*blocks))
            channels = width
        self.stages = ModuleList(stages)
        self.widths = tuple(widths)
        self.out_channels = widths[-1]
        self.strides = tuple(2 ** (s + 1) for s in range(len(widths)))

    def features(self, x) -> list:
        """Every stage's output, finest (stride 2) first."""
        maps, x = [], self.standardize(x)
        for stage in self.stages:
            x = stage(x)
            maps.append(x)
        return maps

    def forward(self, x):
        return self.features(x)[-1]


class FPN(Module):
    """Feature pyramid: lateral 1x1 convs, top-down nearest x2 up-sampling and sums, 3x3 smoothing.

        P_coarsest = lateral(C_coarsest)
        P_l        = lateral(C_l) + upsample_2x(P_{l+1})        (top-down)
        out_l      = conv3x3(P_l)

    Args:
        in_channels: channels of each input map, finest first (e.g. ``backbone.widths[1:]``).
        out_channels: the common width of every level (256 in the paper).

    Shapes: ``forward(maps)``: a list of [N, in_channels[l], H_l, W_l], each map half
    the size of the one before -> a list of [N, out_channels, H_l, W_l], same order.
    """

    def __init__(self, in_channels, out_channels: int):
        super().__init__()
        self.lateral = ModuleList([Conv2d(c, out_channels, 1) for c in in_channels])
        self.smooth = ModuleList([Conv2d(out_channels, out_channels, 3, padding=1)
                                  for _ in in_channels])
        self.out_channels = out_channels

    def forward(self, maps) -> list:
        if len(maps) != len(self.lateral):
            raise ValueError(f"FPN: built for {len(self.lateral)} maps, got {len(maps)}")
        top_down = self.lateral[-1](maps[-1])
        outputs = [self.smooth[-1](top_down)]
        for level in range(len(maps) - 2, -1, -1):
            lateral = self.lateral[level](maps[level])
            top_down = lateral + interpolate(top_down, size=tuple(lateral.shape[2:]),
                                             mode="nearest")
            outputs.insert(0, self.smooth[level](top_down))
        return outputs
