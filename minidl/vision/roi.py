"""RoI pooling layers: RoIPool, RoIAlign and the FPN's multi-scale RoIAlign.

The ops themselves are ``minidl.ops.roi.roi_pool`` / ``roi_align`` (also
``F.roi_pool`` / ``F.roi_align``); this module wraps them as Modules (as
torchvision.ops does) and adds the Feature Pyramid Network's rule for choosing
which pyramid level a RoI is pooled from (Lin et al., FPN, CVPR 2017, eq. 1):

    k = floor(k0 + log2(sqrt(w h) / canonical_scale)),  clamped to [k_min, k_max]

A RoI of ``canonical_scale`` pixels on a side (224, ImageNet's size, in the
paper) goes to level k0 = 4; one half as large to level 3, and so on. For the
small images of the lessons pass a smaller ``canonical_scale`` (e.g. 32).
"""

from __future__ import annotations

import math

import numpy as np

from minidl.autograd.function import as_array
from minidl.nn.module import Module
from minidl.ops.conv import pair_arg
from minidl.ops.roi import convert_boxes_to_roi_format, roi_align, roi_pool
from minidl.ops.shape import cat


class RoIPool(Module):
    """``roi_pool`` as a layer: RoIPool(output_size, spatial_scale)(input, boxes)."""

    def __init__(self, output_size, spatial_scale: float):
        super().__init__()
        self.output_size = pair_arg(output_size, "output_size", "RoIPool", 1)
        self.spatial_scale = float(spatial_scale)

    def forward(self, input, boxes):
        return roi_pool(input, boxes, self.output_size, self.spatial_scale)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}"


class RoIAlign(Module):
    """``roi_align`` as a layer: RoIAlign(output_size, spatial_scale, sampling_ratio, aligned)."""

    def __init__(self, output_size, spatial_scale: float, sampling_ratio: int = -1,
                 aligned: bool = False):
        super().__init__()
        self.output_size = pair_arg(output_size, "output_size", "RoIAlign", 1)
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)

    def forward(self, input, boxes):
        return roi_align(input, boxes, self.output_size, self.spatial_scale,
                         self.sampling_ratio, self.aligned)

    def extra_repr(self) -> str:
        return (f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, "
                f"sampling_ratio={self.sampling_ratio}, aligned={self.aligned}")


def map_levels(boxes, k_min: int, k_max: int, canonical_scale: float = 224,
               canonical_level: int = 4, eps: float = 1e-6) -> np.ndarray:
    """FPN level of each RoI, as an index into the pyramid (0 = level k_min):

        k = floor(k0 + log2(sqrt(area) / canonical_scale) + eps), clamped to [k_min, k_max]

    ``eps`` (torchvision's 1e-6) makes a RoI of exactly canonical_scale * 2^j land
    on level k0 + j despite rounding in log2. A zero-area RoI goes to k_min.
    boxes: [K, 4] or [K, 5] (batch index first) or a list of [K_i, 4] -> int64 [K].
    """
    rois = as_array(convert_boxes_to_roi_format(boxes, "map_levels"))
    if rois.ndim != 2 or rois.shape[1] not in (4, 5):
        raise ValueError(f"map_levels: boxes must be [K, 4], [K, 5] or a list of [K_i, 4], "
                         f"got shape {rois.shape}")
    xyxy = rois[:, -4:].astype(np.float64)
    side = np.sqrt(np.clip((xyxy[:, 2] - xyxy[:, 0]) * (xyxy[:, 3] - xyxy[:, 1]), 0, None))
    with np.errstate(divide="ignore"):  # log2(0) = -inf, clamped to k_min below
        levels = np.floor(canonical_level + np.log2(side / canonical_scale) + eps)
    return (np.clip(levels, k_min, k_max) - k_min).astype(np.int64)


def infer_scale(feature_size, image_size) -> float:
    """The feature map's scale relative to the image, a power of 2 (torchvision's rule):
    2 ** round(log2(feature_size / image_size)), the same along height and width."""
    scales = {2.0 ** round(math.log2(f / i)) for f, i in zip(feature_size, image_size)}
    if len(scales) != 1:
        raise ValueError(f"MultiScaleRoIAlign: feature size {tuple(feature_size)} is not one "
                         f"power-of-2 scale of the image size {tuple(image_size)}")
    return scales.pop()


class MultiScaleRoIAlign(Module):
    """RoIAlign over a feature pyramid: each RoI is pooled from the level ``map_levels`` picks.

    Args:
        featmap_names: names of the levels to use when features come as a dict
            (torchvision's interface); None to pass a list, finest level first.
        output_size, sampling_ratio, aligned: as ``roi_align``.
        canonical_scale, canonical_level: s0 and k0 of the level rule.

    ``forward(features, boxes, image_shapes)``: features a list (or dict) of
    [N, C, H_l, W_l] Tensors with strides 2^k (k_min = -log2 of the finest level's
    scale), boxes a list of N [K_i, 4] boxes in image pixels, image_shapes a list of
    (H, W) (the largest sets the scales) -> [sum K_i, C, out_h, out_w], the RoIs in
    the order given. Differentiable in the features and in the boxes.
    """

    def __init__(self, featmap_names=None, output_size=7, sampling_ratio: int = 2,
                 canonical_scale: float = 224, canonical_level: int = 4, aligned: bool = False):
        super().__init__()
        self.featmap_names = None if featmap_names is None else list(featmap_names)
        self.output_size = pair_arg(output_size, "output_size", "MultiScaleRoIAlign", 1)
        self.sampling_ratio = int(sampling_ratio)
        self.canonical_scale = float(canonical_scale)
        self.canonical_level = int(canonical_level)
        self.aligned = bool(aligned)

    def extra_repr(self) -> str:
        return (f"featmap_names={self.featmap_names}, output_size={self.output_size}, "
                f"sampling_ratio={self.sampling_ratio}, canonical_scale={self.canonical_scale}")

    def _levels(self, features):
        if isinstance(features, dict):
            names = self.featmap_names if self.featmap_names is not None else list(features)
            return [features[name] for name in names]
        return list(features)

    def forward(self, features, boxes, image_shapes):
        levels = self._levels(features)
        if not levels:
            raise ValueError("MultiScaleRoIAlign: no feature maps given")
        image_size = tuple(max(s[d] for s in image_shapes) for d in range(2))
        scales = [infer_scale(f.shape[-2:], image_size) for f in levels]
        rois = convert_boxes_to_roi_format(list(boxes), "MultiScaleRoIAlign")
        if len(levels) == 1:
            return self._pool(levels[0], rois, scales[0])
        k_min, k_max = round(-math.log2(scales[0])), round(-math.log2(scales[-1]))
        level_of = map_levels(as_array(rois), k_min, k_max, self.canonical_scale,
                              self.canonical_level)
        pieces, order = [], []
        for level, (feature, scale) in enumerate(zip(levels, scales)):
            members = np.flatnonzero(level_of == level)
            if members.size:
                pieces.append(self._pool(feature, rois[members], scale))
                order.append(members)
        if not pieces:  # no RoIs at all
            return self._pool(levels[0], rois, scales[0])
        pooled = cat(pieces, dim=0) if len(pieces) > 1 else pieces[0]
        # pooled holds the RoIs grouped by level; put them back in the order given
        inverse = np.argsort(np.concatenate(order), kind="stable")
        return pooled[inverse]

    def _pool(self, feature, rois, scale):
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio, self.aligned)
