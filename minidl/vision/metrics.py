"""Evaluation metrics for detection, instance segmentation and semantic segmentation.

Detection: a detector returns, per image, boxes with a class and a score. Sort
all detections of one class by score, walk down the list and call each one a
true positive (TP) if it overlaps a not-yet-found ground-truth object of its
class with IoU >= threshold, else a false positive (FP). After the first k
detections::

    precision_k = TP_k / k          recall_k = TP_k / (number of ground-truth objects)

Average precision (AP) is the area under this precision-recall curve, made
monotone first (precision at recall r := the best precision at any recall >= r).
The benchmarks differ in how they sample that area:

- PASCAL VOC 2007: mean of the precision at the 11 recalls 0, 0.1, ..., 1.
- PASCAL VOC 2010+: the exact area (all points where recall changes).
- COCO: mean of the precision at the 101 recalls 0, 0.01, ..., 1, then averaged
  again over 10 IoU thresholds 0.50:0.05:0.95 (AP@[.5:.95]), so a detector
  must also place its boxes precisely.

Conventions (as the reference implementations; where they differ it is said):

- Boxes are xyxy in continuous pixel coordinates: area = (x2 - x1)(y2 - y1),
  without VOC's historical "+1".
- A detection matches when IoU >= threshold (the VOC devkit and pycocotools).
- A duplicate detection of an already-found object is a false positive.
- VOC "difficult" objects are ignored: a detection matched to one is neither a
  TP nor an FP, and they are not counted among the positives.
- COCO "iscrowd" regions are ignored the same way; a crowd region may absorb
  any number of detections and its IoU is intersection / detection area.
- A class with no ground truth has AP = -1 (COCO's convention) and is left out
  of every mean. A class with ground truth but no detection has AP = 0.
  Images without objects or without detections are fine.
- COCO keeps at most ``max_dets`` detections per image *and per class*, the
  highest scored (pycocotools does this too).

Inputs: ``predictions`` and ``targets`` are either two lists (one dict per image,
same order) or two dicts keyed by image id. A prediction dict has ``boxes``
``[D, 4]``, ``scores [D]``, ``labels [D]`` (1..K, 0 is background), and
``masks [D, H, W]`` for mask evaluation; a target dict has ``boxes [G, 4]``,
``labels [G]``, optional ``masks [G, H, W]``, ``difficult [G]``,
``iscrowd [G]`` and ``area [G]``. ndarrays or Tensors.

Semantic segmentation: pixel accuracy, mean class accuracy and mean IoU from a
confusion matrix (Long, Shelhamer & Darrell 2015, section 5).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from minidl.kernels.detection_eval import coco_match

COCO_IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
COCO_RECALL_THRESHOLDS = np.linspace(0.0, 1.0, 101)
COCO_AREA_RANGES = {
    "all": (0.0, 1e10),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e10),
}
COCO_MAX_DETS = (1, 10, 100)


def scaled_area_ranges(image_size: int, reference_size: int = 640) -> dict:
    """COCO's small / medium / large area ranges scaled to images of side ``image_size``.

    COCO's thresholds are absolute (32^2 and 96^2 pixels) and made for photos
    about 640 px wide. On a 64 x 64 image every object would be "small". Scaling
    both thresholds by (image_size / reference_size)^2 keeps the same fraction
    of the image: for 64 px, small < 3.2^2 ~ 10 px, medium < 9.6^2 ~ 92 px.
    Pass the result as ``area_ranges`` to ``coco_evaluate``.
    """
    s = (float(image_size) / reference_size) ** 2
    return {"all": (0.0, 1e10), "small": (0.0, 32.0**2 * s),
            "medium": (32.0**2 * s, 96.0**2 * s), "large": (96.0**2 * s, 1e10)}


# ---------------------------------------------------------------------------
# Precision, recall, AP on one ranked list
# ---------------------------------------------------------------------------

def _array(x, dtype=None) -> np.ndarray:
    """ndarray from an ndarray, a Tensor (its .data) or a list."""
    data = getattr(x, "data", x)
    if not isinstance(data, np.ndarray):
        data = np.asarray(data)
    return data if dtype is None else data.astype(dtype, copy=False)


def precision_recall(is_tp, num_positives: int, ignored=None):
    """Precision and recall after each detection of a list ranked by score.

    ``is_tp: [D]`` (best score first), True for a true positive. ``ignored`` (optional
    ``[D]``) marks detections that count neither way (matched to a difficult object).
    Returns ``(precision [D'], recall [D'])`` over the D' non-ignored detections::

        precision_k = TP_k / (TP_k + FP_k),   recall_k = TP_k / num_positives

    Raises if ``num_positives`` is 0 (recall is undefined: such a class has no AP).
    """
    is_tp = _array(is_tp).astype(bool).ravel()
    if ignored is not None:
        is_tp = is_tp[~_array(ignored).astype(bool).ravel()]
    if num_positives <= 0:
        raise ValueError("precision_recall: num_positives must be > 0 (recall is undefined "
                         "for a class without ground truth)")
    tp = np.cumsum(is_tp, dtype=np.float64)
    fp = np.cumsum(~is_tp, dtype=np.float64)
    return tp / np.maximum(tp + fp, np.finfo(np.float64).eps), tp / num_positives


def average_precision(precision, recall, method: str = "all") -> float:
    """Area under a precision-recall curve, sampled as a benchmark does.

    ``precision, recall: [D]`` in rank order (recall non-decreasing).
    First the curve is made monotone: p(r) := max over r' >= r of p(r'). Then

    - ``"all"`` (VOC 2010+): sum over the points where recall rises of
      (r_i - r_{i-1}) * p(r_i) -- the exact area under the monotone curve.
    - ``"11point"`` (VOC 2007): mean of p(r) at r = 0, 0.1, ..., 1.0.
    - ``"101point"`` (COCO): mean of p(r) at r = 0, 0.01, ..., 1.0.

    A recall level never reached counts as precision 0. An empty list gives 0.
    (``coco_evaluate`` samples its 101 levels exactly as pycocotools does,
    ``np.linspace(0, 1, 101)``, where e.g. 0.07 is one ulp above 7/100; so its AP can
    differ from ``average_precision(..., "101point")`` when a recall hits a level exactly.)
    """
    precision = _array(precision, np.float64).ravel()
    recall = _array(recall, np.float64).ravel()
    if precision.shape != recall.shape:
        raise ValueError(f"average_precision: precision {precision.shape} and recall "
                         f"{recall.shape} must have the same length")
    if method == "all":
        r = np.concatenate([[0.0], recall, [1.0]])
        p = np.concatenate([[0.0], precision, [0.0]])
        p = np.maximum.accumulate(p[::-1])[::-1]  # monotone envelope from the right
        rises = np.nonzero(r[1:] != r[:-1])[0]
        return float(np.sum((r[rises + 1] - r[rises]) * p[rises + 1]))
    if method in ("11point", "101point"):
        steps = 10 if method == "11point" else 100
        # levels k / steps exactly: a recall of 3/10 reaches the level 0.3. (np.arange(0, 1.1,
        # 0.1), used by py-faster-rcnn, makes 0.3 one ulp larger, so there it does not.)
        levels = np.arange(steps + 1) / steps
        envelope = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
        # first rank whose recall reaches the level; beyond the last rank -> precision 0
        first = np.searchsorted(recall, levels, side="left")
        sampled = np.zeros(len(levels))
        reached = first < len(recall)
        sampled[reached] = envelope[first[reached]]
        return float(sampled.mean())
    raise ValueError(f"average_precision: method must be 'all', '11point' or '101point', "
                     f"got {method!r}")


# ---------------------------------------------------------------------------
# IoU
# ---------------------------------------------------------------------------

def pairwise_box_iou(boxes1, boxes2, crowd=None) -> np.ndarray:
    """IoU of every box in ``boxes1 [N, 4]`` with every box in ``boxes2 [M, 4]`` (xyxy).

    IoU = |A n B| / |A u B|. Where ``crowd[j]`` is True the denominator is |A| (the
    area of the box from ``boxes1``), as COCO scores detections against crowd regions.
    Returns float64 ``[N, M]``; 0 where the union is empty.
    """
    a = _array(boxes1, np.float64).reshape(-1, 4)
    b = _array(boxes2, np.float64).reshape(-1, 4)
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    w = np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = area_a[:, None] + area_b[None, :] - inter
    if crowd is not None:
        union = np.where(_array(crowd).astype(bool)[None, :], area_a[:, None], union)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def mask_iou(masks1, masks2, crowd=None) -> np.ndarray:
    """IoU of binary masks ``masks1 [N, H, W]`` with ``masks2 [M, H, W]`` -> ``[N, M]``.

    Each mask is a set of pixels: IoU = |A n B| / |A u B|, the intersections counted
    as a product of the flattened masks ``[N, HW] x [HW, M]``. ``crowd`` as in ``pairwise_box_iou``.
    Float masks are thresholded at 0.5, integer / bool masks at != 0.
    """
    m1, m2 = _binary_masks(masks1, "mask_iou"), _binary_masks(masks2, "mask_iou")
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
    union = area1[:, None] + area2[None, :] - inter
    if crowd is not None:
        union = np.where(_array(crowd).astype(bool)[None, :], area1[:, None], union)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _binary_masks(masks, op: str) -> np.ndarray:
    m = _array(masks)
    if m.ndim != 3:
        raise ValueError(f"{op}: masks must be [N, H, W], got shape {m.shape}")
    return m > 0.5 if m.dtype.kind == "f" else m.astype(bool)


# ---------------------------------------------------------------------------
# Input checking: per-image dicts -> flat arrays
# ---------------------------------------------------------------------------

def _pair_images(predictions, targets, op: str):
    """[(image_id, prediction, target)] from two lists or two dicts keyed by image id."""
    if isinstance(targets, Mapping):
        if not isinstance(predictions, Mapping):
            raise TypeError(f"{op}: targets is a dict keyed by image id, so predictions must "
                            f"be one too, got {type(predictions).__name__}")
        unknown = [k for k in predictions if k not in targets]
        if unknown:
            raise KeyError(f"{op}: predictions for unknown image id(s) {unknown[:5]} "
                           f"(not in targets)")
        ids = sorted(targets, key=lambda k: (str(type(k)), k))
        empty = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}
        return [(k, predictions.get(k, empty), targets[k]) for k in ids]
    predictions, targets = list(predictions), list(targets)
    if len(predictions) != len(targets):
        raise ValueError(f"{op}: got predictions for {len(predictions)} images but targets "
                         f"for {len(targets)} (one dict per image, same order; a prediction "
                         f"for an unknown image?)")
    return [(i, p, t) for i, (p, t) in enumerate(zip(predictions, targets))]


def _field(d, key, op, image_id, kind, required=True):
    if not isinstance(d, Mapping):
        raise TypeError(f"{op}: image {image_id!r}: each {kind} must be a dict, "
                        f"got {type(d).__name__}")
    if key not in d:
        if required:
            raise KeyError(f"{op}: image {image_id!r}: {kind} has no {key!r} "
                           f"(keys: {sorted(d)})")
        return None
    return _array(d[key])


def _boxes(d, op, image_id, kind):
    boxes = _field(d, "boxes", op, image_id, kind).astype(np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: image {image_id!r}: {kind} boxes must be [n, 4] xyxy, "
                         f"got shape {boxes.shape}")
    if not np.isfinite(boxes).all():
        raise ValueError(f"{op}: image {image_id!r}: {kind} boxes contain NaN or inf")
    if (boxes[:, 2] < boxes[:, 0]).any() or (boxes[:, 3] < boxes[:, 1]).any():
        raise ValueError(f"{op}: image {image_id!r}: {kind} boxes must be xyxy with "
                         f"x2 >= x1 and y2 >= y1")
    return boxes


def _labels(d, n, op, image_id, kind, num_classes):
    labels = _field(d, "labels", op, image_id, kind).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"{op}: image {image_id!r}: {kind} has {n} boxes but "
                         f"{labels.shape[0]} labels")
    if n and labels.dtype.kind == "f" and (labels != np.round(labels)).any():
        raise ValueError(f"{op}: image {image_id!r}: {kind} labels must be integers")
    labels = labels.astype(np.int64)
    if num_classes is not None and n and (labels.min() < 1 or labels.max() > num_classes):
        bad = labels[(labels < 1) | (labels > num_classes)]
        raise ValueError(f"{op}: image {image_id!r}: {kind} has unknown class(es) "
                         f"{sorted(set(bad.tolist()))}; classes are 1..{num_classes} "
                         f"(0 is background)")
    return labels


def _per_object(d, key, n, op, image_id, default):
    value = _field(d, key, op, image_id, "target", required=False)
    if value is None:
        return np.full(n, default)
    value = value.reshape(-1)
    if value.shape[0] != n:
        raise ValueError(f"{op}: image {image_id!r}: target has {n} boxes but {key!r} "
                         f"has {value.shape[0]} entries")
    return value


def _image_masks(d, n, op, image_id, kind):
    masks = _field(d, "masks", op, image_id, kind, required=n > 0)
    if masks is None:
        return None  # no objects and no masks given: nothing to check
    if masks.ndim != 3 or masks.shape[0] != n:
        raise ValueError(f"{op}: image {image_id!r}: {kind} masks must be [{n}, H, W] "
                         f"(one per box), got shape {masks.shape}")
    return _binary_masks(masks, op)


def _one_image(index, image_id, pred, target, num_classes, op, use_masks):
    """One image's detections sorted by (class, -score) and ground truth sorted by class."""
    gb = _boxes(target, op, image_id, "target")
    gl = _labels(target, len(gb), op, image_id, "target", num_classes)
    db = _boxes(pred, op, image_id, "prediction")
    dl = _labels(pred, len(db), op, image_id, "prediction", num_classes)
    ds = _field(pred, "scores", op, image_id, "prediction").astype(np.float64).reshape(-1)
    if ds.shape[0] != len(db):
        raise ValueError(f"{op}: image {image_id!r}: prediction has {len(db)} boxes but "
                         f"{ds.shape[0]} scores")
    if not np.isfinite(ds).all():
        raise ValueError(f"{op}: image {image_id!r}: prediction scores contain NaN or inf")
    crowd = _per_object(target, "iscrowd", len(gb), op, image_id, False).astype(bool)
    difficult = _per_object(target, "difficult", len(gb), op, image_id, False).astype(bool)
    given_area = _per_object(target, "area", len(gb), op, image_id, np.nan).astype(np.float64)
    d_order = np.lexsort((-ds, dl))  # by class, then best score first (stable: ties keep order)
    g_order = np.argsort(gl, kind="stable")
    out = {"det_image": np.full(len(db), index), "det_label": dl[d_order],
           "det_score": ds[d_order], "det_boxes": db[d_order], "det_row": np.arange(len(db)),
           "gt_image": np.full(len(gb), index), "gt_label": gl[g_order], "gt_boxes": gb[g_order],
           "gt_ignore": (crowd | difficult)[g_order], "gt_crowd": crowd[g_order],
           "gt_row": np.arange(len(gb))}
    if use_masks:
        dm = _image_masks(pred, len(db), op, image_id, "prediction")
        gm = _image_masks(target, len(gb), op, image_id, "target")
        if dm is not None and gm is not None and dm.shape[1:] != gm.shape[1:]:
            raise ValueError(f"{op}: image {image_id!r}: prediction masks are "
                             f"{dm.shape[1]}x{dm.shape[2]} but target masks are "
                             f"{gm.shape[1]}x{gm.shape[2]}")
        dm = np.zeros((0, 1, 1), bool) if dm is None else dm[d_order]
        gm = np.zeros((0, 1, 1), bool) if gm is None else gm[g_order]
        out["det_mask"], out["gt_mask"] = dm, gm
        out["det_area"] = dm.sum(axis=(1, 2)).astype(np.float64)
        g_area = gm.sum(axis=(1, 2)).astype(np.float64)
    else:
        b = out["det_boxes"]
        out["det_area"] = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
        b = out["gt_boxes"]
        g_area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    # COCO scores by the "area" of the annotation when given (for COCO it is the mask area)
    out["gt_area"] = np.where(np.isnan(given_area[g_order]), g_area, given_area[g_order])
    return out


