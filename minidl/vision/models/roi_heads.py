"""The second stage of the R-CNN family: per-region heads on pooled features.

Given a feature map and a set of regions (proposals), every region is pooled to a
fixed grid (RoIPool in Fast R-CNN, RoIAlign in Mask R-CNN) and passed to small heads:

* the **box head** (Girshick, "Fast R-CNN", ICCV 2015, section 2): two fully
  connected layers, then K + 1 class scores (background included) and
  class-specific box deltas, 4 per class; trained with the multi-task loss
  ``fastrcnn_loss`` on RoIs sampled by ``RoISampler`` (25% foreground);
* the **mask head** (He et al., "Mask R-CNN", ICCV 2017, section 3): a small FCN
  that predicts one m x m mask per class, trained with a per-pixel sigmoid on the
  true class's mask only (``maskrcnn_loss``); the paper's ablations (Table 2b, 2e)
  are here too: a per-pixel softmax over classes (``mask_softmax_loss``) and an
  MLP mask head (``MLPMaskHead``);
* the **keypoint head** (Mask R-CNN, section 5): one m x m heatmap per keypoint,
  each trained as a softmax over the m^2 positions (``keypointrcnn_loss``).

``RoIHeads`` composes them in torchvision's way: in training it samples RoIs from
the proposals and returns the losses; in eval it turns the class scores and deltas
into detections (decode, clip, score threshold, per-class NMS) and runs the mask
and keypoint heads on the detected boxes.
"""

from __future__ import annotations

import numpy as np

import minidl.nn.functional as F
from minidl import random
from minidl.nn import init
from minidl.nn.activation import ReLU
from minidl.nn.containers import Sequential
from minidl.nn.conv import Conv2d, ConvTranspose2d
from minidl.nn.linear import Linear
from minidl.nn.module import Module
from minidl.ops.roi import convert_boxes_to_roi_format, roi_align, roi_pool
from minidl.ops.upsample import interpolate
from minidl.vision.box_coder import BoxCoder
from minidl.vision.boxes import box_iou, clip_boxes_to_image, remove_small_boxes
from minidl.vision.loss import (
    fastrcnn_loss,
    keypointrcnn_loss,
    keypoints_to_heatmap,
    maskrcnn_loss,
    project_masks_on_boxes,
)
from minidl.vision.nms import batched_nms
from minidl.vision.roi import infer_scale
from minidl.vision.sampler import RoISample, RoISampler


# ---- pooling the regions ----------------------------------------------------------
class FeatureRoIPool(Module):
    """RoIPool or RoIAlign on one feature map, called like ``MultiScaleRoIAlign``.

        forward(features, boxes, image_shapes) -> [sum K_i, C, out_h, out_w]

    features: a [N, C, H, W] Tensor or a one-element list; boxes: a list of N [K_i, 4]
    in image pixels; the map's stride is inferred from the largest image shape
    (``infer_scale``). ``mode="pool"``: ``roi_pool`` (quantized, Fast R-CNN);
    ``mode="align"``: ``roi_align`` (bilinear, Mask R-CNN). Both in ``minidl/ops/roi.py``.
    """

    def __init__(self, output_size, mode: str = "align", sampling_ratio: int = -1,
                 aligned: bool = False):
        super().__init__()
        if mode not in ("pool", "align"):
            raise ValueError(f"FeatureRoIPool: mode must be 'pool' or 'align', got {mode!r}")
        self.output_size, self.mode = output_size, mode
        self.sampling_ratio, self.aligned = int(sampling_ratio), bool(aligned)

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, mode={self.mode!r}"

    def forward(self, features, boxes, image_shapes):
        feature = features[0] if isinstance(features, (list, tuple)) else features
        image_size = tuple(max(s[d] for s in image_shapes) for d in range(2))
        scale = infer_scale(feature.shape[-2:], image_size)
        rois = convert_boxes_to_roi_format(list(boxes), "FeatureRoIPool")
        if self.mode == "pool":
            return roi_pool(feature, rois, self.output_size, scale)
        return roi_align(feature, rois, self.output_size, scale, self.sampling_ratio,
                         self.aligned)


