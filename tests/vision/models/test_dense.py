"""The one-stage detectors' shared pieces, and the shared checks of their tests (imported by
test_yolo, test_ssd, test_retinanet, test_detr, test_centernet)."""

import numpy as np
import pytest

from minidl import Tensor
from minidl.data.shapes import ShapesDataset, detection_collate
from minidl.optim import Adam
from minidl.vision.anchors import AnchorGenerator
from minidl.vision.box_coder import BoxCoder
from minidl.vision.matcher import Matcher
from minidl.vision.models.dense import (
    anchor_labels,
    flatten_anchor_outputs,
    labels_from_one,
    select_detections,
)

SIZE = 32


# ---- shared checks ---------------------------------------------------------------------------
def shapes_batch(n=4, size=SIZE, empty_first=False, seed=0):
    """(images [n, 3, size, size], targets) of the shapes data; image 0 without objects if asked."""
    data = ShapesDataset(n, image_size=size, seed=seed)
    samples = [data[i] for i in range(n)]
    if empty_first:
        image, target = samples[0]
        samples[0] = (image, dict(target, boxes=np.zeros((0, 4), np.float32),
                                  labels=np.zeros(0, np.int64)))
    return detection_collate(samples)


def train_losses(model, images, targets, steps=15, lr=3e-3):
    """The summed loss at each of ``steps`` Adam steps on one fixed batch."""
    optimizer = Adam(model.parameters(), lr=lr)
    model.train()
    history = []
    for _ in range(steps):
        losses = model(images, targets)
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append(total.item())
    return history


def assert_training_lowers_the_loss(model, images, targets, steps=15, lr=3e-3, factor=0.7):
    history = train_losses(model, images, targets, steps, lr)
    assert np.isfinite(history).all()
    assert history[-1] < factor * history[0], history


def assert_detection_format(outputs, n, num_classes, max_detections=100):
    """torchvision's eval format: one dict per image, best first, labels 1..K."""
    assert isinstance(outputs, list) and len(outputs) == n
    for d in outputs:
        assert set(d) >= {"boxes", "labels", "scores"}
        boxes, labels, scores = (np.asarray(d[k]) for k in ("boxes", "labels", "scores"))
        assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 4
        assert labels.dtype == np.int64 and scores.dtype == np.float32
        assert len(boxes) == len(labels) == len(scores) <= max_detections
        assert np.all(np.diff(scores) <= 0), "best first"
        if len(labels):
            assert labels.min() >= 1 and labels.max() <= num_classes - 1
            assert (boxes[:, 2] >= boxes[:, 0]).all() and (boxes[:, 3] >= boxes[:, 1]).all()


def assert_empty_image_trains_and_evaluates(model, num_classes):
    images, targets = shapes_batch(2, empty_first=True)
    losses = model.train()(images, targets)
    total = sum(losses.values())
    assert np.isfinite(total.item())
    total.backward()
    model.eval()
    assert_detection_format(model(images), 2, num_classes)
    images, targets = shapes_batch(2, empty_first=True)   # a batch with no object at all
    targets[1] = dict(targets[0])
    assert np.isfinite(sum(model.train()(images, targets).values()).item())


def assert_bad_targets_are_named(model, name):
    images, targets = shapes_batch(2)
    model.train()
    with pytest.raises(ValueError, match=f"{name}: target 1 has no"):
        model(images, [targets[0], {"boxes": targets[1]["boxes"]}])
    bad = dict(targets[1], labels=np.full_like(targets[1]["labels"], 9))
    with pytest.raises(ValueError, match=f"{name}: target 1: labels .* must be in 1..4"):
        model(images, [targets[0], bad])
    outside = dict(targets[1], boxes=targets[1]["boxes"] + 100)
    with pytest.raises(ValueError, match=f"{name}: target 1: box 0 .* lies outside"):
        model(images, [targets[0], outside])
    with pytest.raises(ValueError, match=f"{name}: training mode needs targets"):
        model(images)
    with pytest.raises(ValueError, match=f"{name}: images must be a float"):
        model(Tensor(np.zeros((3, SIZE, SIZE), np.float32)), targets)


