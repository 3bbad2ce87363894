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
``forward`` stores on ``ctx`` is there again in ``backward``. ``backward`` returns
one gradient per input of ``forward`` (None where none is needed).

PyTorch writes the same two methods as ``@staticmethod``s taking ``ctx`` first;
such a class works here unchanged (``__init_subclass__`` turns the static
functions back into methods, so ``ctx`` is again the instance). Either way,
``forward`` and ``backward`` see NumPy arrays, not Tensors: ``a.clip(0)`` for
``a.clamp(min=0)``, ``g.copy()`` for ``g.clone()``.

Broadcasting is undone in one place, the engine: ``backward`` may return a
gradient of the broadcast shape and the engine sums it back to each input's
shape.

Saved tensors and the version counter
-------------------------------------
``Mul`` saves ``a`` and ``b`` because its backward needs them: dL/da = g * b. If
``b`` changes between the forward pass and ``backward`` (``b.zero_()``, ``b += 1``,
an optimizer step on a weight), backward would multiply by the new values and
return a wrong gradient, without any error. PyTorch's guard, and minidl's:

1. Every Tensor has a version counter, ``t._version``, 0 at creation. Every
   in-place change adds 1: the in-place methods (``add_``, ``+=``, ``zero_``,
   ``copy_``, ...) and every optimizer update. A view (``x[0]``, ``x.reshape``,
   ``x.detach()``) shares its memory with its base tensor, so an in-place change
   of either is counted on the base (``_base``).
2. When ``apply`` records a node, it notes, for each array ``forward`` saved that
   is an input's data (or the output's, as ``exp`` saves e^a), which tensor it
   belongs to and that tensor's version at this moment (``saved_versions``).
3. Before ``backward`` runs, the engine compares each noted version with the
   tensor's version now. Any difference raises a RuntimeError that names the op,
   the saved input and both versions. Ops that did not save the changed tensor
   (``Add`` saves nothing) do not care, and do not raise.

Arrays an op keeps that no Tensor owns (the index array of ``x[idx]``, the mask of
``where``) are copied by the op, so changing the user's array cannot reach backward.
Writing into ``t.data`` directly (``t.data[0] = 1``) bypasses the counter, as
``.data`` does in PyTorch: use the in-place methods under ``no_grad()`` instead.

