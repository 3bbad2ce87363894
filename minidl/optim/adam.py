"""Adam and AdamW: per-parameter step sizes from running moments of the gradient.

Adam (Kingma & Ba, 2015, "Adam: A Method for Stochastic Optimization"), step t = 1, 2, ...
as in PyTorch's ``torch.optim.Adam``::

    g = grad + weight_decay * p                  # Adam: L2 penalty inside the gradient
    m = beta1 * m + (1 - beta1) * g              # first moment (mean)
    v = beta2 * v + (1 - beta2) * g**2           # second moment (uncentered variance)
    v_hat = max(v_hat, v) if amsgrad else v      # AMSGrad: Reddi et al. (2018)
    p = p - lr / (1 - beta1**t) * m / (sqrt(v_hat) / sqrt(1 - beta2**t) + eps)

The two ``1 - beta**t`` factors undo the bias of m and v towards their zero
start. AdamW (Loshchilov & Hutter, 2019, "Decoupled Weight Decay
Regularization") shrinks the weights directly instead of adding to the gradient::

    p = p * (1 - lr * weight_decay)              # then the Adam step with weight_decay = 0

With Adam's L2 form the decay is divided by sqrt(v) like the rest of the
gradient, so weights with large gradients are barely regularized; AdamW
decays all weights at the same rate.

The update is one numba loop over the elements (``minidl/kernels/optim.py``) when the
parameter, its gradient and its state are contiguous arrays of one dtype, and the
NumPy passes of that file's twin otherwise. The two give the same bits: the loop
only saves the dozen trips through memory that the NumPy passes make.
"""

from __future__ import annotations

import math

import numpy as np

from minidl.kernels import optim as kernels
from minidl.optim.optimizer import Optimizer, check_number


class Adam(Optimizer):
    """Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False).

    State per parameter: ``step`` (int), ``exp_avg`` (m), ``exp_avg_sq`` (v) and,
    with amsgrad, ``max_exp_avg_sq``.
    """

    decoupled_weight_decay = False  # AdamW sets True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        betas = group["betas"]
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{self.name}: betas must be a pair (beta1, beta2), got {betas!r}")
        group["betas"] = tuple(betas)
        check_number(self.name, "beta1", betas[0], low=0.0, high=1.0, high_open=True)
        check_number(self.name, "beta2", betas[1], low=0.0, high=1.0, high_open=True)
        check_number(self.name, "eps", group["eps"], low=0.0)
        check_number(self.name, "weight_decay", group["weight_decay"], low=0.0)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        lr, wd, eps = float(group["lr"]), float(group["weight_decay"]), float(group["eps"])
        beta1, beta2 = (float(b) for b in group["betas"])
        amsgrad = group["amsgrad"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        if amsgrad and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]

        decoupled = self.decoupled_weight_decay
        arrays = [param, grad, state["exp_avg"], state["exp_avg_sq"],
                  state["max_exp_avg_sq"] if amsgrad else None]
        numbers = [1 - lr * wd if decoupled else 1.0,  # AdamW: p *= 1 - lr * weight_decay
                   0.0 if decoupled else wd,  # Adam: g = grad + weight_decay * p
                   beta1, 1 - beta1, beta2, 1 - beta2,
                   lr / (1 - beta1 ** t),  # step size, with m's bias correction
                   math.sqrt(1 - beta2 ** t),  # v's bias correction, inside the square root
                   eps]
        if _fusable(arrays):
            # One pass in numba, bit for bit the NumPy passes (minidl/kernels/optim.py):
            # the Python floats rounded to the arrays' dtype, as NumPy rounds them.
            flat = [a.reshape(-1) if a is not None else np.empty(0, param.dtype) for a in arrays]
            kernels.adam_update(*flat, amsgrad, *np.array(numbers, dtype=param.dtype))
        else:
            kernels.adam_update_reference(*arrays, amsgrad, *numbers)


def _fusable(arrays) -> bool:
    """Whether the one-pass kernel can update these arrays: all of one float dtype
    (float32 or float64) and C-contiguous (``None``, the unused AMSGrad buffer, aside)."""
    arrays = [a for a in arrays if a is not None]
    dtype = arrays[0].dtype
    return dtype in (np.float32, np.float64) and \
        all(a.dtype == dtype and a.flags.c_contiguous for a in arrays)


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    Adam with decoupled weight decay ``p *= 1 - lr * weight_decay`` before each step."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
