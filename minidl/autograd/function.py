"""Function: one differentiable operation, forward and backward side by side.

A primitive is a subclass of ``Function`` with two methods on plain ndarrays::

    class Mul(Function):
        def forward(ctx, a, b):          # a, b: ndarrays
            ctx.save_for_backward(a, b)
            return a * b

        def backward(ctx, grad):         # grad: dL/d(output), an ndarray
            a, b = ctx.saved_tensors
            return grad * b, grad * a    # dL/da, dL/db (None if not needed)

``Mul.apply(x, y)`` runs ``forward`` on the inputs' ``.data`` and, when a
gradient is needed, records the Function instance as the output's ``grad_fn``.
The instance is its own context (as in Chainer and early tinygrad): whatever
``forward`` stores on ``ctx`` is there again in ``backward``.

Broadcasting is undone in one place, the engine: ``backward`` may return a
gradient of the broadcast shape and the engine sums it back to each input's
shape.
"""

from __future__ import annotations

import itertools

import numpy as np

from minidl.autograd import mode
from minidl.autograd.tensor import Tensor

_node_counter = itertools.count()


class Function:
    """Base class of every primitive. Subclasses define ``forward`` and ``backward``.

    Attributes set by ``apply`` and read by the engine:
      parents: the inputs as given (Tensors, arrays or numbers); None once the
        engine has freed the graph.
      needs_input_grad: one bool per input, True where a gradient must flow.
      saved_tensors: what ``save_for_backward`` stored.
    """

    # The per-op fields are slots (cheap to set on every op); anything else a
    # forward stores on ctx goes into the instance __dict__, made on first use.
    __slots__ = ("parents", "needs_input_grad", "number", "saved_tensors", "__dict__")
    retained = None  # the output Tensor, if it asked to keep its .grad (retain_grad)

    def save_for_backward(self, *arrays):
        """Keep ndarrays for ``backward``. Freed with the graph after backward."""
        self.saved_tensors = arrays

    @property
    def name(self) -> str:
        return type(self).__name__

    @classmethod
    def apply(cls, *inputs, **params):
        """Run ``forward`` on the inputs' arrays and record the graph if a gradient is needed.

        ``inputs`` may mix Tensors, ndarrays and Python scalars; only Tensors can
        receive a gradient. ``params`` are non-differentiable keyword arguments.
        """
        ctx = object.__new__(cls)
        ctx.saved_tensors = ()
        arrays, needs, any_needs = [], [], False
        for x in inputs:  # one plain loop: this runs for every op, so it is kept lean
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x.requires_grad)
                any_needs = any_needs or x.requires_grad
            else:
                arrays.append(x)
                needs.append(False)
        if mode.anomaly_enabled:  # NumPy's warnings off, then name the op if NaN/Inf came out
            out = mode.run_checked(ctx.forward, arrays, params, f"{cls.__name__}.forward")
        else:
            out = ctx.forward(*arrays, **params)
        if any_needs and mode.grad_enabled:
            ctx.number = next(_node_counter)  # creation order = a topological order
            ctx.parents = inputs
            ctx.needs_input_grad = needs
            return Tensor._from_op(out, ctx)
        return Tensor._from_op(out, None)

    def __repr__(self) -> str:
        return f"<{self.name}>"


def as_array(x, dtype=None) -> np.ndarray:
    """Return the ndarray behind a Tensor, array or scalar (used by non-differentiable helpers)."""
    if isinstance(x, Tensor):
        return x.data
    return np.asarray(x, dtype=dtype)
