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
    """L = sum_k sum(w_k * out_k) over the floating-point outputs of ``fn``: a scalar Tensor."""
    out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    total = Tensor(np.zeros((), dtype=np.float64))
    for o, w in zip(outs, weights):
        if isinstance(o, Tensor) and o.data.dtype.kind == "f":
            total = total + (o * w).sum()
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
        True when all gradients agree. The inputs' ``.data`` and ``.grad`` are left as found.
    """
    inputs = list(inputs)
    checked = list({id(t): t for t in inputs if isinstance(t, Tensor) and t.requires_grad}.values())
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True")
    for t in checked:
        if t.dtype != np.float64:
            raise TypeError(f"gradcheck: inputs must be float64, got {t.dtype} (shape {t.shape})")

    saved = [(t.data, t.grad) for t in checked]
    try:
        for t in checked:  # a private contiguous copy, perturbed in place below
            t.data, t.grad = np.array(t.data, copy=True, order="C"), None
        return _compare(fn, inputs, checked, eps, atol, rtol, seed, raise_exception)
    finally:
        for t, (data, grad) in zip(checked, saved):
            t.data, t.grad = data, grad


def _compare(fn, inputs, checked, eps, atol, rtol, seed, raise_exception) -> bool:
    with mode.no_grad():
        out = fn(*inputs)
    outs = out if isinstance(out, (tuple, list)) else (out,)
    rng = np.random.default_rng(seed)
    weights = [rng.uniform(0.5, 1.5, np.shape(o)) for o in outs]

    with mode.enable_grad():  # the analytic gradient, even if called under no_grad()
        loss = _probe_loss(fn, inputs, weights)
    if loss.requires_grad:  # else no output depends on the inputs: every gradient is 0
        loss.backward()
    analytic = [np.zeros_like(t.data) if t.grad is None else t.grad for t in checked]

    for k, (t, ana) in enumerate(zip(checked, analytic)):
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
        if not (error <= allowed).all():  # written so that a NaN anywhere fails too
            if not raise_exception:
                return False
            excess = np.where(np.isnan(error), np.inf, error - allowed)
            worst = np.unravel_index(np.argmax(excess), error.shape)
            raise GradcheckError(
                f"gradcheck: input {k} (shape {t.shape}) disagrees at index "
                f"{tuple(map(int, worst))}: numeric {numeric[worst]:.6g}, "
                f"analytic {ana[worst]:.6g}; "
                f"{int((~(error <= allowed)).sum())} of {error.size} elements out of tolerance"
            )
    return True
