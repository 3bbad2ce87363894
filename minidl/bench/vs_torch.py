"""python -m minidl.bench --vs-torch: minidl and PyTorch side by side, in one process.

Each workload is built twice from the same NumPy arrays, once in minidl and once
in PyTorch (CPU, float32), and one step of each (forward + backward; a training
step where it says so) is timed in alternation: minidl, PyTorch, minidl, ... so
that a busy machine slows both alike. A row prints the median of each and their
ratio; absolute times on a shared machine drift by 2x from day to day, ratios
measured in one run much less. Both sides use 2 threads (OpenBLAS's and numba's
for minidl, PyTorch's intra-op pool).

The table ends with the geometric mean of the ratios, the peak memory of one
conv C forward + backward (minidl/bench/memory.py), and one training epoch of
lesson 02's two networks (minidl/bench/lesson02.py).

Both run in one process, so both get the memory allocator settings that ``import
minidl`` makes (minidl/utils/allocator.py: freed memory is kept for the next step);
PyTorch's CPU tensors come from the same glibc malloc.

PyTorch is never a dependency of minidl: install it in a scratch environment to
run this mode (``pip install torch``). It is imported only here.
"""

from __future__ import annotations

import ctypes
import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from minidl.utils.jit import load_numba

GOAL = 1.3  # every row: minidl / PyTorch <= 1.3
GEOMEAN_GOAL = 1.0


class Workload(NamedTuple):
    """One row: ``build(torch)`` returns the (minidl step, PyTorch step) pair; each is a
    zero-argument function that runs one step of the workload. ``build(None)`` builds the
    minidl side only (the tests run it without PyTorch)."""

    name: str
    build: Callable


def blas_threads(threads: int | None = None) -> int | None:
    """Set NumPy's OpenBLAS to ``threads`` threads (if given) and return how many it uses,
    or None where that cannot be found (another BLAS, or no /proc). OpenBLAS reads its
    environment only when it loads; its ``*_set_num_threads`` function changes it after."""
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
    except OSError:
        return None
    for path in sorted(paths):
        lib = ctypes.CDLL(path)
        for prefix in ("scipy_openblas", "openblas"):
            for suffix in ("64_", ""):
                setter = getattr(lib, f"{prefix}_set_num_threads{suffix}", None)
                getter = getattr(lib, f"{prefix}_get_num_threads{suffix}", None)
                if setter is not None and getter is not None:
                    if threads is not None:
                        setter(threads)
                    return getter()
    return None


def import_torch(threads: int = 2):
    """PyTorch, set to ``threads`` intra-op threads, or a SystemExit that says how to get it."""
    try:
        import torch
    except ImportError:
        raise SystemExit("python -m minidl.bench --vs-torch needs PyTorch, which minidl never "
                         "depends on: install it in a scratch environment "
                         "(pip install torch) to compare") from None
    torch.set_num_threads(threads)
    return torch


def set_threads(threads: int):
    """PyTorch (imported, see ``import_torch``), OpenBLAS and numba all set to ``threads``
    threads; returns (torch, the number of BLAS threads or None, numba)."""
    torch = import_torch(threads)
    blas = blas_threads(threads)
    numba = load_numba()
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    return torch, blas, numba


# ---- timing -----------------------------------------------------------------------------
def calls_per_sample(step, target_seconds: float) -> int:
    """How many calls of ``step`` make one timed sample of about ``target_seconds``."""
    start = time.perf_counter()
    step()
    once = max(time.perf_counter() - start, 1e-7)
    return max(1, int(target_seconds / once))


def _sample(step, number: int, gap: float) -> float:
    time.sleep(gap)
    start = time.perf_counter()
    for _ in range(number):
        step()
    return (time.perf_counter() - start) / number


