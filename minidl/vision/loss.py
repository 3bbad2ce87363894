"""Detection losses, all composites of minidl primitives (none has a hand-written backward).

* ``sigmoid_focal_loss`` and ``prior_bias`` (RetinaNet, Lin et al. 2017)
* ``generalized_box_iou_loss`` (Rezatofighi et al. 2019), matched pairs
* ``fastrcnn_loss`` (Fast R-CNN's multi-task loss, Girshick 2015)
* ``rpn_loss`` (Faster R-CNN's region proposal network, Ren et al. 2015)
* ``yolo_v1_targets`` / ``yolo_v1_loss`` (YOLO v1, Redmon et al. 2016)
* ``project_masks_on_boxes`` / ``maskrcnn_loss`` and ``keypoints_to_heatmap`` /
  ``keypointrcnn_loss`` (Mask R-CNN, He et al. 2017)

Names, reductions and constants follow torchvision (e.g. smooth L1 with
beta = 1/9 and a sum divided by the number of sampled boxes). Inputs that the
network predicts are Tensors; targets and labels may be ndarrays or Tensors.
"""

from __future__ import annotations

import math

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.autograd.function import as_array
from minidl.autograd.tensor import Tensor
from minidl.ops.loss import check_reduction, reduce_loss
from minidl.ops.roi import roi_align
from minidl.vision.anchors import yolo_grid_assign
from minidl.vision.boxes import elementwise_box_iou, elementwise_generalized_box_iou


def _cat(arrays) -> np.ndarray:
    """One array from an array or a list of per-image arrays."""
    if isinstance(arrays, (list, tuple)):
        parts = [as_array(a) for a in arrays]
        return np.concatenate(parts) if parts else np.zeros(0)
    return as_array(arrays)


# ---- RetinaNet ----------------------------------------------------------------
def sigmoid_focal_loss(inputs, targets, alpha: float = 0.25, gamma: float = 2.0,
                       reduction: str = "none"):
    """Focal loss (torchvision.ops.sigmoid_focal_loss):

        p = sigmoid(x),  p_t = p y + (1 - p)(1 - y),  alpha_t = alpha y + (1 - alpha)(1 - y)
        FL = alpha_t (1 - p_t)^gamma BCE(x, y)         (alpha < 0: no alpha_t factor)

    The (1 - p_t)^gamma factor shrinks the loss of the many easy, well-classified
    examples, so the rare hard ones dominate. inputs: logits (any shape), targets:
    the same shape in [0, 1]; reduction 'none' (default, as torchvision), 'mean', 'sum'.
    """
    check_reduction(reduction, "sigmoid_focal_loss")
    if gamma < 0:
        raise ValueError(f"sigmoid_focal_loss: gamma must be >= 0, got {gamma}")
    targets = as_array(targets).astype(inputs.dtype)
    if targets.shape != inputs.shape:
        raise ValueError(f"sigmoid_focal_loss: targets {targets.shape} must have the shape of "
                         f"inputs {inputs.shape}")
    p = minidl.sigmoid(inputs)
    ce = F.binary_cross_entropy_with_logits(inputs, targets, reduction="none")
    p_t = p * targets + (1 - p) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma if gamma else ce
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    return reduce_loss(loss, reduction, "sigmoid_focal_loss")


def prior_bias(prior_probability: float = 0.01) -> float:
    """The bias b that makes sigmoid(b) = pi at initialization (RetinaNet, section 4.1):

        b = -log((1 - pi) / pi)       (pi = 0.01 -> b = -4.595)

    so that at the start every anchor says "object" with probability pi, and the
    huge number of background anchors does not swamp the first steps.
    Use: ``nn.init.constant_(cls_logits.bias, prior_bias(0.01))``.
    """
    if not 0.0 < prior_probability < 1.0:
        raise ValueError(f"prior_bias: prior_probability must be in (0, 1), "
                         f"got {prior_probability}")
    return -math.log((1.0 - prior_probability) / prior_probability)


