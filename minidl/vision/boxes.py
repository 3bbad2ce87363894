"""Box utilities, after torchvision.ops.boxes.

Conventions (the same as torchvision):

* A box is a row (x1, y1, x2, y2) in continuous pixel coordinates, x to the
  right, y down, with x1 <= x2 and y1 <= y2. There is **no "+1"**: the width is
  x2 - x1, so the box (0, 0, 10, 10) covers ten pixels across, and a box with
  x1 = x2 has zero area. (The original R-CNN code used width = x2 - x1 + 1 for
  integer pixel indices; torchvision and this module do not.)
* Other formats: "xywh" = (x1, y1, w, h) and "cxcywh" = (centre x, centre y, w, h).
* Image sizes are (height, width), as torchvision.

IoU in one place. Every IoU in minidl (matching, sampling, NMS, the losses, the
VOC and COCO metrics) is computed by one of two functions here, both built on
``iou_from_areas`` (the union, COCO's crowd rule, and IoU = 0 when the union is
empty):

* ``box_iou(boxes1 [N, 4], boxes2 [M, 4]) -> [N, M]``: every pair;
* ``elementwise_box_iou(boxes1 [..., 4], boxes2 [..., 4], crowd) -> [...]``: row i
  with row i (NumPy broadcasting), e.g. each detection with the object it matched.

``generalized_box_iou`` and ``elementwise_generalized_box_iou`` add GIoU's
enclosing-box term to the same parts. The one other copy of the formula is the
numba kernel behind ``box_iou`` on ndarrays (``minidl.kernels.boxes``, with its
NumPy twin); ``tests/vision/test_boxes.py`` holds the kernel and the composite
to the same answers on the edge cases (touching, nested, zero-area boxes), so a
change of convention made in one place and not the other fails there.

Arrays or Tensors: every function accepts an ndarray or a Tensor. Functions
that return coordinates, areas or overlaps return the same kind they were
given; with Tensors they are composites of minidl primitives, so the result is
differentiable (the GIoU loss uses this). ``box_iou`` on ndarrays runs the
numba kernel ``minidl.kernels.boxes.box_iou_kernel``. Functions that return
indices or masks-derived boxes (remove_small_boxes, masks_to_boxes) return
ndarrays.

Bad input: boxes with a non-finite coordinate or with x2 < x1 (or y2 < y1)
raise ValueError naming the op and the first bad row (``check_boxes``).
Empty inputs are fine: box_iou of [0, 4] and [M, 4] boxes is a [0, M] array.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import as_array
from minidl.autograd.tensor import Tensor
from minidl.kernels.boxes import box_iou_kernel
from minidl.ops.elementwise import clamp, maximum, minimum, where
from minidl.ops.shape import stack

BOX_FORMATS = ("xyxy", "xywh", "cxcywh")


# ---- validation --------------------------------------------------------------
def check_boxes(boxes, op: str, name: str = "boxes", ordered: bool = True) -> None:
    """Raise ValueError unless ``boxes`` is [..., 4] with finite coordinates (and, when
    ``ordered``, x1 <= x2 and y1 <= y2 in every row). ``op`` names the caller in the message."""
    data = as_array(boxes)
    if data.ndim < 1 or data.shape[-1] != 4:
        raise ValueError(f"{op}: {name} must have shape [..., 4], got {data.shape}")
    rows = data.reshape(-1, 4)
    if not np.isfinite(rows).all():
        i = int(np.argmin(np.isfinite(rows).all(axis=1)))
        raise ValueError(f"{op}: {name} row {i} has a non-finite coordinate: {rows[i].tolist()}")
    if ordered:
        bad = (rows[:, 2:] < rows[:, :2]).any(axis=1)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"{op}: {name} row {i} = {rows[i].tolist()} has x2 < x1 or y2 < y1; "
                             "boxes must be (x1, y1, x2, y2) with x1 <= x2 and y1 <= y2")


def _check_pairwise(boxes1, boxes2, op: str) -> None:
    for name, b in (("boxes1", boxes1), ("boxes2", boxes2)):
        if as_array(b).ndim != 2 or as_array(b).shape[1] != 4:
            raise ValueError(f"{op}: {name} must have shape [N, 4], got {as_array(b).shape}")
        check_boxes(b, op, name)


def _check_elementwise(boxes1, boxes2, op: str) -> tuple:
    """Both [..., 4], valid, broadcasting together; returns the result's shape (without the 4)."""
    check_boxes(boxes1, op, "boxes1")
    check_boxes(boxes2, op, "boxes2")
    try:
        return np.broadcast_shapes(as_array(boxes1).shape[:-1], as_array(boxes2).shape[:-1])
    except ValueError:
        raise ValueError(f"{op}: boxes1 {as_array(boxes1).shape} and boxes2 "
                         f"{as_array(boxes2).shape} must pair up row by row (broadcasting "
                         "[..., 4] against [..., 4])") from None