def interleaved_medians(steps, repeat: int, target_seconds: float = 0.05,
                        gap: float = 0.15) -> list[float]:
    """Median seconds per call of each function in ``steps``, timed in alternation.

    Each function is warmed up (numba compiles or loads its kernels, PyTorch sets up its
    pools), then ``repeat`` rounds time every function once, the order reversed every
    other round so that neither side always runs first. Each sample starts after a
    quiet ``gap``: OpenBLAS's worker threads spin for about 0.1 s after their last call
    before they sleep, and would otherwise take a core from the PyTorch sample that follows.
    """
    numbers = []
    for step in steps:
        step()  # warm-up
        numbers.append(calls_per_sample(step, target_seconds))
    samples = [[] for _ in steps]
    for r in range(repeat):
        order = range(len(steps)) if r % 2 == 0 else reversed(range(len(steps)))
        for k in order:
            samples[k].append(_sample(steps[k], numbers[k], gap))
    return [statistics.median(s) for s in samples]


def geometric_mean(values) -> float:
    values = list(values)
    return math.exp(sum(math.log(v) for v in values) / len(values))


# ---- building blocks shared by the two sides --------------------------------------------
def _randn(rng, *shape) -> np.ndarray:
    return rng.standard_normal(shape).astype(np.float32)


def _leaves(arrays, grad_flags, tensor):
    """``tensor(array, requires_grad=flag)`` of each array (minidl.Tensor or torch.tensor)."""
    return [tensor(a.copy(), requires_grad=g) for a, g in zip(arrays, grad_flags)]


def _forget_grads(tensors) -> None:
    for t in tensors:
        t.grad = None


def _op_pair(torch, forward_minidl, forward_torch, arrays, grad_flags, out_shape):
    """Steps that run y = forward(*leaves) and y.backward(g) in each framework."""
    from minidl import Tensor

    ours = _leaves(arrays, grad_flags, Tensor)
    g = _randn(np.random.default_rng(1), *out_shape)

    def minidl_step():
        _forget_grads(ours)
        forward_minidl(*ours).backward(g)

    if torch is None:
        return minidl_step, None
    theirs = _leaves(arrays, grad_flags, torch.tensor)
    g_torch = torch.tensor(g)

    def torch_step():
        _forget_grads(theirs)
        forward_torch(*theirs).backward(g_torch)

    return minidl_step, torch_step


def _module_pair(torch, make_minidl, make_torch, x_shape, x_grad=True):
    """Steps that run one module forward on x and backward from sum(output) (or output[0])."""
    from minidl import Tensor

    x = _randn(np.random.default_rng(0), *x_shape)
    ours = make_minidl()
    (xm,) = _leaves([x], [x_grad], Tensor)

    def first(output):
        return output[0] if isinstance(output, tuple) else output

    def minidl_step():
        ours.zero_grad()
        xm.grad = None
        first(ours(xm)).sum().backward()

    if torch is None:
        return minidl_step, None
    theirs = make_torch()
    _copy_parameters(ours, theirs, torch)
    (xt,) = _leaves([x], [x_grad], torch.tensor)

    def torch_step():
        theirs.zero_grad(set_to_none=True)
        xt.grad = None
        first(theirs(xt)).sum().backward()

    return minidl_step, torch_step


def _copy_parameters(ours, theirs, torch) -> None:
    """Give the PyTorch module minidl's initial parameters (same names, same layouts)."""
    state = {k: torch.tensor(v.data.copy()) for k, v in ours.named_parameters()}
    missing = theirs.load_state_dict(state, strict=False).missing_keys
    assert not [k for k in missing if "running" not in k and "num_batches" not in k], missing


# ---- the workloads ----------------------------------------------------------------------
def node_chain(torch, n: int = 2000):
    """Per-node cost: c = c + b repeated n times on 1-element tensors, then backward."""
    from minidl import Tensor

    def chain(tensor):
        first, second = _leaves([np.ones(1, np.float32)] * 2, [True, True], tensor)

        def step():
            first.grad = second.grad = None
            c = first
            for _ in range(n):
                c = c + second
            c.sum().backward()
        return step

    return chain(Tensor), (chain(torch.tensor) if torch is not None else None)


