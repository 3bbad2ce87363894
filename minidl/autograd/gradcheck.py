"""gradcheck: compare backward's gradient with central differences, element by element.

For every input element x_i and the scalar probe L = sum(w * f(x)) with a fixed
random w (so that every output element matters, each with its own weight):

    numeric_i  = (L(x + eps e_i) - L(x - eps e_i)) / (2 eps)      error O(eps^2)
    analytic_i = dL/dx_i from backward

and require |numeric - analytic| <= atol + rtol |numeric| everywhere. Run it in
float64: with float32 the rounding error of L (about 1e-7 |L|) divided by
2 eps swamps the comparison.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd import mode
from minidl.autograd.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numeric gradients disagree."""


def _probe_loss(fn, inputs, weights):
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    total = None
    for o, w in zip(outs, weights):
        if o.data.dtype.kind == "f":
            term = (o * w).sum()
            total = term if total is None else total + term
    return total


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-3,
              seed: int = 0, raise_exception: bool = True) -> bool:
    """Check ``fn``'s backward against central differences over every input element.

    Args:
        fn: callable taking the Tensors in ``inputs`` and returning a Tensor (or a tuple).
        inputs: sequence of Tensors; those with ``requires_grad=True`` are checked.
            They must be float64.
        eps: finite-difference step.
        atol, rtol: tolerances, |numeric - analytic| <= atol + rtol * |numeric|.
        seed: seed of the random output weights w.
        raise_exception: raise GradcheckError naming the worst element (else return False).

    Returns:
        True when all gradients agree.
    """
    inputs = list(inputs)
    checked = [t for t in inputs if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64, got {t.dtype} (shape {t.shape})")

    with mode.no_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, o.shape) for o in outs]

    for t in checked:
        t.grad = None
    loss = _probe_loss(fn, inputs, weights)
    loss.backward()
    analytic = [np.zeros_like(t.data) if t.grad is None else t.grad.copy() for t in checked]

    for k, (t, ana) in enumerate(zip(checked, analytic)):
        t.data = np.ascontiguousarray(t.data)
        numeric = np.zeros_like(t.data)
        flat = t.data.reshape(-1)  # a view: writing it perturbs the input in place
        num_flat = numeric.reshape(-1)
        with mode.no_grad():
            for i in range(flat.size):
                original = flat[i]
                flat[i] = original + eps
                plus = _probe_loss(fn, inputs, weights).item()
                flat[i] = original - eps
                minus = _probe_loss(fn, inputs, weights).item()
                flat[i] = original
                num_flat[i] = (plus - minus) / (2 * eps)
        error = np.abs(numeric - ana)
        allowed = atol + rtol * np.abs(numeric)
        if (error > allowed).any():
            if not raise_exception:
                return False
            worst = np.unravel_index(np.argmax(error - allowed), error.shape)
            raise GradcheckError(
                f"gradcheck: input {k} (shape {t.shape}) disagrees at index {tuple(map(int, worst))}: "
                f"numeric {numeric[worst]:.6g}, analytic {ana[worst]:.6g}; "
                f"{int((error > allowed).sum())} of {error.size} elements out of tolerance"
            )
    for t in checked:
        t.grad = None
    return True
