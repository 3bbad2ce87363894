"""The RPN: head shapes, anchor order of its outputs, anchor labels, the proposal step, training."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.optim import Adam
from minidl.vision import AnchorGenerator, BoxCoder, Matcher, box_iou
from minidl.vision.models.rpn import (
    RegionProposalNetwork,
    RPNHead,
    anchor_targets,
    flatten_predictions,
    select_proposals,
)


def feature(n=2, channels=6, size=4, seed=0):
    return Tensor(np.random.default_rng(seed).standard_normal((n, channels, size, size))
                  .astype(np.float32))


def test_head_gives_one_logit_and_four_deltas_per_anchor_on_every_level():
    minidl.manual_seed(0)
    head = RPNHead(6, num_anchors=3)
    objectness, deltas = head([feature(size=4), feature(size=2)])
    assert [tuple(o.shape) for o in objectness] == [(2, 3, 4, 4), (2, 3, 2, 2)]
    assert [tuple(d.shape) for d in deltas] == [(2, 12, 4, 4), (2, 12, 2, 2)]
    single, _ = head(feature())
    np.testing.assert_array_equal(single[0].data, objectness[0].data)


def test_flatten_puts_predictions_in_the_anchor_generators_order():
    # anchors: position (row, column) major, then the A anchors of that cell
    n, a, h, w = 2, 3, 2, 4
    logits = np.zeros((n, a, h, w), np.float32)
    codes = np.zeros((n, 4 * a, h, w), np.float32)
    for i in range(n):
        for k in range(a):
            for y in range(h):
                for x in range(w):
                    logits[i, k, y, x] = 1000 * i + 100 * y + 10 * x + k
                    for c in range(4):  # channel 4k + c is coordinate c of anchor k
                        codes[i, 4 * k + c, y, x] = 1000 * i + 100 * y + 10 * x + k + c / 10
    flat_logits, flat_codes = flatten_predictions([Tensor(logits)], [Tensor(codes)])
    expected = [1000 * i + 100 * y + 10 * x + k
                for i in range(n) for y in range(h) for x in range(w) for k in range(a)]
    np.testing.assert_array_equal(flat_logits.data.reshape(-1), expected)
    np.testing.assert_allclose(flat_codes.data.reshape(-1, 4),
                               np.array(expected)[:, None] + np.arange(4) / 10, rtol=1e-6)
    generator = AnchorGenerator(((8, 16, 32),), ((1.0,),))
    anchors = generator.anchors_for((16, 32), [(h, w)])
    assert anchors.shape[0] == flat_logits.shape[1]
    # anchor index 3 * (row * w + col) + k is centred on cell (row, col)
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2
    np.testing.assert_array_equal(centre[3 * (1 * w + 2)], [2 * 8, 1 * 8])


def test_flatten_concatenates_levels():
    o1, o2 = Tensor(np.ones((1, 2, 2, 2), np.float32)), Tensor(np.zeros((1, 2, 1, 1), np.float32))
    d1, d2 = Tensor(np.ones((1, 8, 2, 2), np.float32)), Tensor(np.zeros((1, 8, 1, 1), np.float32))
    flat_o, flat_d = flatten_predictions([o1, o2], [d1, d2])
    assert tuple(flat_o.shape) == (1, 10) and tuple(flat_d.shape) == (1, 10, 4)
    np.testing.assert_array_equal(flat_o.data[0], [1] * 8 + [0] * 2)


def test_anchor_targets_label_positive_negative_ignored_and_best_anchor():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 8], [0, 0, 10, 5], [20, 20, 30, 30],
                        [40, 40, 44, 44]], np.float32)
    gt = np.array([[0, 0, 10, 10], [40, 40, 50, 50]], np.float32)
    matcher, coder = Matcher(0.7, 0.3, allow_low_quality_matches=True), BoxCoder()
    labels, targets = anchor_targets(anchors, gt, matcher, coder)
    # IoUs with gt 0: 1, 0.8, 0.5 (ignored), 0; anchor 4 has IoU 0.16 with gt 1 but is its best
    np.testing.assert_array_equal(labels, [1, 1, -1, 0, 1])
    np.testing.assert_allclose(targets[0], 0, atol=1e-6)
    np.testing.assert_allclose(coder.decode_single(targets[[1, 4]], anchors[[1, 4]]), gt[[0, 1]],
                               atol=1e-4)
    np.testing.assert_array_equal(targets[[2, 3]], 0)


def test_anchor_targets_of_an_image_without_objects_are_all_background():
    anchors = np.array([[0, 0, 10, 10], [5, 5, 20, 20]], np.float32)
    labels, targets = anchor_targets(anchors, np.zeros((0, 4), np.float32),
                                     Matcher(0.7, 0.3, True), BoxCoder())
    np.testing.assert_array_equal(labels, [0, 0])
    assert targets.shape == (2, 4) and not targets.any()


def test_select_proposals_decodes_clips_drops_small_and_suppresses():
    anchors = np.array([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 40, 40], [50, 50, 70, 70],
                        [20, 20, 20.5, 20.5]], np.float32)
    objectness = np.array([3.0, 2.0, 1.0, 0.0, 5.0], np.float32)
    deltas = np.zeros((5, 4), np.float32)
    boxes, scores = select_proposals(anchors, objectness, deltas, np.zeros(5, int), (64, 64),
                                     BoxCoder(), pre_nms_top_n=10, post_nms_top_n=10,
                                     nms_thresh=0.7, min_size=1.0)
    # anchor 4 is too small, anchor 1 overlaps anchor 0 (IoU 0.82), anchor 3 is clipped to 64
    np.testing.assert_allclose(boxes, [[0, 0, 10, 10], [30, 30, 40, 40], [50, 50, 64, 64]])
    np.testing.assert_allclose(scores, 1 / (1 + np.exp(-np.array([3.0, 1.0, 0.0]))), rtol=1e-6)


def test_select_proposals_applies_the_deltas_and_both_top_n_limits():
    anchors = np.array([[0, 0, 10, 10], [20, 0, 30, 10], [40, 0, 50, 10], [0, 40, 10, 50]],
                       np.float32)
    deltas = np.array([[0.1, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]], np.float32)
    objectness = np.array([4.0, 3.0, 2.0, 1.0], np.float32)
    levels = np.array([0, 0, 1, 1])
    boxes, _ = select_proposals(anchors, objectness, deltas, levels, (64, 64), BoxCoder(),
                                pre_nms_top_n=1, post_nms_top_n=10)
    # one per level before NMS: anchor 0 (moved right by 0.1 of its width) and anchor 2
    np.testing.assert_allclose(boxes, [[1, 0, 11, 10], [40, 0, 50, 10]], atol=1e-5)
    boxes, _ = select_proposals(anchors, objectness, deltas, levels, (64, 64), BoxCoder(),
                                pre_nms_top_n=4, post_nms_top_n=3)
    assert len(boxes) == 3


def small_rpn():
    generator = AnchorGenerator(((8, 16),), ((0.5, 1.0, 2.0),), offset=0.5)
    return RegionProposalNetwork(generator, RPNHead(6, 6), batch_size_per_image=32,
                                 pre_nms_top_n={"training": 50, "testing": 20},
                                 post_nms_top_n={"training": 30, "testing": 10})


def test_rpn_training_step_lowers_its_loss_on_a_fixed_batch():
    minidl.manual_seed(0)
    rpn = small_rpn()
    images = Tensor(np.zeros((2, 3, 32, 32), np.float32))
    features = feature(n=2, size=4)
    targets = [{"boxes": np.array([[4, 4, 14, 20]], np.float32)},
               {"boxes": np.array([[16, 8, 28, 16], [2, 2, 10, 10]], np.float32)}]
    optimizer = Adam(rpn.parameters(), lr=0.01)
    first = None
    for _ in range(30):
        rpn.train()
        proposals, losses = rpn(images, features, targets)
        total = losses["loss_objectness"] + losses["loss_rpn_box_reg"]
        first = first if first is not None else float(total.item())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
    assert float(total.item()) < 0.5 * first
    assert len(proposals) == 2 and all(p.shape[1] == 4 and len(p) <= 30 for p in proposals)
    rpn.eval()
    proposals, losses = rpn(images, features)
    assert losses == {} and all(len(p) <= 10 for p in proposals)
    recall = [box_iou(t["boxes"], p).max(axis=1) for t, p in zip(targets, proposals)]
    assert min(r.min() for r in recall) > 0.5, "the trained RPN finds every object"


def test_rpn_propose_returns_scores_best_first_and_needs_targets_to_train():
    minidl.manual_seed(0)
    rpn = small_rpn().eval()
    boxes, scores = rpn.propose(Tensor(np.zeros((1, 3, 32, 32), np.float32)), [feature(n=1)])
    assert len(boxes[0]) == len(scores[0]) <= 10
    assert np.all(np.diff(scores[0]) <= 0) or len(scores[0]) < 2
    rpn.train()
    with pytest.raises(ValueError, match="RegionProposalNetwork: targets are needed"):
        rpn(Tensor(np.zeros((1, 3, 32, 32), np.float32)), [feature(n=1)])
