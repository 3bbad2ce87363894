"""conv2d and conv_transpose2d: forward against direct loops, float64 gradcheck over every
element, adjointness, skipped gradients, dtypes and the errors on bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.nn.functional as F
from minidl import Tensor
from minidl.ops import conv as conv_ops
from minidl.testing import check_op

RNG = np.random.default_rng(11)


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def conv2d_loop(x, w, b=None, stride=1, padding=0, dilation=1, groups=1):
    """The definition: each output pixel is a dot product of its window with the kernel."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    N, C, H, W = x.shape
    Cout, Cg, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((N, Cout, Ho, Wo))
    per_group = Cout // groups
    for o in range(Cout):
        c0 = (o // per_group) * Cg
        for oy in range(Ho):
            for ox in range(Wo):
                window = xp[:, c0:c0 + Cg, oy * sh: oy * sh + dh * (kh - 1) + 1: dh,
                            ox * sw: ox * sw + dw * (kw - 1) + 1: dw]
                y[:, o, oy, ox] = np.einsum("ncij,cij->n", window, w[o])
        if b is not None:
            y[:, o] += b[o]
    return y


def conv_transpose2d_loop(x, w, b=None, stride=1, padding=0, output_padding=0, groups=1,
                          dilation=1):
    """The definition: each input pixel adds weight-times-value onto a strided output window."""
    (sh, sw), (ph, pw), (dh, dw) = _pair(stride), _pair(padding), _pair(dilation)
    oph, opw = _pair(output_padding)
    N, Cin, H, W = x.shape
    _, Cg_out, kh, kw = w.shape
    Cout = Cg_out * groups
    Ho = (H - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    Wo = (W - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    big = np.zeros((N, Cout, Ho + 2 * ph + dh * kh + sh, Wo + 2 * pw + dw * kw + sw))
    per_group = Cin // groups
    for c in range(Cin):
        o0 = (c // per_group) * Cg_out
        for iy in range(H):
            for ix in range(W):
                for i in range(kh):
                    for j in range(kw):
                        big[:, o0:o0 + Cg_out, iy * sh + i * dh, ix * sw + j * dw] += \
                            x[:, c, iy, ix][:, None] * w[c, :, i, j][None, :]
    y = big[:, :, ph: ph + Ho, pw: pw + Wo]
    if b is not None:
        y = y + b[None, :, None, None]
    return y


CONV_CASES = [  # x shape, w shape, stride, padding, dilation, groups, bias
    ((2, 3, 6, 5), (4, 3, 3, 3), 1, 1, 1, 1, True),
    ((1, 2, 7, 6), (3, 2, 3, 2), (2, 1), (1, 0), (1, 2), 1, False),
    ((2, 4, 5, 5), (6, 2, 3, 3), 2, 1, 1, 2, True),      # groups
    ((1, 3, 5, 4), (6, 1, 3, 3), 1, 1, 1, 3, True),      # depthwise, channel multiplier 2
    ((2, 3, 4, 4), (2, 3, 1, 1), 1, 0, 1, 1, True),      # 1x1: no im2col copy at all
    ((1, 2, 5, 5), (3, 2, 1, 1), 2, 0, 1, 1, True),      # 1x1 with stride: im2col again
    ((2, 4, 3, 3), (4, 2, 1, 1), 1, 0, 1, 2, False),     # 1x1 with groups
    ((1, 1, 3, 3), (2, 1, 5, 5), 1, 1, 1, 1, True),      # kernel = padded input
    ((1, 2, 6, 6), (2, 2, 2, 2), 3, 2, 2, 1, False),     # padding wider than the stride
]


@pytest.mark.parametrize("xs, ws, stride, padding, dilation, groups, bias", CONV_CASES)
def test_conv2d_matches_direct_loop_and_gradcheck(xs, ws, stride, padding, dilation, groups,
                                                  bias):
    x, w = RNG.standard_normal(xs), RNG.standard_normal(ws)
    arrays = [x, w] + ([RNG.standard_normal(ws[0])] if bias else [])

    def op(x, w, b=None):
        return F.conv2d(x, w, b, stride, padding, dilation, groups)

    def ref(x, w, b=None):
        return conv2d_loop(x, w, b, stride, padding, dilation, groups)

    check_op(op, ref, arrays)


TRANSPOSE_CASES = [  # x shape, w shape, stride, padding, output_padding, groups, dilation, bias
    ((2, 3, 3, 4), (3, 2, 3, 3), 2, 1, 1, 1, 1, True),
    ((1, 4, 3, 3), (4, 3, 2, 2), 2, 0, 0, 2, 1, True),    # groups: Cout = 6
    ((1, 2, 3, 3), (2, 2, 2, 2), 1, 0, 1, 1, 2, False),   # output_padding < dilation
    ((1, 2, 4, 3), (2, 1, 4, 4), (2, 1), (1, 2), (1, 0), 1, 1, True),
    ((2, 2, 2, 2), (2, 3, 1, 1), 1, 0, 0, 1, 1, True),    # 1x1
    ((1, 2, 3, 3), (2, 2, 1, 1), 1, 0, 1, 1, 2, True),    # 1x1 but a larger output grid
]


@pytest.mark.parametrize("xs, ws, stride, padding, output_padding, groups, dilation, bias",
                         TRANSPOSE_CASES)
def test_conv_transpose2d_matches_direct_loop_and_gradcheck(xs, ws, stride, padding,
                                                            output_padding, groups, dilation,
                                                            bias):
    x, w = RNG.standard_normal(xs), RNG.standard_normal(ws)
    arrays = [x, w] + ([RNG.standard_normal(ws[1] * groups)] if bias else [])

    def op(x, w, b=None):
        return F.conv_transpose2d(x, w, b, stride, padding, output_padding, groups, dilation)

    def ref(x, w, b=None):
        return conv_transpose2d_loop(x, w, b, stride, padding, output_padding, groups, dilation)

    check_op(op, ref, arrays)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 2), g=st.integers(1, 2), cin_g=st.integers(1, 2),
       cout_g=st.integers(1, 2), h=st.integers(1, 6), w=st.integers(1, 6),
       k=st.integers(1, 3), s=st.integers(1, 3), p=st.integers(0, 2), d=st.integers(1, 2),
       seed=st.integers(0, 2**16))
def test_conv_transpose2d_is_the_adjoint_of_conv2d(n, g, cin_g, cout_g, h, w, k, s, p, d, seed):
    """<conv2d(x, W), y> = <x, conv_transpose2d(y, W)> for every geometry that fits."""
    span = d * (k - 1) + 1
    if span > min(h, w) + 2 * p:
        return
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, g * cin_g, h, w))
    weight = rng.standard_normal((g * cout_g, cin_g, k, k))
    y = F.conv2d(Tensor(x), Tensor(weight), stride=s, padding=p, dilation=d, groups=g).data
    probe = rng.standard_normal(y.shape)
    # the output_padding that gives back x's size (always < stride)
    output_padding = tuple(n_in - ((n_out - 1) * s - 2 * p + d * (k - 1) + 1)
                           for n_in, n_out in zip((h, w), y.shape[2:]))
    back = F.conv_transpose2d(Tensor(probe), Tensor(weight), stride=s, padding=p,
                              output_padding=output_padding, groups=g, dilation=d).data
    assert back.shape == x.shape
    assert np.isclose(np.vdot(y, probe), np.vdot(x, back))


