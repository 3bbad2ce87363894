"""How to change the learning rate when you change the minibatch size.

Linear scaling rule (Goyal et al., 2017, "Accurate, Large Minibatch SGD:
Training ImageNet in 1 Hour", section 2.1): "When the minibatch size is
multiplied by k, multiply the learning rate by k." Their reference is lr = 0.1
for a batch of 256, i.e. lr = 0.1 * batch / 256. The argument: k steps of SGD
with batch n move the weights by about lr * (sum of the k*n gradients) / n,
while one step with batch k*n moves them by lr_new * (the same sum) / (k*n),
so lr_new = k * lr makes the two agree (as long as the gradient changes little
over the k steps, which fails early in training: hence warmup, see
``lr_scheduler.WarmupLR``).

Square-root scaling rule (Krizhevsky, 2014, "One weird trick for
parallelizing convolutional neural networks"; Hoffer et al., 2017): multiply
the lr by sqrt(k), which keeps the variance of the gradient step the same
(the variance of a mean over k*n samples is 1/k that of n samples). It is
often the better rule for Adam-like optimizers.
"""

from __future__ import annotations

import math
import numbers


def _check(rule: str, base_lr, base_batch, batch) -> None:
    if isinstance(base_lr, bool) or not isinstance(base_lr, numbers.Real) or base_lr < 0:
        raise ValueError(f"{rule}: base_lr must be a number >= 0, got {base_lr!r}")
    for name, value in (("base_batch", base_batch), ("batch", batch)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
            raise ValueError(f"{rule}: {name} must be a number > 0, got {value!r}")


def linear_scaling_rule(base_lr: float, base_batch: int, batch: int) -> float:
    """lr = base_lr * batch / base_batch   (e.g. base_lr = 0.1 at base_batch = 256)."""
    _check("linear_scaling_rule", base_lr, base_batch, batch)
    return base_lr * batch / base_batch


def sqrt_scaling_rule(base_lr: float, base_batch: int, batch: int) -> float:
    """lr = base_lr * sqrt(batch / base_batch)."""
    _check("sqrt_scaling_rule", base_lr, base_batch, batch)
    return base_lr * math.sqrt(batch / base_batch)
