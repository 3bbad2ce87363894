"""Reductions: every dim form (None, int, negative, tuple) with keepdim True/False,
forward against NumPy, float64 gradcheck, max/min indices and where their gradient goes,
logsumexp stability, and errors."""

import math

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops import reduce as R
from minidl.testing import check_op

RNG = np.random.default_rng(20)
SHAPE = (2, 3, 4)
DIMS = [None, 1, -1, (0, 2), (-1, 0), (0, 1, 2)]


def np_axis(dim):
    return dim  # NumPy takes the same None / int / tuple


def loop_sum(a, dim, keepdim):
    """Sum by explicit accumulation over the reduced axes (independent of np.sum)."""
    axes = range(a.ndim) if dim is None else [d % a.ndim for d in np.atleast_1d(dim)]
    out_shape = tuple(1 if i in axes else n for i, n in enumerate(a.shape))
    out = np.zeros(out_shape)
    for index in np.ndindex(a.shape):
        out[tuple(0 if i in axes else k for i, k in enumerate(index))] += a[index]
    if not keepdim:
        out = out.reshape(tuple(n for i, n in enumerate(a.shape) if i not in axes))
    return out


def count(shape, dim):
    axes = range(len(shape)) if dim is None else [d % len(shape) for d in np.atleast_1d(dim)]
    return math.prod(shape[i] for i in axes)


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_sum(dim, keepdim):
    check_op(lambda t: R.sum(t, dim, keepdim), lambda a: loop_sum(a, dim, keepdim),
             [RNG.standard_normal(SHAPE)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_mean(dim, keepdim):
    check_op(lambda t: R.mean(t, dim, keepdim),
             lambda a: loop_sum(a, dim, keepdim) / count(a.shape, dim),
             [RNG.standard_normal(SHAPE)])


def var_reference(a, dim, keepdim, ddof):
    n = count(a.shape, dim)
    mean = loop_sum(a, dim, True) / n
    return loop_sum((a - mean) ** 2, dim, keepdim) / (n - ddof)


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_var(dim, keepdim, unbiased):
    ddof = 1 if unbiased else 0
    check_op(lambda t: R.var(t, dim, unbiased, keepdim),
             lambda a: var_reference(a, dim, keepdim, ddof), [RNG.standard_normal(SHAPE)])
    a = RNG.standard_normal(SHAPE)  # and against NumPy's own np.var
    np.testing.assert_allclose(R.var(Tensor(a), dim, unbiased, keepdim).data,
                               np.var(a, axis=np_axis(dim), ddof=ddof, keepdims=keepdim))


@pytest.mark.parametrize("unbiased", [True, False])
@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_std(dim, keepdim, unbiased):
    ddof = 1 if unbiased else 0
    check_op(lambda t: R.std(t, dim, unbiased, keepdim),
             lambda a: np.sqrt(var_reference(a, dim, keepdim, ddof)), [RNG.standard_normal(SHAPE)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
def test_logsumexp(dim, keepdim):
    check_op(lambda t: R.logsumexp(t, dim, keepdim),
             lambda a: np.log(loop_sum(np.exp(a), dim, keepdim)), [RNG.standard_normal(SHAPE)])


def test_tensor_methods_reduce_the_same_way():
    a = RNG.standard_normal(SHAPE)
    t = Tensor(a)
    np.testing.assert_allclose(t.sum(1).data, loop_sum(a, 1, False))
    np.testing.assert_allclose(t.mean((0, 2), keepdim=True).data,
                               loop_sum(a, (0, 2), True) / 8)
    np.testing.assert_allclose(t.var(-1, unbiased=False).data, np.var(a, axis=-1))
    np.testing.assert_allclose(t.std().data, np.std(a, ddof=1))
    np.testing.assert_allclose(t.logsumexp(0).data, np.log(np.exp(a).sum(0)))


# ---- logsumexp stability ---------------------------------------------------------
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_logsumexp_of_huge_inputs_is_finite_and_right(dtype):
    a = np.array([[1000.0, 1000.0, 1000.0], [1000.0, 0.0, -1000.0]], dtype=dtype)
    x = Tensor(a, requires_grad=True)
    with np.errstate(over="raise"):
        out = R.logsumexp(x, dim=1)
        assert out.dtype == dtype
        np.testing.assert_allclose(out.data, [1000 + math.log(3), 1000.0], rtol=1e-6)
        out.sum().backward()
    np.testing.assert_allclose(x.grad, [[1 / 3] * 3, [1.0, 0.0, 0.0]], atol=1e-6)
    np.testing.assert_allclose(R.logsumexp(Tensor(-a), dim=1).data,
                               [-1000 + math.log(3), 1000.0], rtol=1e-6)


def test_logsumexp_with_some_minus_inf():
    x = Tensor(np.array([0.0, -np.inf, math.log(3.0)]), requires_grad=True)
    out = R.logsumexp(x)
    np.testing.assert_allclose(out.data, math.log(4.0))
    out.backward()
    np.testing.assert_allclose(x.grad, [0.25, 0.0, 0.75])


def test_logsumexp_when_all_inputs_are_minus_inf():
    x = Tensor(np.array([[-np.inf, -np.inf], [0.0, 0.0]]), requires_grad=True)
    out = R.logsumexp(x, dim=1)  # no warning (the test config turns them into errors)
    assert out.data[0] == -np.inf
    np.testing.assert_allclose(out.data[1], math.log(2.0))
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0.0, 0.0], [0.5, 0.5]])


# ---- max / min / amax / amin / argmax / argmin --------------------------------------
def distinct(*shape):
    """Values with no ties, so max/min have one winner and a gradient."""
    return RNG.permutation(np.prod(shape)).reshape(shape) * 0.37 - 3.0


@pytest.mark.parametrize("op, np_op", [(R.max, np.max), (R.min, np.min)])
def test_full_max_min(op, np_op):
    check_op(op, np_op, [distinct(*SHAPE)])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [0, 1, 2, -1, -3])