def _flatten(predictions, targets, num_classes, op, use_masks=False):
    """Check every image and gather all objects into flat arrays sorted by (image, class, -score).

    Returns ``(flat, num_classes, image_ids)`` where ``flat`` is a dict of arrays; with
    masks, ``flat['det_mask'] / ['gt_mask']`` are per-image lists indexed by ``*_row``.
    """
    pairs = _pair_images(predictions, targets, op)
    if num_classes is None:
        # infer from the ground truth; a detection of a class no image contains is then an error
        num_classes = 0
        for image_id, _, target in pairs:
            n = len(_boxes(target, op, image_id, "target"))
            labels = _labels(target, n, op, image_id, "target", None)
            num_classes = max(num_classes, int(labels.max()) if n else 0)
    elif not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{op}: num_classes must be a positive int, got {num_classes!r}")
    parts = [_one_image(i, image_id, p, t, num_classes, op, use_masks)
             for i, (image_id, p, t) in enumerate(pairs)]
    flat = {}
    for key in ("det_image", "det_label", "det_score", "det_boxes", "det_row", "det_area",
                "gt_image", "gt_label", "gt_boxes", "gt_ignore", "gt_crowd", "gt_row",
                "gt_area"):
        values = [p[key] for p in parts]
        flat[key] = np.concatenate(values) if values else np.zeros(0)
    flat["det_boxes"] = flat["det_boxes"].reshape(-1, 4).astype(np.float64)
    flat["gt_boxes"] = flat["gt_boxes"].reshape(-1, 4).astype(np.float64)
    for key in ("det_image", "det_label", "det_row", "gt_image", "gt_label", "gt_row"):
        flat[key] = flat[key].astype(np.int64)
    for key in ("gt_ignore", "gt_crowd"):
        flat[key] = flat[key].astype(bool)
    if use_masks:
        flat["det_mask"] = [p["det_mask"] for p in parts]
        flat["gt_mask"] = [p["gt_mask"] for p in parts]
    return flat, int(num_classes), [p[0] for p in pairs]


