"""Region proposals given from outside, as Fast R-CNN had them, and how to measure them.

R-CNN and Fast R-CNN did not find objects themselves: about 2,000 class-agnostic
*proposals* per image came from selective search (Uijlings et al., IJCV 2013), a
bottom-up grouping of superpixels, and the detector only classified and refined
them. Lesson 07 needs such proposals for the synthetic images. ``jittered_proposals``
is a **stand-in that looks at the ground truth**: copies of every object's box
moved by random amounts (from nearly exact to barely overlapping), plus random
boxes anywhere in the image. It makes proposals with selective search's two
properties that matter to the detector -- most objects have a few good proposals,
and most proposals are background -- but it is no proposal *method*: on a new image
it needs the answer. Lesson 08 replaces it with a learned one (the RPN) and
compares their recall (``proposal_recall``).
"""

from __future__ import annotations

import numpy as np

from minidl.data.dataset import Dataset
from minidl.vision.boxes import box_iou


def jittered_proposals(boxes, image_size, rng: np.random.Generator, per_object: int = 8,
                       jitter=(0.05, 0.35), random_boxes: int = 150,
                       size_range=(4.0, 40.0)) -> np.ndarray:
    """Class-agnostic proposals for one image (a stand-in for selective search).

    For each object box of width w and height h, ``per_object`` copies with each side
    moved by a normal amount of standard deviation s w (x sides) or s h (y sides),
    s drawn for each copy uniformly in ``jitter``; then ``random_boxes`` boxes with
    sides uniform in ``size_range`` pixels, placed uniformly. All clipped to the image
    and at least 2 pixels wide and high.

    boxes: [G, 4] xyxy; image_size: (H, W) -> float32 [G * per_object + random_boxes, 4],
    in random order (the proposals do not say which are good).
    """
    height, width = image_size
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    source = np.repeat(boxes, per_object, axis=0)
    sizes = np.tile(source[:, 2:] - source[:, :2], 2)  # (w, h, w, h) for (x1, y1, x2, y2)
    spread = rng.uniform(jitter[0], jitter[1], (len(source), 1))
    moved = source + rng.standard_normal(source.shape) * spread * sizes
    sides = rng.uniform(size_range[0], size_range[1], (random_boxes, 2))
    corner = rng.uniform(0, 1, (random_boxes, 2)) * (np.array([width, height]) - sides)
    random = np.concatenate([corner, corner + sides], axis=1)
    proposals = np.concatenate([moved, random])
    low, high = np.minimum(proposals[:, :2], proposals[:, 2:]), np.maximum(proposals[:, :2],
                                                                           proposals[:, 2:])
    low = np.clip(low, 0, [width - 2, height - 2])
    high = np.clip(np.maximum(high, low + 2), 0, [width, height])
    proposals = np.concatenate([low, high], axis=1)
    return proposals[rng.permutation(len(proposals))].astype(np.float32)


class WithProposals(Dataset):
    """A detection data set whose targets also carry fixed ``"proposals"`` [P, 4] per image,
    made once by ``jittered_proposals`` from ``seed`` (as Fast R-CNN read precomputed
    selective-search boxes from disk). Keyword arguments go to ``jittered_proposals``."""

    def __init__(self, dataset, seed: int = 0, **options):
        self.dataset = dataset
        self.proposals = []
        for index in range(len(dataset)):
            image, target = dataset[index]
            rng = np.random.default_rng([seed, index])
            self.proposals.append(jittered_proposals(target["boxes"], image.shape[-2:], rng,
                                                     **options))

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index):
        image, target = self.dataset[index]
        return image, dict(target, proposals=self.proposals[index])


def proposals_input(targets) -> dict:
    """The model input Fast R-CNN needs beside the images: ``{"proposals": [P_i x 4 arrays]}``
    (the ``inputs`` hook of ``train_detector`` / ``evaluate_detector``)."""
    return {"proposals": [t["proposals"] for t in targets]}


def proposal_recall(proposals: list, targets: list, iou_threshold: float = 0.5) -> float:
    """Share of the ground-truth boxes that some proposal of their image covers with
    IoU >= iou_threshold (the recall of Hosang et al., "What makes for effective detection
    proposals?", PAMI 2016). proposals: a list of [P_i, 4]; targets: dicts with "boxes"."""
    found = total = 0
    for boxes, target in zip(proposals, targets):
        gt = np.asarray(target["boxes"], dtype=np.float32).reshape(-1, 4)
        total += len(gt)
        if len(gt) and len(boxes):
            found += int((box_iou(gt, np.asarray(boxes, np.float32)).max(axis=1)
                          >= iou_threshold).sum())
    return found / total if total else float("nan")
