"""Non-maximum suppression: keep the best-scoring box of each cluster of overlapping boxes.

A detector fires several times around every object. Greedy NMS visits the
boxes by decreasing score, keeps a box, and discards every later box whose IoU
with it is **strictly greater** than ``iou_threshold`` (torchvision's rule: a
pair with IoU exactly at the threshold both survive). The loop is the numba
kernel ``minidl.kernels.boxes.nms_kernel``.

Conventions (torchvision's): the score order is a stable sort, so equal scores
are visited in index order; the result is an int64 ndarray of indices into the
input, by decreasing score; empty input gives an empty int64 array. Boxes are
xyxy with no "+1"; two zero-area boxes have IoU 0 and do not suppress each other.
Any real threshold is accepted (below 0 every overlap-or-not suppresses, above 1
nothing does, as in torchvision); NaN is an error, since it would silently keep
every box.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array
from minidl.kernels.boxes import nms_kernel
from minidl.vision.boxes import check_boxes


def _prepare(boxes, scores, iou_threshold, op: str):
    """Check the arguments; return (boxes as a kernel reads them, the visiting order, the
    threshold as a float)."""
    threshold = _check_threshold(iou_threshold, op)
    boxes = as_array(boxes)
    scores = as_array(scores)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: boxes must have shape [N, 4], got {boxes.shape}")
    if scores.shape != (boxes.shape[0],):
        raise ValueError(f"{op}: scores must have shape [N] = [{boxes.shape[0]}], "
                         f"got {scores.shape}")
    check_boxes(boxes, op)
    if not np.isfinite(scores).all():
        raise ValueError(f"{op}: scores contain NaN or infinite values")
    dtype = np.result_type(boxes, np.float32)
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    return np.ascontiguousarray(boxes, dtype=dtype), order, threshold


def _check_threshold(iou_threshold, op: str) -> float:
    """A real number that is not NaN: IoU > NaN is never true, so NaN would keep every box."""
    if isinstance(iou_threshold, (bool, np.bool_)) or not isinstance(
            iou_threshold, (int, float, np.integer, np.floating)):
        raise TypeError(f"{op}: iou_threshold must be a number, got {iou_threshold!r}")
    if np.isnan(iou_threshold):
        raise ValueError(f"{op}: iou_threshold is NaN; IoU > NaN is never true, so nothing "
                         "would be suppressed. Pass a number, e.g. 0.5")
    return float(iou_threshold)


def nms(boxes, scores, iou_threshold: float) -> np.ndarray:
    """Greedy NMS over all boxes (torchvision.ops.nms).

    boxes: [N, 4] xyxy, scores: [N] -> int64 [K] indices of the kept boxes,
    by decreasing score.
    """
    boxes, order, threshold = _prepare(boxes, scores, iou_threshold, "nms")
    same_category = np.zeros(boxes.shape[0], dtype=np.int64)
    return nms_kernel(boxes, same_category, order, threshold)


def batched_nms(boxes, scores, idxs, iou_threshold: float) -> np.ndarray:
    """NMS within each category: boxes with different ``idxs`` never suppress each other.

    Same result as torchvision.ops.batched_nms (which offsets each category's boxes
    so they cannot overlap, then runs one NMS); here the kernel simply skips pairs
    from different categories. boxes: [N, 4], scores: [N], idxs: int [N]
    -> int64 [K] indices, by decreasing score over all categories.
    """
    boxes, order, threshold = _prepare(boxes, scores, iou_threshold, "batched_nms")
    idxs = as_array(idxs)
    if idxs.shape != (boxes.shape[0],) or (idxs.size and idxs.dtype.kind not in "iub"):
        raise ValueError(f"batched_nms: idxs must be integers of shape [N] = [{boxes.shape[0]}], "
                         f"got {idxs.dtype} {idxs.shape}")
    return nms_kernel(boxes, idxs.astype(np.int64), order, threshold)
