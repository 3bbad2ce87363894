"""Box IoU with COCO's crowd rule and mask IoU, as the evaluators use them
(minidl/vision/metrics/iou.py)."""

import numpy as np
import pytest

from minidl.vision.metrics import mask_iou, pairwise_box_iou


def test_box_and_mask_iou_by_hand():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    # overlap 5 x 10 = 50; union 100 + 100 - 50 = 150 -> 1/3; disjoint -> 0
    np.testing.assert_allclose(pairwise_box_iou(a, b), [[1 / 3, 0.0]])
    m1 = np.zeros((1, 4, 4), bool)
    m1[0, :2, :2] = True  # 4 pixels
    m2 = np.zeros((2, 4, 4), bool)
    m2[0, :2, :] = True  # 8 pixels, 4 shared -> 4 / 8
    m2[1, 3, 3] = True   # disjoint
    np.testing.assert_allclose(mask_iou(m1, m2), [[0.5, 0.0]])
    np.testing.assert_allclose(mask_iou(m1.astype(np.float32) * 0.9, m2), [[0.5, 0.0]])
    with pytest.raises(ValueError, match="same size"):
        mask_iou(m1, np.zeros((1, 5, 4), bool))


def test_crowd_rule_divides_by_the_detection_area():
    # detection 10 x 10 = 100 px; crowd region 40 x 10 = 400 px; overlap 5 x 10 = 50.
    # crowd rule: 50 / 100 (the detection's own area). The other areas would give
    # 50 / 400 (the crowd's) or 50 / 450 (the union), so the three rules differ here.
    det = np.array([[0, 0, 10, 10]], float)
    crowd_region = np.array([[5, 0, 45, 10], [5, 0, 45, 10]], float)
    np.testing.assert_allclose(pairwise_box_iou(det, crowd_region, crowd=[True, False]),
                               [[0.5, 50 / 450]])
    # the same with masks: detection 4 px, crowd region 12 px, 2 shared -> 2 / 4
    m_det = np.zeros((1, 4, 4), bool)
    m_det[0, :2, :2] = True
    m_crowd = np.zeros((1, 4, 4), bool)
    m_crowd[0, :3, 1:] = True  # 3 x 3 = 9 px ... plus a row below
    m_crowd[0, 3, :3] = True   # 12 px in all; shared with m_det: (0, 1), (1, 1) = 2 px
    np.testing.assert_allclose(mask_iou(m_det, m_crowd, crowd=[True]), [[2 / 4]])
    np.testing.assert_allclose(mask_iou(m_det, m_crowd), [[2 / (4 + 12 - 2)]])