def _take(flat, keep, prefix):
    """Keep a subset of the detections (``prefix='det_'``) in every flat array."""
    for key in list(flat):
        if key.startswith(prefix) and key != prefix + "mask":
            flat[key] = flat[key][keep]


def _groups(flat, num_classes):
    """One group per (image, class) present. Returns det/gt [lo, hi) ranges per group."""
    det_key = flat["det_image"] * (num_classes + 1) + flat["det_label"]  # already sorted
    gt_key = flat["gt_image"] * (num_classes + 1) + flat["gt_label"]
    keys = np.union1d(det_key, gt_key)
    return (np.searchsorted(det_key, keys, "left"), np.searchsorted(det_key, keys, "right"),
            np.searchsorted(gt_key, keys, "left"), np.searchsorted(gt_key, keys, "right"))


def _rank_in_group(lo, hi, total):
    """Position of each item inside its group (0 for the best-scored detection)."""
    counts = hi - lo
    return np.arange(total) - np.repeat(lo, counts)


def _group_pairs(det_lo, det_hi, gt_lo, gt_hi):
    """All (detection, gt) pairs inside each group, detection-major, and each group's offset."""
    nd, ng = det_hi - det_lo, gt_hi - gt_lo
    sizes = nd * ng
    iou_lo = (np.cumsum(sizes) - sizes).astype(np.int64)
    local = np.arange(sizes.sum()) - np.repeat(iou_lo, sizes)
    ng_rep = np.repeat(ng, sizes)
    det = np.repeat(det_lo, sizes) + local // np.maximum(ng_rep, 1)
    gt = np.repeat(gt_lo, sizes) + local % np.maximum(ng_rep, 1)
    return det, gt, iou_lo


