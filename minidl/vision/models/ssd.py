"""SSD: the Single Shot MultiBox Detector (Liu et al., ECCV 2016).

One network, one pass, no proposals: a set of *default boxes* tiles several
feature maps of decreasing resolution, and small 3x3 conv heads predict, for
every default box, K + 1 class scores (background included, a softmax) and four
offsets (the R-CNN box parametrization, ``BoxCoder`` with SSD's "variances"
0.1, 0.2, i.e. weights 10, 10, 5, 5). Fine maps see small objects, coarse maps
large ones: default box scales grow linearly from s_min to s_max over the maps
(``ssd_default_boxes`` in ``minidl/vision/anchors.py``)::

    image 64 x 64 -> backbone stage 3 (stride 8):   8 x 8 map, 4 boxes per cell
                  -> extra conv, stride 2:           4 x 4 map, 6 boxes per cell
                  -> extra conv, stride 2:           2 x 2 map, 6 boxes per cell
                  -> extra conv, stride 2:           1 x 1 map, 4 boxes per cell

(SSD300 does the same with 38 x 38 ... 1 x 1 maps and 8,732 default boxes.)

Training (section 2.2):

* **matching**: each object takes its best default box, then every default box
  with IoU >= 0.5 takes the object it overlaps most (``Matcher(0.5, 0.5,
  allow_low_quality_matches=True)``); the rest are background;
* **hard negative mining**: almost every default box is background, so only the
  negatives with the highest classification loss are kept, three per positive;
* **the loss**: (softmax cross-entropy over positives and kept negatives + smooth L1
  over the positives' offsets) / number of positives.
"""

from __future__ import annotations

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.nn.containers import ModuleList
from minidl.nn.conv import Conv2d
from minidl.nn.module import Module
from minidl.vision.anchors import ssd_default_boxes
from minidl.vision.box_coder import BoxCoder
from minidl.vision.boxes import box_convert
from minidl.vision.matcher import Matcher
from minidl.vision.models.backbone import conv_norm_relu
from minidl.vision.models.dense import (
    batch_anchor_labels,
    check_num_classes,
    detections_per_class,
    flatten_anchor_outputs,
)
from minidl.vision.models.rcnn import check_images, check_targets
from minidl.vision.models.recipes import TrainedDetector, small_backbone, train_recipe


def hard_negative_mask(class_loss: np.ndarray, labels: np.ndarray, neg_pos_ratio: int = 3):
    """Which default boxes enter the classification loss (SSD, "Hard negative mining"):
    every positive, and per image the ``neg_pos_ratio`` x (its positives) negatives with the
    highest loss (at least ``neg_pos_ratio`` when an image has no positive, so that its
    false alarms are still punished).

    class_loss: [N, A] cross-entropy of every default box; labels: [N, A] (>0 object, 0
    background, -1 ignored) -> bool [N, A].
    """
    positive = labels > 0
    negative_loss = np.where(labels == 0, class_loss, -np.inf)
    keep = positive.copy()
    for i in range(labels.shape[0]):
        count = min(neg_pos_ratio * max(int(positive[i].sum()), 1), int((labels[i] == 0).sum()))
        hardest = np.argsort(-negative_loss[i], kind="stable")[:count]
        keep[i, hardest] = True
    return keep


class SSDHead(Module):
    """For each feature map k, a 3x3 conv giving A_k (K + 1) class logits and one giving
    A_k 4 offsets (SSD, Figure 2: "Detector & classifier")."""

    def __init__(self, in_channels, boxes_per_cell, num_classes: int):
        super().__init__()
        self.classification = ModuleList([Conv2d(c, a * num_classes, 3, padding=1)
                                          for c, a in zip(in_channels, boxes_per_cell)])
        self.regression = ModuleList([Conv2d(c, a * 4, 3, padding=1)
                                      for c, a in zip(in_channels, boxes_per_cell)])
        self.num_classes = num_classes

    def forward(self, maps):
        """list of [N, C_k, f_k, f_k] -> (logits [N, B, K + 1], offsets [N, B, 4]), B all boxes."""
        logits = [flatten_anchor_outputs(head(x), self.num_classes)
                  for head, x in zip(self.classification, maps)]
        offsets = [flatten_anchor_outputs(head(x), 4) for head, x in zip(self.regression, maps)]
        return minidl.cat(logits, dim=1), minidl.cat(offsets, dim=1)


