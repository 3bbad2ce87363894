"""In-place operators and methods with PyTorch's rules: leaves that require grad only under
no_grad, results recorded in the graph, plain tensors simply written; every change bumps the
version; the SGD loop `p -= lr * p.grad` trains a real model."""

import numpy as np
import pytest

import minidl as md
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, no_grad

RNG = np.random.default_rng(11)

# name: (in-place call, the out-of-place reference on ndarrays)
INPLACE = {
    "add_": (lambda t: t.add_(2.0), lambda a: a + 2.0),
    "add_ alpha": (lambda t: t.add_(np.full(3, 2.0), alpha=-0.5), lambda a: a - 1.0),
    "sub_": (lambda t: t.sub_(0.5), lambda a: a - 0.5),
    "mul_": (lambda t: t.mul_(3.0), lambda a: a * 3.0),
    "div_": (lambda t: t.div_(4.0), lambda a: a / 4.0),
    "pow_": (lambda t: t.pow_(2), lambda a: a**2),
    "exp_": (lambda t: t.exp_(), np.exp),
    "neg_": (lambda t: t.neg_(), np.negative),
    "abs_": (lambda t: t.abs_(), np.abs),
    "tanh_": (lambda t: t.tanh_(), np.tanh),
    "sigmoid_": (lambda t: t.sigmoid_(), lambda a: 1 / (1 + np.exp(-a))),
    "relu_": (lambda t: t.relu_(), lambda a: np.where(a > 0, a, 0.0)),
    "clamp_": (lambda t: t.clamp_(-0.5, 0.5), lambda a: np.minimum(np.maximum(a, -0.5), 0.5)),
    "zero_": (lambda t: t.zero_(), np.zeros_like),
    "fill_": (lambda t: t.fill_(7.0), lambda a: np.full_like(a, 7.0)),
    "copy_": (lambda t: t.copy_(np.array([1.0, 2.0, 3.0])), lambda a: np.array([1.0, 2.0, 3.0])),
    "masked_fill_": (lambda t: t.masked_fill_(Tensor(np.array([True, False, True])), -1.0),
                     lambda a: np.where([True, False, True], -1.0, a)),
    "scatter_": (lambda t: t.scatter_(0, np.array([2, 0]), np.array([5.0, 6.0])),
                 lambda a: np.array([6.0, a[1], 5.0])),
    "+=": (lambda t: t.__iadd__(1.5), lambda a: a + 1.5),
    "-=": (lambda t: t.__isub__(1.5), lambda a: a - 1.5),
    "*=": (lambda t: t.__imul__(1.5), lambda a: a * 1.5),
    "/=": (lambda t: t.__itruediv__(1.5), lambda a: a / 1.5),
}
OPS = sorted(INPLACE)


@pytest.mark.parametrize("name", OPS)
def test_in_place_on_a_plain_tensor_writes_its_memory_and_bumps_the_version(name):
    call, reference = INPLACE[name]
    a = RNG.uniform(-1, 1, 3)
    array = a.copy()
    t = Tensor(array)
    view = t[1:]
    assert call(t) is t
    assert t.data is array  # the same memory, written in place
    np.testing.assert_allclose(t.data, reference(a), rtol=1e-12)
    np.testing.assert_allclose(view.data, reference(a)[1:], rtol=1e-12)
    assert t._version == 1 and t.grad_fn is None and not t.requires_grad


@pytest.mark.parametrize("name", OPS)
def test_in_place_on_a_leaf_that_requires_grad_raises_unless_under_no_grad(name):
    call, reference = INPLACE[name]
    a = RNG.uniform(-1, 1, 3)
    w = Tensor(a.copy(), requires_grad=True)
    with pytest.raises(RuntimeError, match="leaf tensor that requires grad.*no_grad"):
        call(w)
    np.testing.assert_array_equal(w.data, a)  # nothing written
    assert w._version == 0
    with no_grad():
        assert call(w) is w
    np.testing.assert_allclose(w.data, reference(a), rtol=1e-12)
    assert w._version == 1 and w.is_leaf and w.requires_grad


