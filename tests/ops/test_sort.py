"""sort, argsort, topk: values and indices against a reference written from the definition
(selection by repeated min/max), ties and NaN as PyTorch orders them, float64 gradcheck of the
values, and the errors."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops import sort as S
from minidl.testing import check_op

RNG = np.random.default_rng(41)


def order_by_selection(row, descending):
    """Indices of a 1-D row sorted by repeated selection of the smallest (largest) remaining
    value, the earliest one at ties: a stable sort from its definition."""
    remaining = list(range(len(row)))
    order = []
    while remaining:
        pick = remaining[0]
        for i in remaining[1:]:
            if (row[i] > row[pick]) if descending else (row[i] < row[pick]):
                pick = i
        order.append(pick)
        remaining.remove(pick)
    return order


def sort_reference(a, dim, descending):
    moved = np.moveaxis(a, dim, -1)
    idx = np.empty(moved.shape, dtype=np.int64)
    for pos in np.ndindex(moved.shape[:-1]):
        idx[pos] = order_by_selection(moved[pos], descending)
    idx = np.moveaxis(idx, -1, dim)
    return np.take_along_axis(a, idx, dim), idx


@pytest.mark.parametrize("dim", [0, 1, -1])
@pytest.mark.parametrize("descending", [False, True])
def test_sort_values_indices_and_gradient(dim, descending):
    a = RNG.standard_normal((3, 4, 5))
    values, indices = S.sort(Tensor(a), dim, descending)
    want_values, want_indices = sort_reference(a, dim, descending)
    np.testing.assert_array_equal(values.data, want_values)
    np.testing.assert_array_equal(indices.data, want_indices)
    assert indices.dtype == np.int64 and not indices.requires_grad
    check_op(lambda t: t.sort(dim, descending).values,
             lambda a: sort_reference(a, dim, descending)[0], [a])
    np.testing.assert_array_equal(Tensor(a).argsort(dim, descending).data, want_indices)


def test_ties_keep_their_order_in_both_directions():
    a = Tensor(np.array([1.0, 2.0, 2.0, 0.0, 2.0]))
    assert a.argsort().tolist() == [3, 0, 1, 2, 4]
    assert a.argsort(descending=True).tolist() == [1, 2, 4, 0, 3]
    assert a.topk(2).indices.tolist() == [1, 2]


def test_nan_sorts_as_the_largest_value():
    a = Tensor(np.array([1.0, np.nan, -1.0]))
    assert a.argsort().tolist() == [2, 0, 1]
    assert a.argsort(descending=True).tolist() == [1, 0, 2]


def test_integers_sort_too():
    values, indices = md.sort(md.tensor([[3, 1, 2]]), descending=True)
    assert values.tolist() == [[3, 2, 1]] and indices.tolist() == [[0, 2, 1]]
    assert values.dtype == np.int64


@pytest.mark.parametrize("k, dim, largest", [(2, -1, True), (1, 0, False), (4, 1, True),
                                             (0, 1, True)])
def test_topk(k, dim, largest):
    a = RNG.standard_normal((3, 4))
    full_values, full_indices = sort_reference(a, dim, descending=largest)
    want_values = np.take(full_values, np.arange(k), axis=dim)
    values, indices = md.topk(Tensor(a), k, dim, largest)
    np.testing.assert_array_equal(values.data, want_values)
    np.testing.assert_array_equal(indices.data, np.take(full_indices, np.arange(k), axis=dim))
    if k:
        check_op(lambda t: t.topk(k, dim, largest).values, lambda a: want_values, [a])


def test_topk_and_sort_errors():
    a = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"topk: k must be an int in \[0, 3\]"):
        a.topk(4)
    with pytest.raises(ValueError, match="topk: k must be an int"):
        a.topk(1.5)
    with pytest.raises(IndexError, match="sort: dim 2 is out of range"):
        a.sort(dim=2)
    with pytest.raises(IndexError, match="argsort: dim -3 is out of range"):
        a.argsort(dim=-3)