def _train_pair(torch, make_minidl, make_torch, x, y):
    """Training steps (zero_grad, cross-entropy, backward, SGD momentum 0.9) of one model."""
    import minidl.nn.functional as F
    from minidl import Tensor
    from minidl.optim import SGD

    ours = make_minidl()
    opt_m = SGD(ours.parameters(), lr=0.01, momentum=0.9)
    xm, ym = Tensor(x), Tensor(y)

    def minidl_step():
        opt_m.zero_grad()
        F.cross_entropy(ours(xm), ym).backward()
        opt_m.step()

    if torch is None:
        return minidl_step, None
    theirs = make_torch()
    _copy_parameters(ours, theirs, torch)
    opt_t = torch.optim.SGD(theirs.parameters(), lr=0.01, momentum=0.9)
    xt, yt = torch.tensor(x), torch.tensor(y)

    def torch_step():
        opt_t.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(theirs(xt), yt).backward()
        opt_t.step()

    return minidl_step, torch_step


def mlp_step(torch, batch: int = 64):
    """3-layer MLP (64-128-64-10, ReLU) training step on a batch of digits."""
    import minidl.nn as nn
    from minidl.data import digits

    images, labels = digits("train")
    x = images[:batch].reshape(batch, -1).astype(np.float32)
    y = labels[:batch].astype(np.int64)

    def layers(m):
        return m.Sequential(m.Linear(64, 128), m.ReLU(), m.Linear(128, 64), m.ReLU(),
                            m.Linear(64, 10))

    return _train_pair(torch, lambda: layers(nn), lambda: layers(torch.nn), x, y)


def lenet5_step(torch, batch: int = 64):
    """LeNet-5-style training step on 28x28: conv, relu, max-pool (twice), three linears."""
    import minidl.nn as nn

    rng = np.random.default_rng(0)
    x = _randn(rng, batch, 1, 28, 28)
    y = rng.integers(0, 10, batch).astype(np.int64)

    def layers(m):
        return m.Sequential(m.Conv2d(1, 6, 5, padding=2), m.ReLU(), m.MaxPool2d(2),
                            m.Conv2d(6, 16, 5), m.ReLU(), m.MaxPool2d(2), m.Flatten(),
                            m.Linear(400, 120), m.ReLU(), m.Linear(120, 84), m.ReLU(),
                            m.Linear(84, 10))

    return _train_pair(torch, lambda: layers(nn), lambda: layers(torch.nn), x, y)


def conv_step(torch, N, Cin, H, W, Cout, k, stride, pad, input_grad=True):
    """conv2d forward + backward (weight and bias gradients; the input's if ``input_grad``)."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    arrays = [_randn(rng, N, Cin, H, W), _randn(rng, Cout, Cin, k, k), _randn(rng, Cout)]
    out = (H + 2 * pad - k) // stride + 1
    return _op_pair(torch, lambda x, w, b: F.conv2d(x, w, b, stride, pad),
                    lambda x, w, b: torch.nn.functional.conv2d(x, w, b, stride, pad),
                    arrays, [input_grad, True, True], (N, Cout, out, out))


def conv_transpose_step(torch, N=16, Cin=64, H=16, Cout=32, k=4, stride=2, pad=1):
    """conv_transpose2d forward + backward, 16x64x16x16 -> 32 channels, 32x32."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    arrays = [_randn(rng, N, Cin, H, H), _randn(rng, Cin, Cout, k, k), _randn(rng, Cout)]
    out = (H - 1) * stride - 2 * pad + k
    return _op_pair(torch, lambda x, w, b: F.conv_transpose2d(x, w, b, stride, pad),
                    lambda x, w, b: torch.nn.functional.conv_transpose2d(x, w, b, stride, pad),
                    arrays, [True, True, True], (N, Cout, out, out))


def max_pool_step(torch):
    """max_pool2d 2x2 forward + backward on 64x16x28x28."""
    import minidl.nn.functional as F

    x = _randn(np.random.default_rng(0), 64, 16, 28, 28)
    return _op_pair(torch, lambda x: F.max_pool2d(x, 2),
                    lambda x: torch.nn.functional.max_pool2d(x, 2), [x], [True],
                    (64, 16, 14, 14))


def batch_norm_step(torch):
    """nn.BatchNorm2d(32) in training mode, forward + backward on 64x32x32x32."""
    import minidl.nn as nn

    return _module_pair(torch, lambda: nn.BatchNorm2d(32), lambda: torch.nn.BatchNorm2d(32),
                        (64, 32, 32, 32))


