"""Optimizer kernels: Adam's update as one loop over the elements.

Written with NumPy, one Adam step is about a dozen whole-array passes (scale m, add
to m, scale v, square the gradient, add to v, square root, divide, add eps, ...),
each reading and writing arrays the size of the parameter. For a large weight (a
detector's fully connected head has millions) those passes take as long as the
layer's own forward and backward. ``adam_update`` does the same arithmetic for one
element at a time, with the element in registers, so every array is read and
written once.

It gives the same numbers as the NumPy passes, bit for bit, so a lesson's figures do
not depend on which one ran:
* every operation is done in the parameter's dtype, in the order NumPy does it: the
  caller passes the scalars already rounded to that dtype (NumPy rounds a Python float
  to float32 before it multiplies a float32 array), ``1 - beta`` among them, rounded
  from the float64 value as NumPy would;
* no fastmath: no reassociation and no fused multiply-add;
* ``error_model="numpy"``: a division by zero gives inf or nan as in NumPy, instead of
  Python's ZeroDivisionError check, which would also stop LLVM from vectorizing the loop.

    adam_update:  p = p * decay                        (AdamW; decay = 1 for Adam)
                  g = grad + weight_decay * p          (Adam's L2 term; skipped if 0)
                  m = m * beta1 + one_minus_beta1 * g
                  v = v * beta2 + one_minus_beta2 * g * g
                  v_max = max(v_max, v)                 (amsgrad; NaN wins, as np.maximum)
                  p = p - step_size * m / (sqrt(v or v_max) / bias2_sqrt + eps)

``minidl/optim/adam.py`` says what each scalar is and when it uses the kernel.
"""

from __future__ import annotations

import numpy as np

from minidl.utils.jit import njit


@njit(error_model="numpy")
def adam_update(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, decay,
                weight_decay, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
                bias2_sqrt, eps):
    """One Adam step, in place, on 1-D arrays of one dtype (the formulas above).

    param, grad, exp_avg (m), exp_avg_sq (v): [P];  max_exp_avg_sq: [P] if ``amsgrad``
    (else unused);  the scalars: in the arrays' dtype.
    """
    for i in range(param.size):
        p = param[i] * decay
        g = grad[i]
        if weight_decay != 0:
            g = g + weight_decay * p
        m = exp_avg[i] * beta1 + one_minus_beta1 * g
        v = exp_avg_sq[i] * beta2 + one_minus_beta2 * g * g
        exp_avg[i] = m
        exp_avg_sq[i] = v
        if amsgrad:
            v_max = max_exp_avg_sq[i]
            if v > v_max or v != v:  # np.maximum: a NaN on either side wins
                v_max = v
            max_exp_avg_sq[i] = v_max
            v = v_max
        param[i] = p - step_size * m / (np.sqrt(v) / bias2_sqrt + eps)


# ---- plain-NumPy twin ----------------------------------------------------------
def adam_update_reference(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, amsgrad, decay,
                          weight_decay, beta1, one_minus_beta1, beta2, one_minus_beta2,
                          step_size, bias2_sqrt, eps):
    """adam_update with whole-array NumPy operations (any shapes and dtypes NumPy accepts)."""
    if decay != 1:
        param *= decay
    if weight_decay != 0:
        grad = grad + weight_decay * param
    exp_avg *= beta1
    exp_avg += one_minus_beta1 * grad
    exp_avg_sq *= beta2
    exp_avg_sq += one_minus_beta2 * grad * grad
    v = exp_avg_sq
    if amsgrad:
        np.maximum(max_exp_avg_sq, exp_avg_sq, out=max_exp_avg_sq)
        v = max_exp_avg_sq
    param -= step_size * exp_avg / (np.sqrt(v) / bias2_sqrt + eps)
