"""PASCAL VOC detection evaluation: per-class AP and mAP (VOC 2007 11-point or VOC 2010+).

Per class, the detections of all images are ranked by score and each is matched to
the ground-truth box of its class in its image that it overlaps most (IoU >= 0.5 by
default). A duplicate detection of an already-found object is a false positive;
"difficult" objects are ignored (a detection matched to one is neither a TP nor an
FP, and they are not counted among the positives). AP is then read off the
precision-recall curve (``ranking.py``).

Reference: Everingham et al., "The PASCAL Visual Object Classes (VOC) Challenge",
IJCV 2010; the VOC devkit ``VOCevaldet.m``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from minidl.vision.boxes import elementwise_box_iou
from minidl.vision.metrics.inputs import flatten, group_pairs, groups
from minidl.vision.metrics.ranking import average_precision, precision_recall


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
    flat, num_classes, _ = flatten(predictions, targets, num_classes, "voc_evaluate")
    best_gt, hit = _best_overlap(flat, num_classes, iou_threshold)
    difficult = np.zeros(len(hit), dtype=bool)
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


def _best_overlap(flat, num_classes, iou_threshold):
    """For every detection, the ground truth of its class and image it overlaps most (the
    first one on ties, as argmax) and whether that IoU reaches the threshold."""
    det_lo, det_hi, gt_lo, gt_hi = groups(flat, num_classes)
    det, gt, _ = group_pairs(det_lo, det_hi, gt_lo, gt_hi)
    ious = elementwise_box_iou(flat["det_boxes"][det], flat["gt_boxes"][gt])
    num_d = len(flat["det_label"])
    best = np.full(num_d, -np.inf)
    np.maximum.at(best, det, ious)
    best_gt = np.full(num_d, np.iinfo(np.int64).max)
    on_best = ious == best[det]
    np.minimum.at(best_gt, det[on_best], gt[on_best])
    return best_gt, best >= iou_threshold
