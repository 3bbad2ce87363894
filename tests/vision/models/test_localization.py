"""The localizer: head shapes, box coordinates both ways, the loss by hand, training lowers it,
scores of known predictions."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from minidl.data import DataLoader
from minidl.data.shapes import ShapesDataset
from minidl.optim import Adam
from minidl.vision.models import (
    Backbone,
    LocalizationDataset,
    Localizer,
    box_targets,
    boxes_in_pixels,
    evaluate_localizer,
    localization_arrays,
    localization_loss,
    predict_localization,
)


def small_localizer(boxes=1, seed=0):
    minidl.manual_seed(seed)
    return Localizer(Backbone(widths=(4, 8), depth=1), num_classes=3, feature_size=4, hidden=16,
                     boxes=boxes)


def images(n=2, size=16, seed=0):
    return np.random.default_rng(seed).random((n, 3, size, size), dtype=np.float32)


def test_heads_shapes():
    logits, boxes = small_localizer()(Tensor(images()))
    assert tuple(logits.shape) == (2, 3) and tuple(boxes.shape) == (2, 4)
    _, boxes = small_localizer(boxes=3)(Tensor(images()))
    assert tuple(boxes.shape) == (2, 3, 4)


def test_class_head_reads_pooled_features_and_box_head_the_whole_map():
    model = small_localizer()
    assert model.class_head.in_features == 8
    assert model.box_head[1].in_features == 8 * 4 * 4


def test_box_coordinates_both_ways():
    pixels = np.array([[4.0, 8.0, 12.0, 16.0], [0.0, 0.0, 32.0, 16.0]])
    targets = box_targets(pixels, image_size=32)
    np.testing.assert_allclose(targets, [[8 / 32, 12 / 32, 8 / 32, 8 / 32],
                                         [16 / 32, 8 / 32, 1.0, 0.5]])
    np.testing.assert_allclose(boxes_in_pixels(targets, 32), pixels, atol=1e-5)
    # a negative predicted size is read as an empty box at the centre, not a flipped one
    np.testing.assert_allclose(boxes_in_pixels(np.array([[0.5, 0.5, -0.1, 0.25]]), 32),
                               [[16, 12, 16, 20]])


def test_localization_arrays_and_batches_follow_the_dataset():
    data = ShapesDataset(6, image_size=16, min_objects=1, max_objects=1, seed=5)
    images, labels, boxes = localization_arrays(data)
    for i in range(6):
        image, target = data[i]
        np.testing.assert_array_equal(images[i], image)
        assert labels[i] == target["labels"][0] - 1
        np.testing.assert_allclose(boxes_in_pixels(boxes[i], 16), target["boxes"][0], atol=1e-5)
    x, (y, b) = next(iter(DataLoader(LocalizationDataset(images, labels, boxes), batch_size=4)))
    assert tuple(x.shape) == (4, 3, 16, 16) and tuple(y.shape) == (4,) and tuple(b.shape) == (4, 4)
    with pytest.raises(ValueError, match="localization_arrays: every image must hold exactly "
                                         "one object; got 3 slots"):
        localization_arrays(ShapesDataset(2, image_size=16, max_objects=3, seed=0))


def log_softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("box_loss", ["l2", "smooth_l1"])
def test_localization_loss_by_hand(box_loss):
    rng = np.random.default_rng(0)
    logits, boxes = rng.normal(size=(5, 3)), rng.uniform(size=(5, 4))
    labels, target = rng.integers(0, 3, 5), rng.uniform(size=(5, 4))
    loss = localization_loss((Tensor(logits), Tensor(boxes)), (Tensor(labels), Tensor(target)),
                             box_weight=7.0, box_loss=box_loss, beta=0.2)
    ce = -log_softmax(logits)[np.arange(5), labels].mean()
    d = np.abs(boxes - target)
    box = (d ** 2).mean() if box_loss == "l2" else np.where(d < 0.2, 0.5 * d ** 2 / 0.2,
                                                            d - 0.1).mean()
    assert loss.item() == pytest.approx(ce + 7.0 * box, rel=1e-5)


def test_localization_loss_bad_input():
    outputs = (Tensor(np.zeros((2, 3))), Tensor(np.zeros((2, 4))))
    with pytest.raises(ValueError, match="localization_loss: box_loss must be one of"):
        localization_loss(outputs, (Tensor([0, 1]), Tensor(np.zeros((2, 4)))), box_loss="l1")
    with pytest.raises(ValueError, match=r"predicted boxes \(2, 4\) and target boxes \(2, 2, 4\)"):
        localization_loss(outputs, (Tensor([0, 1]), Tensor(np.zeros((2, 2, 4)))))


def test_a_few_steps_lower_the_loss_on_a_fixed_batch():
    model = small_localizer()
    data = ShapesDataset(8, image_size=16, max_objects=1, seed=2)
    x = Tensor(data.images.astype(np.float32) / 255)
    labels = Tensor(data.slot_labels[:, 0] % 3)
    boxes = Tensor(box_targets(data.slot_boxes[:, 0], 16))
    optimizer = Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(20):
        optimizer.zero_grad()
        loss = localization_loss(model(x), (labels, boxes), box_weight=10.0)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


class KnownAnswers(nn.Module):
    """Predicts given class scores and boxes, whatever the image."""

    def __init__(self, logits, boxes):
        super().__init__()
        self.logits, self.boxes = logits, boxes

    def forward(self, x):
        return Tensor(self.logits[:len(x)]), Tensor(self.boxes[:len(x)])


def test_evaluate_localizer_on_known_predictions():
    truth = box_targets(np.array([[0.0, 0.0, 8.0, 8.0], [8.0, 8.0, 16.0, 16.0]]), 16)
    # image 0: the right box; image 1: shifted by half its width -> IoU 32 / 96 = 1/3
    predicted = box_targets(np.array([[0.0, 0.0, 8.0, 8.0], [12.0, 8.0, 20.0, 16.0]]), 16)
    logits = np.array([[0.0, 2.0, 0.0], [3.0, 0.0, 0.0]], np.float32)
    model = KnownAnswers(logits, predicted)
    scores = evaluate_localizer(model, images(), np.array([1, 2]), truth, image_size=16)
    assert scores["accuracy"] == 0.5
    np.testing.assert_array_equal(scores["correct"], [True, False])
    np.testing.assert_allclose(scores["iou"], [1.0, 1 / 3], atol=1e-6)
    assert scores["mean_iou"] == pytest.approx(2 / 3)
    np.testing.assert_allclose(scores["predicted_boxes"][1], [12, 8, 20, 16], atol=1e-5)
    got_logits, got_boxes = predict_localization(model, images())
    np.testing.assert_array_equal(got_logits, logits)
    np.testing.assert_array_equal(got_boxes, predicted)
