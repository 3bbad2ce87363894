"""The region proposal network (Ren et al., "Faster R-CNN: Towards Real-Time Object Detection
with Region Proposal Networks", NeurIPS 2015, section 3.1), in torchvision's form.

A small network slides over the backbone's feature map. At every position it
looks at a 3 x 3 window and, for each of the A anchors centred there (3 sizes x
3 aspect ratios), says how likely the anchor holds an object (one *objectness*
logit) and how to move the anchor onto that object (four box deltas, the R-CNN
parametrization of ``BoxCoder``). The proposals are the best decoded anchors:

    features [N, C, H, W]
      -> RPNHead:  3x3 conv + ReLU, then 1x1 convs   objectness [N, A, H, W], deltas [N, 4A, H, W]
      -> flatten_predictions                         [N, H W A], [N, H W A, 4] (anchor order)
      -> select_proposals, per image: top-k by objectness, decode, clip to the image,
         remove tiny boxes, NMS at 0.7, keep the best post_nms_top_n      boxes [P, 4], scores [P]

Training labels each anchor from its IoU with the objects (``anchor_targets``:
>= 0.7 positive, < 0.3 negative, each object's best anchor positive, the rest
ignored), samples 256 anchors per image with at most half positives, and
minimizes ``rpn_loss`` (binary cross-entropy on objectness + smooth L1 on the
deltas of the positives; ``minidl/vision/loss.py``).

The proposals leave the RPN as plain arrays: the second stage treats them as
fixed boxes and no gradient flows back through their coordinates. That is
torchvision's *approximate joint training* (the paper, section 3.2): both
losses are summed and one backward pass trains both stages, ignoring the
derivative of the RoI pooling with respect to the proposal boxes.
"""

from __future__ import annotations

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.nn import init
from minidl.nn.conv import Conv2d
from minidl.nn.module import Module
from minidl.vision.anchors import AnchorGenerator
from minidl.vision.box_coder import BoxCoder
from minidl.vision.boxes import box_iou, clip_boxes_to_image, remove_small_boxes
from minidl.vision.loss import rpn_loss
from minidl.vision.matcher import Matcher
from minidl.vision.nms import batched_nms
from minidl.vision.sampler import BalancedPositiveNegativeSampler


class RPNHead(Module):
    """The RPN's sliding network: a 3x3 conv (+ ReLU) shared by two sibling 1x1 convs.

        t = ReLU(conv3x3(x))
        objectness = conv1x1(t) [N, A, H, W]        deltas = conv1x1(t) [N, 4A, H, W]

    The paper's 3x3 "intermediate layer" has 256 (ZF) or 512 (VGG) channels; here it
    keeps the backbone's width. Weights ~ N(0, 0.01), biases 0 (paper, section 3.1.3).
    ``forward(features)`` takes one map or a list (one per pyramid level, the head shared)
    and returns two lists, one entry per level.
    """

    def __init__(self, in_channels: int, num_anchors: int):
        super().__init__()
        self.conv = Conv2d(in_channels, in_channels, 3, padding=1)
        self.cls_logits = Conv2d(in_channels, num_anchors, 1)
        self.bbox_pred = Conv2d(in_channels, 4 * num_anchors, 1)
        for layer in (self.conv, self.cls_logits, self.bbox_pred):
            init.normal_(layer.weight, std=0.01)
            init.zeros_(layer.bias)

    def forward(self, features):
        features = features if isinstance(features, (list, tuple)) else [features]
        objectness, deltas = [], []
        for x in features:
            t = F.relu(self.conv(x))
            objectness.append(self.cls_logits(t))
            deltas.append(self.bbox_pred(t))
        return objectness, deltas


def flatten_predictions(objectness: list, deltas: list):
    """Put the head's outputs in the anchors' order: position-major (row, column), then anchor.

        [N, A, H, W] -> [N, H W A]          [N, 4A, H, W] -> [N, H W A, 4]

    per level, then the levels one after the other, as ``AnchorGenerator.anchors_for``
    lists the anchors. (The 4A channels are A groups of (dx, dy, dw, dh).)
    """
    flat_objectness, flat_deltas = [], []
    for logits, codes in zip(objectness, deltas):
        n, a, h, w = logits.shape
        flat_objectness.append(logits.permute(0, 2, 3, 1).reshape(n, h * w * a))
        flat_deltas.append(codes.reshape(n, a, 4, h, w).permute(0, 3, 4, 1, 2)
                           .reshape(n, h * w * a, 4))
    if len(flat_objectness) == 1:
        return flat_objectness[0], flat_deltas[0]
    return minidl.cat(flat_objectness, dim=1), minidl.cat(flat_deltas, dim=1)


