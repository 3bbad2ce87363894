"""The backward engine: accumulation, shared subgraphs, un-broadcasting, graph freeing,
grad modes, retain_grad, long chains, detach and anomaly mode."""

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl as md
from minidl import Tensor

RNG = np.random.default_rng(2)


def leaf(*shape, low=-1.0, high=1.0):
    return Tensor(RNG.uniform(low, high, shape), requires_grad=True)


# ---- accumulation and shared paths -----------------------------------------------
def test_gradients_accumulate_into_leaves_across_backward_calls():
    a = np.array([1.0, -2.0, 3.0])
    x = Tensor(a, requires_grad=True)
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * a)
    (x * 3).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * a + 3)


def test_a_tensor_used_twice_gets_the_sum_of_both_paths():
    a = np.array([1.0, 2.0])
    x = Tensor(a, requires_grad=True)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(x.grad, 2 * a + 1)


def test_shared_intermediate_reached_through_paths_of_different_length():
    # b feeds the root directly and through c = 3 b: the engine must not run b's
    # backward before c's contribution arrives (a wrong topological order gives 2, not 8).
    x = Tensor([1.0, 2.0], requires_grad=True)
    b = x * 2
    (b + b * 3).sum().backward()
    np.testing.assert_allclose(x.grad, [8.0, 8.0])
    y = Tensor([1.0, 2.0], requires_grad=True)
    b = y * 2
    (b * 3 + b).sum().backward()
    np.testing.assert_allclose(y.grad, [8.0, 8.0])


def test_diamond_graph_against_the_chain_rule_by_hand():
    a = np.array([0.3, -0.7, 1.1])
    x = Tensor(a, requires_grad=True)
    u = x * 2
    loss = (u.exp() + u * u).sum()  # d/dx = 2 e^(2x) + 8x
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * np.exp(2 * a) + 8 * a)


def test_only_leaves_that_require_grad_get_a_grad():
    x = leaf(3)
    c = Tensor(np.ones(3))
    h = x * c
    (h * h).sum().backward()
    assert c.grad is None and h.grad is None and x.grad is not None


def test_backward_on_a_leaf_fills_its_own_grad():
    x = Tensor(np.array(2.0), requires_grad=True)
    x.backward()
    x.backward()
    np.testing.assert_allclose(x.grad, 2.0)


# ---- un-broadcasting: property test -----------------------------------------------
@st.composite
def broadcastable_shapes(draw):
    """Two shapes that broadcast: each drops some leading axes of a base shape and
    turns some of its axes into 1."""
    base = draw(st.lists(st.integers(1, 3), min_size=0, max_size=4))
    shapes = []
    for _ in range(2):
        drop = draw(st.integers(0, len(base)))
        dims = [1 if draw(st.booleans()) else n for n in base[drop:]]
        shapes.append(tuple(dims))
    return shapes


def sum_to_shape_by_loops(full, shape):
    """Reference un-broadcast: add every element of ``full`` into the input element it
    was read from (index 0 along an axis of length 1, leading axes dropped)."""
    out = np.zeros(shape)
    lead = full.ndim - len(shape)
    for index in np.ndindex(full.shape):
        source = tuple(0 if n == 1 else i for i, n in zip(index[lead:], shape))
        out[source] += full[index]
    return out


# name: (op, partial derivatives d out/da, d out/db, both broadcast to the output shape)
BROADCAST_OPS = {
    "add": (lambda a, b: a + b, lambda a, b: 1 + 0 * (a * b), lambda a, b: 1 + 0 * (a * b)),
    "sub": (lambda a, b: a - b, lambda a, b: 1 + 0 * (a * b), lambda a, b: -1 + 0 * (a * b)),
    "mul": (lambda a, b: a * b, lambda a, b: b + 0 * a, lambda a, b: a + 0 * b),
    "div": (lambda a, b: a / b, lambda a, b: 1 / b + 0 * a, lambda a, b: -a / (b * b)),
    "maximum": (md.maximum, lambda a, b: (a > b) * 1.0, lambda a, b: (b > a) * 1.0),
}


