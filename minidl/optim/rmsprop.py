"""RMSprop: divide the gradient by a running root-mean-square of recent gradients.

Tieleman & Hinton (2012), Coursera "Neural Networks for Machine Learning",
lecture 6.5; the centered form is from Graves (2013), "Generating Sequences
With Recurrent Neural Networks". As in PyTorch's ``torch.optim.RMSprop``::

    g = grad + weight_decay * p
    s = alpha * s + (1 - alpha) * g**2           # running mean of g^2
    if centered:
        a = alpha * a + (1 - alpha) * g          # running mean of g
        r = sqrt(s - a**2) + eps                 # running standard deviation
    else:
        r = sqrt(s) + eps
    if momentum > 0:
        b = momentum * b + g / r                 # b starts at 0
        p = p - lr * b
    else:
        p = p - lr * g / r
"""

from __future__ import annotations

import numpy as np

from minidl.optim.optimizer import Optimizer, check_number


class RMSprop(Optimizer):
    """RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0, momentum=0, centered=False).

    State per parameter: ``step``, ``square_avg`` (s), ``grad_avg`` (a, centered
    only), ``momentum_buffer`` (b, momentum only).
    """

    def __init__(self, params, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        defaults = dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                        momentum=momentum, centered=centered)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        check_number(self.name, "alpha", group["alpha"], low=0.0, high=1.0)
        check_number(self.name, "eps", group["eps"], low=0.0)
        check_number(self.name, "weight_decay", group["weight_decay"], low=0.0)
        check_number(self.name, "momentum", group["momentum"], low=0.0)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        alpha = group["alpha"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param

        s = state["square_avg"]
        s *= alpha
        s += (1 - alpha) * grad * grad
        if group["centered"]:
            a = state.setdefault("grad_avg", np.zeros_like(param))
            a *= alpha
            a += (1 - alpha) * grad
            # s >= a^2 in exact arithmetic; the clamp only guards against rounding.
            r = np.sqrt(np.maximum(s - a * a, 0)) + group["eps"]
        else:
            r = np.sqrt(s) + group["eps"]

        if group["momentum"] > 0:
            b = state.setdefault("momentum_buffer", np.zeros_like(param))
            b *= group["momentum"]
            b += grad / r
            param -= group["lr"] * b
        else:
            param -= group["lr"] * grad / r