def _paired_box_iou(a, b, crowd):
    """IoU of box a[i] with box b[i] (xyxy, rows paired); crowd[i] -> denominator area(a[i])."""
    w = np.clip(np.minimum(a[:, 2], b[:, 2]) - np.maximum(a[:, 0], b[:, 0]), 0, None)
    h = np.clip(np.minimum(a[:, 3], b[:, 3]) - np.maximum(a[:, 1], b[:, 1]), 0, None)
    inter = w * h
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = np.where(crowd, area_a, area_a + area_b - inter)
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def _pair_ious(flat, det, gt, use_masks):
    """IoU of each (detection, gt) pair: boxes in one vectorized pass, masks per image."""
    crowd = flat["gt_crowd"][gt]
    if not use_masks:
        return _paired_box_iou(flat["det_boxes"][det], flat["gt_boxes"][gt], crowd)
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


# ---------------------------------------------------------------------------
# COCO
# ---------------------------------------------------------------------------

@dataclass(eq=False)
class CocoEvalResult:
    """COCO evaluation tables (pycocotools' ``COCOeval.eval``) and their summary.

    ``precision [T, R, K, A, M]``: interpolated precision at IoU threshold t, recall
    level r, class k, area range a, max detections m; ``recall [T, K, A, M]``: the
    final recall. Both are -1 where the class has no (non-ignored) ground truth.
    """

    precision: np.ndarray
    recall: np.ndarray
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray
    class_ids: np.ndarray
    area_ranges: dict
    max_dets: tuple
    iou_type: str = "bbox"

    def _select(self, table, iou, area, max_dets, class_id):
        t = (slice(None) if iou is None
             else np.nonzero(np.isclose(self.iou_thresholds, iou))[0])
        if iou is not None and len(t) == 0:
            raise ValueError(f"CocoEvalResult: IoU {iou} is not one of the thresholds "
                             f"{self.iou_thresholds.tolist()}")
        if area not in self.area_ranges:
            raise ValueError(f"CocoEvalResult: unknown area range {area!r}, have "
                             f"{list(self.area_ranges)}")
        max_dets = self.max_dets[-1] if max_dets is None else max_dets
        if max_dets not in self.max_dets:
            raise ValueError(f"CocoEvalResult: max_dets {max_dets} not in {self.max_dets}")
        a, m = list(self.area_ranges).index(area), list(self.max_dets).index(max_dets)
        k = slice(None)
        if class_id is not None:
            found = np.nonzero(self.class_ids == class_id)[0]
            if len(found) == 0:
                raise ValueError(f"CocoEvalResult: unknown class {class_id}")
            k = found
        s = table[t]
        return s[..., k, a, m]

    def ap(self, iou=None, area="all", max_dets=None, class_id=None) -> float:
        """Mean precision over the selected IoU thresholds, recall levels and classes (-1: none)."""
        s = self._select(self.precision, iou, area, max_dets, class_id)
        valid = s[s > -1]
        return float(valid.mean()) if valid.size else -1.0

    def ar(self, iou=None, area="all", max_dets=None, class_id=None) -> float:
        """Mean final recall over the selected IoU thresholds and classes (-1: none)."""
        s = self._select(self.recall, iou, area, max_dets, class_id)
        valid = s[s > -1]
        return float(valid.mean()) if valid.size else -1.0

    @property
    def stats(self) -> dict:
        """The 12 numbers of pycocotools' summary, by name (AP, AP50, AP75, AP_small, ...)."""
        out = {"AP": self.ap(), "AP50": self.ap(iou=0.5), "AP75": self.ap(iou=0.75)}
        areas = [a for a in self.area_ranges if a != "all"]
        out.update({f"AP_{a}": self.ap(area=a) for a in areas})
        out.update({f"AR{m}": self.ar(max_dets=m) for m in self.max_dets})
        out.update({f"AR_{a}": self.ar(area=a) for a in areas})
        return out

    @property
    def per_class_ap(self) -> dict:
        """{class id: AP@[.5:.95]} (area "all", most detections); -1: class without ground truth."""
        return {int(k): self.ap(class_id=k) for k in self.class_ids}

    def summary(self) -> str:
        """pycocotools' printed summary, one line per number."""
        t0, t1 = self.iou_thresholds[0], self.iou_thresholds[-1]
        lines = []
        for name, value in self.stats.items():
            kind = "Average Precision  (AP)" if name.startswith("AP") else "Average Recall     (AR)"
            iou = {"AP50": "0.50", "AP75": "0.75"}.get(name, f"{t0:0.2f}:{t1:0.2f}")
            area = name.split("_", 1)[1] if "_" in name else "all"
            dets = int(name[2:]) if name[2:].isdigit() and name[:2] == "AR" else self.max_dets[-1]
            lines.append(f" {kind} @[ IoU={iou:<9} | area={area:>6s} | maxDets={dets:>3d} ]"
                         f" = {value:0.3f}")
        return "\n".join(lines)


