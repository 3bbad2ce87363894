"""Benchmarks of the autograd engine itself (issue: foundation).

1. Per-node cost: a chain of n additions ``c = c + b`` on 1-element tensors
   that require grad, forward and backward, divided by n. This is the fixed
   overhead every op pays (Python calls, a Function object, a graph edge);
   PyTorch's eager mode pays about 1.5 us per op on this kind of machine.
2. One training step (forward, backward, SGD update) of a 3-layer MLP on a
   batch of 64 digits.
3. One AdamW update of a large float32 parameter (a detector's fully connected
   head has millions of weights): Adam's one-pass kernel against its NumPy twin,
   the dozen whole-array passes it replaces (minidl/kernels/optim.py).
"""

from __future__ import annotations

import numpy as np

from minidl.bench._timing import best_time, row


def node_cost(n: int = 2000) -> float:
    """Seconds per node of forward + backward through a chain of n additions."""
    from minidl import Tensor

    a = Tensor(np.ones(1, dtype=np.float32), requires_grad=True)
    b = Tensor(np.ones(1, dtype=np.float32), requires_grad=True)

    def chain():
        c = a
        for _ in range(n):
            c = c + b
        c.backward()

    return best_time(chain, repeat=7) / n


def mlp_step(batch: int = 64) -> float:
    """Seconds per SGD step of a 64-128-64-10 ReLU MLP on a batch of digits."""
    import minidl.nn as nn
    import minidl.nn.functional as F
    from minidl import Tensor, manual_seed
    from minidl.data import digits
    from minidl.optim import SGD

    manual_seed(0)
    images, labels = digits("train")
    x = Tensor(images[:batch].reshape(batch, -1))
    y = Tensor(labels[:batch])
    model = nn.Sequential(nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(),
                          nn.Linear(64, 10))
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step():
        optimizer.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimizer.step()

    return best_time(step, repeat=20, number=5)


def adam_step(size: int = 1 << 22, repeat: int = 10) -> tuple[float, float]:
    """(kernel seconds, NumPy-twin seconds) of one AdamW update of a ``size``-element
    float32 parameter, through ``AdamW.step`` with and without the kernel."""
    from minidl import Tensor
    from minidl.optim import AdamW
    from minidl.optim import adam as adam_module

    rng = np.random.default_rng(0)
    p = Tensor(rng.standard_normal(size).astype(np.float32), requires_grad=True)
    p.grad = rng.standard_normal(size).astype(np.float32)
    optimizer = AdamW([p], lr=1e-3, weight_decay=1e-4)
    kernel = best_time(optimizer.step, repeat=repeat)
    fusable, adam_module._fusable = adam_module._fusable, lambda arrays: False
    try:
        numpy = best_time(optimizer.step, repeat=repeat)
    finally:
        adam_module._fusable = fusable
    return kernel, numpy


def run(quick: bool = False) -> None:
    print("autograd")
    row("", "measured", "goal")
    row("per-node cost of c = a + b, fwd + bwd", f"{node_cost() * 1e6:.2f} us", "<= 2 us")
    row("3-layer MLP training step, batch 64", f"{mlp_step() * 1e3:.3f} ms", "")
    size = 1 << 20 if quick else 1 << 22
    kernel, numpy = adam_step(size, repeat=3 if quick else 10)
    row(f"AdamW step on {size >> 20}M float32 weights", f"{kernel * 1e3:.1f} ms", "")
    row("  its speed-up over the NumPy passes", f"{numpy / kernel:.1f}x", ">= 2x")