@settings(max_examples=25, deadline=None)
@given(shapes=broadcastable_shapes(), name=st.sampled_from(sorted(BROADCAST_OPS)),
       seed=st.integers(0, 2**16))
def test_unbroadcast_property_for_binary_ops(shapes, name, seed):
    rng = np.random.default_rng(seed)
    op, da, db = BROADCAST_OPS[name]
    sa, sb = shapes
    a = rng.uniform(0.5, 2.0, sa) * rng.choice([-1, 1], sa)
    b = rng.uniform(0.5, 2.0, sb) * rng.choice([-1, 1], sb)  # |b| >= 0.5: div is safe
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = op(x, y)
    g = rng.standard_normal(out.shape)
    (out * Tensor(g)).sum().backward()
    assert x.grad.shape == sa and y.grad.shape == sb
    np.testing.assert_allclose(x.grad, sum_to_shape_by_loops(da(a, b) * g, sa), atol=1e-12)
    np.testing.assert_allclose(y.grad, sum_to_shape_by_loops(db(a, b) * g, sb), atol=1e-12)


@settings(max_examples=25, deadline=None)
@given(shapes=broadcastable_shapes(), cond_shape_index=st.integers(0, 1), seed=st.integers(0, 99))
def test_unbroadcast_property_for_where(shapes, cond_shape_index, seed):
    rng = np.random.default_rng(seed)
    sa, sb = shapes
    cond = rng.random(shapes[cond_shape_index]) > 0.5
    a, b = rng.standard_normal(sa), rng.standard_normal(sb)
    x, y = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    out = md.where(cond, x, y)
    g = rng.standard_normal(out.shape)
    (out * Tensor(g)).sum().backward()
    full_cond = np.broadcast_to(cond, out.shape)
    np.testing.assert_allclose(x.grad, sum_to_shape_by_loops(np.where(full_cond, g, 0), sa))
    np.testing.assert_allclose(y.grad, sum_to_shape_by_loops(np.where(full_cond, 0, g), sb))


# ---- graph freeing and retain_graph ------------------------------------------------
def test_second_backward_through_a_freed_graph_raises_and_changes_no_grad():
    x = Tensor([1.0, 2.0], requires_grad=True)
    loss = (x * x).sum()
    loss.backward()
    before = x.grad.copy()
    with pytest.raises(RuntimeError, match="freed.*retain_graph=True"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, before)


def test_partly_freed_graph_raises_before_any_grad_changes():
    x = Tensor([1.0, 2.0], requires_grad=True)
    w = Tensor([5.0, 5.0], requires_grad=True)
    h = x * 2
    h.sum().backward()  # frees h's node
    before = x.grad.copy()
    loss = (w * x + h).sum()  # a fresh node (w * x) next to the freed one
    with pytest.raises(RuntimeError, match="freed"):
        loss.backward()
    np.testing.assert_array_equal(x.grad, before)
    assert w.grad is None


def test_retain_graph_allows_a_second_backward():
    a = np.array([1.0, 2.0])
    x = Tensor(a, requires_grad=True)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_allclose(x.grad, 4 * a)


# ---- backward's arguments ---------------------------------------------------------
def test_backward_on_a_non_scalar_without_grad_raises():
    x = leaf(2, 3)
    with pytest.raises(RuntimeError, match="one-element tensor"):
        (x * 2).backward()
    assert x.grad is None


def test_backward_with_a_grad_argument():
    x = leaf(2, 3)
    g = RNG.standard_normal((2, 3))
    (x * 3).backward(g)
    np.testing.assert_allclose(x.grad, 3 * g)
    x.grad = None
    (x * 3).backward(grad=Tensor(g))
    np.testing.assert_allclose(x.grad, 3 * g)
    with pytest.raises(ValueError, match=r"backward: grad has shape \(3,\)"):
        (x * 3).backward(np.ones(3))


def test_backward_on_a_tensor_that_needs_no_grad_raises():
    with pytest.raises(RuntimeError, match="does not require grad"):
        (Tensor([1.0]) * 2).sum().backward()


