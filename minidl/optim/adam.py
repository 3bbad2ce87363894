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
"""

from __future__ import annotations

import math

import numpy as np

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
        lr, (beta1, beta2), wd = group["lr"], group["betas"], group["weight_decay"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = np.zeros_like(param)
            state["exp_avg_sq"] = np.zeros_like(param)
        if group["amsgrad"] and "max_exp_avg_sq" not in state:
            state["max_exp_avg_sq"] = np.zeros_like(param)
        state["step"] += 1
        t = state["step"]

        if wd != 0:
            if self.decoupled_weight_decay:
                param *= 1 - lr * wd
            else:
                grad = grad + wd * param
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            np.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]

        step_size = lr / (1 - beta1 ** t)
        denom = np.sqrt(v) / math.sqrt(1 - beta2 ** t) + group["eps"]
        param -= step_size * m / denom


class AdamW(Adam):
    """AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False):
    Adam with decoupled weight decay ``p *= 1 - lr * weight_decay`` before each step."""

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                         amsgrad=amsgrad)
