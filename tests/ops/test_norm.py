"""batch_norm, layer_norm, group_norm, instance_norm: forward against the textbook formulas,
running statistics, float64 gradcheck over every element (input, weight and bias), errors."""

import numpy as np
import pytest

import minidl.nn.functional as F
from minidl import Tensor
from minidl.testing import check_op
from tests.ops.test_conv import check_dtype_policy, check_empty_batch

RNG = np.random.default_rng(21)
EPS = 1e-5


def standardize(x, axes, eps=EPS):
    mean = x.mean(axis=axes, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def channel(v, ndim):
    """[C] -> broadcastable against [N, C, *] of rank ndim."""
    return v.reshape((1, -1) + (1,) * (ndim - 2))


@pytest.mark.parametrize("shape", [(6, 3), (4, 3, 5), (3, 2, 3, 4)])
def test_batch_norm_training_matches_formula_and_gradcheck(shape):
    x = RNG.standard_normal(shape) * 2 + 1
    w, b = RNG.standard_normal(shape[1]), RNG.standard_normal(shape[1])
    axes = (0,) + tuple(range(2, len(shape)))

    def ref(x, w, b):
        return standardize(x, axes) * channel(w, x.ndim) + channel(b, x.ndim)

    check_op(lambda x, w, b: F.batch_norm(x, None, None, w, b, training=True), ref, [x, w, b])
    check_op(lambda x: F.batch_norm(x, None, None, training=True),
             lambda x: standardize(x, axes), [x])


@pytest.mark.parametrize("shape", [(5, 3), (3, 2, 3, 4)])
def test_batch_norm_eval_uses_running_stats_and_gradcheck(shape):
    C = shape[1]
    x = RNG.standard_normal(shape)
    rm, rv = RNG.standard_normal(C), RNG.uniform(0.5, 2, C)
    w, b = RNG.standard_normal(C), RNG.standard_normal(C)

    def ref(x, w, b):
        xhat = (x - channel(rm, x.ndim)) / np.sqrt(channel(rv, x.ndim) + EPS)
        return xhat * channel(w, x.ndim) + channel(b, x.ndim)

    check_op(lambda x, w, b: F.batch_norm(x, rm, rv, w, b, training=False), ref, [x, w, b])


def test_batch_norm_updates_running_buffers_in_place():
    x = RNG.standard_normal((4, 3, 2, 5)) * 3 + 2
    rm, rv = np.zeros(3, np.float32), np.ones(3, np.float32)
    rm_id, rv_id = id(rm), id(rv)
    F.batch_norm(Tensor(x.astype(np.float32)), rm, rv, training=True, momentum=0.1)
    n = 4 * 2 * 5
    mean, var = x.mean(axis=(0, 2, 3)), x.var(axis=(0, 2, 3))
    np.testing.assert_allclose(rm, 0.1 * mean, rtol=1e-5)
    np.testing.assert_allclose(rv, 0.9 + 0.1 * var * n / (n - 1), rtol=1e-5)  # unbiased
    assert id(rm) == rm_id and id(rv) == rv_id and rm.dtype == np.float32


def test_batch_norm_running_buffers_may_be_tensors():
    rm, rv = Tensor(np.zeros(2)), Tensor(np.ones(2))
    F.batch_norm(Tensor(RNG.standard_normal((5, 2))), rm, rv, training=True, momentum=1.0)
    assert np.all(rm.data != 0) and np.all(rv.data != 1)


def test_batch_norm_float32_stays_float32():
    x = Tensor(RNG.standard_normal((4, 3, 5, 5)).astype(np.float32), requires_grad=True)
    w = Tensor(np.ones(3, np.float32), requires_grad=True)
    y = F.batch_norm(x, None, None, w, None, training=True)
    (y * y).sum().backward()
    assert y.dtype == np.float32 and x.grad.dtype == np.float32 and w.grad.dtype == np.float32
    np.testing.assert_allclose(y.data.mean(axis=(0, 2, 3)), 0, atol=1e-5)


@pytest.mark.parametrize("shape, normalized", [((3, 4), (4,)), ((2, 3, 4), (3, 4)),
                                               ((2, 2, 3, 2), (2,))])
def test_layer_norm_matches_formula_and_gradcheck(shape, normalized):
    x = RNG.standard_normal(shape)
    w, b = RNG.standard_normal(normalized), RNG.standard_normal(normalized)
    axes = tuple(range(len(shape) - len(normalized), len(shape)))
    check_op(lambda x, w, b: F.layer_norm(x, normalized, w, b),
             lambda x, w, b: standardize(x, axes) * w + b, [x, w, b])
    check_op(lambda x: F.layer_norm(x, normalized), lambda x: standardize(x, axes), [x])


@pytest.mark.parametrize("shape, groups", [((2, 4, 3, 2), 2), ((2, 6, 5), 3), ((3, 4), 2),
                                           ((2, 3, 2, 3), 1), ((2, 3, 2, 3), 3)])
def test_group_norm_matches_formula_and_gradcheck(shape, groups):
    x = RNG.standard_normal(shape)
    C = shape[1]
    w, b = RNG.standard_normal(C), RNG.standard_normal(C)

    def ref(x, w, b):
        grouped = x.reshape((shape[0], groups, -1))
        xhat = standardize(grouped, (2,)).reshape(shape)
        return xhat * channel(w, x.ndim) + channel(b, x.ndim)

    check_op(lambda x, w, b: F.group_norm(x, groups, w, b), ref, [x, w, b])


def group_norm_composite(x, groups, w, b, eps=EPS):
    """Group norm written with minidl's primitives (reshape, mean, sqrt, ...): the readable
    reference the fused GroupNormFunction is held against."""
    N, C = x.shape[:2]
    grouped = x.reshape(N, groups, -1)
    mean = grouped.mean(dim=2, keepdim=True)
    var = ((grouped - mean) ** 2).mean(dim=2, keepdim=True)
    xhat = ((grouped - mean) / (var + eps).sqrt()).reshape(*x.shape)
    shape = (1, C) + (1,) * (x.ndim - 2)
    return xhat * w.reshape(*shape) + b.reshape(*shape)


@pytest.mark.parametrize("shape, groups", [((3, 6, 4, 5), 3), ((2, 4, 7), 4), ((2, 4), 1)])
def test_fused_group_norm_matches_the_composite_in_values_and_gradients(shape, groups):
    arrays = [RNG.standard_normal(shape) * 2 + 1, RNG.standard_normal(shape[1]),
              RNG.standard_normal(shape[1])]
    grad = RNG.standard_normal(shape)
    results = []
    for fn in (F.group_norm, group_norm_composite):
        x, w, b = (Tensor(a, requires_grad=True) for a in arrays)
        y = fn(x, groups, w, b)
        y.backward(grad)
        results.append([y.data, x.grad, w.grad, b.grad])
    for fused, composite in zip(*results):
        np.testing.assert_allclose(fused, composite, rtol=1e-10, atol=1e-12)


def test_group_norm_with_one_group_is_layer_norm_over_c_h_w():
    x = Tensor(RNG.standard_normal((2, 3, 4, 5)))
    np.testing.assert_allclose(F.group_norm(x, 1).data, F.layer_norm(x, (3, 4, 5)).data)


def test_group_norm_with_c_groups_is_instance_norm():
    x = RNG.standard_normal((2, 3, 4, 5))
    np.testing.assert_allclose(F.group_norm(Tensor(x), 3).data, standardize(x, (2, 3)))
    np.testing.assert_allclose(F.instance_norm(Tensor(x)).data, standardize(x, (2, 3)))


def test_instance_norm_gradcheck_and_running_stats():
    x = RNG.standard_normal((2, 3, 3, 4))
    w, b = RNG.standard_normal(3), RNG.standard_normal(3)
    check_op(lambda x, w, b: F.instance_norm(x, weight=w, bias=b),
             lambda x, w, b: standardize(x, (2, 3)) * channel(w, 4) + channel(b, 4), [x, w, b])
    rm, rv = np.zeros(3), np.ones(3)
    F.instance_norm(Tensor(x), rm, rv, momentum=0.5)
    np.testing.assert_allclose(rm, 0.5 * x.mean(axis=(2, 3)).mean(axis=0))
    np.testing.assert_allclose(rv, 0.5 + 0.5 * x.var(axis=(2, 3), ddof=1).mean(axis=0))
    y = F.instance_norm(Tensor(x), rm, rv, use_input_stats=False)
    np.testing.assert_allclose(y.data, (x - channel(rm, 4)) / np.sqrt(channel(rv, 4) + EPS))


def _t(*shape):
    return Tensor(RNG.standard_normal(shape))


@pytest.mark.parametrize("call, match", [
    (lambda: F.batch_norm(_t(4, 3, 2, 2), np.zeros(2), np.ones(3), training=True),
     r"batch_norm: running_mean must have shape \(3,\) for an input with 3 channels "
     r"\(input \(4, 3, 2, 2\)\), got \(2,\)"),
    (lambda: F.batch_norm(_t(4, 3), np.zeros(3), np.ones(4)),
     r"batch_norm: running_var must have shape \(3,\)"),
    (lambda: F.batch_norm(_t(4, 3), None, None, _t(2), training=True),
     r"batch_norm: weight must have shape \(3,\)"),
    (lambda: F.batch_norm(_t(4), None, None, training=True),
     r"batch_norm: expected input \[N, C\], \[N, C, L\] or \[N, C, H, W\], got shape \(4,\)"),
    (lambda: F.batch_norm(_t(1, 3), None, None, training=True),
     r"batch_norm: expected more than 1 value per channel when training"),
    (lambda: F.batch_norm(_t(4, 3), None, None, training=False),
     r"batch_norm: running_mean and running_var are needed when training=False"),
    (lambda: F.group_norm(_t(2, 6, 3), 4),
     r"group_norm: num_groups=4 must be a positive divisor of the 6 channels of input "
     r"\(2, 6, 3\)"),
    (lambda: F.group_norm(_t(2, 6, 3), 2, _t(3)), r"group_norm: weight must have shape \(6,\)"),
    (lambda: F.layer_norm(_t(2, 3, 4), (3,)),
     r"layer_norm: input \(2, 3, 4\) does not end with normalized_shape \(3,\)"),
    (lambda: F.layer_norm(_t(2, 3, 4), 4, _t(3)), r"layer_norm: weight must have shape \(4,\)"),
    (lambda: F.instance_norm(_t(2, 3)), r"instance_norm: expected input \[N, C, \*\]"),
])
def test_bad_input_raises_a_clear_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_bad_batch_norm_call_leaves_running_buffers_untouched():
    rm, rv = np.zeros(3), np.ones(3)
    with pytest.raises(ValueError):
        F.batch_norm(_t(4, 3), rm, rv, _t(2), training=True)
    assert np.all(rm == 0) and np.all(rv == 1)


# ---- the dtype policy and empty batches ----------------------------------------------------
C3 = np.zeros(3), np.ones(3)
NORM_OPS = {  # op name: (function of x, kernel-backed: float16 raises)
    "batch_norm": (lambda x: F.batch_norm(x, None, None, training=True), True),
    "group_norm": (lambda x: F.group_norm(x, 3, Tensor(np.ones(3)), Tensor(np.zeros(3))), True),
    "layer_norm": (lambda x: F.layer_norm(x, x.shape[1:]), False),
    "instance_norm": (lambda x: F.instance_norm(x), True),
}


@pytest.mark.parametrize("op", list(NORM_OPS))
def test_norms_follow_the_dtype_policy(op):
    fn, kernel_backed = NORM_OPS[op]
    x = RNG.integers(0, 5, (2, 3, 4, 5))
    if kernel_backed:
        check_dtype_policy(op, fn, x)
    else:  # NumPy computes float16 as it does
        with pytest.raises(TypeError, match=rf"{op}: expected a floating-point input"):
            fn(Tensor(x))


@pytest.mark.parametrize("fn", [
    lambda x: F.batch_norm(x, *C3, Tensor(np.ones(3)), Tensor(np.zeros(3)), training=False),
    lambda x: F.group_norm(x, 3, Tensor(np.ones(3)), Tensor(np.zeros(3))),
    lambda x: F.layer_norm(x, x.shape[1:]),
    lambda x: F.instance_norm(x, *C3),
], ids=["batch_norm_eval", "group_norm", "layer_norm", "instance_norm"])
def test_norms_take_an_empty_batch(fn):
    check_empty_batch(fn, (2, 3, 4, 5))


def test_instance_norm_of_an_empty_batch_leaves_the_running_buffers():
    rm, rv = np.zeros(3), np.ones(3)
    F.instance_norm(Tensor(np.zeros((0, 3, 4, 4))), rm, rv)
    np.testing.assert_array_equal(rm, 0)
    np.testing.assert_array_equal(rv, 1)
