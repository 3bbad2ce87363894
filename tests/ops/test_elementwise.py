"""Elementwise primitives: forward against NumPy formulas, float64 gradcheck over every
element, tie and bound behaviour, and the errors of the functional forms."""

import numpy as np
import pytest

import minidl as md
from minidl import Tensor
from minidl.ops import elementwise as E
from minidl.testing import check_op

RNG = np.random.default_rng(10)


def normal(*shape):
    return RNG.standard_normal(shape)


def positive(*shape, low=0.5, high=2.0):
    return RNG.uniform(low, high, shape)


def away_from(values, points, gap=0.1):
    """Move every element at least ``gap`` away from each of ``points`` (kinks of an op)."""
    values = values.copy()
    for p in points:
        close = np.abs(values - p) < gap
        values[close] = p + np.where(values[close] >= p, gap, -gap) * 2
    return values


# ---- binary arithmetic ---------------------------------------------------------
SHAPE_PAIRS = [((3, 4), (3, 4)), ((3, 4), (4,)), ((2, 1, 3), (4, 1)), ((), (2, 3))]


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
def test_add(sa, sb):
    check_op(E.add, lambda a, b: a + b, [normal(*sa), normal(*sb)])


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
def test_sub(sa, sb):
    check_op(E.sub, lambda a, b: a + (-1.0) * b, [normal(*sa), normal(*sb)])


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
def test_mul(sa, sb):
    check_op(E.mul, lambda a, b: np.einsum("...,...->...", *np.broadcast_arrays(a, b)),
             [normal(*sa), normal(*sb)])


@pytest.mark.parametrize("sa, sb", SHAPE_PAIRS)
def test_div(sa, sb):
    b = positive(*sb) * RNG.choice([-1, 1], sb)
    check_op(E.div, lambda a, b: a * (1.0 / b), [normal(*sa), b])


def test_neg():
    check_op(E.neg, lambda a: 0.0 - a, [normal(3, 4)])


# ---- pow -----------------------------------------------------------------------
def test_pow_tensor_exponent():
    check_op(E.pow, lambda a, b: np.exp(b * np.log(a)), [positive(3, 4), normal(3, 4)])
    check_op(E.pow, lambda a, b: np.exp(b * np.log(a)), [positive(3, 4), normal(4)])


@pytest.mark.parametrize("p, ref", [
    (2, lambda a: a * a), (3, lambda a: a * a * a), (0.5, np.sqrt), (-1.5, lambda a: 1 / a**1.5),
    (1, lambda a: a), (0, lambda a: np.ones_like(a)),
])
def test_pow_scalar_exponent(p, ref):
    check_op(lambda a: E.pow(a, p), ref, [positive(3, 4)])


def test_pow_integer_exponent_of_negative_bases():
    check_op(lambda a: a**3, lambda a: a * a * a, [normal(3, 4)])


def test_pow_scalar_base():
    check_op(lambda b: E.pow(2.0, b), lambda b: np.exp(b * np.log(2.0)), [normal(3, 4)])


# ---- unary ---------------------------------------------------------------------
def test_exp():
    check_op(E.exp, lambda a: np.e**a, [normal(3, 4)])


def test_log():
    check_op(E.log, lambda a: np.log2(a) / np.log2(np.e), [positive(3, 4, low=0.2)])


def test_sqrt():
    check_op(E.sqrt, lambda a: a**0.5, [positive(3, 4, low=0.2)])


def test_abs_away_from_zero():
    check_op(E.abs, lambda a: np.where(a < 0, -a, a), [away_from(normal(3, 4), [0.0])])


def test_abs_gradient_at_zero_is_zero():
    x = Tensor(np.zeros(3), requires_grad=True)
    E.abs(x).sum().backward()
    np.testing.assert_array_equal(x.grad, 0.0)


# ---- clamp ---------------------------------------------------------------------
@pytest.mark.parametrize("lo, hi", [(-0.5, None), (None, 0.3), (-0.5, 0.3)])
def test_clamp(lo, hi):
    a = away_from(normal(4, 5), [b for b in (lo, hi) if b is not None])

    def ref(a):
        out = a.copy()
        if lo is not None:
            out[out < lo] = lo
        if hi is not None:
            out[out > hi] = hi
        return out

    check_op(lambda t: E.clamp(t, lo, hi), ref, [a])


def test_clamp_gradient_is_one_inside_and_at_the_bounds_zero_outside():
    x = Tensor(np.array([-2.0, -1.0, 0.0, 1.0, 2.0]), requires_grad=True)
    x.clamp(-1.0, 1.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, 1.0, 1.0, 0.0])
    x.grad = None
    x.clamp(min=0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 0.0, 1.0, 1.0, 1.0])
    x.grad = None
    x.clamp(max=0.0).sum().backward()
    np.testing.assert_array_equal(x.grad, [1.0, 1.0, 1.0, 0.0, 0.0])