def coco_evaluate(predictions, targets, iou_type: str = "bbox", num_classes=None,
                  iou_thresholds=None, area_ranges=None, max_dets=COCO_MAX_DETS,
                  use_crowd: bool = True) -> CocoEvalResult:
    """COCO detection / instance-segmentation evaluation (pycocotools' algorithm).

    For each image and class, detections (best score first, at most ``max(max_dets)``)
    are matched greedily to ground truth at each IoU threshold (0.50:0.05:0.95) and for
    each area range (all, small < 32^2, medium < 96^2, large; by ground-truth area).
    Per class, area range and detection budget m (1, 10, 100 per image and class),
    the detections of all images are ranked by score, and precision is read off the
    monotone precision-recall curve at the 101 recall levels 0:0.01:1 (0 past the
    largest recall reached). AP = mean of those, over thresholds and classes.

    Args:
        predictions, targets: see the module docstring.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU from ``masks``).
        num_classes: classes are 1..num_classes; default: the largest ground-truth label.
        area_ranges: ``{name: (lo, hi)}`` in pixels^2, "all" first (see ``scaled_area_ranges``).
        use_crowd: honour the targets' ``iscrowd`` flags (ignored regions).
    Returns:
        a ``CocoEvalResult``: ``.stats`` (AP, AP50, AP75, AP_small, ..., AR100, ...),
        ``.per_class_ap``, ``.summary()``, and the full ``precision``/``recall`` tables.

    Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014;
    cocodataset/cocoapi ``PythonAPI/pycocotools/cocoeval.py``.
    """
    op = "coco_evaluate"
    if iou_type not in ("bbox", "segm"):
        raise ValueError(f"{op}: iou_type must be 'bbox' or 'segm', got {iou_type!r}")
    thresholds = (COCO_IOU_THRESHOLDS if iou_thresholds is None
                  else np.asarray(iou_thresholds, np.float64).reshape(-1))
    areas = dict(COCO_AREA_RANGES if area_ranges is None else area_ranges)
    if "all" not in areas:
        raise ValueError(f"{op}: area_ranges must contain 'all', got {list(areas)}")
    max_dets = tuple(sorted(int(m) for m in max_dets))
    if not max_dets or max_dets[0] < 1:
        raise ValueError(f"{op}: max_dets must be positive ints, got {max_dets}")
    flat, num_classes, _ = _flatten(predictions, targets, num_classes, op,
                                    use_masks=iou_type == "segm")
    if not use_crowd:
        flat["gt_crowd"][:] = False
        flat["gt_ignore"][:] = False
    # keep at most max(max_dets) detections per image and class (pycocotools does)
    det_lo, det_hi, _, _ = _groups(flat, num_classes)
    _take(flat, _rank_in_group(det_lo, det_hi, len(flat["det_label"])) < max_dets[-1], "det_")
    det_lo, det_hi, gt_lo, gt_hi = _groups(flat, num_classes)
    det, gt, iou_lo = _group_pairs(det_lo, det_hi, gt_lo, gt_hi)
    ious = _pair_ious(flat, det, gt, iou_type == "segm")

    num_a, num_t = len(areas), len(thresholds)
    num_d, num_g = len(flat["det_label"]), len(flat["gt_label"])
    dt_matched = np.zeros((num_a, num_t, num_d), dtype=bool)
    dt_ignored = np.zeros((num_a, num_t, num_d), dtype=bool)
    gt_ignored = np.zeros((num_a, num_g), dtype=bool)
    lo = np.array([a[0] for a in areas.values()], np.float64)
    hi = np.array([a[1] for a in areas.values()], np.float64)
    coco_match(ious, iou_lo, det_lo, det_hi, gt_lo, gt_hi, flat["det_area"], flat["gt_area"],
               flat["gt_ignore"], flat["gt_crowd"], lo, hi, thresholds,
               dt_matched, dt_ignored, gt_ignored)
    rank = _rank_in_group(det_lo, det_hi, num_d)
    precision, recall = _accumulate(flat, rank, dt_matched, dt_ignored, gt_ignored,
                                    num_classes, thresholds, max_dets)
    return CocoEvalResult(precision, recall, thresholds, COCO_RECALL_THRESHOLDS.copy(),
                          np.arange(1, num_classes + 1), areas, max_dets, iou_type)


