"""python -m minidl.bench --profile ROW | SCRIPT.py: where the time of a workload or a lesson goes.

For each row of the side-by-side table (minidl/bench/vs_torch.py) whose name contains ROW,
this runs minidl's step (PyTorch is not needed) for about ``seconds`` and prints two views:

1. the per-op timer (minidl/autograd/profiler.py): each op's forward and backward, and the
   time outside the ops;
2. Python's cProfile, the functions with the most time of their own: inside an op this
   shows its kernels (im2col, col2im, a gate kernel) beside the matrix products (counted
   in the Python function that calls ``np.matmul``, since a NumPy call has no frame).

Both are measurements of this machine at this moment: run them beside ``--vs-torch``.

``--profile lessons/08_faster_rcnn.py`` (any Python file) runs that script once, as
``python SCRIPT.py`` would (``--quick`` is passed on to it), with both views on at once,
and prints them for the whole run: which ops a lesson's training and evaluation spend
their time in, and how much goes to Python outside the ops (data, matching, metrics).
cProfile's own cost per Python call inflates the Python-heavy parts a little; the
share of the big ops is what to read.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import runpy
import sys
import time
from pathlib import Path

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


def _top_functions(python: cProfile.Profile, functions: int) -> str:
    """cProfile's ``functions`` busiest functions (time of their own), package files named
    from the package root (minidl/ops/conv.py)."""
    out = io.StringIO()
    pstats.Stats(python, stream=out).sort_stats("tottime").print_stats(functions)
    package = os.path.dirname(os.path.abspath(minidl.__file__))
    text = out.getvalue().replace(package + os.sep, "minidl" + os.sep)
    lines = [line for line in text.splitlines() if line.strip()]
    start = next(i for i, line in enumerate(lines) if line.lstrip().startswith("ncalls"))
    return "\n".join(lines[start:])


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
    return (f"per op ({calls} steps, {1e3 * prof.wall_seconds / calls:.3f} ms per step):\n"
            f"{ops}\n\ncProfile, time in each function itself ({calls} more steps; "
            "the profiler slows Python down):\n" + _top_functions(python, functions))


def profile_script(path, quick: bool = False, ops: int = 15, functions: int = 20):
    """Run the Python file ``path`` once as the main program (with ``--quick`` if asked),
    under the per-op timer and cProfile together. Returns (their tables for the whole run,
    the exception the script stopped with or None): a run that fails at its last check
    has still spent its time somewhere."""
    path = Path(path)
    saved_argv = sys.argv
    sys.argv = [str(path)] + (["--quick"] if quick else [])
    python = cProfile.Profile()
    error = None
    try:
        with profiler.profile() as prof:
            python.enable()
            try:
                runpy.run_path(str(path), run_name="__main__")
            finally:
                python.disable()
    except Exception as exc:  # reported after the tables, then raised again by run()
        error = exc
    finally:
        sys.argv = saved_argv
    report = (f"per op (the whole run, {prof.wall_seconds:.1f} s of wall clock):\n"
              f"{prof.key_averages().table(row_limit=ops)}\n\n"
              "cProfile, time in each function itself (same run):\n"
              + _top_functions(python, functions))
    if error is not None:
        report += f"\n\nthe script stopped early: {type(error).__name__}: {error}"
    return report, error


def run(only: str, seconds: float = 2.0, quick: bool = False) -> None:
    """Print the profiles of every workload whose name contains ``only``, or, when ``only``
    is a Python file, of one run of that script (``quick``: passed on as ``--quick``)."""
    if only.endswith(".py"):
        if not Path(only).is_file():
            raise SystemExit(f"--profile: no such script {only!r}")
        print(f"== {only}{' --quick' if quick else ''}")
        report, error = profile_script(only, quick=quick)
        print(report)
        if error is not None:
            raise error
        return
    chosen = [w for w in WORKLOADS if only.lower() in w.name.lower()]
    if not chosen:
        names = "\n  ".join(w.name for w in WORKLOADS)
        raise SystemExit(f"--profile: no workload name contains {only!r}; the rows are:\n  {names}")
    for workload in chosen:
        step, _ = workload.build(None)
        print(f"== {workload.name}")
        print(profile_step(step, steps_for(step, seconds / 2)))
        print()