def test_conv2d_skips_the_input_gradient_when_the_input_needs_none(monkeypatch):
    x = Tensor(RNG.standard_normal((2, 3, 5, 5)))  # no requires_grad: e.g. the image batch
    w = Tensor(RNG.standard_normal((4, 3, 3, 3)), requires_grad=True)

    def fail(*args):
        raise AssertionError("the input gradient was computed")

    monkeypatch.setattr(conv_ops, "_correlate_adjoint", fail)
    F.conv2d(x, w, padding=1).sum().backward()
    assert w.grad is not None and x.grad is None


def test_conv_transpose2d_skips_the_weight_gradient_when_frozen(monkeypatch):
    x = Tensor(RNG.standard_normal((1, 3, 3, 3)), requires_grad=True)
    w = Tensor(RNG.standard_normal((3, 2, 2, 2)))  # frozen weight

    def fail(*args):
        raise AssertionError("the weight gradient was computed")

    monkeypatch.setattr(conv_ops, "_weight_grad", fail)
    F.conv_transpose2d(x, w, stride=2).sum().backward()
    assert x.grad is not None and w.grad is None


def test_float32_in_float32_out_and_grads_match_float64():
    x = RNG.standard_normal((3, 4, 6, 6))
    w = RNG.standard_normal((6, 2, 3, 3))
    b = RNG.standard_normal(6)
    results = []
    for dtype in (np.float32, np.float64):
        ts = [Tensor(a.astype(dtype), requires_grad=True) for a in (x, w, b)]
        y = F.conv2d(*ts, stride=2, padding=1, groups=2)
        assert y.dtype == dtype
        (y * y).sum().backward()
        assert all(t.grad.dtype == dtype for t in ts)
        results.append([y.data] + [t.grad for t in ts])
    for a32, a64 in zip(*results):
        np.testing.assert_allclose(a32, a64, rtol=1e-4, atol=1e-3)


def test_mixed_dtypes_compute_in_the_wider_one():
    x = Tensor(RNG.standard_normal((1, 2, 4, 4)))                       # float64
    w = Tensor(RNG.standard_normal((3, 2, 3, 3)).astype(np.float32))    # float32
    assert F.conv2d(x, w).dtype == np.float64


