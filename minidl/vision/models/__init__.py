"""minidl.vision.models: the models the vision lessons assemble from the toolkit.

- ``backbone``: ``Backbone`` (stages of conv-norm-ReLU, each halving the resolution),
  ``FPN`` (the feature pyramid), ``conv_norm_relu``, ``norm_layer``.
- ``localization``: ``Localizer`` (a class head and a box head on one backbone), its loss,
  data and scores (lesson 04).
- ``segmentation``: ``FCN`` (32s / 16s / 8s), ``UNet``, ``convolutionize``, the bilinear
  transposed-conv weight, and the dense training loop and scores (lesson 05).
- ``train``: ``train_detector`` / ``detect`` / ``evaluate_detector``, one loop and one
  score (VOC07 mAP, COCO AP, images per second) for every detector.

Detectors and segmentation networks are added here by the lessons that build them.
"""

# ruff: noqa: F401
from minidl.vision.models.backbone import FPN, Backbone, conv_norm_relu, norm_layer
from minidl.vision.models.localization import (
    LocalizationDataset,
    Localizer,
    box_targets,
    boxes_in_pixels,
    evaluate_localizer,
    localization_arrays,
    localization_loss,
    predict_localization,
)
from minidl.vision.models.segmentation import (
    FCN,
    UNet,
    bilinear_upsampling_weight,
    convolutionize,
    evaluate_segmentation,
    predict_segmentation,
    segmentation_arrays,
    train_segmentation,
)
from minidl.vision.models.train import DetectorScore, detect, evaluate_detector, train_detector
