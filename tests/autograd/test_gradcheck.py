"""gradcheck itself: it must pass correct ops and catch wrong ones."""

import numpy as np
import pytest

import minidl as md
from minidl import Function, GradcheckError, Tensor, gradcheck

RNG = np.random.default_rng(3)


class Square(Function):
    """z = a^2, dz/da = 2a (correct)."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * 2 * a


class WrongSquare(Function):
    """z = a^2 with a deliberately wrong backward 3a."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return a * a

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * 3 * a


class OneWrongElement(Function):
    """z = 2a with the gradient of element 4 (flat index) off by 0.01."""

    def forward(ctx, a):
        return 2 * a

    def backward(ctx, grad):
        g = 2 * grad
        g.reshape(-1)[4] += 0.01
        return g


class WrongSecondInput(Function):
    """z = a * b with dz/db wrong (returns b instead of a)."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        return grad * b, grad * b


def x64(*shape):
    return Tensor(RNG.standard_normal(shape), requires_grad=True)


def test_passes_on_a_correct_op():
    assert gradcheck(Square.apply, [x64(3, 4)])
    assert gradcheck(lambda a, b: a * b + a.exp(), [x64(2, 3), x64(3)])


def test_raises_on_a_wrong_backward():
    with pytest.raises(GradcheckError, match="disagrees"):
        gradcheck(WrongSquare.apply, [x64(3, 4)])
    assert gradcheck(WrongSquare.apply, [x64(3, 4)], raise_exception=False) is False


def test_catches_a_single_wrong_element_and_names_it():
    with pytest.raises(GradcheckError, match=r"index \(1, 1\).*1 of 6 elements"):
        gradcheck(OneWrongElement.apply, [x64(2, 3)])


def test_catches_a_wrong_gradient_of_the_second_input():
    with pytest.raises(GradcheckError, match="input 1"):
        gradcheck(WrongSecondInput.apply, [x64(3), x64(3)])


def test_rejects_float32_inputs():
    x = Tensor(np.ones(3, dtype=np.float32), requires_grad=True)
    with pytest.raises(TypeError, match="float64"):
        gradcheck(Square.apply, [x])


def test_needs_an_input_that_requires_grad():
    with pytest.raises(ValueError, match="no input has requires_grad"):
        gradcheck(Square.apply, [Tensor(np.ones(3))])


def test_works_with_tuple_outputs():
    def two(a, b):
        return a * b, a + b.exp()

    assert gradcheck(two, [x64(2, 3), x64(2, 3)])

    def one_wrong(a):
        return Square.apply(a), WrongSquare.apply(a)

    with pytest.raises(GradcheckError):
        gradcheck(one_wrong, [x64(4)])


def test_ignores_integer_outputs_and_passes_constant_inputs_through():
    def values_and_indices(a, c):
        v, i = md.max(a * c, dim=1)
        return v, i

    c = Tensor(RNG.uniform(1, 2, (3, 4)))  # does not require grad: not checked
    assert gradcheck(values_and_indices, [x64(3, 4), c])


def test_works_with_non_contiguous_inputs_and_leaves_them_untouched():
    base = RNG.standard_normal((4, 6))
    for array in (base.T, base[::2, ::3], base[:, 1]):
        assert not array.flags.c_contiguous
        x = Tensor(array, requires_grad=True)
        x.grad = np.full(array.shape, 7.0)
        before = array.copy()
        assert gradcheck(lambda a: (a * a).sum() * a, [x])
        assert x.data is array  # same array object, same values, same grad as before
        np.testing.assert_array_equal(array, before)
        np.testing.assert_array_equal(x.grad, 7.0)


def test_works_when_called_under_no_grad():
    with md.no_grad():
        assert gradcheck(Square.apply, [x64(3)])
        with pytest.raises(GradcheckError):
            gradcheck(WrongSquare.apply, [x64(3)])


def test_an_output_that_does_not_depend_on_the_input_has_zero_gradient():
    assert gradcheck(lambda a: Tensor(np.ones(3)) * 2.0, [x64(3)])
