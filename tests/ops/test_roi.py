"""roi_align and roi_pool: forward against naive pure-Python versions written here from
torchvision's documented semantics (its CPU kernels), float64 gradchecks (RoIAlign also in
the box coordinates), box formats, empty input and errors."""

import math

import numpy as np
import pytest

import minidl as md
import minidl.nn.functional as F
from minidl import Tensor, gradcheck

RNG = np.random.default_rng(11)


# ---- naive references (scalar Python loops, torchvision's rules) --------------------
def c_round(x):
    """C's round(): halves away from zero."""
    return int(math.floor(x + 0.5)) if x >= 0 else -int(math.floor(-x + 0.5))


def naive_roi_pool(x, rois, out_h, out_w, scale):
    n_rois, (_, channels, height, width) = len(rois), x.shape
    out = np.zeros((n_rois, channels, out_h, out_w))
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy, ex, ey = (c_round(v * scale) for v in (x1, y1, x2, y2))
        roi_w, roi_h = max(ex - sx + 1, 1), max(ey - sy + 1, 1)
        bin_w, bin_h = roi_w / out_w, roi_h / out_h
        for c in range(channels):
            for ph in range(out_h):
                for pw in range(out_w):
                    hs = min(max(math.floor(ph * bin_h) + sy, 0), height)
                    he = min(max(math.ceil((ph + 1) * bin_h) + sy, 0), height)
                    ws = min(max(math.floor(pw * bin_w) + sx, 0), width)
                    we = min(max(math.ceil((pw + 1) * bin_w) + sx, 0), width)
                    values = [x[int(b), c, h, w] for h in range(hs, he) for w in range(ws, we)]
                    out[k, c, ph, pw] = max(values) if values else 0.0
    return out


def naive_bilinear(plane, y, x):
    height, width = plane.shape
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return 0.0
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_high = y_low = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_high = x_low = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    return (hy * hx * plane[y_low, x_low] + hy * lx * plane[y_low, x_high]
            + ly * hx * plane[y_high, x_low] + ly * lx * plane[y_high, x_high])


def naive_roi_align(x, rois, out_h, out_w, scale, sampling_ratio, aligned):
    channels = x.shape[1]
    out = np.zeros((len(rois), channels, out_h, out_w))
    offset = 0.5 if aligned else 0.0
    for k, (b, x1, y1, x2, y2) in enumerate(rois):
        sx, sy = x1 * scale - offset, y1 * scale - offset
        roi_w, roi_h = x2 * scale - offset - sx, y2 * scale - offset - sy
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        gh = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        gw = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(gh * gw, 1)
        for c in range(channels):
            for ph in range(out_h):
                for pw in range(out_w):
                    total = 0.0
                    for iy in range(gh):
                        y = sy + ph * bin_h + (iy + 0.5) * bin_h / gh
                        for ix in range(gw):
                            xx = sx + pw * bin_w + (ix + 0.5) * bin_w / gw
                            total += naive_bilinear(x[int(b), c], y, xx)
                    out[k, c, ph, pw] = total / count
    return out


# ---- inputs -------------------------------------------------------------------------
def random_rois(n_rois, n_images, height, width, rng, margin=2.0, min_side=0.3):
    """Boxes reaching a little outside the image, so the border rules are exercised."""
    x1 = rng.uniform(-margin, width + margin - min_side, n_rois)
    y1 = rng.uniform(-margin, height + margin - min_side, n_rois)
    x2 = np.minimum(x1 + rng.uniform(min_side, width, n_rois), width + margin)
    y2 = np.minimum(y1 + rng.uniform(min_side, height, n_rois), height + margin)
    return np.stack([rng.integers(0, n_images, n_rois), x1, y1, x2, y2], axis=1)


