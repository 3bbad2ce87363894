"""The backward pass: reverse-mode automatic differentiation over the recorded graph.

The graph is made of Functions (nodes); each node knows its input Tensors
(``parents``) and each non-leaf Tensor knows the node that made it (``grad_fn``).
``backward(root)``:

1. sorts the nodes topologically without recursion (so a 10,000-step RNN
   does not hit Python's recursion limit): newest node first;
2. walks them from the root to the leaves; each node turns dL/d(output) into
   dL/d(input) for every input with the chain rule (its ``backward``);
3. un-broadcasts each input gradient to the input's shape (here, once, for all
   ops) and adds it to what that input already received — a tensor used twice
   gets the sum of both paths;
4. stores the result in ``.grad`` of leaves (accumulating across calls, as in
   PyTorch) and frees the graph unless ``retain_graph=True``.

Before step 2, every node checks that the tensors it saved for backward were not
changed in place since (the version counter, explained in ``function.py``): a
changed input would give a wrong gradient, so backward raises instead, before
any ``.grad`` changes. A ``backward`` that returns the wrong number of gradients,
or a gradient whose shape is not the input's (nor one that sums back to it), is
a bug in that Function: the error names it, the input and the shapes.
"""

from __future__ import annotations

from operator import attrgetter

import numpy as np

from minidl.autograd import mode
from minidl.kernels.copy import transpose_into


def unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting added or stretched, so it has ``shape``.

    If y = x + b with x: [N, C] and b: [C], then dL/db = sum over N of dL/dy.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def topological_order(root_fn) -> list:
    """The nodes reachable from ``root_fn``, each before every node that made its inputs.

    A node's inputs always exist before the node does, so sorting the reachable
    nodes by creation number, newest first, is a topological order. Finding
    them is a breadth-first walk with a plain list (no recursion).
    """
    nodes, seen = [root_fn], {root_fn}
    i = 0
    while i < len(nodes):
        node = nodes[i]
        if node.parents is None:
            raise RuntimeError(
                f"backward: the graph through {node.name} was already freed by an earlier "
                "backward; call backward(retain_graph=True) the first time to go through it twice"
            )
        for fn in node.parent_fns:
            if fn is not None and fn not in seen:
                seen.add(fn)
                nodes.append(fn)
        i += 1
    nodes.sort(key=_creation_number, reverse=True)
    return nodes


_creation_number = attrgetter("number")


def backward(root, grad=None, retain_graph: bool = False) -> None:
    """Fill ``.grad`` of every leaf that ``root`` depends on with d(root)/d(leaf) (times ``grad``).

    Args:
        root: the Tensor to differentiate, usually a scalar loss.
        grad: dL/d(root); defaults to 1 when ``root`` has one element.
        retain_graph: keep the graph so ``backward`` can be called through it again.
    """
    if not root.requires_grad:
        raise RuntimeError(
            "backward: this tensor does not require grad and has no grad_fn "
            "(did you compute it under no_grad(), or from tensors without requires_grad=True?)"
        )
    if grad is None:
        if root.data.size != 1:
            raise RuntimeError(
                f"backward: grad can be implicitly created only for a one-element tensor, "
                f"got shape {root.shape}; pass grad= of that shape"
            )
        grad = np.ones_like(root.data)
    else:
        grad = np.asarray(getattr(grad, "data", grad), dtype=root.data.dtype)
        if grad.shape != root.shape:
            raise ValueError(
                f"backward: grad has shape {grad.shape} but the tensor has {root.shape}"
            )

    if root.grad_fn is None:  # a leaf: d(root)/d(root) = grad
        root.grad = grad.copy() if root.grad is None else root.grad + grad
        return

    order = topological_order(root.grad_fn)  # raises before any .grad changes
    for node in order:
        if node.saved_versions:
            node.check_saved_versions()
    watching = mode.watching  # anomaly mode or a profiler: each backward through run_op

    grads = {root.grad_fn: grad}  # node -> dL/d(its output), summed over all paths
    for node in order:
        out_grad = grads.pop(node, None)
        if out_grad is None:  # no path from root reaches this node's output
            continue
        if node.retained is not None:  # retain_grad(): accumulates like a leaf's .grad
            kept = node.retained
            kept.grad = np.array(out_grad) if kept.grad is None else kept.grad + out_grad
        if watching:
            in_grads = mode.run_op(node.backward, (out_grad,), {}, node.name, "backward")
        else:
            in_grads = node.backward(out_grad)
        if type(in_grads) is not tuple:
            in_grads = (in_grads,)
        if len(in_grads) != len(node.parents):
            raise_wrong_count(node, in_grads)
        for i, (parent, needs, fn, g) in enumerate(
                zip(node.parents, node.needs_input_grad, node.parent_fns, in_grads)):
            if not needs or g is None:
                continue
            data = parent.data
            if g.shape != data.shape:
                g = unbroadcast_checked(node, i, g, data.shape)
            if g.dtype is not data.dtype:  # e.g. a float64 constant met a float32 tensor
                g = g.astype(data.dtype, copy=False)
            if fn is None:  # a leaf: accumulate into .grad, never aliasing another array
                if parent.grad is not None:
                    parent.grad = parent.grad + g
                else:
                    parent.grad = g if made_for_this_input(g, out_grad, in_grads, node) \
                        else owned_copy(g)
            elif fn in grads:
                grads[fn] = grads[fn] + g
            else:
                grads[fn] = g
        if not retain_graph:  # free the graph: drop the saved arrays and the edges
            node.saved_tensors = None
            node.saved_versions = ()
            node.parents = None