# ---- the pieces ----------------------------------------------------------------------------------
def test_flatten_anchor_outputs_follows_the_anchor_order():
    # channel a * D + d at (row, col) must land at position (row * W + col) * A + a, value d
    n, a, d, h, w = 2, 3, 4, 2, 5
    x = np.zeros((n, a * d, h, w), np.float32)
    for ai in range(a):
        for di in range(d):
            for r in range(h):
                for c in range(w):
                    x[:, ai * d + di, r, c] = 1000 * r + 100 * c + 10 * ai + di
    flat = flatten_anchor_outputs(Tensor(x), d).data
    assert flat.shape == (n, h * w * a, d)
    for r in range(h):
        for c in range(w):
            for ai in range(a):
                np.testing.assert_array_equal(flat[1, (r * w + c) * a + ai],
                                              1000 * r + 100 * c + 10 * ai + np.arange(d))
    # and AnchorGenerator lists the anchors in that same order
    generator = AnchorGenerator(((8, 16, 24),), ((1.0,),), offset=0.5)
    anchors = generator.anchors_for((16, 40), [(h, w)])
    centre = (anchors[(1 * w + 3) * 3 + 2, :2] + anchors[(1 * w + 3) * 3 + 2, 2:]) / 2
    np.testing.assert_allclose(centre, [(3 + 0.5) * 8, (1 + 0.5) * 8])
    with pytest.raises(ValueError, match="not a multiple of 4 values per anchor"):
        flatten_anchor_outputs(Tensor(np.zeros((1, 6, 2, 2), np.float32)), 4)


def test_select_detections_thresholds_clips_suppresses_and_keeps_the_best():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10], [-5, 20, 8, 40],
                      [30, 30, 31, 31]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.01])
    labels = np.array([1, 1, 2, 3, 1])
    out = select_detections(boxes, scores, labels, (32, 32), score_thresh=0.05, nms_thresh=0.5)
    # box 1 overlaps box 0 (same class, IoU 81/119 > 0.5): suppressed; box 2 has another class
    np.testing.assert_array_equal(out["labels"], [1, 2, 3])
    np.testing.assert_allclose(out["scores"], [0.9, 0.7, 0.6])
    np.testing.assert_array_equal(out["boxes"][2], [0, 20, 8, 32])   # clipped to the image
    no_nms = select_detections(boxes, scores, labels, (32, 32), nms_thresh=None,
                               detections_per_img=2)
    np.testing.assert_allclose(no_nms["scores"], [0.9, 0.8])
    empty = select_detections(np.zeros((0, 4)), np.zeros(0), np.zeros(0, int), (32, 32))
    assert empty["boxes"].shape == (0, 4) and empty["labels"].dtype == np.int64


def test_anchor_labels_classes_background_ignored_and_targets():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 10, 14], [20, 20, 30, 30], [0, 0, 12, 10]],
                       np.float32)
    gt = np.array([[0, 0, 10, 10]], np.float32)
    coder = BoxCoder()
    labels, targets, matched = anchor_labels(anchors, gt, [3], Matcher(0.75, 0.4), coder)
    # IoUs: 1, 100/140 = 0.714 (between), 0, 100/120 = 0.833
    np.testing.assert_array_equal(labels, [3, -1, 0, 3])
    np.testing.assert_array_equal(matched, [0, -2, -1, 0])
    np.testing.assert_allclose(targets[0], 0, atol=1e-6)
    np.testing.assert_allclose(targets[3], [-1 / 12, 0, np.log(10 / 12), 0], atol=1e-6)
    assert not targets[1].any() and not targets[2].any()
    labels, targets, _ = anchor_labels(anchors, np.zeros((0, 4)), [], Matcher(0.5, 0.4), coder)
    np.testing.assert_array_equal(labels, 0)


def test_labels_from_one():
    np.testing.assert_array_equal(labels_from_one([1, 4, 2]), [0, 3, 1])


def test_shared_checks_catch_a_detector_that_breaks_them():
    """The checks above can fail: a 'detector' with an unsorted, 0-labelled output."""
    bad = [{"boxes": np.zeros((2, 4), np.float32), "labels": np.array([0, 1]),
            "scores": np.array([0.1, 0.9], np.float32)}]
    with pytest.raises(AssertionError):
        assert_detection_format(bad, 1, 5)
