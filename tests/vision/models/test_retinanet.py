"""RetinaNet: pyramid levels and anchors, the prior bias, the focal loss by hand, training, eval."""

import numpy as np
import pytest

import minidl
from minidl.vision.models import Backbone
from minidl.vision.models.retinanet import RetinaNet, retinanet_anchor_sizes
from tests.vision.models.test_dense import (
    assert_bad_targets_are_named,
    assert_detection_format,
    assert_empty_image_trains_and_evaluates,
    assert_training_lowers_the_loss,
    shapes_batch,
)


def retinanet(**options):
    minidl.manual_seed(0)
    return RetinaNet(Backbone(widths=(8, 8, 16, 16), depth=1), 5, fpn_width=16, head_depth=1,
                     **options)


def test_levels_anchors_and_head_shapes():
    model = retinanet()
    images, _ = shapes_batch(2)                       # 32 px: P3 4 x 4, P4 2 x 2, P5 1 x 1
    levels = model.pyramid(images)
    assert [tuple(p.shape) for p in levels] == [(2, 16, 4, 4), (2, 16, 2, 2), (2, 16, 1, 1)]
    logits, offsets = model.predict(images)
    anchors = (16 + 4 + 1) * 9
    assert logits.shape == (2, anchors, 4) and offsets.shape == (2, anchors, 4)
    assert model.anchors.shape == (anchors, 4)
    assert retinanet_anchor_sizes((10,)) == ((10, 13, 16),)   # 10 x 2^0, 2^(1/3), 2^(2/3)


def test_prior_bias_starts_every_anchor_at_probability_pi():
    images, _ = shapes_batch(2)
    for pi in (0.01, 0.5):
        logits, _ = retinanet(prior_probability=pi).predict(images)
        p = 1 / (1 + np.exp(-logits.data))
        assert abs(p.mean() - pi) < 0.01 * pi + 1e-3


def test_the_loss_by_hand():
    model = retinanet(gamma=2.0, alpha=0.25)
    images, targets = shapes_batch(2)
    logits, offsets = model.predict(images)
    labels, regression = model.targets(targets)
    losses = model.loss(logits, offsets, targets)
    x = logits.data.astype(np.float64)
    y = np.zeros_like(x)
    n, a = np.nonzero(labels > 0)
    y[n, a, labels[n, a] - 1] = 1
    p = 1 / (1 + np.exp(-x))
    p_t = np.where(y == 1, p, 1 - p)
    alpha_t = np.where(y == 1, 0.25, 0.75)
    focal = -alpha_t * (1 - p_t) ** 2 * np.log(p_t)
    valid = labels >= 0
    num_positive = (labels > 0).sum()
    assert num_positive > 0 and (labels == -1).any()
    np.testing.assert_allclose(losses["classification"].item(),
                               focal[valid].sum() / num_positive, rtol=1e-4)
    diff = np.abs(offsets.data[labels > 0] - regression[labels > 0])
    beta = 1 / 9
    smooth = np.where(diff < beta, 0.5 * diff ** 2 / beta, diff - 0.5 * beta).sum()
    np.testing.assert_allclose(losses["bbox_regression"].item(), smooth / num_positive,
                               rtol=1e-4)


def test_gamma_zero_is_alpha_balanced_cross_entropy():
    images, targets = shapes_batch(2)
    focal = retinanet(gamma=0.0, alpha=0.75)
    logits, offsets = focal.predict(images)
    labels, _ = focal.targets(targets)
    x = logits.data.astype(np.float64)
    y = np.zeros_like(x)
    n, a = np.nonzero(labels > 0)
    y[n, a, labels[n, a] - 1] = 1
    bce = -(y * np.log(1 / (1 + np.exp(-x))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-x))))
    weighted = np.where(y == 1, 0.75, 0.25) * bce
    got = focal.loss(logits, offsets, targets)["classification"].item()
    np.testing.assert_allclose(got, weighted[labels >= 0].sum() / (labels > 0).sum(), rtol=1e-4)


def test_training_eval_empty_images_and_bad_input():
    model = retinanet()
    images, targets = shapes_batch(4)
    assert set(model.train()(images, targets)) == {"classification", "bbox_regression"}
    assert_training_lowers_the_loss(model, images, targets, steps=20)
    model.eval()
    assert_detection_format(model(images), 4, 5)
    assert_empty_image_trains_and_evaluates(retinanet(), 5)
    assert_bad_targets_are_named(retinanet(), "RetinaNet")
    with pytest.raises(ValueError, match="RetinaNet: num_classes counts the background"):
        RetinaNet(Backbone(widths=(8, 8, 16, 16)), 1)
