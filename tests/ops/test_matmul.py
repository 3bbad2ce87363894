"""matmul: every operand-rank combination against einsum, float64 gradcheck, errors."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops.matmul import matmul
from minidl.testing import check_op

RNG = np.random.default_rng(40)

CASES = [  # (shape of a, shape of b, einsum formula of the product)
    ((3,), (3, 4), "k,km->m"),
    ((4, 3), (3,), "nk,k->n"),
    ((3,), (3,), "k,k->"),
    ((2, 4, 3), (2, 3, 5), "bnk,bkm->bnm"),
    ((2, 4, 3), (3, 5), "bnk,km->bnm"),
    ((4, 3), (2, 3, 5), "nk,bkm->bnm"),
    ((2, 1, 4, 3), (3, 3, 2), "...nk,...km->...nm"),  # batch (2, 1) with (3,) -> (2, 3)
    ((1, 4, 3), (2, 3, 5), "...nk,...km->...nm"),
    ((3,), (2, 3, 4), "k,bkm->bm"),
    ((2, 4, 3), (3,), "bnk,k->bn"),
    ((2, 3, 1, 4, 3), (1, 3, 5), "...nk,...km->...nm"),
]


@pytest.mark.parametrize("sa, sb, formula", CASES, ids=[f"{a}@{b}" for a, b, _ in CASES])
def test_matmul(sa, sb, formula):
    a, b = RNG.standard_normal(sa), RNG.standard_normal(sb)

    def ref(a, b):
        return np.einsum(formula, a, b)

    check_op(matmul, ref, [a, b])
    check_op(lambda x, y: x @ y, ref, [a, b])


def test_matmul_float32_stays_float32():
    x = Tensor(RNG.standard_normal((2, 3)).astype(np.float32), requires_grad=True)
    w = Tensor(RNG.standard_normal(3).astype(np.float32), requires_grad=True)
    y = x @ w
    assert y.dtype == np.float32
    y.sum().backward()
    assert x.grad.dtype == np.float32 and w.grad.dtype == np.float32 and w.grad.shape == (3,)


def test_matmul_errors():
    with pytest.raises(ValueError, match=r"matmul: shapes \(2, 3\) and \(4, 5\) cannot be "
                                         r"multiplied \(3 != 4\)"):
        matmul(Tensor(np.ones((2, 3))), Tensor(np.ones((4, 5))))
    with pytest.raises(ValueError, match="matmul: shapes .* cannot be multiplied"):
        matmul(Tensor(np.ones(3)), Tensor(np.ones(4)))
    with pytest.raises(ValueError, match="matmul: batch dimensions of"):
        matmul(Tensor(np.ones((2, 2, 3))), Tensor(np.ones((3, 3, 4))))
    with pytest.raises(ValueError, match="matmul: both operands need at least 1 dimension"):
        matmul(Tensor(2.0), Tensor(np.ones(3)))


def test_top_level_name():
    assert md.matmul is matmul


def test_mm_and_bmm():
    a, b = RNG.standard_normal((2, 3)), RNG.standard_normal((3, 4))
    check_op(md.mm, lambda a, b: np.einsum("nk,km->nm", a, b), [a, b])
    batch_a, batch_b = RNG.standard_normal((2, 3, 4)), RNG.standard_normal((2, 4, 5))
    check_op(lambda x, y: x.bmm(y), lambda a, b: np.einsum("bnk,bkm->bnm", a, b),
             [batch_a, batch_b])
    with pytest.raises(ValueError, match="mm: expects two 2-D tensors"):
        md.mm(Tensor(batch_a), Tensor(b))
    with pytest.raises(ValueError, match=r"bmm: expects two 3-D tensors with the same batch"):
        md.bmm(Tensor(batch_a), Tensor(batch_b[:1]))
    with pytest.raises(ValueError, match="bmm"):
        Tensor(a).bmm(Tensor(b))