# ---- GIoU loss on matched pairs -------------------------------------------------
def generalized_box_iou_loss(boxes1, boxes2, reduction: str = "none"):
    """1 - GIoU of matched pairs (torchvision.ops.generalized_box_iou_loss):

        loss_i = 1 - GIoU(A_i, B_i) = 1 - IoU_i + |C_i - (A_i u B_i)| / |C_i|

    with C_i the smallest box enclosing A_i and B_i (``elementwise_generalized_box_iou``).
    boxes1, boxes2: [N, 4] xyxy with x1 <= x2, y1 <= y2 (Tensors or arrays, row i with
    row i) -> [N] or a scalar. Zero-area pairs follow ``minidl.vision.boxes`` (a ratio with
    a zero denominator is 0), so torchvision's ``eps`` is not needed.
    """
    check_reduction(reduction, "generalized_box_iou_loss")
    b1 = boxes1 if isinstance(boxes1, Tensor) else Tensor(np.asarray(boxes1, dtype=np.float32))
    b2 = boxes2 if isinstance(boxes2, Tensor) else Tensor(np.asarray(boxes2, dtype=b1.dtype))
    if b1.shape != b2.shape or b1.ndim != 2 or b1.shape[1] != 4:
        raise ValueError(f"generalized_box_iou_loss: boxes1 {b1.shape} and boxes2 {b2.shape} "
                         "must both be [N, 4]")
    return reduce_loss(1 - elementwise_generalized_box_iou(b1, b2), reduction,
                       "generalized_box_iou_loss")


# ---- Fast R-CNN and the RPN ---------------------------------------------------------
def fastrcnn_loss(class_logits, box_regression, labels, regression_targets):
    """Fast R-CNN's multi-task loss L = L_cls(p, u) + [u >= 1] L_loc(t^u, v) (eq. 1), torchvision's
    form:

        classification = cross_entropy(class_logits, labels)           (mean over the R RoIs)
        box = sum over RoIs with u >= 1 of smoothL1_beta=1/9(t^u - v) / R

    Only the box predicted for the true class u is penalized, and background
    RoIs (u = 0) have no box loss.

    class_logits: [R, K + 1]; box_regression: [R, 4 (K + 1)] (one box per class,
    background included) or [R, 4] (class-agnostic); labels: int [R] in 0..K;
    regression_targets: [R, 4] (``BoxCoder.encode_single`` of the matched boxes).
    labels and regression_targets may be lists of per-image arrays (concatenated).
    Returns (classification_loss, box_loss), scalar Tensors.
    """
    labels = _cat(labels).astype(np.int64)
    targets = _cat(regression_targets).reshape(-1, 4)
    _check_fastrcnn(class_logits, box_regression, labels, targets)
    num_rois, num_classes = class_logits.shape
    classification = F.cross_entropy(class_logits, labels)
    positive = np.flatnonzero(labels > 0)
    if box_regression.shape[1] == 4:
        chosen = box_regression[positive]
    else:
        per_class = box_regression.reshape(num_rois, num_classes, 4)
        chosen = per_class[positive, labels[positive]]
    box_loss = F.smooth_l1_loss(chosen, targets[positive], beta=1 / 9, reduction="sum")
    return classification, box_loss / num_rois


def _check_fastrcnn(class_logits, box_regression, labels, targets) -> None:
    num_rois, num_classes = class_logits.shape
    if num_rois == 0:
        raise ValueError("fastrcnn_loss: no RoIs (class_logits is [0, K + 1]); skip the loss "
                         "for a batch without sampled RoIs")
    if labels.shape != (num_rois,) or targets.shape[0] != num_rois:
        raise ValueError(f"fastrcnn_loss: {num_rois} RoIs but labels {labels.shape} and "
                         f"regression_targets {targets.shape}")
    if box_regression.shape not in ((num_rois, 4 * num_classes), (num_rois, 4)):
        raise ValueError(f"fastrcnn_loss: box_regression must be [R, 4 (K + 1)] = "
                         f"[{num_rois}, {4 * num_classes}] or [R, 4], got {box_regression.shape}")


def rpn_loss(objectness, pred_bbox_deltas, labels, regression_targets, sampler):
    """The RPN's loss (Faster R-CNN eq. 1, torchvision's form) on a sampled mini-batch of anchors:

        objectness = BCE_with_logits over the sampled anchors (mean)
        box = sum over sampled positives of smoothL1_beta=1/9(t - t*) / #sampled

    objectness: [A] or [A, 1] logits for all anchors of all images (concatenated);
    pred_bbox_deltas: [A, 4]; labels: per-image list of [A_i] (1 object, 0 background,
    -1 ignored, as the Matcher's output turned into labels); regression_targets:
    per-image list of [A_i, 4]; sampler: a ``BalancedPositiveNegativeSampler``
    (e.g. 256 anchors per image, half positive). Returns (objectness_loss, box_loss).
    """
    labels = list(labels) if isinstance(labels, (list, tuple)) else [labels]
    pos_masks, neg_masks = sampler(labels)
    positive = np.flatnonzero(np.concatenate(pos_masks))
    sampled = np.concatenate([positive, np.flatnonzero(np.concatenate(neg_masks))])
    all_labels = _cat(labels)
    targets = _cat(regression_targets).reshape(-1, 4)
    num_anchors = all_labels.shape[0]
    if objectness.data.size != num_anchors or pred_bbox_deltas.shape != (num_anchors, 4):
        raise ValueError(f"rpn_loss: {num_anchors} anchor labels, but objectness has "
                         f"{objectness.data.size} values and pred_bbox_deltas shape "
                         f"{pred_bbox_deltas.shape} (expected [{num_anchors}, 4])")
    if sampled.size == 0:
        raise ValueError("rpn_loss: the sampler chose no anchors (no label is 0 or >= 1)")
    logits = objectness.reshape(num_anchors)[sampled]
    objectness_loss = F.binary_cross_entropy_with_logits(
        logits, (all_labels[sampled] > 0).astype(objectness.dtype))
    box_loss = F.smooth_l1_loss(pred_bbox_deltas[positive], targets[positive], beta=1 / 9,
                                reduction="sum")
    return objectness_loss, box_loss / sampled.size