def anchor_targets(anchors: np.ndarray, gt_boxes: np.ndarray, matcher: Matcher,
                   box_coder: BoxCoder):
    """The RPN's training labels for one image (Faster R-CNN, section 3.1.2).

    Each anchor takes the object it overlaps most (``Matcher``); with the RPN's
    ``Matcher(0.7, 0.3, allow_low_quality_matches=True)``:

        label = 1 (object)      IoU >= 0.7, or the anchor is some object's best anchor
        label = 0 (background)  IoU < 0.3
        label = -1 (ignored)    in between

    regression target = ``box_coder.encode_single(matched object, anchor)`` for the
    positives (zeros elsewhere: the loss reads them only for positives).
    anchors: [A, 4], gt_boxes: [G, 4] (G may be 0) -> (int64 [A], float32 [A, 4]).
    """
    matched = matcher(box_iou(gt_boxes, anchors)) if len(gt_boxes) else \
        np.full(len(anchors), Matcher.BELOW_LOW_THRESHOLD, dtype=np.int64)
    labels = np.where(matched >= 0, 1, np.where(matched == Matcher.BELOW_LOW_THRESHOLD, 0, -1))
    targets = np.zeros((len(anchors), 4), dtype=np.float32)
    positive = np.flatnonzero(matched >= 0)
    if positive.size:
        targets[positive] = box_coder.encode_single(gt_boxes[matched[positive]],
                                                    anchors[positive])
    return labels.astype(np.int64), targets


def select_proposals(anchors: np.ndarray, objectness: np.ndarray, deltas: np.ndarray,
                     levels: np.ndarray, image_size, box_coder: BoxCoder,
                     pre_nms_top_n: int, post_nms_top_n: int, nms_thresh: float = 0.7,
                     min_size: float = 1e-3, score_thresh: float = 0.0):
    """The region-proposal step for one image (torchvision's ``filter_proposals``):

        1. keep the pre_nms_top_n anchors of highest objectness on each level
        2. decode their deltas into boxes (``BoxCoder.decode_single``)
        3. clip the boxes to the image (``clip_boxes_to_image``)
        4. drop boxes narrower or shorter than min_size, and scores below score_thresh
        5. NMS at nms_thresh within each level (``batched_nms``)
        6. keep the post_nms_top_n best

    anchors: [A, 4]; objectness: [A] logits; deltas: [A, 4]; levels: int [A] (the
    pyramid level of each anchor, all 0 for one feature map); image_size: (H, W).
    Returns (boxes float32 [P, 4], scores [P] = sigmoid(objectness)), best first.
    """
    top = []
    for level in np.unique(levels):
        members = np.flatnonzero(levels == level)
        order = np.argsort(-objectness[members], kind="stable")[:pre_nms_top_n]
        top.append(members[order])
    top = np.concatenate(top) if top else np.zeros(0, dtype=np.int64)
    boxes = box_coder.decode_single(deltas[top], anchors[top])
    boxes = clip_boxes_to_image(boxes, image_size)
    scores = 1.0 / (1.0 + np.exp(-objectness[top].astype(np.float64)))
    keep = remove_small_boxes(boxes, min_size)
    keep = keep[scores[keep] >= score_thresh]
    boxes, scores, top_levels = boxes[keep], scores[keep], levels[top][keep]
    keep = batched_nms(boxes, scores, top_levels, nms_thresh)[:post_nms_top_n]
    return boxes[keep].astype(np.float32), scores[keep].astype(np.float32)


