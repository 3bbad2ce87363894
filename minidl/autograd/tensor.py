"""Tensor: an ndarray that remembers how it was computed.

    x = Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # array([[2., 4.]], dtype=float32)

``.data`` and ``.grad`` are plain NumPy arrays. ``.grad_fn`` is the Function
that produced the tensor (None for leaves made by the user). Every method here
is a one-line call into ``minidl.ops``, where the maths lives.

Why the ops are imported at the bottom of this file: the ops need the Tensor
class (they make Tensors), and the Tensor's methods need the ops, so Python must
finish the class before it reads the ops (the one import circle in minidl).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.dtypes import CPU, DEFAULT_FLOAT, as_dtype, parse_to, type_name

_KIND_NAMES = {"U": "strings", "S": "bytes", "O": "Python objects", "c": "complex numbers",
               "M": "dates", "m": "time deltas", "V": "raw bytes"}


def to_array(data, dtype=None, op: str = "tensor") -> np.ndarray:
    """Convert user data to an ndarray: Python floats become float32, ints int64, bools bool.

    An ndarray keeps its dtype and memory (as ``torch.from_numpy``) unless ``dtype`` is
    given; so does a NumPy scalar such as ``np.float64(1.0)`` (what ``array.sum()``
    returns). Strings, Python objects and ragged nested lists raise an error naming ``op``.
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        array = data
    else:
        try:
            array = np.asarray(data)
        except ValueError as error:
            if "inhomogeneous" in str(error):
                raise ValueError(f"{op}: the nested lists have different lengths (a ragged "
                                 "list); a tensor needs one length per dimension") from None
            raise ValueError(f"{op}: cannot make a tensor from {type(data).__name__}: "
                             f"{error}") from None
    if array.dtype.kind not in "biuf":
        what = _KIND_NAMES.get(array.dtype.kind, f"dtype {array.dtype}")
        raise TypeError(f"{op}: a tensor holds bool, integer or floating-point numbers, "
                        f"got {what} (dtype {array.dtype})")
    if dtype is not None:
        return array.astype(as_dtype(dtype, op), copy=False)
    if array.dtype == np.float64 and array is not data:  # Python floats -> float32
        return array.astype(DEFAULT_FLOAT)
    return array


