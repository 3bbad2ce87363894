"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay.

For each parameter p with gradient g (exactly PyTorch's ``torch.optim.SGD``)::

    d = g + weight_decay * p                       # L2 penalty folded into the gradient
    if momentum != 0:
        b = d                                       # first step: the buffer starts at d
        b = momentum * b + (1 - dampening) * d      # later steps
        d = d + momentum * b   if nesterov else  b
    p = p - lr * d

Momentum: Polyak (1964), "Some methods of speeding up the convergence of
iteration methods". The Nesterov form is the one of Sutskever et al. (2013),
"On the importance of initialization and momentum in deep learning", written
so that only the gradient at the current parameters is needed.
"""

from __future__ import annotations

import numpy as np

from minidl.optim.optimizer import Optimizer, check_number


class SGD(Optimizer):
    """SGD(params, lr=1e-3, momentum=0, dampening=0, weight_decay=0, nesterov=False).

    State per parameter: ``momentum_buffer`` (only when momentum != 0).
    """

    def __init__(self, params, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening,
                        weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, defaults)

    def check_hyperparameters(self, group: dict) -> None:
        super().check_hyperparameters(group)
        check_number(self.name, "momentum", group["momentum"], low=0.0)
        check_number(self.name, "dampening", group["dampening"])
        check_number(self.name, "weight_decay", group["weight_decay"], low=0.0)
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"{self.name}: nesterov=True needs momentum > 0 and dampening = 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def update(self, param: np.ndarray, grad: np.ndarray, state: dict, group: dict) -> None:
        d = grad
        if group["weight_decay"] != 0:
            d = d + group["weight_decay"] * param
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = np.array(d, dtype=param.dtype, copy=True)
                state["momentum_buffer"] = buf
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * d
            d = d + momentum * buf if group["nesterov"] else buf
        param -= group["lr"] * d