def sample_coords(lo, hi, scale, out, sampling_ratio, aligned):
    """Sample positions along one axis (for choosing boxes away from non-smooth points)."""
    offset = 0.5 if aligned else 0.0
    start = lo * scale - offset
    length = hi * scale - offset - start
    if not aligned:
        length = max(length, 1.0)
    grid = sampling_ratio if sampling_ratio > 0 else math.ceil(length / out)
    f = (np.arange(out)[:, None] + (np.arange(grid)[None, :] + 0.5) / grid) / out
    return start + f * length, length


def smooth_rois(n_rois, n_images, height, width, out, scale, sampling_ratio, aligned, rng,
                gap=0.02):
    """Random RoIs whose samples are all >= ``gap`` from an integer (where the bilinear
    weights, the clamps and the border rules have kinks) and whose adaptive grid size
    and size clamp are not about to jump: there, RoIAlign is smooth in the box."""
    rows = []
    while len(rows) < n_rois:
        roi = random_rois(1, n_images, height, width, rng)[0]
        ok = True
        for lo, hi, size in ((roi[1], roi[3], out[1]), (roi[2], roi[4], out[0])):
            coords, length = sample_coords(lo, hi, scale, size, sampling_ratio, aligned)
            ok &= bool(np.all(np.abs(coords - np.round(coords)) > gap))
            raw = (hi - lo) * scale
            ok &= aligned or abs(raw - 1.0) > gap
            ok &= sampling_ratio > 0 or abs(length / size - round(length / size)) > gap
        if ok:
            rows.append(roi)
    return np.array(rows)


CONFIGS = [  # (spatial_scale, sampling_ratio, aligned)
    (1.0, -1, False), (1.0, 2, False), (0.5, -1, True), (0.5, 3, True), (1.0, 1, True),
]


# ---- forward against the naive references --------------------------------------------
@pytest.mark.parametrize("scale,sampling_ratio,aligned", CONFIGS)
def test_roi_align_matches_naive_torchvision_semantics(scale, sampling_ratio, aligned):
    x = RNG.standard_normal((2, 3, 7, 9))
    rois = random_rois(6, 2, 7 / scale, 9 / scale, RNG)
    rois[0, 1:] = [2.0, 2.0, 2.2, 2.1]  # a tiny RoI: size clamp (aligned=False)
    got = F.roi_align(Tensor(x), rois, (3, 2), scale, sampling_ratio, aligned)
    want = naive_roi_align(x, rois, 3, 2, scale, sampling_ratio, aligned)
    np.testing.assert_allclose(got.data, want, atol=1e-12)


@pytest.mark.parametrize("scale", [1.0, 0.5, 0.25])
def test_roi_pool_matches_naive_torchvision_semantics(scale):
    x = RNG.standard_normal((2, 3, 6, 8))
    rois = random_rois(7, 2, 6 / scale, 8 / scale, RNG)
    rois[0, 1:] = [1.0, 1.0, 3.0, 5.0] / np.array(scale)  # x1 * scale = 1.5 * ... halves
    rois[1, 1:] = np.array([0.5, 1.5, 2.5, 4.5]) / scale  # exact halves: round away from 0
    got = F.roi_pool(Tensor(x), rois, (2, 3), scale)
    np.testing.assert_allclose(got.data, naive_roi_pool(x, rois, 2, 3, scale))


def test_roi_pool_bins_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)
    out = F.roi_pool(Tensor(x), np.array([[0, 0.0, 0.0, 3.0, 3.0]]), 2)
    np.testing.assert_array_equal(out.data[0, 0], [[5, 7], [13, 15]])


def test_roi_align_by_hand():
    x = np.arange(16.0).reshape(1, 1, 4, 4)  # value = 4 y + x, linear: bilinear is exact
    out = F.roi_align(Tensor(x), np.array([[0, 0.0, 0.0, 2.0, 2.0]]), 1, 1.0, 1, aligned=False)
    np.testing.assert_allclose(out.data, [[[[4 * 1 + 1]]]])  # one sample at (1, 1)
    out = F.roi_align(Tensor(x), np.array([[0, 0.0, 0.0, 2.0, 2.0]]), 1, 1.0, 1, aligned=True)
    np.testing.assert_allclose(out.data, [[[[4 * 0.5 + 0.5]]]])  # shifted by half a pixel


