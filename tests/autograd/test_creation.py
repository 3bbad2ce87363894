"""Tensor factories: PyTorch's names, dtypes and arguments, sharing or copying memory as
documented, random ones following the seed, and an error naming the factory and the
argument for every bad size, step or dtype."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor


# ---- from data ------------------------------------------------------------------------
def test_tensor_copies_and_as_tensor_from_numpy_share():
    array = np.arange(3.0)
    copied, shared, numpy_shared = md.tensor(array), md.as_tensor(array), md.from_numpy(array)
    array[0] = 10.0
    assert copied.data[0] == 0.0 and shared.data[0] == 10.0 and numpy_shared.data[0] == 10.0
    assert shared.dtype == numpy_shared.dtype == np.float64  # ndarrays keep their dtype
    t = md.tensor([1.0, 2.0])
    assert md.as_tensor(t) is t and md.as_tensor(t, dtype=np.float64).dtype == np.float64
    assert md.tensor(t).data is not t.data
    assert md.tensor([1, 2], dtype=md.float32).dtype == np.float32
    with pytest.raises(TypeError, match="from_numpy: expected an np.ndarray, got list"):
        md.from_numpy([1.0])
    assert md.is_tensor(t) and not md.is_tensor(array)


@pytest.mark.parametrize("data, what", [
    (["a", "b"], "strings"), ([object(), 1], "Python objects"), ([b"x"], "bytes"),
    (np.array([1 + 2j]), "complex numbers"), (np.array([{}, []], dtype=object), "Python objects"),
])
def test_tensor_of_strings_objects_or_complex_numbers_is_a_clear_error(data, what):
    with pytest.raises(TypeError, match=rf"tensor: a tensor holds bool, integer or "
                                        rf"floating-point numbers, got {what}"):
        md.tensor(data)
    with pytest.raises(TypeError, match="^Tensor: a tensor holds"):
        Tensor(data)


@pytest.mark.parametrize("data", [[[1, 2], [3]], [1, [2, 3]], [[1.0], [2.0, 3.0]]])
def test_ragged_lists_are_a_clear_error(data):
    with pytest.raises(ValueError, match="tensor: the nested lists have different lengths"):
        md.tensor(data)


# ---- filled ------------------------------------------------------------------------
def test_filled_factories_follow_pytorch_dtypes():
    assert md.zeros(2, 3).dtype == md.ones((2, 3)).dtype == md.empty(4).dtype == np.float32
    assert md.zeros(2, dtype=md.long).dtype == np.int64
    assert md.full((2,), 1.5).dtype == np.float32
    assert md.full((2,), 7).dtype == np.int64 and md.full((2,), True).dtype == np.bool_
    assert md.full(3, 2.0, dtype=md.float64).dtype == np.float64
    assert md.empty(2, 3).shape == (2, 3)
    np.testing.assert_array_equal(md.eye(2, 3).data, [[1, 0, 0], [0, 1, 0]])
    x = Tensor(np.ones((2, 2), dtype=np.float64))
    for like in (md.zeros_like(x), md.ones_like(x), md.full_like(x, 3.0), md.empty_like(x)):
        assert like.shape == (2, 2) and like.dtype == np.float64
    assert md.zeros_like(x, dtype=md.int64).dtype == np.int64
    np.testing.assert_array_equal(md.full_like(x, 3.0).data, 3.0)


def test_new_factories_take_the_tensors_dtype():
    x = Tensor(np.ones(3, dtype=np.float64))
    assert x.new_zeros(2, 2).dtype == np.float64 and x.new_zeros((2, 2)).shape == (2, 2)
    assert x.new_ones(3).dtype == np.float64
    assert x.new_full((2,), 4).dtype == np.float64 and x.new_full((2,), 4).tolist() == [4, 4]
    assert x.new_empty(5).shape == (5,)
    made = x.new_tensor([1, 2])
    assert made.dtype == np.float64 and made.tolist() == [1.0, 2.0]
    assert x.new_zeros(2, dtype=md.int64).dtype == np.int64
    assert x.new_zeros(2, dtype=np.dtype("float32")).dtype == np.float32  # np.dtype is falsy
    assert x.new_ones(2, requires_grad=True).requires_grad


def test_arange_and_linspace():
    assert md.arange(4).tolist() == [0, 1, 2, 3] and md.arange(4).dtype == np.int64
    assert md.arange(1, 2, 0.25).dtype == np.float32
    np.testing.assert_allclose(md.arange(1, 2, 0.25).data, [1.0, 1.25, 1.5, 1.75])
    assert md.arange(5, 0, -2).tolist() == [5, 3, 1]
    assert md.arange(3, 3).shape == (0,)
    lin = md.linspace(0, 1, 5)
    assert lin.dtype == np.float32 and lin.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert md.linspace(0, 1, 0).shape == (0,)


@pytest.mark.parametrize("call, error, message", [
    (lambda: md.randn(-1), ValueError, r"randn: size cannot be negative, got -1 in \(-1,\)"),
    (lambda: md.zeros(2.5), TypeError, r"zeros: size must be a sequence of ints, got 2\.5"),
    (lambda: md.ones((2, "3")), TypeError, "ones: size must be a sequence of ints, got '3'"),
    (lambda: md.empty(True), TypeError, "empty: size must be a sequence of ints, got True"),
    (lambda: md.full((2, -2), 1.0), ValueError, "full: size cannot be negative"),
    (lambda: md.rand(2, None), TypeError, "rand: size must be a sequence of ints, got None"),
    (lambda: md.eye(-3), ValueError, "eye: size cannot be negative"),
    (lambda: md.arange(0, 10, 0), ValueError, "arange: step must be nonzero, got 0"),
    (lambda: md.arange(0, 10, -1), ValueError, "arange: the step -1 goes away from end 10"),
    (lambda: md.arange(0, float("inf")), ValueError, "arange: end must be a finite number"),
    (lambda: md.arange("3"), ValueError, "arange: end must be a finite number, got '3'"),
    (lambda: md.linspace(0, 1, -1), ValueError, "linspace: size cannot be negative"),
    (lambda: md.linspace(0, 1, 3, dtype=md.int64), TypeError, "linspace: expected a floating"),
    (lambda: md.randn(2, dtype=md.long), TypeError, "randn: expected a floating-point dtype"),
    (lambda: md.randint(5, 5, (2,)), ValueError, "randint: expected low < high, got low=5"),
    (lambda: md.randint(3), TypeError, "randint: missing the size argument"),
    (lambda: md.zeros(2, device="cuda"), RuntimeError, "zeros: minidl runs on the CPU only"),
])
def test_bad_arguments_name_the_factory_and_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


# ---- random ------------------------------------------------------------------------
def test_random_factories_follow_the_seed_and_an_explicit_generator():
    md.manual_seed(4)
    a = [md.randn(3).data, md.rand(3).data, md.randint(0, 10, (3,)).data]
    md.manual_seed(4)
    b = [md.randn(3).data, md.rand(3).data, md.randint(0, 10, (3,)).data]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)
    g1, g2 = np.random.default_rng(9), np.random.default_rng(9)
    np.testing.assert_array_equal(md.randn(4, generator=g1).data, md.randn(4, generator=g2).data)


def test_randint_forms_and_like_factories():
    md.manual_seed(0)
    r = md.randint(10, (200,))  # randint(high, size), as PyTorch
    assert r.dtype == np.int64 and r.data.min() >= 0 and r.data.max() < 10
    r = md.randint(-3, 3, (2, 100))
    assert r.shape == (2, 100) and r.data.min() >= -3 and r.data.max() < 3
    x = Tensor(np.zeros((2, 3), dtype=np.float64))
    assert md.randn_like(x).shape == (2, 3) and md.randn_like(x).dtype == np.float64
    u = md.rand_like(x)
    assert u.dtype == np.float64 and u.data.min() >= 0 and u.data.max() < 1
    with pytest.raises(TypeError, match="randn: expected a floating-point dtype"):
        md.randn_like(Tensor(np.zeros(2, dtype=np.int64)))


def test_multinomial_frequencies_and_without_replacement():
    md.manual_seed(1)
    weights = md.tensor([1.0, 0.0, 3.0])  # probabilities 1/4, 0, 3/4
    draws = md.multinomial(weights, 20000, replacement=True)
    assert draws.dtype == np.int64 and draws.shape == (20000,)
    counts = np.bincount(draws.data, minlength=3) / 20000
    assert counts[1] == 0 and abs(counts[0] - 0.25) < 0.015
    rows = md.tensor([[0.2, 0.3, 0.5, 0.0], [1.0, 1.0, 1.0, 1.0]])
    picked = rows.multinomial(3)
    assert picked.shape == (2, 3)
    assert sorted(picked.data[0].tolist()) == [0, 1, 2]  # each category at most once
    assert len(set(picked.data[1].tolist())) == 3


@pytest.mark.parametrize("weights, n, replacement, message", [
    ([0.5, -0.1], 1, True, "non-negative"),
    ([0.0, 0.0], 1, True, "positive sum"),
    ([1.0, float("nan")], 1, True, "finite"),
    ([1.0, 1.0, 0.0], 3, False, "cannot draw 3 samples without replacement"),
    ([[[1.0]]], 1, True, "1-D or 2-D"),
])
def test_multinomial_errors(weights, n, replacement, message):
    with pytest.raises(ValueError, match=f"multinomial: .*{message}"):
        md.multinomial(md.tensor(weights), n, replacement)
