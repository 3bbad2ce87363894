"""The box kernels (pairwise IoU, greedy NMS) against their plain-NumPy twins.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1.
"""

import numpy as np
import pytest

from minidl.kernels.boxes import box_iou_kernel, box_iou_reference, nms_kernel, nms_reference
from tests.vision.test_boxes import random_boxes
from tests.vision.test_nms import clustered_boxes


@pytest.mark.kernel
def test_box_iou_kernel_matches_numpy_twin():
    b1, b2 = random_boxes(7), random_boxes(5)
    b2[0] = b1[0]  # identical pair
    b2[1] = [b1[1, 0], b1[1, 1], b1[1, 0], b1[1, 3]]  # zero width
    np.testing.assert_allclose(box_iou_kernel(b1, b2), box_iou_reference(b1, b2), atol=1e-14)
    assert box_iou_kernel(b1[:0], b2).shape == (0, 5)


@pytest.mark.kernel
def test_nms_kernel_matches_numpy_twin():
    rng = np.random.default_rng(7)
    boxes = clustered_boxes(30, rng)
    order = np.argsort(-rng.random(30), kind="stable").astype(np.int64)
    idxs = rng.integers(0, 2, 30).astype(np.int64)
    for threshold in (0.2, 0.5):
        np.testing.assert_array_equal(nms_kernel(boxes, idxs, order, threshold),
                                      nms_reference(boxes, idxs, order, threshold))
    empty = np.zeros(0, np.int64)
    assert nms_kernel(boxes[:0], empty, empty, 0.5).shape == (0,)
