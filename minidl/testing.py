"""Helpers to test an op the way every minidl op is tested (after Chainer's FunctionTestCase).

    check_op(lambda x: F.tanh(x), np.tanh, [np.random.randn(3, 4)])

runs the op in float64, compares its forward with an independent NumPy
``reference`` and checks its backward with ``gradcheck`` over every element.
Students use it for the ops they write (see examples/new_primitive.py).
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.gradcheck import gradcheck
from minidl.autograd.tensor import Tensor


def float64_inputs(arrays, requires_grad=True):
    """Float arrays become float64 Tensors that require grad; others stay as given."""
    out = []
    for a in arrays:
        a = np.asarray(a)
        if a.dtype.kind == "f":
            out.append(Tensor(a.astype(np.float64), requires_grad=requires_grad))
        else:
            out.append(Tensor(a))
    return out


def check_forward(fn, reference, arrays, atol=1e-10, rtol=1e-7):
    """``fn`` on float64 Tensors equals ``reference`` on the same float64 arrays."""
    tensors = float64_inputs(arrays, requires_grad=False)
    got = fn(*tensors)
    want = reference(*[t.data.copy() for t in tensors])
    gots = got if isinstance(got, (tuple, list)) else (got,)
    wants = want if isinstance(want, (tuple, list)) else (want,)
    assert len(gots) == len(wants), f"{len(gots)} outputs, reference gives {len(wants)}"
    for g, w in zip(gots, wants):
        g = g.data if isinstance(g, Tensor) else np.asarray(g)
        np.testing.assert_allclose(g, np.asarray(w), atol=atol, rtol=rtol)
        assert g.shape == np.shape(w), f"shape {g.shape} != reference {np.shape(w)}"


def check_op(fn, reference, arrays, atol=1e-10, rtol=1e-7, **gradcheck_kwargs):
    """Forward against ``reference`` and float64 gradcheck over every element."""
    check_forward(fn, reference, arrays, atol=atol, rtol=rtol)
    assert gradcheck(fn, float64_inputs(arrays), **gradcheck_kwargs)
