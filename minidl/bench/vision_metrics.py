"""Benchmarks of the evaluation metrics and the synthetic detection data.

1. COCO evaluation (``coco_evaluate``, bbox) of 1,000 images x 50 detections,
   4 classes, about 4 objects per image: 10 IoU thresholds x 4 area ranges x
   3 detection budgets. Goal: <= 5 s. (pycocotools, in Python with a C IoU,
   takes several seconds on such a set.)
2. The same with masks (``iou_type="segm"``, 64 x 64 images).
3. PASCAL VOC evaluation of the same detections.
4. Generating 1,000 ``ShapesDataset`` images of 64 x 64.
"""

from __future__ import annotations

import numpy as np

from minidl.bench._timing import best_time, row


def detection_set(num_images: int = 1000, per_image: int = 50, num_classes: int = 4,
                  seed: int = 0):
    """Ground truth from ``ShapesDataset`` and ``per_image`` detections per image: noisy
    copies of the objects (some with the wrong class) plus random boxes, random scores."""
    from minidl.data.shapes import ShapesDataset

    data = ShapesDataset(num_images, 64, max_objects=6, seed=seed)
    rng = np.random.default_rng(seed)
    targets, predictions = [], []
    for i in range(num_images):
        _, t = data[i]
        g = len(t["boxes"])
        src = rng.integers(0, max(g, 1), per_image)
        jitter = rng.normal(0, 3, (per_image, 4))
        boxes = t["boxes"][src] + jitter if g else rng.uniform(0, 64, (per_image, 4))
        random = rng.uniform(size=per_image) < 0.5
        xy = rng.uniform(0, 50, (per_image, 2))
        boxes = np.where(random[:, None], np.concatenate([xy, xy + 14], 1), boxes)
        boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                                np.maximum(boxes[:, :2], boxes[:, 2:]) + 0.5], 1)
        labels = t["labels"][src] if g else rng.integers(1, num_classes + 1, per_image)
        labels = np.where(rng.uniform(size=per_image) < 0.2,
                          rng.integers(1, num_classes + 1, per_image), labels)
        lo, hi = np.floor(boxes[:, :2]), np.ceil(boxes[:, 2:])  # the box, rasterized
        pixel = np.arange(64)
        masks = ((pixel[None, None, :] >= lo[:, 0, None, None])
                 & (pixel[None, None, :] < hi[:, 0, None, None])
                 & (pixel[None, :, None] >= lo[:, 1, None, None])
                 & (pixel[None, :, None] < hi[:, 1, None, None]))
        targets.append(t)
        predictions.append({"boxes": boxes.astype(np.float32), "labels": labels,
                            "scores": rng.uniform(0, 1, per_image), "masks": masks})
    return predictions, targets


def run(quick: bool = False) -> None:
    from minidl.data.shapes import ShapesDataset
    from minidl.vision.metrics import coco_evaluate, voc_evaluate

    n = 100 if quick else 1000
    repeat = 1 if quick else 3
    predictions, targets = detection_set(n)
    print("vision metrics")
    row("", "measured", "goal")
    seconds = best_time(lambda: coco_evaluate(predictions, targets, num_classes=4),
                        repeat=repeat)
    row(f"COCO eval (bbox), {n} images x 50 detections", f"{seconds:.2f} s",
        "<= 5 s" if n == 1000 else "")
    seconds = best_time(lambda: coco_evaluate(predictions, targets, iou_type="segm",
                                              num_classes=4), repeat=repeat, warmup=0)
    row(f"COCO eval (segm, 64x64 masks), {n} images", f"{seconds:.2f} s", "")
    seconds = best_time(lambda: voc_evaluate(predictions, targets, num_classes=4),
                        repeat=repeat)
    row(f"VOC eval, {n} images x 50 detections", f"{seconds:.2f} s", "")
    seconds = best_time(lambda: ShapesDataset(n, 64, seed=1), repeat=repeat, warmup=0)
    row(f"ShapesDataset, {n} images of 64x64", f"{seconds:.2f} s", "a couple of s")