def group_norm_step(torch):
    """nn.GroupNorm(32, 64), forward + backward on 16x64x32x32."""
    import minidl.nn as nn

    return _module_pair(torch, lambda: nn.GroupNorm(32, 64), lambda: torch.nn.GroupNorm(32, 64),
                        (16, 64, 32, 32))


def recurrent_step(torch, kind: str, steps=50, batch=32, inputs=32, hidden=128):
    """nn.LSTM / nn.GRU (batch_first) forward + backward from output.sum(), [32, 50, 32]."""
    import minidl.nn as nn

    return _module_pair(torch, lambda: getattr(nn, kind)(inputs, hidden, batch_first=True),
                        lambda: getattr(torch.nn, kind)(inputs, hidden, batch_first=True),
                        (batch, steps, inputs), x_grad=False)


#                                 N, Cin,  H,  W, Cout, k, stride, pad
CONV_SHAPES = {
    "conv2d A 64x1x28x28 -> 6, k5 p2": (64, 1, 28, 28, 6, 5, 1, 2),
    "conv2d B 64x6x14x14 -> 16, k5": (64, 6, 14, 14, 16, 5, 1, 0),
    "conv2d C 32x32x32x32 -> 64, k3 p1": (32, 32, 32, 32, 64, 3, 1, 1),
    "conv2d D 8x64x64x64 -> 64, k3 p1": (8, 64, 64, 64, 64, 3, 1, 1),
    "conv2d 32x64x32x32 -> 128, k3 p1 s2": (32, 64, 32, 32, 128, 3, 2, 1),
}


def _conv(shape, input_grad=True):
    return lambda torch: conv_step(torch, *shape, input_grad=input_grad)


WORKLOADS = [
    Workload("autograd per-node cost (c = c + b chain, 2000 nodes)", node_chain),
    Workload("3-layer MLP training step, batch 64", mlp_step),
    Workload("LeNet-5-style training step, batch 64, 28x28", lenet5_step),
] + [
    # A is a first layer: nothing needs the gradient of the images
    Workload(name, _conv(shape, input_grad=not name.startswith("conv2d A")))
    for name, shape in CONV_SHAPES.items()
] + [
    Workload("conv_transpose2d 16x64x16x16 -> 32, k4 s2 p1", conv_transpose_step),
    Workload("max_pool2d 2x2, 64x16x28x28", max_pool_step),
    Workload("BatchNorm2d training, 64x32x32x32", batch_norm_step),
    Workload("GroupNorm(32, 64), 16x64x32x32", group_norm_step),
    Workload("nn.LSTM T=50, B=32, 32 -> 128", lambda torch: recurrent_step(torch, "LSTM")),
    Workload("nn.GRU T=50, B=32, 32 -> 128", lambda torch: recurrent_step(torch, "GRU")),
]


# ---- the table ----------------------------------------------------------------------------
def _row(name, *cells, width=52) -> None:
    print(f"  {name:<{width}}" + "".join(f"{c:>11}" for c in cells[:3])
          + "".join(f"  {c:<16}" for c in cells[3:]))


def compare(workloads, torch, repeat: int) -> list:
    """Print one row per workload; return [(name, minidl seconds, PyTorch seconds)]."""
    rows = []
    _row("forward + backward, float32", "minidl ms", "torch ms", "ratio", "goal")
    for workload in workloads:
        ours, theirs = interleaved_medians(workload.build(torch), repeat)
        rows.append((workload.name, ours, theirs))
        flag = "" if ours / theirs <= GOAL else " (missed)"
        _row(workload.name, f"{ours * 1e3:.3f}", f"{theirs * 1e3:.3f}",
             f"{ours / theirs:.2f}", f"<= {GOAL}" + flag)
    mean = geometric_mean(ours / theirs for _, ours, theirs in rows)
    flag = "" if mean <= GEOMEAN_GOAL else " (missed)"
    _row("geometric mean", "", "", f"{mean:.2f}", f"<= {GEOMEAN_GOAL}" + flag)
    return rows


