"""One training loop and one evaluation for every detector, in torchvision's calling convention.

A detector is a Module with two modes (torchvision's detection models):

    model.train();  losses = model(images, targets)   # a dict {"loss_classifier": Tensor, ...}
    model.eval();   detections = model(images)        # a list of dicts, one per image:
                                                      # boxes [D, 4], labels [D], scores [D]
                                                      # (+ masks, keypoints for those models)

so the same two functions train and score Fast / Faster / Mask R-CNN, YOLO, SSD,
RetinaNet and DETR. The training step is the one every framework hides in its
``fit``: sum the loss terms, clear the gradients, backpropagate, step.

A model that needs more than the images (Fast R-CNN takes its region proposals
from outside) gets them through ``inputs``: a function from a batch's list of
targets to extra keyword arguments of the model, e.g.
``lambda targets: {"proposals": [t["proposals"] for t in targets]}``. Only what
that function returns reaches the model in eval mode, never the targets themselves.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from minidl.autograd.mode import no_grad
from minidl.nn.utils import clip_grad_norm_
from minidl.utils.training import progress
from minidl.vision.metrics import coco_evaluate, voc_evaluate


def _extra_inputs(inputs, targets) -> dict:
    return {} if inputs is None else dict(inputs(targets))


def train_detector(model, loader, optimizer, epochs: int = 1, scheduler=None,
                   clip_norm: float | None = None, desc: str = "train", inputs=None) -> dict:
    """Train ``model`` on ``loader`` (batches of ``(images, targets)``) for ``epochs`` epochs.

    Each step minimizes the sum of the loss terms the model returns. ``scheduler.step()``
    runs after every step (schedules count iterations); ``clip_norm`` clips the global
    gradient norm; ``inputs(targets)`` gives extra keyword arguments of the model (see
    the module docstring). Returns the history: for each loss term and for the total
    ``"loss"``, the list of its values, one per step.
    """
    history = defaultdict(list)
    model.train()
    for epoch in range(epochs):
        for images, targets in progress(loader, desc=f"{desc} {epoch + 1}/{epochs}"):
            losses = model(images, targets, **_extra_inputs(inputs, targets))
            total = sum(losses.values())
            optimizer.zero_grad()
            total.backward()
            if clip_norm is not None:
                clip_grad_norm_(model.parameters(), clip_norm)
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            for name, value in losses.items():
                history[name].append(float(value.item()))
            history["loss"].append(float(total.item()))
    return dict(history)


def detect(model, loader, inputs=None) -> tuple[list, list, float]:
    """Run ``model`` in eval mode over ``loader`` (``inputs``: as ``train_detector``).

    Returns (detections, targets, seconds): one detection dict of ndarrays per image,
    the targets in the same order, and the wall-clock seconds spent in the model.
    """
    model.eval()
    detections, targets, seconds = [], [], 0.0
    with no_grad():
        for images, batch_targets in loader:
            extra = _extra_inputs(inputs, batch_targets)
            start = time.perf_counter()
            outputs = model(images, **extra)
            seconds += time.perf_counter() - start
            detections += [{key: np.asarray(getattr(value, "data", value))
                            for key, value in output.items()} for output in outputs]
            targets += list(batch_targets)
    return detections, targets, seconds


@dataclass
class DetectorScore:
    """What the lectures' speed / accuracy table reports for one detector on one test set."""

    name: str
    voc07_map: float                    # PASCAL VOC 2007 mAP at IoU 0.5 (11-point)
    coco_ap: float                      # COCO AP@[.5:.95]
    coco_ap50: float                    # COCO AP at IoU 0.5 (101-point)
    images_per_second: float            # inference, batch as given by the loader
    detections: list = field(default_factory=list, repr=False)
    targets: list = field(default_factory=list, repr=False)   # in the order of detections

    def line(self) -> str:
        return (f"{self.name}: VOC07 mAP {self.voc07_map:.3f}, COCO AP {self.coco_ap:.3f} "
                f"(AP50 {self.coco_ap50:.3f}), {self.images_per_second:.1f} images/s")


def evaluate_detector(model, loader, num_classes: int, name: str = "detector",
                      inputs=None) -> DetectorScore:
    """Detect on every image of ``loader``; score with VOC07 mAP and COCO AP; time it.

    ``num_classes`` is K, the object classes (labels 1..K), background not counted.
    """
    detections, targets, seconds = detect(model, loader, inputs)
    voc = voc_evaluate(detections, targets, num_classes=num_classes, use_07_metric=True)
    coco = coco_evaluate(detections, targets, num_classes=num_classes)
    return DetectorScore(name, float(voc.mAP), coco.ap(), coco.ap(iou=0.5),
                         len(detections) / max(seconds, 1e-9), detections, targets)
