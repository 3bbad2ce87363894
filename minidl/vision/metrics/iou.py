"""Overlap for evaluation: box IoU with COCO's crowd rule, and mask IoU.

Both follow ``minidl.vision.boxes.iou_from_areas`` (IoU = |A n B| / |A u B|; against a
crowd region the denominator is |A|, the detection's own area; 0 for an empty union),
so boxes and masks, matching and evaluation share one definition.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array
from minidl.vision.boxes import elementwise_box_iou, iou_from_areas
from minidl.vision.metrics.inputs import binary_masks


def pairwise_box_iou(boxes1, boxes2, crowd=None) -> np.ndarray:
    """IoU of every box in ``boxes1 [N, 4]`` with every box in ``boxes2 [M, 4]`` (xyxy).

    IoU = |A n B| / |A u B|. Where ``crowd[j]`` is True the denominator is |A| (the
    area of the box from ``boxes1``), as COCO scores detections against crowd regions.
    Returns float64 ``[N, M]``; 0 where the union is empty.
    """
    a = as_array(boxes1).astype(np.float64).reshape(-1, 4)
    b = as_array(boxes2).astype(np.float64).reshape(-1, 4)
    crowd = None if crowd is None else as_array(crowd).astype(bool).reshape(1, -1)
    return elementwise_box_iou(a[:, None, :], b[None, :, :], crowd)


def mask_iou(masks1, masks2, crowd=None) -> np.ndarray:
    """IoU of binary masks ``masks1 [N, H, W]`` with ``masks2 [M, H, W]`` -> ``[N, M]``.

    Each mask is a set of pixels: IoU = |A n B| / |A u B|, the intersections counted
    as a product of the flattened masks ``[N, HW] x [HW, M]``. ``crowd`` as in
    ``pairwise_box_iou``. Float masks are thresholded at 0.5, integer / bool masks at != 0.
    """
    m1, m2 = binary_masks(masks1, "mask_iou"), binary_masks(masks2, "mask_iou")
    if m1.shape[1:] != m2.shape[1:]:
        raise ValueError(f"mask_iou: masks must have the same size, got {m1.shape[1:]} "
                         f"and {m2.shape[1:]}")
    pixels = m1.shape[1] * m1.shape[2]
    f1 = m1.reshape(len(m1), pixels).astype(np.float32)
    f2 = m2.reshape(len(m2), pixels).astype(np.float32)
    # pixel counts: einsum's plain C loop (skinny [N, HW] x [HW, M] gains nothing from BLAS
    # threads); exact in float32 while counts stay below 2^24
    inter = np.einsum("ik,jk->ij", f1, f2).astype(np.float64)
    area1, area2 = f1.sum(1, dtype=np.float64), f2.sum(1, dtype=np.float64)
    crowd = None if crowd is None else as_array(crowd).astype(bool)[None, :]
    return iou_from_areas(inter, area1[:, None], area2[None, :], crowd)


def pair_ious(flat, det, gt, use_masks: bool) -> np.ndarray:
    """IoU of each (detection ``det[i]``, ground truth ``gt[i]``) pair of the flat arrays
    (``inputs.flatten``), crowd rule included: boxes in one vectorized pass, masks per image."""
    crowd = flat["gt_crowd"][gt]
    if not use_masks:
        return elementwise_box_iou(flat["det_boxes"][det], flat["gt_boxes"][gt], crowd)
    ious = np.zeros(len(det))
    images = np.arange(len(flat["det_mask"]) + 1)
    pair_bounds = np.searchsorted(flat["det_image"][det], images)  # pairs are sorted by image
    gt_bounds = np.searchsorted(flat["gt_image"], images)
    for i in range(len(flat["det_mask"])):
        s = slice(pair_bounds[i], pair_bounds[i + 1])
        if s.start == s.stop:
            continue
        # every detection of the image against every object of it, then the pairs we need
        crowd_i = flat["gt_crowd"][gt_bounds[i]:gt_bounds[i + 1]]
        table = mask_iou(flat["det_mask"][i], flat["gt_mask"][i], crowd_i)
        ious[s] = table[flat["det_row"][det[s]], flat["gt_row"][gt[s]]]
    return ious
