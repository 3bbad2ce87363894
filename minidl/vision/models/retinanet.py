"""RetinaNet: a feature pyramid, two small subnets on every level, and the focal loss
(Lin, Goyal, Girshick, He & Dollár, "Focal Loss for Dense Object Detection", ICCV 2017).

A dense detector scores tens of thousands of anchors per image, and almost all of
them are easy background. With cross-entropy, the sum of their small losses
still outweighs the few objects; SSD samples hard negatives to cope, Faster
R-CNN a 1:3 mini-batch. RetinaNet keeps every anchor and changes the loss
instead: the focal loss FL(p_t) = -alpha_t (1 - p_t)^gamma log(p_t)
(``sigmoid_focal_loss`` in ``minidl/vision/loss.py``) shrinks the loss of
well-classified anchors, so the hard ones dominate the gradient.

    image -> Backbone stages C3 (stride 8), C4 (stride 16)
          -> FPN: P3, P4 (top-down + lateral 1x1), P5 = conv3x3 stride 2 on P4
          -> on every level, the same two subnets (weights shared across levels):
               class subnet: (conv3x3 + ReLU) x depth -> conv3x3 -> A K logits (sigmoids)
               box subnet:   (conv3x3 + ReLU) x depth -> conv3x3 -> A 4 offsets

The paper's levels are P3-P7 with anchors of 32^2 to 512^2 pixels on ~800-pixel
images, 4 convs of 256 channels per subnet; here three levels with anchors of
about 1.5 strides (12, 24, 48 pixels, each x 2^0, 2^(1/3), 2^(2/3) and ratios
1:2, 1:1, 2:1: A = 9) and 2 convs of 64 channels, for 64 x 64 images.

Anchors are matched with IoU >= 0.5 (object), < 0.4 (background), in between
ignored, each object keeping its best anchor. The loss is the focal loss summed
over all non-ignored anchors plus a smooth L1 on the positives' offsets, both
divided by the number of positive anchors. The class logits' bias starts at
b = -log((1 - pi) / pi) with pi = 0.01 (``prior_bias``): every anchor starts out
saying "background" with 99% confidence, which keeps the first steps stable.
"""

from __future__ import annotations

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.nn import init
from minidl.nn.containers import Sequential
from minidl.nn.conv import Conv2d
from minidl.nn.module import Module
from minidl.vision.anchors import AnchorGenerator
from minidl.vision.box_coder import BoxCoder
from minidl.vision.loss import prior_bias, sigmoid_focal_loss
from minidl.vision.matcher import Matcher
from minidl.vision.models.backbone import FPN, Backbone, conv_norm_relu
from minidl.vision.models.dense import (
    batch_anchor_labels,
    check_num_classes,
    detections_per_class,
    flatten_anchor_outputs,
)
from minidl.vision.models.rcnn import check_images, check_targets
from minidl.vision.models.recipes import TrainedDetector, train_recipe


def retinanet_anchor_sizes(base_sizes=(12, 24, 48), octave_scales=(0, 1 / 3, 2 / 3)) -> tuple:
    """Per level, the anchor sizes base x 2^s for s in ``octave_scales`` (the paper's three
    scales per octave), rounded to whole pixels."""
    return tuple(tuple(int(round(b * 2 ** s)) for s in octave_scales) for b in base_sizes)


class RetinaNetHead(Module):
    """The class and box subnets, applied to every pyramid level with the same weights.

    Each subnet is ``depth`` x (conv3x3 -> norm -> ReLU) (``norm="none"``: the paper's plain
    conv + ReLU), then a conv3x3 to the outputs. Init (section 4.1): conv weights ~ N(0, 0.01),
    biases 0, except the final class conv's bias = ``prior_bias(prior_probability)``
    (``prior_probability=0.5`` gives 0).
    """

    def __init__(self, in_channels: int, num_anchors: int, num_classes: int, depth: int = 2,
                 prior_probability: float = 0.01, norm: str = "none"):
        super().__init__()

        def subnet():
            return Sequential(*[conv_norm_relu(in_channels, in_channels, norm=norm)
                                for _ in range(depth)])

        self.cls_subnet, self.bbox_subnet = subnet(), subnet()
        self.cls_logits = Conv2d(in_channels, num_anchors * num_classes, 3, padding=1)
        self.bbox_pred = Conv2d(in_channels, num_anchors * 4, 3, padding=1)
        for layer in self.modules():
            if isinstance(layer, Conv2d):
                init.normal_(layer.weight, std=0.01)
                if layer.bias is not None:
                    init.zeros_(layer.bias)
        init.constant_(self.cls_logits.bias, prior_bias(prior_probability))
        self.num_classes = num_classes

    def forward(self, levels):
        """list of [N, C, H_l, W_l] -> (logits [N, A_total, K], offsets [N, A_total, 4])."""
        logits = [flatten_anchor_outputs(self.cls_logits(self.cls_subnet(x)), self.num_classes)
                  for x in levels]
        offsets = [flatten_anchor_outputs(self.bbox_pred(self.bbox_subnet(x)), 4)
                   for x in levels]
        return minidl.cat(logits, dim=1), minidl.cat(offsets, dim=1)


