"""minidl.vision: the detection toolkit (boxes, anchors, matching, NMS, RoI ops, losses, metrics).

Each name is defined, with its formula and paper, in the module it is imported from.
"""

# ruff: noqa: F401, I001
from minidl.ops.roi import roi_align, roi_pool
from minidl.vision.assignment import assignment_steps, linear_sum_assignment
from minidl.vision.anchors import (
    AnchorGenerator, GridAssignment, ssd_default_boxes, ssd_scales, yolo_grid_assign,
)
from minidl.vision.box_coder import BoxCoder
from minidl.vision.boxes import (
    box_area, box_convert, box_iou, check_boxes, clip_boxes_to_image, elementwise_box_iou,
    elementwise_generalized_box_iou, generalized_box_iou, iou_from_areas, masks_to_boxes,
    remove_small_boxes,
)
from minidl.vision.loss import (
    fastrcnn_loss, generalized_box_iou_loss, keypointrcnn_loss, keypoints_to_heatmap,
    maskrcnn_loss, prior_bias, project_masks_on_boxes, rpn_loss, sigmoid_focal_loss,
    yolo_v1_loss, yolo_v1_loss_terms, yolo_v1_targets,
)
from minidl.vision.matcher import Matcher
from minidl.vision.nms import batched_nms, nms
from minidl.vision.roi import MultiScaleRoIAlign, RoIAlign, RoIPool, map_levels
from minidl.vision.sampler import BalancedPositiveNegativeSampler, RoISample, RoISampler
from minidl.vision.metrics import (
    ConfusionMatrix, CocoEvalResult, VocEvalResult, average_precision, coco_evaluate,
    confusion_matrix, mask_iou, pairwise_box_iou, precision_recall, scaled_area_ranges,
    segmentation_scores, voc_evaluate,
)
