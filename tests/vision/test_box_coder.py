"""BoxCoder: the R-CNN box parametrization, its inverse, the weights and the clamp."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import Tensor
from minidl.testing import check_op
from minidl.vision.box_coder import BoxCoder


def random_boxes(n, rng, size=50.0):
    x1, y1 = rng.uniform(0, size, n), rng.uniform(0, size, n)
    w, h = rng.uniform(1, size, n), rng.uniform(1, size, n)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def test_encode_matches_the_paper_formula_by_hand():
    ref = np.array([[0.0, 0.0, 10.0, 20.0]])  # centre (5, 10), w 10, h 20
    gt = np.array([[2.0, 4.0, 22.0, 14.0]])  # centre (12, 9), w 20, h 10
    t = BoxCoder((10, 10, 5, 5)).encode_single(gt, ref)
    np.testing.assert_allclose(t, [[10 * 7 / 10, 10 * -1 / 20, 5 * math.log(2), 5 * math.log(0.5)]])
    t1 = BoxCoder((1, 1, 1, 1)).encode_single(gt, ref)
    np.testing.assert_allclose(t1, [[0.7, -0.05, math.log(2), math.log(0.5)]])


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 8), st.sampled_from([(1.0, 1.0, 1.0, 1.0), (10.0, 10.0, 5.0, 5.0)]))
def test_decode_inverts_encode(n, weights):
    rng = np.random.default_rng(n)
    gt, ref = random_boxes(n, rng), random_boxes(n, rng)
    coder = BoxCoder(weights)
    codes = coder.encode_single(gt, ref)
    np.testing.assert_allclose(coder.decode_single(codes, ref), gt.reshape(n, 4), atol=1e-9)
    np.testing.assert_allclose(coder.encode_single(coder.decode_single(codes, ref), ref), codes,
                               atol=1e-9)


def test_decode_clamps_log_scale_at_log_1000_over_16():
    ref = np.array([[0.0, 0.0, 16.0, 16.0]])
    huge = np.array([[0.0, 0.0, 50.0, 50.0]])
    out = BoxCoder().decode_single(huge, ref)
    np.testing.assert_allclose(out, [[8 - 500, 8 - 500, 8 + 500, 8 + 500]])  # 16 * 1000/16 wide


def test_asymmetric_weights_by_hand():
    # reference box: centre (5, 10), w 10, h 20; weights (w_x, w_y, w_w, w_h) = (10, 10, 5, 2)
    # codes (5, -4, 5 ln 2, -2 ln 2):
    #   x = 5/10 * 10 + 5 = 10          y = -4/10 * 20 + 10 = 2
    #   w = exp(5 ln 2 / 5) * 10 = 20   h = exp(-2 ln 2 / 2) * 20 = 10
    #   box = (10 - 10, 2 - 5, 10 + 10, 2 + 5) = (0, -3, 20, 7)
    # (dividing the height code by the width weight would give h = 20 * 2^-0.4 instead)
    ref = np.array([[0.0, 0.0, 10.0, 20.0]])
    codes = np.array([[5.0, -4.0, 5 * math.log(2), -2 * math.log(2)]])
    coder = BoxCoder((10, 10, 5, 2))
    np.testing.assert_allclose(coder.decode_single(codes, ref), [[0, -3, 20, 7]], atol=1e-12)
    np.testing.assert_allclose(coder.decode_single(Tensor(codes), ref).data, [[0, -3, 20, 7]],
                               atol=1e-12)
    np.testing.assert_allclose(coder.encode_single(np.array([[0.0, -3, 20, 7]]), ref), codes,
                               atol=1e-12)
    # four different weights (1, 2, 4, 8): every code is divided by its own weight
    #   x = 3/1 * 10 + 5 = 35, y = 4/2 * 20 + 10 = 50, w = e^(4 ln 3 / 4) * 10 = 30,
    #   h = e^(8 ln 2 / 8) * 20 = 40 -> (20, 30, 50, 70)
    coder = BoxCoder((1, 2, 4, 8))
    codes = np.array([[3.0, 4.0, 4 * math.log(3), 8 * math.log(2)]])
    np.testing.assert_allclose(coder.decode_single(codes, ref), [[20, 30, 50, 70]], atol=1e-12)
    np.testing.assert_allclose(coder.encode_single(np.array([[20.0, 30, 50, 70]]), ref), codes,
                               atol=1e-12)


def test_decode_clamps_tensor_codes_and_stops_their_gradient():
    # weights (10, 10, 5, 2): the clamp applies to t_w / 5 and t_h / 2 (after the weight).
    # t_w = 25 -> 5 > log(1000/16) = 4.135: clamped, w = 16 * 1000/16 = 1000
    # t_h = 1 -> 0.5 < clip: h = 16 e^0.5, and d h / d t_h = h / 2
    ref = np.array([[0.0, 0.0, 16.0, 16.0]])
    codes = Tensor(np.array([[0.0, 0.0, 25.0, 1.0]]), requires_grad=True)
    out = BoxCoder((10, 10, 5, 2)).decode_single(codes, ref)
    h = 16 * math.exp(0.5)
    np.testing.assert_allclose(out.data, [[8 - 500, 8 - h / 2, 8 + 500, 8 + h / 2]])
    # width + height: its gradient reaches t_h (h / 2) but not the clamped t_w (0)
    (out[:, 2] - out[:, 0] + out[:, 3] - out[:, 1]).sum().backward()
    np.testing.assert_allclose(codes.grad, [[0.0, 0.0, 0.0, h / 2]])
    # the ndarray path gives the same numbers
    np.testing.assert_allclose(BoxCoder((10, 10, 5, 2)).decode_single(codes.data, ref), out.data)


def test_decode_several_classes_and_lists():
    rng = np.random.default_rng(1)
    ref = random_boxes(3, rng)
    gts = [random_boxes(3, rng) for _ in range(2)]
    coder = BoxCoder((10, 10, 5, 5))
    codes = np.concatenate([coder.encode_single(g, ref) for g in gts], axis=1)  # [3, 8]
    out = coder.decode(codes, [ref[:1], ref[1:]])
    assert out.shape == (3, 2, 4)
    np.testing.assert_allclose(out[:, 0], gts[0], atol=1e-9)
    np.testing.assert_allclose(out[:, 1], gts[1], atol=1e-9)
    per_image = coder.encode([gts[0][:1], gts[0][1:]], [ref[:1], ref[1:]])
    assert [p.shape for p in per_image] == [(1, 4), (2, 4)]


def test_decode_is_differentiable_in_the_codes():
    rng = np.random.default_rng(2)
    ref = random_boxes(3, rng)
    codes = rng.uniform(-0.5, 0.5, (3, 8))
    coder = BoxCoder((10, 10, 5, 5))

    def reference(c):
        out = np.empty_like(c)
        w, h = ref[:, 2] - ref[:, 0], ref[:, 3] - ref[:, 1]
        cx, cy = ref[:, 0] + w / 2, ref[:, 1] + h / 2
        for k in range(2):
            x = c[:, 4 * k] / 10 * w + cx
            y = c[:, 4 * k + 1] / 10 * h + cy
            ww = np.exp(c[:, 4 * k + 2] / 5) * w
            hh = np.exp(c[:, 4 * k + 3] / 5) * h
            out[:, 4 * k:4 * k + 4] = np.stack([x - ww / 2, y - hh / 2, x + ww / 2, y + hh / 2], 1)
        return out

    check_op(lambda c: coder.decode_single(c, ref), reference, [codes])
    assert isinstance(coder.decode_single(Tensor(codes), ref), Tensor)


def test_empty_inputs():
    coder = BoxCoder()
    assert coder.encode_single(np.zeros((0, 4)), np.zeros((0, 4))).shape == (0, 4)
    assert coder.decode_single(np.zeros((0, 8)), np.zeros((0, 4))).shape == (0, 8)
    assert coder.decode(np.zeros((0, 4)), []).shape == (0, 1, 4)


def test_bad_input_errors():
    coder = BoxCoder()
    ok = np.array([[0.0, 0, 4, 4]])
    with pytest.raises(ValueError, match="BoxCoder.encode: reference_boxes row 0 .* zero width"):
        coder.encode_single(np.array([[1.0, 1, 1, 3]]), ok)
    with pytest.raises(ValueError, match="proposals row 0 .* x2 < x1"):
        coder.encode_single(ok, np.array([[4.0, 0, 0, 4]]))
    with pytest.raises(ValueError, match="must pair up"):
        coder.encode_single(np.concatenate([ok, ok]), ok)
    with pytest.raises(ValueError, match=r"rel_codes must have shape \[N, 4 \* C\]"):
        coder.decode_single(np.zeros((1, 5)), ok)
    with pytest.raises(ValueError, match="non-finite"):
        coder.decode_single(np.full((1, 4), np.inf), ok)
    with pytest.raises(ValueError, match="weights must have 4 entries"):
        BoxCoder((1, 1))