# ---- gradients ---------------------------------------------------------------------
@pytest.mark.parametrize("scale,sampling_ratio,aligned", CONFIGS)
def test_roi_align_gradcheck_input_and_boxes(scale, sampling_ratio, aligned):
    rng = np.random.default_rng(int(scale * 10) + sampling_ratio + 7 * aligned)
    x = Tensor(rng.standard_normal((2, 2, 5, 6)), requires_grad=True)
    rois = smooth_rois(4, 2, 5 / scale, 6 / scale, (2, 2), scale, sampling_ratio, aligned, rng)
    per_image = [Tensor(rois[rois[:, 0] == i, 1:].copy(), requires_grad=True) for i in range(2)]

    def fn(x, b0, b1):
        return F.roi_align(x, [b0, b1], (2, 2), scale, sampling_ratio, aligned)

    assert gradcheck(fn, [x, *per_image], atol=1e-6, rtol=1e-4)


def test_roi_pool_gradcheck_input():
    x = Tensor(RNG.standard_normal((2, 2, 5, 6)), requires_grad=True)  # no ties in a bin
    rois = random_rois(4, 2, 10, 12, RNG)
    assert gradcheck(lambda t: F.roi_pool(t, rois, (2, 3), 0.5), [x])


def test_roi_pool_without_a_gradient_to_come_skips_the_argmax(monkeypatch):
    """Under no_grad, or for an input that needs no gradient, the kernel keeps only the maxima;
    the values are those of the run that records the argmax for a backward."""
    from minidl.ops import roi as roi_module

    x = RNG.standard_normal((2, 3, 6, 8))
    rois = random_rois(5, 2, 12, 16, RNG)
    asked = []
    kernel = roi_module.roi_pool_forward_kernel

    def recording(*args):
        asked.append(args[-1])
        return kernel(*args)

    monkeypatch.setattr(roi_module, "roi_pool_forward_kernel", recording)
    with_grad = F.roi_pool(Tensor(x, requires_grad=True), rois, (2, 3), 0.5)
    with md.no_grad():
        in_no_grad = F.roi_pool(Tensor(x, requires_grad=True), rois, (2, 3), 0.5)
    constant = F.roi_pool(Tensor(x), rois, (2, 3), 0.5)
    assert asked == [True, False, False]
    np.testing.assert_array_equal(in_no_grad.data, with_grad.data)
    np.testing.assert_array_equal(constant.data, with_grad.data)
    with_grad.sum().backward()  # the recorded argmax still reaches the backward


def test_roi_pool_gives_boxes_no_gradient():
    x = Tensor(RNG.standard_normal((1, 1, 4, 4)))
    boxes = Tensor(np.array([[0.2, 0.3, 2.5, 3.1]]), requires_grad=True)
    out = F.roi_pool(x, [boxes], 2)
    assert not out.requires_grad  # piecewise constant in the boxes: documented


# ---- formats, empty input, errors -----------------------------------------------------
def test_box_formats_agree():
    x = Tensor(RNG.standard_normal((2, 3, 6, 6)))
    rois = random_rois(5, 2, 6, 6, RNG)
    per_image = [rois[rois[:, 0] == i, 1:] for i in range(2)]
    order = np.argsort(rois[:, 0], kind="stable")
    for op in (F.roi_align, F.roi_pool):
        a = op(x, rois[order], 2).data
        np.testing.assert_array_equal(a, op(x, per_image, 2).data)
        np.testing.assert_array_equal(a, op(x, Tensor(rois[order]), 2).data)


def test_float32_stays_float32():
    x = Tensor(RNG.standard_normal((1, 2, 5, 5)).astype(np.float32), requires_grad=True)
    out = F.roi_align(x, np.array([[0, 0.5, 0.5, 3.5, 3.2]]), 2, sampling_ratio=2)
    assert out.dtype == np.float32
    out.sum().backward()
    assert x.grad.dtype == np.float32


