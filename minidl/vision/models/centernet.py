"""CenterNet: objects as points (Zhou, Wang & Krähenbühl, "Objects as Points", 2019), after
CornerNet (Law & Deng, ECCV 2018), which found boxes as pairs of corner keypoints.

No anchors and no NMS: a box is its centre point plus its size. A fully
convolutional network outputs, at stride R (here 4):

    heatmap  [N, K, H/R, W/R]   one channel per class: a peak at every object centre
    size     [N, 2, H/R, W/R]   the box's (w, h) in output pixels, read at the peak
    offset   [N, 2, H/R, W/R]   the centre's sub-pixel position lost by the stride

**Training.** The target heatmap has a Gaussian bump around each centre, 1 at the
centre's pixel; pixels near a centre are not called plain negatives (a box from
a neighbouring pixel would still be good). The heatmap loss is CornerNet's
penalty-reduced focal loss (alpha = 2, beta = 4), with Y the target and P = sigmoid:

    L_k = -1/M sum  (1 - P)^alpha log P                 where Y = 1   (M objects)
                    (1 - Y)^beta P^alpha log(1 - P)     elsewhere

plus L1 losses on size (weight 0.1) and offset (weight 1) at the centres only.
The bump's standard deviation grows with the box: sigma = (w, h) / 6 at the output
resolution, an elliptical Gaussian as TTFNet (Liu et al. 2020) uses; CenterNet
derives a round radius from an IoU bound instead -- the same idea.

**Detection.** A peak is a pixel no smaller than its 8 neighbours (a 3x3 max
pool keeps it: the "NMS" is this local maximum); the best 100 peaks over all
classes become boxes (x + dx -+ w / 2, y + dy -+ h / 2) x R, scored by the peak.
"""

from __future__ import annotations

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.nn import init
from minidl.nn.containers import Sequential
from minidl.nn.conv import Conv2d
from minidl.nn.module import Module
from minidl.ops.upsample import interpolate
from minidl.vision.loss import prior_bias
from minidl.vision.models.backbone import conv_norm_relu
from minidl.vision.models.dense import check_num_classes, labels_from_one, select_detections
from minidl.vision.models.rcnn import check_images, check_targets
from minidl.vision.models.recipes import TrainedDetector, small_backbone, train_recipe


def centre_heatmaps(targets, num_classes: int, out_size, stride: int):
    """The training targets of a batch at the output resolution.

    Returns (heatmap float32 [N, K, h, w] with an elliptical Gaussian per object, the
    max where two overlap; centres: (image, class, row, col) int arrays of the peaks;
    size float32 [M, 2] and offset float32 [M, 2] at those peaks). Two objects of one
    class with their centre in the same output pixel share that peak (the first keeps
    its size).
    """
    h, w = out_size
    heatmap = np.zeros((len(targets), num_classes, h, w), np.float32)
    ys, xs = np.arange(h)[:, None], np.arange(w)[None, :]
    peaks, sizes, offsets, seen = [], [], [], set()
    for n, target in enumerate(targets):
        boxes = np.asarray(target["boxes"], np.float64).reshape(-1, 4) / stride
        for box, k in zip(boxes, labels_from_one(target["labels"])):
            centre = (box[:2] + box[2:]) / 2
            col, row = min(int(centre[0]), w - 1), min(int(centre[1]), h - 1)
            sigma = np.maximum((box[2:] - box[:2]) / 6, 0.5)
            bump = np.exp(-((xs - col) ** 2) / (2 * sigma[0] ** 2)
                          - ((ys - row) ** 2) / (2 * sigma[1] ** 2))
            heatmap[n, k] = np.maximum(heatmap[n, k], bump)
            if (n, k, row, col) in seen:
                continue
            seen.add((n, k, row, col))
            peaks.append((n, k, row, col))
            sizes.append(box[2:] - box[:2])
            offsets.append(centre - (col, row))
    peaks = np.asarray(peaks, np.int64).reshape(-1, 4)
    return (heatmap, tuple(peaks.T), np.asarray(sizes, np.float32).reshape(-1, 2),
            np.asarray(offsets, np.float32).reshape(-1, 2))


def penalty_reduced_focal_loss(logits, heatmap: np.ndarray, num_objects: int,
                               alpha: float = 2.0, beta: float = 4.0):
    """CornerNet / CenterNet's heatmap loss (see the module docstring), from logits:
    -log P = BCE(x, 1) and -log(1 - P) = BCE(x, 0), computed stably."""
    p = F.sigmoid(logits)
    at_centre = (heatmap == 1.0).astype(logits.dtype)
    ones = np.ones(logits.shape, logits.dtype)
    positive = (1 - p) ** alpha * F.binary_cross_entropy_with_logits(logits, ones,
                                                                     reduction="none")
    negative = ((1 - heatmap) ** beta).astype(logits.dtype) * p ** alpha * \
        F.binary_cross_entropy_with_logits(logits, ones * 0, reduction="none")
    return ((positive * at_centre).sum() + (negative * (1 - at_centre)).sum()) / max(1,
                                                                                   num_objects)