The edges of the graph (``parent_fns``) are the inputs' ``grad_fn`` at the time of
the call. An in-place op gives its tensor a new ``grad_fn``; the nodes recorded
before it still lead to the old one, as they must.
"""

from __future__ import annotations

import itertools
import weakref

import numpy as np

from minidl.autograd import mode
from minidl.autograd.tensor import Tensor

_node_counter = itertools.count()


class Function:
    """Base class of every primitive. Subclasses define ``forward`` and ``backward``.

    Attributes set by ``apply`` and read by the engine:
      parents: the inputs as given (Tensors, arrays or numbers); None once the
        engine has freed the graph.
      parent_fns: each input's ``grad_fn`` when the op ran (None for leaves and constants).
      needs_input_grad: one bool per input, True where a gradient must flow.
      saved_tensors: what ``save_for_backward`` stored.
      saved_versions: (input index or "output", tensor, version) for each saved array
        that belongs to a Tensor (see the module docstring).
    """

    # The per-op fields are slots (cheap to set on every op); anything else a
    # forward stores on ctx goes into the instance __dict__, made on first use.
    __slots__ = ("parents", "parent_fns", "needs_input_grad", "number", "saved_tensors",
                 "saved_versions", "__dict__")
    retained = None  # the output Tensor, if it asked to keep its .grad (retain_grad)

    def __init_subclass__(cls, **kwargs):
        """Accept PyTorch's style: ``@staticmethod def forward(ctx, ...)``. A static
        function whose first argument is ``ctx`` is the same code as a method whose
        ``self`` is named ``ctx``, so it is stored as a plain method."""
        super().__init_subclass__(**kwargs)
        for name in ("forward", "backward"):
            member = cls.__dict__.get(name)
            if isinstance(member, staticmethod):
                setattr(cls, name, member.__func__)

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
        arrays, needs, fns, any_needs = [], [], [], False
        for x in inputs:  # one plain loop: this runs for every op, so it is kept lean
            if isinstance(x, Tensor):
                arrays.append(x.data)
                needs.append(x._requires_grad)
                fns.append(x.grad_fn)
                any_needs = any_needs or x._requires_grad
            else:
                arrays.append(x)
                needs.append(False)
                fns.append(None)
        if mode.watching:  # anomaly mode (name the op that made a NaN/Inf) or a profiler
            out = mode.run_op(ctx.forward, arrays, params, cls.__name__, "forward")
        else:
            out = ctx.forward(*arrays, **params)
        if any_needs and mode.grad_enabled:
            ctx.number = next(_node_counter)  # creation order = a topological order
            ctx.parents = inputs
            ctx.parent_fns = fns
            ctx.needs_input_grad = needs
            result = Tensor._from_op(out, ctx)
            saved = ctx.saved_tensors
            ctx.saved_versions = record_versions(saved, inputs, result) if saved else ()
            return result
        return Tensor._from_op(out, None)

    def check_saved_versions(self) -> None:
        """Raise if a tensor whose data this node saved was changed in place since."""
        for role, owner, version in self.saved_versions:
            tensor = owner() if role == "output" else owner  # the output is held weakly
            if tensor is None or tensor._version == version:
                continue
            if role == "output":
                what = f"its output (shape {list(tensor.shape)})"
            else:
                what = f"input {role} (shape {list(self.parents[role].shape)})"
            raise RuntimeError(
                f"backward: {self.name} saved {what} at version {version}, but it has been "
                f"modified in place since (now version {tensor._version}): an in-place op "
                "(x.add_(...), x += ..., x.zero_(), an optimizer step) changed it between the "
                "forward pass and backward. Use the out-of-place form (x = x + ...), clone() it "
                "first, or call backward before changing it.")

    @property
    def next_functions(self) -> tuple:
        """PyTorch's name for the edges: one ``(node, 0)`` per input, where the node is the
        input's grad_fn, an ``AccumulateGrad`` for a leaf that requires grad, or None."""
        if self.parents is None:  # freed by backward
            return ()
        return tuple((fn if fn is not None else AccumulateGrad(x) if needs else None, 0)
                     for x, fn, needs in zip(self.parents, self.parent_fns,
                                             self.needs_input_grad))

    def __repr__(self) -> str:
        return f"<{self.name}>"


def record_versions(saved: tuple, inputs: tuple, output: Tensor) -> tuple:
    """(input index, owner, version) for every saved array that is an input's data, and
    ("output", weak reference, 0) for a saved output (a weak reference: the output refers
    to this node through its grad_fn, and a strong one would make a reference cycle)."""
    records = []
    for array in saved:
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor) and x.data is array:
                owner = x if x._base is None else x._base  # a view counts on its base
                records.append((i, owner, owner._version))
                break
        else:
            if array is output.data:
                records.append(("output", weakref.ref(output), 0))
    return tuple(records)


class ViewFunction(Function):
    """A Function whose output may share memory with its first input (reshape, permute,
    expand, slicing). ``apply`` marks such an output as a view of the input's base, so
    that an in-place change of either one is counted on the same version counter."""

    @classmethod
    def apply(cls, a, *rest, **params):
        out = super().apply(a, *rest, **params)
        if isinstance(a, Tensor) and _memory_owner(out.data) is _memory_owner(a.data):
            out._base = a if a._base is None else a._base
        return out


def _memory_owner(array: np.ndarray):
    """The array that owns ``array``'s memory (itself if it is not a view). Cheaper than
    np.shares_memory, and exact for NumPy's views; a reshape that had to copy owns its own."""
    while isinstance(array.base, np.ndarray):
        array = array.base
    return array


class AccumulateGrad:
    """The node PyTorch shows for a leaf in ``next_functions``: it adds into ``variable.grad``."""

    name = "AccumulateGrad"
    next_functions = ()

    def __init__(self, variable: Tensor):
        self.variable = variable

    def __repr__(self) -> str:
        return "<AccumulateGrad>"


def as_array(x, dtype=None) -> np.ndarray:
    """Return the ndarray behind a Tensor, array or scalar (used by non-differentiable helpers)."""
    if isinstance(x, Tensor):
        return x.data
    return np.asarray(x, dtype=dtype)