def _accumulate(flat, rank, dt_matched, dt_ignored, gt_ignored, num_classes, thresholds,
                max_dets):
    """pycocotools' ``accumulate``: precision at 101 recall levels per (t, k, a, m)."""
    levels = COCO_RECALL_THRESHOLDS
    num_t, num_r, num_a, num_m = len(thresholds), len(levels), gt_ignored.shape[0], len(max_dets)
    precision = -np.ones((num_t, num_r, num_classes, num_a, num_m))
    recall = -np.ones((num_t, num_classes, num_a, num_m))
    det_by_class = np.argsort(flat["det_label"], kind="stable")  # keeps (image, score) order
    class_bounds = np.searchsorted(flat["det_label"][det_by_class],
                                   np.arange(1, num_classes + 2))
    for k in range(num_classes):
        dets_k = det_by_class[class_bounds[k]: class_bounds[k + 1]]
        gts_k = flat["gt_label"] == k + 1
        for a in range(num_a):
            num_pos = int(np.count_nonzero(~gt_ignored[a, gts_k]))
            if num_pos == 0:
                continue  # no ground truth in this class and area range: stays -1
            for m, budget in enumerate(max_dets):
                kept = dets_k[rank[dets_k] < budget]
                order = kept[np.argsort(-flat["det_score"][kept], kind="mergesort")]
                matched, ignored = dt_matched[a][:, order], dt_ignored[a][:, order]
                tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
                fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
                rc = tp / num_pos
                pr = tp / (tp + fp + np.spacing(1))
                recall[:, k, a, m] = rc[:, -1] if len(order) else 0.0
                if not len(order):
                    precision[:, :, k, a, m] = 0.0
                    continue
                pr = np.maximum.accumulate(pr[:, ::-1], axis=1)[:, ::-1]  # monotone envelope
                for t in range(num_t):
                    first = np.searchsorted(rc[t], levels, side="left")
                    q = np.zeros(num_r)
                    reached = first < len(order)
                    q[reached] = pr[t, first[reached]]
                    precision[t, :, k, a, m] = q
    return precision, recall


