"""Start-up costs (issue: conv stack): ``import minidl`` and the first training step.

numba compiles a kernel on its first call and caches the machine code on disk;
with a warm cache the first call only loads it. So the first training step of
lesson 02's modern LeNet (conv, batch norm, max-pool, linear) should cost
little more than the second. Each figure is measured in a fresh interpreter.
"""

from __future__ import annotations

import subprocess
import sys

from minidl.bench._timing import row

IMPORT_TIME = """
import time
start = time.perf_counter()
import minidl, minidl.nn, minidl.optim, minidl.data
print(time.perf_counter() - start)
"""

FIRST_STEPS = """
import time
import numpy as np
import minidl, minidl.nn as nn, minidl.nn.functional as F
from minidl.optim import SGD
minidl.manual_seed(0)
model = nn.Sequential(                      # lesson 02's modern LeNet on 16x16 digits
    nn.Conv2d(1, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
    nn.Conv2d(12, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(), nn.MaxPool2d(2),
    nn.Flatten(), nn.Linear(12 * 4 * 4, 30), nn.ReLU(), nn.Linear(30, 10))
optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
x = minidl.randn(32, 1, 16, 16)
y = minidl.tensor(np.arange(32) % 10)
times = []
for _ in range(2):
    start = time.perf_counter()
    optimizer.zero_grad()
    F.cross_entropy(model(x), y).backward()
    optimizer.step()
    times.append(time.perf_counter() - start)
print(times[0], times[1])
"""


def _run(code: str) -> list[float]:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return [float(v) for v in out.stdout.split()]


def import_seconds(repeat: int = 5) -> float:
    """Best time of ``import minidl`` (with nn, optim, data) in a fresh interpreter."""
    return min(_run(IMPORT_TIME)[0] for _ in range(repeat))


def first_and_second_step(repeat: int = 3) -> tuple[float, float]:
    """(first, second) training-step seconds of lesson 02's modern LeNet, warm numba cache."""
    _run(FIRST_STEPS)  # warms the on-disk cache if this is the first run ever
    runs = [_run(FIRST_STEPS) for _ in range(repeat)]
    return min(r[0] for r in runs), min(r[1] for r in runs)


def run(quick: bool = False) -> None:
    print("startup (each in a fresh interpreter)")
    row("", "measured", "goal")
    row("import minidl (+ nn, optim, data)", f"{import_seconds() * 1e3:.0f} ms", "<= 400 ms")
    first, second = first_and_second_step()
    row("LeNet first training step, warm numba cache", f"{first * 1e3:.0f} ms", "")
    row("LeNet second training step", f"{second * 1e3:.1f} ms", "")
    row("first minus second", f"{(first - second) * 1e3:.0f} ms", "<= 500 ms")
