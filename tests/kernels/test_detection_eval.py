"""The COCO matching kernel against its pycocotools-style twin (rerun with the JIT off)."""

import numpy as np
import pytest

from minidl.kernels.detection_eval import coco_match, coco_match_reference


@pytest.mark.kernel
def test_coco_match_kernel_equals_its_twin():
    rng = np.random.default_rng(0)
    nd, ng = rng.integers(0, 5, 12), rng.integers(0, 4, 12)
    det_hi, gt_hi = np.cumsum(nd), np.cumsum(ng)
    det_lo, gt_lo = det_hi - nd, gt_hi - ng
    sizes = nd * ng
    iou_lo = (np.cumsum(sizes) - sizes).astype(np.int64)
    ious = np.round(rng.uniform(0, 1, sizes.sum()), 1)  # ties on purpose
    args = [ious, iou_lo, det_lo.astype(np.int64), det_hi.astype(np.int64),
            gt_lo.astype(np.int64), gt_hi.astype(np.int64),
            rng.uniform(0, 100, nd.sum()), rng.uniform(0, 100, ng.sum()),
            rng.uniform(size=ng.sum()) < 0.2, rng.uniform(size=ng.sum()) < 0.3,
            np.array([0.0, 0.0, 50.0]), np.array([1e10, 50.0, 1e10]), np.array([0.3, 0.5, 0.7])]
    outputs = []
    for fn in (coco_match, coco_match_reference):
        out = (np.zeros((3, 3, nd.sum()), bool), np.zeros((3, 3, nd.sum()), bool),
               np.zeros((3, ng.sum()), bool))
        fn(*args, *out)
        outputs.append(out)
    for got, want in zip(*outputs):
        np.testing.assert_array_equal(got, want)
