"""The R-CNN family assembled: Fast R-CNN, Faster R-CNN, Mask R-CNN and Keypoint R-CNN.

Every model is backbone -> (region proposals) -> RoI heads, in torchvision's calling
convention (``GeneralizedRCNN``)::

    model.train();  losses = model(images, targets)   # {"loss_classifier": ..., ...}
    model.eval();   detections = model(images)        # [{"boxes", "labels", "scores", ...}]

* ``FastRCNN`` (Girshick, ICCV 2015): proposals come from outside (selective search
  in the paper), ``model(images, targets, proposals=...)``; RoIPool 7 x 7; 64 RoIs per
  image, 25% foreground; NMS 0.3 at test time.
* ``FasterRCNN`` (Ren et al., NeurIPS 2015): a ``RegionProposalNetwork`` on the
  same features makes the proposals; both stages trained together
  (approximate joint training); RoIAlign as torchvision.
* ``MaskRCNN`` (He et al., ICCV 2017): Faster R-CNN plus a mask head on RoIAlign
  features.
* ``KeypointRCNN`` (He et al., section 5): Faster R-CNN plus a keypoint head.

``num_classes`` counts the background, as torchvision: a data set with K object
classes (labels 1..K) needs ``num_classes = K + 1``.

Images are a Tensor [N, 3, H, W] (one size for the batch, as ``detection_collate``
makes). Targets are checked before anything runs (``check_targets``): a missing key,
boxes that are flipped, empty or outside the image, or labels outside 1..K raise a
ValueError naming the model and the image. An image without objects (boxes [0, 4])
is fine: all its RoIs and anchors are background.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn.module import Module
from minidl.vision.anchors import AnchorGenerator
from minidl.vision.models.roi_heads import (
    FastRCNNPredictor,
    FeatureRoIPool,
    KeypointHead,
    MaskHead,
    RoIHeads,
    TwoMLPHead,
)
from minidl.vision.models.rpn import RegionProposalNetwork, RPNHead
from minidl.vision.sampler import RoISampler


# ---- input checks -----------------------------------------------------------------
def check_images(images, model: str) -> Tensor:
    """The images as a float Tensor [N, C, H, W], or a ValueError naming the model."""
    images = images if isinstance(images, Tensor) else Tensor(np.asarray(images))
    if images.ndim != 4 or images.dtype.kind != "f":
        raise ValueError(f"{model}: images must be a float [N, C, H, W] batch (stack them with "
                         f"detection_collate), got shape {images.shape} and dtype {images.dtype}")
    return images


def _target_boxes(target, index, image_size, model):
    boxes = np.asarray(target["boxes"], dtype=np.float64)
    if boxes.size == 0:
        return
    if boxes.ndim != 2 or boxes.shape[1] != 4 or not np.isfinite(boxes).all():
        raise ValueError(f"{model}: target {index}: boxes must be finite [G, 4] (x1, y1, x2, y2), "
                         f"got shape {boxes.shape}")
    flat = (boxes[:, 2] <= boxes[:, 0]) | (boxes[:, 3] <= boxes[:, 1])
    if flat.any():
        g = int(np.argmax(flat))
        raise ValueError(f"{model}: target {index}: box {g} = {boxes[g].tolist()} has no area; "
                         "boxes need x2 > x1 and y2 > y1")
    height, width = image_size
    outside = ((boxes[:, :2] < 0).any(axis=1) | (boxes[:, 2] > width) | (boxes[:, 3] > height))
    if outside.any():
        g = int(np.argmax(outside))
        raise ValueError(f"{model}: target {index}: box {g} = {boxes[g].tolist()} lies outside the "
                         f"{height} x {width} image; clip it (clip_boxes_to_image) or drop it")


def check_targets(targets, images: Tensor, num_classes: int, model: str, needs=()) -> None:
    """Raise a ValueError naming ``model`` unless ``targets`` is one dict per image with
    "boxes" [G, 4] inside the image (x2 > x1, y2 > y1), "labels" [G] in 1..num_classes - 1,
    and the extra keys in ``needs`` ("masks" [G, H, W], "keypoints" [G, K, 3])."""
    if targets is None:
        raise ValueError(f"{model}: training mode needs targets (a list of dicts with boxes "
                         f"and labels); call model.eval() to detect")
    if not isinstance(targets, (list, tuple)) or len(targets) != images.shape[0]:
        raise ValueError(f"{model}: need one target dict per image ({images.shape[0]}), got "
                         f"{type(targets).__name__} of length {len(targets)}")
    image_size = tuple(images.shape[-2:])
    for index, target in enumerate(targets):
        missing = [key for key in ("boxes", "labels") + tuple(needs) if key not in target]
        if missing:
            raise ValueError(f"{model}: target {index} has no {missing} (keys: {sorted(target)})")
        _target_boxes(target, index, image_size, model)
        count = np.asarray(target["boxes"]).reshape(-1, 4).shape[0]
        labels = np.asarray(target["labels"]).reshape(-1)
        if labels.shape[0] != count or (count and labels.dtype.kind not in "iu"):
            raise ValueError(f"{model}: target {index}: need {count} integer labels, one per "
                             f"box, got {labels.dtype} {labels.shape}")
        if count and (labels.min() < 1 or labels.max() >= num_classes):
            raise ValueError(f"{model}: target {index}: labels {labels.tolist()} must be in "
                             f"1..{num_classes - 1} (0 is the background; the model has "
                             f"num_classes = {num_classes}, background included)")
        if "masks" in needs:
            shape = np.asarray(target["masks"]).shape
            if shape != (count,) + image_size:
                raise ValueError(f"{model}: target {index}: masks must be [{count}, "
                                 f"{image_size[0]}, {image_size[1]}], got {shape}")
        if "keypoints" in needs:
            shape = np.asarray(target["keypoints"]).shape
            if len(shape) != 3 or shape[0] != count or shape[2] != 3:
                raise ValueError(f"{model}: target {index}: keypoints must be [{count}, K, 3] "
                                 f"(x, y, visibility), got {shape}")


def check_proposals(proposals, images: Tensor, model: str) -> list:
    """Given proposals: one [P_i, 4] array per image, finite, x2 > x1, y2 > y1."""
    if not isinstance(proposals, (list, tuple)) or len(proposals) != images.shape[0]:
        raise ValueError(f"{model}: needs proposals=[one [P_i, 4] array per image] "
                         f"({images.shape[0]} images); got {type(proposals).__name__}")
    checked = []
    for index, boxes in enumerate(proposals):
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if not np.isfinite(boxes).all() or ((boxes[:, 2] <= boxes[:, 0])
                                            | (boxes[:, 3] <= boxes[:, 1])).any():
            raise ValueError(f"{model}: proposals of image {index} must be finite boxes with "
                             "x2 > x1 and y2 > y1")
        checked.append(boxes)
    return checked


# ---- the generic two-stage detector ----------------------------------------------------
class GeneralizedRCNN(Module):
    """backbone -> (rpn) -> roi_heads, as torchvision's GeneralizedRCNN (without its resizing
    transform: the lessons' images already share one small size).

    ``forward(images, targets=None, proposals=None)``: training returns the dict of
    losses of both stages; eval returns one detection dict per image. ``proposals``
    (a list of [P_i, 4] arrays) is required when the model has no RPN (Fast R-CNN)
    and ignored otherwise.
    """

    def __init__(self, backbone, rpn, roi_heads: RoIHeads, num_classes: int):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"{type(self).__name__}: num_classes counts the background, so it "
                             f"must be >= 2, got {num_classes}")
        self.backbone, self.rpn, self.roi_heads = backbone, rpn, roi_heads
        self.num_classes = num_classes

    def required_target_keys(self) -> tuple:
        keys = ()
        if self.roi_heads.has_mask:
            keys += ("masks",)
        if self.roi_heads.has_keypoint:
            keys += ("keypoints",)
        return keys

    def features(self, images) -> list:
        """The backbone's feature map(s), always as a list (one entry per level)."""
        features = self.backbone(images)
        return list(features) if isinstance(features, (list, tuple)) else [features]

    def forward(self, images, targets=None, proposals=None):
        name = type(self).__name__
        images = check_images(images, name)
        if self.training:
            check_targets(targets, images, self.num_classes, name, self.required_target_keys())
        features = self.features(images)
        image_shapes = [tuple(images.shape[-2:])] * images.shape[0]
        losses = {}
        if self.rpn is not None:
            proposals, losses = self.rpn(images, features, targets)
        else:
            proposals = check_proposals(proposals, images, name)
        detections, roi_losses = self.roi_heads(features, proposals, image_shapes, targets)
        return {**losses, **roi_losses} if self.training else detections


