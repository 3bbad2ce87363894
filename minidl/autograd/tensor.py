"""Tensor: an ndarray that remembers how it was computed.

    x = Tensor([[1.0, 2.0]], requires_grad=True)
    y = (x * x).sum()
    y.backward()
    x.grad            # array([[2., 4.]], dtype=float32)

``.data`` and ``.grad`` are plain NumPy arrays. ``.grad_fn`` is the Function
that produced the tensor (None for leaves made by the user). Every method here
is a one-line call into ``minidl.ops``; the maths lives there.
"""

from __future__ import annotations

import numpy as np

DEFAULT_FLOAT = np.float32


def _to_array(data, dtype=None) -> np.ndarray:
    """Convert user data to an ndarray: Python floats become float32, ints int64.

    An ndarray keeps its dtype (as ``torch.from_numpy``) unless ``dtype`` is given; so does
    a NumPy scalar such as ``np.float64(1.0)`` (what ``array.sum()`` returns).
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):
        data = np.asarray(data)
    if isinstance(data, np.ndarray):
        return data if dtype is None else data.astype(dtype, copy=False)
    array = np.asarray(data)
    if dtype is not None:
        return array.astype(dtype, copy=False)
    if array.dtype == np.float64:
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
    # method and every optimizer update adds 1, so backward can tell that a saved input changed.
    __slots__ = ("data", "grad", "requires_grad", "grad_fn", "_retains_grad", "_version",
                 "__weakref__")
    __array_priority__ = 1000  # ndarray (op) Tensor defers to Tensor's reflected operator

    def __init__(self, data, requires_grad: bool = False, dtype=None):
        self.data = _to_array(data, dtype)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                "Tensor: only floating-point tensors can require gradients, "
                f"got dtype {self.data.dtype}"
            )
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.grad_fn = None
        self._retains_grad = False
        self._version = 0

    @classmethod
    def _from_op(cls, data, grad_fn):
        """Fast constructor used by Function.apply (no conversion, no checks)."""
        t = cls.__new__(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.grad = None
        t.requires_grad = grad_fn is not None
        t.grad_fn = grad_fn
        t._retains_grad = False
        t._version = 0
        return t

    # ---- properties -------------------------------------------------------
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
    def is_leaf(self) -> bool:
        return self.grad_fn is None

    @property
    def T(self) -> Tensor:
        """Reverse all axes (the matrix transpose for 2-D tensors)."""
        return permute(self, tuple(range(self.ndim - 1, -1, -1)))

    def size(self, dim: int | None = None):
        return self.data.shape if dim is None else self.data.shape[dim]

    def numel(self) -> int:
        return self.data.size

    def __len__(self) -> int:
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
                             "is ambiguous; use .any() or .all() on .data")
        return bool(self.data.item())

    def __float__(self) -> float:
        return float(self.item())

    def __int__(self) -> int:
        return int(self.item())

    def detach(self) -> Tensor:
        """A new leaf sharing this tensor's data, cut off from the graph."""
        return Tensor._from_op(self.data, None)

    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(f"requires_grad_: dtype {self.data.dtype} cannot require gradients")
        self.requires_grad = requires_grad
        return self

    def retain_grad(self) -> None:
        """Keep ``.grad`` on this non-leaf tensor after backward (leaves always keep it).

        Like a leaf's, the retained ``.grad`` accumulates over backward calls.
        """
        if self.grad_fn is not None:
            self._retains_grad = True
            self.grad_fn.retained = self

    def astype(self, dtype) -> Tensor:
        """A copy converted to ``dtype``, differentiable between float types."""
        return cast(self, dtype)

    def float(self) -> Tensor:
        return cast(self, np.float32)

    def double(self) -> Tensor:
        return cast(self, np.float64)

    def long(self) -> Tensor:
        return Tensor(self.data.astype(np.int64))

    def zero_(self) -> Tensor:
        self.data[...] = 0
        return self

    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires a gradient.

        ``grad`` defaults to 1 for a one-element tensor. See ``engine.backward``.
        """
        backward(self, grad, retain_graph=retain_graph)

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

    def __hash__(self):
        return id(self)

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

    def __getitem__(self, index):
        return getitem(self, index)

    # Comparisons give boolean tensors without gradient.
    def __lt__(self, other):
        return Tensor(self.data < _raw(other))

    def __le__(self, other):
        return Tensor(self.data <= _raw(other))

    def __gt__(self, other):
        return Tensor(self.data > _raw(other))

    def __ge__(self, other):
        return Tensor(self.data >= _raw(other))

    def eq(self, other):
        return Tensor(self.data == _raw(other))

    def ne(self, other):
        return Tensor(self.data != _raw(other))

    # ---- methods that forward to minidl.ops -------------------------------
    def exp(self):
        return exp(self)

    def log(self):
        return log(self)

    def sqrt(self):
        return sqrt(self)

    def abs(self):
        return abs(self)

    def pow(self, exponent):
        return pow(self, exponent)

    def clamp(self, min=None, max=None):
        return clamp(self, min, max)

    def maximum(self, other):
        return maximum(self, other)

    def minimum(self, other):
        return minimum(self, other)

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

    def argmax(self, dim=None, keepdim=False):
        return argmax(self, dim, keepdim)

    def argmin(self, dim=None, keepdim=False):
        return argmin(self, dim, keepdim)

    def logsumexp(self, dim=None, keepdim=False):
        return logsumexp(self, dim, keepdim)

    def reshape(self, *shape):
        return reshape(self, *shape)

    def view(self, *shape):
        return reshape(self, *shape)

    def transpose(self, dim0, dim1):
        return transpose(self, dim0, dim1)

    def permute(self, *dims):
        return permute(self, *dims)

    def squeeze(self, dim=None):
        return squeeze(self, dim)

    def unsqueeze(self, dim):
        return unsqueeze(self, dim)

    def expand(self, *shape):
        return expand(self, *shape)

    def flatten(self, start_dim=0, end_dim=-1):
        return flatten(self, start_dim, end_dim)

    def split(self, split_size_or_sections, dim=0):
        return split(self, split_size_or_sections, dim)

    def matmul(self, other):
        return matmul(self, other)

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


def _raw(x):
    return x.data if isinstance(x, Tensor) else x


# The ops import Tensor, so they are imported after the class exists.
from minidl.autograd.engine import backward  # noqa: E402
from minidl.ops.activation import log_softmax, relu, sigmoid, softmax, tanh  # noqa: E402
from minidl.ops.elementwise import (  # noqa: E402
    abs,
    add,
    cast,
    clamp,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
)
from minidl.ops.matmul import matmul  # noqa: E402
from minidl.ops.reduce import (  # noqa: E402
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
    expand,
    flatten,
    getitem,
    permute,
    reshape,
    split,
    squeeze,
    transpose,
    unsqueeze,
)