def made_for_this_input(g, out_grad, in_grads, node) -> bool:
    """True when ``backward`` made ``g`` afresh for this one input, so that a leaf can keep it
    as its ``.grad`` without a copy: it is not the incoming gradient passed through (``Add``),
    not given to two inputs, not a view of another array, and not an array the node saved.
    Otherwise the leaf gets a copy, so that changing one ``.grad`` in place (``clip_grad_norm_``,
    ``zero_grad(set_to_none=False)``) can never change another gradient."""
    if g is out_grad or g.base is not None:
        return False
    if sum(other is g for other in in_grads) > 1:
        return False
    return not any(g is saved for saved in node.saved_tensors or ())


def owned_copy(g: np.ndarray) -> np.ndarray:
    """A C-contiguous copy of ``g``. A large transposed matrix (the gradient of an nn.Linear
    weight arrives as one) is copied tile by tile (minidl/kernels/copy.py): NumPy's own
    copy walks it a row apart per element, many times slower. Same values either way."""
    if g.ndim == 2 and g.size >= _TILED_COPY_MIN and g.flags.f_contiguous \
            and not g.flags.c_contiguous:
        out = np.empty(g.shape, g.dtype)
        transpose_into(g.T, out)
        return out
    return g.copy()


_TILED_COPY_MIN = 1 << 16  # below about 64K entries NumPy's copy fits in cache anyway


def raise_wrong_count(node, in_grads) -> None:
    """A backward must return one gradient (or None) per input of forward."""
    raise RuntimeError(
        f"backward: {node.name}.backward returned {len(in_grads)} gradient(s), but its "
        f"forward took {len(node.parents)} input(s); return one per input (None where an "
        "input needs no gradient)")


def unbroadcast_checked(node, index: int, grad, shape: tuple) -> np.ndarray:
    """``unbroadcast(grad, shape)``, or an error naming the Function when ``grad`` is not an
    array of ``shape`` or of a shape that ``shape`` broadcasts to."""
    got = getattr(grad, "shape", None)
    try:
        fits = got is not None and np.broadcast_shapes(got, shape) == got
    except ValueError:
        fits = False
    if not fits:
        what = f"shape {got}" if got is not None else f"a {type(grad).__name__}"
        raise RuntimeError(
            f"backward: {node.name}.backward returned a gradient of {what} for input {index}, "
            f"which has shape {shape}; the gradient must have the input's shape")
    return unbroadcast(grad, shape)
