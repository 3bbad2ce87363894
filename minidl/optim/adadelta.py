"""Adadelta: steps in the units of the weights, with no learning rate to tune (lr = 1).

Zeiler (2012), "ADADELTA: An Adaptive Learning Rate Method", Algorithm 1.
As in PyTorch's ``torch.optim.Adadelta``::

    g = grad + weight_decay * p
    v = rho * v + (1 - rho) * g**2                   # running mean of g^2 (v starts at 0)
    dx = sqrt(u + eps) / sqrt(v + eps) * g           # RMS of past steps / RMS of gradients
    u = rho * u + (1 - rho) * dx**2                  # running mean of dx^2 (u starts at 0)
    p = p - lr * dx

Zeiler's argument: in ``p - lr * g`` the units do not match unless lr carries
the units of p / g; the ratio of the two RMS values has those units (a diagonal
Newton step would too), so the paper uses lr = 1. PyTorch keeps lr as a factor
(default 1.0); its MNIST example trains with Adadelta at lr = 1.0.
"""

from __future__ import annotations

import numpy as np

from minidl.optim.optimizer import Optimizer, check_number


class Adadelta(Optimizer):
    """Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0).

    State per parameter: ``step`` (int), ``square_avg`` (v) and ``acc_delta`` (u).
    """

    def __init__(self, params, lr: float = 1.0, rho: float = 0.9, eps: float = 1e-6,
                 weight_decay: float = 0.0):
        defaults = dict(lr=lr, rho=rho, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        check_number(self.name, "rho", group["rho"], low=0.0, high=1.0)
        check_number(self.name, "eps", group["eps"], low=0.0)
        check_number(self.name, "weight_decay", group["weight_decay"], low=0.0)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        rho, eps = group["rho"], group["eps"]
        if not state:
            state["step"] = 0
            state["square_avg"] = np.zeros_like(param)
            state["acc_delta"] = np.zeros_like(param)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        v, u = state["square_avg"], state["acc_delta"]
        v *= rho
        v += (1 - rho) * grad * grad
        delta = np.sqrt(u + eps) / np.sqrt(v + eps) * grad
        u *= rho
        u += (1 - rho) * delta * delta
        param -= group["lr"] * delta
