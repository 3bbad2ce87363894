"""Recipes: one function per detector that builds it and trains it the way its lesson does.

    trained = faster_rcnn_recipe(train_set, epochs=8, seed=0)
    score = trained.evaluate(test_set)          # a DetectorScore (VOC07, COCO AP, images/s)
    print(score.line())

Lessons 07-09 train their detectors with these, and lesson 11's speed / accuracy
table calls every recipe on one data set. A recipe is a plain function: it seeds
minidl, builds the model from ``small_backbone`` and the model's own defaults,
trains it with ``train_detector`` (SGD with momentum, a linear warmup, then a
cosine decay of the learning rate to 0) and returns a ``TrainedDetector``. Keyword
arguments it does not use itself go to the model's constructor (e.g.
``mask_pool="pool"``), so an ablation changes one argument and keeps the rest.

To add a detector: write ``<name>_recipe(train_set, epochs, seed, ...)`` that builds
the model and returns ``train_recipe(name, model, train_set, ...)``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import minidl
from minidl.data.loader import DataLoader
from minidl.data.shapes import detection_collate
from minidl.optim.adam import AdamW
from minidl.optim.lr_scheduler import CosineAnnealingLR, WarmupLR
from minidl.vision.models.backbone import Backbone
from minidl.vision.models.proposals import WithProposals, proposals_input
from minidl.vision.models.rcnn import FasterRCNN, FastRCNN, KeypointRCNN, MaskRCNN
from minidl.vision.models.train import DetectorScore, evaluate_detector, train_detector


def _same(dataset):
    return dataset


@dataclass
class TrainedDetector:
    """A trained detector and what is needed to run it on new images.

    ``prepare(dataset)`` turns a data set into what the model reads (Fast R-CNN: the
    images with their given proposals); ``inputs(targets)`` gives the model's extra
    keyword arguments (Fast R-CNN: the proposals); ``history`` is ``train_detector``'s.
    """

    name: str
    model: object
    num_classes: int                          # K object classes (labels 1..K)
    history: dict
    train_seconds: float
    inputs: object = None
    prepare: object = field(default=_same, repr=False)

    def loader(self, dataset, batch_size: int = 8) -> DataLoader:
        return DataLoader(self.prepare(dataset), batch_size=batch_size,
                          collate_fn=detection_collate)

    def evaluate(self, dataset, batch_size: int = 8) -> DetectorScore:
        """VOC07 mAP, COCO AP and images per second on ``dataset``."""
        return evaluate_detector(self.model, self.loader(dataset, batch_size), self.num_classes,
                                 self.name, self.inputs)


def small_backbone(widths=(16, 32, 64), norm: str = "batch") -> Backbone:
    """The lessons' backbone: three conv-norm-ReLU stages of two convs, stride 8
    (a 64 x 64 image gives an 8 x 8 map of 64 channels)."""
    return Backbone(widths=widths, depth=2, norm=norm)


def train_recipe(name: str, model, train_set, num_classes: int, epochs: int, seed: int,
                 batch_size: int = 8, lr: float = 1e-3, warmup_steps: int = 50,
                 inputs=None, prepare=_same) -> TrainedDetector:
    """Train ``model`` on ``train_set`` (shuffled from ``seed``) with SGD (momentum 0.9,
    weight decay 1e-4), ``warmup_steps`` of linear warmup from lr / 10, then a cosine
    decay to 0 over all the steps. Returns a ``TrainedDetector``."""
    loader = DataLoader(prepare(train_set), batch_size=batch_size, shuffle=True,
                        collate_fn=detection_collate, generator=seed)
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = max(1, epochs * len(loader))
    scheduler = WarmupLR(optimizer, min(warmup_steps, steps - 1), start_factor=0.1,
                         after=CosineAnnealingLR(optimizer, T_max=steps))
    start = time.perf_counter()
    history = train_detector(model, loader, optimizer, epochs, scheduler, clip_norm=10.0,
                             desc=name, inputs=inputs)
    return TrainedDetector(name, model, num_classes, history, time.perf_counter() - start,
                           inputs, prepare)


def _seeded(seed: int) -> None:
    minidl.manual_seed(seed)


def fast_rcnn_recipe(train_set, epochs: int = 8, seed: int = 0, batch_size: int = 8,
                     lr: float = 1e-3, proposal_seed: int = 0, **options) -> TrainedDetector:
    """Fast R-CNN on proposals given by ``WithProposals`` (the selective-search stand-in,
    made from ``proposal_seed``); ``options`` go to ``FastRCNN`` (e.g. ``sampler=``)."""
    _seeded(seed)
    model = FastRCNN(small_backbone(), train_set.num_classes + 1, **options)

    def prepare(dataset):
        return WithProposals(dataset, seed=proposal_seed)

    return train_recipe("Fast R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr, inputs=proposals_input, prepare=prepare)


def faster_rcnn_recipe(train_set, epochs: int = 8, seed: int = 0, batch_size: int = 8,
                       lr: float = 1e-3, widths=(16, 32, 64), **options) -> TrainedDetector:
    """Faster R-CNN (RPN + box head trained together); ``options`` go to ``FasterRCNN``."""
    _seeded(seed)
    model = FasterRCNN(small_backbone(widths), train_set.num_classes + 1, **options)
    return train_recipe("Faster R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)


def mask_rcnn_recipe(train_set, epochs: int = 8, seed: int = 0, batch_size: int = 8,
                     lr: float = 1e-3, **options) -> TrainedDetector:
    """Mask R-CNN; ``options`` go to ``MaskRCNN`` (``mask_pool``, ``mask_loss``, ``mask_head``)."""
    _seeded(seed)
    model = MaskRCNN(small_backbone(), train_set.num_classes + 1, **options)
    return train_recipe("Mask R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)


def keypoint_rcnn_recipe(train_set, epochs: int = 8, seed: int = 0, batch_size: int = 8,
                         lr: float = 1e-3, **options) -> TrainedDetector:
    """Keypoint R-CNN on the stick figures (one class, 14 keypoints); ``options`` go to
    ``KeypointRCNN``."""
    _seeded(seed)
    num_keypoints = len(train_set.keypoint_names)
    model = KeypointRCNN(small_backbone(), train_set.num_classes + 1, num_keypoints, **options)
    return train_recipe("Keypoint R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
