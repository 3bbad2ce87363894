"""Greedy COCO matching of detections to ground truth, for ``minidl.vision.metrics``.

COCO evaluation (Lin et al. 2014; pycocotools ``COCOeval.evaluateImg``) matches,
for every image, every class, every area range and every IoU threshold, the
detections to the ground-truth objects greedily in order of score. With 1,000
images that is millions of tiny loop steps, so the loop lives here, compiled.

The data come as *groups*: one group = the detections and ground truth of one
class in one image. In the flat arrays a group's detections are contiguous and
sorted by score (highest first), its ground truth contiguous too, and its IoU
matrix ``[n_det, n_gt]`` is stored row-major from ``iou_lo[g]`` in ``ious``.

For one group, one area range ``a`` and one threshold ``t``::

    a ground-truth object is *ignored* if it is a crowd / flagged ignore, or its
    area is outside the area range
    for each detection d, best score first:
        best = min(t, 1 - 1e-10); m = none
        for each gt j, non-ignored ones first (then the ignored ones):
            skip j if it is already taken (a crowd region can be taken many times)
            stop if m is a non-ignored gt and j is ignored
            skip j if iou[d, j] < best
            best = iou[d, j]; m = j
        if m: d is matched (a true positive unless m is ignored, then d is ignored too)
    an unmatched detection whose own area is outside the range is ignored

``coco_match_reference`` is the same algorithm written as pycocotools writes it
(gts re-sorted with ``argsort(kind='mergesort')``, an explicit ``break``); the
tests hold the kernel against it.
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit
def coco_match(ious, iou_lo, det_lo, det_hi, gt_lo, gt_hi, det_area, gt_area, gt_flag_ignore,
               gt_crowd, area_lo, area_hi, iou_thresholds, dt_matched, dt_ignored, gt_ignored):
    """Fill ``dt_matched [A, T, D]``, ``dt_ignored [A, T, D]`` and ``gt_ignored [A, G]`` in place.

    Args (all ndarrays): ``ious`` flat float64; per group ``g``: ``iou_lo``,
    ``det_lo``/``det_hi``, ``gt_lo``/``gt_hi`` (int64); per detection
    ``det_area``; per gt ``gt_area``, ``gt_flag_ignore`` and ``gt_crowd`` (bool);
    per area range ``area_lo``/``area_hi``; ``iou_thresholds [T]``.
    """
    num_areas = area_lo.shape[0]
    num_thresholds = iou_thresholds.shape[0]
    for g in range(det_lo.shape[0]):
        d0, nd = det_lo[g], det_hi[g] - det_lo[g]
        g0, ng = gt_lo[g], gt_hi[g] - gt_lo[g]
        for a in range(num_areas):
            for j in range(ng):
                area = gt_area[g0 + j]
                gt_ignored[a, g0 + j] = (gt_flag_ignore[g0 + j] or area < area_lo[a]
                                         or area > area_hi[a])
            for t in range(num_thresholds):
                taken = np.zeros(ng, dtype=np.bool_)
                for d in range(nd):
                    best = min(iou_thresholds[t], 1.0 - 1e-10)
                    m = -1
                    for ignored_pass in range(2):  # non-ignored gts first, as pycocotools sorts
                        if ignored_pass == 1 and m > -1:
                            break  # matched a regular gt: an ignored one may not take over
                        for j in range(ng):
                            if gt_ignored[a, g0 + j] != (ignored_pass == 1):
                                continue
                            if taken[j] and not gt_crowd[g0 + j]:
                                continue
                            iou = ious[iou_lo[g] + d * ng + j]
                            if iou < best:
                                continue
                            best = iou
                            m = j
                    if m > -1:
                        taken[m] = True
                        dt_matched[a, t, d0 + d] = True
                        dt_ignored[a, t, d0 + d] = gt_ignored[a, g0 + m]
                    else:
                        area = det_area[d0 + d]
                        dt_ignored[a, t, d0 + d] = area < area_lo[a] or area > area_hi[a]


def coco_match_reference(ious, iou_lo, det_lo, det_hi, gt_lo, gt_hi, det_area, gt_area,
                         gt_flag_ignore, gt_crowd, area_lo, area_hi, iou_thresholds,
                         dt_matched, dt_ignored, gt_ignored):
    """``coco_match`` written as pycocotools' ``evaluateImg`` (plain Python + NumPy)."""
    for g in range(len(det_lo)):
        dets = np.arange(det_lo[g], det_hi[g])
        gts = np.arange(gt_lo[g], gt_hi[g])
        iou = ious[iou_lo[g]: iou_lo[g] + len(dets) * len(gts)].reshape(len(dets), len(gts))
        for a in range(len(area_lo)):
            ignore = np.array([gt_flag_ignore[j] or not area_lo[a] <= gt_area[j] <= area_hi[a]
                               for j in gts], dtype=bool)
            order = np.argsort(ignore, kind="mergesort")  # ignored ground truth last
            gt_ignored[a, gts] = ignore
            for t, threshold in enumerate(iou_thresholds):
                taken = np.zeros(len(gts), dtype=bool)
                for di, d in enumerate(dets):
                    best, m = min(threshold, 1 - 1e-10), -1
                    for j in order:
                        if taken[j] and not gt_crowd[gts[j]]:
                            continue
                        if m > -1 and not ignore[m] and ignore[j]:
                            break
                        if iou[di, j] < best:
                            continue
                        best, m = iou[di, j], j
                    if m == -1:
                        dt_ignored[a, t, d] = not area_lo[a] <= det_area[d] <= area_hi[a]
                        continue
                    taken[m] = True
                    dt_matched[a, t, d] = True
                    dt_ignored[a, t, d] = ignore[m]