def test_batches_larger_than_one_chunk_agree_with_the_loop(monkeypatch):
    """The op im2cols a few images at a time; force tiny chunks and compare."""
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 64)
    x, w, b = RNG.standard_normal((5, 2, 5, 5)), RNG.standard_normal((3, 2, 3, 3)), \
        RNG.standard_normal(3)
    check_op(lambda x, w, b: F.conv2d(x, w, b, padding=1), lambda x, w, b:
             conv2d_loop(x, w, b, padding=1), [x, w, b])


@pytest.mark.parametrize("keep_bytes", [0, 1 << 30])
def test_with_and_without_the_kept_columns_agree_with_the_loop(monkeypatch, keep_bytes):
    """A small layer keeps its columns from forward for the weight gradient; a large one
    (here: every layer, with the threshold at 0) makes them again. Both are exact."""
    monkeypatch.setattr(conv_ops, "_KEEP_COLUMNS_BYTES", keep_bytes)
    monkeypatch.setattr(conv_ops, "_CHUNK_BYTES", 200)  # several chunks
    x, w, b = RNG.standard_normal((4, 2, 5, 5)), RNG.standard_normal((6, 1, 3, 3)), \
        RNG.standard_normal(6)
    check_op(lambda x, w, b: F.conv2d(x, w, b, stride=2, padding=1, groups=2),
             lambda x, w, b: conv2d_loop(x, w, b, stride=2, padding=1, groups=2), [x, w, b])


def test_a_small_layer_runs_im2col_once_per_step(monkeypatch):
    calls = []
    real = conv_ops.kernels.im2col

    def counting(*args):
        calls.append(1)
        return real(*args)

    monkeypatch.setattr(conv_ops.kernels, "im2col", counting)
    x = Tensor(RNG.standard_normal((3, 2, 6, 6)))  # an image batch: no input gradient
    w = Tensor(RNG.standard_normal((4, 2, 3, 3)), requires_grad=True)
    F.conv2d(x, w, padding=1).sum().backward()
    assert len(calls) == 1 and w.grad is not None
    monkeypatch.setattr(conv_ops, "_KEEP_COLUMNS_BYTES", 0)
    F.conv2d(x, w, padding=1).sum().backward()
    assert len(calls) == 3  # forward and weight gradient each make the columns


def test_pair_arguments_accept_ints_tuples_and_lists():
    x, w = Tensor(RNG.standard_normal((1, 1, 7, 7))), Tensor(RNG.standard_normal((1, 1, 3, 3)))
    a = F.conv2d(x, w, stride=2, padding=1)
    b = F.conv2d(x, w, stride=(2, 2), padding=[1, 1])
    np.testing.assert_array_equal(a.data, b.data)


# ---- bad input: clear errors naming the op and the shapes --------------------
def _t(*shape):
    return Tensor(np.zeros(shape))