class Tensor:
    """An n-dimensional array with an optional gradient.

    Args:
        data: array-like. Python floats become float32; ndarrays keep their dtype.
        requires_grad: record operations on this tensor so ``backward`` can fill ``.grad``.
        dtype: optional NumPy dtype to convert to.
    """

    # _version counts in-place changes of .data (PyTorch's version counter): every in-place
    # method and every optimizer update adds 1, so backward can tell that a saved input
    # changed (see autograd/function.py). _base is the tensor whose memory this one views
    # (set by reshape, indexing, detach, ...): an in-place change of a view counts for its base.
    __slots__ = ("data", "grad", "_requires_grad", "grad_fn", "_retains_grad", "_version",
                 "_base", "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = to_array(data, dtype, "Tensor")
        self.grad = None
        self._requires_grad = False
        self.grad_fn = None
        self._retains_grad = False
        self._version = 0
        self._base = None
        if requires_grad:
            self.requires_grad = True  # the checked setter below

    @classmethod
    def _from_op(cls, data, grad_fn):
        """Fast constructor used by Function.apply (no conversion, no checks)."""
        t = cls.__new__(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = None
        t._requires_grad = grad_fn is not None
        t.grad_fn = grad_fn
        t._retains_grad = False
        t._version = 0
        t._base = None
        return t

    # ---- properties -------------------------------------------------------
    @property
    def requires_grad(self) -> bool:
        return self._requires_grad

    @requires_grad.setter
    def requires_grad(self, value: bool) -> None:
        if value and self.data.dtype.kind != "f":
            raise TypeError("requires_grad: only floating-point tensors can require gradients, "
                            f"got dtype {self.data.dtype}; convert first, e.g. x.float()")
        if not value and self.grad_fn is not None:
            raise RuntimeError("requires_grad: only a leaf can be set not to require grad; "
                               "use y = y.detach() to cut a result off the graph")
        self._requires_grad = bool(value)

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def device(self):
        return CPU

    @property
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """Reverse all axes (the matrix transpose for 2-D tensors)."""
        return permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def dim(self) -> int:
        return self.data.ndim

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        if self.data.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self.data)

    def item(self):
        """The value of a one-element tensor as a Python number."""
        if self.data.size != 1:
            raise ValueError(f"item: expected a tensor with one element, got shape {self.shape}")
        return self.data.item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return self.data

    def tolist(self):
        return self.data.tolist()

    def __array__(self, dtype=None, copy=None):
        """``np.asarray(t)``: the data (shared unless a copy or another dtype is asked for)."""
        return np.array(self.data, dtype=dtype, copy=copy)

    def __bool__(self) -> bool:
        """Truth value of a one-element tensor (``if loss < 1e-3:``), as in PyTorch."""
        if self.data.size != 1:
            raise ValueError(f"bool: the truth value of a tensor of shape {self.shape} "
                             "is ambiguous; use .any() or .all()")
        return bool(self.data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def __index__(self) -> int:
        """A one-element integer tensor used as an index: ``range(n)``, ``items[i]``."""
        if self.data.size != 1 or self.data.dtype.kind not in "iu":
            raise TypeError(f"__index__: only one-element integer tensors can be used as an "
                            f"index, got shape {self.shape} and dtype {self.dtype}")
        return int(self.data.item())

    def __hash__(self):
        return id(self)  # as in PyTorch: by identity (== compares values, element-wise)

    # ---- autograd -----------------------------------------------------------
    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data (and version counter), cut off from the graph."""
        out = Tensor._from_op(self.data, None)
        out._base = self if self._base is None else self._base
        return out

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it).

        Like a leaf's, the retained ``.grad`` accumulates over backward calls.
        """
        if self.grad_fn is not None:
            self._retains_grad = True
            self.grad_fn.retained = self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires a gradient.

        ``grad`` defaults to 1 for a one-element tensor. See ``engine.backward``.
        """
        backward(self, grad, retain_graph=retain_graph)

    # ---- dtypes and devices ---------------------------------------------------
    def to(self, *args, dtype=None, device=None, copy: bool = False, non_blocking: bool = False):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(other_tensor)``.

        Returns ``self`` when nothing changes (as PyTorch), else a converted copy that is
        differentiable between float types. The only device is the CPU.
        """
        target = parse_to("to", args, dtype, device)
        out = self if target is None or target == self.dtype else cast(self, target)
        return clone(out) if copy and out is self else out

    def cpu(self) -> Tensor:
        return self

    def cuda(self, *args, **kwargs):
        raise RuntimeError("cuda: minidl runs on the CPU only (minidl.cuda.is_available() is "
                           "False); use .to(device) with device = 'cpu'")

    def type(self, dtype=None):
        """No argument: the type name, e.g. "minidl.FloatTensor". Else ``to(dtype)``."""
        return type_name(self.dtype) if dtype is None else self.to(as_dtype(dtype, "type"))

    def type_as(self, other: Tensor) -> Tensor:
        return self.to(other.dtype)

    def astype(self, dtype) -> Tensor:
        """A copy converted to ``dtype``, differentiable between float types."""
        return cast(self, as_dtype(dtype, "astype"))

    def float(self) -> Tensor:
        return self.to(np.float32)

    def double(self) -> Tensor:
        return self.to(np.float64)

    def half(self) -> Tensor:
        return self.to(np.float16)

    def long(self) -> Tensor:
        return self.to(np.int64)

    def int(self) -> Tensor:
        return self.to(np.int32)

    def bool(self) -> Tensor:
        return self.to(np.bool_)

    # ---- new tensors like this one ---------------------------------------------
    # new_*: a new tensor with this tensor's dtype unless another is given (device: the CPU).
    def new_zeros(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return zeros(*size, dtype=self._own(dtype), device=device, requires_grad=requires_grad)

    def new_ones(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return ones(*size, dtype=self._own(dtype), device=device, requires_grad=requires_grad)

    def new_full(self, size, fill_value, dtype=None, device=None, requires_grad=False):
        return full(size, fill_value, dtype=self._own(dtype), device=device,
                    requires_grad=requires_grad)

    def new_empty(self, *size, dtype=None, device=None, requires_grad=False) -> Tensor:
        return empty(*size, dtype=self._own(dtype), device=device, requires_grad=requires_grad)

    def new_tensor(self, data, dtype=None, device=None, requires_grad=False) -> Tensor:
        return tensor(data, dtype=self._own(dtype), device=device, requires_grad=requires_grad)

    def _own(self, dtype):
        return self.dtype if dtype is None else dtype

    def clone(self) -> Tensor:
        return clone(self)

    def contiguous(self) -> Tensor:
        return contiguous(self)

    def __repr__(self) -> str:
        body = np.array2string(self.data, precision=4, separator=", ", prefix="tensor(")
        extra = ""
        if self.grad_fn is not None:
            extra = f", grad_fn=<{self.grad_fn.name}>"
        elif self.requires_grad:
            extra = ", requires_grad=True"
        if self.data.dtype != DEFAULT_FLOAT:
            extra += f", dtype={self.data.dtype}"
        return f"tensor({body}{extra})"

    # ---- arithmetic (reflected forms make 2 * x work) ----------------------
    def __add__(self, other):
        return add(self, other)

    def __radd__(self, other):
        return add(other, self)

    def __sub__(self, other):
        return sub(self, other)

    def __rsub__(self, other):
        return sub(other, self)

    def __mul__(self, other):
        return mul(self, other)

    def __rmul__(self, other):
        return mul(other, self)

    def __truediv__(self, other):
        return div(self, other)

    def __rtruediv__(self, other):
        return div(other, self)

    def __floordiv__(self, other):
        return floor_divide(self, other)

    def __rfloordiv__(self, other):
        return floor_divide(other, self)

    def __mod__(self, other):
        return remainder(self, other)

    def __rmod__(self, other):
        return remainder(other, self)

    def __pow__(self, exponent):
        return pow(self, exponent)

    def __rpow__(self, base):
        return pow(base, self)

    def __neg__(self):
        return neg(self)

    def __matmul__(self, other):
        return matmul(self, other)

    def __rmatmul__(self, other):
        return matmul(other, self)

    def __abs__(self):
        return abs(self)

    def __and__(self, other):
        return bitwise_and(self, other)

    def __rand__(self, other):
        return bitwise_and(other, self)

    def __or__(self, other):
        return bitwise_or(self, other)

    def __ror__(self, other):
        return bitwise_or(other, self)

    def __xor__(self, other):
        return bitwise_xor(self, other)

    def __rxor__(self, other):
        return bitwise_xor(other, self)

    def __invert__(self):
        return bitwise_not(self)

    def __getitem__(self, index):
        return getitem(self, index)

    def __iter__(self):
        """The sub-tensors along the first dimension (a 0-d tensor cannot be iterated)."""
        if self.data.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        return (getitem(self, i) for i in range(len(self.data)))

    def __contains__(self, element) -> bool:
        """``value in t``: whether some element equals it (as PyTorch)."""
        return bool(eq(self, element).data.any())

    def __setitem__(self, index, value):
        """``x[index] = value``: an in-place write (autograd/inplace.py has the rules)."""
        write_inplace(self, "setitem", setitem, index, value)

    # In place: x += y changes x's data (see autograd/inplace.py for the rules).
    def __iadd__(self, other):
        return self.add_(other)

    def __isub__(self, other):
        return self.sub_(other)

    def __imul__(self, other):
        return self.mul_(other)

    def __itruediv__(self, other):
        return self.div_(other)

    def __ipow__(self, exponent):
        return self.pow_(exponent)

    # Comparisons are element-wise and give bool tensors without gradient (as PyTorch).
    # Anything that is not a number, array or tensor (None, a string) gets NotImplemented,
    # so that x == None is False rather than an error.
    def __eq__(self, other):
        return eq(self, other) if _is_operand(other) else NotImplemented

    def __ne__(self, other):
        return ne(self, other) if _is_operand(other) else NotImplemented

    def __lt__(self, other):
        return lt(self, other) if _is_operand(other) else NotImplemented

    def __le__(self, other):
        return le(self, other) if _is_operand(other) else NotImplemented

    def __gt__(self, other):
        return gt(self, other) if _is_operand(other) else NotImplemented

    def __ge__(self, other):
        return ge(self, other) if _is_operand(other) else NotImplemented

    def eq(self, other):
        return eq(self, other)

    def ne(self, other):
        return ne(self, other)

    def lt(self, other):
        return lt(self, other)

    def le(self, other):
        return le(self, other)

    def gt(self, other):
        return gt(self, other)

    def ge(self, other):
        return ge(self, other)

    # ---- methods that forward to minidl.ops -------------------------------
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def sin(self):
        return sin(self)

    def cos(self):
        return cos(self)

    def abs(self):
        return abs(self)

    def pow(self, exponent):
        return pow(self, exponent)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    clip = clamp

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

    def masked_fill(self, mask, value):
        return masked_fill(self, mask, value)

    def sum(self, dim=None, keepdim=False):
        return sum(self, dim, keepdim)

    def mean(self, dim=None, keepdim=False):
        return mean(self, dim, keepdim)

    def var(self, dim=None, unbiased=True, keepdim=False):
        return var(self, dim, unbiased, keepdim)

    def std(self, dim=None, unbiased=True, keepdim=False):
        return std(self, dim, unbiased, keepdim)

    def max(self, dim=None, keepdim=False):
        return max(self, dim, keepdim)

    def min(self, dim=None, keepdim=False):
        return min(self, dim, keepdim)

    def amax(self, dim=None, keepdim=False):
        return amax(self, dim, keepdim)

    def amin(self, dim=None, keepdim=False):
        return amin(self, dim, keepdim)

    def argmax(self, dim=None, keepdim=False):
        return argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return argmin(self, dim, keepdim)

    def logsumexp(self, dim=None, keepdim=False):
        return logsumexp(self, dim, keepdim)

    def all(self, dim=None, keepdim=False):
        return all(self, dim, keepdim)

    def any(self, dim=None, keepdim=False):
        return any(self, dim, keepdim)

    def sort(self, dim=-1, descending=False, stable=False):
        return sort(self, dim, descending, stable)

    def argsort(self, dim=-1, descending=False, stable=False):
        return argsort(self, dim, descending, stable)

    def topk(self, k, dim=-1, largest=True, sorted=True):
        return topk(self, k, dim, largest, sorted)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def view(self, *shape):
        return reshape(self, *shape)

    def view_as(self, other):
        return reshape(self, other.shape)

    def transpose(self, dim0, dim1):
        return transpose(self, dim0, dim1)

    def t(self):
        return t(self)

    def permute(self, *dims):
        return permute(self, *dims)

    def squeeze(self, dim=None):
        return squeeze(self, dim)

    def unsqueeze(self, dim):
        return unsqueeze(self, dim)

    def expand(self, *shape):
        return expand(self, *shape)

    def expand_as(self, other):
        return expand(self, other.shape)

    def repeat(self, *sizes):
        return repeat(self, *sizes)

    def flatten(self, start_dim=0, end_dim=-1):
        return flatten(self, start_dim, end_dim)

    def split(self, split_size_or_sections, dim=0):
        return split(self, split_size_or_sections, dim)

    def chunk(self, chunks, dim=0):
        return chunk(self, chunks, dim)

    def narrow(self, dim, start, length):
        return narrow(self, dim, start, length)

    def gather(self, dim, index):
        return gather(self, dim, index)

    def scatter(self, dim, index, src):
        return scatter(self, dim, index, src)

    def scatter_add(self, dim, index, src):
        return scatter_add(self, dim, index, src)

    def nonzero(self, as_tuple=False):
        return nonzero(self, as_tuple)

    def multinomial(self, num_samples, replacement=False, generator=None):
        return multinomial(self, num_samples, replacement, generator)

    def matmul(self, other):
        return matmul(self, other)

    def mm(self, other):
        return mm(self, other)

    def bmm(self, other):
        return bmm(self, other)

    def relu(self):
        return relu(self)

    def sigmoid(self):
        return sigmoid(self)

    def tanh(self):
        return tanh(self)

    def softmax(self, dim):
        return softmax(self, dim)

    def log_softmax(self, dim):
        return log_softmax(self, dim)

    # ---- in-place methods (PyTorch's trailing underscore; rules in autograd/inplace.py) ------
    def add_(self, other, alpha=1):
        return write_inplace(self, "add_", add, other if alpha == 1 else other * alpha)

    def sub_(self, other, alpha=1):
        return write_inplace(self, "sub_", sub, other if alpha == 1 else other * alpha)

    def mul_(self, other):
        return write_inplace(self, "mul_", mul, other)

    def div_(self, other):
        return write_inplace(self, "div_", div, other)

    def pow_(self, exponent):
        return write_inplace(self, "pow_", pow, exponent)

    def neg_(self):
        return write_inplace(self, "neg_", neg)

    def abs_(self):
        return write_inplace(self, "abs_", abs)

    def exp_(self):
        return write_inplace(self, "exp_", exp)

    def log_(self):
        return write_inplace(self, "log_", log)

    def sqrt_(self):
        return write_inplace(self, "sqrt_", sqrt)

    def sigmoid_(self):
        return write_inplace(self, "sigmoid_", sigmoid)

    def tanh_(self):
        return write_inplace(self, "tanh_", tanh)

    def relu_(self):
        return write_inplace(self, "relu_", relu)

    def clamp_(self, min=None, max=None):
        return write_inplace(self, "clamp_", clamp, min, max)

    clip_ = clamp_

    def masked_fill_(self, mask, value):
        return write_inplace(self, "masked_fill_", masked_fill, mask, value)

    def scatter_(self, dim, index, src):
        return write_inplace(self, "scatter_", scatter, dim, index, src)

    def scatter_add_(self, dim, index, src):
        return write_inplace(self, "scatter_add_", scatter_add, dim, index, src)

    def copy_(self, src):
        """Copy ``src`` (broadcast to this shape, converted to this dtype) into this tensor."""
        return write_inplace(self, "copy_", copy_into, src, cast=True)

    def fill_(self, value):
        """Set every element to ``value`` (a number, or a 0-d tensor whose gradient flows)."""
        if np.ndim(value) != 0:
            raise ValueError(f"fill_: value must be a number or a 0-d tensor, got shape "
                             f"{np.shape(value)}")
        return write_inplace(self, "fill_", copy_into, value, cast=True)

    def zero_(self):
        return write_inplace(self, "zero_", copy_into, 0, cast=True)

    def normal_(self, mean=0.0, std=1.0, generator=None):
        """Fill with samples of N(mean, std^2) from minidl's generator (or ``generator``)."""
        samples = normal_like(self, mean, std, generator, "normal_")
        return write_inplace(self, "normal_", copy_into, samples, cast=True)

    def uniform_(self, a=0.0, b=1.0, generator=None):
        """Fill with samples of the uniform distribution on [a, b)."""
        samples = uniform_like(self, a, b, generator, "uniform_")
        return write_inplace(self, "uniform_", copy_into, samples, cast=True)


def _is_operand(x) -> bool:
    """What a comparison operator compares with: tensors, arrays and numbers."""
    return isinstance(x, (Tensor, np.ndarray, np.generic, int, float))


# The ops import Tensor, so they are imported after the class exists (see the module docstring).
from minidl.autograd.creation import (  # noqa: E402
    empty,
    full,
    multinomial,
    normal_like,
    ones,
    tensor,
    uniform_like,
    zeros,
)
from minidl.autograd.engine import backward  # noqa: E402
from minidl.autograd.inplace import write_inplace  # noqa: E402
from minidl.ops.activation import log_softmax, relu, sigmoid, softmax, tanh  # noqa: E402
from minidl.ops.elementwise import (  # noqa: E402
    abs,
    add,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    cast,
    clamp,
    cos,
    div,
    eq,
    exp,
    floor_divide,
    ge,
    gt,
    le,
    log,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    remainder,
    sin,
    sqrt,
    sub,
)
from minidl.ops.indexing import (  # noqa: E402
    copy_into,
    gather,
    masked_fill,
    nonzero,
    scatter,
    scatter_add,
)
from minidl.ops.matmul import bmm, matmul, mm  # noqa: E402
from minidl.ops.reduce import (  # noqa: E402
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    std,
    sum,
    var,
)
from minidl.ops.shape import (  # noqa: E402
    chunk,
    clone,
    contiguous,
    expand,
    flatten,
    getitem,
    narrow,
    permute,
    repeat,
    reshape,
    setitem,
    split,
    squeeze,
    t,
    transpose,
    unsqueeze,
)
from minidl.ops.sort import argsort, sort, topk  # noqa: E402
