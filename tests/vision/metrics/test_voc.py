"""PASCAL VOC evaluation (minidl/vision/metrics/voc.py): hand-worked cases and properties."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.vision.metrics import voc_evaluate
from tests.vision.metrics.test_inputs import (
    check_a_duplicate_never_increases_ap,
    perfect,
    random_scene,
    shifted_away,
)


def _voc_case():
    """Class 1: A, B (+ difficult C) in image 0, D in image 1. Class 2: one box, never
    detected. Class 3: no ground truth, one detection."""
    targets = [
        {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                            [60, 0, 70, 10]], float),
         "labels": np.array([1, 1, 1, 2]), "difficult": np.array([0, 0, 1, 0])},
        {"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])},
    ]
    predictions = [
        {"boxes": np.array([[0, 0, 10, 10],    # d1 .9 on A: TP
                            [0, 0, 10, 9],     # d2 .8 on A again (IoU .9): duplicate -> FP
                            [40, 40, 50, 50],  # d3 .7 on difficult C: ignored
                            [20, 20, 30, 30],  # d5 .5 on B: TP
                            [0, 30, 5, 35]],   # class 3 (no ground truth anywhere)
                           float),
         "scores": np.array([0.9, 0.8, 0.7, 0.5, 0.3]), "labels": np.array([1, 1, 1, 1, 3])},
        {"boxes": np.array([[0, 0, 10, 4],     # d4 .6 on D, IoU 40/100 = .4 -> FP
                            [0, 0, 10, 10]],   # d6 .4 on D: TP
                           float),
         "scores": np.array([0.6, 0.4]), "labels": np.array([1, 1])},
    ]
    return predictions, targets


def test_voc_evaluate_by_hand():
    predictions, targets = _voc_case()
    # class 1, ranked without the ignored d3: d1 TP, d2 FP, d4 FP, d5 TP, d6 TP; 3 positives
    #   precision 1, 1/2, 1/3, 2/4, 3/5; recall 1/3, 1/3, 1/3, 2/3, 1
    #   envelope 1, .6, .6, .6, .6
    #   all-point AP = 1/3 * 1 + 1/3 * .6 + 1/3 * .6 = 2.2 / 3
    #   11-point: levels 0 .. .3 -> 1 (4 levels), .4 .. 1 -> .6 (7 levels): (4 + 4.2) / 11
    # class 2: one object, no detection -> AP 0. class 3: no ground truth -> -1, not in mAP.
    result = voc_evaluate(predictions, targets, num_classes=3)
    assert result.ap[1] == pytest.approx(2.2 / 3)
    assert result.ap[2] == 0.0
    assert result.ap[3] == -1.0
    assert result.mAP == pytest.approx((2.2 / 3 + 0.0) / 2)
    assert result.num_positives == {1: 3, 2: 1, 3: 0}
    np.testing.assert_allclose(result.precision[1], [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(result.recall[1], [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
    voc07 = voc_evaluate(predictions, targets, num_classes=3, use_07_metric=True)
    assert voc07.ap[1] == pytest.approx(8.2 / 11)


def test_voc_threshold_is_inclusive_and_duplicates_of_found_boxes_are_false_positives():
    target = [{"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])}]
    # IoU exactly .5: box [0, 0, 10, 5] -> 50 / 100
    half = [{"boxes": np.array([[0, 0, 10, 5]], float), "scores": np.array([1.0]),
             "labels": np.array([1])}]
    assert voc_evaluate(half, target).ap[1] == 1.0
    assert voc_evaluate(half, target, iou_threshold=0.51).ap[1] == 0.0
    # two perfect boxes: TP then FP -> precision 1, .5 at recall 1, 1 -> AP still 1 (the
    # envelope keeps the 1); a duplicate scored above the true one cannot make it worse here
    dup = [{"boxes": np.array([[0, 0, 10, 10]] * 2, float), "scores": np.array([0.9, 0.8]),
            "labels": np.array([1, 1])}]
    r = voc_evaluate(dup, target)
    np.testing.assert_allclose(r.precision[1], [1.0, 0.5])
    assert r.ap[1] == 1.0


def test_voc_matches_the_most_overlapping_object_even_when_it_is_taken():
    # A = (0, 0, 10, 10) and B = (2, 0, 12, 10) overlap. d1 (.9) = A: TP. d2 (.8) =
    # (0.5, 0, 10.5, 10) overlaps A by 95/105 = .905 and B by 85/115 = .739. The VOC devkit
    # takes the object with the largest IoU, A, already found: d2 is a duplicate, FP.
    # (Taking the best *free* object, as COCO does, would make d2 a TP of B: AP 1.)
    # precision 1, 1/2; recall 1/2, 1/2 -> all-point AP = 1/2 * 1
    targets = [{"boxes": np.array([[0.0, 0, 10, 10], [2.0, 0, 12, 10]]),
                "labels": np.array([1, 1])}]
    predictions = [{"boxes": np.array([[0.0, 0, 10, 10], [0.5, 0, 10.5, 10]]),
                    "scores": np.array([0.9, 0.8]), "labels": np.array([1, 1])}]
    result = voc_evaluate(predictions, targets)
    np.testing.assert_allclose(result.precision[1], [1.0, 0.5])
    assert result.ap[1] == pytest.approx(0.5)


# ---- properties -----------------------------------------------------------------------
def test_perfect_detections_give_ap_one():
    _, targets = random_scene(np.random.default_rng(0))
    predictions = perfect(targets)
    assert voc_evaluate(predictions, targets).mAP == 1.0
    assert voc_evaluate(predictions, targets, use_07_metric=True).mAP == 1.0


def test_all_wrong_detections_give_ap_zero():
    _, targets = random_scene(np.random.default_rng(1))
    assert voc_evaluate(shifted_away(targets), targets).mAP == 0.0
    assert voc_evaluate(shifted_away(targets, relabel=True), targets, num_classes=3).mAP == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.integers(0, 100), drop=st.floats(0.0, 0.5))
def test_adding_a_duplicate_never_increases_ap(seed, which, drop):
    check_a_duplicate_never_increases_ap(voc_evaluate, lambda r: r.ap, seed, which, drop)
