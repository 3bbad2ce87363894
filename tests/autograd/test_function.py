"""Function: the version counter (saved tensors changed in place raise at backward, others do
not), private index arrays, custom Functions with a wrong backward, next_functions, views."""

import numpy as np
import pytest

import minidl as md
from minidl import Function, Tensor, no_grad
from minidl.autograd.function import AccumulateGrad

RNG = np.random.default_rng(5)


def leaf(*shape):
    return Tensor(RNG.standard_normal(shape), requires_grad=True)


# ---- the version counter ------------------------------------------------------------
def test_changing_a_saved_input_in_place_raises_naming_op_input_and_versions():
    x, w = leaf(3, 4), leaf(3, 4)
    h = x * 2
    loss = (h * w).sum()  # Mul saves h (input 0) and w (input 1)
    with no_grad():
        w.zero_()
    before = x.grad
    with pytest.raises(RuntimeError, match=r"backward: Mul saved input 1 \(shape \[3, 4\]\) at "
                                           r"version 0, but it has been modified in place "
                                           r"since \(now version 1\)"):
        loss.backward()
    assert x.grad is before is None and w.grad is None  # raised before any .grad changed


def test_zeroing_a_non_leaf_that_a_later_op_saved_raises():
    # issue 14's first silent wrong gradient: y.zero_() then z.backward()
    x = leaf(3)
    y = x * 3
    z = (y * y).sum()
    with no_grad():
        y.zero_()
    with pytest.raises(RuntimeError, match="Mul saved input 0"):
        z.backward()


def test_an_op_that_saved_its_output_raises_when_the_output_changes():
    x = leaf(3)
    for make, name in [(lambda t: t.exp(), "Exp"), (lambda t: t.tanh(), "Tanh"),
                       (lambda t: t.sigmoid(), "Sigmoid")]:
        y = make(x)
        loss = y.sum()
        with no_grad():
            y.add_(1.0)
        with pytest.raises(RuntimeError, match=rf"{name} saved its output \(shape \[3\]\) at "
                                               r"version 0.*now version 1"):
            loss.backward()


def test_ops_that_did_not_save_the_changed_tensor_do_not_raise():
    # Add saves nothing, so changing its input afterwards cannot spoil its gradient
    # (PyTorch does not raise either).
    x = leaf(3)
    y = x * 2
    loss = (y + 1.0).sum()
    with no_grad():
        y.mul_(5.0)
    loss.backward()
    np.testing.assert_allclose(x.grad, 2.0)


def test_optimizer_step_between_forward_and_backward_raises():
    # The optimizer helper makes every update do p._version += 1; simulated here.
    md.manual_seed(0)
    w = Tensor(RNG.standard_normal((4, 3)), requires_grad=True)
    x = Tensor(RNG.standard_normal((5, 4)))
    loss = (x @ w).tanh().sum()  # MatMul saves w (input 1)
    with no_grad():
        w.sub_(0.1 * np.ones((4, 3)))
    with pytest.raises(RuntimeError, match=r"MatMul saved input 1 \(shape \[4, 3\]\) at version "
                                           r"0.*now version 1"):
        loss.backward()
    w._version += 1  # what an optimizer does: the same check sees it
    loss = (x @ w).sum()
    w._version += 1
    with pytest.raises(RuntimeError, match="now version 3"):
        loss.backward()


def test_an_in_place_change_of_a_view_counts_on_its_base():
    x = leaf(2, 3)
    h = x * 1.0
    loss = (h * h).sum()  # saves h
    with no_grad():
        h[0].zero_()  # a view of h: same memory
    assert h._version == 1
    with pytest.raises(RuntimeError, match="Mul saved input 0"):
        loss.backward()
    # and the other way round: the op saved a view, the base changed
    g = x * 1.0
    row = g[1]
    loss = (row * row).sum()
    with no_grad():
        g.add_(1.0)
    with pytest.raises(RuntimeError, match=r"Mul saved input 0 \(shape \[3\]\)"):
        loss.backward()


def test_detach_shares_the_version_counter():
    w = leaf(3)
    loss = (w * w).sum()
    w.detach().zero_()  # PyTorch raises at backward here too
    assert w._version == 1
    with pytest.raises(RuntimeError, match="Mul saved input 0"):
        loss.backward()


def test_the_check_is_freed_with_the_graph_and_rerun_with_retain_graph():
    x = leaf(3)
    y = x * 1.0
    loss = (y * y).sum()
    loss.backward(retain_graph=True)
    with no_grad():
        y.add_(1.0)
    with pytest.raises(RuntimeError, match="modified in place"):
        loss.backward()