# ---- the box head ----------------------------------------------------------------
class TwoMLPHead(Module):
    """Fast R-CNN's "fc6, fc7": flatten the pooled RoI and apply two Linear + ReLU layers.

    [R, C, h, w] -> [R, representation_size]   (VGG16: 512 x 7 x 7 -> 4096 -> 4096)
    """

    def __init__(self, in_features: int, representation_size: int):
        super().__init__()
        self.fc6 = Linear(in_features, representation_size)
        self.fc7 = Linear(representation_size, representation_size)

    def forward(self, x):
        return F.relu(self.fc7(F.relu(self.fc6(x.flatten(1)))))


class FastRCNNPredictor(Module):
    """The two sibling outputs of Fast R-CNN (section 2.2):

        class_logits = W_cls x + b   [R, K + 1]      box_regression = W_box x + b   [R, 4 (K + 1)]

    ``num_classes`` counts the background (torchvision's convention: K + 1).
    Init as the paper: weights ~ N(0, 0.01) for the scores and N(0, 0.001) for the
    deltas, biases 0.
    """

    def __init__(self, in_features: int, num_classes: int):
        super().__init__()
        self.cls_score = Linear(in_features, num_classes)
        self.bbox_pred = Linear(in_features, 4 * num_classes)
        init.normal_(self.cls_score.weight, std=0.01)
        init.normal_(self.bbox_pred.weight, std=0.001)
        init.zeros_(self.cls_score.bias)
        init.zeros_(self.bbox_pred.bias)

    def forward(self, x):
        x = x.flatten(1)
        return self.cls_score(x), self.bbox_pred(x)


def sample_uniformly(proposals, gt_boxes, gt_labels, batch_size_per_image: int,
                     fg_iou_threshold: float = 0.5, add_gt_as_proposals: bool = True,
                     generator=None) -> RoISample:
    """The baseline of lesson 07's sampling ablation: ``batch_size_per_image`` RoIs drawn
    uniformly from all proposals, each labelled by its best IoU (its object's class if
    >= fg_iou_threshold, else background) -- no fixed foreground share and no
    [0.1, 0.5) window for the negatives (compare ``RoISampler``). Returns an ``RoISample``.
    """
    proposals = np.asarray(proposals, dtype=np.float32).reshape(-1, 4)
    gt_boxes = np.asarray(gt_boxes, dtype=np.float32).reshape(-1, 4)
    gt_labels = np.asarray(gt_labels).reshape(-1).astype(np.int64)
    if add_gt_as_proposals:
        proposals = np.concatenate([proposals, gt_boxes])
    rng = generator if generator is not None else random.generator()
    chosen = rng.permutation(len(proposals))[:batch_size_per_image]
    if len(gt_boxes):
        iou = box_iou(gt_boxes, proposals[chosen])
        matched = iou.argmax(axis=0).astype(np.int64)
        foreground = iou.max(axis=0) >= fg_iou_threshold
        labels = np.where(foreground, gt_labels[matched], 0)
        matched_boxes = gt_boxes[matched]
    else:
        matched = np.full(len(chosen), -1, dtype=np.int64)
        labels = np.zeros(len(chosen), dtype=np.int64)
        matched_boxes = np.zeros((len(chosen), 4), dtype=np.float32)
    order = np.argsort(labels == 0, kind="stable")  # positives first, as RoISampler
    return RoISample(proposals[chosen][order], labels[order], matched_boxes[order],
                     matched[order])


class UniformRoISampler:
    """``sample_uniformly`` with ``RoISampler``'s calling convention:
    ``sampler(proposals, gt_boxes, gt_labels) -> RoISample``."""

    def __init__(self, batch_size_per_image: int = 64, fg_iou_threshold: float = 0.5,
                 add_gt_as_proposals: bool = True, generator=None):
        self.batch_size_per_image = int(batch_size_per_image)
        self.fg_iou_threshold = float(fg_iou_threshold)
        self.add_gt_as_proposals = bool(add_gt_as_proposals)
        self.generator = generator

    def __repr__(self) -> str:
        return (f"UniformRoISampler(batch_size_per_image={self.batch_size_per_image}, "
                f"fg_iou_threshold={self.fg_iou_threshold})")

    def __call__(self, proposals, gt_boxes, gt_labels) -> RoISample:
        return sample_uniformly(proposals, gt_boxes, gt_labels, self.batch_size_per_image,
                                self.fg_iou_threshold, self.add_gt_as_proposals, self.generator)