def _box_heads(out_channels: int, num_classes: int, pool: str, pool_size: int,
               representation_size: int):
    """The RoI pooling layer, the two-fc box head and the predictor."""
    return (FeatureRoIPool(pool_size, pool),
            TwoMLPHead(out_channels * pool_size * pool_size, representation_size),
            FastRCNNPredictor(representation_size, num_classes))


class FastRCNN(GeneralizedRCNN):
    """Fast R-CNN on given proposals: shared features, RoIPool, fc6-fc7, two sibling outputs.

    Args:
        backbone: a Module with ``out_channels`` mapping [N, 3, H, W] to one feature map.
        num_classes: K + 1 (background included).
        roi_pool: "pool" (the paper's RoIPool) or "align"; pool_size: 7 (the paper).
        representation_size: width of fc6 and fc7 (4096 in the paper).
        sampler: default ``RoISampler(64, 0.25, 0.5, (0.1, 0.5))`` -- the paper's 64 RoIs
            per image, 25% with IoU >= 0.5, background from IoU in [0.1, 0.5).
        box_nms_thresh: 0.3 (the paper's test-time NMS); box_score_thresh,
            box_detections_per_img as ``postprocess_detections``.

    ``model(images, targets, proposals=...)`` in training, ``model(images, proposals=...)``
    in eval; proposals a list of [P_i, 4] arrays in image pixels.
    """

    def __init__(self, backbone, num_classes: int, roi_pool: str = "pool", pool_size: int = 7,
                 representation_size: int = 256, sampler=None, box_nms_thresh: float = 0.3,
                 box_score_thresh: float = 0.05, box_detections_per_img: int = 100):
        pool, head, predictor = _box_heads(backbone.out_channels, num_classes, roi_pool,
                                           pool_size, representation_size)
        sampler = sampler if sampler is not None else RoISampler(64, 0.25, 0.5, (0.1, 0.5))
        roi_heads = RoIHeads(pool, head, predictor, sampler, score_thresh=box_score_thresh,
                             nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img)
        super().__init__(backbone, None, roi_heads, num_classes)