class RegionProposalNetwork(Module):
    """The RPN: head, anchors, proposals; in training also its loss.

    Args:
        anchor_generator: an ``AnchorGenerator`` (one tuple of sizes per feature level).
        head: an ``RPNHead`` with as many anchors per position as the generator makes.
        fg_iou_thresh, bg_iou_thresh: the anchor labelling thresholds (0.7, 0.3).
        batch_size_per_image, positive_fraction: anchors sampled per image for the loss
            (256, at most half positive).
        pre_nms_top_n, post_nms_top_n: dicts {"training": n, "testing": n} (torchvision:
            2000 / 1000 before NMS, 2000 / 1000 after, per level and per image).
        nms_thresh: 0.7 (paper). min_size: smallest proposal side kept (pixels).

    ``forward(images, features, targets=None)`` -> (proposals, losses): proposals a list
    of N float32 ndarrays [P_i, 4] (no gradient: approximate joint training), losses
    ``{"loss_objectness", "loss_rpn_box_reg"}`` in training, else {}.
    ``propose(images, features)`` also returns each proposal's score (for drawing).
    """

    def __init__(self, anchor_generator: AnchorGenerator, head: RPNHead,
                 fg_iou_thresh: float = 0.7, bg_iou_thresh: float = 0.3,
                 batch_size_per_image: int = 256, positive_fraction: float = 0.5,
                 pre_nms_top_n=None, post_nms_top_n=None, nms_thresh: float = 0.7,
                 min_size: float = 1e-3, score_thresh: float = 0.0):
        super().__init__()
        self.anchor_generator = anchor_generator
        self.head = head
        self.matcher = Matcher(fg_iou_thresh, bg_iou_thresh, allow_low_quality_matches=True)
        self.sampler = BalancedPositiveNegativeSampler(batch_size_per_image, positive_fraction)
        self.box_coder = BoxCoder((1.0, 1.0, 1.0, 1.0))
        self.pre_nms_top_n = dict(pre_nms_top_n or {"training": 2000, "testing": 1000})
        self.post_nms_top_n = dict(post_nms_top_n or {"training": 2000, "testing": 1000})
        self.nms_thresh, self.min_size, self.score_thresh = nms_thresh, min_size, score_thresh

    def _mode(self) -> str:
        return "training" if self.training else "testing"

    def anchors(self, image_size, features) -> tuple[np.ndarray, np.ndarray]:
        """All anchors of one image ([A, 4], levels in order) and the level of each ([A])."""
        sizes = [tuple(f.shape[-2:]) for f in features]
        per_level = self.anchor_generator.grid_anchors(
            sizes, [(image_size[0] // h, image_size[1] // w) for h, w in sizes])
        levels = np.concatenate([np.full(len(a), i) for i, a in enumerate(per_level)])
        return np.concatenate(per_level), levels

    def predict(self, images, features):
        """Head outputs in anchor order: (objectness [N, A], deltas [N, A, 4], anchors, levels)."""
        features = features if isinstance(features, (list, tuple)) else [features]
        objectness, deltas = flatten_predictions(*self.head(features))
        anchors, levels = self.anchors(tuple(images.shape[-2:]), features)
        return objectness, deltas, anchors, levels

    def _select(self, images, objectness, deltas, anchors, levels):
        mode = self._mode()
        return [select_proposals(anchors, objectness.data[i], deltas.data[i], levels,
                                 tuple(images.shape[-2:]), self.box_coder,
                                 self.pre_nms_top_n[mode], self.post_nms_top_n[mode],
                                 self.nms_thresh, self.min_size, self.score_thresh)
                for i in range(images.shape[0])]

    def propose(self, images, features):
        """(boxes list of [P_i, 4], scores list of [P_i]) without a loss."""
        selected = self._select(images, *self.predict(images, features))
        return [b for b, _ in selected], [s for _, s in selected]

    def loss(self, objectness, deltas, anchors, targets) -> dict:
        """``rpn_loss`` on 256 sampled anchors per image (``anchor_targets`` labels them)."""
        labels, regression_targets = [], []
        for target in targets:
            lab, reg = anchor_targets(anchors, np.asarray(target["boxes"], np.float32),
                                      self.matcher, self.box_coder)
            labels.append(lab)
            regression_targets.append(reg)
        loss_objectness, loss_box = rpn_loss(objectness.reshape(-1), deltas.reshape(-1, 4),
                                             labels, regression_targets, self.sampler)
        return {"loss_objectness": loss_objectness, "loss_rpn_box_reg": loss_box}

    def forward(self, images, features, targets=None):
        objectness, deltas, anchors, levels = self.predict(images, features)
        proposals = [b for b, _ in self._select(images, objectness, deltas, anchors, levels)]
        losses = {}
        if self.training:
            if targets is None:
                raise ValueError("RegionProposalNetwork: targets are needed in training mode")
            losses = self.loss(objectness, deltas, anchors, targets)
        return proposals, losses