def local_peaks(heat: np.ndarray) -> np.ndarray:
    """bool [..., h, w]: the pixels at least as high as all 8 neighbours (a 3x3 max pool)."""
    padded = np.pad(heat, [(0, 0)] * (heat.ndim - 2) + [(1, 1), (1, 1)],
                    constant_values=-np.inf)
    h, w = heat.shape[-2:]
    neighbours = np.max([padded[..., dy:dy + h, dx:dx + w] for dy in range(3) for dx in range(3)],
                        axis=0)
    return heat >= neighbours


class CenterNet(Module):
    """A centre-heatmap + size detector on a ``Backbone``.

    Args:
        backbone: a ``Backbone`` with stages at strides 4 and 8 (its last two).
        num_classes: K + 1 (background included, as the other detectors; the heatmap
            has K channels).
        head_width: channels of the stride-4 map and the heads.
        weight_size, weight_offset: the loss weights (0.1 and 1, CenterNet).
        detections_per_img: peaks kept (100).

    The stride-8 map is up-sampled x2 and added to a 1x1 projection of the stride-4 map
    (a one-step feature pyramid), then each head is conv3x3 + ReLU + conv1x1; the
    heatmap's bias starts at ``prior_bias(0.1)`` (CenterNet's -2.19).
    Training: ``model(images, targets)`` -> {"loss_heatmap", "loss_size", "loss_offset"}.
    Eval: one dict per image; ``predict(images)`` -> (heatmap logits, size, offset).
    """

    def __init__(self, backbone, num_classes: int, head_width: int = 64,
                 weight_size: float = 0.1, weight_offset: float = 1.0,
                 detections_per_img: int = 100):
        super().__init__()
        check_num_classes(num_classes, "CenterNet")
        self.backbone = backbone
        self.lateral = Conv2d(backbone.widths[-2], backbone.out_channels, 1)
        self.fuse = conv_norm_relu(backbone.out_channels, head_width)

        def head(out_channels):
            return Sequential(conv_norm_relu(head_width, head_width, norm="none"),
                              Conv2d(head_width, out_channels, 1))

        self.heatmap, self.size, self.offset = head(num_classes - 1), head(2), head(2)
        init.constant_(self.heatmap[1].bias, prior_bias(0.1))
        self.stride = backbone.strides[-2]
        self.num_classes, self.detections_per_img = num_classes, detections_per_img
        self.weight_size, self.weight_offset = weight_size, weight_offset

    def predict(self, images):
        fine, coarse = self.backbone.features(images)[-2:]
        x = self.fuse(self.lateral(fine) + interpolate(coarse, size=tuple(fine.shape[-2:]),
                                                       mode="nearest"))
        return self.heatmap(x), self.size(x), self.offset(x)

    def forward(self, images, targets=None):
        images = check_images(images, "CenterNet")
        if self.training:
            check_targets(targets, images, self.num_classes, "CenterNet")
            return self.loss(*self.predict(images), targets)
        heatmap, size, offset = self.predict(images)
        return self.postprocess(heatmap.data, size.data, offset.data, tuple(images.shape[-2:]))

    def loss(self, heatmap, size, offset, targets) -> dict:
        target_heat, (n, k, row, col), sizes, offsets = centre_heatmaps(
            targets, self.num_classes - 1, heatmap.shape[-2:], self.stride)
        num_objects = len(n)
        losses = {"loss_heatmap": penalty_reduced_focal_loss(heatmap, target_heat, num_objects)}
        if num_objects:
            predicted_size = size.permute(0, 2, 3, 1)[n, row, col]        # [M, 2]
            predicted_offset = offset.permute(0, 2, 3, 1)[n, row, col]
            losses["loss_size"] = self.weight_size * (predicted_size - sizes).abs().sum() / \
                num_objects
            losses["loss_offset"] = self.weight_offset * (predicted_offset - offsets).abs(
            ).sum() / num_objects
        else:
            losses["loss_size"] = losses["loss_offset"] = size.sum() * 0.0 + offset.sum() * 0.0
        return losses

    def postprocess(self, heatmap: np.ndarray, size: np.ndarray, offset: np.ndarray,
                    image_size) -> list:
        """The best local peaks of the sigmoid heatmap, as boxes (no NMS)."""
        heat = 0.5 * (1.0 + np.tanh(0.5 * heatmap))                          # sigmoid
        heat = np.where(local_peaks(heat), heat, 0.0)
        results = []
        for i in range(len(heat)):
            k, row, col = np.unravel_index(np.argsort(-heat[i], axis=None)[
                :self.detections_per_img], heat[i].shape)
            cx, cy = col + offset[i, 0, row, col], row + offset[i, 1, row, col]
            # an untrained size head may say "negative": no box is narrower than nothing
            w, h = np.maximum(size[i, :, row, col], 0).T / 2
            boxes = np.stack([cx - w, cy - h, cx + w, cy + h], axis=1) * self.stride
            results.append(select_detections(boxes, heat[i, k, row, col], k + 1, image_size,
                                              score_thresh=0.0, nms_thresh=None,
                                              detections_per_img=self.detections_per_img))
        return results


def centernet_recipe(train_set, epochs: int = 12, seed: int = 0, batch_size: int = 16,
                     lr: float = 1e-3, **options) -> TrainedDetector:
    """CenterNet as lesson 16 trains it; ``options`` go to ``CenterNet``."""
    minidl.manual_seed(seed)
    model = CenterNet(small_backbone(), train_set.num_classes + 1, **options)
    return train_recipe("CenterNet", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