class RetinaNet(Module):
    """RetinaNet: Backbone + FPN + shared subnets + focal loss.

    Args:
        backbone: a ``Backbone`` with at least two stages after stride 4 (its last two
            stages are C3 and C4).
        num_classes: K + 1 (background included, as the other detectors; the head has K
            sigmoid outputs, one per object class, and no background output).
        fpn_width: channels of every pyramid level and of the subnets (256 in the paper).
        head_depth: convs per subnet before the output conv (4 in the paper).
        anchor_sizes: one tuple per level (default ``retinanet_anchor_sizes()``);
            aspect_ratios: (0.5, 1, 2).
        gamma, alpha: the focal loss (2, 0.25; gamma = 0 is alpha-balanced cross-entropy).
        prior_probability: pi of the class bias init (0.01; 0.5 means a zero bias).
        head_norm: normalization after each subnet conv: "none" (the paper) or "group"
            (GroupNorm, as torchvision's RetinaNet v2; it helps a head trained from scratch).
        score_thresh, nms_thresh, detections_per_img: eval (0.05, 0.5, 100).

    Training: ``model(images, targets)`` -> {"classification", "bbox_regression"}.
    Eval: one dict per image. ``predict(images)`` -> (logits, offsets) for all anchors;
    ``anchors`` [A_total, 4] in pixels once ``predict`` has seen an image size.
    """

    def __init__(self, backbone, num_classes: int, fpn_width: int = 64, head_depth: int = 2,
                 anchor_sizes=None, aspect_ratios=(0.5, 1.0, 2.0), gamma: float = 2.0,
                 alpha: float = 0.25, prior_probability: float = 0.01, head_norm: str = "none",
                 score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100):
        super().__init__()
        check_num_classes(num_classes, "RetinaNet")
        self.backbone = backbone
        self.fpn = FPN(backbone.widths[-2:], fpn_width)
        self.extra = conv_norm_relu(fpn_width, fpn_width, stride=2, norm="none")  # P5
        sizes = anchor_sizes or retinanet_anchor_sizes()
        self.anchor_generator = AnchorGenerator(sizes, (tuple(aspect_ratios),), offset=0.5)
        num_anchors = self.anchor_generator.num_anchors_per_location()[0]
        self.head = RetinaNetHead(fpn_width, num_anchors, num_classes - 1, head_depth,
                                  prior_probability, head_norm)
        self.box_coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
        self.matcher = Matcher(0.5, 0.4, allow_low_quality_matches=True)
        self.num_classes, self.gamma, self.alpha = num_classes, gamma, alpha
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img
        self.anchors = None

    def pyramid(self, images) -> list:
        """[P3, P4, P5]: the FPN on the backbone's last two stages, then a stride-2 conv."""
        c3, c4 = self.backbone.features(images)[-2:]
        p3, p4 = self.fpn([c3, c4])
        return [p3, p4, self.extra(p4)]

    def predict(self, images):
        levels = self.pyramid(images)
        self.anchors = self.anchor_generator.anchors_for(
            tuple(images.shape[-2:]), [tuple(p.shape[-2:]) for p in levels])
        return self.head(levels)

    def targets(self, targets):
        """Per image, every anchor's class (0 background, -1 ignored) and offsets."""
        return batch_anchor_labels(self.anchors, targets, self.matcher, self.box_coder)

    def loss(self, logits, offsets, targets) -> dict:
        labels, regression = self.targets(targets)                  # [N, A], [N, A, 4]
        valid, positive = labels >= 0, labels > 0
        one_hot = np.zeros(logits.shape, dtype=logits.dtype)        # [N, A, K], K sigmoids
        n_index, a_index = np.nonzero(positive)
        one_hot[n_index, a_index, labels[positive] - 1] = 1.0
        num_positive = max(1, int(positive.sum()))
        classification = sigmoid_focal_loss(logits[valid], one_hot[valid], self.alpha,
                                            self.gamma, reduction="sum")
        box = F.smooth_l1_loss(offsets[positive], regression[positive].astype(offsets.dtype),
                               beta=1 / 9, reduction="sum")
        return {"classification": classification / num_positive,
                "bbox_regression": box / num_positive}

    def forward(self, images, targets=None):
        images = check_images(images, "RetinaNet")
        if self.training:
            check_targets(targets, images, self.num_classes, "RetinaNet")
            return self.loss(*self.predict(images), targets)
        logits, offsets = self.predict(images)
        return self.postprocess(logits.data, offsets.data, tuple(images.shape[-2:]))

    def postprocess(self, logits: np.ndarray, offsets: np.ndarray, image_size) -> list:
        """sigmoid score of every anchor and class, the decoded box, ``select_detections``."""
        scores = 0.5 * (1.0 + np.tanh(0.5 * logits))                # sigmoid, no overflow
        return [detections_per_class(self.box_coder.decode_single(offsets[i], self.anchors),
                                     scores[i], image_size, self.score_thresh, self.nms_thresh,
                                     self.detections_per_img) for i in range(len(logits))]


def retinanet_backbone() -> Backbone:
    """``small_backbone``'s three stages plus a fourth (stride 16): C3 and C4 for the FPN."""
    return Backbone(widths=(16, 32, 64, 128), depth=2)


def retinanet_recipe(train_set, epochs: int = 12, seed: int = 0, batch_size: int = 16,
                     lr: float = 1e-3, **options) -> TrainedDetector:
    """RetinaNet as lesson 11 trains it; ``options`` go to ``RetinaNet`` (e.g. ``gamma``,
    ``alpha``, ``prior_probability`` for the ablations)."""
    minidl.manual_seed(seed)
    model = RetinaNet(retinanet_backbone(), train_set.num_classes + 1, **options)
    return train_recipe("RetinaNet", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
