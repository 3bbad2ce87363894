"""Sampling the few boxes a detector trains on from the many it proposes.

An image has thousands of anchors, almost all background. Training on all of
them would teach the detector to answer "background"; instead each image
contributes a small batch with a fixed share of positives:

* ``BalancedPositiveNegativeSampler`` (torchvision): from labels
  (>= 1 positive, 0 negative, -1 ignored) pick up to
  batch_size_per_image * positive_fraction positives at random and fill the
  rest of the batch with random negatives. The RPN uses 256 anchors, half positive.
* ``RoISampler`` (Fast R-CNN, Girshick 2015, section 2.3): per image, 25% of
  the RoIs from proposals with IoU >= 0.5 with a ground-truth box (labelled with
  its class) and the rest from proposals whose best IoU is in [0.1, 0.5)
  (labelled background, 0), "which appear to act as a heuristic for hard
  example mining".

Randomness: the ``generator`` given at construction (a ``numpy.random.Generator``)
or else ``minidl.random.generator()`` at call time, so ``minidl.manual_seed``
makes the draws reproducible.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl import random
from minidl.autograd.function import as_array
from minidl.vision.boxes import box_iou, check_boxes


def balanced_sample(positive: np.ndarray, negative: np.ndarray, batch_size: int,
                    positive_fraction: float, rng: np.random.Generator):
    """The rule both samplers share: a batch with at most a fixed share of positives.

        num_pos = min(#positives, int(batch_size * positive_fraction))   (rounded down)
        num_neg = min(#negatives, batch_size - num_pos)                  (fill the batch)

    positive, negative: candidate indices -> (chosen positives, chosen negatives), each
    drawn at random without replacement (the head of a random permutation).
    """
    num_pos = min(positive.size, int(batch_size * positive_fraction))
    num_neg = min(negative.size, batch_size - num_pos)
    return (positive[rng.permutation(positive.size)[:num_pos]],
            negative[rng.permutation(negative.size)[:num_neg]])


class BalancedPositiveNegativeSampler:
    """Args:
        batch_size_per_image: boxes sampled per image (e.g. 256 for the RPN).
        positive_fraction: largest share of positives (e.g. 0.5); fewer positives
            available means more negatives, so the batch stays full when it can.
        generator: optional numpy Generator (default: minidl.random.generator()).

    ``sampler(matched_idxs)`` takes a list of per-image int label arrays [N_i]
    (>= 1 positive, 0 negative, -1 or -2 ignored) and returns two lists of bool
    masks [N_i]: the sampled positives and the sampled negatives (torchvision
    returns uint8 masks), with the counts of ``balanced_sample``.
    """

    def __init__(self, batch_size_per_image: int, positive_fraction: float, generator=None):
        if batch_size_per_image < 0 or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"BalancedPositiveNegativeSampler: need batch_size_per_image >= 0 and "
                             f"positive_fraction in [0, 1], got {batch_size_per_image} and "
                             f"{positive_fraction}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)
        self.generator = generator

    def __repr__(self) -> str:
        return (f"BalancedPositiveNegativeSampler("
                f"batch_size_per_image={self.batch_size_per_image}, "
                f"positive_fraction={self.positive_fraction})")

    def __call__(self, matched_idxs):
        rng = self.generator if self.generator is not None else random.generator()
        pos_masks, neg_masks = [], []
        for labels in matched_idxs:
            labels = as_array(labels).reshape(-1)
            positive, negative = balanced_sample(
                np.flatnonzero(labels >= 1), np.flatnonzero(labels == 0),
                self.batch_size_per_image, self.positive_fraction, rng)
            pos_mask = np.zeros(labels.shape, dtype=bool)
            neg_mask = np.zeros(labels.shape, dtype=bool)
            pos_mask[positive] = True
            neg_mask[negative] = True
            pos_masks.append(pos_mask)
            neg_masks.append(neg_mask)
        return pos_masks, neg_masks


class RoISample(NamedTuple):
    """What ``RoISampler`` returns for one image (R sampled RoIs, positives first).

    proposals: [R, 4] the sampled boxes; labels: int64 [R], the class of the matched
    ground truth for positives and 0 (background) for negatives; matched_gt_boxes:
    [R, 4] the matched ground-truth box (for negatives: their best-overlapping one,
    unused by the loss); matched_idxs: int64 [R] its index (-1 when the image has none).
    """

    proposals: np.ndarray
    labels: np.ndarray
    matched_gt_boxes: np.ndarray
    matched_idxs: np.ndarray


class RoISampler:
    """Fast R-CNN's mini-batch sampling of RoIs for one image.

    Args:
        batch_size_per_image: R / N, RoIs per image (the paper: 128 RoIs from 2 images = 64).
        positive_fraction: share of foreground RoIs (0.25).
        fg_iou_threshold: foreground when the best IoU >= this (0.5).
        bg_iou_range: (lo, hi), background when lo <= best IoU < hi ((0.1, 0.5));
            lo = 0 gives torchvision's rule (every non-foreground RoI can be background).
        add_gt_as_proposals: append the ground-truth boxes to the proposals first
            (torchvision does, so early training always sees positives).
        generator: optional numpy Generator (default: minidl.random.generator()).

    ``sampler(proposals [P, 4], gt_boxes [G, 4], gt_labels int [G] with classes >= 1)``
    returns an ``RoISample``. Proposals whose best IoU is below lo are never sampled.
    """

    def __init__(self, batch_size_per_image: int = 64, positive_fraction: float = 0.25,
                 fg_iou_threshold: float = 0.5, bg_iou_range=(0.1, 0.5),
                 add_gt_as_proposals: bool = True, generator=None):
        lo, hi = bg_iou_range
        if not 0.0 <= lo <= hi <= fg_iou_threshold:
            raise ValueError(f"RoISampler: need 0 <= bg lo <= bg hi <= fg_iou_threshold, got "
                             f"bg_iou_range={bg_iou_range}, fg_iou_threshold={fg_iou_threshold}")
        if batch_size_per_image < 0 or not 0.0 <= positive_fraction <= 1.0:
            raise ValueError(f"RoISampler: need batch_size_per_image >= 0 and positive_fraction "
                             f"in [0, 1], got {batch_size_per_image} and {positive_fraction}")
        self.batch_size_per_image = int(batch_size_per_image)
        self.positive_fraction = float(positive_fraction)
        self.fg_iou_threshold = float(fg_iou_threshold)
        self.bg_iou_range = (float(lo), float(hi))
        self.add_gt_as_proposals = bool(add_gt_as_proposals)
        self.generator = generator

    def __repr__(self) -> str:
        return (f"RoISampler(batch_size_per_image={self.batch_size_per_image}, "
                f"positive_fraction={self.positive_fraction}, "
                f"fg_iou_threshold={self.fg_iou_threshold}, bg_iou_range={self.bg_iou_range})")

    def __call__(self, proposals, gt_boxes, gt_labels) -> RoISample:
        proposals = as_array(proposals).reshape(-1, 4)
        gt_boxes = as_array(gt_boxes).reshape(-1, 4).astype(proposals.dtype)
        gt_labels = as_array(gt_labels).reshape(-1).astype(np.int64)
        check_boxes(proposals, "RoISampler", "proposals")
        check_boxes(gt_boxes, "RoISampler", "gt_boxes")
        if gt_labels.shape[0] != gt_boxes.shape[0]:
            raise ValueError(f"RoISampler: {gt_boxes.shape[0]} gt_boxes but {gt_labels.shape[0]} "
                             "gt_labels")
        if self.add_gt_as_proposals:
            proposals = np.concatenate([proposals, gt_boxes], axis=0)
        if gt_boxes.shape[0] == 0:
            best_iou = np.zeros(proposals.shape[0], dtype=proposals.dtype)
            best_gt = np.full(proposals.shape[0], -1, dtype=np.int64)
        else:
            iou = box_iou(gt_boxes, proposals)  # [G, P]
            best_gt = iou.argmax(axis=0).astype(np.int64)
            best_iou = iou[best_gt, np.arange(proposals.shape[0])]
        lo, hi = self.bg_iou_range
        foreground = np.flatnonzero(best_iou >= self.fg_iou_threshold)
        background = np.flatnonzero((best_iou >= lo) & (best_iou < hi))
        rng = self.generator if self.generator is not None else random.generator()
        fg, bg = balanced_sample(foreground, background, self.batch_size_per_image,
                                 self.positive_fraction, rng)
        chosen = np.concatenate([fg, bg])
        num_fg = fg.size
        labels = np.zeros(chosen.size, dtype=np.int64)
        matched = best_gt[chosen]
        labels[:num_fg] = gt_labels[matched[:num_fg]]
        matched_boxes = (gt_boxes[np.maximum(matched, 0)] if gt_boxes.shape[0]
                         else np.zeros((chosen.size, 4), dtype=proposals.dtype))
        return RoISample(proposals[chosen], labels, matched_boxes, matched)
