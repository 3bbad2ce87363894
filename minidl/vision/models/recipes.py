"""Recipes: one function per detector that builds it and trains it the way its lesson does.

    trained = faster_rcnn_recipe(train_set, epochs=5, seed=0)
    score = trained.evaluate(test_set)          # a DetectorScore (VOC07, COCO AP, images/s)
    print(score.line())

Lessons 07-09 train their detectors with these, and lesson 11's speed / accuracy
table calls every recipe on one data set. A recipe is a plain function: it seeds
minidl, builds the model from ``small_backbone`` and the model's own defaults,
trains it with ``train_detector`` (AdamW, a linear warmup, then a cosine decay of
the learning rate to 0) and returns a ``TrainedDetector``. The backbone starts from
random weights (no ImageNet here), for which Adam converges in the few hundred
steps a lesson can afford; the papers fine-tune pretrained networks with SGD. Keyword
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
from minidl.vision.models.roi_heads import KeypointHead, MaskHead
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


WIDTHS = (32, 64)
"""The lessons' backbone stages: stride 4, a 64 x 64 image gives a 16 x 16 map of 64 channels."""


def small_backbone(widths=WIDTHS, norm: str = "batch") -> Backbone:
    """The lessons' backbone: conv-norm-ReLU stages of two convs each (``Backbone``)."""
    return Backbone(widths=widths, depth=2, norm=norm)


def train_recipe(name: str, model, train_set, num_classes: int, epochs: int, seed: int,
                 batch_size: int = 8, lr: float = 3e-3, warmup_steps: int = 50,
                 inputs=None, prepare=_same) -> TrainedDetector:
    """Train ``model`` on ``train_set`` (shuffled from ``seed``) with AdamW (weight decay
    1e-4, gradients clipped at norm 10), ``warmup_steps`` of linear warmup from lr / 10,
    then a cosine decay to 0 over all the steps. Returns a ``TrainedDetector``."""
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


def fast_rcnn_recipe(train_set, epochs: int = 3, seed: int = 0, batch_size: int = 8,
                     lr: float = 3e-3, proposal_seed: int = 0, widths=WIDTHS,
                     **options) -> TrainedDetector:
    """Fast R-CNN (lesson 07) on proposals given by ``WithProposals`` (the selective-search
    stand-in, made from ``proposal_seed``); ``options`` go to ``FastRCNN`` (e.g. ``sampler=``,
    ``roi_pool=``)."""
    minidl.manual_seed(seed)
    model = FastRCNN(small_backbone(widths), train_set.num_classes + 1, **options)

    def prepare(dataset):
        return WithProposals(dataset, seed=proposal_seed)

    return train_recipe("Fast R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr, inputs=proposals_input, prepare=prepare)


def faster_rcnn_recipe(train_set, epochs: int = 5, seed: int = 0, batch_size: int = 8,
                       lr: float = 3e-3, widths=WIDTHS, **options) -> TrainedDetector:
    """Faster R-CNN (lesson 08), RPN and box head trained together; ``options`` go to
    ``FasterRCNN`` (e.g. ``anchor_sizes=``, ``roi_pool=``)."""
    minidl.manual_seed(seed)
    model = FasterRCNN(small_backbone(widths), train_set.num_classes + 1, **options)
    return train_recipe("Faster R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)


def mask_rcnn_recipe(train_set, epochs: int = 4, seed: int = 0, batch_size: int = 8,
                     lr: float = 3e-3, widths=WIDTHS, mask_layers=(32, 32),
                     **options) -> TrainedDetector:
    """Mask R-CNN (lesson 09): masks from 7 x 7 RoIs (a 16 x 16 map holds the objects in
    2 to 7 cells) by an FCN of ``mask_layers``, 14 x 14 per class; ``options`` go to
    ``MaskRCNN`` (``mask_pool``, ``mask_loss``, ``mask_head``, ...)."""
    minidl.manual_seed(seed)
    backbone = small_backbone(widths)
    options.setdefault("mask_head", MaskHead(backbone.out_channels, train_set.num_classes + 1,
                                             mask_layers))
    options.setdefault("mask_pool_size", 7)
    model = MaskRCNN(backbone, train_set.num_classes + 1, **options)
    return train_recipe("Mask R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)


def keypoint_rcnn_recipe(train_set, epochs: int = 4, seed: int = 0, batch_size: int = 8,
                         lr: float = 3e-3, widths=WIDTHS, keypoint_layers=(32, 32, 32, 32),
                         **options) -> TrainedDetector:
    """Keypoint R-CNN (lesson 09) on the stick figures (one class, 14 keypoints): 7 x 7
    RoIs, an FCN of ``keypoint_layers``, 28 x 28 heatmaps; ``options`` go to
    ``KeypointRCNN``."""
    minidl.manual_seed(seed)
    backbone = small_backbone(widths)
    num_keypoints = len(train_set.keypoint_names)
    options.setdefault("keypoint_head", KeypointHead(backbone.out_channels, num_keypoints,
                                                     keypoint_layers))
    options.setdefault("keypoint_pool_size", 7)
    model = KeypointRCNN(backbone, train_set.num_classes + 1, num_keypoints, **options)
    return train_recipe("Keypoint R-CNN", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
