"""Benchmarks of the autograd engine itself (issue: foundation).

1. Per-node cost: a chain of n additions ``c = c + b`` on 1-element tensors
   that require grad, forward and backward, divided by n. This is the fixed
   overhead every op pays (Python calls, a Function object, a graph edge);
   PyTorch's eager mode pays about 1.5 us per op on this kind of machine.
2. One training step (forward, backward, SGD update) of a 3-layer MLP on a
   batch of 64 digits.
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


def run(quick: bool = False) -> None:
    print("autograd")
    row("", "measured", "goal")
    row("per-node cost of c = a + b, fwd + bwd", f"{node_cost() * 1e6:.2f} us", "<= 2 us")
    row("3-layer MLP training step, batch 64", f"{mlp_step() * 1e3:.3f} ms", "")