class FasterRCNN(GeneralizedRCNN):
    """Faster R-CNN: a region proposal network on the backbone's features, then Fast R-CNN's
    heads on its proposals.

    Args (defaults sized for 64 x 64 images and a stride-8 backbone):
        backbone, num_classes, roi_pool, pool_size, representation_size: as ``FastRCNN``
            (roi_pool "align" as torchvision).
        anchor_sizes, aspect_ratios: one tuple per feature level; 3 sizes x 3 ratios
            (h / w = 0.5, 1, 2) as the paper, scaled to the image: (8, 16, 32) pixels.
        rpn_pre_nms_top_n, rpn_post_nms_top_n: {"training": n, "testing": n} proposals
            kept before and after the RPN's NMS (rpn_nms_thresh 0.7).
        rpn_batch_size_per_image, rpn_positive_fraction: 256 anchors, at most half positive.
        box_batch_size_per_image, box_positive_fraction: RoIs per image for the box head
            (torchvision: 512, 25%; background from IoU in [0, 0.5)).
        box_nms_thresh: 0.5 (torchvision).
    """

    def __init__(self, backbone, num_classes: int, roi_pool: str = "align", pool_size: int = 7,
                 representation_size: int = 256, anchor_sizes=((8, 16, 32),),
                 aspect_ratios=((0.5, 1.0, 2.0),), rpn_pre_nms_top_n=None,
                 rpn_post_nms_top_n=None, rpn_nms_thresh: float = 0.7,
                 rpn_batch_size_per_image: int = 256, rpn_positive_fraction: float = 0.5,
                 box_batch_size_per_image: int = 64, box_positive_fraction: float = 0.25,
                 box_nms_thresh: float = 0.5, box_score_thresh: float = 0.05,
                 box_detections_per_img: int = 100, mask_roi_pool=None, mask_head=None,
                 mask_loss: str = "sigmoid", keypoint_roi_pool=None, keypoint_head=None):
        anchor_generator = AnchorGenerator(anchor_sizes, aspect_ratios, offset=0.5)
        rpn = RegionProposalNetwork(
            anchor_generator, RPNHead(backbone.out_channels,
                                      anchor_generator.num_anchors_per_location()[0]),
            batch_size_per_image=rpn_batch_size_per_image,
            positive_fraction=rpn_positive_fraction,
            pre_nms_top_n=rpn_pre_nms_top_n or {"training": 600, "testing": 600},
            post_nms_top_n=rpn_post_nms_top_n or {"training": 300, "testing": 100},
            nms_thresh=rpn_nms_thresh)
        pool, head, predictor = _box_heads(backbone.out_channels, num_classes, roi_pool,
                                           pool_size, representation_size)
        sampler = RoISampler(box_batch_size_per_image, box_positive_fraction, 0.5, (0.0, 0.5))
        roi_heads = RoIHeads(pool, head, predictor, sampler, score_thresh=box_score_thresh,
                             nms_thresh=box_nms_thresh, detections_per_img=box_detections_per_img,
                             mask_roi_pool=mask_roi_pool, mask_head=mask_head, mask_loss=mask_loss,
                             keypoint_roi_pool=keypoint_roi_pool, keypoint_head=keypoint_head)
        super().__init__(backbone, rpn, roi_heads, num_classes)


