"""Classification + localization: what is in the image, and where (one object per image).

One backbone, two heads (Sermanet et al. 2014, "OverFeat"; Simonyan & Zisserman
2015, "Very Deep Convolutional Networks", section on localization):

    f     = backbone(image)                      [N, C, h, w]
    class = Linear(mean of f over h, w)          [N, K]   class scores
    box   = MLP(f flattened)                     [N, 4]   (cx, cy, w, h) / image side

The class head averages over positions; the box head reads the whole map,
flattened, so that it knows where each feature is (as OverFeat's and VGG's fully
connected layers). On small images a pooled box head can do nearly as well: every
cell then sees the zero-padded border, which tells it where it is (Islam et al.,
"How Much Position Information Do Convolutional Neural Networks Encode?", ICLR
2020; lesson 04, exercise 1).

The box is *regressed*: four real numbers, trained with an L2 (or smooth L1)
loss against the true box in normalized coordinates, added to the
classification loss with a weight lambda:

    L = cross_entropy(class, y) + lambda * box_loss(box, b)

It predicts exactly one box per image: fine when there is one object, wrong as
soon as there are several (lesson 04, section 5; detectors, lessons 06-11).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.mode import no_grad
from minidl.autograd.tensor import Tensor
from minidl.data.dataset import TensorDataset
from minidl.nn.activation import ReLU
from minidl.nn.containers import Sequential
from minidl.nn.linear import Flatten, Linear
from minidl.nn.module import Module
from minidl.ops.loss import cross_entropy, mse_loss, smooth_l1_loss
from minidl.vision.boxes import box_convert, box_iou

BOX_LOSSES = ("l2", "smooth_l1")


class Localizer(Module):
    """A backbone with a class head (pooled features) and a box head (flattened features).

    Args:
        backbone: a Module mapping [N, 3, H, W] to [N, C, h, w] with an ``out_channels``
            attribute (``Backbone``); h = w = image_size / its total stride.
        num_classes: K (no background class: every image holds one object).
        feature_size: h (= w) of the backbone's output map.
        hidden: width of the box head's hidden layer.
        boxes: how many boxes the box head predicts (1; more only to show that a
            fixed number of outputs cannot handle a varying number of objects).

    Shapes: forward(x [N, 3, H, W]) -> (class logits [N, K], boxes [N, 4]), or boxes
    [N, boxes, 4] when ``boxes > 1``; boxes as (cx, cy, w, h) / image side.
    """

    def __init__(self, backbone: Module, num_classes: int, feature_size: int, hidden: int = 128,
                 boxes: int = 1):
        super().__init__()
        channels = backbone.out_channels
        self.backbone, self.boxes = backbone, boxes
        self.class_head = Linear(channels, num_classes)
        flat = channels * feature_size * feature_size
        self.box_head = Sequential(Flatten(), Linear(flat, hidden), ReLU(),
                                   Linear(hidden, 4 * boxes))

    def forward(self, x):
        features = self.backbone(x)
        logits = self.class_head(features.mean(dim=(2, 3)))
        boxes = self.box_head(features)
        return logits, (boxes if self.boxes == 1 else boxes.reshape(len(x), self.boxes, 4))


def box_targets(boxes, image_size: int) -> np.ndarray:
    """Pixel boxes (x1, y1, x2, y2) [..., 4] -> the regression targets (cx, cy, w, h) / side."""
    return (box_convert(np.asarray(boxes, np.float32), "xyxy", "cxcywh") / image_size) \
        .astype(np.float32)


def boxes_in_pixels(predictions, image_size: int) -> np.ndarray:
    """Predicted (cx, cy, w, h) / side [..., 4] -> pixel boxes xyxy (negative sizes set to 0)."""
    p = np.array(getattr(predictions, "data", predictions), dtype=np.float32)
    p[..., 2:] = np.maximum(p[..., 2:], 0.0)
    return box_convert(p, "cxcywh", "xyxy") * image_size


def localization_arrays(dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Images, labels and boxes of a one-object-per-image synthetic data set.

    ``dataset``: a ``minidl.data.shapes`` data set made with ``max_objects=1`` (e.g.
    ``ShapesDataset(n, min_objects=1, max_objects=1)``). Returns images float32
    [N, 3, H, W] in [0, 1], labels int64 [N] in 0..K-1 (the data set's label minus 1:
    there is no background class here) and boxes float32 [N, 4] as ``box_targets``.
    """
    if dataset.slot_labels.shape[1] != 1 or (dataset.slot_labels[:, 0] < 1).any():
        raise ValueError(f"localization_arrays: every image must hold exactly one object; got "
                         f"{dataset.slot_labels.shape[1]} slots and "
                         f"{int((dataset.slot_labels[:, 0] < 1).sum())} empty images")
    images = dataset.images.astype(np.float32) / 255.0
    return (images, dataset.slot_labels[:, 0] - 1,
            box_targets(dataset.slot_boxes[:, 0], dataset.image_size))


