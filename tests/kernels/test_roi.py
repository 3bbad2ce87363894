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


@pytest.mark.kernel
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_roi_pool_kernel_with_many_channels_and_ties(dtype):
    """The channels-last scan over more channels than one vector register holds (and a
    remainder); plateaus make ties, where the first maximum in row-major order wins."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((2, 19, 8, 9)).astype(dtype)
    x[:, :, 2:6, 3:7] = 1.5
    x[:, :, 5, 4] = 2.0
    rois = random_rois(9, 2, 16, 18, rng)
    out, argmax = K.roi_pool_forward_kernel(x, rois, 3, 2, 0.5)
    want_out, want_argmax = K.roi_pool_reference(x, rois, 3, 2, 0.5)
    np.testing.assert_array_equal(out, want_out)
    np.testing.assert_array_equal(argmax, want_argmax)
    assert out.dtype == dtype
    assert (out == 1.5).sum() > 10  # bins whose max is a tie on the plateau were scanned
    max_only, no_argmax = K.roi_pool_forward_kernel(x, rois, 3, 2, 0.5, False)
    np.testing.assert_array_equal(max_only, want_out)  # without the argmax: the same maxima
    assert no_argmax.size == 0
    grad = rng.standard_normal(out.shape).astype(dtype)
    np.testing.assert_allclose(K.roi_pool_backward_kernel(grad, argmax, rois, 2, 8, 9),
                               K.roi_pool_backward_reference(grad, argmax, rois, 2, 8, 9),
                               rtol=1e-6)


@pytest.mark.kernel
def test_roi_pool_kernel_keeps_torchvisions_nan_rule():
    """torchvision's CPU kernel updates its max with `if (v > max)`: a NaN is the bin's
    result only where it is the bin's first pixel; a later NaN never compares larger."""
    whole_map = np.array([[0, 0.0, 0.0, 3.0, 3.0]])  # one RoI over the 4x4 map, one bin
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    first = x.copy()
    first[0, 0, 0, 0] = np.nan
    out, argmax = K.roi_pool_forward_kernel(first, whole_map, 1, 1, 1.0)
    assert np.isnan(out[0, 0, 0, 0]) and argmax[0, 0, 0, 0] == 0
    later = x.copy()
    later[0, 0, 2, 2] = np.nan
    out, argmax = K.roi_pool_forward_kernel(later, whole_map, 1, 1, 1.0)
    assert out[0, 0, 0, 0] == 15.0 and argmax[0, 0, 0, 0] == 15
    for image, want in ((first, np.nan), (later, 15.0)):  # the max-only scan: the same rule
        out, _ = K.roi_pool_forward_kernel(image, whole_map, 1, 1, 1.0, False)
        np.testing.assert_array_equal(out[0, 0, 0, 0], want)


@pytest.mark.kernel
@pytest.mark.parametrize("aligned", [True, False])
def test_roi_align_kernels_with_many_channels_in_float32(aligned):
    """The channels-last loops over more channels than one vector register holds (and a
    remainder), in float32, with RoIs that overlap (the backward's shared pixels) and
    reach past the map's border."""
    rng = np.random.default_rng(6)
    x = rng.standard_normal((2, 19, 8, 9)).astype(np.float32)
    rois = random_rois(12, 2, 40, 44, rng).astype(np.float32)
    args = (0.25, 0, aligned)
    out = K.roi_align_forward_kernel(x, rois, 3, 2, *args)
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, K.roi_align_reference(x, rois, 3, 2, *args), rtol=1e-5,
                               atol=1e-6)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    want, _ = K.roi_align_backward_reference(grad, x, rois, *args)
    got = K.roi_align_backward_kernel(grad, rois, 2, 8, 9, *args)
    assert got.dtype == np.float32 and got.flags.c_contiguous
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