# ---------------------------------------------------------------------------
# PASCAL VOC
# ---------------------------------------------------------------------------

@dataclass(eq=False)
class VocEvalResult:
    """Per-class AP (-1: no non-difficult ground truth), their mean, and each PR curve."""

    ap: dict
    mAP: float
    precision: dict
    recall: dict
    num_positives: dict
    iou_threshold: float = 0.5
    use_07_metric: bool = False


def voc_evaluate(predictions, targets, num_classes=None, iou_threshold: float = 0.5,
                 use_07_metric: bool = False) -> VocEvalResult:
    """PASCAL VOC detection AP per class and mAP (VOC2007 11-point or VOC2010+ all-point).

    Per class, detections of all images are ranked by score. Each is matched to the
    ground-truth box of its class in its image with the largest IoU:

    - IoU >= threshold and that box is "difficult": ignored (neither TP nor FP);
    - IoU >= threshold and that box not found yet: TP (the box is now found);
    - otherwise (already found -- a duplicate -- or IoU too low): FP.

    AP = ``average_precision(precision, recall, "11point" if use_07_metric else "all")``
    with recall over the non-difficult boxes. mAP = mean over classes that have any.

    Reference: Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
    IJCV 2010; the VOC devkit ``VOCevaldet.m``.
    """
    op = "voc_evaluate"
    flat, num_classes, _ = _flatten(predictions, targets, num_classes, op)
    det_lo, det_hi, gt_lo, gt_hi = _groups(flat, num_classes)
    det, gt, _ = _group_pairs(det_lo, det_hi, gt_lo, gt_hi)
    ious = _paired_box_iou(flat["det_boxes"][det], flat["gt_boxes"][gt],
                           np.zeros(len(det), dtype=bool))
    # best gt per detection: largest IoU, first one on ties (as argmax)
    num_d = len(flat["det_label"])
    best = np.full(num_d, -np.inf)
    np.maximum.at(best, det, ious)
    best_gt = np.full(num_d, np.iinfo(np.int64).max)
    on_best = ious == best[det]
    np.minimum.at(best_gt, det[on_best], gt[on_best])
    hit = best >= iou_threshold
    difficult = np.zeros(num_d, dtype=bool)
    difficult[hit] = flat["gt_ignore"][best_gt[hit]]
    result = VocEvalResult({}, -1.0, {}, {}, {}, iou_threshold, use_07_metric)
    for k in range(1, num_classes + 1):
        dets = np.nonzero(flat["det_label"] == k)[0]
        dets = dets[np.argsort(-flat["det_score"][dets], kind="mergesort")]
        num_pos = int(np.count_nonzero((flat["gt_label"] == k) & ~flat["gt_ignore"]))
        result.num_positives[k] = num_pos
        if num_pos == 0:
            result.ap[k] = -1.0
            result.precision[k] = result.recall[k] = np.zeros(0)
            continue
        ignored = hit[dets] & difficult[dets]
        candidates = hit[dets] & ~difficult[dets]
        is_tp = np.zeros(len(dets), dtype=bool)
        # a box is found by the first (best-scored) detection that takes it; later ones are FPs
        taken_by = best_gt[dets][candidates]
        _, first = np.unique(taken_by, return_index=True)
        is_tp[np.nonzero(candidates)[0][first]] = True
        precision, recall = precision_recall(is_tp, num_pos, ignored)
        result.precision[k], result.recall[k] = precision, recall
        result.ap[k] = average_precision(precision, recall,
                                         "11point" if use_07_metric else "all")
    valid = [v for v in result.ap.values() if v > -1]
    result.mAP = float(np.mean(valid)) if valid else -1.0
    return result