def test_a_saved_view_of_a_weight_is_checked_against_the_weight():
    # Linear saves weight.T (a view): an update of weight must still be seen.
    import minidl.nn.functional as F

    w, b = leaf(2, 3), leaf(2)
    loss = F.linear(Tensor(RNG.standard_normal((4, 3))), w, b).sum()
    with no_grad():
        w -= 0.1 * np.ones((2, 3))
    with pytest.raises(RuntimeError, match="MatMul saved input 1"):
        loss.backward()


# ---- index arrays are private ------------------------------------------------------
def test_changing_the_index_array_after_indexing_does_not_change_the_gradient():
    # issue 14's third silent wrong gradient
    x = leaf(5)
    idx = np.array([0, 0, 3])
    y = x[idx]
    idx[:] = 4
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [2.0, 0.0, 0.0, 1.0, 0.0])
    # a list index too, and an index Tensor changed with an in-place method
    x.grad = None
    positions = [1, 1]
    y = x[positions]
    positions[0] = 2
    y.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 2.0, 0.0, 0.0, 0.0])


def test_embedding_indices_are_private():
    import minidl.nn.functional as F

    weight = leaf(4, 2)
    idx = Tensor(np.array([1, 1, 2]))
    out = F.embedding(idx, weight)
    idx.fill_(0)
    out.sum().backward()
    np.testing.assert_array_equal(weight.grad[:, 0], [0.0, 2.0, 1.0, 0.0])


def test_a_where_mask_given_as_an_array_is_private_and_as_a_tensor_is_checked():
    x = leaf(3)
    mask = np.array([True, False, True])
    out = md.where(mask, x, 0.0)
    mask[:] = False
    out.sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 0.0, 1.0])
    mask_t = Tensor(np.array([True, False, True]))
    out = md.where(mask_t, x, 0.0)
    mask_t.fill_(False)
    with pytest.raises(RuntimeError, match="Where saved input 0"):
        out.sum().backward()


# ---- custom Functions with a wrong backward ------------------------------------------
class TwoInputs(Function):
    def forward(ctx, a, b):
        return a * b


def make_function(backward):
    return type("Broken", (TwoInputs,), {"backward": backward})


def test_backward_returning_too_few_gradients_names_the_function():
    Broken = make_function(lambda ctx, grad: grad)
    x, y = leaf(3), leaf(3)
    with pytest.raises(RuntimeError, match=r"Broken\.backward returned 1 gradient\(s\), but its "
                                           r"forward took 2 input\(s\)"):
        Broken.apply(x, y).sum().backward()
    Broken = make_function(lambda ctx, grad: (grad, grad, grad))
    with pytest.raises(RuntimeError, match=r"returned 3 gradient\(s\)"):
        Broken.apply(x, y).sum().backward()


def test_backward_returning_a_wrong_shape_names_function_input_and_shapes():
    Broken = make_function(lambda ctx, grad: (grad, grad[:2]))
    x, y = leaf(3), leaf(3)
    with pytest.raises(RuntimeError, match=r"Broken\.backward returned a gradient of shape "
                                           r"\(2,\) for input 1, which has shape \(3,\)"):
        Broken.apply(x, y).sum().backward()
    # a shape that the input broadcasts to is fine: the engine sums it back
    Sums = make_function(lambda ctx, grad: (grad, np.ones((2, 3))))
    x.grad = y.grad = None
    Sums.apply(x, y).sum().backward()
    np.testing.assert_allclose(y.grad, 2.0)


# ---- next_functions and edges -------------------------------------------------------
def test_next_functions_follow_pytorch():
    x = leaf(3)
    c = Tensor(np.ones(3))
    h = x * 2.0
    y = h + c
    (fn_h, k), (fn_c, j) = y.grad_fn.next_functions
    assert fn_h is h.grad_fn and k == 0 and fn_c is None and j == 0
    ((acc, _), (none, _)) = h.grad_fn.next_functions
    assert isinstance(acc, AccumulateGrad) and acc.variable is x and none is None
    y.sum().backward()
    assert y.grad_fn.next_functions == ()  # freed with the graph


def test_an_in_place_op_does_not_reroute_nodes_recorded_before_it():
    # y = h + 1 was recorded before h.mul_(3): y's gradient must not pass through the mul_.
    x = leaf(3)
    h = x * 2.0
    y = h + 1.0
    h.mul_(3.0)  # recorded: h is a non-leaf
    y.sum().backward(retain_graph=True)  # keep x * 2, which h's new graph also goes through
    np.testing.assert_allclose(x.grad, 2.0)
    x.grad = None
    h.sum().backward()
    np.testing.assert_allclose(x.grad, 6.0)


def test_views_know_their_base():
    x = Tensor(np.arange(6.0).reshape(2, 3))
    for view in (x[0], x.reshape(3, 2), x.T, x.expand(2, 2, 3), x.detach(), x[:, 1:][0]):
        assert view._base is x
    assert x[np.array([0, 1])]._base is None  # integer-array indexing copies
    assert (x * 1)._base is None