def test_empty_boxes():
    x = Tensor(RNG.standard_normal((2, 3, 4, 4)), requires_grad=True)
    for op in (F.roi_align, F.roi_pool):
        out = op(x, [np.zeros((0, 4)), np.zeros((0, 4))], (2, 3))
        assert out.shape == (0, 3, 2, 3)
        out.sum().backward()
        np.testing.assert_array_equal(x.grad, 0)
        x.grad = None


@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
def test_bad_input_errors(op):
    name = op.__name__
    x = Tensor(np.zeros((2, 1, 4, 4)))
    with pytest.raises(ValueError, match=rf"{name}: RoI 1 has batch index 2.0, expected an integer "
                                         r"in \[0, 2\)"):
        op(x, np.array([[0, 0, 0, 1, 1], [2, 0, 0, 1, 1.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: RoI 0 has batch index 0.5"):
        op(x, np.array([[0.5, 0, 0, 1, 1.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: RoI 0 .* has x2 < x1 or y2 < y1"):
        op(x, np.array([[0, 3, 0, 1, 1.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: RoI 0 has a non-finite value"):
        op(x, np.array([[0, 0, np.nan, 1, 1.0]]), 2)
    with pytest.raises(ValueError, match=rf"{name}: boxes must be \[K, 5\] rows"):
        op(x, np.zeros((3, 4)), 2)
    with pytest.raises(ValueError, match=rf"{name}: boxes\[1\] must have shape \[K_i, 4\]"):
        op(x, [np.zeros((1, 4)), np.zeros((1, 5))], 2)
    with pytest.raises(ValueError, match=rf"{name}: input must have shape \[N, C, H, W\]"):
        op(Tensor(np.zeros((1, 4, 4))), np.zeros((0, 5)), 2)
    with pytest.raises(ValueError, match=rf"{name}: output_size must be >= 1, got \(0, 2\)"):
        op(x, np.zeros((0, 5)), (0, 2))
    with pytest.raises(TypeError, match=rf"{name}: output_size must be an int or a pair of ints"):
        op(x, np.zeros((0, 5)), (2.5, 2))
    with pytest.raises(ValueError, match=rf"{name}: spatial_scale must be a positive number"):
        op(x, np.zeros((0, 5)), 2, -1.0)


# ---- the dtype policy (minidl/ops/checks.py) ----------------------------------------------
@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
@pytest.mark.parametrize("dtype", [np.int64, np.bool_, np.float16])
def test_non_kernel_dtypes_get_the_policy_error_naming_the_op(op, dtype):
    x = Tensor(np.zeros((1, 1, 4, 4), dtype=dtype))
    rois = np.array([[0, 0.0, 0.0, 2.0, 2.0]])
    kind = "the numba kernels take float32 or float64" if dtype == np.float16 else \
        "expected a floating-point input"
    with pytest.raises(TypeError, match=rf"{op.__name__}: {kind} .*got {np.dtype(dtype)}"):
        op(x, rois, 2)


@pytest.mark.parametrize("op", [F.roi_align, F.roi_pool])
def test_non_native_byte_order_gives_the_native_result(op):
    native = RNG.standard_normal((2, 3, 6, 7)).astype(np.float32)
    swapped = native.astype(native.dtype.newbyteorder(">" if np.little_endian else "<"))
    rois = random_rois(4, 2, 6, 7, RNG)
    want = op(Tensor(native), rois, (2, 3), 1.0)
    x = Tensor(swapped, requires_grad=True)
    got = op(x, rois.astype(rois.dtype.newbyteorder(">" if np.little_endian else "<")), (2, 3))
    np.testing.assert_array_equal(got.data, want.data)
    assert got.dtype == np.float32
    got.sum().backward()
    x_native = Tensor(native, requires_grad=True)
    op(x_native, rois, (2, 3)).sum().backward()
    np.testing.assert_array_equal(x.grad, x_native.grad)