def test_the_leaf_error_names_the_op():
    w = Tensor([1.0], requires_grad=True)
    with pytest.raises(RuntimeError, match="^mul_: a leaf tensor"):
        w *= 2
    with pytest.raises(RuntimeError, match="^fill_: a leaf tensor"):
        w.fill_(0.0)


@pytest.mark.parametrize("name", OPS)
def test_in_place_on_a_result_is_recorded_and_has_the_out_of_place_gradient(name):
    call, _ = INPLACE[name]
    a = RNG.uniform(0.2, 1, 3) * np.array([1, -1, 1])
    g = RNG.standard_normal(3)

    x = Tensor(a.copy(), requires_grad=True)
    h = x * 1.5
    old_fn = h.grad_fn
    out = call(h)
    assert out is h and h.grad_fn is not old_fn and h._version == 1
    (h * Tensor(g)).sum().backward()

    # the same computation out of place, on a copy
    y = Tensor(a.copy(), requires_grad=True)
    reference_out = call(Tensor((y * 1.5).data.copy()))  # values only
    np.testing.assert_allclose(h.data, reference_out.data, rtol=1e-12)
    eps = 1e-6
    numeric = np.zeros(3)
    for i in range(3):
        plus, minus = a.copy(), a.copy()
        plus[i] += eps
        minus[i] -= eps
        f_plus = (call(Tensor(plus * 1.5)).data * g).sum()
        f_minus = (call(Tensor(minus * 1.5)).data * g).sum()
        numeric[i] = (f_plus - f_minus) / (2 * eps)
    np.testing.assert_allclose(x.grad, numeric, rtol=1e-5, atol=1e-7)


def test_in_place_with_an_operand_that_requires_grad_makes_a_plain_tensor_a_result():
    w = Tensor(np.array([1.0, 2.0]), requires_grad=True)
    buffer = md.zeros(2, dtype=np.float64)
    buffer.add_(w * 3)
    assert buffer.requires_grad and not buffer.is_leaf
    buffer.sum().backward()
    np.testing.assert_allclose(w.grad, 3.0)
    t = md.zeros(2, dtype=np.float64)
    t.copy_(w)
    (t * t).sum().backward()
    np.testing.assert_allclose(w.grad, 3.0 + 2 * np.array([1.0, 2.0]))


def test_fill_and_zero_on_a_result_give_a_zero_gradient():
    x = Tensor(np.ones(3), requires_grad=True)
    h = x * 2
    h.zero_()
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


def test_dtype_rules_as_pytorch():
    t = Tensor(np.array([1, 2, 3]))
    with pytest.raises(TypeError, match="add_: the result has dtype float"):
        t.add_(0.5)  # an int tensor cannot hold 1.5: PyTorch refuses too
    with pytest.raises(TypeError, match="div_"):
        t /= 2
    np.testing.assert_array_equal(t.data, [1, 2, 3])
    assert t._version == 0
    t += 2
    np.testing.assert_array_equal(t.data, [3, 4, 5])
    t.copy_(np.array([1.9, 2.1, -0.5]))  # copy_ converts, as PyTorch
    np.testing.assert_array_equal(t.data, [1, 2, 0])
    f = Tensor(np.zeros(2, dtype=np.float32))
    f.add_(np.ones(2, dtype=np.float64))  # float64 into float32: same kind, allowed
    assert f.dtype == np.float32


def test_shape_rules():
    t = Tensor(np.zeros((2, 3)))
    t.add_(np.arange(3.0))  # broadcasts to t's shape: fine
    np.testing.assert_array_equal(t.data, [[0, 1, 2], [0, 1, 2]])
    with pytest.raises(RuntimeError, match=r"add_: the result has shape \(4, 2, 3\)"):
        t.add_(np.ones((4, 2, 3)))
    with pytest.raises(ValueError, match=r"copy_: src of shape \(4,\) cannot be broadcast"):
        t.copy_(np.ones(4))
    assert t._version == 1


