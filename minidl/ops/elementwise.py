"""Elementwise primitives: arithmetic, exp/log/sqrt/sin/cos/abs/pow, clamp, maximum/minimum,
where, remainder — and comparisons and floor division, which have no gradient.

Each backward is the derivative from a calculus table, times the incoming
gradient (the chain rule). Binary ops broadcast like NumPy; the engine sums
their gradients back to each input's shape (``engine.unbroadcast``).

dtypes (the policy in ``ops/checks.py``): exp, log, sqrt, sin and cos need floating
point and raise for integer tensors (PyTorch would convert them to float32; minidl
asks for ``x.float()``). Dividing integers gives float32, as in PyTorch.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.dtypes import DEFAULT_FLOAT
from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.ops.checks import check_float


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    def forward(ctx, a, b):
        return a + b

    def backward(ctx, grad):
        return grad, grad


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    def forward(ctx, a, b):
        return a - b

    def backward(ctx, grad):
        return grad, -grad


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return a * b

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad * b if need_a else None), (grad * a if need_b else None)


class Div(Function):
    """z = a / b;  dz/da = 1 / b, dz/db = -a / b^2."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        out = a / b
        if out.dtype == np.float64 and not (_is_float_array(a) or _is_float_array(b)):
            return out.astype(DEFAULT_FLOAT)  # int / int: float32, as in PyTorch
        return out

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad / b if need_a else None
        grad_b = -grad * a / (b * b) if need_b else None
        return grad_a, grad_b


class Neg(Function):
    """z = -a."""

    def forward(ctx, a):
        return -a

    def backward(ctx, grad):
        return -grad


class Pow(Function):
    """z = a ** b;  dz/da = b a^(b-1), dz/db = a^b log(a) (defined for a > 0)."""

    def forward(ctx, a, b):
        out = np.power(a, b)
        ctx.save_for_backward(a, b, out)
        return out

    def backward(ctx, grad):
        a, b, out = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        grad_a = grad * b * np.power(a, b - 1) if need_a else None
        grad_b = None
        if need_b:
            safe_log = np.log(np.where(a > 0, a, 1))  # a^b log a -> 0 where a = 0
            grad_b = grad * out * safe_log
        return grad_a, grad_b


