"""Checking the evaluators' input and turning it into flat arrays (VOC and COCO share this).

Inputs: ``predictions`` and ``targets`` are either two lists (one dict per image,
same order) or two dicts keyed by image id. A prediction dict has ``boxes``
``[D, 4]``, ``scores [D]``, ``labels [D]`` (1..K, 0 is background), and
``masks [D, H, W]`` for mask evaluation; a target dict has ``boxes [G, 4]``,
``labels [G]``, optional ``masks [G, H, W]``, ``difficult [G]``,
``iscrowd [G]`` and ``area [G]``. ndarrays or Tensors. Every problem (a missing
key, a box with x2 < x1, a label outside 1..K, a score that is NaN, masks of the
wrong size) is an error naming the evaluator and the image.

``flatten`` checks every image and gathers all objects into flat arrays, sorted by
(image, class, -score); the evaluators then work on *groups*, one group = the
detections and ground truth of one class in one image (``groups``, ``group_pairs``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from minidl.autograd.function import as_array
from minidl.vision.boxes import box_area, check_boxes


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
    return as_array(d[key])


def _boxes(d, op, image_id, kind):
    boxes = _field(d, "boxes", op, image_id, kind).astype(np.float64)
    if boxes.size == 0:
        return boxes.reshape(0, 4)
    if boxes.ndim != 2 or boxes.shape[1] != 4:
        raise ValueError(f"{op}: image {image_id!r}: {kind} boxes must be [n, 4] xyxy, "
                         f"got shape {boxes.shape}")
    check_boxes(boxes, f"{op}: image {image_id!r}", f"{kind} boxes")
    return boxes


def _labels(d, n, op, image_id, kind):
    labels = _field(d, "labels", op, image_id, kind).reshape(-1)
    if labels.shape[0] != n:
        raise ValueError(f"{op}: image {image_id!r}: {kind} has {n} boxes but "
                         f"{labels.shape[0]} labels")
    if n and labels.dtype.kind == "f" and (labels != np.round(labels)).any():
        raise ValueError(f"{op}: image {image_id!r}: {kind} labels must be integers")
    return labels.astype(np.int64)


def _check_classes(labels, num_classes, op, image_id, kind) -> None:
    if labels.size and (labels.min() < 1 or labels.max() > num_classes):
        bad = labels[(labels < 1) | (labels > num_classes)]
        raise ValueError(f"{op}: image {image_id!r}: {kind} has unknown class(es) "
                         f"{sorted(set(bad.tolist()))}; classes are 1..{num_classes} "
                         f"(0 is background)")


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
    return binary_masks(masks, op)


def _one_image(index, image_id, pred, target, op, use_masks):
    """One image's detections sorted by (class, -score) and ground truth sorted by class."""
    gb = _boxes(target, op, image_id, "target")
    gl = _labels(target, len(gb), op, image_id, "target")
    db = _boxes(pred, op, image_id, "prediction")
    dl = _labels(pred, len(db), op, image_id, "prediction")
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
        out["gt_area"] = gm.sum(axis=(1, 2)).astype(np.float64)
    out["gt_given_area"] = given_area[g_order]
    return out


def flatten(predictions, targets, num_classes, op, use_masks=False):
    """Check every image and gather all objects into flat arrays sorted by (image, class, -score).

    Returns ``(flat, num_classes, image_ids)`` where ``flat`` is a dict of arrays; with
    masks, ``flat['det_mask'] / ['gt_mask']`` are per-image lists indexed by ``*_row``.
    """
    pairs = _pair_images(predictions, targets, op)
    parts = [_one_image(i, image_id, p, t, op, use_masks)
             for i, (image_id, p, t) in enumerate(pairs)]
    if num_classes is None:
        # from the ground truth; a detection of a class no image contains is then an error
        num_classes = max([int(p["gt_label"].max()) for p in parts if p["gt_label"].size],
                          default=0)
    elif not isinstance(num_classes, (int, np.integer)) or num_classes < 1:
        raise ValueError(f"{op}: num_classes must be a positive int, got {num_classes!r}")
    for (image_id, _, _), part in zip(pairs, parts):
        _check_classes(part["gt_label"], num_classes, op, image_id, "target")
        _check_classes(part["det_label"], num_classes, op, image_id, "prediction")
    keys = ["det_image", "det_label", "det_score", "det_boxes", "det_row", "gt_image",
            "gt_label", "gt_boxes", "gt_ignore", "gt_crowd", "gt_row", "gt_given_area"]
    flat = {}
    for key in keys + (["det_area", "gt_area"] if use_masks else []):
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
    else:
        flat["det_area"], flat["gt_area"] = box_area(flat["det_boxes"]), box_area(flat["gt_boxes"])
    # COCO scores by the "area" of the annotation when given (for COCO it is the mask area)
    given = flat.pop("gt_given_area").astype(np.float64)
    flat["gt_area"] = np.where(np.isnan(given), flat["gt_area"], given)
    return flat, int(num_classes), [p[0] for p in pairs]


def keep_detections(flat, keep) -> None:
    """Keep a subset of the detections (``keep``: a bool mask or indices) in every flat array."""
    for key in list(flat):
        if key.startswith("det_") and key != "det_mask":
            flat[key] = flat[key][keep]


def groups(flat, num_classes):
    """One group per (image, class) present. Returns det/gt [lo, hi) ranges per group."""
    det_key = flat["det_image"] * (num_classes + 1) + flat["det_label"]  # already sorted
    gt_key = flat["gt_image"] * (num_classes + 1) + flat["gt_label"]
    keys = np.union1d(det_key, gt_key)
    return (np.searchsorted(det_key, keys, "left"), np.searchsorted(det_key, keys, "right"),
            np.searchsorted(gt_key, keys, "left"), np.searchsorted(gt_key, keys, "right"))


def rank_in_group(lo, hi, total):
    """Position of each item inside its group (0 for the best-scored detection)."""
    counts = hi - lo
    return np.arange(total) - np.repeat(lo, counts)


def group_pairs(det_lo, det_hi, gt_lo, gt_hi):
    """All (detection, gt) pairs inside each group, detection-major, and each group's offset."""
    nd, ng = det_hi - det_lo, gt_hi - gt_lo
    sizes = nd * ng
    iou_lo = (np.cumsum(sizes) - sizes).astype(np.int64)
    local = np.arange(sizes.sum()) - np.repeat(iou_lo, sizes)
    ng_rep = np.repeat(ng, sizes)
    det = np.repeat(det_lo, sizes) + local // np.maximum(ng_rep, 1)
    gt = np.repeat(gt_lo, sizes) + local % np.maximum(ng_rep, 1)
    return det, gt, iou_lo


def binary_masks(masks, op: str) -> np.ndarray:
    """[N, H, W] masks as bool: float masks thresholded at 0.5, integer / bool ones at != 0."""
    m = as_array(masks)
    if m.ndim != 3:
        raise ValueError(f"{op}: masks must be [N, H, W], got shape {m.shape}")
    return m > 0.5 if m.dtype.kind == "f" else m.astype(bool)
