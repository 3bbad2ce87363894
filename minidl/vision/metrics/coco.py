"""COCO detection and instance-segmentation evaluation (pycocotools' algorithm).

COCO averages AP over 10 IoU thresholds 0.50:0.05:0.95 (AP@[.5:.95]), so a detector
must also place its boxes precisely, and reports it by object size and by the number
of detections allowed per image. For each image and class the detections, best score
first, are matched greedily to the ground truth at each threshold and for each area
range (the loop is the numba kernel ``minidl.kernels.detection_eval.coco_match``);
then per class the detections of all images are ranked and the interpolated
precision is read at the 101 recalls 0:0.01:1 (``ranking.precision_at_recall_levels``).

Conventions (pycocotools'):

- A detection matches when IoU >= threshold; a duplicate of a found object is a FP.
- "iscrowd" regions are ignored: a detection matched to one is neither a TP nor an
  FP; a crowd region may absorb any number of detections, and its IoU is
  intersection / detection area (``minidl.vision.boxes.iou_from_areas``).
- A class with no ground truth has AP = -1 and is left out of every mean; a class
  with ground truth but no detection has AP = 0.
- At most ``max_dets`` detections per image *and per class* are kept, the highest
  scored.

Reference: Lin et al., "Microsoft COCO: Common Objects in Context", ECCV 2014;
cocodataset/cocoapi ``PythonAPI/pycocotools/cocoeval.py``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minidl.kernels.detection_eval import coco_match
from minidl.vision.metrics.inputs import (
    flatten,
    group_pairs,
    groups,
    keep_detections,
    rank_in_group,
)
from minidl.vision.metrics.iou import pair_ious
from minidl.vision.metrics.ranking import precision_at_recall_levels

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
        predictions, targets: see ``minidl.vision.metrics.inputs``.
        iou_type: ``"bbox"`` (box IoU) or ``"segm"`` (mask IoU from ``masks``).
        num_classes: classes are 1..num_classes; default: the largest ground-truth label.
        area_ranges: ``{name: (lo, hi)}`` in pixels^2, "all" first (see ``scaled_area_ranges``).
        use_crowd: honour the targets' ``iscrowd`` flags (ignored regions).
    Returns:
        a ``CocoEvalResult``: ``.stats`` (AP, AP50, AP75, AP_small, ..., AR100, ...),
        ``.per_class_ap``, ``.summary()``, and the full ``precision``/``recall`` tables.

    """
    thresholds, areas, max_dets = _check_arguments(iou_type, iou_thresholds, area_ranges,
                                                   max_dets)
    flat, num_classes, _ = flatten(predictions, targets, num_classes, "coco_evaluate",
                                   use_masks=iou_type == "segm")
    if not use_crowd:
        flat["gt_crowd"][:] = False
        flat["gt_ignore"][:] = False
    # keep at most max(max_dets) detections per image and class (pycocotools does)
    det_lo, det_hi, _, _ = groups(flat, num_classes)
    keep_detections(flat, rank_in_group(det_lo, det_hi, len(flat["det_label"])) < max_dets[-1])
    # match, per group (image and class), area range and threshold: the numba kernel
    det_lo, det_hi, gt_lo, gt_hi = groups(flat, num_classes)
    det, gt, iou_lo = group_pairs(det_lo, det_hi, gt_lo, gt_hi)
    ious = pair_ious(flat, det, gt, iou_type == "segm")
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
    # rank over all images, per class, and read precision off the curves
    rank = rank_in_group(det_lo, det_hi, num_d)
    precision, recall = _accumulate(flat, rank, dt_matched, dt_ignored, gt_ignored,
                                    num_classes, thresholds, max_dets)
    return CocoEvalResult(precision, recall, thresholds, COCO_RECALL_THRESHOLDS.copy(),
                          np.arange(1, num_classes + 1), areas, max_dets, iou_type)


def _accumulate(flat, rank, dt_matched, dt_ignored, gt_ignored, num_classes, thresholds,
                max_dets):
    """pycocotools' ``accumulate``: precision at 101 recall levels per (t, k, a, m).

    Ignored detections stay in the ranked list but count neither as TP nor as FP.
    Precision is tp / (tp + fp + eps) with numpy's eps, exactly as pycocotools.
    """
    num_t, num_a, num_m = len(thresholds), gt_ignored.shape[0], len(max_dets)
    precision = -np.ones((num_t, len(COCO_RECALL_THRESHOLDS), num_classes, num_a, num_m))
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
                for t in range(num_t):
                    precision[t, :, k, a, m] = precision_at_recall_levels(
                        pr[t], rc[t], COCO_RECALL_THRESHOLDS)
    return precision, recall


# ---- argument checks --------------------------------------------------------
def _check_arguments(iou_type, iou_thresholds, area_ranges, max_dets):
    """(thresholds [T], area ranges {name: (lo, hi)}, sorted max_dets), or a clear error."""
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
    return thresholds, areas, max_dets
