"""NMS and batched NMS against a plain-Python greedy loop written from torchvision's rules."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.vision.nms import batched_nms, nms


def iou(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_nms(boxes, scores, threshold, categories=None):
    """Visit by decreasing score (equal scores: lower index first), keep a box unless a kept
    box of its category overlaps it by IoU > threshold."""
    categories = [0] * len(boxes) if categories is None else list(categories)
    order = sorted(range(len(boxes)), key=lambda i: (-scores[i], i))
    kept = []
    for i in order:
        if all(categories[k] != categories[i] or iou(boxes[k], boxes[i]) <= threshold
               for k in kept):
            kept.append(i)
    return kept


def clustered_boxes(n, rng, clusters=4):
    centres = rng.uniform(10, 90, (clusters, 2))[rng.integers(0, clusters, n)]
    centres = centres + rng.normal(0, 3, (n, 2))
    half = rng.uniform(4, 12, (n, 2))
    return np.concatenate([centres - half, centres + half], axis=1)


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 40), st.sampled_from([0.0, 0.3, 0.5, 0.7, 1.0]), st.integers(0, 10_000))
def test_nms_matches_the_greedy_definition(n, threshold, seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(n, rng)
    scores = rng.integers(0, 5, n).astype(np.float64)  # many ties: order by index
    keep = nms(boxes, scores, threshold)
    assert keep.dtype == np.int64
    assert keep.tolist() == naive_nms(boxes, scores, threshold)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 40), st.integers(0, 10_000))
def test_batched_nms_matches_per_category_definition(n, seed):
    rng = np.random.default_rng(seed)
    boxes = clustered_boxes(n, rng)
    scores = rng.random(n)
    idxs = rng.integers(0, 3, n)
    keep = batched_nms(boxes, scores, idxs, 0.4)
    assert keep.tolist() == naive_nms(boxes, scores, 0.4, idxs)
    # the same as NMS run on each category alone, merged by score
    merged = [np.flatnonzero(idxs == c)[nms(boxes[idxs == c], scores[idxs == c], 0.4)]
              for c in range(3)]
    merged = np.concatenate(merged).astype(np.int64)
    assert sorted(keep.tolist()) == sorted(merged.tolist())


def test_nms_strictly_greater_and_by_hand():
    # IoU of box 0 and 1 is exactly 1/3 ([0,2]x[0,1] and [1,3]x[0,1]: 1 / 3)
    boxes = np.array([[0.0, 0, 2, 1], [1.0, 0, 3, 1], [10.0, 10, 11, 11]])
    scores = np.array([0.9, 0.8, 0.95])
    assert nms(boxes, scores, 1 / 3).tolist() == [2, 0, 1]  # IoU = threshold: both survive
    assert nms(boxes, scores, 0.33).tolist() == [2, 0]


def test_nms_empty_and_errors():
    out = nms(np.zeros((0, 4)), np.zeros(0), 0.5)
    assert out.dtype == np.int64 and out.shape == (0,)
    assert batched_nms(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64), 0.5).shape == (0,)
    boxes = np.array([[0.0, 0, 2, 2], [1.0, 1, 3, 3]])
    with pytest.raises(ValueError, match=r"nms: scores must have shape \[N\] = \[2\]"):
        nms(boxes, np.zeros(3), 0.5)
    with pytest.raises(ValueError, match="nms: boxes row 1 .* x2 < x1"):
        nms(np.array([[0.0, 0, 2, 2], [3.0, 1, 1, 3]]), np.zeros(2), 0.5)
    with pytest.raises(ValueError, match="nms: boxes row 0 has a non-finite"):
        nms(np.array([[np.inf, 0, 2, 2]]), np.zeros(1), 0.5)
    with pytest.raises(ValueError, match="nms: scores contain NaN"):
        nms(boxes, np.array([0.1, np.nan]), 0.5)
    with pytest.raises(ValueError, match="batched_nms: idxs must be integers"):
        batched_nms(boxes, np.zeros(2), np.zeros(2), 0.5)


@pytest.mark.parametrize("threshold", [np.nan, float("nan"), np.float32("nan")])
def test_nan_threshold_is_an_error_not_a_silent_keep_all(threshold):
    boxes = np.array([[0.0, 0, 2, 2], [0.0, 0, 2, 2]])  # identical: IoU 1
    with pytest.raises(ValueError, match="nms: iou_threshold is NaN"):
        nms(boxes, np.array([0.9, 0.8]), threshold)
    with pytest.raises(ValueError, match="batched_nms: iou_threshold is NaN"):
        batched_nms(boxes, np.array([0.9, 0.8]), np.zeros(2, np.int64), threshold)
    with pytest.raises(TypeError, match="nms: iou_threshold must be a number, got '0.5'"):
        nms(boxes, np.array([0.9, 0.8]), "0.5")
    # thresholds outside [0, 1] are meaningful and accepted, as in torchvision
    assert nms(boxes, np.array([0.9, 0.8]), 1.5).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), np.inf).tolist() == [0, 1]
    assert nms(boxes, np.array([0.9, 0.8]), -0.1).tolist() == [0]