def box_regression_targets(sample: RoISample, box_coder: BoxCoder) -> np.ndarray:
    """Targets t* = encode(matched object, RoI) for the foreground RoIs, 0 for the others
    (the loss reads only the foreground; background RoIs may match nothing). -> [R, 4]"""
    targets = np.zeros((len(sample.labels), 4), dtype=np.float32)
    positive = np.flatnonzero(sample.labels > 0)
    if positive.size:
        targets[positive] = box_coder.encode_single(sample.matched_gt_boxes[positive],
                                                    sample.proposals[positive])
    return targets


def postprocess_detections(class_logits: np.ndarray, box_regression: np.ndarray, proposals: list,
                           image_shapes: list, box_coder: BoxCoder, score_thresh: float = 0.05,
                           nms_thresh: float = 0.5, detections_per_img: int = 100,
                           min_size: float = 1e-2) -> list:
    """Detections from the box head's outputs (Fast R-CNN, section 4; torchvision's steps):

        p = softmax(class_logits)            every RoI gets a score for each of the K classes
        box_k = decode(deltas_k, RoI)        and a box for each class, clipped to the image
        keep p_k > score_thresh and boxes at least min_size wide and high
        NMS per class at nms_thresh (the paper: 0.3; torchvision: 0.5), keep the best
        detections_per_img

    class_logits: [R, K + 1] and box_regression: [R, 4 (K + 1)] arrays for the RoIs of all
    images, proposals: the per-image RoIs [R_i, 4]. Returns one dict per image:
    boxes float32 [D, 4], labels int64 [D] in 1..K, scores float32 [D], best first.
    """
    num_classes = class_logits.shape[1]
    shifted = class_logits - class_logits.max(axis=1, keepdims=True)
    probabilities = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
    rois = np.concatenate([np.asarray(p, np.float32).reshape(-1, 4) for p in proposals])
    boxes = box_coder.decode_single(box_regression, rois).reshape(-1, num_classes, 4)
    results, start = [], 0
    for roi_boxes, image_shape in zip(proposals, image_shapes):
        stop = start + len(roi_boxes)
        image_boxes = clip_boxes_to_image(boxes[start:stop, 1:], image_shape).reshape(-1, 4)
        scores = probabilities[start:stop, 1:].reshape(-1)
        labels = np.tile(np.arange(1, num_classes), stop - start)
        keep = np.flatnonzero(scores > score_thresh)
        keep = keep[remove_small_boxes(image_boxes[keep], min_size)]
        kept = batched_nms(image_boxes[keep], scores[keep], labels[keep], nms_thresh)
        keep = keep[kept[:detections_per_img]]
        results.append({"boxes": image_boxes[keep].astype(np.float32),
                        "labels": labels[keep].astype(np.int64),
                        "scores": scores[keep].astype(np.float32)})
        start = stop
    return results


# ---- the mask head -----------------------------------------------------------------
def conv_relu_stack(in_channels: int, layers) -> tuple[Sequential, int]:
    """(conv3x3 -> ReLU) for each width in ``layers`` (the mask and keypoint heads' FCN);
    returns the stack and its output channels."""
    blocks, channels = [], in_channels
    for width in layers:
        blocks += [Conv2d(channels, width, 3, padding=1), ReLU()]
        channels = width
    return Sequential(*blocks), channels


class MaskHead(Module):
    """Mask R-CNN's mask branch as a small FCN (Figure 4, right, with fewer layers):

        [R, C, m, m] -> (conv3x3 -> ReLU) x len(layers) -> deconv 2x2 stride 2 -> ReLU
                     -> conv1x1 -> mask logits [R, num_classes, 2m, 2m]

    One mask per class (background included, as torchvision's predictor), so
    that the class branch alone decides the class (the paper's "decoupling").
    The paper: 4 convs of 256 channels on 14 x 14 RoIs, 28 x 28 masks.
    """

    def __init__(self, in_channels: int, num_classes: int, layers=(64, 64)):
        super().__init__()
        self.fcn, channels = conv_relu_stack(in_channels, layers)
        self.upsample = ConvTranspose2d(channels, channels, 2, stride=2)
        self.mask_logits = Conv2d(channels, num_classes, 1)

    def forward(self, x):
        return self.mask_logits(F.relu(self.upsample(self.fcn(x))))


