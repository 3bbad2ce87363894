"""Matcher: thresholds, low-quality matches, empty cases."""

import numpy as np
import pytest

from minidl.vision.matcher import Matcher


# ---- Matcher ------------------------------------------------------------------
def test_matcher_thresholds():
    iou = np.array([[0.9, 0.5, 0.2, 0.69, 0.0],
                    [0.1, 0.6, 0.3, 0.7, 0.0]])  # 2 ground truths x 5 predictions
    out = Matcher(0.7, 0.3)(iou)
    # 0.9 -> gt 0; 0.6 between -> -2; 0.3 (= low) between -> -2; 0.7 (= high) -> gt 1; 0 -> -1
    np.testing.assert_array_equal(out, [0, -2, -2, 1, -1])
    assert out.dtype == np.int64


def test_matcher_low_quality_matches_keep_ties():
    iou = np.array([[0.4, 0.4, 0.1, 0.0],
                    [0.2, 0.5, 0.05, 0.25]])
    plain = Matcher(0.7, 0.3)(iou)
    np.testing.assert_array_equal(plain, [-2, -2, -1, -1])
    low = Matcher(0.7, 0.3, allow_low_quality_matches=True)(iou)
    # gt 0's best (0.4) is reached by predictions 0 and 1; gt 1's best (0.5) by prediction 1.
    # Each restored prediction gets its own row-wise best ground truth (prediction 1 -> gt 1).
    np.testing.assert_array_equal(low, [0, 1, -1, -1])


def test_low_quality_matches_keep_every_prediction_tied_for_the_best():
    # one object, two predictions tied at its best IoU 0.4: both are restored (one
    # argmax per ground truth would restore only the first: [0, -2, -1])
    low = Matcher(0.7, 0.3, allow_low_quality_matches=True)(np.array([[0.4, 0.4, 0.1]]))
    np.testing.assert_array_equal(low, [0, 0, -1])


def test_matcher_empty_cases_and_errors():
    assert Matcher(0.5, 0.4)(np.zeros((0, 3))).tolist() == [-1, -1, -1]
    assert Matcher(0.5, 0.4)(np.zeros((2, 0))).shape == (0,)
    with pytest.raises(ValueError, match="low_threshold 0.6 must not exceed high_threshold 0.5"):
        Matcher(0.5, 0.6)
    with pytest.raises(ValueError, match="Matcher: match_quality_matrix must be"):
        Matcher(0.5, 0.4)(np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        Matcher(0.5, 0.4)(np.array([[np.nan]]))
