"""minidl.vision.models: the models the vision lessons assemble from the toolkit.

- ``backbone``: ``Backbone`` (stages of conv-norm-ReLU, each halving the resolution),
  ``FPN`` (the feature pyramid), ``conv_norm_relu``, ``norm_layer``.
- ``train``: ``train_detector`` / ``detect`` / ``evaluate_detector``, one loop and one
  score (VOC07 mAP, COCO AP, images per second) for every detector.

Detectors and segmentation networks are added here by the lessons that build them.
"""

# ruff: noqa: F401
from minidl.vision.models.backbone import FPN, Backbone, conv_norm_relu, norm_layer
from minidl.vision.models.train import DetectorScore, detect, evaluate_detector, train_detector
