"""Pooling ops against direct loops (PyTorch's window rules), float64 gradcheck over every
element, indices, unpooling, and the errors on bad input."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.nn.functional as F
from minidl import Tensor
from minidl.ops.pool import _pairs, adaptive_taps, pool_taps
from minidl.testing import check_op
from tests.ops.test_conv import check_dtype_policy, check_empty_batch

RNG = np.random.default_rng(5)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def out_size(n, k, s, p, d, ceil_mode):
    """PyTorch's pooling_output_shape, written out."""
    numerator = n + 2 * p - d * (k - 1) - 1
    o = (math.ceil(numerator / s) if ceil_mode else numerator // s) + 1
    if ceil_mode and (o - 1) * s >= n + p:
        o -= 1
    return o


def max_pool_loop(x, k, s=None, p=0, d=1, ceil_mode=False):
    """Max and first argmax (row-major window order) of every window; padding never wins."""
    (kh, kw), (ph, pw), (dh, dw) = _pair(k), _pair(p), _pair(d)
    sh, sw = _pair(k if s is None else s)
    N, C, H, W = x.shape
    Ho, Wo = out_size(H, kh, sh, ph, dh, ceil_mode), out_size(W, kw, sw, pw, dw, ceil_mode)
    out, idx = np.zeros((N, C, Ho, Wo)), np.zeros((N, C, Ho, Wo), np.int64)
    for n in range(N):
        for c in range(C):
            for oy in range(Ho):
                for ox in range(Wo):
                    best, where = -np.inf, None
                    for i in range(kh):
                        for j in range(kw):
                            iy, ix = oy * sh - ph + i * dh, ox * sw - pw + j * dw
                            if 0 <= iy < H and 0 <= ix < W and (where is None or
                                                                 x[n, c, iy, ix] > best):
                                best, where = x[n, c, iy, ix], iy * W + ix
                    out[n, c, oy, ox], idx[n, c, oy, ox] = best, where
    return out, idx


def avg_pool_loop(x, k, s=None, p=0, ceil_mode=False, count_include_pad=True, divisor=None):
    """PyTorch's AvgPool2d CPU loop: the divisor counts the padding up to its edge."""
    (kh, kw), (ph, pw) = _pair(k), _pair(p)
    sh, sw = _pair(k if s is None else s)
    N, C, H, W = x.shape
    Ho, Wo = out_size(H, kh, sh, ph, 1, ceil_mode), out_size(W, kw, sw, pw, 1, ceil_mode)
    out = np.zeros((N, C, Ho, Wo))
    for oy in range(Ho):
        for ox in range(Wo):
            y0, x0 = oy * sh - ph, ox * sw - pw
            y1, x1 = min(y0 + kh, H + ph), min(x0 + kw, W + pw)
            pool_size = (y1 - y0) * (x1 - x0)
            y0, x0, y1, x1 = max(y0, 0), max(x0, 0), min(y1, H), min(x1, W)
            total = x[:, :, y0:y1, x0:x1].sum(axis=(2, 3))
            if divisor is not None:
                out[:, :, oy, ox] = total / divisor
            elif count_include_pad:
                out[:, :, oy, ox] = total / pool_size
            else:
                out[:, :, oy, ox] = total / ((y1 - y0) * (x1 - x0))
    return out


def adaptive_loop(x, size, reduce):
    N, C, H, W = x.shape
    Ho, Wo = _pair(size)
    out = np.zeros((N, C, Ho, Wo))
    for oy in range(Ho):
        y0, y1 = math.floor(oy * H / Ho), math.ceil((oy + 1) * H / Ho)
        for ox in range(Wo):
            x0, x1 = math.floor(ox * W / Wo), math.ceil((ox + 1) * W / Wo)
            out[:, :, oy, ox] = reduce(x[:, :, y0:y1, x0:x1], axis=(2, 3))
    return out


MAX_CASES = [  # x shape, kernel, stride, padding, dilation, ceil_mode
    ((2, 3, 6, 6), 2, None, 0, 1, False),        # 2x2 at stride 2: the unrolled kernel
    ((1, 2, 7, 5), 2, None, 0, 1, False),        # the same, odd sizes (last row unused)
    ((1, 2, 7, 5), 2, None, 0, 1, True),         # ceil_mode: a 1-pixel window, the general one
    ((1, 2, 7, 6), 3, 2, 1, 1, False),
    ((1, 2, 7, 6), 3, 2, 1, 1, True),
    ((2, 1, 6, 7), 3, 4, 1, 1, True),            # ceil_mode drops a window in the padding
    ((1, 2, 7, 7), (3, 2), (2, 1), (1, 0), (2, 3), False),
    ((1, 1, 5, 5), 2, 2, 1, 2, True),
]


@pytest.mark.parametrize("shape, k, s, p, d, ceil_mode", MAX_CASES)
def test_max_pool2d_matches_loop_gradcheck_and_indices(shape, k, s, p, d, ceil_mode):
    x = RNG.standard_normal(shape)
    check_op(lambda t: F.max_pool2d(t, k, s, p, d, ceil_mode),
             lambda a: max_pool_loop(a, k, s, p, d, ceil_mode)[0], [x])
    _, idx = F.max_pool2d(Tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    assert idx.dtype == np.int64
    np.testing.assert_array_equal(idx.data, max_pool_loop(x, k, s, p, d, ceil_mode)[1])


def test_2x2_windows_take_the_unrolled_kernel_only_where_it_applies():
    assert _pairs(pool_taps(6, 3, 2, 2, 0, 1)) and _pairs(pool_taps(7, 3, 2, 2, 0, 1))
    assert _pairs(adaptive_taps(8, 4))
    assert not _pairs(pool_taps(7, 4, 2, 2, 0, 1))  # ceil_mode: the last window is 1 pixel
    assert not _pairs(pool_taps(6, 4, 2, 2, 1, 1))  # padding
    assert not _pairs(pool_taps(6, 5, 2, 1, 0, 1))  # stride 1
    assert not _pairs(pool_taps(6, 3, 3, 2, 1, 1))  # 3-wide windows


def test_max_pool2d_small_example_and_indices_over_h_times_w():
    x = Tensor(np.arange(16.0).reshape(1, 1, 4, 4))
    y, idx = F.max_pool2d(x, 2, return_indices=True)
    np.testing.assert_array_equal(y.data[0, 0], [[5, 7], [13, 15]])
    np.testing.assert_array_equal(idx.data[0, 0], [[5, 7], [13, 15]])


def test_max_pool2d_gradient_of_a_pixel_shared_by_two_windows_adds_up():
    x = np.zeros((1, 1, 3, 3))
    x[0, 0, 1, 1] = 1.0  # the maximum of all four 2x2 windows (stride 1)
    t = Tensor(x, requires_grad=True)
    F.max_pool2d(t, 2, stride=1).sum().backward()
    assert t.grad[0, 0, 1, 1] == 4 and t.grad.sum() == 4


AVG_CASES = [  # x shape, kernel, stride, padding, ceil_mode, count_include_pad, divisor
    ((2, 3, 6, 6), 2, None, 0, False, True, None),
    ((1, 2, 7, 6), 3, 2, 1, False, True, None),
    ((1, 2, 7, 6), 3, 2, 1, False, False, None),
    ((1, 2, 7, 6), 3, 2, 1, True, True, None),   # windows cut at the padding's edge
    ((1, 2, 6, 7), 3, 2, 1, True, False, None),
    ((1, 1, 5, 6), (3, 2), (2, 1), (1, 1), False, True, 5),
]


@pytest.mark.parametrize("shape, k, s, p, ceil_mode, include_pad, divisor", AVG_CASES)
def test_avg_pool2d_matches_loop_and_gradcheck(shape, k, s, p, ceil_mode, include_pad,
                                               divisor):
    check_op(lambda t: F.avg_pool2d(t, k, s, p, ceil_mode, include_pad, divisor),
             lambda a: avg_pool_loop(a, k, s, p, ceil_mode, include_pad, divisor),
             [RNG.standard_normal(shape)])


def test_avg_pool2d_divisor_rules_on_a_corner():
    x = Tensor(np.ones((1, 1, 2, 2)))
    # window at the top-left corner covers 1 pixel of the input and 3 of padding
    assert F.avg_pool2d(x, 2, 1, 1, count_include_pad=True).data[0, 0, 0, 0] == 0.25
    assert F.avg_pool2d(x, 2, 1, 1, count_include_pad=False).data[0, 0, 0, 0] == 1.0


@pytest.mark.parametrize("shape, size", [((2, 3, 7, 5), (3, 4)), ((1, 2, 4, 4), 1),
                                         ((1, 1, 5, 7), (5, 7)), ((1, 2, 3, 5), (6, 2)),
                                         ((1, 1, 6, 4), (None, 3))])
def test_adaptive_pools_match_loops_and_gradcheck(shape, size):
    x = RNG.standard_normal(shape)
    full = tuple(n if s is None else s for s, n in zip(_pair(size), shape[2:]))
    check_op(lambda t: F.adaptive_avg_pool2d(t, size),
             lambda a: adaptive_loop(a, full, np.mean), [x])
    check_op(lambda t: F.adaptive_max_pool2d(t, size),
             lambda a: adaptive_loop(a, full, np.max), [x])


def test_global_average_pooling_is_the_spatial_mean():
    x = RNG.standard_normal((2, 3, 5, 4))
    y = F.adaptive_avg_pool2d(Tensor(x), 1)
    np.testing.assert_allclose(y.data, x.mean(axis=(2, 3), keepdims=True))


def test_adaptive_max_pool2d_indices_point_at_the_maxima():
    x = RNG.standard_normal((2, 3, 7, 5))
    y, idx = F.adaptive_max_pool2d(Tensor(x), (3, 2), return_indices=True)
    picked = np.take_along_axis(x.reshape(2, 3, -1), idx.data.reshape(2, 3, -1), axis=2)
    np.testing.assert_array_equal(picked.reshape(y.shape), y.data)


def unpool_loop(x, idx, out_hw):
    N, C = x.shape[:2]
    out = np.zeros((N, C, out_hw[0] * out_hw[1]))
    for n in range(N):
        for c in range(C):
            for k, i in enumerate(idx[n, c].reshape(-1)):
                out[n, c, i] = x[n, c].reshape(-1)[k]
    return out.reshape((N, C) + tuple(out_hw))


@pytest.mark.parametrize("shape, k, s, p, output_size", [
    ((2, 3, 6, 6), 2, None, 0, None), ((1, 2, 7, 5), 2, 2, 0, (7, 5)),
    ((1, 2, 6, 6), 3, 3, 1, (6, 6)), ((1, 1, 5, 5), 2, 2, 0, (1, 1, 5, 5))])
def test_max_unpool2d_puts_values_back_and_gradcheck(shape, k, s, p, output_size):
    x = RNG.standard_normal(shape)
    y, idx = F.max_pool2d(Tensor(x), k, s, p, return_indices=True)
    default = tuple((n - 1) * (k if s is None else s) - 2 * p + k for n in y.shape[2:])
    out_hw = default if output_size is None else tuple(output_size)[-2:]
    check_op(lambda t: F.max_unpool2d(t, idx, k, s, p, output_size),
             lambda a: unpool_loop(a, idx.data, out_hw), [y.data])


def test_unpool_of_pool_keeps_exactly_the_maxima():
    x = RNG.standard_normal((1, 2, 4, 6))
    y, idx = F.max_pool2d(Tensor(x), 2, return_indices=True)
    u = F.max_unpool2d(y, idx, 2).data
    kept = u != 0
    np.testing.assert_array_equal(u[kept], x[kept])
    assert kept.sum() == y.data.size


@pytest.mark.parametrize("call, match", [
    (lambda: F.max_pool2d(Tensor(np.zeros((3, 4, 4))), 2),
     r"max_pool2d: expected a 4-D input \[N, C, H, W\], got shape \(3, 4, 4\)"),
    (lambda: F.avg_pool2d(Tensor(np.zeros((4, 4))), 2), r"avg_pool2d: expected a 4-D input"),
    (lambda: F.adaptive_avg_pool2d(Tensor(np.zeros((1, 4, 4))), 2),
     r"adaptive_avg_pool2d: expected a 4-D input"),
    (lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, padding=2),
     r"max_pool2d: padding \(2, 2\) must be at most half the kernel size \(2, 2\)"),
    (lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 2, 2))), 3),
     r"max_pool2d: input \(1, 1, 2, 2\) is too small for kernel \(3, 3\)"),
    (lambda: F.max_pool2d(Tensor(np.zeros((1, 1, 1, 1))), 2, 1, 1, dilation=2),
     r"max_pool2d: with input \(1, 1, 1, 1\), kernel \(2, 2\), padding \(1, 1\) and "
     r"dilation \(2, 2\) a window holds only padding"),
    (lambda: F.avg_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 2, divisor_override=0),
     r"avg_pool2d: divisor_override must be a non-zero int"),
    (lambda: F.adaptive_max_pool2d(Tensor(np.zeros((1, 1, 4, 4))), 0),
     r"adaptive_max_pool2d: output_size must be positive"),
    (lambda: F.max_unpool2d(Tensor(np.zeros((1, 1, 2, 2))), np.zeros((1, 1, 2, 3), np.int64), 2),
     r"max_unpool2d: indices must be integers shaped like the input \(1, 1, 2, 2\)"),
    (lambda: F.max_unpool2d(Tensor(np.zeros((1, 1, 2, 2))), np.full((1, 1, 2, 2), 16), 2),
     r"max_unpool2d: indices must lie in \[0, 16\)"),
    (lambda: F.max_unpool2d(Tensor(np.zeros((1, 1, 2, 2))), np.zeros((1, 1, 2, 2), np.int64),
                            2, output_size=(7, 7)),
     r"max_unpool2d: output_size \(7, 7\) must be within the stride"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@settings(max_examples=60, deadline=None)
@given(h=st.integers(1, 7), w=st.integers(1, 7), k=st.integers(1, 4), s=st.integers(1, 4),
       p=st.integers(0, 2), d=st.integers(1, 3), ceil_mode=st.booleans(),
       include_pad=st.booleans(), seed=st.integers(0, 2**16))
def test_pools_agree_with_the_loops_on_random_geometry(h, w, k, s, p, d, ceil_mode, include_pad,
                                                       seed):
    """Any window the argument checks accept gives PyTorch's output (shape and values)."""
    x = np.random.default_rng(seed).standard_normal((1, 2, h, w))
    try:
        got, idx = F.max_pool2d(Tensor(x), k, s, p, d, ceil_mode, return_indices=True)
    except ValueError as error:  # as PyTorch: padding > k // 2 or an empty output
        all_padding = "holds only padding" in str(error)  # PyTorch would return -inf there
        assert p > k // 2 or all_padding or min(out_size(n, k, s, p, d, ceil_mode)
                                                for n in (h, w)) < 1
        return
    want, want_idx = max_pool_loop(x, k, s, p, d, ceil_mode)
    np.testing.assert_array_equal(got.data, want)
    np.testing.assert_array_equal(idx.data, want_idx)
    if min(out_size(n, k, s, p, 1, ceil_mode) for n in (h, w)) >= 1:
        got = F.avg_pool2d(Tensor(x), k, s, p, ceil_mode, include_pad).data
        np.testing.assert_allclose(got, avg_pool_loop(x, k, s, p, ceil_mode, include_pad))


