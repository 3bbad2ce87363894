"""gather, scatter, scatter_add, masked_fill, copy, nonzero: PyTorch's definitions written as
loops (the references), float64 gradcheck over every element, repeated indices, and the
errors of every functional form."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops import indexing as I
from minidl.testing import check_op

RNG = np.random.default_rng(40)


def normal(*shape):
    return RNG.standard_normal(shape)


def gather_by_loops(a, dim, index):
    """out[i][j][k] = a[i][index[i][j][k]][k] for dim = 1 (PyTorch's docs), any dim."""
    out = np.empty(index.shape)
    for pos in np.ndindex(index.shape):
        source = list(pos)
        source[dim] = index[pos]
        out[pos] = a[tuple(source)]
    return out


def scatter_by_loops(a, dim, index, src, add):
    out = np.array(a, dtype=float)
    for pos in np.ndindex(index.shape):
        target = list(pos)
        target[dim] = index[pos]
        value = src[pos] if np.ndim(src) else src
        out[tuple(target)] = out[tuple(target)] + value if add else value
    return out


# ---- gather --------------------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_gather_with_a_smaller_index_and_repeats(dim):
    a = normal(3, 4, 5)
    shape = [2, 3, 4]
    shape[dim] = 6  # longer than a along dim: positions repeat
    index = RNG.integers(0, a.shape[dim], shape)
    check_op(lambda t: I.gather(t, dim, index), lambda a: gather_by_loops(a, dim, index), [a])
    check_op(lambda t: t.gather(dim, Tensor(index)),
             lambda a: gather_by_loops(a, dim, index), [a])


def test_gather_of_a_repeated_position_adds_the_gradients():
    x = Tensor(np.array([[1.0, 2.0, 3.0]]), requires_grad=True)
    x.gather(1, np.array([[2, 2, 0, 2]])).sum().backward()
    np.testing.assert_array_equal(x.grad, [[1.0, 0.0, 3.0]])


def test_gather_errors():
    a = Tensor(normal(3, 4))
    with pytest.raises(IndexError, match="gather: index 4 is out of bounds for dimension 1"):
        a.gather(1, np.array([[0, 4]]))
    with pytest.raises(IndexError, match="gather: index -1 is out of bounds"):
        a.gather(1, np.array([[0, -1]]))
    with pytest.raises(TypeError, match="gather: index must hold integers"):
        a.gather(1, np.array([[0.0]]))
    with pytest.raises(ValueError, match="gather: index must have as many dimensions"):
        a.gather(1, np.array([0, 1]))
    with pytest.raises(ValueError, match=r"gather: index of shape \(4, 1\) is larger"):
        a.gather(1, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(IndexError, match="gather: dim 2 is out of range"):
        a.gather(2, np.zeros((1, 1), dtype=np.int64))


# ---- scatter and scatter_add -----------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_scatter_add_with_repeats_and_a_smaller_index(dim):
    a, src = normal(3, 4), normal(4, 5)
    shape = [2, 3]
    shape[dim] = 4
    index = RNG.integers(0, a.shape[dim], shape)
    check_op(lambda t, s: I.scatter_add(t, dim, index, s),
             lambda a, s: scatter_by_loops(a, dim, index, s, add=True), [a, src])
    check_op(lambda t, s: t.scatter_add(dim, Tensor(index), s),
             lambda a, s: scatter_by_loops(a, dim, index, s, add=True), [a, src])


@pytest.mark.parametrize("dim", [0, 1])
def test_scatter_with_unique_positions(dim):
    a, src = normal(3, 4), normal(3, 4)
    # each column (dim 0) or row (dim 1) of index is a permutation: no position repeats
    n = a.shape[dim]
    index = np.stack([RNG.permutation(n) for _ in range(a.shape[1 - dim])], axis=1 - dim)
    check_op(lambda t, s: I.scatter(t, dim, index, s),
             lambda a, s: scatter_by_loops(a, dim, index, s, add=False), [a, src])


def test_scatter_with_repeated_positions_gives_the_gradient_to_the_last_writer():
    # NumPy's rule (and this op's): the last write to a position wins; gradcheck sees that
    # only the winner changes the output.
    a, src = normal(2, 3), normal(2, 3)
    index = np.array([[0, 0, 0], [1, 0, 1]])
    check_op(lambda t, s: I.scatter(t, 0, index, s),
             lambda a, s: scatter_by_loops(a, 0, index, s, add=False), [a, src])


def test_scatter_of_a_number():
    a = normal(2, 3)
    index = np.array([[2], [0]])
    check_op(lambda t: t.scatter(1, index, 9.5),
             lambda a: scatter_by_loops(a, 1, index, 9.5, add=False), [a])


def test_one_hot_with_scatter_as_in_pytorch_examples():
    labels = md.tensor([2, 0, 1])
    one_hot = md.zeros(3, 4).scatter_(1, labels.unsqueeze(1), 1.0)
    np.testing.assert_array_equal(one_hot.data, np.eye(4)[[2, 0, 1]])


def test_scatter_errors():
    a = Tensor(normal(3, 4))
    with pytest.raises(ValueError, match="scatter_add: src must be a tensor"):
        a.scatter_add(0, np.zeros((1, 1), dtype=np.int64), 1.0)
    with pytest.raises(ValueError, match=r"scatter: index of shape \(2, 2\) is larger"):
        a.scatter(0, np.zeros((2, 2), dtype=np.int64), np.ones((1, 4)))
    with pytest.raises(IndexError, match="scatter: index 3 is out of bounds for dimension 0"):
        a.scatter(0, np.array([[3]]), 1.0)


# ---- masked_fill, copy, nonzero ----------------------------------------------------------
def test_masked_fill_broadcasts_the_mask_and_has_the_right_gradient():
    a = normal(3, 4)
    mask = RNG.random(4) > 0.5
    check_op(lambda t: I.masked_fill(t, Tensor(mask), -2.0),
             lambda a: np.where(np.broadcast_to(mask, a.shape), -2.0, a), [a])
    # a 0-d tensor value receives the gradient of the filled places
    value = Tensor(np.array(0.5), requires_grad=True)
    x = Tensor(a, requires_grad=True)
    x.masked_fill(Tensor(mask), value).sum().backward()
    np.testing.assert_allclose(value.grad, 3 * mask.sum())


def test_masked_fill_keeps_the_dtype_and_checks_its_arguments():
    t = md.tensor([1, 2, 3])
    assert t.masked_fill(t > 1, 0).tolist() == [1, 0, 0]
    f = md.zeros(3)
    assert f.masked_fill(md.tensor([True, False, False]), 2.0).dtype == np.float32
    with pytest.raises(TypeError, match="masked_fill: mask must be a bool tensor"):
        f.masked_fill(md.tensor([1, 0, 0]), 1.0)
    with pytest.raises(ValueError, match="masked_fill: value must be a number or a 0-d"):
        f.masked_fill(md.tensor([True, False, False]), md.ones(2))


def test_copy_into_broadcasts_and_converts():
    check_op(lambda t, s: I.copy_into(t, s), lambda a, s: np.broadcast_to(s, a.shape),
             [normal(2, 3), normal(3)])
    with pytest.raises(ValueError, match=r"copy_: src of shape \(2, 2, 3\) cannot be broadcast"):
        I.copy_into(Tensor(normal(2, 3)), np.ones((2, 2, 3)))


def test_nonzero():
    a = np.array([[0.0, 1.5, 0.0], [2.0, 0.0, -1.0]])
    out = md.nonzero(Tensor(a))
    assert out.dtype == np.int64 and out.tolist() == [[0, 1], [1, 0], [1, 2]]
    rows, cols = Tensor(a).nonzero(as_tuple=True)
    assert rows.tolist() == [0, 1, 1] and cols.tolist() == [1, 0, 2]
    assert md.nonzero(Tensor(np.zeros(3))).shape == (0, 1)
    assert md.nonzero(Tensor(np.array(5.0))).shape == (1, 0)  # 0-d: one row, no columns
    (only,) = Tensor(np.array(5.0)).nonzero(as_tuple=True)
    assert only.tolist() == [0]