class LocalizationDataset(TensorDataset):
    """Samples ``(image, (label, box))`` from the three arrays of ``localization_arrays``.

    The nested target is what ``localization_loss`` takes, so the DataLoader's batches go
    straight into ``minidl.utils.training.train_epoch``.
    """

    def __init__(self, images, labels, boxes):
        super().__init__(images, labels, boxes)

    def __getitem__(self, index):
        image, label, box = super().__getitem__(index)
        return image, (label, box)


def localization_loss(outputs, targets, box_weight: float = 1.0, box_loss: str = "l2",
                      beta: float = 0.05):
    """cross_entropy(class logits, labels) + box_weight * box_loss(boxes, target boxes).

    outputs: (logits [N, K], boxes [N, 4]); targets: (labels [N], boxes [N, 4]), the
    boxes in normalized (cx, cy, w, h). ``box_loss``: "l2" (mean squared error) or
    "smooth_l1" (quadratic below ``beta``, linear above: large errors pull with a
    constant force instead of a growing one; Girshick 2015, Fast R-CNN).
    """
    if box_loss not in BOX_LOSSES:
        raise ValueError(f"localization_loss: box_loss must be one of {BOX_LOSSES}, "
                         f"got {box_loss!r}")
    logits, boxes = outputs
    labels, target_boxes = targets
    if tuple(boxes.shape) != tuple(target_boxes.shape):
        raise ValueError(f"localization_loss: predicted boxes {tuple(boxes.shape)} and target "
                         f"boxes {tuple(target_boxes.shape)} must have the same shape")
    if box_loss == "l2":
        regression = mse_loss(boxes, target_boxes)
    else:
        regression = smooth_l1_loss(boxes, target_boxes, beta=beta)
    return cross_entropy(logits, labels) + box_weight * regression


def predict_localization(model, images, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Class logits [N, K] and normalized boxes [N, 4] for ndarray images (eval, no graph)."""
    model.eval()
    images = np.asarray(getattr(images, "data", images))
    logits, boxes = [], []
    with no_grad():
        for start in range(0, len(images), batch_size):
            scores, box = model(Tensor(images[start:start + batch_size]))
            logits.append(scores.data)
            boxes.append(box.data)
    return np.concatenate(logits), np.concatenate(boxes)


def evaluate_localizer(model, images, labels, boxes, image_size: int) -> dict:
    """Class accuracy and mean IoU of the predicted box with the true one.

    images [N, 3, H, W]; labels [N]; boxes [N, 4] normalized (cx, cy, w, h), as
    ``box_targets`` makes them. Returns {"accuracy", "mean_iou", "iou" [N], "correct" [N]
    (bool: the class is right), "predicted_labels" [N], "predicted_boxes" [N, 4] in pixels
    (xyxy)}.
    """
    logits, predicted = predict_localization(model, images)
    predicted_xyxy = boxes_in_pixels(predicted, image_size)
    true_xyxy = boxes_in_pixels(boxes, image_size)
    iou = np.diag(box_iou(predicted_xyxy, true_xyxy))  # each prediction with its own box
    predicted_labels = logits.argmax(axis=1)
    correct = predicted_labels == np.asarray(labels)
    return {"accuracy": float(correct.mean()), "mean_iou": float(iou.mean()), "iou": iou,
            "correct": correct, "predicted_labels": predicted_labels,
            "predicted_boxes": predicted_xyxy}