# ---- the same formula for ndarrays and Tensors -------------------------------
def _maximum(a, b):
    return maximum(a, b) if isinstance(a, Tensor) or isinstance(b, Tensor) else np.maximum(a, b)


def _minimum(a, b):
    return minimum(a, b) if isinstance(a, Tensor) or isinstance(b, Tensor) else np.minimum(a, b)


def _clamp(a, lo=None, hi=None):
    return clamp(a, lo, hi) if isinstance(a, Tensor) else np.clip(a, lo, hi)


def _where(condition, a, b):
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return where(condition, a, b)
    return np.where(condition, a, b)


def _stack(columns, dim=-1):
    if isinstance(columns[0], Tensor):
        return stack(columns, dim=dim)
    return np.stack(columns, axis=dim)


def _columns(boxes):
    """The four coordinate columns of [..., 4] boxes (views for arrays, getitem for Tensors)."""
    return tuple(boxes[..., i] for i in range(4))


def _same_kind(boxes1, boxes2):
    """Both as Tensors if either is one (the result is then differentiable), else as given."""
    if isinstance(boxes1, Tensor) or isinstance(boxes2, Tensor):
        return _as_tensor(boxes1), _as_tensor(boxes2)
    return as_array(boxes1), as_array(boxes2)


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


# ---- conversions and areas ---------------------------------------------------
def box_convert(boxes, in_fmt: str, out_fmt: str):
    """Convert boxes between "xyxy", "xywh" and "cxcywh".

        xywh   -> xyxy: (x, y, x + w, y + h)
        cxcywh -> xyxy: (cx - w/2, cy - h/2, cx + w/2, cy + h/2)
        xyxy   -> cxcywh: ((x1 + x2)/2, (y1 + y2)/2, x2 - x1, y2 - y1)

    boxes: [..., 4] ndarray or Tensor -> [..., 4] of the same kind (differentiable for Tensors).
    Only the shape and finiteness are checked (a box in xywh may come from anywhere).
    """
    for fmt in (in_fmt, out_fmt):
        if fmt not in BOX_FORMATS:
            raise ValueError(f"box_convert: unknown box format {fmt!r}; "
                             f"expected one of {BOX_FORMATS}")
    check_boxes(boxes, "box_convert", ordered=False)
    if in_fmt == out_fmt:
        return boxes
    a, b, c, d = _columns(boxes)
    if in_fmt == "xywh":
        x1, y1, x2, y2 = a, b, a + c, b + d
    elif in_fmt == "cxcywh":
        x1, y1, x2, y2 = a - 0.5 * c, b - 0.5 * d, a + 0.5 * c, b + 0.5 * d
    else:
        x1, y1, x2, y2 = a, b, c, d
    if out_fmt == "xyxy":
        return _stack([x1, y1, x2, y2])
    if out_fmt == "xywh":
        return _stack([x1, y1, x2 - x1, y2 - y1])
    return _stack([0.5 * (x1 + x2), 0.5 * (y1 + y2), x2 - x1, y2 - y1])