class MLPMaskHead(Module):
    """The MLP mask head of Mask R-CNN's Table 2e: the pooled RoI flattened, two fully
    connected layers, and one fc layer that outputs every class's m x m mask:

        [R, C, p, p] -> fc -> ReLU -> fc -> ReLU -> fc -> [R, num_classes, m, m]

    Unlike the FCN it has no spatial layout to keep: every output pixel sees every input.
    """

    def __init__(self, in_channels: int, pool_size: int, num_classes: int, mask_size: int,
                 hidden: int = 256):
        super().__init__()
        self.fc1 = Linear(in_channels * pool_size * pool_size, hidden)
        self.fc2 = Linear(hidden, hidden)
        self.mask_logits = Linear(hidden, num_classes * mask_size * mask_size)
        self.num_classes, self.mask_size = num_classes, mask_size

    def forward(self, x):
        h = F.relu(self.fc2(F.relu(self.fc1(x.flatten(1)))))
        return self.mask_logits(h).reshape(x.shape[0], self.num_classes, self.mask_size,
                                           self.mask_size)


def mask_softmax_loss(mask_logits, labels, mask_targets):
    """The alternative of Mask R-CNN's Table 2b: a per-pixel softmax over the classes
    (as in FCN), where the classes compete for each pixel:

        target(r, y, x) = labels[r] if mask_targets[r, y, x] >= 0.5 else 0 (background)
        L = mean over RoIs and pixels of cross_entropy(mask_logits[r, :, y, x], target)

    mask_logits: [R, K + 1, m, m]; labels: int [R]; mask_targets: [R, m, m] in [0, 1].
    With R = 0 the loss is 0, connected to the graph (as ``maskrcnn_loss``).
    """
    labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    targets = np.asarray(mask_targets)
    if mask_logits.shape[0] == 0:
        return mask_logits.sum() * 0.0
    if targets.shape != (mask_logits.shape[0],) + tuple(mask_logits.shape[2:]):
        raise ValueError(f"mask_softmax_loss: mask_logits {mask_logits.shape} need mask_targets "
                         f"[R, m, m], got {targets.shape}")
    pixel_classes = np.where(targets >= 0.5, labels[:, None, None], 0)
    return F.cross_entropy(mask_logits, pixel_classes)


def mask_probabilities(mask_logits: np.ndarray, labels: np.ndarray, loss: str) -> np.ndarray:
    """Each RoI's mask for its own class: sigmoid of that channel ("sigmoid"), or that
    class's share of the per-pixel softmax ("softmax"). [R, K + 1, m, m] -> [R, m, m]"""
    rois = np.arange(len(labels))
    if loss == "sigmoid":
        return 1.0 / (1.0 + np.exp(-mask_logits[rois, labels]))
    exponentials = np.exp(mask_logits - mask_logits.max(axis=1, keepdims=True))
    return exponentials[rois, labels] / exponentials.sum(axis=1)


def paste_masks_in_image(masks: np.ndarray, boxes: np.ndarray, image_shape) -> np.ndarray:
    """Put each m x m mask back into the image inside its box (bilinear), zero outside.

    A pixel (x, y) (centre x + 0.5, y + 0.5) inside box (x1, y1, x2, y2) reads the mask at
    u = (x + 0.5 - x1) m / (x2 - x1) - 0.5 (and v likewise), the same sampling convention
    as ``roi_align`` used to cut the targets. masks: [D, m, m]; boxes: [D, 4];
    image_shape: (H, W) -> float32 [D, H, W] in the masks' range.
    """
    height, width = image_shape
    out = np.zeros((len(masks), height, width), dtype=np.float32)
    for d, (mask, (x1, y1, x2, y2)) in enumerate(zip(masks, boxes)):
        m_h, m_w = mask.shape
        cols = np.arange(max(int(np.floor(x1)), 0), min(int(np.ceil(x2)), width))
        rows = np.arange(max(int(np.floor(y1)), 0), min(int(np.ceil(y2)), height))
        if cols.size == 0 or rows.size == 0:
            continue
        u = np.clip((cols + 0.5 - x1) * m_w / max(x2 - x1, 1e-6) - 0.5, 0, m_w - 1)
        v = np.clip((rows + 0.5 - y1) * m_h / max(y2 - y1, 1e-6) - 0.5, 0, m_h - 1)
        u0, v0 = np.floor(u).astype(int), np.floor(v).astype(int)
        u1, v1 = np.minimum(u0 + 1, m_w - 1), np.minimum(v0 + 1, m_h - 1)
        fu, fv = (u - u0)[None, :], (v - v0)[:, None]
        top = mask[v0][:, u0] * (1 - fu) + mask[v0][:, u1] * fu
        bottom = mask[v1][:, u0] * (1 - fu) + mask[v1][:, u1] * fu
        out[d, rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] = top * (1 - fv) + bottom * fv
    return out


