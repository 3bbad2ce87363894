"""A per-op timer: how long each op's forward and backward took, summed over a block of code.

    with minidl.autograd.profiler.profile() as prof:
        loss = model(x).sum()
        loss.backward()
    print(prof.key_averages().table(row_limit=10))

PyTorch's ``torch.autograd.profiler.profile`` does the same job with the same calls. Every
primitive (a ``Function``: minidl/autograd/function.py) is timed around its ``forward`` in
``Function.apply`` and around its ``backward`` in the engine (minidl/autograd/engine.py),
through ``run_op`` of minidl/autograd/mode.py, and the times are added up per op and
phase (``Conv2dFunction.backward``). A primitive's forward and backward work on arrays and
call no other op, so each row is the op's own time ("self" time in PyTorch's tables).
Composites (a softmax made of exp, sum and divide; an RNN cell) are not ops: their
primitives appear instead. The last row, "outside the ops", is the rest of the block's
wall-clock time: Python between the ops, the engine's bookkeeping, the optimizer's
array updates, data loading.

For what happens inside one op (im2col against the matrix product of a convolution,
say), use Python's cProfile: ``python -m minidl.bench --profile "conv2d C"`` prints
both for a benchmark workload.

While a profile is active every op pays for two clock readings (about a microsecond);
outside one the cost is a single flag test per op.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from minidl.autograd import mode


@dataclass
class OpTime:
    """The total time of one op in one phase: ``name`` e.g. ``Conv2dFunction.backward``."""

    name: str
    calls: int
    seconds: float

    @property
    def average(self) -> float:
        return self.seconds / self.calls


class EventList(list):
    """The OpTimes of a profile, largest total first; ``table()`` formats them."""

    def __init__(self, rows, wall_seconds: float):
        super().__init__(rows)
        self.wall_seconds = wall_seconds

    @property
    def outside_ops(self) -> float:
        """Wall-clock time of the profiled block not spent inside an op's forward or backward."""
        return max(0.0, self.wall_seconds - sum(row.seconds for row in self))

    def table(self, sort_by: str = "self_cpu_time_total", row_limit: int | None = None) -> str:
        """The rows as a text table: op, calls, total ms, % of the block's wall time, average.

        ``sort_by``: "self_cpu_time_total" / "cpu_time_total" (total time, PyTorch's names;
        the default), "count" (calls) or "name". ``row_limit``: show only the first rows
        (the rest are summed into one line).
        """
        keys = {"self_cpu_time_total": lambda r: -r.seconds, "cpu_time_total": lambda r: -r.seconds,
                "count": lambda r: -r.calls, "name": lambda r: r.name}
        if sort_by not in keys:
            raise ValueError(f"table: sort_by must be one of {sorted(keys)}, got {sort_by!r}")
        rows = sorted(self, key=keys[sort_by])
        shown, hidden = (rows, []) if row_limit is None else (rows[:row_limit], rows[row_limit:])
        wall = self.wall_seconds or 1e-12
        outside = "outside the ops (Python, engine, ...)"
        width = max([len(r.name) for r in shown] + [len(outside)])

        def line(name, calls, seconds, average=""):
            return (f"{name:<{width}}  {calls:>7}  {seconds * 1e3:>9.3f}  "
                    f"{100 * seconds / wall:>6.1f}%  {average:>9}").rstrip()

        lines = [f"{'op':<{width}}  {'calls':>7}  {'total ms':>9}  {'% wall':>7}  {'avg us':>9}"]
        lines += [line(r.name, r.calls, r.seconds, f"{r.average * 1e6:.1f}") for r in shown]
        if hidden:
            lines.append(line(f"{len(hidden)} more ops", sum(r.calls for r in hidden),
                              sum(r.seconds for r in hidden)))
        lines.append(line(outside, "", self.outside_ops))
        lines.append(line("wall clock of the block", "", self.wall_seconds))
        return "\n".join(lines)


class profile:
    """Context manager timing every op's forward and backward inside its block (module doc).

    ``enabled=False`` makes it do nothing (PyTorch's argument), so a script can keep the
    ``with`` and switch profiling off. Profiles do not nest: entering one while another is
    active raises RuntimeError.
    """

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.totals: dict[str, list] = {}  # "Op.phase" -> [calls, seconds]
        self.wall_seconds = 0.0
        self._start = None

    def __enter__(self):
        if not self.enabled:
            return self
        if mode.profiler is not None:
            raise RuntimeError("profile: another profile is already active; profiles do not nest")
        mode.set_profiler(self)
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if self.enabled and self._start is not None:
            self.wall_seconds += time.perf_counter() - self._start
            self._start = None
            mode.set_profiler(None)
        return False

    def record(self, name: str, phase: str, seconds: float) -> None:
        """Called by run_op (minidl/autograd/mode.py) after each timed forward or backward."""
        entry = self.totals.setdefault(f"{name}.{phase}", [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def key_averages(self) -> EventList:
        """One OpTime per op and phase, largest total first."""
        rows = [OpTime(name, calls, seconds) for name, (calls, seconds) in self.totals.items()]
        return EventList(sorted(rows, key=lambda r: -r.seconds), self.wall_seconds)

    def table(self, **kwargs) -> str:
        """``key_averages().table(**kwargs)``."""
        return self.key_averages().table(**kwargs)
