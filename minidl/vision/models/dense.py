"""Pieces shared by the one-stage (dense) detectors: YOLO, SSD, RetinaNet, CenterNet, DETR.

A one-stage detector predicts, for every reference position of a feature map
(a grid cell, a default box, an anchor, a heatmap pixel), class scores and a box,
in one pass and without a proposal step. The pieces here are the ones they share:

* ``flatten_anchor_outputs``: a head's [N, A D, H, W] output in the reference boxes'
  order [N, H W A, D] (the order ``AnchorGenerator`` and ``ssd_default_boxes`` use);
* ``select_detections``: the last step of every detector's eval mode: drop low
  scores, clip, per-class NMS, keep the best (as torchvision's ``postprocess``);
* ``anchor_labels``: each reference box's class (0 background, -1 ignored) and its
  regression target, from a ``Matcher`` (SSD, RetinaNet);
* ``labels_from_one``: the data's labels 1..K as 0..K-1, for heads without a
  background class (YOLO's class probabilities, RetinaNet's K sigmoids).

Inputs are checked as the two-stage models check them (``check_images``,
``check_targets`` in ``minidl/vision/models/rcnn.py``): a detector names itself
in every error about its inputs.
"""

from __future__ import annotations

import numpy as np

from minidl.vision.box_coder import BoxCoder
from minidl.vision.boxes import box_iou, clip_boxes_to_image, remove_small_boxes
from minidl.vision.matcher import Matcher
from minidl.vision.nms import batched_nms


def flatten_anchor_outputs(x, values_per_anchor: int):
    """[N, A D, H, W] -> [N, H W A, D]: position-major (row, column), then anchor.

    The A D channels are A groups of D values (e.g. D = 4 box deltas or D = K class
    logits), which is how a 1x1 or 3x3 conv head lays them out.
    """
    n, channels, h, w = x.shape
    if channels % values_per_anchor:
        raise ValueError(f"flatten_anchor_outputs: {channels} channels are not a multiple of "
                         f"{values_per_anchor} values per anchor")
    a = channels // values_per_anchor
    return x.reshape(n, a, values_per_anchor, h, w).permute(0, 3, 4, 1, 2).reshape(
        n, h * w * a, values_per_anchor)


def select_detections(boxes: np.ndarray, scores: np.ndarray, labels: np.ndarray, image_size,
                      score_thresh: float = 0.05, nms_thresh: float | None = 0.5,
                      detections_per_img: int = 100, min_size: float = 1e-2) -> dict:
    """One image's detections from candidate boxes:

        keep score > score_thresh; clip to the image; drop boxes under min_size;
        NMS per class at nms_thresh (None: no NMS, for DETR and CenterNet);
        keep the detections_per_img best.

    boxes: [M, 4] xyxy pixels, scores: [M], labels: int [M] in 1..K; image_size: (H, W).
    Returns {"boxes": float32 [D, 4], "labels": int64 [D], "scores": float32 [D]}, best first.
    """
    boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
    scores = np.asarray(scores, dtype=np.float32).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    keep = np.flatnonzero(scores > score_thresh)
    boxes = clip_boxes_to_image(boxes[keep], image_size)
    scores, labels = scores[keep], labels[keep]
    keep = remove_small_boxes(boxes, min_size)
    boxes, scores, labels = boxes[keep], scores[keep], labels[keep]
    if nms_thresh is None:
        keep = np.argsort(-scores, kind="stable")
    else:
        keep = batched_nms(boxes, scores, labels, nms_thresh)
    keep = keep[:detections_per_img]
    return {"boxes": boxes[keep].astype(np.float32), "labels": labels[keep].astype(np.int64),
            "scores": scores[keep].astype(np.float32)}


def detections_per_class(boxes: np.ndarray, scores: np.ndarray, image_size, score_thresh: float,
                         nms_thresh, detections_per_img: int) -> dict:
    """One image whose every reference box is scored for each of K classes (SSD, RetinaNet):
    boxes [A, 4] (decoded), scores [A, K] -> ``select_detections`` over the A K (box, class)
    pairs, labels 1..K."""
    k = scores.shape[-1]
    labels = np.tile(np.arange(1, k + 1), len(boxes))
    return select_detections(np.repeat(boxes, k, axis=0), scores.reshape(-1), labels,
                             image_size, score_thresh, nms_thresh, detections_per_img)


def check_num_classes(num_classes: int, model: str) -> None:
    """``num_classes`` counts the background (or "no object"), so a detector needs >= 2."""
    if num_classes < 2:
        raise ValueError(f"{model}: num_classes counts the background, so it must be >= 2, "
                         f"got {num_classes}")


def labels_from_one(labels) -> np.ndarray:
    """Labels 1..K (0 is the background in the data) as class indices 0..K-1."""
    return np.asarray(labels, dtype=np.int64).reshape(-1) - 1


def anchor_labels(anchors: np.ndarray, gt_boxes, gt_labels, matcher: Matcher,
                  box_coder: BoxCoder):
    """Training targets of one image's reference boxes (anchors, default boxes):

        label = the matched object's class (1..K)   matcher says object g
              = 0 (background)                      below the low threshold
              = -1 (ignored by the loss)            between the thresholds
        target = box_coder.encode_single(matched box, anchor)   (zeros where label <= 0)

    anchors: [A, 4] xyxy; gt_boxes: [G, 4] (G may be 0); gt_labels: int [G] in 1..K.
    Returns (labels int64 [A], targets float32 [A, 4], matched int64 [A] from the matcher).
    """
    gt_boxes = np.asarray(gt_boxes, np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels, np.int64).reshape(-1)
    matched = matcher(box_iou(gt_boxes, anchors)) if len(gt_boxes) else \
        np.full(len(anchors), Matcher.BELOW_LOW_THRESHOLD, dtype=np.int64)
    labels = np.where(matched >= 0, gt_labels[np.maximum(matched, 0)] if len(gt_labels) else 0,
                      np.where(matched == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
    targets = np.zeros((len(anchors), 4), dtype=np.float32)
    positive = np.flatnonzero(matched >= 0)
    if positive.size:
        targets[positive] = box_coder.encode_single(gt_boxes[matched[positive]],
                                                    anchors[positive])
    return labels.astype(np.int64), targets, matched


def batch_anchor_labels(anchors: np.ndarray, targets, matcher: Matcher, box_coder: BoxCoder):
    """``anchor_labels`` of every image of a batch -> (labels int64 [N, A], offsets [N, A, 4])."""
    pairs = [anchor_labels(anchors, t["boxes"], t["labels"], matcher, box_coder)[:2]
             for t in targets]
    return np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
