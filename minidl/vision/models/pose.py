"""Pose: the stacked hourglass, heatmap targets, and the keypoint metric of lesson 09.

* ``StackedHourglass`` (Newell, Yang & Deng, "Stacked Hourglass Networks for Human
  Pose Estimation", ECCV 2016): a single-person network that predicts one heatmap
  per keypoint. Each hourglass pools down to a coarse map and comes back up,
  adding at every scale a skip branch from the way down, so the output mixes
  local detail with the whole figure's context. Several hourglasses are stacked;
  each one's heatmaps get their own loss (*intermediate supervision*) and are fed,
  with its features, to the next, which can correct them.
* ``gaussian_heatmaps``: the hourglass's targets, a small Gaussian at each keypoint
  (mean squared error, as the paper). Mask R-CNN's keypoint head instead uses a
  one-hot target and a softmax over positions (``keypointrcnn_loss``).
* ``pck`` (Percentage of Correct Keypoints; Yang & Ramanan, PAMI 2013, with the
  torso as the reference length as in FLIC / LSP): a keypoint is correct when it lies
  within alpha x (the figure's torso length) of the truth. ``match_keypoints`` pairs
  each true figure with a detection first, so a missed figure counts as wrong.
"""

from __future__ import annotations

import numpy as np

from minidl.nn.containers import ModuleList
from minidl.nn.conv import Conv2d
from minidl.nn.module import Module
from minidl.ops.pool import max_pool2d
from minidl.ops.upsample import interpolate
from minidl.vision.boxes import box_iou
from minidl.vision.models.backbone import conv_norm_relu

NECK, LEFT_HIP, RIGHT_HIP = 1, 8, 9   # in minidl.data.shapes.KEYPOINT_NAMES


# ---- the network -------------------------------------------------------------------
class Hourglass(Module):
    """One hourglass of ``depth`` levels (Newell et al., Figure 3), recursively:

        up   = block(x)                                       skip branch at this scale
        low  = block(max_pool 2x2(x)) -> Hourglass(depth - 1) (or a block at the bottom)
               -> block
        out  = up + upsample_nearest_2x(low)

    [N, C, H, W] -> [N, C, H, W] (H and W divisible by 2^depth). Blocks are
    conv-norm-ReLU (the paper uses residual modules).
    """

    def __init__(self, depth: int, channels: int):
        super().__init__()
        self.up = conv_norm_relu(channels, channels)
        self.down = conv_norm_relu(channels, channels)
        self.inner = (Hourglass(depth - 1, channels) if depth > 1
                      else conv_norm_relu(channels, channels))
        self.back = conv_norm_relu(channels, channels)

    def forward(self, x):
        low = self.back(self.inner(self.down(max_pool2d(x, 2))))
        return self.up(x) + interpolate(low, scale_factor=2, mode="nearest")


class StackedHourglass(Module):
    """``num_stacks`` hourglasses with intermediate supervision (Newell et al., section 3.4).

        x = stem(image)                             conv stride 2 + conv: [N, C, H/2, W/2]
        for each stack s:
            f = conv(Hourglass(x));  heatmaps_s = conv1x1(f)     [N, K, H/2, W/2]
            x = x + conv1x1(f) + conv1x1(heatmaps_s)             (not after the last stack)

    ``forward(images)`` returns the list of every stack's heatmaps (the last is the
    prediction); ``hourglass_loss`` supervises all of them. Attribute ``stride`` = 2.
    """

    def __init__(self, num_keypoints: int, channels: int = 32, depth: int = 3,
                 num_stacks: int = 2, in_channels: int = 3):
        super().__init__()
        self.stem = ModuleList([conv_norm_relu(in_channels, channels, stride=2),
                                conv_norm_relu(channels, channels)])
        self.hourglasses = ModuleList([Hourglass(depth, channels) for _ in range(num_stacks)])
        self.features = ModuleList([conv_norm_relu(channels, channels)
                                    for _ in range(num_stacks)])
        self.heatmaps = ModuleList([Conv2d(channels, num_keypoints, 1)
                                    for _ in range(num_stacks)])
        self.merge_features = ModuleList([Conv2d(channels, channels, 1)
                                          for _ in range(num_stacks - 1)])
        self.merge_heatmaps = ModuleList([Conv2d(num_keypoints, channels, 1)
                                          for _ in range(num_stacks - 1)])
        self.stride = 2

    def forward(self, images) -> list:
        x = self.stem[1](self.stem[0](images))
        outputs = []
        for s, hourglass in enumerate(self.hourglasses):
            features = self.features[s](hourglass(x))
            heatmaps = self.heatmaps[s](features)
            outputs.append(heatmaps)
            if s < len(self.merge_features):
                x = x + self.merge_features[s](features) + self.merge_heatmaps[s](heatmaps)
        return outputs