def box_area(boxes):
    """area = (x2 - x1) * (y2 - y1).  boxes: [..., 4] -> [...]."""
    check_boxes(boxes, "box_area")
    return _area(boxes)


def _area(boxes):
    x1, y1, x2, y2 = _columns(boxes)
    return (x2 - x1) * (y2 - y1)


# ---- IoU ------------------------------------------------------------------------
def _safe_ratio(num, den):
    """num / den where den > 0, else 0 (two zero-area boxes have IoU 0, not NaN)."""
    positive = as_array(den) > 0
    if isinstance(num, Tensor) or isinstance(den, Tensor):
        return where(positive, num / where(positive, den, 1.0), 0.0)
    return np.where(positive, num / np.where(positive, den, 1), 0).astype(np.result_type(num, den))


def _intersection(boxes1, boxes2):
    """|A n B| of boxes1[...] with boxes2[...] (broadcasting): the overlap's width times height."""
    top_left = _maximum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = _minimum(boxes1[..., 2:], boxes2[..., 2:])
    wh = _clamp(bottom_right - top_left, lo=0.0)  # no overlap: 0, not a negative width
    return wh[..., 0] * wh[..., 1]


def iou_from_areas(intersection, area1, area2, crowd=None):
    """IoU from the parts, for boxes and masks alike:

        IoU = |A n B| / |A u B|,   |A u B| = |A| + |B| - |A n B|

    ``crowd`` (bool, broadcastable to the result; optional): where True, B is a crowd
    region and the denominator is |A| instead, so a detection A lying inside the crowd
    scores 1 however large the crowd is (COCO's rule; A = the detection). IoU is 0
    where the denominator is 0 (two empty boxes or masks), never NaN. ndarrays or Tensors.
    """
    union = area1 + area2 - intersection
    if crowd is not None:
        union = _where(np.asarray(as_array(crowd), dtype=bool), area1, union)
    return _safe_ratio(intersection, union)


def elementwise_box_iou(boxes1, boxes2, crowd=None):
    """IoU of matched pairs, row i with row i (with NumPy broadcasting):

        out[...] = IoU(boxes1[...], boxes2[...])

    boxes1, boxes2: [..., 4] in xyxy, broadcastable (e.g. [D, 4] and [D, 4] for each
    detection and the object it matched, or [N, 1, 4] and [1, M, 4] for all pairs);
    crowd: optional bool [...] (see ``iou_from_areas``) -> [...] of the same kind as the
    boxes (a differentiable composite for Tensors).
    """
    _check_elementwise(boxes1, boxes2, "elementwise_box_iou")
    boxes1, boxes2 = _same_kind(boxes1, boxes2)
    return iou_from_areas(_intersection(boxes1, boxes2), _area(boxes1), _area(boxes2), crowd)


def box_iou(boxes1, boxes2):
    """Intersection over union of every pair (Jaccard index):

        IoU(A, B) = |A n B| / |A u B|,   out[i, j] = IoU(boxes1[i], boxes2[j])

    boxes1: [N, 4], boxes2: [M, 4] in xyxy -> [N, M]. IoU is 0 when both boxes
    have zero area (torchvision gives NaN there). ndarrays go through the numba
    kernel ``box_iou_kernel``; Tensors through the differentiable composite
    ``elementwise_box_iou(boxes1[:, None], boxes2[None, :])``.
    """
    _check_pairwise(boxes1, boxes2, "box_iou")
    if isinstance(boxes1, Tensor) or isinstance(boxes2, Tensor):
        boxes1, boxes2 = _same_kind(boxes1, boxes2)
        return elementwise_box_iou(boxes1[:, None, :], boxes2[None, :, :])
    dtype = np.result_type(boxes1, boxes2, np.float32)
    b1 = np.ascontiguousarray(boxes1, dtype=dtype)
    b2 = np.ascontiguousarray(boxes2, dtype=dtype)
    return box_iou_kernel(b1, b2)


