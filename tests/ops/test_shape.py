"""Shape primitives and composites: forward against NumPy, float64 gradcheck, the
scatter-add of repeated indices, and the errors of every functional form."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl as md
from minidl import Tensor
from minidl.ops import shape as S
from minidl.testing import check_op

RNG = np.random.default_rng(30)


def normal(*shape):
    return RNG.standard_normal(shape)


# ---- reshape / view / permute / transpose ----------------------------------------
@pytest.mark.parametrize("target", [(6, 4), (4, -1), (-1,), (2, 3, 2, 2), (24,), (1, -1, 1)])
def test_reshape_and_view(target):
    a = normal(2, 3, 4)
    check_op(lambda t: S.reshape(t, *target), lambda a: np.reshape(a, target), [a])
    check_op(lambda t: t.view(target), lambda a: np.reshape(a, target), [a])


@pytest.mark.parametrize("dims", [(0, 1, 2), (2, 0, 1), (1, 2, 0), (-1, 0, -2)])
def test_permute(dims):
    def ref(a):  # out[i, j, k] = a at the permuted position, by explicit loops
        out = np.empty(tuple(a.shape[d] for d in dims))
        for index in np.ndindex(out.shape):
            source = [0, 0, 0]
            for pos, d in enumerate(dims):
                source[d % 3] = index[pos]
            out[index] = a[tuple(source)]
        return out

    check_op(lambda t: S.permute(t, *dims), ref, [normal(2, 3, 4)])
    check_op(lambda t: t.permute(dims), ref, [normal(2, 3, 4)])


@pytest.mark.parametrize("d0, d1", [(0, 1), (0, 2), (-1, -2), (1, 1)])
def test_transpose(d0, d1):
    check_op(lambda t: S.transpose(t, d0, d1), lambda a: np.swapaxes(a, d0, d1), [normal(2, 3, 4)])


# ---- squeeze / unsqueeze / expand / flatten ---------------------------------------
def test_squeeze():
    a = normal(2, 1, 3, 1)
    check_op(S.squeeze, lambda a: a.reshape(2, 3), [a])
    check_op(lambda t: S.squeeze(t, 1), lambda a: a.reshape(2, 3, 1), [a])
    check_op(lambda t: S.squeeze(t, -1), lambda a: a.reshape(2, 1, 3), [a])
    check_op(lambda t: S.squeeze(t, 0), lambda a: a, [a])  # length 2: left alone


@pytest.mark.parametrize("dim, shape", [(0, (1, 2, 3)), (1, (2, 1, 3)), (2, (2, 3, 1)),
                                        (-1, (2, 3, 1)), (-3, (1, 2, 3))])
def test_unsqueeze(dim, shape):
    check_op(lambda t: S.unsqueeze(t, dim), lambda a: a.reshape(shape), [normal(2, 3)])


@pytest.mark.parametrize("in_shape, target", [((3, 1), (3, 4)), ((1, 4), (2, 3, 4)),
                                              ((3, 1), (2, -1, 5)), ((), (2, 2)), ((2,), (2,))])
def test_expand(in_shape, target):
    def ref(a):
        full = tuple(a.shape[i - (len(target) - a.ndim)] if n == -1 else n
                     for i, n in enumerate(target))
        return a * np.ones(full)

    check_op(lambda t: S.expand(t, *target), ref, [normal(*in_shape)])


def test_expand_gradient_sums_over_the_copies():
    x = Tensor(np.array([[1.0], [2.0]]), requires_grad=True)
    x.expand(2, 3).sum().backward()
    np.testing.assert_array_equal(x.grad, [[3.0], [3.0]])


@pytest.mark.parametrize("start, end, shape", [(0, -1, (24,)), (1, -1, (2, 12)), (0, 1, (6, 4)),
                                               (1, 1, (2, 3, 4)), (-2, -1, (2, 12))])
def test_flatten(start, end, shape):
    check_op(lambda t: S.flatten(t, start, end), lambda a: a.reshape(shape), [normal(2, 3, 4)])


# ---- getitem ----------------------------------------------------------------------
MASK_ROWS = np.array([True, False, True, True])
MASK_2D = RNG.random((4, 5)) > 0.4
INDICES = [
    (1,), (slice(1, 3),), (slice(None, None, -1),), (slice(3, 0, -2), slice(None, None, -1)),
    (-1, 2), (Ellipsis, 1), (None, slice(1, 3)), (slice(None), None, 2),
    (np.array([0, 2, 2, 3, 0]),),  # repeated indices
    (np.array([[1, 1], [3, 0]]), np.array([[4, 4], [0, 4]])),  # repeated pairs
    ([0, 0, 1],),  # a list with repeats
    (MASK_ROWS,), (MASK_2D,), (MASK_ROWS, slice(1, 4)), (slice(None, None, 2), MASK_2D[0]),
    (MASK_ROWS, np.array([4, 4, 0])), (np.array([1, 1]), Ellipsis, slice(None, 2)),
]


@pytest.mark.parametrize("index", INDICES, ids=range(len(INDICES)))
def test_getitem(index):
    index = index[0] if len(index) == 1 else index
    check_op(lambda t: t[index], lambda a: a[index], [normal(4, 5)])


def test_getitem_three_d_mixed_index():
    index = (np.array([0, 1, 1]), slice(None), np.array([2, 2, 0]))
    check_op(lambda t: S.getitem(t, index), lambda a: a[index], [normal(2, 3, 4)])


def test_getitem_with_repeated_indices_scatter_adds_the_gradient():
    x = Tensor(np.arange(4.0), requires_grad=True)
    (x[np.array([0, 0, 2, 0])] * Tensor(np.array([1.0, 2.0, 3.0, 4.0]))).sum().backward()
    np.testing.assert_array_equal(x.grad, [7.0, 0.0, 3.0, 0.0])


def test_getitem_with_tensor_indices_and_masks():
    a = normal(4, 3)
    x = Tensor(a, requires_grad=True)
    idx = Tensor(np.array([3, 3, 1]))
    np.testing.assert_array_equal(x[idx].data, a[[3, 3, 1]])
    mask = x > 0
    np.testing.assert_array_equal(x[mask].data, a[a > 0])
    x[mask].sum().backward()
    np.testing.assert_array_equal(x.grad, (a > 0) * 1.0)


# ---- cat / stack / split ------------------------------------------------------------
@pytest.mark.parametrize("dim", [0, 1, -1])
def test_cat(dim):
    shapes = {0: [(1, 3), (2, 3), (3, 3)], 1: [(2, 1), (2, 4), (2, 2)],
              -1: [(2, 1), (2, 4), (2, 2)]}[dim]

    def ref(*arrays):  # place each block by explicit slicing
        axis = dim % 2
        total = sum(a.shape[axis] for a in arrays)
        out = np.empty((total, 3) if axis == 0 else (2, total))
        start = 0
        for a in arrays:
            n = a.shape[axis]
            if axis == 0:
                out[start:start + n] = a
            else:
                out[:, start:start + n] = a
            start += n
        return out

    check_op(lambda *ts: S.cat(ts, dim), ref, [normal(*s) for s in shapes])


@pytest.mark.parametrize("dim", [0, 1, 2, -1])
def test_stack(dim):
    def ref(*arrays):
        out = np.empty((3, 2, 4))
        for k, a in enumerate(arrays):
            out[k] = a
        return np.moveaxis(out, 0, dim)

    check_op(lambda *ts: S.stack(ts, dim), ref, [normal(2, 4) for _ in range(3)])


@pytest.mark.parametrize("size, dim, bounds", [(2, 0, [0, 2, 4, 5]), (3, 1, [0, 3, 4]),
                                               ([1, 3, 1], 0, [0, 1, 4, 5]),
                                               ([4, 0], -1, [0, 4, 4]), (5, 0, [0, 5])])
def test_split(size, dim, bounds):
    def ref(a):
        axis = dim % 2
        return tuple(a[lo:hi] if axis == 0 else a[:, lo:hi] for lo, hi in zip(bounds, bounds[1:]))

    check_op(lambda t: S.split(t, size, dim), ref, [normal(5, 4)])
    assert len(Tensor(normal(5, 4)).split(size, dim)) == len(bounds) - 1


def test_split_pieces_put_their_gradients_back_in_place():
    x = Tensor(np.zeros(5), requires_grad=True)
    a, b = S.split(x, [2, 3])
    (a * 1.0 + 0).sum().backward(retain_graph=True)
    (b * 2.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1, 1, 2, 2, 2])


# ---- pad ------------------------------------------------------------------------
@pytest.mark.parametrize("pad", [(1, 2), (0, 1, 2, 0), (1, 1, 1, 1, 1, 1), ()])
def test_pad_in_pytorch_order(pad):
    value = 0.5

    def ref(a):  # pad = (left, right, top, bottom, front, back): last axis first
        widths = [(0, 0)] * a.ndim
        for k in range(len(pad) // 2):
            widths[a.ndim - 1 - k] = (pad[2 * k], pad[2 * k + 1])
        out = np.full(tuple(n + lo + hi for n, (lo, hi) in zip(a.shape, widths)), value)
        out[tuple(slice(lo, lo + n) for n, (lo, _) in zip(a.shape, widths))] = a
        return out

    check_op(lambda t: S.pad(t, pad, value=value), ref, [normal(2, 3, 4)])


def test_pad_last_axis_first():
    out = S.pad(Tensor(np.ones((1, 2))), (1, 0, 0, 2))
    np.testing.assert_array_equal(out.data, [[0, 1, 1], [0, 0, 0], [0, 0, 0]])


# ---- property: reshape/permute round trips ------------------------------------------
@settings(max_examples=30, deadline=None)
@given(shape=st.lists(st.integers(1, 4), min_size=1, max_size=4), data=st.data())
def test_permute_then_inverse_permute_is_identity_with_identity_gradient(shape, data):
    dims = data.draw(st.permutations(range(len(shape))))
    inverse = list(np.argsort(dims))
    a = np.arange(np.prod(shape), dtype=np.float64).reshape(shape)
    x = Tensor(a, requires_grad=True)
    y = x.permute(dims)
    assert y.shape == tuple(shape[d] for d in dims)
    z = y.permute(inverse).reshape(-1)
    np.testing.assert_array_equal(z.data, a.reshape(-1))
    (z * Tensor(a.reshape(-1))).sum().backward()
    np.testing.assert_array_equal(x.grad, a)


# ---- errors ------------------------------------------------------------------------
def test_reshape_to_the_wrong_size():
    x = Tensor(np.ones((2, 3)))
    for bad in [(4, 2), (-1, 4), (-1, -1), (0, -1), (3, -2)]:
        with pytest.raises(ValueError, match=r"reshape: cannot view a tensor of shape \(2, 3\)"):
            x.reshape(*bad)


def test_permute_not_a_permutation():
    x = Tensor(np.ones((2, 3, 4)))
    for bad in [(0, 1), (0, 1, 1), (0, 1, 2, 3), (0, 1, 5), (0, 1, -4)]:
        with pytest.raises(ValueError, match="permute: .* is not a permutation of the 3 axes"):
            x.permute(*bad)


def test_transpose_dim_out_of_range():
    with pytest.raises(IndexError, match="transpose: dim 2 is out of range"):
        S.transpose(Tensor(np.ones((2, 3))), 0, 2)


def test_expand_errors():
    x = Tensor(np.ones((2, 1)))
    with pytest.raises(ValueError, match="expand: dimension 0 of size 2 cannot become 3"):
        x.expand(3, 4)
    with pytest.raises(ValueError, match="expand: cannot expand shape .* to fewer dimensions"):
        x.expand(4)
    with pytest.raises(ValueError, match="expand: size -1 only keeps an existing dimension"):
        x.expand(-1, 2, 4)


def test_squeeze_unsqueeze_flatten_dim_out_of_range():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match="squeeze: dim 2"):
        x.squeeze(2)
    with pytest.raises(IndexError, match="unsqueeze: dim 3"):
        x.unsqueeze(3)
    with pytest.raises(IndexError, match="flatten: dim 5"):
        x.flatten(5)
    with pytest.raises(ValueError, match="flatten: start_dim 1 comes after end_dim 0"):
        x.flatten(1, 0)


def test_getitem_out_of_range():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(IndexError, match=r"getitem: index .* is invalid for shape \(2, 3\)"):
        x[2]
    with pytest.raises(IndexError, match="getitem"):
        x[np.array([0, 5])]
    with pytest.raises(IndexError, match="getitem"):
        x[np.array([True, False, True])]
    with pytest.raises(IndexError, match="getitem"):
        x[0, 0, 0]


def test_cat_errors():
    with pytest.raises(ValueError, match=r"cat: tensor 1 has shape \(2, 4\), incompatible with"):
        S.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))], dim=0)
    with pytest.raises(ValueError, match="cat: tensor 1 has shape"):
        S.cat([Tensor(np.ones((2, 3))), Tensor(np.ones(3))])
    with pytest.raises(ValueError, match="cat: expected a non-empty list"):
        S.cat([])
    with pytest.raises(IndexError, match="cat: dim 2"):
        S.cat([Tensor(np.ones((2, 3)))], dim=2)
    with pytest.raises(ValueError, match="cat: zero-dimensional"):
        S.cat([Tensor(1.0), Tensor(2.0)])


def test_stack_errors():
    with pytest.raises(ValueError, match=r"stack: tensor 1 has shape \(3,\), expected \(2,\)"):
        S.stack([Tensor(np.ones(2)), Tensor(np.ones(3))])
    with pytest.raises(ValueError, match="stack: expected a non-empty list"):
        S.stack([])


def test_split_errors():
    x = Tensor(np.ones((5, 2)))
    with pytest.raises(ValueError, match=r"split: sections \[2, 2\] must be non-negative"):
        S.split(x, [2, 2])
    with pytest.raises(ValueError, match="split: sections"):
        S.split(x, [6, -1])
    with pytest.raises(ValueError, match="split: split size must be positive"):
        S.split(x, 0)
    with pytest.raises(IndexError, match="split: dim 2"):
        S.split(x, 1, dim=2)


def test_pad_errors():
    x = Tensor(np.ones((2, 3)))
    with pytest.raises(ValueError, match="pad: pad .* must have an even length"):
        S.pad(x, (1, 2, 3))
    with pytest.raises(ValueError, match="pad: pad .* must have an even length"):
        S.pad(x, (1, 1, 1, 1, 1, 1))
    with pytest.raises(ValueError, match="pad: negative padding"):
        S.pad(x, (-1, 0))
    with pytest.raises(ValueError, match="pad: only mode='constant'"):
        S.pad(x, (1, 1), mode="reflect")


def test_top_level_names():
    assert md.reshape is S.reshape and md.cat is S.cat and md.split is S.split


# ---- narrow, repeat, chunk, t, clone, contiguous, view_as, expand_as -------------------
@pytest.mark.parametrize("dim, start, length", [(0, 1, 2), (1, -3, 2), (2, 0, 4), (1, 4, 0)])
def test_narrow(dim, start, length):
    a = normal(3, 4, 4)

    def ref(a):
        first = start + a.shape[dim] if start < 0 else start
        return np.take(a, np.arange(first, first + length), axis=dim)

    check_op(lambda t: S.narrow(t, dim, start, length), ref, [a])
    if length:
        assert Tensor(a).narrow(dim, start, length)._base is not None  # a view, as PyTorch


def test_narrow_errors():
    with pytest.raises(IndexError, match="narrow: start 3 and length 2 do not fit in dim 0"):
        Tensor(normal(4)).narrow(0, 3, 2)
    with pytest.raises(IndexError, match="narrow: start -5"):
        Tensor(normal(4)).narrow(0, -5, 1)


@pytest.mark.parametrize("sizes", [(2,), (2, 3), (1, 1), (3, 1, 2), (0, 2)])
def test_repeat_tiles_like_pytorch(sizes):
    a = normal(2, 3) if len(sizes) >= 2 else normal(3)

    def ref(a):  # out[i] = a[i mod n] along each axis, written as loops over the output
        lead = len(sizes) - a.ndim
        base = a.reshape((1,) * lead + a.shape)
        out = np.empty(tuple(r * n for r, n in zip(sizes, base.shape)))
        for pos in np.ndindex(out.shape):
            out[pos] = base[tuple(p % n for p, n in zip(pos, base.shape))]
        return out

    check_op(lambda t: t.repeat(*sizes), ref, [a])


def test_repeat_errors():
    with pytest.raises(ValueError, match="repeat: expected at least 2 non-negative int"):
        Tensor(normal(2, 3)).repeat(2)
    with pytest.raises(ValueError, match="repeat"):
        Tensor(normal(3)).repeat(-1)


@pytest.mark.parametrize("n, chunks, sizes", [(6, 3, [2, 2, 2]), (5, 2, [3, 2]), (6, 4, [2, 2, 2]),
                                              (1, 3, [1])])
def test_chunk_as_pytorch(n, chunks, sizes):
    pieces = Tensor(normal(2, n)).chunk(chunks, dim=1)
    assert [p.shape[1] for p in pieces] == sizes
    with pytest.raises(ValueError, match="chunk: chunks must be a positive int"):
        md.chunk(Tensor(normal(3)), 0)


def test_t_clone_contiguous_view_as_expand_as():
    a = normal(3, 4)
    check_op(lambda x: x.t(), lambda a: np.swapaxes(a, 0, 1), [a])
    v = Tensor(normal(4))
    assert v.t() is v
    with pytest.raises(ValueError, match="t: expects a tensor with at most 2 dimensions"):
        Tensor(normal(2, 2, 2)).t()
    check_op(lambda x: x.clone(), lambda a: a, [a])
    x = Tensor(a)
    c = x.clone()
    assert c.data is not x.data and not np.shares_memory(c.data, x.data)
    assert x.contiguous() is x
    transposed = x.t()
    made = transposed.contiguous()
    assert made is not transposed and made.data.flags.c_contiguous
    check_op(lambda t: t.t().contiguous(), lambda a: a.T, [a])
    check_op(lambda t: t.view_as(Tensor(np.zeros((2, 6)))), lambda a: a.reshape(2, 6), [a])
    check_op(lambda t: t.expand_as(Tensor(np.zeros((3, 2, 4)))),
             lambda a: np.stack([a, a, a]), [normal(2, 4)])


# ---- setitem ------------------------------------------------------------------------
def setitem_reference(a, index, value):
    out = a.copy()
    out[index] = value
    return out


@pytest.mark.parametrize("index, value_shape", [
    ((slice(1, 3),), (2, 4)), ((slice(None), 2), (3,)), ((1,), (4,)), ((1,), ()),
    ((np.array([0, 2]),), (2, 4)), ((slice(None), np.array([3, 0])), (1, 2)),
])
def test_setitem_values_and_gradients(index, value_shape):
    a, value = normal(3, 4), normal(*value_shape)
    check_op(lambda t, v: S.setitem(t, index, v),
             lambda a, v: setitem_reference(a, index, v), [a, value])


def test_setitem_with_a_mask_and_with_repeated_positions():
    a = normal(3, 4)
    mask = a > 0
    check_op(lambda t: S.setitem(t, mask, 0.0), lambda a: np.where(mask, 0.0, a), [a])
    # repeated positions: the last write wins, and only it gets the gradient
    value = normal(3, 4)
    index = (np.array([1, 1, 0]),)
    check_op(lambda t, v: S.setitem(t, index, v),
             lambda a, v: setitem_reference(a, index, v), [a, value])


def test_setitem_as_pytorch_code_writes_it():
    x = md.tensor([1.0, -2.0, 3.0, -4.0])
    x[x < 0] = 0.0
    x[0] = 9
    assert x.tolist() == [9.0, 0.0, 3.0, 0.0] and x._version == 2
    with pytest.raises(IndexError, match=r"setitem: cannot write a value of shape \(3,\)"):
        x[:2] = np.ones(3)
    assert x._version == 2