# ---- the dtype policy and empty batches ----------------------------------------------------
POOL_OPS = {
    "max_pool2d": lambda x: F.max_pool2d(x, 2),
    "adaptive_max_pool2d": lambda x: F.adaptive_max_pool2d(x, (2, 3)),
    "avg_pool2d": lambda x: F.avg_pool2d(x, 2, padding=1),
    "adaptive_avg_pool2d": lambda x: F.adaptive_avg_pool2d(x, 1),
    "max_unpool2d": lambda x: F.max_unpool2d(x, Tensor(np.zeros(x.shape, np.int64)), 2),
}


@pytest.mark.parametrize("op", list(POOL_OPS))
def test_pool_ops_follow_the_dtype_policy(op):
    """Before the policy, avg_pool2d of int64 returned zeros and adaptive_avg_pool2d 0."""
    if op == "max_unpool2d":  # no numba kernel: float16 is computed as NumPy does
        x = RNG.integers(0, 3, (2, 3, 4, 6))
        with pytest.raises(TypeError, match=r"max_unpool2d: expected a floating-point input"):
            POOL_OPS[op](Tensor(x))
        return
    check_dtype_policy(op, POOL_OPS[op], RNG.integers(0, 3, (2, 3, 4, 6)))


@pytest.mark.parametrize("op", list(POOL_OPS))
def test_pool_ops_take_an_empty_batch(op):
    check_empty_batch(POOL_OPS[op], (2, 3, 4, 6))


@pytest.mark.parametrize("call, match", [
    (lambda x: F.max_pool2d(x, 2.0), r"max_pool2d: kernel_size must be an int or a pair"),
    (lambda x: F.avg_pool2d(x, 2, stride=1.5), r"avg_pool2d: stride must be an int or a pair"),
    (lambda x: F.adaptive_avg_pool2d(x, 2.5), r"adaptive_avg_pool2d: output_size must be an int"),
    (lambda x: F.adaptive_max_pool2d(x, (2, 1.0)), r"adaptive_max_pool2d: output_size must"),
    (lambda x: F.max_unpool2d(x, Tensor(np.zeros(x.shape, np.int64)), (2, 2.5)),
     r"max_unpool2d: kernel_size must be an int or a pair"),
])
def test_non_integer_sizes_name_the_op_and_the_argument(call, match):
    with pytest.raises(TypeError, match=match):
        call(Tensor(np.ones((1, 1, 4, 4))))
