"""CenterNet: centre heatmaps and the penalty-reduced focal loss by hand, peaks, decoding,
training, eval, bad input."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.vision.models import Backbone
from minidl.vision.models.centernet import (
    CenterNet,
    centre_heatmaps,
    local_peaks,
    penalty_reduced_focal_loss,
)
from tests.vision.models.test_dense import (
    assert_bad_targets_are_named,
    assert_detection_format,
    assert_empty_image_trains_and_evaluates,
    assert_training_lowers_the_loss,
    shapes_batch,
)


def centernet(**options):
    minidl.manual_seed(0)
    return CenterNet(Backbone(widths=(8, 16, 16), depth=1), 5, head_width=16, **options)


def test_centre_heatmap_by_hand():
    targets = [{"boxes": np.array([[8.0, 4.0, 20.0, 28.0]]), "labels": np.array([3])}]
    heat, (n, k, row, col), size, offset = centre_heatmaps(targets, 4, (8, 8), stride=4)
    # centre (14, 16) / 4 = (3.5, 4.0): pixel (row 4, col 3), offset (0.5, 0); size (3, 6)
    assert (int(n[0]), int(k[0]), int(row[0]), int(col[0])) == (0, 2, 4, 3)
    np.testing.assert_allclose(size, [[3, 6]])
    np.testing.assert_allclose(offset, [[0.5, 0.0]])
    assert heat[0, 2, 4, 3] == 1.0 and heat[0, [0, 1, 3]].max() == 0
    # sigma = size / 6 = (0.5, 1): one pixel right is exp(-1 / (2 0.25)), one down exp(-1 / 2)
    assert heat[0, 2, 4, 4] == pytest.approx(np.exp(-2.0))
    assert heat[0, 2, 5, 3] == pytest.approx(np.exp(-0.5))


def test_penalty_reduced_focal_loss_by_hand():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 2, 3, 3))
    heat = np.zeros((1, 2, 3, 3))
    heat[0, 1, 1, 1] = 1.0
    heat[0, 1, 1, 2] = 0.5
    p = 1 / (1 + np.exp(-logits))
    want = -(1 - p[0, 1, 1, 1]) ** 2 * np.log(p[0, 1, 1, 1])
    others = heat != 1
    want -= ((1 - heat) ** 4 * p ** 2 * np.log(1 - p))[others].sum()
    got = penalty_reduced_focal_loss(Tensor(logits), heat, num_objects=1)
    assert got.item() == pytest.approx(want, rel=1e-6)


def test_local_peaks():
    heat = np.array([[0.1, 0.2, 0.1, 0.0], [0.2, 0.9, 0.3, 0.0], [0.1, 0.3, 0.2, 0.8]])
    np.testing.assert_array_equal(np.argwhere(local_peaks(heat)), [[1, 1], [2, 3]])


def test_decoding_a_peak_into_a_box():
    model = centernet()
    heat = np.full((1, 4, 8, 8), -10.0, np.float32)
    heat[0, 1, 4, 3] = 5.0
    size = np.zeros((1, 2, 8, 8), np.float32)
    size[0, :, 4, 3] = [3, 6]
    offset = np.zeros((1, 2, 8, 8), np.float32)
    offset[0, :, 4, 3] = [0.5, 0.0]
    out = model.postprocess(heat, size, offset, (32, 32))[0]
    np.testing.assert_allclose(out["boxes"][0], [8, 4, 20, 28], atol=1e-5)
    assert out["labels"][0] == 2 and out["scores"][0] == pytest.approx(1 / (1 + np.exp(-5)))


def test_training_eval_empty_images_and_bad_input():
    model = centernet()
    images, targets = shapes_batch(4)
    heatmap, size, offset = model.predict(images)
    assert heatmap.shape == (4, 4, 8, 8) and size.shape == offset.shape == (4, 2, 8, 8)
    assert abs(1 / (1 + np.exp(-heatmap.data)).mean() - 0.1) < 0.02, "prior bias 0.1"
    assert set(model.train()(images, targets)) == {"loss_heatmap", "loss_size", "loss_offset"}
    assert_training_lowers_the_loss(model, images, targets)
    model.eval()
    assert_detection_format(model(images), 4, 5)
    assert_empty_image_trains_and_evaluates(centernet(), 5)
    assert_bad_targets_are_named(centernet(), "CenterNet")