def test_clamp_keeps_float32_and_accepts_tensor_bounds():
    x = Tensor(np.array([-2.0, 0.5, 2.0], dtype=np.float32))
    assert x.clamp(0.0, 1.0).dtype == np.float32
    np.testing.assert_array_equal(E.clamp(x, Tensor(0.0), Tensor(1.0)).data, [0.0, 0.5, 1.0])


# ---- maximum / minimum / where --------------------------------------------------
def test_maximum_away_from_ties():
    a, b = normal(3, 4), normal(3, 4)
    b = np.where(np.abs(a - b) < 0.1, b + 0.5, b)
    check_op(E.maximum, lambda a, b: np.where(a > b, a, b), [a, b])
    row = np.array([-1.0, 0.0, 1.0, 2.0])  # broadcast over the rows of a
    check_op(E.maximum, lambda a, b: np.where(a > b, a, b), [away_from(a, row), row])


def test_minimum_away_from_ties():
    a, b = normal(3, 4), normal(3, 4)
    b = np.where(np.abs(a - b) < 0.1, b + 0.5, b)
    check_op(E.minimum, lambda a, b: np.where(a < b, a, b), [a, b])


@pytest.mark.parametrize("op", [E.maximum, E.minimum])
def test_ties_split_the_gradient_evenly(op):
    a = np.array([1.0, 2.0, 3.0])
    x = Tensor(a, requires_grad=True)
    y = Tensor(np.array([1.0, 5.0, 3.0]), requires_grad=True)
    op(x, y).sum().backward()
    big = op is E.maximum
    np.testing.assert_array_equal(x.grad, [0.5, 0.0 if big else 1.0, 0.5])
    np.testing.assert_array_equal(y.grad, [0.5, 1.0 if big else 0.0, 0.5])


@pytest.mark.parametrize("sc, sa, sb", [((3, 4), (3, 4), (3, 4)), ((4,), (3, 4), (3, 1)),
                                        ((3, 1), (4,), ())])
def test_where(sc, sa, sb):
    cond = RNG.random(sc) > 0.5

    def ref(a, b):
        a, b, c = np.broadcast_arrays(a, b, cond)
        out = b.copy()
        out[c] = a[c]
        return out

    check_op(lambda a, b: E.where(cond, a, b), ref, [normal(*sa), normal(*sb)])
    check_op(lambda a, b: E.where(Tensor(cond), a, b), ref, [normal(*sa), normal(*sb)])


def test_where_with_a_scalar_branch():
    cond = np.array([True, False, True])
    check_op(lambda a: E.where(cond, a, 0.0), lambda a: a * cond, [normal(3)])


# ---- errors --------------------------------------------------------------------
@pytest.mark.parametrize("name", ["add", "sub", "mul", "div", "pow", "maximum", "minimum"])
def test_binary_ops_name_themselves_when_shapes_do_not_broadcast(name):
    op = getattr(E, name)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(4,\) do not broadcast"):
        op(Tensor(np.ones((2, 3))), Tensor(np.ones(4)))


def test_operators_report_the_op_too():
    with pytest.raises(ValueError, match="add: shapes"):
        Tensor(np.ones((2, 3))) + np.ones(2)


def test_clamp_with_neither_bound():
    with pytest.raises(ValueError, match="clamp: at least one of min and max"):
        E.clamp(Tensor(np.ones(3)))


def test_where_with_a_non_bool_condition():
    with pytest.raises(TypeError, match="where: condition must be boolean, got dtype float"):
        E.where(Tensor(np.ones(3)), Tensor(np.ones(3)), 0.0)
    with pytest.raises(TypeError, match="where: condition must be boolean"):
        E.where(np.array([1, 0, 1]), Tensor(np.ones(3)), 0.0)


def test_where_with_shapes_that_do_not_broadcast():
    with pytest.raises(ValueError, match="where: shapes"):
        E.where(np.ones(3, dtype=bool), Tensor(np.ones(4)), 0.0)


def test_top_level_names_are_the_same_functions():
    assert md.add is E.add and md.clamp is E.clamp and md.where is E.where


# ---- sin, cos, remainder, floor division ------------------------------------------
def test_sin_cos():
    a = normal(3, 4)
    check_op(E.sin, lambda a: np.array([[np.sin(v) for v in row] for row in a]), [a])
    check_op(lambda t: t.cos(), lambda a: np.array([[np.cos(v) for v in row] for row in a]), [a])


