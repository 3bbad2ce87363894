"""DETR: positions, the matching cost by hand, a set loss that ignores the order of the
predictions, training, eval without NMS, attention maps, bad input."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.vision.models import Backbone
from minidl.vision.models.detr import DETR, HungarianMatcher, sine_position_encoding
from tests.vision.models.test_dense import (
    assert_bad_targets_are_named,
    assert_detection_format,
    assert_empty_image_trains_and_evaluates,
    assert_training_lowers_the_loss,
    shapes_batch,
)


def detr(**options):
    minidl.manual_seed(0)
    # a stride-4 backbone on 32 x 32 images: an 8 x 8 map, pooled (token_pool=2) to 4 x 4 tokens
    return DETR(Backbone(widths=(8, 16), depth=1), 5, d_model=16, nhead=2,
                num_encoder_layers=1, num_decoder_layers=2, dim_feedforward=32, num_queries=6,
                **options)


def test_sine_positions_by_hand():
    pe = sine_position_encoding(2, 3, 8)
    assert pe.shape == (6, 8)
    # position (row 1, col 2): y = 2 / 2 * 2 pi, x = 3 / 3 * 2 pi; frequencies 1, 1, 100, 100
    y = x = 2 * np.pi
    want = [np.sin(y), np.cos(y), np.sin(y / 100), np.cos(y / 100),
            np.sin(x), np.cos(x), np.sin(x / 100), np.cos(x / 100)]
    np.testing.assert_allclose(pe[1 * 3 + 2], want, atol=1e-6)
    first = pe[0]   # row 0, col 0: y = pi, x = 2 pi / 3
    np.testing.assert_allclose(first[:2], [np.sin(np.pi), np.cos(np.pi)], atol=1e-6)
    np.testing.assert_allclose(first[4:6], [np.sin(2 * np.pi / 3), np.cos(2 * np.pi / 3)],
                               atol=1e-6)
    with pytest.raises(ValueError, match="multiple of 4"):
        sine_position_encoding(2, 2, 6)


def test_matching_cost_by_hand_and_the_assignment():
    matcher = HungarianMatcher(cost_class=1.0, cost_bbox=5.0, cost_giou=2.0)
    logits = np.log(np.array([[0.1, 0.8, 0.1], [0.1, 0.2, 0.7]]))     # 2 queries, K + 1 = 3
    boxes = np.array([[0.5, 0.5, 0.2, 0.2], [0.3, 0.3, 0.2, 0.2]])     # cxcywh
    labels = np.array([2, 1])
    targets = np.array([[0.3, 0.3, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]])
    cost = matcher.cost(logits, boxes, labels, targets)
    # query 0 vs object 0: class -p(2) = -0.1; L1 = 0.4; the boxes [0.4, 0.6] and [0.2, 0.4]
    # squares touch at a corner: IoU 0, enclosing box 0.4^2 = 0.16, union 0.08 -> GIoU -0.5
    assert cost[0, 0] == pytest.approx(-0.1 + 5 * 0.4 + 2 * 0.5)
    assert cost[0, 1] == pytest.approx(-0.8 + 0 - 2 * 1.0)      # same box, right class
    rows, cols = matcher(logits, boxes, labels, targets)
    np.testing.assert_array_equal(rows, [0, 1])
    np.testing.assert_array_equal(cols, [1, 0])
    rows, cols = matcher(logits, boxes, np.zeros(0, int), np.zeros((0, 4)))
    assert rows.size == cols.size == 0


def test_the_set_loss_ignores_the_order_of_the_predictions():
    model = detr()
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(1, 6, 5)).astype(np.float32)
    boxes = rng.uniform(0.2, 0.6, (1, 6, 4)).astype(np.float32)
    targets = [(np.array([1, 3]), np.array([[0.3, 0.3, 0.2, 0.3], [0.7, 0.6, 0.3, 0.2]],
                                           np.float32))]
    loss = model.loss(Tensor(logits), Tensor(boxes), targets)
    order = rng.permutation(6)
    shuffled = model.loss(Tensor(logits[:, order]), Tensor(boxes[:, order]), targets)
    for name in loss:
        assert shuffled[name].item() == pytest.approx(loss[name].item(), rel=1e-6)


def test_a_perfect_prediction_has_no_box_loss_and_duplicates_cost():
    model = detr()
    targets = [(np.array([2]), np.array([[0.4, 0.5, 0.2, 0.2]], np.float32))]
    logits = np.full((1, 6, 5), -10.0, np.float32)
    logits[..., 0] = 10.0                                # every query: "no object"
    logits[0, 3] = [-10, -10, 10, -10, -10]              # query 3 finds the object
    boxes = np.full((1, 6, 4), 0.5, np.float32)
    boxes[0, 3] = targets[0][1][0]
    perfect = model.loss(Tensor(logits), Tensor(boxes), targets)
    assert perfect["loss_bbox"].item() == pytest.approx(0, abs=1e-5)
    assert perfect["loss_giou"].item() == pytest.approx(0, abs=1e-5)
    assert perfect["loss_ce"].item() < 1e-3
    logits[0, 4] = logits[0, 3]                          # a duplicate of the same object
    boxes[0, 4] = boxes[0, 3]
    duplicate = model.loss(Tensor(logits), Tensor(boxes), targets)
    assert duplicate["loss_ce"].item() > 1.0, "the unmatched copy must say 'no object'"


def test_training_eval_without_nms_attention_and_bad_input():
    model = detr()
    images, targets = shapes_batch(4)
    losses = model.train()(images, targets)
    assert set(losses) == {"loss_ce", "loss_bbox", "loss_giou", "loss_ce_0", "loss_bbox_0",
                           "loss_giou_0"}
    assert_training_lowers_the_loss(model, images, targets, steps=40, lr=2e-3)
    model.eval()
    outputs = model(images)
    assert_detection_format(outputs, 4, 5, max_detections=6)
    assert all(len(d["scores"]) == 6 for d in outputs), "every query answers: no NMS"
    maps = model.attention_maps(images)
    assert maps.shape == (4, 6, 4, 4)                      # 8 x 8 map pooled by 2
    assert detr(token_pool=1).attention_maps(images).shape == (4, 6, 8, 8)
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, rtol=1e-5)
    assert not model.training
    assert_empty_image_trains_and_evaluates(detr(), 5)
    assert_bad_targets_are_named(detr(), "DETR")
