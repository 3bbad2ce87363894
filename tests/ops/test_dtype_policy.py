"""The dtype policy of ops/checks.py for the arithmetic, reduction, shape, matmul, activation,
linear and dropout ops: ops that need real numbers raise naming themselves on integer and bool
tensors, ops whose answer is an integer keep the dtype. (Other op families test their own
ops against the same policy in their test files.)"""

import numpy as np
import pytest

import minidl as md
import minidl.nn.functional as F
from minidl import Tensor

INTS = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.int64)

NEEDS_FLOAT = {
    "mean": lambda t: t.mean(),
    "var": lambda t: t.var(),
    "std": lambda t: t.std(dim=0),
    "logsumexp": lambda t: t.logsumexp(),
    "exp": lambda t: t.exp(),
    "log": lambda t: md.log(t),
    "sqrt": lambda t: t.sqrt(),
    "sin": lambda t: t.sin(),
    "cos": lambda t: md.cos(t),
    "sigmoid": lambda t: t.sigmoid(),
    "tanh": lambda t: F.tanh(t),
    "softmax": lambda t: t.softmax(-1),
    "log_softmax": lambda t: F.log_softmax(t, 1),
    "elu": lambda t: F.elu(t),
    "leaky_relu": lambda t: F.leaky_relu(t),
    "gelu": lambda t: F.gelu(t),
    "dropout": lambda t: F.dropout(t, 0.5),
    "dropout2d": lambda t: F.dropout2d(t.reshape(1, 2, 3, 1), 0.5),
}


@pytest.mark.parametrize("name", sorted(NEEDS_FLOAT))
@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8, np.bool_])
def test_ops_that_need_real_numbers_raise_naming_themselves(name, dtype):
    with pytest.raises(TypeError, match=rf"^{name}: expected a floating-point input.*x\.float"):
        NEEDS_FLOAT[name](Tensor(INTS.astype(dtype)))


@pytest.mark.parametrize("name", sorted(NEEDS_FLOAT))
def test_the_same_ops_work_after_float(name):
    out = NEEDS_FLOAT[name](Tensor(INTS).float())
    assert out.dtype == np.float32


KEEPS_INTEGERS = {
    "add": lambda t: t + 2, "sub": lambda t: 2 - t, "mul": lambda t: t * 3,
    "floor_divide": lambda t: t // 2, "remainder": lambda t: t % 4, "neg": lambda t: -t,
    "abs": lambda t: abs(t), "pow": lambda t: t**2, "clamp": lambda t: t.clamp(2, 5),
    "maximum": lambda t: md.maximum(t, 3), "sum": lambda t: t.sum(dim=1),
    "max": lambda t: t.max(), "min": lambda t: t.min(dim=0).values, "amax": lambda t: t.amax(),
    "relu": lambda t: t.relu(), "matmul": lambda t: t @ t.T, "reshape": lambda t: t.view(3, 2),
    "getitem": lambda t: t[:, 1], "cat": lambda t: md.cat([t, t]),
    "repeat": lambda t: t.repeat(2, 1),
    "gather": lambda t: t.gather(1, np.array([[0], [2]])), "sort": lambda t: t.sort().values,
    "topk": lambda t: t.topk(2).values, "where": lambda t: md.where(t > 2, t, 0),
}


@pytest.mark.parametrize("name", sorted(KEEPS_INTEGERS))
def test_ops_with_an_integer_answer_keep_the_dtype(name):
    out = KEEPS_INTEGERS[name](Tensor(INTS))
    assert out.dtype == np.int64


def test_argmax_and_comparisons_of_integers():
    t = Tensor(INTS)
    assert t.argmax().dtype == np.int64 and (t > 2).dtype == np.bool_
    assert md.tensor([True, False]).sum().item() == 1


def test_integer_true_division_gives_float32():
    assert (Tensor(INTS) / 2).dtype == np.float32
    assert (Tensor(INTS) / Tensor(INTS)).dtype == np.float32


@pytest.mark.parametrize("dtype", [np.int64, np.bool_])
def test_requires_grad_on_integers_raises_in_every_form(dtype):
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        Tensor(INTS.astype(dtype), requires_grad=True)
    t = Tensor(INTS.astype(dtype))
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        t.requires_grad = True
    with pytest.raises(TypeError, match="only floating-point tensors can require gradients"):
        t.requires_grad_()
    with pytest.raises(TypeError, match="only floating-point"):
        md.tensor(INTS.astype(dtype), requires_grad=True)
    assert not t.requires_grad


def test_in_place_results_must_fit_the_dtype():
    t = Tensor(INTS.copy())
    with pytest.raises(TypeError, match="mul_: the result has dtype float"):
        t.mul_(0.5)
    t.copy_(INTS * 0.5)  # copy_ converts, as in PyTorch
    np.testing.assert_array_equal(t.data, INTS // 2)