@pytest.mark.parametrize("call, match", [
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(4, 2, 3, 3)),
     r"conv2d: weight \(4, 2, 3, 3\).*expects 2 input channels, but input \(1, 3, 5, 5\) has 3"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(6, 2, 3, 3), groups=3),
     r"conv2d: groups=3 must divide both the input channels \(4\)"),
    (lambda: F.conv2d(_t(1, 4, 5, 5), _t(5, 2, 3, 3), groups=2),
     r"conv2d: groups=2 must divide both .* output channels \(5\)"),
    (lambda: F.conv2d(_t(1, 1, 3, 3), _t(1, 1, 5, 5)),
     r"conv2d: the kernel 5x5 .* larger than the padded input 3x3 \(input \(1, 1, 3, 3\)"),
    (lambda: F.conv2d(_t(1, 1, 5, 5), _t(1, 1, 3, 3), dilation=3),
     r"conv2d: the kernel 3x3 \(spanning 7x7"),
    (lambda: F.conv2d(_t(3, 5, 5), _t(1, 3, 3, 3)),
     r"conv2d: expected a 4-D input \[N, C, H, W\], got shape \(3, 5, 5\)"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(3, 3, 3)), r"conv2d: expected a 4-D weight"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(2, 3, 3, 3), _t(3)),
     r"conv2d: bias must have shape \(2,\), got \(3,\)"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(2, 3, 3, 3), stride=0), r"conv2d: stride must be >= 1"),
    (lambda: F.conv2d(_t(1, 3, 5, 5), _t(2, 3, 3, 3), padding=(1, 2, 3)),
     r"conv2d: padding must be an int or a pair"),
    (lambda: F.conv_transpose2d(_t(1, 2, 3, 3), _t(2, 2, 3, 3), stride=2, output_padding=2),
     r"conv_transpose2d: output_padding \(2, 2\) must be smaller than either the stride"),
    (lambda: F.conv_transpose2d(_t(1, 3, 3, 3), _t(2, 2, 3, 3)),
     r"conv_transpose2d: weight \(2, 2, 3, 3\).*expects 2 input channels, but input .* has 3"),
    (lambda: F.conv_transpose2d(_t(2, 3, 3), _t(2, 2, 3, 3)),
     r"conv_transpose2d: expected a 4-D input"),
    (lambda: F.conv_transpose2d(_t(1, 2, 1, 1), _t(2, 2, 1, 1), padding=1),
     r"conv_transpose2d: the output would be -1x-1"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


# ---- the dtype policy and empty batches (shared with the pool, upsample and norm tests) -----
def check_dtype_policy(op, fn, x):
    """``fn`` (Tensor -> Tensor) follows minidl/ops/checks.py: integer and bool inputs raise a
    TypeError naming ``op``; float16 raises naming ``op`` and float16; float32 in the
    non-native byte order gives the native result."""
    for dtype in (np.int64, np.bool_):
        with pytest.raises(TypeError, match=rf"{op}: expected a floating-point input.*got "
                                            rf"{np.dtype(dtype)}"):
            fn(Tensor(x.astype(dtype)))
    with pytest.raises(TypeError, match=rf"{op}: .*got float16"):
        fn(Tensor(x.astype(np.float16)))
    native = fn(Tensor(x.astype(np.float32)))
    swapped = fn(Tensor(x.astype(np.dtype(np.float32).newbyteorder())))
    assert swapped.data.dtype == native.data.dtype  # native order out
    np.testing.assert_array_equal(swapped.data, native.data)


def check_empty_batch(fn, shape):
    """``fn`` on a batch of N = 0 samples [0, *shape[1:]]: an empty output shaped like the
    N = 1 output, and an empty input gradient from backward."""
    one = fn(Tensor(RNG.standard_normal((1,) + shape[1:])))
    x = Tensor(np.zeros((0,) + shape[1:]), requires_grad=True)
    y = fn(x)
    assert y.shape == (0,) + one.shape[1:]
    y.sum().backward()
    assert x.grad.shape == x.shape


CONV_OPS = {
    "conv2d": lambda x: F.conv2d(x, Tensor(np.ones((4, 3, 3, 3), x.dtype)), padding=1),
    "conv_transpose2d": lambda x: F.conv_transpose2d(x, Tensor(np.ones((3, 4, 2, 2), x.dtype)),
                                                     stride=2),
}


@pytest.mark.parametrize("op", list(CONV_OPS))
def test_conv_ops_follow_the_dtype_policy(op):
    check_dtype_policy(op, CONV_OPS[op], RNG.integers(0, 3, (2, 3, 4, 5)))


@pytest.mark.parametrize("op", list(CONV_OPS))
def test_conv_ops_take_an_empty_batch(op):
    check_empty_batch(CONV_OPS[op], (2, 3, 4, 5))


@pytest.mark.parametrize("kwargs, name", [
    (dict(stride=1.5), "stride"), (dict(stride=True), "stride"), (dict(padding=0.5), "padding"),
    (dict(dilation="2"), "dilation"), (dict(stride=(1, 2.0)), "stride")])
def test_non_integer_window_arguments_name_the_op_and_the_argument(kwargs, name):
    x, w = Tensor(np.ones((1, 1, 5, 5))), Tensor(np.ones((1, 1, 3, 3)))
    with pytest.raises(TypeError, match=rf"conv2d: {name} must be an int or a pair of ints, "
                                        rf"got .*\("):
        F.conv2d(x, w, **kwargs)
    with pytest.raises(TypeError, match=rf"conv_transpose2d: {name} must be an int"):
        F.conv_transpose2d(x, w, **kwargs)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("kernel_size", [1, 3])  # 1: the pointwise path without im2col
def test_conv_gradients_reach_the_leaves_without_a_copy(monkeypatch, transposed, kernel_size):
    """The input, weight and bias gradients are arrays made for them (the weight's in its own
    shape, not a reshaped view), so the engine stores them as .grad without copying."""
    from minidl.autograd import engine

    copies = []
    monkeypatch.setattr(engine, "owned_copy", lambda g: copies.append(g.shape) or g.copy())
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((2, 4, 5, 5)), requires_grad=True)
    # conv2d's weight is [out, in, k, k], conv_transpose2d's [in, out, k, k]
    w_shape = (4, 3) if transposed else (3, 4)
    w = Tensor(rng.standard_normal(w_shape + (kernel_size, kernel_size)), requires_grad=True)
    b = Tensor(rng.standard_normal(3), requires_grad=True)
    (F.conv_transpose2d if transposed else F.conv2d)(x, w, b).sum().backward()
    assert copies == []
    assert x.grad.shape == x.shape and w.grad.shape == w.shape and b.grad.shape == (3,)
