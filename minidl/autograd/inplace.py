"""In-place operations: ``x += y``, ``x.add_(y)``, ``x.zero_()``, ``x.copy_(src)``, ...

Each in-place method computes its result with the ordinary op (``add``, ``clamp``,
...) and writes it into the tensor's own array, so every view of that memory sees
the change. PyTorch's rules, which keep gradients right:

- On a leaf that requires grad (a weight), an in-place change is allowed only
  under ``no_grad()`` (``with no_grad(): w -= lr * w.grad``): recorded in the
  graph it would make the weight depend on itself.
- On a result that requires grad (not a leaf), the change is recorded: the
  tensor's ``grad_fn`` becomes the in-place op's node, whose input is the value
  from before the change. Nodes recorded earlier keep their edge to the old value.
- On tensors that need no gradient, the data are simply written.

Every in-place change adds 1 to the tensor's version counter (``_version``, on
the base tensor for a view), so a node that saved the old values raises at
backward instead of computing a wrong gradient (see ``function.py``).
minidl does not rewrite the graph of a view's base as PyTorch does, so while
gradients are recorded an in-place change of a view (``x[0].mul_(2)``,
``x[0] += 1``) of a tensor that requires grad raises; write ``x[0] = x[0] * 2``
(``x[index] = value`` is recorded like any in-place op) or use an out-of-place op
(``where``, ``masked_fill``, ``cat``).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd import mode
from minidl.autograd.tensor import Tensor


def write_inplace(tensor: Tensor, op: str, compute, *args, cast: bool = False) -> Tensor:
    """Write ``compute(tensor, *args)`` into ``tensor.data``; record it if a gradient flows.

    ``compute`` is the out-of-place op (e.g. ``add``). With ``cast=True`` (``copy_``) the
    result is converted to the tensor's dtype; otherwise it must fit it, as in PyTorch
    (adding 0.5 to an int tensor is an error, not a silent truncation). Every check runs
    before anything is written.
    """
    recording = mode.grad_enabled and (tensor._requires_grad or any(
        isinstance(a, Tensor) and a._requires_grad for a in args))
    if recording:
        _check_recordable(tensor, op)
        before = Tensor._from_op(tensor.data.copy(), tensor.grad_fn)  # the value before
        before._requires_grad = tensor._requires_grad
        result = compute(before, *args)
    else:
        result = compute(tensor, *args)
    _check_fits(tensor, result.data, op, cast)
    try:
        tensor.data[...] = result.data
    except ValueError as error:  # a read-only array, e.g. from expand() or a user's array
        raise RuntimeError(f"{op}: cannot write into this tensor ({error}); tensors made by "
                           "expand() share one memory location: clone() it first") from None
    bump_version(tensor)
    if recording:
        tensor.grad_fn = result.grad_fn
        tensor._requires_grad = True
    return tensor


def bump_version(tensor: Tensor) -> None:
    """Count one in-place change of ``tensor`` (and of its base, if it is a view)."""
    tensor._version += 1
    if tensor._base is not None:
        tensor._base._version += 1


def _check_recordable(tensor: Tensor, op: str) -> None:
    if tensor.grad_fn is None and tensor._requires_grad:
        raise RuntimeError(
            f"{op}: a leaf tensor that requires grad (a weight) cannot be changed in place "
            "while gradients are recorded; do it under `with minidl.no_grad():`, as an "
            "optimizer step does")
    if tensor._base is not None:
        raise RuntimeError(
            f"{op}: in-place change of a view (from indexing, reshape, expand, detach, ...) "
            "while gradients are recorded is not supported by minidl; write x[i] = x[i] + v "
            "instead of x[i] += v, or use an out-of-place op (where, masked_fill, cat)")


def _check_fits(tensor: Tensor, result: np.ndarray, op: str, cast: bool) -> None:
    """The result must have the tensor's shape, and (unless ``cast``) a dtype it can hold."""
    if result.shape != tensor.shape:
        raise RuntimeError(f"{op}: the result has shape {result.shape}, but an in-place op "
                           f"cannot change the tensor's shape {tensor.shape} (the other "
                           "operand must broadcast to it)")
    if not cast and not np.can_cast(result.dtype, tensor.dtype, casting="same_kind"):
        raise TypeError(f"{op}: the result has dtype {result.dtype}, which a tensor of dtype "
                        f"{tensor.dtype} cannot hold; use the out-of-place op, or convert "
                        "first (e.g. x = x.float())")
