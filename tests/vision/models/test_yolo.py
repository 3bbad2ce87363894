"""YOLO v1 and v2: output shapes, the grid's decoding by hand, k-means priors, training, eval
format, empty images, bad input."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.vision.models import Backbone
from minidl.vision.models.yolo import (
    YOLOv1,
    YOLOv2,
    best_prior_iou,
    kmeans_anchors,
    shape_iou,
)
from tests.vision.models.test_dense import (
    SIZE,
    assert_bad_targets_are_named,
    assert_detection_format,
    assert_empty_image_trains_and_evaluates,
    assert_training_lowers_the_loss,
    shapes_batch,
)

ANCHORS = np.array([[6, 6], [12, 8], [10, 16]], np.float32)


def backbone():
    return Backbone(widths=(8, 16, 16), depth=1)


def v1(head="conv", **options):
    minidl.manual_seed(0)
    return YOLOv1(backbone(), 5, image_size=SIZE, head=head, hidden=32, **options)


def v2(**options):
    minidl.manual_seed(0)
    return YOLOv2(backbone(), 5, ANCHORS, **options)


# ---- shapes -------------------------------------------------------------------------------------
def test_v1_output_is_s_by_s_by_5b_plus_c():
    images, _ = shapes_batch(2)
    assert v1("fc", grid_size=7).predict(images).shape == (2, 7, 7, 5 * 2 + 4)   # 7 x 7 x 14
    assert v1("conv").predict(images).shape == (2, 4, 4, 14)   # one cell per map position
    assert v1("fc", grid_size=7, num_boxes=3).predict(images).shape == (2, 7, 7, 19)


def test_v2_has_the_lectures_13_by_13_by_125_output():
    minidl.manual_seed(0)
    model = YOLOv2(Backbone(widths=(8, 8, 8), depth=1), 21, np.ones((5, 2)) * 10)
    model.eval()
    raw = model.predict(Tensor(np.zeros((1, 3, 104, 104), np.float32)))
    assert raw.shape == (1, 13, 13, 5, 25)                # 13 x 13 x 5 x (5 + 20)
    assert model.head[1].weight.shape[0] == 125


# ---- decoding by hand ----------------------------------------------------------------------------
def test_v1_class_specific_confidence_and_boxes_by_hand():
    model = v1("fc", grid_size=2, num_boxes=1)
    model.eval()
    pred = np.zeros((1, 2, 2, 5 + 4), np.float32)
    # cell (row 1, col 0): centre at (0.5, 0.25) of the cell, box 0.25 x 0.5 of the image
    pred[0, 1, 0, :5] = [0.5, 0.25, 0.25, 0.5, 0.8]
    pred[0, 1, 0, 5:] = [0.1, 0.0, 0.9, 0.0]              # P(class | object)
    out = model.postprocess(pred)[0]
    assert out["labels"][0] == 3 and out["scores"][0] == pytest.approx(0.8 * 0.9)
    # centre: x = (0 + 0.5) / 2 = 0.25 -> 8 px, y = (1 + 0.25) / 2 = 0.625 -> 20 px (32 px image)
    np.testing.assert_allclose(out["boxes"][0], [8 - 4, 20 - 8, 8 + 4, 20 + 8], atol=1e-5)
    assert out["labels"][1] == 1 and out["scores"][1] == pytest.approx(0.08)
    assert len(out["scores"]) == 2, "every other score is 0 (below the threshold)"


def test_v2_decode_by_hand():
    model = v2()
    raw = np.zeros((1, 4, 4, 3, 9), np.float32)
    raw[0, 2, 1, 1, :4] = [0.0, np.log(3.0), np.log(2.0), 0.0]    # sigmoid: 0.5 and 0.75
    box = model.decode(raw)[0, 2, 1, 1]
    # stride 8: centre ((1 + 0.5) 8, (2 + 0.75) 8) = (12, 22); size (12 * 2, 8) = (24, 8)
    np.testing.assert_allclose(box, [0, 18, 24, 26], atol=1e-5)


def test_v2_assignment_by_hand():
    model = v2()
    targets = [{"boxes": np.array([[4.0, 2.0, 14.0, 18.0]]), "labels": np.array([2])}]
    assigned = model.assign(targets, (4, 4))
    # centre (9, 10) / 8 -> cell (row 1, col 1), offsets (0.125, 0.25); size 10 x 16 is prior 2
    assert [int(i[0]) for i in assigned["index"]] == [0, 1, 1, 2]
    np.testing.assert_allclose(assigned["xy"], [[0.125, 0.25]])
    np.testing.assert_allclose(assigned["wh"], [[0.0, 0.0]], atol=1e-7)
    np.testing.assert_array_equal(assigned["classes"], [1])
    two = [{"boxes": np.array([[4.0, 2.0, 14.0, 18.0], [5.0, 3.0, 15.0, 19.0]]),
            "labels": np.array([2, 3])}]
    assert len(model.assign(two, (4, 4))["classes"]) == 1, "same cell and prior: first one kept"


# ---- priors -------------------------------------------------------------------------------------
def test_shape_iou_and_best_prior_iou_by_hand():
    np.testing.assert_allclose(shape_iou([[2, 4]], [[4, 2], [2, 4], [1, 1]]),
                               [[4 / 12, 1.0, 1 / 8]])
    assert best_prior_iou([[2, 4], [4, 4]], [[2, 4]]) == pytest.approx((1 + 8 / 16) / 2)


def test_kmeans_recovers_well_separated_clusters():
    rng = np.random.default_rng(0)
    sizes = np.concatenate([rng.normal([6, 6], 0.3, (50, 2)), rng.normal([20, 10], 0.5, (50, 2)),
                            rng.normal([10, 30], 0.5, (50, 2))])
    for distance in ("iou", "euclidean"):
        priors = kmeans_anchors(sizes, 3, distance=distance, seed=1)
        np.testing.assert_allclose(priors, [[6, 6], [20, 10], [10, 30]], atol=0.5)
    assert best_prior_iou(sizes, kmeans_anchors(sizes, 3)) > 0.9
    with pytest.raises(ValueError, match="need 1 <= k <= 150 boxes"):
        kmeans_anchors(sizes, 200)
    with pytest.raises(ValueError, match="distance must be 'iou' or 'euclidean'"):
        kmeans_anchors(sizes, 3, distance="l1")


def test_iou_distance_favours_small_boxes_more_than_euclidean():
    # many small boxes, few large: Euclidean k-means spends its centroids on the large ones
    rng = np.random.default_rng(0)
    small = rng.uniform(4, 12, (300, 2))
    large = rng.uniform(30, 60, (30, 2))
    sizes = np.concatenate([small, large])
    iou = best_prior_iou(small, kmeans_anchors(sizes, 3, "iou"))
    euclidean = best_prior_iou(small, kmeans_anchors(sizes, 3, "euclidean"))
    assert iou > euclidean


# ---- training and evaluation ------------------------------------------------------------------
@pytest.mark.parametrize("make", [lambda: v1("conv"), lambda: v1("fc", grid_size=4, dropout=0.0),
                                  v2], ids=["v1-conv", "v1-fc", "v2"])
def test_training_lowers_the_loss_and_eval_format(make):
    model = make()
    images, targets = shapes_batch(4)
    losses = model.train()(images, targets)
    names = {"loss_coord", "loss_obj", "loss_noobj", "loss_class"}
    assert names <= set(losses)
    assert_training_lowers_the_loss(model, images, targets)
    model.eval()
    assert_detection_format(model(images), 4, 5)


@pytest.mark.parametrize("make", [v1, v2], ids=["v1", "v2"])
def test_empty_images_and_bad_input(make):
    assert_empty_image_trains_and_evaluates(make(), 5)
    name = "YOLOv1" if make is v1 else "YOLOv2"
    assert_bad_targets_are_named(make(), name)


def test_v1_wrong_image_size_and_head():
    images, targets = shapes_batch(2, size=64)
    with pytest.raises(ValueError, match="YOLOv1: built for 32 x 32 images"):
        v1()(images, targets)
    with pytest.raises(ValueError, match="head must be 'fc' .* or 'conv'"):
        v1("mlp")
    with pytest.raises(ValueError, match="YOLOv1: num_classes counts the background"):
        YOLOv1(backbone(), 1)