# ---- grad modes -----------------------------------------------------------------
def test_no_grad_records_nothing_and_nests_with_enable_grad():
    x = leaf(3)
    assert md.is_grad_enabled()
    with md.no_grad():
        assert not md.is_grad_enabled()
        y = x * 2
        with md.enable_grad():
            assert md.is_grad_enabled()
            z = x * 2
            with md.no_grad():
                w = x * 2
            assert md.is_grad_enabled()
        assert not md.is_grad_enabled()
    assert md.is_grad_enabled()
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert not w.requires_grad


def test_no_grad_restores_the_mode_after_an_exception():
    with pytest.raises(KeyError), md.no_grad():
        raise KeyError("boom")
    assert md.is_grad_enabled()


def test_no_grad_and_enable_grad_as_decorators():
    x = leaf(2)

    @md.no_grad()
    def evaluate(t):
        return t * 2

    @md.enable_grad()
    def train(t):
        return t * 2

    assert not evaluate(x).requires_grad
    with md.no_grad():
        assert train(x).requires_grad
    assert md.is_grad_enabled()


def test_set_grad_enabled():
    x = leaf(2)
    try:
        md.set_grad_enabled(False)
        assert not (x * 2).requires_grad
    finally:
        md.set_grad_enabled(True)
    assert (x * 2).requires_grad


# ---- retain_grad ----------------------------------------------------------------
def test_retain_grad_keeps_the_grad_of_a_non_leaf():
    a = np.array([1.0, -2.0])
    x = Tensor(a, requires_grad=True)
    h = x * 3
    h.retain_grad()
    other = x * 2
    (h * h + other).sum().backward(retain_graph=True)
    np.testing.assert_allclose(h.grad, 2 * 3 * a)
    assert other.grad is None
    (h * h + other).sum().backward()  # accumulates, like a leaf's grad
    np.testing.assert_allclose(h.grad, 4 * 3 * a)


def test_retain_grad_on_a_leaf_is_harmless():
    x = leaf(2)
    x.retain_grad()
    (x * 2).sum().backward()
    np.testing.assert_allclose(x.grad, 2.0)


# ---- long chains and detach -------------------------------------------------------
def test_a_10000_op_chain_backward_has_no_recursion_limit():
    limit = sys.getrecursionlimit()
    x = Tensor(np.array([1.0]), requires_grad=True)
    b = Tensor(np.array([0.5]), requires_grad=True)
    c = x
    for _ in range(10_000):
        c = c + b
    c.sum().backward()
    np.testing.assert_allclose(c.data, [5001.0])
    np.testing.assert_allclose(x.grad, [1.0])
    np.testing.assert_allclose(b.grad, [10_000.0])
    assert sys.getrecursionlimit() == limit


def test_a_10000_op_multiplicative_chain():
    x = Tensor(np.array([2.0]), requires_grad=True)
    c = x
    for _ in range(10_000):
        c = c * 1.0001
    c.sum().backward()
    np.testing.assert_allclose(x.grad, [1.0001**10_000], rtol=1e-9)


def test_detach_cuts_the_graph():
    x = Tensor(np.array([3.0]), requires_grad=True)
    y = x * x
    z = y.detach() * x + y  # d/dx = y + 2x = x^2 + 2x
    z.sum().backward()
    np.testing.assert_allclose(x.grad, [9.0 + 6.0])


# ---- anomaly mode -----------------------------------------------------------------
def test_anomaly_mode_names_the_op_that_made_nan_in_forward():
    x = Tensor([1.0, -1.0], requires_grad=True)
    y = x * 2
    with pytest.raises(md.AnomalyError, match=r"Log\.forward"), md.detect_anomaly():
        y.log()


def test_anomaly_mode_names_the_op_that_made_inf_in_backward():
    x = Tensor([0.0, 4.0], requires_grad=True)
    with md.detect_anomaly():
        loss = (x.sqrt() * 3).sum()  # forward is finite: sqrt(0) = 0
        with pytest.raises(md.AnomalyError, match=r"Sqrt\.backward"):
            loss.backward()
    assert x.grad is None  # the error came before the leaf was reached


