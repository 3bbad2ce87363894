"""Tensor: dtype rules, properties, every Python operator (reflected too), comparisons, repr."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor

RNG = np.random.default_rng(1)


# ---- construction ------------------------------------------------------------
@pytest.mark.parametrize("data", [1.5, [1.0, 2.0], [[1.0], [2.5]]])
def test_python_floats_become_float32(data):
    t = Tensor(data)
    assert t.dtype == np.float32
    np.testing.assert_array_equal(t.data, np.array(data, dtype=np.float32))


@pytest.mark.parametrize("data", [3, [1, 2], [[1, 2, 3]]])
def test_python_ints_become_int64(data):
    assert Tensor(data).dtype == np.int64


def test_python_bools_stay_bool():
    assert Tensor([True, False]).dtype == np.bool_


@pytest.mark.parametrize("dtype", [np.float64, np.float16, np.float32, np.int32, np.bool_])
def test_ndarrays_keep_their_dtype_and_memory(dtype):
    array = np.zeros((2, 3), dtype=dtype)
    t = Tensor(array)
    assert t.dtype == dtype
    assert t.data is array  # as torch.from_numpy: shared, not copied


@pytest.mark.parametrize("value", [np.float64(1.5), np.float32(1.5), np.int32(3), np.float16(2)])
def test_numpy_scalars_keep_their_dtype(value):
    t = Tensor(value)
    assert t.dtype == value.dtype and t.shape == ()


def test_dtype_argument_converts():
    assert Tensor([1, 2], dtype=np.float32).dtype == np.float32
    assert Tensor(np.ones(2), dtype=np.float32).dtype == np.float32
    assert Tensor([1.0], dtype=np.float64).dtype == np.float64


def test_tensor_factory_copies():
    array = np.ones(3)
    t = md.tensor(array)
    assert t.data is not array and t.dtype == np.float64
    array[0] = 5
    assert t.data[0] == 1


def test_creation_helpers_default_to_float32():
    for t in (md.zeros(2, 3), md.ones((2, 3)), md.randn(2, 3), md.rand(4), md.full((2,), 1.5),
              md.eye(3), md.arange(0.0, 1.0, 0.25)):
        assert t.dtype == np.float32
    assert md.arange(4).dtype == np.int64
    np.testing.assert_array_equal(md.arange(5, step=2).data, [0, 2, 4])
    assert md.zeros(2, 3).shape == (2, 3) and md.ones((2, 3)).shape == (2, 3)


# ---- requires_grad -------------------------------------------------------------
@pytest.mark.parametrize("data", [[1, 2], np.arange(3), np.array([True])])
def test_non_float_tensor_cannot_require_grad(data):
    with pytest.raises(TypeError, match="floating-point"):
        Tensor(data, requires_grad=True)
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        Tensor(data).requires_grad_()
    t = Tensor(data)
    with pytest.raises(TypeError, match="requires_grad: only floating-point"):
        t.requires_grad = True  # as an attribute too: integer gradients would be truncated
    assert not t.requires_grad


def test_requires_grad_rules():
    x = Tensor([1.0, 2.0], requires_grad=True)
    c = Tensor([3.0, 4.0])
    assert x.requires_grad and x.is_leaf and x.grad_fn is None and x.grad is None
    assert not c.requires_grad
    y = x * c
    assert y.requires_grad and not y.is_leaf and y.grad_fn is not None
    z = c * c
    assert not z.requires_grad and z.grad_fn is None
    assert c.requires_grad_() is c and c.requires_grad
    c.requires_grad_(False)
    assert not c.requires_grad


# ---- properties ----------------------------------------------------------------
def test_shape_ndim_dtype_size_numel_len():
    t = Tensor(np.zeros((2, 3, 4), dtype=np.float64))
    assert t.shape == (2, 3, 4) and t.ndim == 3 and t.dtype == np.float64
    assert t.size() == (2, 3, 4) and t.size(1) == 3 and t.size(-1) == 4
    assert t.numel() == 24 and len(t) == 2


def test_T_reverses_axes_and_carries_the_gradient():
    a = RNG.standard_normal((2, 3))
    x = Tensor(a, requires_grad=True)
    np.testing.assert_array_equal(x.T.data, a.T)
    b = RNG.standard_normal((2, 3, 4))
    np.testing.assert_array_equal(Tensor(b).T.data, np.transpose(b, (2, 1, 0)))
    w = RNG.standard_normal((3, 2))
    (x.T * Tensor(w)).sum().backward()
    np.testing.assert_allclose(x.grad, w.T)


def test_item():
    v = Tensor([[3.5]]).item()
    assert v == 3.5 and isinstance(v, float)
    assert isinstance(Tensor(7).item(), int)
    with pytest.raises(ValueError, match="item: expected a tensor with one element"):
        Tensor([1.0, 2.0]).item()


def test_numpy_and_tolist():
    t = Tensor(np.arange(6.0).reshape(2, 3))
    assert t.numpy() is t.data
    assert t.tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 5.0]]
    assert np.asarray(t) is t.data
    assert np.asarray(t, dtype=np.float32).dtype == np.float32
    assert np.array(t) is not t.data  # np.array copies by default, as for any array


def test_bool_float_int_of_one_element_tensors():
    assert bool(Tensor(0.0)) is False and bool(Tensor([2.0])) is True
    assert float(Tensor([[2.5]])) == 2.5 and int(Tensor(7)) == 7
    with pytest.raises(ValueError, match="ambiguous"):
        bool(Tensor([1.0, 0.0]))


def test_detach_shares_data_and_cuts_the_graph():
    x = Tensor([1.0, 2.0, 3.0], requires_grad=True)
    y = x * 2
    d = y.detach()
    assert d.data is y.data and not d.requires_grad and d.grad_fn is None and d.is_leaf
    (x * x.detach()).sum().backward()
    np.testing.assert_allclose(x.grad, [1.0, 2.0, 3.0])  # d(x * const)/dx = const, not 2x


def test_astype_is_differentiable_between_floats():
    x = Tensor(np.array([1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64 and y.requires_grad
    (y * 3).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, [3.0, 3.0])
    assert x.float().dtype == np.float32
    assert x.long().dtype == np.int64 and not x.long().requires_grad
    assert x.astype(np.int32).dtype == np.int32


def test_zero_():
    t = Tensor(np.ones(3))
    assert t.zero_() is t
    np.testing.assert_array_equal(t.data, 0)


# ---- dtypes and devices -----------------------------------------------------------
def test_to_with_dtypes_devices_and_tensors():
    x = Tensor(np.array([1.5, -2.0], dtype=np.float32), requires_grad=True)
    assert x.to("cpu") is x and x.to(md.device("cpu")) is x and x.to(md.float32) is x
    assert x.cpu() is x and x.device == md.device("cpu") and str(x.device) == "cpu"
    y = x.to(md.float64)
    assert y.dtype == np.float64 and y.requires_grad  # differentiable between floats
    (y * 2).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0)
    assert x.to("cpu", md.float64).dtype == np.float64
    assert x.to(dtype=md.float64, device="cpu").dtype == np.float64
    assert x.to(Tensor(np.zeros(1, dtype=np.int64))).dtype == np.int64
    copy = x.to(md.float32, copy=True)
    assert copy is not x and copy.data is not x.data
    with pytest.raises(RuntimeError, match="to: minidl runs on the CPU only"):
        x.to("cuda")
    with pytest.raises(RuntimeError, match="cuda: minidl runs on the CPU only"):
        x.cuda()
    with pytest.raises(TypeError, match="to: expected a device, a dtype or a tensor, got 3"):
        x.to(3)


def test_type_conversions_as_pytorch():
    x = Tensor(np.array([1.7, -0.2, 0.0], dtype=np.float32), requires_grad=True)
    assert x.type() == "minidl.FloatTensor"
    assert x.long().type() == "minidl.LongTensor" and x.long().tolist() == [1, 0, 0]
    assert not x.long().requires_grad
    assert x.int().dtype == np.int32 and x.half().dtype == np.float16
    assert x.bool().tolist() == [True, True, False]
    assert x.double().dtype == np.float64 and x.float() is x
    assert x.type(md.float64).dtype == np.float64 and x.type(md.float32) is x
    assert x.type_as(Tensor(np.zeros(1, dtype=np.int32))).dtype == np.int32
    assert md.tensor([1, 2]).float().dtype == np.float32
    with pytest.raises(TypeError, match="astype: minidl tensors hold bool, integer or"):
        x.astype(np.complex64)


def test_dim_numel_len_tolist():
    t = Tensor(np.zeros((2, 3)))
    assert t.dim() == 2 and t.numel() == 6 and len(t) == 2
    with pytest.raises(TypeError, match="len\\(\\) of a 0-d tensor"):
        len(Tensor(1.0))


def test_index_lets_one_element_integer_tensors_index_python_sequences():
    items = ["a", "b", "c"]
    assert items[md.tensor(2)] == "c" and items[md.tensor([1])] == "b"
    assert list(range(md.tensor(3))) == [0, 1, 2]
    with pytest.raises(TypeError, match="__index__: only one-element integer tensors"):
        items[md.tensor(1.0)]
    with pytest.raises(TypeError, match="__index__"):
        items[md.tensor([0, 1])]
    # NumPy still reads a multi-element integer tensor as an index array
    np.testing.assert_array_equal(np.arange(10)[md.tensor([1, 3])], [1, 3])


def test_tensors_hash_by_identity_and_containers_still_work():
    a, b = Tensor([1.0]), Tensor([1.0])  # equal values, different tensors
    assert hash(a) != hash(b) and bool(a == b)
    assert a in {a} and b not in {a}  # a set finds by hash and identity
    assert {a: 1, b: 2}[b] == 2
    params = [Tensor(np.ones(3)), Tensor(np.ones(3))]
    assert any(p is params[1] for p in params)  # the package's idiom for lists of tensors
    # A list's `in` compares with == after identity, so use sets, dicts or `is` for tensors.
    assert params[0] in params


def test_requires_grad_cannot_be_switched_off_on_a_result():
    x = Tensor([1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(RuntimeError, match="requires_grad: only a leaf can be set"):
        y.requires_grad = False
    x.requires_grad = False
    assert not x.requires_grad


# ---- operators ------------------------------------------------------------------
BINARY = [
    ("add", lambda x, y: x + y, lambda a, b: a + b),
    ("sub", lambda x, y: x - y, lambda a, b: a - b),
    ("mul", lambda x, y: x * y, lambda a, b: a * b),
    ("truediv", lambda x, y: x / y, lambda a, b: a / b),
    ("pow", lambda x, y: x ** y, lambda a, b: np.exp(b * np.log(a))),
]


@pytest.mark.parametrize("name, op, ref", BINARY, ids=[b[0] for b in BINARY])
def test_binary_operators_between_tensors(name, op, ref):
    a = RNG.uniform(0.5, 2.0, (3, 4))
    b = RNG.uniform(0.5, 2.0, (4,))
    z = op(Tensor(a), Tensor(b))
    assert isinstance(z, Tensor)
    np.testing.assert_allclose(z.data, ref(a, b), rtol=1e-12)


@pytest.mark.parametrize("name, op, ref", BINARY, ids=[b[0] for b in BINARY])
def test_binary_operators_with_a_python_scalar_on_either_side(name, op, ref):
    a = RNG.uniform(0.5, 2.0, (3,))
    np.testing.assert_allclose(op(Tensor(a), 1.5).data, ref(a, 1.5), rtol=1e-12)
    np.testing.assert_allclose(op(1.5, Tensor(a)).data, ref(1.5, a), rtol=1e-12)


@pytest.mark.parametrize("name, op, ref", BINARY, ids=[b[0] for b in BINARY])
def test_ndarray_on_the_left_gives_a_tensor(name, op, ref):
    a = RNG.uniform(0.5, 2.0, (3,))
    b = RNG.uniform(0.5, 2.0, (2, 3))
    x = Tensor(b, requires_grad=True)
    z = op(a, x)
    assert isinstance(z, Tensor) and z.requires_grad
    np.testing.assert_allclose(z.data, ref(a, b), rtol=1e-12)


def test_reflected_operators_have_the_right_gradients():
    a = np.array([0.5, 1.0, 2.0])
    x = Tensor(a, requires_grad=True)
    (2 - x).sum().backward()
    np.testing.assert_allclose(x.grad, -1.0)
    x.grad = None
    (2 / x).sum().backward()
    np.testing.assert_allclose(x.grad, -2 / a**2)
    x.grad = None
    (2**x).sum().backward()
    np.testing.assert_allclose(x.grad, 2**a * np.log(2))
    x.grad = None
    (3 * x + 1).sum().backward()
    np.testing.assert_allclose(x.grad, 3.0)


def test_unary_operators_and_matmul():
    a = RNG.standard_normal((2, 3))
    b = RNG.standard_normal((3, 4))
    np.testing.assert_allclose((-Tensor(a)).data, -a)
    np.testing.assert_allclose(abs(Tensor(a)).data, np.where(a < 0, -a, a))
    np.testing.assert_allclose((Tensor(a) @ Tensor(b)).data, np.einsum("nk,km->nm", a, b))
    np.testing.assert_allclose((a @ Tensor(b)).data, np.einsum("nk,km->nm", a, b))
    np.testing.assert_allclose((Tensor(a) @ b).data, np.einsum("nk,km->nm", a, b))
    assert isinstance(a @ Tensor(b), Tensor)


def test_indexing_and_iteration():
    a = np.arange(6.0).reshape(3, 2)
    t = Tensor(a)
    np.testing.assert_array_equal(t[1].data, a[1])
    rows = [row.data for row in t]
    np.testing.assert_array_equal(np.stack(rows), a)


def test_comparisons_give_boolean_tensors_without_gradient():
    a = np.array([0.0, 1.0, 2.0])
    x = Tensor(a, requires_grad=True)
    cases = [
        (x < 1, a < 1), (x <= 1, a <= 1), (x > 1, a > 1), (x >= 1, a >= 1),
        (1 < x, a > 1), (1 >= x, a <= 1),  # reflected: Python swaps to x > 1, x <= 1
        (np.ones(3) < x, a > 1), (x.eq(1.0), a == 1), (x.ne(1.0), a != 1),
        (x < Tensor([1.0, 1.0, 3.0]), a < np.array([1.0, 1.0, 3.0])),
    ]
    for got, want in cases:
        assert isinstance(got, Tensor) and got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.data, want)


# ---- float32 stays float32 ---------------------------------------------------------
@pytest.mark.parametrize("op", [
    lambda x: x * 2.0, lambda x: x + 1, lambda x: 2.0 - x, lambda x: x / 3, lambda x: 3 / x,
    lambda x: x**2, lambda x: x**0.5, lambda x: 2.0**x, lambda x: -x, lambda x: x.exp(),
    lambda x: x.clamp(min=0.5), lambda x: md.maximum(x, 1.0), lambda x: md.where(x > 1, x, 0.0),
    lambda x: x.sum(), lambda x: x.mean(), lambda x: x.var(), lambda x: x.logsumexp(),
])
def test_float32_stays_float32_with_python_scalars_and_grads_are_float32(op):
    x = Tensor(np.array([0.5, 1.0, 2.0], dtype=np.float32), requires_grad=True)
    y = op(x)
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and x.grad.shape == x.shape


def test_float32_leaf_gets_a_float32_grad_even_through_float64_constants():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    y = x * np.full(3, 2.0)  # a float64 constant makes the output float64 (NumPy's rule)
    y.sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_allclose(x.grad, 2.0)


# ---- repr ---------------------------------------------------------------------
def test_repr():
    assert repr(Tensor([1.0, 2.0])) == "tensor([1., 2.])"
    assert repr(Tensor([1.0], requires_grad=True)) == "tensor([1.], requires_grad=True)"
    x = Tensor([1.0], requires_grad=True)
    assert repr(x * 2) == "tensor([2.], grad_fn=<Mul>)"
    assert repr(Tensor(np.array([1.0]))) == "tensor([1.], dtype=float64)"
    assert repr(Tensor([1, 2])) == "tensor([1, 2], dtype=int64)"


def test_iteration_and_membership_as_pytorch():
    t = Tensor(np.array([[1.0, 2.0], [3.0, 4.0]]))
    rows = list(t)
    assert len(rows) == 2 and rows[1].tolist() == [3.0, 4.0]
    with pytest.raises(TypeError, match="iteration over a 0-d tensor"):
        list(Tensor(1.0))
    assert 3.0 in t and 5.0 not in t and Tensor(2.0) in t