# ---- targets, loss, decoding ---------------------------------------------------------
def gaussian_heatmaps(keypoints, size, stride: int, sigma: float = 1.0) -> np.ndarray:
    """Heatmap targets: for keypoint k at image position (x, y), the map of size (h, w) with
    pixel (i, j) (centre ((j + 0.5) stride, (i + 0.5) stride) in the image) set to

        exp(-((x' - j)^2 + (y' - i)^2) / (2 sigma^2)),   x' = x / stride - 0.5,  y' likewise

    and all zeros for a keypoint with visibility 0. keypoints: [K, 3] (x, y, v) ->
    float32 [K, h, w].
    """
    h, w = size
    keypoints = np.asarray(keypoints, dtype=np.float64).reshape(-1, 3)
    x = keypoints[:, 0, None, None] / stride - 0.5
    y = keypoints[:, 1, None, None] / stride - 0.5
    rows, cols = np.arange(h)[None, :, None], np.arange(w)[None, None, :]
    maps = np.exp(-((cols - x) ** 2 + (rows - y) ** 2) / (2 * sigma ** 2))
    return (maps * (keypoints[:, 2, None, None] > 0)).astype(np.float32)


def hourglass_loss(outputs: list, targets, visible):
    """Intermediate supervision: the sum over stacks of the mean squared error between
    each stack's heatmaps and the targets, over the visible keypoints' maps.

    outputs: list of [N, K, h, w] Tensors; targets: [N, K, h, w]; visible: bool [N, K].
    """
    weight = np.asarray(visible, dtype=np.float32)[:, :, None, None]
    targets = np.asarray(targets, dtype=np.float32)
    count = max(float(weight.sum()) * targets.shape[2] * targets.shape[3], 1.0)
    total = None
    for heatmaps in outputs:
        loss = (((heatmaps - targets) ** 2) * weight).sum() / count
        total = loss if total is None else total + loss
    return total


def heatmaps_to_points(heatmaps: np.ndarray, stride: int) -> np.ndarray:
    """Each map's maximum, back in image pixels: ((j + 0.5) stride, (i + 0.5) stride).
    heatmaps: [N, K, h, w] -> float32 [N, K, 2] (x, y)."""
    n, k, h, w = heatmaps.shape
    best = heatmaps.reshape(n, k, h * w).argmax(axis=2)
    return np.stack([(best % w + 0.5) * stride, (best // w + 0.5) * stride],
                    axis=2).astype(np.float32)


# ---- the metric ------------------------------------------------------------------------
def torso_length(keypoints) -> np.ndarray:
    """Distance from the neck to the middle of the hips, [M, K, 3] -> [M] (the reference
    length of PCK; the stick figures' torso is always inside the image)."""
    keypoints = np.asarray(keypoints, dtype=np.float64)
    hips = (keypoints[:, LEFT_HIP, :2] + keypoints[:, RIGHT_HIP, :2]) / 2
    return np.hypot(*(keypoints[:, NECK, :2] - hips).T)


def pck(predicted, truth, alpha: float = 0.2) -> float:
    """Percentage of Correct Keypoints: over every keypoint with visibility > 0,

        correct = || predicted - true || <= alpha * torso_length(figure)

    predicted: [M, K, 2+] (a figure with no prediction: NaN, counted wrong);
    truth: [M, K, 3] (x, y, v). Returns a fraction in [0, 1] (NaN without keypoints).
    """
    predicted = np.asarray(predicted, dtype=np.float64)[..., :2]
    truth = np.asarray(truth, dtype=np.float64)
    if len(truth) == 0:
        return float("nan")
    distance = np.hypot(*(predicted - truth[..., :2]).transpose(2, 0, 1))
    correct = np.nan_to_num(distance, nan=np.inf) <= alpha * torso_length(truth)[:, None]
    counted = truth[..., 2] > 0
    return float(correct[counted].mean()) if counted.any() else float("nan")


def match_keypoints(detections: list, targets: list, iou_threshold: float = 0.5):
    """Pair every true figure with a detection (greedy by score, box IoU >= iou_threshold,
    as the detection metrics) and return (predicted [M, K, 3], truth [M, K, 3]) over all
    M true figures; a figure left without a detection gets NaN keypoints."""
    predicted, truth = [], []
    for detection, target in zip(detections, targets):
        true_keypoints = np.asarray(target["keypoints"], dtype=np.float64)
        guess = np.full(true_keypoints.shape, np.nan)
        boxes = np.asarray(detection["boxes"], dtype=np.float32).reshape(-1, 4)
        if len(boxes) and len(true_keypoints):
            iou = box_iou(np.asarray(target["boxes"], np.float32), boxes)
            free = np.ones(len(true_keypoints), dtype=bool)
            for d in np.argsort(-np.asarray(detection["scores"]), kind="stable"):
                candidates = np.where(free & (iou[:, d] >= iou_threshold), iou[:, d], -1.0)
                g = int(np.argmax(candidates))
                if candidates[g] >= 0:
                    guess[g] = detection["keypoints"][d]
                    free[g] = False
        predicted.append(guess)
        truth.append(true_keypoints)
    k = next((t.shape[1] for t in truth if t.ndim == 3 and len(t)), 0)
    return (np.concatenate(predicted) if predicted else np.zeros((0, k, 3)),
            np.concatenate(truth) if truth else np.zeros((0, k, 3)))


def hourglass_targets(keypoints, image_size: int, stride: int = 2, sigma: float = 1.0):
    """Targets and visibility for a batch of single figures: keypoints [N, K, 3] ->
    (heatmaps [N, K, H / stride, W / stride], visible bool [N, K])."""
    size = (image_size // stride, image_size // stride)
    maps = np.stack([gaussian_heatmaps(k, size, stride, sigma) for k in keypoints])
    return maps, np.asarray(keypoints)[..., 2] > 0