def test_anomaly_mode_is_silent_on_finite_graphs_and_switches_off():
    x = leaf(3, low=0.5, high=2.0)
    with md.detect_anomaly():
        (x.log() * x.sqrt()).sum().backward()
    assert np.isfinite(x.grad).all()
    from minidl.autograd import mode
    assert not mode.anomaly_enabled


def test_outside_anomaly_mode_nan_and_inf_pass_silently():
    x = Tensor([-1.0, 0.0], requires_grad=True)
    with np.errstate(all="ignore"):  # only NumPy's own warnings, which tests turn into errors
        y = x.log()
        assert np.isnan(y.data[0]) and np.isneginf(y.data[1])
        x.sqrt().sum().backward()
    assert np.isinf(x.grad[1])


# ---- leaf gradients never alias each other or an op's arrays --------------------------------
class ReturnsSaved(md.Function):
    """A backward that hands back an array it saved (legal, if unusual)."""

    def forward(ctx, x):
        ctx.save_for_backward(np.full_like(x, 2.0))
        return x * 2

    def backward(ctx, grad):
        (two,) = ctx.saved_tensors
        return two


class SameArrayTwice(md.Function):
    def forward(ctx, a, b):
        return a + b

    def backward(ctx, grad):
        g = grad * 1.0  # a fresh array, given to both inputs
        return g, g


@pytest.mark.parametrize("make", [
    lambda a, b: a + b,                                   # Add passes the gradient through
    lambda a, b: SameArrayTwice.apply(a, b),              # one fresh array for two inputs
    lambda a, b: (a * 3).sum() + (b * 3).sum(),            # fresh arrays (kept without a copy)
    lambda a, b: a.reshape(2, 3).sum() + b.T.sum(),        # views of an op's array
])
def test_changing_one_leaf_grad_in_place_never_changes_another(make):
    a = Tensor(np.ones((3, 2)), requires_grad=True)
    b = Tensor(np.ones((3, 2)), requires_grad=True)
    out = make(a, b)
    out.backward(np.ones(out.shape, dtype=out.dtype) if out.ndim else None)
    before = b.grad.copy()
    a.grad *= 100  # what clip_grad_norm_ or zero_grad(set_to_none=False) do to a .grad
    np.testing.assert_array_equal(b.grad, before)
    assert a.grad is not b.grad and not np.shares_memory(a.grad, b.grad)


def test_a_leaf_grad_is_not_an_array_the_op_saved():
    x = Tensor(np.ones(3), requires_grad=True)
    y = ReturnsSaved.apply(x)
    y.backward(np.ones(3), retain_graph=True)
    x.grad[:] = 0  # in place, between two backward passes through the same graph
    y.backward(np.ones(3))
    np.testing.assert_array_equal(x.grad, [2.0, 2.0, 2.0])


def test_a_large_transposed_gradient_reaches_the_leaf_as_an_owned_c_contiguous_copy():
    """nn.Linear's weight gradient arrives as a transposed view; the engine copies it tile by
    tile (minidl/kernels/copy.py) above 64K entries: the same numbers as NumPy's copy."""
    import minidl.nn.functional as F
    from minidl.autograd import engine

    rng = np.random.default_rng(0)
    x = rng.standard_normal((5, 300)).astype(np.float32)
    for out_features in (3, 300):  # 900 entries: NumPy's copy; 90,000: the tiled one
        w = Tensor(rng.standard_normal((out_features, 300)).astype(np.float32),
                   requires_grad=True)
        g = rng.standard_normal((5, out_features)).astype(np.float32)
        F.linear(Tensor(x), w).backward(g)
        np.testing.assert_array_equal(w.grad, np.matmul(x.T, g).T)
        assert w.grad.flags.c_contiguous and w.grad.flags.owndata
    assert 3 * 300 < engine._TILED_COPY_MIN <= 300 * 300
