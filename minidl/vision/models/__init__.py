"""minidl.vision.models: the models the vision lessons assemble from the toolkit.

- ``backbone``: ``Backbone`` (stages of conv-norm-ReLU, each halving the resolution),
  ``FPN`` (the feature pyramid), ``conv_norm_relu``, ``norm_layer``.
- ``localization``: ``Localizer`` (a class head and a box head on one backbone), its loss,
  data and scores (lesson 04).
- ``segmentation``: ``FCN`` (32s / 16s / 8s), ``UNet``, ``convolutionize``, the bilinear
  transposed-conv weight, and the dense training loop and scores (lesson 05).
- ``train``: ``train_detector`` / ``detect`` / ``evaluate_detector``, one loop and one
  score (VOC07 mAP, COCO AP, images per second) for every detector.
- ``rpn``: the region proposal network (Faster R-CNN): ``RPNHead``,
  ``RegionProposalNetwork``, ``anchor_targets``, ``select_proposals``.
- ``roi_heads``: the second stage: ``RoIHeads`` with the box head (``TwoMLPHead``,
  ``FastRCNNPredictor``), mask heads (``MaskHead``, ``MLPMaskHead``) and the
  keypoint head (``KeypointHead``); ``FeatureRoIPool``, ``UniformRoISampler``.
- ``rcnn``: ``FastRCNN``, ``FasterRCNN``, ``MaskRCNN``, ``KeypointRCNN`` in
  torchvision's calling convention.
- ``proposals``: given proposals (``jittered_proposals``, ``WithProposals``) and
  ``proposal_recall``.
- ``pose``: ``StackedHourglass`` and the keypoint metric ``pck``.
- ``recipes``: one function per detector that builds and trains it as its lesson does
  (``fast_rcnn_recipe``, ``faster_rcnn_recipe``, ``mask_rcnn_recipe``,
  ``keypoint_rcnn_recipe``), returning a ``TrainedDetector``.
- ``dense``: what the one-stage detectors share (anchor targets, per-class detections).
- ``yolo``: ``YOLOv1`` (grid), ``YOLOv2`` (k-means priors: ``kmeans_anchors``,
  ``best_prior_iou``); ``ssd``: ``SSD`` (hard negative mining); ``retinanet``:
  ``RetinaNet`` (FPN, focal loss); ``detr``: ``DETR`` (set prediction,
  ``HungarianMatcher``); ``centernet``: ``CenterNet`` (centre heatmaps) -- each with its
  lesson's recipe (``yolo_v1_recipe``, ``yolo_v2_recipe``, ``ssd_recipe``,
  ``retinanet_recipe``, ``detr_recipe``, ``centernet_recipe``).
- ``zoo``: the lessons' shared shapes splits (``shapes_splits``), ``save_detector`` /
  ``load_detector``.

Detectors and segmentation networks are added here by the lessons that build them.
"""

# ruff: noqa: F401, I001  (a plain list, in the order of the docstring)
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
from minidl.vision.models.rpn import RegionProposalNetwork, RPNHead
from minidl.vision.models.roi_heads import (FastRCNNPredictor, FeatureRoIPool, KeypointHead,
                                            MaskHead, MLPMaskHead, RoIHeads, TwoMLPHead,
                                            UniformRoISampler)
from minidl.vision.models.rcnn import (FastRCNN, FasterRCNN, GeneralizedRCNN, KeypointRCNN,
                                       MaskRCNN)
from minidl.vision.models.proposals import WithProposals, proposal_recall
from minidl.vision.models.pose import StackedHourglass, pck
from minidl.vision.models.recipes import (TrainedDetector, fast_rcnn_recipe, faster_rcnn_recipe,
                                          keypoint_rcnn_recipe, mask_rcnn_recipe)
from minidl.vision.models.yolo import (YOLOv1, YOLOv2, best_prior_iou, kmeans_anchors,
                                       yolo_v1_recipe, yolo_v2_recipe)
from minidl.vision.models.ssd import SSD, ssd_recipe
from minidl.vision.models.retinanet import RetinaNet, retinanet_recipe
from minidl.vision.models.detr import DETR, HungarianMatcher, detr_recipe
from minidl.vision.models.centernet import CenterNet, centernet_recipe
from minidl.vision.models.zoo import load_detector, save_detector, shapes_splits