def elementwise_generalized_box_iou(boxes1, boxes2):
    """Generalized IoU (Rezatofighi et al., CVPR 2019) of matched pairs, row i with row i:

        GIoU(A, B) = IoU(A, B) - |C \\ (A u B)| / |C|,   C = smallest box enclosing A and B

    in [-1, 1]; 1 - GIoU is a loss that still has a gradient when A and B do not
    overlap. boxes1, boxes2: [..., 4] xyxy, broadcastable -> [...] (differentiable with
    Tensors). Where |C| = 0 (both boxes the same point) the ratio is taken as 0.
    """
    _check_elementwise(boxes1, boxes2, "elementwise_generalized_box_iou")
    boxes1, boxes2 = _same_kind(boxes1, boxes2)
    inter, area1, area2 = _intersection(boxes1, boxes2), _area(boxes1), _area(boxes2)
    union = area1 + area2 - inter
    top_left = _minimum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = _maximum(boxes1[..., 2:], boxes2[..., 2:])
    wh = bottom_right - top_left  # never negative: C contains both boxes
    enclosing = wh[..., 0] * wh[..., 1]
    return iou_from_areas(inter, area1, area2) - _safe_ratio(enclosing - union, enclosing)


def generalized_box_iou(boxes1, boxes2):
    """Generalized IoU of every pair: out[i, j] = GIoU(boxes1[i], boxes2[j]) (see
    ``elementwise_generalized_box_iou`` for the formula).

    boxes1: [N, 4], boxes2: [M, 4] in xyxy -> [N, M]. With Tensors it is a composite
    (differentiable).
    """
    _check_pairwise(boxes1, boxes2, "generalized_box_iou")
    boxes1, boxes2 = _same_kind(boxes1, boxes2)
    return elementwise_generalized_box_iou(boxes1[:, None, :], boxes2[None, :, :])


def clip_boxes_to_image(boxes, size):
    """Clamp x to [0, width] and y to [0, height]; ``size`` = (height, width) as torchvision.

    boxes: [..., 4] -> [..., 4] of the same kind (differentiable inside the image).
    """
    check_boxes(boxes, "clip_boxes_to_image", ordered=False)
    height, width = size
    x1, y1, x2, y2 = _columns(boxes)
    return _stack([_clamp(x1, 0.0, float(width)), _clamp(y1, 0.0, float(height)),
                   _clamp(x2, 0.0, float(width)), _clamp(y2, 0.0, float(height))])


def remove_small_boxes(boxes, min_size: float) -> np.ndarray:
    """Indices of the boxes whose width and height are both >= ``min_size``.

    boxes: [N, 4] -> int64 [K] (increasing).
    """
    check_boxes(boxes, "remove_small_boxes")
    data = as_array(boxes).reshape(-1, 4)
    keep = ((data[:, 2] - data[:, 0]) >= min_size) & ((data[:, 3] - data[:, 1]) >= min_size)
    return np.flatnonzero(keep).astype(np.int64)


def masks_to_boxes(masks) -> np.ndarray:
    """The tight box around the non-zero pixels of each mask, as torchvision:

        x1 = min column, y1 = min row, x2 = max column, y2 = max row   (no +1)

    so a one-pixel mask gives a zero-area box at that pixel's index. A mask
    with no pixel set gives (0, 0, 0, 0) (torchvision fails on it).

    masks: [N, H, W] (any dtype, non-zero = inside) -> float32 [N, 4] ndarray.
    """
    data = as_array(masks)
    if data.ndim != 3:
        raise ValueError(f"masks_to_boxes: masks must have shape [N, H, W], got {data.shape}")
    out = np.zeros((data.shape[0], 4), dtype=np.float32)
    for i, mask in enumerate(data != 0):
        rows = np.flatnonzero(mask.any(axis=1))
        cols = np.flatnonzero(mask.any(axis=0))
        if rows.size:
            out[i] = (cols[0], rows[0], cols[-1], rows[-1])
    return out
