"""Semantic segmentation metrics (minidl/vision/metrics/segmentation.py): confusion matrix,
pixel accuracy, mean class accuracy, mean IoU."""

import numpy as np
import pytest

from minidl import Tensor
from minidl.vision.metrics import ConfusionMatrix, confusion_matrix, segmentation_scores


def test_scores_from_a_hand_made_confusion_matrix():
    # rows = true class, columns = predicted class
    c = np.array([[50, 2, 3],
                  [4, 30, 6],
                  [0, 5, 0]])
    # pixel accuracy = (50 + 30 + 0) / 100 = 0.8
    # class accuracy = 50/55, 30/40, 0/5            -> mean (0.90909 + 0.75 + 0) / 3
    # IoU: class 0: 50 / (55 + 54 - 50) = 50/59
    #      class 1: 30 / (40 + 37 - 30) = 30/47
    #      class 2:  0 / (5 + 9 - 0)    = 0
    s = segmentation_scores(c)
    assert s["pixel_accuracy"] == pytest.approx(0.8)
    assert s["mean_class_accuracy"] == pytest.approx((50 / 55 + 30 / 40 + 0) / 3)
    np.testing.assert_allclose(s["iou"], [50 / 59, 30 / 47, 0.0])
    assert s["mean_iou"] == pytest.approx((50 / 59 + 30 / 47) / 3)


def test_absent_classes_are_left_out_of_the_means():
    # class 2 never appears in the target: no accuracy (NaN). Predicted once -> IoU 0.
    # class 3 neither appears nor is predicted: IoU NaN, left out of the mean.
    c = np.array([[5, 0, 1, 0],
                  [0, 4, 0, 0],
                  [0, 0, 0, 0],
                  [0, 0, 0, 0]])
    s = segmentation_scores(c)
    assert np.isnan(s["class_accuracy"][2]) and np.isnan(s["class_accuracy"][3])
    assert s["mean_class_accuracy"] == pytest.approx((5 / 6 + 1) / 2)
    assert s["iou"][2] == 0.0 and np.isnan(s["iou"][3])
    assert s["mean_iou"] == pytest.approx((5 / 6 + 1 + 0) / 3)
    empty = segmentation_scores(np.zeros((3, 3), int))
    assert np.isnan(empty["pixel_accuracy"]) and np.isnan(empty["mean_iou"])


def test_confusion_matrix_against_a_pixel_loop():
    rng = np.random.default_rng(0)
    target = rng.integers(0, 4, (2, 7, 9))
    target[rng.uniform(size=target.shape) < 0.2] = 255
    pred = rng.integers(0, 4, (2, 7, 9))
    want = np.zeros((4, 4), np.int64)
    for t, p in zip(target.ravel(), pred.ravel()):
        if t != 255:
            want[t, p] += 1
    np.testing.assert_array_equal(confusion_matrix(pred, target, 4, ignore_index=255), want)
    np.testing.assert_array_equal(confusion_matrix(Tensor(pred), Tensor(target), 4), want)
    # accumulated over two halves = all at once
    cm = ConfusionMatrix(4)
    cm.update(pred[:1], target[:1])
    cm.update(pred[1:], target[1:])
    np.testing.assert_array_equal(cm.matrix, want)
    assert cm.compute()["pixel_accuracy"] == pytest.approx(np.trace(want) / want.sum())
    cm.reset()
    assert cm.matrix.sum() == 0


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        confusion_matrix(np.zeros((2, 3), int), np.zeros((3, 2), int), 2)
    with pytest.raises(TypeError, match="integer class labels"):
        confusion_matrix(np.zeros((2, 3)), np.zeros((2, 3), int), 2)
    with pytest.raises(ValueError, match=r"target has labels outside 0..1"):
        confusion_matrix(np.zeros(3, int), np.array([0, 1, 2]), 2)
    with pytest.raises(ValueError, match=r"pred has labels outside"):
        confusion_matrix(np.array([0, -1, 0]), np.zeros(3, int), 2)
    with pytest.raises(ValueError, match=r"\[K, K\]"):
        segmentation_scores(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="num_classes"):
        ConfusionMatrix(0)
