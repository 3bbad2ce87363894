"""One training epoch of lesson 02's two networks, in minidl and in PyTorch.

The networks of lessons/02_lenet.py rebuilt in both frameworks with the same
initial weights, the same data (the 1,397 training digits at 16x16, in [-1, 1])
and the same loop, each with its own DataLoader (shuffled, as in the lesson)::

    for x, y in loader:
        optimizer.zero_grad(); loss = loss_fn(model(x), y); loss.backward()
        optimizer.step(); scheduler.step(); total += loss.item()

1. LeNet 1989 (LeCun et al. 1989): batch 1 (online SGD), two stride-2 convolutions
   with per-unit biases and a fixed connection mask, scaled tanh, squared error
   to +-1 targets. At batch 1 the per-op overhead of each framework dominates.
2. The modern variant: batch 32, conv / batch norm / ReLU / max-pool twice, two
   linear layers, cross-entropy, SGD with momentum and weight decay, cosine schedule.

Epochs are timed in alternation (minidl, PyTorch, ...); the median of each is
printed with their ratio (goal: <= 1.5) and both mean losses, which should agree
closely since both start from the same weights (the batch order differs).
"""

from __future__ import annotations

import math
import statistics
import time

import numpy as np

EPOCH_GOAL = 1.5


def connection_mask() -> np.ndarray:
    """Lesson 02's H1 -> H2 table as a [12, 12, 1, 1] 0/1 mask (H2 maps 0-3 read H1 groups
    A and B, maps 4-7 read B and C, maps 8-11 read A and C; groups of four maps)."""
    reads = [(0, 1), (1, 2), (0, 2)]
    mask = np.zeros((12, 12, 1, 1), np.float32)
    for o in range(12):
        for group in reads[o // 4]:
            mask[o, 4 * group: 4 * group + 4] = 1.0
    return mask


def lenet1989_arrays(seed: int = 0) -> dict:
    """Initial weights of the 1989 network: uniform in +-2.4 / sqrt(fan-in), zero biases."""
    rng = np.random.default_rng(seed)

    def uniform(shape, fan_in):
        bound = 2.4 / math.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {"h1_weight": uniform((12, 1, 5, 5), 25), "h1_bias": np.zeros((12, 8, 8), np.float32),
            "h2_weight": uniform((12, 12, 5, 5), 200) * connection_mask(),
            "h2_bias": np.zeros((12, 4, 4), np.float32),
            "h3_weight": uniform((30, 192), 192), "h3_bias": np.zeros(30, np.float32),
            "out_weight": uniform((10, 30), 30), "out_bias": np.zeros(10, np.float32)}


def lenet1989_forward(F, params, mask, x):
    """The 1989 forward pass, written once for both frameworks (F: their functional module)."""
    def scaled_tanh(a):
        return 1.7159 * (a * (2.0 / 3.0)).tanh()

    x = F.pad(x, (2, 2, 2, 2), value=-1.0)
    h1 = scaled_tanh(F.conv2d(x, params["h1_weight"], stride=2) + params["h1_bias"])
    h2 = scaled_tanh(F.conv2d(h1, params["h2_weight"] * mask, stride=2, padding=2)
                     + params["h2_bias"])
    h3 = scaled_tanh(F.linear(h2.flatten(1), params["h3_weight"], params["h3_bias"]))
    return scaled_tanh(F.linear(h3, params["out_weight"], params["out_bias"]))


def modern_net(m):
    """Lesson 02's modern LeNet in framework ``m`` (minidl.nn or torch.nn)."""
    return m.Sequential(
        m.Conv2d(1, 12, 5, padding=2, bias=False), m.BatchNorm2d(12), m.ReLU(), m.MaxPool2d(2),
        m.Conv2d(12, 12, 5, padding=2, bias=False), m.BatchNorm2d(12), m.ReLU(), m.MaxPool2d(2),
        m.Flatten(), m.Linear(12 * 4 * 4, 30), m.ReLU(), m.Linear(30, 10))


def _epoch(loader, forward, loss_fn, optimizer, scheduler=None) -> float:
    """The loop of the module docstring; returns the mean loss."""
    total, count = 0.0, 0
    for x, y in loader:
        optimizer.zero_grad()
        loss = loss_fn(forward(x), y)
        loss.backward()
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        total += loss.item() * len(x)
        count += len(x)
    return total / count


def _targets(xp_take):
    """+1 at the label, -1 elsewhere: the 1989 network's squared-error targets."""
    table = np.full((10, 10), -1.0, np.float32)
    np.fill_diagonal(table, 1.0)
    return lambda y: xp_take(table, y)


def epochs_1989(torch, images, labels):
    """(minidl epoch, PyTorch epoch): one online-SGD pass of the 1989 network each
    (torch None: the minidl side only, and None)."""
    import minidl.nn.functional as F
    from minidl import Tensor
    from minidl.data import DataLoader, TensorDataset
    from minidl.nn import Parameter
    from minidl.optim import SGD

    arrays = lenet1989_arrays()
    ours = {k: Parameter(v.copy()) for k, v in arrays.items()}
    mask_m = Tensor(connection_mask())
    target_m = _targets(lambda table, y: Tensor(table[y.data]))
    loader_m = DataLoader(TensorDataset(images, labels), batch_size=1, shuffle=True)
    opt_m = SGD(list(ours.values()), lr=0.03)

    def minidl_epoch():
        return _epoch(loader_m, lambda x: lenet1989_forward(F, ours, mask_m, x),
                      lambda out, y: F.mse_loss(out, target_m(y)), opt_m)

    if torch is None:
        return minidl_epoch, None
    theirs = {k: torch.tensor(v, requires_grad=True) for k, v in arrays.items()}
    mask_t = torch.tensor(connection_mask())
    target_t = _targets(lambda table, y: torch.tensor(table)[y])
    data_t = torch.utils.data.TensorDataset(torch.tensor(images), torch.tensor(labels))
    loader_t = torch.utils.data.DataLoader(data_t, batch_size=1, shuffle=True)
    opt_t = torch.optim.SGD(list(theirs.values()), lr=0.03)

    def torch_epoch():
        tf = torch.nn.functional
        return _epoch(loader_t, lambda x: lenet1989_forward(tf, theirs, mask_t, x),
                      lambda out, y: tf.mse_loss(out, target_t(y)), opt_t)

    return minidl_epoch, torch_epoch


def epochs_modern(torch, images, labels):
    """(minidl epoch, PyTorch epoch): one pass of the modern network, batch 32
    (torch None: the minidl side only, and None)."""
    import minidl.nn as nn
    import minidl.nn.functional as F
    from minidl.bench.vs_torch import _copy_parameters
    from minidl.data import DataLoader, TensorDataset
    from minidl.optim import SGD
    from minidl.optim.lr_scheduler import CosineAnnealingLR

    ours = modern_net(nn)
    loader_m = DataLoader(TensorDataset(images, labels), batch_size=32, shuffle=True)
    steps = 30 * len(loader_m)  # the lesson's 30 epochs
    opt_m = SGD(ours.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched_m = CosineAnnealingLR(opt_m, T_max=steps)
    ours.train()

    def minidl_epoch():
        return _epoch(loader_m, ours, F.cross_entropy, opt_m, sched_m)

    if torch is None:
        return minidl_epoch, None
    theirs = modern_net(torch.nn)
    _copy_parameters(ours, theirs, torch)
    data_t = torch.utils.data.TensorDataset(torch.tensor(images), torch.tensor(labels))
    loader_t = torch.utils.data.DataLoader(data_t, batch_size=32, shuffle=True)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched_t = torch.optim.lr_scheduler.CosineAnnealingLR(opt_t, T_max=steps)
    theirs.train()

    def torch_epoch():
        return _epoch(loader_t, theirs, torch.nn.functional.cross_entropy, opt_t, sched_t)

    return minidl_epoch, torch_epoch


def timed_epochs(minidl_epoch, torch_epoch, repeat: int):
    """Median seconds and the mean loss of each side's epochs, run in alternation."""
    times, losses = ([], []), ([], [])
    for r in range(repeat):
        order = (0, 1) if r % 2 == 0 else (1, 0)
        for k in order:
            start = time.perf_counter()
            losses[k].append((minidl_epoch, torch_epoch)[k]())
            times[k].append(time.perf_counter() - start)
    return [statistics.median(t) for t in times], [statistics.mean(v) for v in losses]


def run(torch, quick: bool = False) -> list:
    """Print the comparison; return [(network, minidl seconds, PyTorch seconds)]."""
    from minidl.data import digits

    images, labels = digits("train", size=16)
    images = 2 * images - 1
    if quick:
        images, labels = images[:256], labels[:256]
    repeat = 1 if quick else 5
    torch.manual_seed(0)
    print(f"one training epoch of lesson 02 ({len(images)} digits at 16x16), median of "
          f"{repeat} interleaved epochs")
    print(f"  {'network':<44}{'minidl s':>10}{'torch s':>10}{'ratio':>8}{'goal':>8}"
          f"{'loss minidl / torch':>24}")
    rows = []
    for name, make in (("LeNet 1989, online SGD (batch 1)", epochs_1989),
                       ("modern LeNet, batch 32", epochs_modern)):
        (ours, theirs), (loss_m, loss_t) = timed_epochs(*make(torch, images, labels), repeat)
        rows.append((name, ours, theirs))
        print(f"  {name:<44}{ours:>10.2f}{theirs:>10.2f}{ours / theirs:>8.2f}"
              f"{'<= ' + str(EPOCH_GOAL):>8}{f'{loss_m:.4f} / {loss_t:.4f}':>24}")
    return rows