@pytest.mark.parametrize("op, np_op, np_arg", [(R.max, np.max, np.argmax),
                                               (R.min, np.min, np.argmin)])
def test_max_min_with_dim_give_values_and_indices(op, np_op, np_arg, dim, keepdim):
    a = distinct(*SHAPE)
    values, indices = op(Tensor(a), dim, keepdim)
    np.testing.assert_array_equal(values.data, np_op(a, axis=dim, keepdims=keepdim))
    np.testing.assert_array_equal(indices.data, np_arg(a, axis=dim, keepdims=keepdim))
    assert indices.dtype == np.int64 and not indices.requires_grad
    result = op(Tensor(a), dim, keepdim)
    assert result.values is result[0] and result.indices is result[1]
    check_op(lambda t: op(t, dim, keepdim).values,
             lambda a: np_op(a, axis=dim, keepdims=keepdim), [a])


def test_max_with_dim_sends_the_gradient_only_to_the_argmax_even_at_ties():
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 0.0, 2.0], [5.0, 4.0, 0.0]]), requires_grad=True)
    values, indices = R.max(x, dim=1)
    np.testing.assert_array_equal(indices.data, [1, 0, 0])  # the first one at ties
    (values * Tensor(np.array([1.0, 2.0, 3.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 1, 0], [2, 0, 0], [3, 0, 0]])
    y = Tensor(np.array([[1.0, 3.0], [1.0, 0.0]]), requires_grad=True)
    R.min(y, dim=0, keepdim=True).values.sum().backward()
    np.testing.assert_array_equal(y.grad, [[1, 0], [0, 1]])


def test_full_max_shares_the_gradient_among_ties():
    x = Tensor(np.array([1.0, 3.0, 3.0]), requires_grad=True)
    R.max(x).backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.5, 0.5])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", DIMS)
@pytest.mark.parametrize("op, np_op", [(R.amax, np.max), (R.amin, np.min)])
def test_amax_amin_with_any_dims(op, np_op, dim, keepdim):
    check_op(lambda t: op(t, dim, keepdim), lambda a: np_op(a, axis=dim, keepdims=keepdim),
             [distinct(*SHAPE)])


def test_amax_over_a_tuple_shares_ties():
    a = np.array([[[1.0, 4.0], [4.0, 0.0]], [[2.0, 2.0], [1.0, 2.0]]])
    x = Tensor(a, requires_grad=True)
    out = R.amax(x, dim=(1, 2))
    np.testing.assert_array_equal(out.data, [4.0, 2.0])
    out.sum().backward()
    np.testing.assert_allclose(x.grad, [[[0, 0.5], [0.5, 0]], [[1 / 3, 1 / 3], [0, 1 / 3]]])