class Exp(Function):
    """z = e^a;  dz/da = e^a (the output itself)."""

    def forward(ctx, a):
        out = np.exp(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad * out


class Log(Function):
    """z = ln a;  dz/da = 1 / a."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.log(a)

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad / a


class Sqrt(Function):
    """z = sqrt(a);  dz/da = 1 / (2 sqrt(a))."""

    def forward(ctx, a):
        out = np.sqrt(a)
        ctx.save_for_backward(out)
        return out

    def backward(ctx, grad):
        (out,) = ctx.saved_tensors
        return grad / (2 * out)


class Sin(Function):
    """z = sin a;  dz/da = cos a."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.sin(a)

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.cos(a)


class Cos(Function):
    """z = cos a;  dz/da = -sin a."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.cos(a)

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return -grad * np.sin(a)


class Remainder(Function):
    """z = a - b floor(a / b) (Python's %, the sign of b);  dz/da = 1, dz/db = -floor(a / b).

    Between the jumps of floor, which PyTorch's gradient ignores too.
    """

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.remainder(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        need_a, need_b = ctx.needs_input_grad
        return (grad if need_a else None), (-grad * np.floor_divide(a, b) if need_b else None)


class Abs(Function):
    """z = |a|;  dz/da = sign(a) (0 at a = 0, as PyTorch)."""

    def forward(ctx, a):
        ctx.save_for_backward(a)
        return np.abs(a)

    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        return grad * np.sign(a)


class Clamp(Function):
    """z = min(max(a, lo), hi);  dz/da = 1 where lo <= a <= hi, else 0.

    At a = lo or a = hi the gradient is 1 (PyTorch's choice). Either bound may be None.
    """

    def forward(ctx, a, lo=None, hi=None):
        inside = np.ones(a.shape, dtype=bool)
        if lo is not None:
            inside &= a >= lo
        if hi is not None:
            inside &= a <= hi
        ctx.save_for_backward(inside)
        return np.clip(a, lo, hi).astype(a.dtype, copy=False)

    def backward(ctx, grad):
        (inside,) = ctx.saved_tensors
        return grad * inside


class Maximum(Function):
    """z = max(a, b) elementwise; at ties the gradient is split evenly (as PyTorch)."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.maximum(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = (a > b) + 0.5 * (a == b)
        return grad * share_a, grad * (1 - share_a)


class Minimum(Function):
    """z = min(a, b) elementwise; at ties the gradient is split evenly (as PyTorch)."""

    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return np.minimum(a, b)

    def backward(ctx, grad):
        a, b = ctx.saved_tensors
        share_a = (a < b) + 0.5 * (a == b)
        return grad * share_a, grad * (1 - share_a)


class Where(Function):
    """z = a where cond else b;  the gradient goes to the branch that was chosen.

    ``cond`` is a bool Tensor (its version is checked at backward) or a private copy.
    """

    def forward(ctx, cond, a, b):
        ctx.save_for_backward(cond)
        return np.where(cond, a, b)

    def backward(ctx, grad):
        (cond,) = ctx.saved_tensors
        zero = np.zeros((), dtype=grad.dtype)
        return None, np.where(cond, grad, zero), np.where(cond, zero, grad)


class Cast(Function):
    """z = a converted to another float dtype; the gradient is converted back."""

    def forward(ctx, a, dtype=None):
        ctx.input_dtype = a.dtype
        return a.astype(dtype)

    def backward(ctx, grad):
        return grad.astype(ctx.input_dtype)


# ---- functional forms -------------------------------------------------------
def _is_float_array(x) -> bool:
    """A floating-point ndarray (not a Python float: those adapt to the other operand)."""
    return isinstance(x, np.ndarray) and x.dtype.kind == "f"


def _check_broadcast(op: str, *operands) -> None:
    """Raise naming ``op`` when the operands' shapes do not broadcast (NumPy's rule)."""
    shapes = [np.shape(x.data if isinstance(x, Tensor) else x) for x in operands]
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(
            f"{op}: shapes {' and '.join(map(str, shapes))} do not broadcast "
            "(trailing dimensions must be equal or 1)"
        ) from None


def _apply(function, op: str, *operands):
    """``function.apply(*operands)``; if NumPy rejects the shapes, say which op and shapes.

    The shapes are only examined after a failure, so the common path costs nothing
    (a failed forward records no graph, so no state has changed).
    """
    try:
        return function.apply(*operands)
    except ValueError:
        _check_broadcast(op, *operands)
        raise


def add(a, b):
    """a + b with broadcasting."""
    return _apply(Add, "add", a, b)


def sub(a, b):
    """a - b with broadcasting."""
    return _apply(Sub, "sub", a, b)


def mul(a, b):
    """a * b with broadcasting."""
    return _apply(Mul, "mul", a, b)


def div(a, b):
    """a / b with broadcasting."""
    return _apply(Div, "div", a, b)


def neg(a):
    return Neg.apply(a)


def pow(a, b):
    """a ** b; either may be a Tensor."""
    return _apply(Pow, "pow", a, b)


def exp(a):
    check_float(a, "exp")
    return Exp.apply(a)


def log(a):
    check_float(a, "log")
    return Log.apply(a)


def sqrt(a):
    check_float(a, "sqrt")
    return Sqrt.apply(a)


def sin(a):
    check_float(a, "sin")
    return Sin.apply(a)


def cos(a):
    check_float(a, "cos")
    return Cos.apply(a)


def remainder(a, b):
    """a % b with Python's (and PyTorch's) sign rule: the result has the sign of b."""
    return _apply(Remainder, "remainder", a, b)


def floor_divide(a, b):
    """a // b, rounded toward minus infinity. Piecewise constant, so no gradient."""
    return _without_grad(np.floor_divide, "floor_divide", a, b)


def abs(a):
    return Abs.apply(a)


def clamp(a, min=None, max=None):
    """Limit values to [min, max]; either bound may be None."""
    if min is None and max is None:
        raise ValueError("clamp: at least one of min and max must be given")
    # The bounds are constants (no gradient flows to them), so Tensors become arrays.
    lo = min.data if isinstance(min, Tensor) else min
    hi = max.data if isinstance(max, Tensor) else max
    return Clamp.apply(a, lo=lo, hi=hi)


def maximum(a, b):
    """Elementwise larger of a and b, with broadcasting."""
    return _apply(Maximum, "maximum", a, b)


def minimum(a, b):
    """Elementwise smaller of a and b, with broadcasting."""
    return _apply(Minimum, "minimum", a, b)


def where(condition, a, b):
    """Pick ``a`` where ``condition`` is true, else ``b`` (both may broadcast)."""
    if not isinstance(condition, Tensor):  # a private copy: the user's array may change
        condition = np.array(condition, copy=True)
    if condition.dtype != np.bool_:
        raise TypeError(f"where: condition must be boolean, got dtype {condition.dtype}")
    return _apply(Where, "where", condition, a, b)


# ---- comparisons: element-wise, bool tensors, no gradient --------------------------------
def _without_grad(ufunc, op: str, a, b) -> Tensor:
    """``ufunc`` on the values of a and b (Tensors, arrays or numbers), as a Tensor without
    gradient; if the shapes do not broadcast or the dtypes do not fit, say which op."""
    a_data = a.data if isinstance(a, Tensor) else a
    b_data = b.data if isinstance(b, Tensor) else b
    try:
        return Tensor(ufunc(a_data, b_data))
    except ValueError:
        _check_broadcast(op, a, b)
        raise
    except TypeError:
        raise TypeError(f"{op}: not defined for dtypes {np.result_type(a_data)} and "
                        f"{np.result_type(b_data)}") from None


def eq(a, b):
    """a == b element-wise (bool)."""
    return _without_grad(np.equal, "eq", a, b)


def ne(a, b):
    """a != b element-wise (bool)."""
    return _without_grad(np.not_equal, "ne", a, b)


def lt(a, b):
    """a < b element-wise (bool)."""
    return _without_grad(np.less, "lt", a, b)


def le(a, b):
    """a <= b element-wise (bool)."""
    return _without_grad(np.less_equal, "le", a, b)


def gt(a, b):
    """a > b element-wise (bool)."""
    return _without_grad(np.greater, "gt", a, b)


def ge(a, b):
    """a >= b element-wise (bool)."""
    return _without_grad(np.greater_equal, "ge", a, b)


def bitwise_and(a, b):
    """a & b element-wise: logical and of bool masks, bitwise and of integers."""
    return _without_grad(np.bitwise_and, "bitwise_and", a, b)


def bitwise_or(a, b):
    """a | b element-wise: logical or of bool masks, bitwise or of integers."""
    return _without_grad(np.bitwise_or, "bitwise_or", a, b)


def bitwise_xor(a, b):
    """a ^ b element-wise: logical xor of bool masks, bitwise xor of integers."""
    return _without_grad(np.bitwise_xor, "bitwise_xor", a, b)


def bitwise_not(a):
    """~a element-wise: logical not of a bool mask, bitwise not of integers."""
    data = a.data if isinstance(a, Tensor) else np.asarray(a)
    if data.dtype.kind not in "biu":
        raise TypeError(f"bitwise_not: expected a bool or integer tensor, got dtype {data.dtype}")
    return Tensor(np.invert(data))


def cast(a, dtype):
    """Convert to ``dtype``: differentiable between floating types."""
    dtype = np.dtype(dtype)
    if dtype.kind != "f" and a.requires_grad:
        return Tensor(a.data.astype(dtype))
    return Cast.apply(a, dtype=dtype)