def test_remainder_follows_python_and_pytorch_signs():
    # Python's %: the result has the sign of the divisor (torch.remainder, not torch.fmod)
    a = np.array([5.5, -5.5, 5.5, -5.5, 7.0])
    b = np.array([2.0, 2.0, -2.0, -2.0, 3.0])
    want = np.array([x % y for x, y in zip(a, b)])
    np.testing.assert_allclose((Tensor(a) % Tensor(b)).data, want)
    np.testing.assert_array_equal((md.tensor([7, -7]) % 3).data, [1, 2])
    np.testing.assert_allclose((7.5 % Tensor(np.array([2.0]))).data, [1.5])
    # gradient between the jumps of floor: d/da = 1, d/db = -floor(a / b)
    a, b = np.array([5.3, -4.6, 2.2]), np.array([2.1, 1.7, -0.9])
    check_op(E.remainder, lambda a, b: a - b * np.floor(a / b), [a, b])


def test_floor_division_rounds_down_and_has_no_gradient():
    x = Tensor(np.array([7.0, -7.0, 7.5]), requires_grad=True)
    out = x // 2
    np.testing.assert_array_equal(out.data, [3.0, -4.0, 3.0])
    assert not out.requires_grad
    np.testing.assert_array_equal((md.tensor([7, -7]) // 2).data, [3, -4])
    np.testing.assert_array_equal((9 // md.tensor([2, 4])).data, [4, 2])


def test_dividing_integers_gives_float32_as_pytorch():
    images = md.tensor(np.array([[0, 128, 255]], dtype=np.uint8))
    scaled = images / 255
    assert scaled.dtype == np.float32
    np.testing.assert_allclose(scaled.data, [[0.0, 128 / 255, 1.0]], rtol=1e-6)
    assert (md.tensor([1, 2]) / md.tensor([2, 4])).dtype == np.float32
    assert (md.tensor([1, 2]) / np.array([2.0, 4.0])).dtype == np.float64  # a float64 operand
    assert (Tensor(np.ones(2, dtype=np.float64)) / 2).dtype == np.float64


# ---- comparisons ---------------------------------------------------------------
COMPARISONS = [("eq", lambda x, y: x == y, lambda a, b: a == b),
               ("ne", lambda x, y: x != y, lambda a, b: a != b),
               ("lt", lambda x, y: x < y, lambda a, b: a < b),
               ("le", lambda x, y: x <= y, lambda a, b: a <= b),
               ("gt", lambda x, y: x > y, lambda a, b: a > b),
               ("ge", lambda x, y: x >= y, lambda a, b: a >= b)]


@pytest.mark.parametrize("name, op, ref", COMPARISONS, ids=[c[0] for c in COMPARISONS])
def test_comparisons_are_element_wise_bool_tensors_without_gradient(name, op, ref):
    a = np.array([[0.0, 1.0, 2.0], [2.0, 1.0, 0.0]])
    b = np.array([1.0, 1.0, 1.0])
    x = Tensor(a, requires_grad=True)
    for got, want in [(op(x, Tensor(b)), ref(a, b)), (op(x, 1.0), ref(a, 1.0)),
                      (op(1.0, x), ref(1.0, a)), (op(b, x), ref(b, a)),
                      (getattr(md, name)(x, b), ref(a, b)), (getattr(x, name)(b), ref(a, b))]:
        assert isinstance(got, Tensor) and got.dtype == np.bool_ and not got.requires_grad
        np.testing.assert_array_equal(got.data, want)
    with pytest.raises(ValueError, match=rf"{name}: shapes \(2, 3\) and \(2,\) do not broadcast"):
        op(x, Tensor(np.ones(2)))


def test_comparing_with_none_or_a_string_is_not_an_error():
    x = Tensor([1.0, 2.0])
    assert (x == None) is False and (x != None) is True  # noqa: E711 (the point of the test)
    assert (x == "a") is False
    with pytest.raises(TypeError):
        x < "a"  # noqa: B015


def test_accuracy_idiom_of_pytorch_code():
    logits = Tensor(np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]))
    labels = md.tensor([1, 1, 1])
    correct = (logits.argmax(1) == labels).sum().item()
    assert correct == 2
    assert (logits.argmax(dim=1) == labels).float().mean().item() == pytest.approx(2 / 3)


def test_mask_operators_and_bitwise_ops():
    a = md.tensor([True, True, False, False])
    b = md.tensor([True, False, True, False])
    assert (a & b).tolist() == [True, False, False, False]
    assert (a | b).tolist() == [True, True, True, False]
    assert (a ^ b).tolist() == [False, True, True, False]
    assert (~a).tolist() == [False, False, True, True]
    assert (np.array([True, False, True, False]) & b).tolist() == [True, False, True, False]
    x = md.tensor([1.0, -2.0, 3.0])
    assert x[(x > 0) & (x < 2)].tolist() == [1.0] and x[~(x > 0)].tolist() == [-2.0]
    assert (md.tensor([6, 3]) & 5).tolist() == [4, 1] and (~md.tensor([0])).tolist() == [-1]
    with pytest.raises(TypeError, match="bitwise_and: not defined for dtypes float32 and bool"):
        x & (x > 0)
    with pytest.raises(TypeError, match="bitwise_not: expected a bool or integer tensor"):
        ~x  # noqa: B018
