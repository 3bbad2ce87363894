"""Evaluation metrics for detection, instance segmentation and semantic segmentation.

One module per topic; start with ``ranking``, the maths every detection benchmark shares:

- ``ranking``: precision and recall down a ranked list, the interpolated curve and
  average precision (VOC 2007 11-point, VOC 2010 all-point, COCO 101-point).
- ``voc``: PASCAL VOC evaluation (``voc_evaluate``): AP per class at IoU 0.5, mAP.
- ``coco``: COCO evaluation (``coco_evaluate``): AP@[.5:.95], by object size and
  by the number of detections allowed, for boxes and masks.
- ``segmentation``: confusion matrix, pixel accuracy, mean class accuracy, mean IoU.
- ``iou``: box IoU with COCO's crowd rule and mask IoU, as the evaluators use them.
- ``inputs``: checking the per-image dicts and flattening them for VOC and COCO.

Conventions shared by VOC and COCO: boxes are xyxy in continuous pixel coordinates
(area = (x2 - x1)(y2 - y1), without VOC's historical "+1"); a detection matches when
IoU >= threshold; a duplicate detection of an already-found object is a false
positive; ignored objects (VOC "difficult", COCO "iscrowd") are neither found nor
missed; a class with no ground truth has AP = -1 and is left out of every mean.
"""

# ruff: noqa: F401
from minidl.vision.metrics.coco import (
    COCO_AREA_RANGES,
    COCO_IOU_THRESHOLDS,
    COCO_MAX_DETS,
    COCO_RECALL_THRESHOLDS,
    CocoEvalResult,
    coco_evaluate,
    scaled_area_ranges,
)
from minidl.vision.metrics.iou import mask_iou, pairwise_box_iou
from minidl.vision.metrics.ranking import (
    area_under_interpolated_curve,
    average_precision,
    interpolated_precision,
    precision_at_recall_levels,
    precision_recall,
)
from minidl.vision.metrics.segmentation import (
    ConfusionMatrix,
    confusion_matrix,
    segmentation_scores,
)
from minidl.vision.metrics.voc import VocEvalResult, voc_evaluate
