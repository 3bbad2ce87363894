"""Activations and softmax: forward against closed formulas, float64 gradcheck,
stability at large inputs, and errors."""

import math

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops import activation as A
from minidl.testing import check_op

RNG = np.random.default_rng(50)


def away_from_zero(*shape, gap=0.1):
    a = RNG.standard_normal(shape)
    return np.where(np.abs(a) < gap, np.sign(a + 1e-12) * (gap + 0.2), a)


def test_relu():
    check_op(A.relu, lambda a: (a + np.abs(a)) / 2, [away_from_zero(3, 4)])


def test_relu_at_minus_infinity_is_zero():
    np.testing.assert_array_equal(A.relu(Tensor([-np.inf, np.inf, -1.0])).data, [0, np.inf, 0])


@pytest.mark.parametrize("slope", [0.01, 0.2])
def test_leaky_relu(slope):
    check_op(lambda t: A.leaky_relu(t, slope), lambda a: np.where(a > 0, a, slope * a),
             [away_from_zero(3, 4)])


@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_elu(alpha):
    check_op(lambda t: A.elu(t, alpha), lambda a: np.where(a > 0, a, alpha * (np.exp(a) - 1)),
             [away_from_zero(3, 4)])


def test_sigmoid():
    check_op(A.sigmoid, lambda a: 1 / (1 + np.exp(-a)), [3 * RNG.standard_normal((3, 4))])


def test_tanh():
    check_op(A.tanh, lambda a: (np.exp(a) - np.exp(-a)) / (np.exp(a) + np.exp(-a)),
             [RNG.standard_normal((3, 4))])


def test_sigmoid_and_tanh_are_finite_and_right_at_plus_minus_1000_in_float32():
    x = Tensor(np.array([-1000.0, -30.0, 0.0, 30.0, 1000.0], dtype=np.float32),
               requires_grad=True)
    with np.errstate(over="raise", invalid="raise", divide="raise"):  # underflow is fine
        s = A.sigmoid(x)
        assert s.dtype == np.float32
        np.testing.assert_allclose(s.data, [0.0, math.exp(-30), 0.5, 1.0, 1.0], rtol=1e-6,
                                   atol=1e-30)
        s.sum().backward()
    assert np.isfinite(x.grad).all() and x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [0.0, math.exp(-30), 0.25, 0.0, 0.0], atol=1e-12)
    t = A.tanh(x)
    np.testing.assert_allclose(t.data, [-1.0, -1.0, 0.0, 1.0, 1.0])


def softmax_reference(a, dim):
    e = np.exp(a)
    return e / e.sum(axis=dim, keepdims=True)


@pytest.mark.parametrize("dim", [0, 1, -1])
def test_softmax(dim):
    check_op(lambda t: A.softmax(t, dim), lambda a: softmax_reference(a, dim),
             [RNG.standard_normal((3, 4))])


@pytest.mark.parametrize("dim", [0, 2, -2])
def test_log_softmax(dim):
    check_op(lambda t: A.log_softmax(t, dim), lambda a: np.log(softmax_reference(a, dim)),
             [RNG.standard_normal((2, 3, 4))])


def test_softmax_and_log_softmax_are_stable_at_large_inputs():
    a = np.array([[1000.0, 1001.0, 1002.0], [-1000.0, 0.0, 1000.0]], dtype=np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        ls = A.log_softmax(Tensor(a), dim=1)
        s = A.softmax(Tensor(a), dim=1)
    log_norm = math.log(1 + math.exp(-1) + math.exp(-2))
    np.testing.assert_allclose(ls.data[0], [-2 - log_norm, -1 - log_norm, -log_norm], rtol=1e-5)
    np.testing.assert_allclose(ls.data[1], [-2000.0, -1000.0, 0.0], rtol=1e-6)
    np.testing.assert_allclose(s.data[0], np.exp([-2 - log_norm, -1 - log_norm, -log_norm]),
                               rtol=1e-5)
    np.testing.assert_allclose(s.data[1], [0.0, 0.0, 1.0])
    assert ls.dtype == np.float32 and s.dtype == np.float32


def test_softmax_rows_sum_to_one_and_gradient_of_the_sum_is_zero():
    x = Tensor(RNG.standard_normal((4, 5)), requires_grad=True)
    s = A.softmax(x, dim=1)
    np.testing.assert_allclose(s.data.sum(axis=1), 1.0)
    s.sum().backward()
    np.testing.assert_allclose(x.grad, 0.0, atol=1e-12)


def test_gelu_against_the_tanh_formula():
    def ref(a):
        c = math.sqrt(2 / math.pi)
        u = c * (a + 0.044715 * a**3)
        return 0.5 * a * (1 + (np.exp(u) - np.exp(-u)) / (np.exp(u) + np.exp(-u)))

    check_op(A.gelu, ref, [2 * RNG.standard_normal((3, 4))])


def test_methods_and_functional_names():
    a = RNG.standard_normal((2, 3))
    x = Tensor(a)
    np.testing.assert_allclose(x.relu().data, np.maximum(a, 0))
    np.testing.assert_allclose(x.sigmoid().data, 1 / (1 + np.exp(-a)))
    np.testing.assert_allclose(x.tanh().data, np.tanh(a))
    np.testing.assert_allclose(x.softmax(1).data, softmax_reference(a, 1))
    np.testing.assert_allclose(x.log_softmax(0).data, np.log(softmax_reference(a, 0)))
    assert md.relu is A.relu and md.softmax is A.softmax


def test_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="softmax: dim 2 is out of range"):
        A.softmax(x, 2)
    with pytest.raises(IndexError, match="log_softmax: dim -3 is out of range"):
        A.log_softmax(x, -3)
    with pytest.raises(ValueError, match="gelu: only approximate='tanh'"):
        A.gelu(x, approximate="erf")