@pytest.mark.parametrize("keepdim", [False, True])
@pytest.mark.parametrize("dim", [None, 0, 1, -1])
def test_argmax_argmin(dim, keepdim):
    a = distinct(3, 5)
    for op, ref in [(R.argmax, np.argmax), (R.argmin, np.argmin)]:
        got = op(Tensor(a), dim, keepdim)
        want = ref(a) if dim is None else ref(a, axis=dim, keepdims=keepdim)
        np.testing.assert_array_equal(got.data, want)
        assert got.dtype == np.int64 and not got.requires_grad
    assert Tensor(a).argmax(1).shape == (3,)


def test_zero_dim_tensors_reduce_to_themselves():
    x = Tensor(np.array(2.5), requires_grad=True)
    assert R.sum(x, dim=0).item() == 2.5 and R.mean(x, dim=-1).item() == 2.5
    values, indices = R.max(x, dim=0)
    assert values.item() == 2.5 and indices.item() == 0
    assert R.argmax(x, dim=0).item() == 0


def test_float32_reductions_stay_float32():
    x = Tensor(RNG.standard_normal(SHAPE).astype(np.float32), requires_grad=True)
    for out in (x.sum(1), x.mean(), x.var(0), x.std(), x.max(), x.max(1).values,
                x.logsumexp(-1), R.amin(x, (0, 1))):
        assert out.dtype == np.float32
        out.sum().backward()
        assert x.grad.dtype == np.float32
        x.grad = None


# ---- errors ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["sum", "mean", "var", "std", "logsumexp", "amax", "amin"])
def test_dim_out_of_range_names_the_op(name):
    op = getattr(R, name)
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match=rf"{name}: dim 2 is out of range"):
        op(x, 2)
    with pytest.raises(IndexError, match=rf"{name}: dim -3 is out of range"):
        op(x, (0, -3))


@pytest.mark.parametrize("name", ["max", "min", "argmax", "argmin"])
def test_dim_out_of_range_for_max_min_argmax_argmin(name):
    with pytest.raises(IndexError, match=rf"{name}: dim 5 is out of range"):
        getattr(R, name)(Tensor(np.ones((2, 3))), 5)


def test_repeated_dims():
    with pytest.raises(ValueError, match="sum: dim .* repeats an axis"):
        R.sum(Tensor(np.ones((2, 3))), (1, -1))


def test_max_with_a_tuple_dim_points_to_amax():
    with pytest.raises(TypeError, match="max: dim must be one int.*amax"):
        R.max(Tensor(np.ones((2, 3))), (0, 1))


def test_unbiased_variance_of_one_element():
    with pytest.raises(ValueError, match="var: the unbiased variance needs at least 2"):
        R.var(Tensor(np.ones((3, 1))), 1)


def test_max_of_an_empty_tensor():
    for op in (R.max, R.min, R.amax, R.argmax):
        with pytest.raises(ValueError, match="cannot reduce an empty tensor"):
            op(Tensor(np.ones((0, 3))))


def test_top_level_names():
    assert md.sum is R.sum and md.max is R.max and md.logsumexp is R.logsumexp


# ---- all, any, max(a, b) -----------------------------------------------------------
@pytest.mark.parametrize("dim, keepdim", [(None, False), (0, False), (1, True), ((0, 1), False)])
def test_all_any(dim, keepdim):
    a = np.array([[0.0, 1.0, 2.0], [3.0, 0.0, 4.0]])
    x = Tensor(a)
    axes = dim if dim is not None else (0, 1)
    want_all = np.apply_over_axes(lambda v, ax: np.logical_and.reduce(v != 0, ax, keepdims=True),
                                  a, axes)
    want_any = np.apply_over_axes(lambda v, ax: np.logical_or.reduce(v != 0, ax, keepdims=True),
                                  a, axes)
    if not keepdim:
        want_all, want_any = np.squeeze(want_all, axes), np.squeeze(want_any, axes)
    for got, want in [(x.all(dim, keepdim), want_all), (md.any(x, dim, keepdim), want_any)]:
        assert got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    assert bool((x > -1).all()) and not bool((x > 3).all()) and bool((x > 3).any())


def test_max_min_of_two_tensors_are_elementwise_as_pytorch():
    a, b = np.array([1.0, 5.0, 3.0]), np.array([4.0, 2.0, 3.5])
    np.testing.assert_array_equal(md.max(Tensor(a), Tensor(b)).data, [4.0, 5.0, 3.5])
    np.testing.assert_array_equal(Tensor(a).min(Tensor(b)).data, [1.0, 2.0, 3.0])