# ---- YOLO v1 --------------------------------------------------------------------
def yolo_v1_targets(boxes, labels, image_size, grid_size: int = 7,
                    num_classes: int = 20) -> np.ndarray:
    """The YOLO v1 training target, float32 [N, S, S, 5 + C]. Cell (i, j) of image n holds

        [x, y, w, h, 1, one-hot class]   if an object's centre is in the cell, else zeros,

    with (x, y) the centre's offset inside the cell in [0, 1] and (w, h) relative
    to the image (``yolo_grid_assign``). A cell can hold one object: when two
    centres share a cell, the first box in the list is kept (YOLO v1's limit).

    boxes: list of N [K_n, 4] xyxy pixel boxes; labels: list of N int [K_n] in 0..C-1
    (YOLO has no background class); image_size: (H, W).
    """
    target = np.zeros((len(boxes), grid_size, grid_size, 5 + num_classes), dtype=np.float32)
    for n, (b, c) in enumerate(zip(boxes, labels)):
        c = as_array(c).astype(np.int64).reshape(-1)
        cells = yolo_grid_assign(b, image_size, grid_size)
        if c.shape[0] != cells.row.shape[0] or ((c < 0) | (c >= num_classes)).any():
            raise ValueError(f"yolo_v1_targets: image {n} needs {cells.row.shape[0]} labels in "
                             f"0..{num_classes - 1}, got {c.tolist()}")
        for k in range(c.shape[0]):
            cell = target[n, cells.row[k], cells.col[k]]
            if cell[4] == 0:
                cell[:5] = (cells.offset_x[k], cells.offset_y[k], cells.width[k],
                            cells.height[k], 1.0)
                cell[5 + c[k]] = 1.0
    return target


def _cell_boxes_xyxy(xywh: np.ndarray, grid_size: int) -> np.ndarray:
    """YOLO (x, y) in-cell offsets and image-relative (w, h) -> image-relative xyxy.
    xywh: [N, S, S, B, 4] (cell (i, j) on axes 1, 2)."""
    cols = np.arange(grid_size).reshape(1, 1, grid_size, 1)
    rows = np.arange(grid_size).reshape(1, grid_size, 1, 1)
    cx = (cols + xywh[..., 0]) / grid_size
    cy = (rows + xywh[..., 1]) / grid_size
    half_w = np.clip(xywh[..., 2], 0, None) / 2
    half_h = np.clip(xywh[..., 3], 0, None) / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=-1)


def _signed_sqrt(w, eps: float):
    """sign(w) sqrt(|w| + eps): the square root YOLO compares sizes with, defined for w < 0
    (an untrained network can predict those) and with a finite slope at 0."""
    if isinstance(w, Tensor):
        return minidl.sqrt(minidl.abs(w) + eps) * np.sign(w.data)
    return np.sign(w) * np.sqrt(np.abs(w) + eps)