class SSD(Module):
    """SSD on a ``Backbone``: its last stage and ``extra_layers`` stride-2 convs give the maps.

    Args:
        backbone: a ``Backbone`` (its last stage is the first, finest map).
        num_classes: K + 1 (background included).
        image_size: side of the square images (the default boxes are made for it).
        extra_widths: channels of the extra stride-2 maps (SSD's conv8_2 ... conv11_2).
        aspect_ratios: extra ratios per map (default: (2,) on the first and last map,
            (2, 3) between, as SSD300); s_min, s_max: the scale range (0.2, 0.9).
        neg_pos_ratio: hard negatives per positive (3).
        score_thresh, nms_thresh, detections_per_img: eval (0.01, 0.45, 100 as SSD).

    Training: ``model(images, targets)`` -> {"bbox_regression", "classification"}
    (torchvision's keys). Eval: one dict per image (boxes, labels 1..K, scores).
    ``default_boxes`` holds the B default boxes in pixels, xyxy, in the heads' order.
    """

    def __init__(self, backbone, num_classes: int, image_size: int = 64,
                 extra_widths=(128, 128, 128), aspect_ratios=None, s_min: float = 0.2,
                 s_max: float = 0.9, neg_pos_ratio: int = 3, score_thresh: float = 0.01,
                 nms_thresh: float = 0.45, detections_per_img: int = 100):
        super().__init__()
        check_num_classes(num_classes, "SSD")
        self.backbone = backbone
        widths = (backbone.out_channels,) + tuple(extra_widths)
        self.extras = ModuleList([conv_norm_relu(a, b, stride=2)
                                  for a, b in zip(widths[:-1], widths[1:])])
        first = image_size // backbone.strides[-1]
        self.map_sizes = [max(1, first // 2 ** k) for k in range(len(widths))]
        if aspect_ratios is None:
            aspect_ratios = [(2,)] + [(2, 3)] * (len(widths) - 2) + [(2,)]
        boxes_per_cell = [2 + 2 * len(r) for r in aspect_ratios]
        self.head = SSDHead(widths, boxes_per_cell, num_classes)
        relative = ssd_default_boxes(self.map_sizes, aspect_ratios, s_min, s_max)
        self.default_boxes = box_convert(relative, "cxcywh", "xyxy") * image_size
        self.box_coder = BoxCoder(weights=(10.0, 10.0, 5.0, 5.0))
        self.matcher = Matcher(0.5, 0.5, allow_low_quality_matches=True)
        self.num_classes, self.image_size, self.neg_pos_ratio = num_classes, image_size, \
            neg_pos_ratio
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img

    def feature_maps(self, images) -> list:
        x = self.backbone(images)
        maps = [x]
        for extra in self.extras:
            x = extra(x)
            maps.append(x)
        return maps

    def forward(self, images, targets=None):
        images = check_images(images, "SSD")
        if tuple(images.shape[-2:]) != (self.image_size, self.image_size):
            raise ValueError(f"SSD: built for {self.image_size} x {self.image_size} images (its "
                             f"default boxes are), got {images.shape[-2]} x {images.shape[-1]}")
        if self.training:
            check_targets(targets, images, self.num_classes, "SSD")
        logits, offsets = self.head(self.feature_maps(images))
        if self.training:
            return self.loss(logits, offsets, targets)
        return self.postprocess(logits.data, offsets.data)

    def targets(self, targets):
        """Per image, the class of every default box and its offsets (``anchor_labels``)."""
        return batch_anchor_labels(self.default_boxes, targets, self.matcher, self.box_coder)

    def loss(self, logits, offsets, targets) -> dict:
        labels, regression = self.targets(targets)                  # [N, B], [N, B, 4]
        n, boxes, classes = logits.shape
        class_loss = F.cross_entropy(logits.reshape(n * boxes, classes),
                                     np.maximum(labels, 0).reshape(-1),
                                     reduction="none").reshape(n, boxes)
        chosen = hard_negative_mask(class_loss.data, labels, self.neg_pos_ratio)
        positive = labels > 0
        num_positive = max(1, int(positive.sum()))
        box_loss = F.smooth_l1_loss(offsets[positive], regression[positive].astype(offsets.dtype),
                                    beta=1.0, reduction="sum")
        return {"bbox_regression": box_loss / num_positive,
                "classification": class_loss[chosen].sum() / num_positive}

    def postprocess(self, logits: np.ndarray, offsets: np.ndarray) -> list:
        """softmax scores of the K object classes for every default box, the decoded box,
        then ``select_detections`` (SSD: score > 0.01, NMS 0.45 per class)."""
        shifted = np.exp(logits - logits.max(-1, keepdims=True))
        probs = (shifted / shifted.sum(-1, keepdims=True))[..., 1:]         # [N, B, K]
        size = (self.image_size, self.image_size)
        return [detections_per_class(self.box_coder.decode_single(offsets[i], self.default_boxes),
                                     probs[i], size, self.score_thresh, self.nms_thresh,
                                     self.detections_per_img) for i in range(len(logits))]


def ssd_recipe(train_set, epochs: int = 12, seed: int = 0, batch_size: int = 16,
               lr: float = 1e-3, **options) -> TrainedDetector:
    """SSD on ``small_backbone`` as lesson 11 trains it; ``options`` go to ``SSD``."""
    minidl.manual_seed(seed)
    model = SSD(small_backbone(), train_set.num_classes + 1, image_size=train_set.image_size,
                **options)
    return train_recipe("SSD", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