# ---- the keypoint head -------------------------------------------------------------
class KeypointHead(Module):
    """Mask R-CNN's keypoint branch (section 5: 8 convs of 512 on 14 x 14 RoIs, a deconv and
    a 2x bilinear up-sampling to 56 x 56; torchvision's order):

        [R, C, m, m] -> (conv3x3 -> ReLU) x len(layers) -> deconv 4x4 stride 2
                     -> bilinear x2 -> keypoint logits [R, num_keypoints, 4m, 4m]

    Each of the K maps is trained as a softmax over its (4m)^2 positions with a
    one-hot target at the keypoint (``keypointrcnn_loss``).
    """

    def __init__(self, in_channels: int, num_keypoints: int, layers=(64, 64, 64, 64)):
        super().__init__()
        self.fcn, channels = conv_relu_stack(in_channels, layers)
        self.keypoint_logits = ConvTranspose2d(channels, num_keypoints, 4, stride=2, padding=1)
        self.num_keypoints = num_keypoints

    def forward(self, x):
        return interpolate(self.keypoint_logits(self.fcn(x)), scale_factor=2, mode="bilinear",
                           align_corners=False)


def heatmaps_to_keypoints(heatmaps: np.ndarray, rois: np.ndarray):
    """Each keypoint at the centre of its heatmap's best cell, mapped back to the image:

        (j, i) = argmax over the m x m map,   x = x1 + (j + 0.5) (x2 - x1) / m,   y likewise

    (torchvision first resizes each map to the box size and refines; one cell here is at
    most a couple of pixels.) heatmaps: [R, K, m, m] logits; rois: [R, 4] ->
    (keypoints float32 [R, K, 3] as (x, y, 1), scores float32 [R, K] = the best logit).
    """
    r, k, m_h, m_w = heatmaps.shape
    flat = heatmaps.reshape(r, k, m_h * m_w)
    best = flat.argmax(axis=2)
    i, j = best // m_w, best % m_w
    rois = np.asarray(rois, dtype=np.float64).reshape(-1, 4)
    x = rois[:, :1] + (j + 0.5) * (rois[:, 2:3] - rois[:, :1]) / m_w
    y = rois[:, 1:2] + (i + 0.5) * (rois[:, 3:4] - rois[:, 1:2]) / m_h
    keypoints = np.stack([x, y, np.ones_like(x)], axis=2).astype(np.float32)
    return keypoints, np.take_along_axis(flat, best[..., None], axis=2)[..., 0].astype(np.float32)


# ---- all heads together ------------------------------------------------------------
def _zero_loss(features):
    """A loss of 0 that is still a function of the features, so ``backward`` runs as usual."""
    return features[0].sum() * 0.0


