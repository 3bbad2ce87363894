"""Reference boxes that detectors predict offsets from: anchors, SSD default boxes, YOLO cells.

* ``AnchorGenerator`` (Faster R-CNN, Ren et al. 2015): at every position of a
  feature map, boxes of several sizes and aspect ratios. The paper used 3
  scales (128, 256, 512 pixels) x 3 ratios (1:2, 1:1, 2:1) on ~600-pixel
  images; for the small images of the lessons the default is (16, 32, 64).
* ``ssd_default_boxes`` (SSD, Liu et al. 2016): per feature-map layer k, boxes of
  scale s_k and several aspect ratios centred on every cell, in [0, 1] image units.
* ``yolo_grid_assign`` (YOLO v1, Redmon et al. 2016): the S x S grid cell that
  contains each box centre is responsible for it.

Conventions (as torchvision): boxes are (x1, y1, x2, y2) pixels with no "+1";
an aspect ratio is height / width; an anchor at feature position (i, j) of a
level with stride s is centred at (x, y) = (j * s, i * s) plus ``offset * s``,
with ``offset = 0`` as torchvision (the top-left corner of the cell) and
``offset = 0.5`` for the cell centre (Detectron2's option).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from minidl.autograd.function import as_array
from minidl.vision.boxes import check_boxes


# ---- Faster R-CNN / FPN anchors ---------------------------------------------
class AnchorGenerator:
    """Anchors for one or more feature-map levels (torchvision's AnchorGenerator).

    Args:
        sizes: one tuple of sizes per level; a size s gives anchors of area s^2.
        aspect_ratios: one tuple of ratios r = h / w per level (or one tuple for all levels).
        offset: where in its cell an anchor is centred, in strides (0 = torchvision, 0.5 = centre).

    For size s and ratio r the anchor has h = s sqrt(r), w = s / sqrt(r), centred on
    the cell. ``cell_anchors[l]`` holds the A = len(sizes[l]) * len(aspect_ratios[l])
    anchors of level l centred at (0, 0) (ratios outer, sizes inner, rounded to whole
    pixels as torchvision); ``grid_anchors`` shifts them to every position.

    Output order per level: position-major (row i, column j), then the A anchors,
    matching a head's [N, A * 4, H, W] output permuted to [N, H, W, A, 4].
    """

    def __init__(self, sizes=((16, 32, 64),), aspect_ratios=((0.5, 1.0, 2.0),),
                 offset: float = 0.0):
        sizes = tuple(tuple(s) for s in sizes)
        aspect_ratios = tuple(tuple(r) for r in aspect_ratios)
        if len(aspect_ratios) == 1 and len(sizes) > 1:
            aspect_ratios = aspect_ratios * len(sizes)
        if len(sizes) != len(aspect_ratios):
            raise ValueError(f"AnchorGenerator: {len(sizes)} levels of sizes but "
                             f"{len(aspect_ratios)} of aspect ratios")
        for values in sizes + aspect_ratios:
            if not values or min(values) <= 0:
                raise ValueError(f"AnchorGenerator: sizes and aspect ratios must be positive, "
                                 f"got {values}")
        self.sizes, self.aspect_ratios, self.offset = sizes, aspect_ratios, float(offset)
        self.cell_anchors = [self.generate_anchors(s, r) for s, r in zip(sizes, aspect_ratios)]

    def __repr__(self) -> str:
        return (f"AnchorGenerator(sizes={self.sizes}, aspect_ratios={self.aspect_ratios}, "
                f"offset={self.offset})")

    @staticmethod
    def generate_anchors(scales, aspect_ratios) -> np.ndarray:
        """The anchors of one cell centred at (0, 0): [len(ratios) * len(scales), 4] float32.

            h_ratio = sqrt(r), w_ratio = 1 / h_ratio,  w = w_ratio * s,  h = h_ratio * s
            anchor = round((-w/2, -h/2, w/2, h/2))
        """
        scales = np.asarray(scales, dtype=np.float64)
        h_ratios = np.sqrt(np.asarray(aspect_ratios, dtype=np.float64))
        w_ratios = 1.0 / h_ratios
        ws = (w_ratios[:, None] * scales[None, :]).reshape(-1)
        hs = (h_ratios[:, None] * scales[None, :]).reshape(-1)
        # torch.round, like np.round, rounds halves to even
        return np.round(np.stack([-ws, -hs, ws, hs], axis=1) / 2).astype(np.float32)

    def num_anchors_per_location(self) -> list:
        """A for each level."""
        return [len(s) * len(r) for s, r in zip(self.sizes, self.aspect_ratios)]

    def grid_anchors(self, grid_sizes, strides) -> list:
        """Every cell anchor shifted to every feature-map position.

        grid_sizes: [(H_l, W_l)] per level, strides: [(s_y, s_x)] per level
        -> list of [H_l * W_l * A_l, 4] float32 arrays.
        """
        if len(grid_sizes) != len(self.cell_anchors) or len(strides) != len(grid_sizes):
            raise ValueError(f"AnchorGenerator: expected {len(self.cell_anchors)} feature maps "
                             f"(one per level of sizes), got {len(grid_sizes)}")
        out = []
        for (h, w), (sy, sx), base in zip(grid_sizes, strides, self.cell_anchors):
            xs = (np.arange(w, dtype=np.float32) + self.offset) * sx
            ys = (np.arange(h, dtype=np.float32) + self.offset) * sy
            shift_y, shift_x = np.meshgrid(ys, xs, indexing="ij")
            shifts = np.stack([shift_x, shift_y, shift_x, shift_y], axis=-1).reshape(-1, 1, 4)
            out.append((shifts + base[None, :, :]).reshape(-1, 4))
        return out

    def anchors_for(self, image_size, feature_sizes) -> np.ndarray:
        """All anchors of an image of ``image_size`` = (H, W) whose levels have
        ``feature_sizes`` = [(H_l, W_l)]: [sum_l H_l W_l A_l, 4], levels in order.
        The stride of a level is image size // feature size, as torchvision."""
        strides = [(image_size[0] // h, image_size[1] // w) for h, w in feature_sizes]
        return np.concatenate(self.grid_anchors(list(feature_sizes), strides), axis=0)

    def __call__(self, images, feature_maps) -> list:
        """torchvision's interface: images [N, C, H, W], feature maps list of [N, C_l, H_l, W_l]
        -> a list of N arrays [sum_l H_l W_l A_l, 4] (all equal: images share one padded size)."""
        if not isinstance(feature_maps, (list, tuple)):
            feature_maps = [feature_maps]
        n, image_size = images.shape[0], images.shape[-2:]
        anchors = self.anchors_for(image_size, [f.shape[-2:] for f in feature_maps])
        return [anchors.copy() for _ in range(n)]


# ---- SSD default boxes -------------------------------------------------------
def ssd_scales(num_layers: int, s_min: float = 0.2, s_max: float = 0.9) -> list:
    """s_k = s_min + (s_max - s_min) (k - 1) / (m - 1) for k = 1..m (SSD eq. 4), plus
    s_{m+1} = 1.0 (torchvision's choice) so the last layer also has its extra box."""
    if num_layers < 1:
        raise ValueError(f"ssd_scales: need at least one layer, got {num_layers}")
    if num_layers == 1:
        return [s_min, 1.0]
    step = (s_max - s_min) / (num_layers - 1)
    return [s_min + step * k for k in range(num_layers)] + [1.0]


def ssd_default_boxes(feature_map_sizes, aspect_ratios=None, s_min: float = 0.2,
                      s_max: float = 0.9, clip: bool = True) -> np.ndarray:
    """SSD's default boxes in (cx, cy, w, h) format, relative to the image (in [0, 1]).

    For layer k with an f_k x f_k feature map, scale s_k (``ssd_scales``) and extra
    ratios a in ``aspect_ratios[k]`` (e.g. (2,) or (2, 3)), every cell (i, j) gets
    boxes centred at ((j + 0.5) / f_k, (i + 0.5) / f_k) with (w, h) =

        (s_k, s_k),  (s'_k, s'_k) with s'_k = sqrt(s_k s_{k+1}),
        (s_k sqrt(a), s_k / sqrt(a)) and (s_k / sqrt(a), s_k sqrt(a)) for each a,

    i.e. 2 + 2 len(aspect_ratios[k]) boxes per cell, in that order (as torchvision's
    DefaultBoxGenerator). ``clip`` clamps w and h to [0, 1] as torchvision does.

    feature_map_sizes: [f_1, ..., f_m] (ints, square maps) -> [sum_k f_k^2 n_k, 4] float32.
    Convert to pixels with ``box_convert(b, "cxcywh", "xyxy") * [W, H, W, H]``.
    """
    sizes = [int(f) for f in feature_map_sizes]
    if aspect_ratios is None:
        aspect_ratios = [(2,)] + [(2, 3)] * (len(sizes) - 1)
    if len(aspect_ratios) != len(sizes) or min(sizes, default=0) < 1:
        raise ValueError(f"ssd_default_boxes: {len(sizes)} positive feature-map sizes need as many "
                         f"aspect-ratio tuples, got sizes {sizes} and {len(aspect_ratios)} tuples")
    scales = ssd_scales(len(sizes), s_min, s_max)
    out = []
    for k, (f, ratios) in enumerate(zip(sizes, aspect_ratios)):
        s, s_next = scales[k], scales[k + 1]
        wh = [(s, s), (math.sqrt(s * s_next), math.sqrt(s * s_next))]
        for a in ratios:
            wh += [(s * math.sqrt(a), s / math.sqrt(a)), (s / math.sqrt(a), s * math.sqrt(a))]
        wh = np.asarray(wh, dtype=np.float64)
        if clip:
            wh = np.clip(wh, 0.0, 1.0)
        centres = (np.arange(f) + 0.5) / f
        cy, cx = np.meshgrid(centres, centres, indexing="ij")
        cxcy = np.stack([cx, cy], axis=-1).reshape(-1, 1, 2).repeat(len(wh), axis=1)
        boxes = np.concatenate([cxcy, np.broadcast_to(wh, cxcy.shape)], axis=-1)
        out.append(boxes.reshape(-1, 4))
    return np.concatenate(out, axis=0).astype(np.float32)


# ---- YOLO v1 grid cells ------------------------------------------------------
class GridAssignment(NamedTuple):
    """Which cell is responsible for each box, and the box in YOLO's units.

    row, col: int64 [K], the cell (i, j) containing the box centre;
    offset_x, offset_y: [K] centre position inside its cell, in [0, 1);
    width, height: [K] box size relative to the whole image, in [0, 1].
    """

    row: np.ndarray
    col: np.ndarray
    offset_x: np.ndarray
    offset_y: np.ndarray
    width: np.ndarray
    height: np.ndarray


def yolo_grid_assign(boxes, image_size, grid_size: int = 7) -> GridAssignment:
    """YOLO v1's assignment: "if the center of an object falls into a grid cell, that
    grid cell is responsible for detecting that object".

        u = c_x / W * S,  col = floor(u) (clamped to S - 1),  offset_x = u - col
        v = c_y / H * S,  row = floor(v) (clamped to S - 1),  offset_y = v - row
        width = w / W,    height = h / H

    A centre exactly on the right or bottom image edge belongs to the last cell
    (offset 1.0 there). boxes: [K, 4] xyxy pixels inside the image,
    image_size: (H, W), grid_size: S.
    """
    data = as_array(boxes).astype(np.float64).reshape(-1, 4)
    check_boxes(data, "yolo_grid_assign")
    height, width = image_size
    cx, cy = (data[:, 0] + data[:, 2]) / 2, (data[:, 1] + data[:, 3]) / 2
    outside = (cx < 0) | (cx > width) | (cy < 0) | (cy > height)
    if outside.any():
        i = int(np.argmax(outside))
        raise ValueError(f"yolo_grid_assign: box {i} = {data[i].tolist()} has its centre outside "
                         f"the {height}x{width} image")
    u, v = cx / width * grid_size, cy / height * grid_size
    col = np.minimum(np.floor(u), grid_size - 1).astype(np.int64)
    row = np.minimum(np.floor(v), grid_size - 1).astype(np.int64)
    return GridAssignment(row, col, u - col, v - row,
                          (data[:, 2] - data[:, 0]) / width, (data[:, 3] - data[:, 1]) / height)
