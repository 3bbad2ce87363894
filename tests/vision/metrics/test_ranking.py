"""Precision, recall and AP of one ranked list (minidl/vision/metrics/ranking.py).

Every expected number below is worked out by hand in the comment above it.
"""

import numpy as np
import pytest

from minidl.vision.metrics import (
    area_under_interpolated_curve,
    average_precision,
    interpolated_precision,
    precision_at_recall_levels,
    precision_recall,
)

# ---------------------------------------------------------------------------
# AP of one ranked list, by hand
# ---------------------------------------------------------------------------

def test_precision_recall_and_ap_of_a_ranked_list_by_hand():
    # ranked: TP FP TP FP TP, 4 positives (one object never found)
    # TP_k = 1 1 2 2 3, FP_k = 0 1 1 2 2
    # precision = 1/1 1/2 2/3 2/4 3/5 = 1, .5, .667, .5, .6
    # recall    = 1/4 1/4 2/4 2/4 3/4 = .25 .25 .5 .5 .75
    p, r = precision_recall([1, 0, 1, 0, 1], num_positives=4)
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3, 0.5, 0.6])
    np.testing.assert_allclose(r, [0.25, 0.25, 0.5, 0.5, 0.75])
    # monotone envelope (best precision at this recall or beyond): 1, 2/3, 2/3, .6, .6
    # all-point: recall rises 0->.25 (p 1), .25->.5 (p 2/3), .5->.75 (p .6), .75->1 (p 0)
    #   AP = .25 * 1 + .25 * 2/3 + .25 * .6 = .25 + 1/6 + .15
    assert average_precision(p, r, "all") == pytest.approx(0.25 + 1 / 6 + 0.15)
    # 11-point: r = 0, .1, .2 -> 1 (3 levels); .3, .4, .5 -> 2/3 (3 levels: ranks 3-5 reach
    #   recall .5 >= .5); .6, .7 -> .6 (rank 5, recall .75); .8, .9, 1 -> 0
    #   AP = (3 * 1 + 3 * 2/3 + 2 * .6) / 11 = 6.2 / 11
    assert average_precision(p, r, "11point") == pytest.approx(6.2 / 11)


def test_voc07_all_point_and_coco101_differ_on_a_known_example():
    # ranked: TP FP TP TP, 3 positives
    # precision 1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1; envelope 1, 3/4, 3/4, 3/4
    p, r = precision_recall([True, False, True, True], num_positives=3)
    # all-point: 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 2.5 / 3
    assert average_precision(p, r, "all") == pytest.approx(2.5 / 3)
    # 11-point: levels 0, .1, .2, .3 (<= 1/3) -> 1; .4 ... 1.0 (7 levels) -> 3/4
    #   (4 + 7 * .75) / 11 = 9.25 / 11
    assert average_precision(p, r, "11point") == pytest.approx(9.25 / 11)
    # 101-point: levels 0.00 ... 0.33 (34 levels) -> 1; 0.34 ... 1.00 (67 levels) -> 3/4
    #   (34 + 67 * .75) / 101 = 84.25 / 101
    assert average_precision(p, r, "101point") == pytest.approx(84.25 / 101)


def test_average_precision_edge_cases():
    assert average_precision([], [], "all") == 0.0
    assert average_precision([], [], "11point") == 0.0
    assert average_precision([1.0], [1.0], "all") == 1.0
    assert average_precision([1.0], [1.0], "101point") == 1.0
    with pytest.raises(ValueError, match="num_positives"):
        precision_recall([1, 0], 0)
    with pytest.raises(ValueError, match="method"):
        average_precision([1.0], [1.0], "13point")
    with pytest.raises(ValueError, match="same length"):
        average_precision([1.0, 0.5], [1.0], "all")


def test_precision_recall_skips_ignored_detections():
    # TP, (ignored), FP, TP with 2 positives -> like TP FP TP: p 1, .5, 2/3; r .5 .5 1
    p, r = precision_recall([1, 0, 0, 1], 2, ignored=[0, 1, 0, 0])
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 0.5, 1.0])


# ---------------------------------------------------------------------------
# Recall levels hit exactly (a level off by one ulp changes the answer)
# ---------------------------------------------------------------------------

def test_11_point_levels_are_reached_by_a_recall_equal_to_them():
    # precision 1 at recalls .1, .2, .3: the levels 0, .1, .2, .3 are reached (4 of 11),
    # .4 ... 1 are not -> AP = 4/11. With levels np.arange(0, 1.1, 0.1), 0.3 is
    # 0.30000000000000004 > 0.3 and is missed: 3/11.
    assert average_precision([1.0, 1.0, 1.0], [0.1, 0.2, 0.3], "11point") == pytest.approx(4 / 11)


def test_101_point_levels_are_reached_by_a_recall_equal_to_them():
    # precision 1 at recall .35: levels 0, .01, ..., .35 are reached -> 36/101. With
    # levels np.linspace(0, 1, 101) (pycocotools), level 35 is 0.35000000000000003: 35/101.
    assert average_precision([1.0], [0.35], "101point") == pytest.approx(36 / 101)
    # precision 1 at recall .7 (= 7/10), then .5 at recall 1: 71 levels at 1, 30 at .5
    assert average_precision([1.0, 0.5], [0.7, 1.0], "101point") == pytest.approx(
        (71 * 1 + 30 * 0.5) / 101)


def test_interpolated_precision_and_sampling_by_hand():
    # envelope from the right: max(.5, .8, .4) = .8, max(.8, .4) = .8, .4
    np.testing.assert_allclose(interpolated_precision([0.5, 0.8, 0.4]), [0.8, 0.8, 0.4])
    assert interpolated_precision([]).shape == (0,)
    # levels 0 and .25 -> first rank (recall .25) -> .8; .5 -> rank 2 -> .8;
    # .75 -> rank 3 (recall 1) -> .4; beyond nothing is missing here
    got = precision_at_recall_levels([0.5, 0.8, 0.4], [0.25, 0.5, 1.0], [0, 0.25, 0.5, 0.75])
    np.testing.assert_allclose(got, [0.8, 0.8, 0.8, 0.4])
    # a level above the last recall gets 0
    np.testing.assert_allclose(precision_at_recall_levels([1.0], [0.5], [0.5, 0.6]), [1, 0])


def test_all_point_area_counts_each_recall_step_once():
    # recall steps .5 (p 1), then stays at .5 (p .5, no new area), then +.5 at p 2/3
    # -> .5 * 1 + .5 * 2/3. Weighting by the rank instead of the recall step would give
    # another number (e.g. a plain mean of the envelope: (1 + 2/3 + 2/3) / 3).
    p, r = [1.0, 0.5, 2 / 3], [0.5, 0.5, 1.0]
    assert area_under_interpolated_curve(p, r) == pytest.approx(0.5 + 1 / 3)
    assert average_precision(p, r, "all") == pytest.approx(0.5 + 1 / 3)


def test_precision_recall_checks_its_input():
    with pytest.raises(ValueError, match="ignored has 1 entries but is_tp has 2"):
        precision_recall([1, 0], 2, ignored=[0])