class RoIHeads(Module):
    """The second stage: RoI sampling, box head, and the optional mask and keypoint heads.

    Args:
        box_roi_pool: pools RoIs, ``(features, boxes, image_shapes) -> [R, C, h, w]``
            (``FeatureRoIPool`` or ``MultiScaleRoIAlign``).
        box_head, box_predictor: e.g. ``TwoMLPHead`` and ``FastRCNNPredictor``.
        sampler: ``RoISampler`` (Fast R-CNN's 25% foreground) or ``UniformRoISampler``.
        box_coder: ``BoxCoder((10, 10, 5, 5))``, as torchvision.
        score_thresh, nms_thresh, detections_per_img: see ``postprocess_detections``.
        mask_roi_pool, mask_head: the mask branch (None: no masks); mask_loss: "sigmoid"
            (``maskrcnn_loss``, the paper's) or "softmax" (``mask_softmax_loss``).
        keypoint_roi_pool, keypoint_head: the keypoint branch (None: no keypoints); the head
            has a ``num_keypoints`` attribute.

    ``forward(features, proposals, image_shapes, targets=None)`` -> (detections, losses):
    in training detections is [] and losses has ``loss_classifier``, ``loss_box_reg``
    (+ ``loss_mask``, ``loss_keypoint``); in eval losses is {} and each detection dict
    has boxes, labels, scores (+ masks [D, 1, H, W] probabilities; + keypoints [D, K, 3]
    and keypoints_scores [D, K]).
    """

    def __init__(self, box_roi_pool, box_head, box_predictor, sampler=None,
                 box_coder: BoxCoder | None = None, score_thresh: float = 0.05,
                 nms_thresh: float = 0.5, detections_per_img: int = 100,
                 mask_roi_pool=None, mask_head=None, mask_loss: str = "sigmoid",
                 keypoint_roi_pool=None, keypoint_head=None):
        super().__init__()
        if mask_loss not in ("sigmoid", "softmax"):
            raise ValueError(f"RoIHeads: mask_loss must be 'sigmoid' or 'softmax', "
                             f"got {mask_loss!r}")
        self.box_roi_pool, self.box_head, self.box_predictor = box_roi_pool, box_head, box_predictor
        self.sampler = sampler if sampler is not None else RoISampler(512, 0.25, 0.5, (0.0, 0.5))
        self.box_coder = box_coder if box_coder is not None else BoxCoder((10.0, 10.0, 5.0, 5.0))
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.mask_roi_pool, self.mask_head, self.mask_loss = mask_roi_pool, mask_head, mask_loss
        self.keypoint_roi_pool, self.keypoint_head = keypoint_roi_pool, keypoint_head

    @property
    def has_mask(self) -> bool:
        return self.mask_head is not None

    @property
    def has_keypoint(self) -> bool:
        return self.keypoint_head is not None

    def select_training_samples(self, proposals: list, targets: list) -> list:
        """One ``RoISample`` per image: the sampled RoIs, their labels and matched objects."""
        return [self.sampler(np.asarray(p, np.float32).reshape(-1, 4),
                             np.asarray(t["boxes"], np.float32).reshape(-1, 4), t["labels"])
                for p, t in zip(proposals, targets)]

    def box_outputs(self, features, rois: list, image_shapes):
        """Pool every RoI and run the box head: (class_logits [R, K+1], box_regression)."""
        pooled = self.box_roi_pool(features, rois, image_shapes)
        return self.box_predictor(self.box_head(pooled))

    def forward(self, features, proposals, image_shapes, targets=None):
        if not self.training:
            return self.detect(features, proposals, image_shapes), {}
        samples = self.select_training_samples(proposals, targets)
        rois = [s.proposals for s in samples]
        class_logits, box_regression = self.box_outputs(features, rois, image_shapes)
        if class_logits.shape[0] == 0:  # every image empty under a [0.1, 0.5) rule
            losses = {"loss_classifier": _zero_loss(features), "loss_box_reg": _zero_loss(features)}
        else:
            loss_classifier, loss_box_reg = fastrcnn_loss(
                class_logits, box_regression, [s.labels for s in samples],
                [box_regression_targets(s, self.box_coder) for s in samples])
            losses = {"loss_classifier": loss_classifier, "loss_box_reg": loss_box_reg}
        positives = [np.flatnonzero(s.labels > 0) for s in samples]
        if self.has_mask:
            losses["loss_mask"] = self.mask_training_loss(features, samples, positives,
                                                          image_shapes, targets)
        if self.has_keypoint:
            losses["loss_keypoint"] = self.keypoint_training_loss(features, samples, positives,
                                                                  image_shapes, targets)
        return [], losses

    def mask_training_loss(self, features, samples, positives, image_shapes, targets):
        """The mask loss on the foreground RoIs, targets cut from each matched object's mask
        (0, still connected to the graph, when the batch has no foreground RoI)."""
        if sum(len(p) for p in positives) == 0:
            return _zero_loss(features)
        rois = [s.proposals[p] for s, p in zip(samples, positives)]
        logits = self.mask_head(self.mask_roi_pool(features, rois, image_shapes))
        size = logits.shape[-1]
        mask_targets = [project_masks_on_boxes(t["masks"], s.proposals[p], s.matched_idxs[p],
                                               size)
                        for s, p, t in zip(samples, positives, targets)]
        labels = np.concatenate([s.labels[p] for s, p in zip(samples, positives)])
        mask_targets = np.concatenate(mask_targets) if mask_targets else np.zeros((0, size, size))
        if self.mask_loss == "softmax":
            return mask_softmax_loss(logits, labels, mask_targets)
        return maskrcnn_loss(logits, labels, mask_targets)

    def keypoint_training_loss(self, features, samples, positives, image_shapes, targets):
        """The keypoint loss on the foreground RoIs (one-hot m x m target per keypoint;
        0, connected to the graph, without any)."""
        if sum(len(p) for p in positives) == 0:
            return _zero_loss(features)
        rois = [s.proposals[p] for s, p in zip(samples, positives)]
        logits = self.keypoint_head(self.keypoint_roi_pool(features, rois, image_shapes))
        size = logits.shape[-1]
        targets_valid = [keypoints_to_heatmap(np.asarray(t["keypoints"])[s.matched_idxs[p]],
                                              s.proposals[p], size)
                         for s, p, t in zip(samples, positives, targets)]
        heatmap_targets = np.concatenate([tv[0] for tv in targets_valid])
        valid = np.concatenate([tv[1] for tv in targets_valid])
        return keypointrcnn_loss(logits, heatmap_targets, valid)

    def detect(self, features, proposals, image_shapes) -> list:
        """Eval: detections from the box head, then masks and keypoints on the detected boxes."""
        class_logits, box_regression = self.box_outputs(features, proposals, image_shapes)
        detections = postprocess_detections(class_logits.data, box_regression.data, proposals,
                                            image_shapes, self.box_coder, self.score_thresh,
                                            self.nms_thresh, self.detections_per_img)
        if self.has_mask:
            self.predict_masks(features, detections, image_shapes)
        if self.has_keypoint:
            self.predict_keypoints(features, detections, image_shapes)
        return detections

    def predict_masks(self, features, detections: list, image_shapes) -> list:
        """Add "masks" [D, 1, H, W] (probabilities of the detected class, pasted into the
        image) to each detection dict, in place; returns the list."""
        labels = np.concatenate([d["labels"] for d in detections])
        if len(labels) == 0:
            for d, shape in zip(detections, image_shapes):
                d["masks"] = np.zeros((0, 1) + tuple(shape), np.float32)
            return detections
        boxes = [d["boxes"] for d in detections]
        logits = self.mask_head(self.mask_roi_pool(features, boxes, image_shapes)).data
        probabilities = mask_probabilities(logits, labels, self.mask_loss)
        start = 0
        for d, shape in zip(detections, image_shapes):
            stop = start + len(d["boxes"])
            d["masks"] = paste_masks_in_image(probabilities[start:stop], d["boxes"], shape)[:, None]
            start = stop
        return detections

    def predict_keypoints(self, features, detections: list, image_shapes) -> list:
        """Add "keypoints" [D, K, 3] and "keypoints_scores" [D, K] to each detection dict."""
        boxes = [d["boxes"] for d in detections]
        if sum(len(b) for b in boxes) == 0:
            k = self.keypoint_head.num_keypoints
            for d in detections:
                d["keypoints"] = np.zeros((0, k, 3), np.float32)
                d["keypoints_scores"] = np.zeros((0, k), np.float32)
            return detections
        logits = self.keypoint_head(self.keypoint_roi_pool(features, boxes, image_shapes)).data
        keypoints, scores = heatmaps_to_keypoints(logits, np.concatenate(boxes))
        start = 0
        for d in detections:
            stop = start + len(d["boxes"])
            d["keypoints"], d["keypoints_scores"] = keypoints[start:stop], scores[start:stop]
            start = stop
        return detections