def test_in_place_on_a_view_under_grad_raises_and_under_no_grad_writes_the_base():
    x = Tensor(np.ones((2, 3)), requires_grad=True)
    h = x * 2
    with pytest.raises(RuntimeError, match="mul_: in-place change of a view"):
        h[0].mul_(3)
    with no_grad():
        h[0].mul_(3)  # e.g. initializing part of a weight
    np.testing.assert_array_equal(h.data, [[6, 6, 6], [2, 2, 2]])
    w = Tensor(np.zeros(4), requires_grad=True)
    with no_grad():
        w[1:3].fill_(1.0)  # LSTM forget-gate bias style init
    np.testing.assert_array_equal(w.data, [0, 1, 1, 0])
    assert w._version == 1


def test_expanded_tensors_are_read_only():
    t = Tensor(np.zeros(3)).expand(2, 3)
    with pytest.raises(RuntimeError, match="add_: cannot write into this tensor.*clone"):
        t.add_(1.0)
    c = t.clone()
    c.add_(1.0)
    np.testing.assert_array_equal(c.data, 1.0)


def test_normal_and_uniform_follow_the_seed_and_their_distribution():
    t = md.zeros(20000)
    md.manual_seed(3)
    t.normal_(2.0, 0.5)
    first = t.data.copy()
    md.manual_seed(3)
    t.normal_(2.0, 0.5)
    np.testing.assert_array_equal(t.data, first)
    assert abs(first.mean() - 2.0) < 0.02 and abs(first.std() - 0.5) < 0.02
    t.uniform_(-3.0, -1.0)
    assert t.data.min() >= -3.0 and t.data.max() < -1.0 and abs(t.data.mean() + 2.0) < 0.03
    assert t.dtype == np.float32 and t._version == 3
    with pytest.raises(TypeError, match="normal_: expected a floating-point tensor"):
        Tensor(np.zeros(2, dtype=np.int64)).normal_()
    with pytest.raises(ValueError, match="uniform_: expected a <= b"):
        t.uniform_(1.0, 0.0)


def test_sgd_written_with_in_place_operators_trains_a_model():
    # issue 15's silent failure: `p -= lr * p.grad` used to rebind the loop variable.
    md.manual_seed(0)
    x = md.randn(64, 3)
    y = x @ Tensor(np.array([[1.0], [-2.0], [0.5]], dtype=np.float32)) + 0.3
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))
    first_weight = model[0].weight.data.copy()
    losses = []
    for _ in range(60):
        loss = F.mse_loss(model(x), y)
        losses.append(loss.item())
        model.zero_grad()
        loss.backward()
        with no_grad():
            for p in model.parameters():
                p -= 0.1 * p.grad
    assert losses[-1] < 0.1 * losses[0]
    assert not np.array_equal(model[0].weight.data, first_weight)
    assert model[0].weight._version == 60


def test_setitem_follows_the_in_place_rules():
    w = Tensor(np.zeros(3), requires_grad=True)
    with pytest.raises(RuntimeError, match="^setitem: a leaf tensor that requires grad"):
        w[0] = 1.0
    with no_grad():
        w[0] = 1.0
    assert w.tolist() == [1.0, 0.0, 0.0] and w._version == 1
    # on a result: recorded, and x[i] = x[i] + v is the way to write x[i] += v
    x = Tensor(np.array([1.0, 2.0, 3.0]), requires_grad=True)
    rows = Tensor(np.ones((2, 2)), requires_grad=True) * 2
    with pytest.raises(RuntimeError, match=r"add_: in-place change of a view.*x\[i\] = x\[i\]"):
        rows[0] += 1.0  # rows[0] is a view of rows
    h = x * 2
    h[0] = h[0] * 10
    np.testing.assert_array_equal(h.data, [20.0, 4.0, 6.0])
    h.sum().backward()
    np.testing.assert_array_equal(x.grad, [20.0, 2.0, 2.0])
    # one element of a 1-D tensor is a copy (NumPy's rule), not a view: += works there
    x.grad = None
    h = x * 2
    h[1] += 5.0
    np.testing.assert_array_equal(h.data, [2.0, 9.0, 6.0])
    (h * h).sum().backward()
    np.testing.assert_array_equal(x.grad, [8.0, 36.0, 24.0])