def yolo_v1_loss_terms(predictions, targets, num_boxes: int = 2, lambda_coord: float = 5.0,
                       lambda_noobj: float = 0.5, eps: float = 1e-6) -> dict:
    """The five sums of YOLO v1's loss (paper, eq. 3), each divided by the batch size N.

    Layout (as in the paper's 7 x 7 x 30 output, per cell): predictions [N, S, S, B*5 + C]
    hold, for each of the B predictors b, (x, y, w, h, confidence) at channels
    5b .. 5b + 4, then the C class scores. (x, y) is the box centre's offset inside
    the cell, (w, h) the size relative to the image, as in ``yolo_v1_targets``
    (targets: [N, S, S, 5 + C]). (The original Darknet code orders its flat output
    differently: all class scores, then confidences, then boxes.)

    The predictor "responsible" for an object is the one of its cell whose
    predicted box has the highest IoU with the object (ties: the first; no gradient
    flows through the choice). With 1obj = responsible, 1noobj = every other predictor:

        coord   = l_coord sum 1obj [(x - x^)^2 + (y - y^)^2]
        size    = l_coord sum 1obj [(sqrt w - sqrt w^)^2 + (sqrt h - sqrt h^)^2]
        obj     = sum 1obj (C - IoU)^2            (the target confidence is that IoU)
        noobj   = l_noobj sum 1noobj C^2
        class   = sum over object cells, once per cell, of sum_c (p(c) - p^(c))^2

    with sqrt w taken as ``_signed_sqrt`` (eps = 1e-6) since predictions may be negative.
    Returns a dict of scalar Tensors: coord, size, obj, noobj, class.
    """
    n, s, s2, depth = predictions.shape
    num_classes = depth - 5 * num_boxes
    t = as_array(targets)
    if s != s2 or num_classes < 0 or t.shape != (n, s, s, 5 + num_classes):
        raise ValueError(f"yolo_v1_loss: predictions must be [N, S, S, B*5 + C] with B = "
                         f"{num_boxes} and targets [N, S, S, 5 + C]; got {predictions.shape} "
                         f"and {t.shape}")
    t = t.astype(predictions.dtype)
    boxes = predictions[..., :5 * num_boxes].reshape(n, s, s, num_boxes, 5)
    has_object = t[..., 4] > 0  # [N, S, S]
    iou = elementwise_box_iou(_cell_boxes_xyxy(boxes.data[..., :4], s),
                              _cell_boxes_xyxy(t[..., None, :4], s))  # [N, S, S, B]
    best = iou.argmax(axis=-1)
    responsible = has_object[..., None] & (np.arange(num_boxes) == best[..., None])
    obj = responsible.astype(predictions.dtype)
    truth = t[..., None, :4]
    x, y, w, h, confidence = (boxes[..., i] for i in range(5))
    coord = ((x - truth[..., 0]) ** 2 + (y - truth[..., 1]) ** 2) * obj
    size = ((_signed_sqrt(w, eps) - _signed_sqrt(truth[..., 2], eps)) ** 2
            + (_signed_sqrt(h, eps) - _signed_sqrt(truth[..., 3], eps)) ** 2) * obj
    class_error = (predictions[..., 5 * num_boxes:] - t[..., 5:]) ** 2
    return {
        "coord": lambda_coord * coord.sum() / n,
        "size": lambda_coord * size.sum() / n,
        "obj": ((confidence - iou.astype(predictions.dtype)) ** 2 * obj).sum() / n,
        "noobj": lambda_noobj * (confidence ** 2 * (1 - obj)).sum() / n,
        "class": (class_error.sum(dim=-1) * has_object.astype(predictions.dtype)).sum() / n,
    }


def yolo_v1_loss(predictions, targets, num_boxes: int = 2, lambda_coord: float = 5.0,
                 lambda_noobj: float = 0.5):
    """YOLO v1's sum-squared loss (lambda_coord = 5, lambda_noobj = 0.5) averaged over the
    batch: the sum of ``yolo_v1_loss_terms`` (see there for the layout and each term)."""
    terms = yolo_v1_loss_terms(predictions, targets, num_boxes, lambda_coord, lambda_noobj)
    return terms["coord"] + terms["size"] + terms["obj"] + terms["noobj"] + terms["class"]


# ---- Mask R-CNN -------------------------------------------------------------------
def project_masks_on_boxes(gt_masks, boxes, matched_idxs, mask_size: int) -> np.ndarray:
    """Mask targets: each RoI's matched ground-truth mask cut out and resized to M x M
    with ``roi_align`` (as torchvision; values in [0, 1], not thresholded).

    gt_masks: [G, H, W]; boxes: [R, 4] the positive RoIs; matched_idxs: int [R] into
    gt_masks -> float32 [R, M, M].
    """
    masks = as_array(gt_masks).astype(np.float32)
    rois = as_array(boxes).astype(np.float32).reshape(-1, 4)
    idx = as_array(matched_idxs).astype(np.float32).reshape(-1, 1)
    if masks.ndim != 3 or idx.shape[0] != rois.shape[0]:
        raise ValueError(f"project_masks_on_boxes: need gt_masks [G, H, W] and one matched "
                         f"index per box, got {masks.shape}, {rois.shape[0]} boxes and "
                         f"{idx.shape[0]} indices")
    pooled = roi_align(Tensor(masks[:, None]), np.concatenate([idx, rois], axis=1),
                       (mask_size, mask_size), 1.0)
    return pooled.data[:, 0]