class MaskRCNN(FasterRCNN):
    """Mask R-CNN: Faster R-CNN plus a mask head (an FCN on 14 x 14 RoIAlign features,
    one 28 x 28 mask per class), trained with a per-pixel sigmoid on the true class's mask.

    Args: as ``FasterRCNN``, plus
        mask_pool: "align" (RoIAlign, the paper) or "pool" (RoIPool, Table 2c's baseline);
        mask_pool_size: 14; mask_head: default ``MaskHead(out_channels, num_classes)``
            (or e.g. an ``MLPMaskHead`` for Table 2e);
        mask_loss: "sigmoid" (the paper) or "softmax" (Table 2b's baseline).
    Eval detections also hold "masks": [D, 1, H, W] probabilities (threshold at 0.5).
    """

    def __init__(self, backbone, num_classes: int, mask_pool: str = "align",
                 mask_pool_size: int = 14, mask_head=None, mask_loss: str = "sigmoid", **kwargs):
        mask_head = mask_head if mask_head is not None else MaskHead(backbone.out_channels,
                                                                     num_classes)
        super().__init__(backbone, num_classes, mask_roi_pool=FeatureRoIPool(mask_pool_size,
                                                                             mask_pool),
                         mask_head=mask_head, mask_loss=mask_loss, **kwargs)


class KeypointRCNN(FasterRCNN):
    """Keypoint R-CNN: Faster R-CNN plus a keypoint head (14 x 14 RoIAlign features, one
    56 x 56 heatmap per keypoint, a softmax over positions).

    Args: as ``FasterRCNN`` (num_classes default 2: background and person), plus
        num_keypoints (14 for the stick figures) and keypoint_pool_size (14).
    Eval detections also hold "keypoints" [D, K, 3] (x, y, 1) and "keypoints_scores" [D, K].
    """

    def __init__(self, backbone, num_classes: int = 2, num_keypoints: int = 14,
                 keypoint_pool_size: int = 14, keypoint_head=None, **kwargs):
        keypoint_head = (keypoint_head if keypoint_head is not None
                         else KeypointHead(backbone.out_channels, num_keypoints))
        super().__init__(backbone, num_classes,
                         keypoint_roi_pool=FeatureRoIPool(keypoint_pool_size, "align"),
                         keypoint_head=keypoint_head, **kwargs)
