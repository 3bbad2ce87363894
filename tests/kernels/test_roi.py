"""The RoIAlign / RoIPool kernels against their plain-NumPy twins (rerun with the JIT off)."""


import numpy as np
import pytest

from minidl.kernels import roi as K
from tests.ops.test_roi import CONFIGS, random_rois

RNG = np.random.default_rng(11)


# ---- kernels against their NumPy twins (rerun with the JIT off) ----------------------
@pytest.mark.kernel
@pytest.mark.parametrize("scale,sampling_ratio,aligned", CONFIGS[:3])
def test_roi_align_kernels_match_numpy_twins(scale, sampling_ratio, aligned):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2, 2, 5, 6))
    rois = random_rois(4, 2, 5 / scale, 6 / scale, rng)
    args = (scale, sampling_ratio, aligned)
    out = K.roi_align_forward_kernel(x, rois, 2, 3, *args)
    np.testing.assert_allclose(out, K.roi_align_reference(x, rois, 2, 3, *args), atol=1e-12)
    grad = rng.standard_normal(out.shape)
    grad_in, grad_rois = K.roi_align_backward_reference(grad, x, rois, *args)
    np.testing.assert_allclose(K.roi_align_backward_kernel(grad, rois, 2, 5, 6, *args), grad_in,
                               atol=1e-12)
    np.testing.assert_allclose(K.roi_align_backward_boxes_kernel(grad, x, rois, *args), grad_rois,
                               atol=1e-12)


@pytest.mark.kernel
def test_roi_pool_kernels_match_numpy_twins():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 2, 5, 6))
    rois = random_rois(5, 2, 10, 12, rng)
    out, argmax = K.roi_pool_forward_kernel(x, rois, 2, 3, 0.5)
    want_out, want_argmax = K.roi_pool_reference(x, rois, 2, 3, 0.5)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(argmax, want_argmax)
    grad = rng.standard_normal(out.shape)
    np.testing.assert_allclose(K.roi_pool_backward_kernel(grad, argmax, rois, 2, 5, 6),
                               K.roi_pool_backward_reference(grad, argmax, rois, 2, 5, 6),
                               atol=1e-12)
    assert K.round_half_away(2.5) == 3 and K.round_half_away(-2.5) == -3