def maskrcnn_loss(mask_logits, labels, mask_targets):
    """Mask R-CNN's mask loss: per-pixel sigmoid BCE on the mask of the RoI's own class only

        L_mask = mean over RoIs r and pixels of BCE(mask_logits[r, labels[r]], mask_targets[r])

    so classes do not compete for a pixel (the paper's "decoupling" of mask and class).
    mask_logits: [R, C, M, M] for the R positive RoIs; labels: int [R];
    mask_targets: [R, M, M] in [0, 1] (``project_masks_on_boxes``). With R = 0 the
    loss is 0 and still connected to the graph (as torchvision).
    """
    labels = as_array(labels).astype(np.int64).reshape(-1)
    targets = as_array(mask_targets)
    num_rois = mask_logits.shape[0]
    if labels.shape[0] != num_rois or targets.shape != (num_rois,) + mask_logits.shape[2:]:
        raise ValueError(f"maskrcnn_loss: mask_logits {mask_logits.shape} need labels [R] and "
                         f"mask_targets [R, M, M]; got {labels.shape} and {targets.shape}")
    if num_rois == 0:
        return mask_logits.sum() * 0.0
    chosen = mask_logits[np.arange(num_rois), labels]
    return F.binary_cross_entropy_with_logits(chosen, targets.astype(mask_logits.dtype))


def keypoints_to_heatmap(keypoints, rois, heatmap_size: int):
    """Keypoint targets as in torchvision: each visible keypoint's cell in the RoI's M x M grid.

        x' = floor((x - x1) * M / (x2 - x1)) (x on the right edge -> M - 1), same for y
        target = y' M + x',  valid = visible and 0 <= x', y' < M

    keypoints: [R, K, 3] (x, y, visibility); rois: [R, 4] -> (int64 [R, K], bool [R, K]).
    """
    kp = as_array(keypoints).astype(np.float64)
    r = as_array(rois).astype(np.float64).reshape(-1, 4)
    if kp.ndim != 3 or kp.shape[2] != 3 or kp.shape[0] != r.shape[0]:
        raise ValueError(f"keypoints_to_heatmap: need keypoints [R, K, 3] and rois [R, 4], got "
                         f"{kp.shape} and {r.shape}")
    width, height = r[:, 2] - r[:, 0], r[:, 3] - r[:, 1]
    if ((width <= 0) | (height <= 0)).any():
        raise ValueError("keypoints_to_heatmap: every RoI needs a positive width and height")
    x = np.floor((kp[..., 0] - r[:, :1]) * (heatmap_size / width)[:, None]).astype(np.int64)
    y = np.floor((kp[..., 1] - r[:, 1:2]) * (heatmap_size / height)[:, None]).astype(np.int64)
    x[kp[..., 0] == r[:, 2:3]] = heatmap_size - 1
    y[kp[..., 1] == r[:, 3:4]] = heatmap_size - 1
    valid = (x >= 0) & (y >= 0) & (x < heatmap_size) & (y < heatmap_size) & (kp[..., 2] > 0)
    return np.where(valid, y * heatmap_size + x, 0), valid


def keypointrcnn_loss(keypoint_logits, keypoint_targets, valid):
    """Mask R-CNN's keypoint loss: for every valid keypoint, a softmax cross-entropy over
    the M^2 positions of its heatmap ("one-hot mask" per keypoint), averaged:

        L = mean over valid (r, k) of -log softmax(keypoint_logits[r, k].flatten())[target[r, k]]

    keypoint_logits: [R, K, M, M]; keypoint_targets: int [R, K] in [0, M^2);
    valid: bool [R, K] (``keypoints_to_heatmap``). No valid keypoint -> 0 (as torchvision).
    """
    num_rois, num_kp, h, w = keypoint_logits.shape
    targets = as_array(keypoint_targets).astype(np.int64).reshape(-1)
    keep = np.flatnonzero(as_array(valid).reshape(-1))
    if targets.shape[0] != num_rois * num_kp or as_array(valid).size != num_rois * num_kp:
        raise ValueError(f"keypointrcnn_loss: keypoint_logits {keypoint_logits.shape} need "
                         f"targets and valid of shape [{num_rois}, {num_kp}]")
    if keep.size == 0:
        return keypoint_logits.sum() * 0.0
    flat = keypoint_logits.reshape(num_rois * num_kp, h * w)
    return F.cross_entropy(flat[keep], targets[keep])
