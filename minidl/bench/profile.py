"""python -m minidl.bench --profile ROW: where the time of a benchmark workload goes.

For each row of the side-by-side table (minidl/bench/vs_torch.py) whose name contains ROW,
this runs minidl's step (PyTorch is not needed) for about ``seconds`` and prints two views:

1. the per-op timer (minidl/autograd/profiler.py): each op's forward and backward, and the
   time outside the ops;
2. Python's cProfile, the functions with the most time of their own: inside an op this
   shows its kernels (im2col, col2im, a gate kernel) beside the matrix products (counted
   in the Python function that calls ``np.matmul``, since a NumPy call has no frame).

Both are measurements of this machine at this moment: run them beside ``--vs-torch``.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import time

import minidl
from minidl.autograd import profiler
from minidl.bench.vs_torch import WORKLOADS


def steps_for(step, seconds: float) -> int:
    """How many calls of ``step`` take about ``seconds`` (at least 3), after a warm-up call."""
    step()
    start = time.perf_counter()
    step()
    once = max(time.perf_counter() - start, 1e-6)
    return max(3, int(seconds / once))


def profile_step(step, calls: int, functions: int = 12) -> str:
    """The op table and cProfile's top ``functions`` for ``calls`` calls of ``step``."""
    with profiler.profile() as prof:
        for _ in range(calls):
            step()
    ops = prof.key_averages().table(row_limit=10)
    python = cProfile.Profile()
    python.enable()
    for _ in range(calls):
        step()
    python.disable()
    out = io.StringIO()
    pstats.Stats(python, stream=out).sort_stats("tottime").print_stats(functions)
    package = os.path.dirname(os.path.abspath(minidl.__file__))  # shown as minidl/...
    text = out.getvalue().replace(package + os.sep, "minidl" + os.sep)
    lines = [line for line in text.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return (f"per op ({calls} steps, {1e3 * prof.wall_seconds / calls:.3f} ms per step):\n"
            f"{ops}\n\ncProfile, time in each function itself ({calls} more steps; "
            "the profiler slows Python down):\n" + "\n".join(lines[start:]))


def run(only: str, seconds: float = 2.0) -> None:
    """Print the profiles of every workload whose name contains ``only``."""
    chosen = [w for w in WORKLOADS if only.lower() in w.name.lower()]
    if not chosen:
        names = "\n  ".join(w.name for w in WORKLOADS)
        raise SystemExit(f"--profile: no workload name contains {only!r}; the rows are:\n  {names}")
    for workload in chosen:
        step, _ = workload.build(None)
        print(f"== {workload.name}")
        print(profile_step(step, steps_for(step, seconds / 2)))
        print()