def markdown(rows, memory_row, epoch_rows, gflops: float) -> str:
    """The tables as Markdown, for the README's Benchmarks section."""
    lines = ["| workload (forward + backward, float32) | minidl | PyTorch | "
             "minidl / PyTorch | goal |", "|---|---|---|---|---|"]
    for name, ours, theirs in rows:
        lines.append(f"| {name} | {ours * 1e3:.2f} ms | {theirs * 1e3:.2f} ms | "
                     f"{ours / theirs:.2f} | <= {GOAL} |")
    if rows:
        mean = geometric_mean(ours / theirs for _, ours, theirs in rows)
        lines.append(f"| geometric mean | | | {mean:.2f} | <= {GEOMEAN_GOAL} |")
    if memory_row:
        ours, theirs = memory_row
        lines.append(f"| peak memory, one conv C forward + backward | {ours / 2**20:.1f} MB | "
                     f"{theirs / 2**20:.1f} MB | {ours / theirs:.2f} | <= 1.5 |")
    for name, ours, theirs in epoch_rows:
        lines.append(f"| one epoch of lesson 02: {name} | {ours:.2f} s | {theirs:.2f} s | "
                     f"{ours / theirs:.2f} | <= 1.5 |")
    lines.append(f"\nfloat32 matmul 1024^3 on this machine: {gflops:.0f} GFLOP/s.")
    return "\n".join(lines)


class MachineLoad:
    """How much of the machine other processes used while the table was measured.

    From /proc/stat (all CPU time spent busy) minus this process's own CPU time and its
    children's (getrusage); Linux only, else nothing is printed.
    """

    def __init__(self):
        self.start = self._read()

    @staticmethod
    def _read():
        try:
            with open("/proc/stat") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except OSError:
            return None
        busy = (sum(fields) - fields[3] - fields[4]) / os.sysconf("SC_CLK_TCK")
        own = sum(getattr(resource.getrusage(who), field)
                  for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
                  for field in ("ru_utime", "ru_stime"))
        return busy, own, time.perf_counter()

    def others_share(self) -> float | None:
        """The fraction of all cores that other processes kept busy since __init__."""
        end = self._read()
        if self.start is None or end is None:
            return None
        busy, own, wall = (b - a for a, b in zip(self.start, end))
        return max(0.0, busy - own) / (wall * (os.cpu_count() or 1))


def run(quick: bool = False, only=None, as_markdown: bool = False, threads: int = 2) -> None:
    """Print the side-by-side tables (``only``: a substring choosing some rows;
    ``as_markdown``: also print them as one Markdown table at the end; ``threads``: for
    PyTorch, NumPy's BLAS and numba's kernels, 2 by default as in the goals)."""
    from minidl.bench import lesson02, memory
    from minidl.bench._timing import matmul_gflops

    torch, blas, numba = set_threads(threads)
    load = MachineLoad()
    repeat = 3 if quick else 11
    gflops = matmul_gflops(repeat=3)
    print(f"minidl vs PyTorch {torch.__version__} (CPU), float32; threads: PyTorch "
          f"{torch.get_num_threads()}, NumPy's BLAS {blas or '?'}, "
          f"numba {numba.get_num_threads()}; "
          f"NumPy {np.__version__}; matmul 1024^3 at {gflops:.0f} GFLOP/s here")
    print("ratio = minidl time / PyTorch time, medians of interleaved runs "
          f"({repeat} each); lower is better")
    workloads = [w for w in WORKLOADS if only is None or only.lower() in w.name.lower()]
    rows = compare(workloads, torch, repeat) if workloads else []
    memory_row, epoch_rows = None, []
    if only is None or "memory" in only:
        print()
        memory_row = memory.run(quick=quick)
    if only is None or "lesson" in only:
        print()
        epoch_rows = lesson02.run(torch, quick=quick)
    others = load.others_share()
    if others is not None:
        busy = "  The machine was busy: trust the ratios more than the times, and re-run on a " \
               "quiet machine." if others > 0.1 else ""
        print(f"\nother processes used {others:.0%} of the {os.cpu_count()} cores during this "
              f"run.{busy}")
    if as_markdown:
        print("\n" + markdown(rows, memory_row, epoch_rows, gflops))
