"""Box kernels: pairwise IoU and greedy non-maximum suppression, each beside its NumPy twin.

Boxes are rows (x1, y1, x2, y2) in continuous coordinates, as in torchvision:
width = x2 - x1 (no "+1" pixel convention), area = width * height.

The callers (``minidl.vision.boxes.box_iou``, ``minidl.vision.nms``) validate
their input; the kernels assume finite boxes with x1 <= x2 and y1 <= y2.
The composite IoU every other caller uses is ``minidl.vision.boxes``
(``iou_from_areas``); ``tests/vision/test_boxes.py`` holds the two to the same
answers on the convention's edge cases (touching, nested and zero-area boxes).
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit
def pair_iou(boxes1, i, boxes2, j):
    """IoU of boxes1[i] and boxes2[j]; 0 when the union is empty (two zero-area boxes).

        inter = max(0, min(x2, x2') - max(x1, x1')) * max(0, min(y2, y2') - max(y1, y1'))
        IoU   = inter / (area + area' - inter)
    """
    w = min(boxes1[i, 2], boxes2[j, 2]) - max(boxes1[i, 0], boxes2[j, 0])
    h = min(boxes1[i, 3], boxes2[j, 3]) - max(boxes1[i, 1], boxes2[j, 1])
    inter = max(w, 0.0) * max(h, 0.0)
    area1 = (boxes1[i, 2] - boxes1[i, 0]) * (boxes1[i, 3] - boxes1[i, 1])
    area2 = (boxes2[j, 2] - boxes2[j, 0]) * (boxes2[j, 3] - boxes2[j, 1])
    union = area1 + area2 - inter
    return inter / union if union > 0 else 0.0


@njit
def box_iou_kernel(boxes1, boxes2):
    """IoU of every pair: out[i, j] = IoU(boxes1[i], boxes2[j]).

        for i in range(N):
            for j in range(M):
                out[i, j] = pair_iou(boxes1, i, boxes2, j)

    boxes1: [N, 4], boxes2: [M, 4] (same float dtype) -> out: [N, M].
    Serial on purpose: matching and evaluation call it on small matrices (tens of
    boxes), where starting threads costs more than the whole loop, and even at
    thousands of boxes ``prange`` over i gains little on 2 cores.
    """
    n, m = boxes1.shape[0], boxes2.shape[0]
    out = np.empty((n, m), dtype=boxes1.dtype)
    for i in range(n):
        for j in range(m):
            out[i, j] = pair_iou(boxes1, i, boxes2, j)
    return out


def box_iou_reference(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """NumPy twin of ``box_iou_kernel``: the same formula broadcast over [N, 1] x [1, M]."""
    area1 = (boxes1[:, 2] - boxes1[:, 0]) * (boxes1[:, 3] - boxes1[:, 1])
    area2 = (boxes2[:, 2] - boxes2[:, 0]) * (boxes2[:, 3] - boxes2[:, 1])
    top_left = np.maximum(boxes1[:, None, :2], boxes2[None, :, :2])
    bottom_right = np.minimum(boxes1[:, None, 2:], boxes2[None, :, 2:])
    wh = np.clip(bottom_right - top_left, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area1[:, None] + area2[None, :] - inter
    safe = np.where(union > 0, union, 1)
    return np.where(union > 0, inter / safe, 0).astype(boxes1.dtype)


@njit
def nms_kernel(boxes, idxs, order, iou_threshold):
    """Greedy NMS over boxes visited in ``order`` (best score first); returns the kept indices.

        for a in range(len(order)):
            i = order[a]
            if i was suppressed: continue
            keep i
            for every later j = order[b], b > a, in the same category (idxs[j] == idxs[i]):
                if IoU(i, j) > iou_threshold: suppress j      # strictly greater, as torchvision

    Plain ``nms`` passes idxs = 0 for every box; ``batched_nms`` passes the
    category, so boxes of different categories never suppress each other.

    boxes: [N, 4], idxs: [N] int64, order: [N] int64 -> keep: [n_kept] int64
    (in the order visited, i.e. by decreasing score).
    """
    n = order.shape[0]
    suppressed = np.zeros(boxes.shape[0], dtype=np.bool_)
    keep = np.empty(n, dtype=np.int64)
    count = 0
    for a in range(n):
        i = order[a]
        if suppressed[i]:
            continue
        keep[count] = i
        count += 1
        for b in range(a + 1, n):
            j = order[b]
            if not suppressed[j] and idxs[j] == idxs[i]:
                if pair_iou(boxes, i, boxes, j) > iou_threshold:
                    suppressed[j] = True
    return keep[:count]


def nms_reference(boxes: np.ndarray, idxs: np.ndarray, order: np.ndarray,
                  iou_threshold: float) -> np.ndarray:
    """NumPy twin of ``nms_kernel`` (the "py_cpu_nms" of the Fast R-CNN code base).

    Take the best remaining box, keep it, and drop from the queue every box of
    its category whose IoU with it exceeds the threshold; repeat until empty.
    """
    keep = []
    queue = np.asarray(order, dtype=np.int64)
    while queue.size > 0:
        best, rest = queue[0], queue[1:]
        keep.append(best)
        ious = box_iou_reference(boxes[best:best + 1], boxes[rest])[0]
        survives = (ious <= iou_threshold) | (idxs[rest] != idxs[best])
        queue = rest[survives]
    return np.asarray(keep, dtype=np.int64)