# ---------------------------------------------------------------------------
# Semantic segmentation
# ---------------------------------------------------------------------------

def confusion_matrix(pred, target, num_classes: int, ignore_index: int | None = 255):
    """Pixel counts ``C [K, K]``: C[i, j] = pixels of true class i predicted as class j.

    ``pred, target``: integer label maps of the same shape (e.g. ``[N, H, W]``; take the
    argmax over the class axis of the logits first). Pixels whose target equals
    ``ignore_index`` (void / object borders in VOC) are not counted.
    """
    op = "confusion_matrix"
    pred, target = _array(pred), _array(target)
    if pred.shape != target.shape:
        raise ValueError(f"{op}: pred {pred.shape} and target {target.shape} must have the "
                         f"same shape (label maps; argmax the logits first)")
    for name, a in (("pred", pred), ("target", target)):
        if a.dtype.kind not in "iub":
            raise TypeError(f"{op}: {name} must hold integer class labels, got {a.dtype}")
    pred, target = pred.astype(np.int64).ravel(), target.astype(np.int64).ravel()
    keep = np.ones(len(target), bool) if ignore_index is None else target != ignore_index
    pred, target = pred[keep], target[keep]
    for name, a in (("target", target), ("pred", pred)):
        if a.size and (a.min() < 0 or a.max() >= num_classes):
            raise ValueError(f"{op}: {name} has labels outside 0..{num_classes - 1} "
                             f"(min {a.min()}, max {a.max()}; ignore_index={ignore_index})")
    return np.bincount(target * num_classes + pred,
                       minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def segmentation_scores(confmat) -> dict:
    """Pixel accuracy, mean class accuracy and mean IoU from a confusion matrix ``C [K, K]``.

    With n_ij = C[i, j] and t_i = sum_j n_ij (pixels of class i):

        pixel accuracy      = sum_i n_ii / sum_i t_i
        mean class accuracy = mean_i n_ii / t_i
        mean IoU            = mean_i n_ii / (t_i + sum_j n_ji - n_ii)

    A class absent from the target has no accuracy (NaN, left out of the mean); its
    IoU is 0 if it was predicted somewhere, NaN (left out) if it was not.
    """
    c = _array(confmat).astype(np.float64)
    if c.ndim != 2 or c.shape[0] != c.shape[1]:
        raise ValueError(f"segmentation_scores: confusion matrix must be [K, K], got {c.shape}")
    diag, true_count, pred_count = np.diag(c), c.sum(1), c.sum(0)
    union = true_count + pred_count - diag
    class_acc = np.divide(diag, true_count, out=np.full(len(c), np.nan), where=true_count > 0)
    iou = np.divide(diag, union, out=np.full(len(c), np.nan), where=union > 0)
    total = c.sum()

    def mean(x):
        x = x[~np.isnan(x)]
        return float(x.mean()) if x.size else float("nan")

    return {"pixel_accuracy": float(diag.sum() / total) if total else float("nan"),
            "mean_class_accuracy": mean(class_acc), "mean_iou": mean(iou),
            "class_accuracy": class_acc, "iou": iou}


class ConfusionMatrix:
    """Accumulates a segmentation confusion matrix over batches.

        cm = ConfusionMatrix(num_classes=21, ignore_index=255)
        for images, masks in loader:
            cm.update(model(images).argmax(1), masks)
        cm.compute()["mean_iou"]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
            raise ValueError(f"ConfusionMatrix: num_classes must be a positive int, "
                             f"got {num_classes!r}")
        self.num_classes, self.ignore_index = int(num_classes), ignore_index
        self.matrix = np.zeros((num_classes, num_classes), dtype=np.int64)

    def update(self, pred, target) -> None:
        self.matrix += confusion_matrix(pred, target, self.num_classes, self.ignore_index)

    def reset(self) -> None:
        self.matrix[:] = 0

    def compute(self) -> dict:
        return segmentation_scores(self.matrix)
