"""SSD: default boxes on several maps, hard negative mining by hand, training, eval, bad input."""

import numpy as np
import pytest

import minidl
from minidl.vision.models import Backbone
from minidl.vision.models.ssd import SSD, hard_negative_mask
from tests.vision.models.test_dense import (
    SIZE,
    assert_bad_targets_are_named,
    assert_detection_format,
    assert_empty_image_trains_and_evaluates,
    assert_training_lowers_the_loss,
    shapes_batch,
)


def ssd(**options):
    minidl.manual_seed(0)
    return SSD(Backbone(widths=(8, 16, 16), depth=1), 5, image_size=SIZE,
               extra_widths=(16, 16), **options)


def test_default_boxes_on_every_map():
    model = ssd()
    # 32 px, stride 8: maps 4 x 4, 2 x 2, 1 x 1 with 4, 6 and 4 boxes per cell
    assert model.map_sizes == [4, 2, 1]
    assert model.default_boxes.shape == (16 * 4 + 4 * 6 + 1 * 4, 4)
    images, _ = shapes_batch(2)
    logits, offsets = model.head(model.feature_maps(images))
    assert logits.shape == (2, 92, 5) and offsets.shape == (2, 92, 4)
    # the first default box: centre of cell (0, 0) of the 4 x 4 map, scale s_min = 0.2
    np.testing.assert_allclose(model.default_boxes[0], [4 - 3.2, 4 - 3.2, 4 + 3.2, 4 + 3.2],
                               atol=1e-4)
    # the last map's first box: the whole-image centre, scale s_max = 0.9 of 32 px
    last = model.default_boxes[-4]
    np.testing.assert_allclose(last, [16 - 14.4, 16 - 14.4, 16 + 14.4, 16 + 14.4], atol=1e-4)


def test_hard_negatives_three_per_positive_with_the_highest_loss():
    loss = np.array([[0.1, 0.9, 0.5, 0.8, 0.2, 0.7, 0.3, 0.95, 0.6],
                     [0.4, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9]])
    labels = np.array([[2, 0, 0, 0, 0, 0, 0, -1, 0],     # 1 positive, one ignored box
                       [0, 0, 0, 0, 0, 0, 0, 0, 0]])     # no positive
    keep = hard_negative_mask(loss, labels, neg_pos_ratio=3)
    # image 0: the positive and the 3 hardest negatives 0.9, 0.8, 0.7 (not the ignored 0.95)
    np.testing.assert_array_equal(np.flatnonzero(keep[0]), [0, 1, 3, 5])
    # image 1: no positive, still 3 hard negatives (its false alarms are punished)
    np.testing.assert_array_equal(np.flatnonzero(keep[1]), [6, 7, 8])
    keep = hard_negative_mask(loss, labels, neg_pos_ratio=100)
    assert keep[0].sum() == 8 and not keep[0, 7], "capped by the negatives there are"


def test_the_loss_is_cross_entropy_over_positives_and_hard_negatives():
    model = ssd()
    images, targets = shapes_batch(2)
    logits, offsets = model.head(model.feature_maps(images))
    labels, regression = model.targets(targets)
    losses = model.loss(logits, offsets, targets)
    # the same sums written out with NumPy
    x = logits.data.astype(np.float64)
    log_p = x - x.max(-1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
    ce = -np.take_along_axis(log_p, np.maximum(labels, 0)[..., None], -1)[..., 0]
    chosen = hard_negative_mask(ce, labels)
    positive = labels > 0
    assert chosen.sum() == positive.sum() + 3 * positive.sum(axis=1).clip(1).sum()
    assert positive.sum() >= sum(len(t["boxes"]) for t in targets), "each object has a box"
    np.testing.assert_allclose(losses["classification"].item(), ce[chosen].sum() / positive.sum(),
                               rtol=1e-5)
    diff = np.abs(offsets.data[positive] - regression[positive])
    smooth = np.where(diff < 1, 0.5 * diff ** 2, diff - 0.5).sum() / positive.sum()
    np.testing.assert_allclose(losses["bbox_regression"].item(), smooth, rtol=1e-5)


def test_training_eval_empty_images_and_bad_input():
    model = ssd()
    images, targets = shapes_batch(4)
    assert set(model.train()(images, targets)) == {"bbox_regression", "classification"}
    assert_training_lowers_the_loss(model, images, targets)
    model.eval()
    assert_detection_format(model(images), 4, 5)
    assert_empty_image_trains_and_evaluates(ssd(), 5)
    assert_bad_targets_are_named(ssd(), "SSD")
    with pytest.raises(ValueError, match="SSD: built for 32 x 32 images"):
        ssd().eval()(shapes_batch(1, size=64)[0])
