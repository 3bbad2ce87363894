"""Adagrad: each weight's step shrinks with the sum of its squared gradients so far.

Duchi, Hazan & Singer (2011), "Adaptive Subgradient Methods for Online
Learning and Stochastic Optimization". As in PyTorch's ``torch.optim.Adagrad``,
for step t = 1, 2, ...::

    g = grad + weight_decay * p
    lr_t = lr / (1 + (t - 1) * lr_decay)
    s = s + g**2                              # s starts at initial_accumulator_value
    p = p - lr_t * g / (sqrt(s) + eps)

Weights with large or frequent gradients take small steps and rare ones large
steps (the paper's motivation: rare but informative features). Since s only
grows, the steps shrink for ever; RMSprop and Adadelta replace the sum by a
running mean to fix that.
"""

from __future__ import annotations

import numpy as np

from minidl.optim.optimizer import Optimizer, check_number


class Adagrad(Optimizer):
    """Adagrad(params, lr=1e-2, lr_decay=0, weight_decay=0, initial_accumulator_value=0,
    eps=1e-10).

    State per parameter: ``step`` (int) and ``sum`` (s).
    """

    def __init__(self, params, lr: float = 1e-2, lr_decay: float = 0.0,
                 weight_decay: float = 0.0, initial_accumulator_value: float = 0.0,
                 eps: float = 1e-10):
        defaults = dict(lr=lr, lr_decay=lr_decay, weight_decay=weight_decay,
                        initial_accumulator_value=initial_accumulator_value, eps=eps)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        check_number(self.name, "lr_decay", group["lr_decay"], low=0.0)
        check_number(self.name, "weight_decay", group["weight_decay"], low=0.0)
        check_number(self.name, "initial_accumulator_value",
                     group["initial_accumulator_value"], low=0.0)
        check_number(self.name, "eps", group["eps"], low=0.0)

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        if not state:
            state["step"] = 0
            state["sum"] = np.full_like(param, group["initial_accumulator_value"])
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param
        lr = group["lr"] / (1 + (state["step"] - 1) * group["lr_decay"])
        s = state["sum"]
        s += grad * grad
        param -= lr * grad / (np.sqrt(s) + group["eps"])
