"""python -m minidl.bench --floors: what bounds the --vs-torch rows that miss their goal.

A row of ``--vs-torch`` compares minidl's whole step with PyTorch's. This mode splits
minidl's step of the convolution, GroupNorm and LSTM rows in two:

* its **floor**, the work a faster minidl would still have to do the same way: for a
  convolution, the three matrix products of im2col (forward ``W @ cols``, input gradient
  ``W^T @ dy``, weight gradient ``dy @ cols^T``) on minidl's own chunks of images, with
  OpenBLAS; for GroupNorm, its two numba kernels (minidl/kernels/norm.py); for the LSTM,
  its matrix products (minidl/ops/rnn.py: the input part of all steps in one product,
  one small product per step each way, one product per weight gradient), which PyTorch's
  CPU LSTM makes too;
* **the rest**: everything else in the step (for a convolution, im2col and col2im, the
  layout copies, the bias, the autograd engine; for GroupNorm, the engine, the small sums
  of the weight and bias gradients, and the row's own ``sum()`` and its gradient, made
  contiguous for the kernel; for the LSTM, the gate arithmetic and the Python loop over
  the steps).

All three (minidl's step, its floor alone, PyTorch's step) are timed in alternation in
one process, as in --vs-torch. A row can reach the goal (minidl <= 1.3 x PyTorch) only
if its rest fits in what the floor leaves: ``room = 1.3 - floor / torch``, in units of
PyTorch's step, against ``rest = (step - floor) / torch``. When the floor alone is about
PyTorch's whole step (PyTorch's oneDNN convolutions never build the columns), the
columns' copies, on one core, must fit in the remaining 0.3 of it.

The floors run on random arrays of the shapes minidl's step uses (the speed of a
product does not depend on the values).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from minidl.bench import vs_torch


class Floor(NamedTuple):
    """What ``run`` times for one row: the floor (a zero-argument function), its
    description, and how many GFLOP of matrix products it does (0 for GroupNorm)."""

    run: object
    what: str
    gflop: float


def conv_products(N, Cin, H, W, Cout, k, stride, pad, transposed=False) -> list:
    """The matrix products of one conv2d (or conv_transpose2d) forward + backward, chunk by
    chunk as minidl/ops/conv.py makes them: [(W rows, W cols = K, columns of the chunk)].

    conv2d: the columns come from the input, K = Cin k k, one column per output pixel.
    conv_transpose2d is the same pair of products the other way round: the columns come
    from its output's gradient (K = Cout k k), one column per input pixel.
    """
    from minidl.ops.conv import _Chunks

    if transposed:
        rows, K, grid = Cin, Cout * k * k, (H, W)
    else:
        out_h = (H + 2 * pad - k) // stride + 1
        out_w = (W + 2 * pad - k) // stride + 1
        rows, K, grid = Cout, Cin * k * k, (out_h, out_w)
    chunks = _Chunks(N, K, rows, grid, np.float32)
    L = grid[0] * grid[1]
    return [(rows, K, B * L) for _, _, B in chunks]


def products_floor(shapes) -> Floor:
    """Forward, input-gradient and weight-gradient products of each chunk, on random
    float32 arrays of those shapes (as many separate arrays as minidl has chunks)."""
    rng = np.random.default_rng(0)
    rows, K = shapes[0][:2]
    weight = vs_torch._randn(rng, rows, K)
    cols = [vs_torch._randn(rng, K, n) for _, _, n in shapes]
    planes = [vs_torch._randn(rng, rows, n) for _, _, n in shapes]
    outs = [np.empty((rows, n), np.float32) for _, _, n in shapes]
    backs = [np.empty((K, n), np.float32) for _, _, n in shapes]

    def products():
        weight_grad = np.zeros((rows, K), np.float32)
        for c, p, out, back in zip(cols, planes, outs, backs):
            np.matmul(weight, c, out=out)          # forward
            np.matmul(weight.T, p, out=back)       # input gradient, before col2im
            weight_grad += p @ c.T                 # weight gradient, summed over chunks
    gflop = sum(3 * 2 * rows * K * n for _, _, n in shapes) / 1e9
    return Floor(products, f"3 products x {len(shapes)} chunks", gflop)


def lstm_products(T=50, B=32, I=32, H=128) -> list:
    """The matrix products of one nn.LSTM forward + backward over T steps of a batch of B
    (input size I, hidden size H) as minidl/ops/rnn.py makes them when the input needs no
    gradient (as in the row): [(rows, inner, columns, how many times)]."""
    G = 4 * H  # the four gates side by side
    return [(T * B, I, G, 1),  # x W_ih^T, every step at once
            (B, H, G, T),      # h(t-1) W_hh^T, one per step
            (B, G, H, T),      # dL/dh(t-1) = da(t) W_hh, one per step backwards
            (G, T * B, I, 1),  # dL/dW_ih = da^T x
            (G, T * B, H, 1)]  # dL/dW_hh = da^T h_prev


def matmuls_floor(products) -> Floor:
    """Each product of ``products`` [(rows, inner, columns, times)], on random float32
    arrays of those shapes, as many times as it says."""
    rng = np.random.default_rng(0)
    operands = [(vs_torch._randn(rng, m, k), vs_torch._randn(rng, k, n),
                 np.empty((m, n), np.float32), times) for m, k, n, times in products]

    def products_alone():
        for a, b, out, times in operands:
            for _ in range(times):
                np.matmul(a, b, out=out)
    gflop = sum(2 * m * k * n * times for m, k, n, times in products) / 1e9
    return Floor(products_alone, f"{sum(p[3] for p in products)} products", gflop)


def group_norm_floor(N=16, C=64, H=32, W=32, G=32) -> Floor:
    """GroupNorm's forward and backward numba kernels alone, on the shapes of its row."""
    from minidl.kernels import norm as kernels

    rng = np.random.default_rng(0)
    x = vs_torch._randn(rng, N, G, C // G, H * W)
    g = vs_torch._randn(rng, N, G, C // G, H * W)
    weight, bias = np.ones((G, C // G), np.float32), np.zeros((G, C // G), np.float32)
    out, dx = np.empty_like(x), np.empty_like(x)
    mean, invstd = np.empty((N, G)), np.empty((N, G))
    sum_g, sum_gxhat = np.empty((N, G, C // G)), np.empty((N, G, C // G))

    def both_kernels():
        kernels.group_norm_forward(x, weight, bias, 1e-5, out, mean, invstd)
        kernels.group_norm_backward(g, x, weight, mean, invstd, dx, sum_g, sum_gxhat, True)
    return Floor(both_kernels, "forward + backward kernels", 0.0)


def _conv_floor(shape, transposed=False):
    return lambda: products_floor(conv_products(*shape, transposed=transposed))


# Row name (as in --vs-torch) -> a function that builds its Floor (conv A meets its goal).
FLOORS = {name: _conv_floor(shape) for name, shape in vs_torch.CONV_SHAPES.items()
          if not name.startswith("conv2d A")}
FLOORS["conv_transpose2d 16x64x16x16 -> 32, k4 s2 p1"] = _conv_floor(
    (16, 64, 16, 16, 32, 4, 2, 1), transposed=True)  # the row's shape (conv_transpose_step)
FLOORS["GroupNorm(32, 64), 16x64x32x32"] = group_norm_floor
FLOORS["nn.LSTM T=50, B=32, 32 -> 128"] = lambda: matmuls_floor(lstm_products())


def run(quick: bool = False, only=None, threads: int = 2) -> None:
    """Print, per row: minidl's step, its floor alone, PyTorch's step, and the room left."""
    torch = vs_torch.set_threads(threads)[0]
    repeat = 3 if quick else 11
    builds = {w.name: w.build for w in vs_torch.WORKLOADS}
    print(f"minidl's step, its floor alone, and PyTorch's step, {threads} threads, medians of "
          f"{repeat} interleaved runs; in units of PyTorch's step: floor, rest = step - floor, "
          f"and the room the floor leaves under the goal ({vs_torch.GOAL})")
    header = ("step ms", "floor ms", "torch ms", "floor", "rest", "room", "floor is")
    print(f"  {'row':<46}" + "".join(f"{h:>9}" for h in header[:6]) + f"   {header[6]}")
    for name, build_floor in FLOORS.items():
        if only is not None and only.lower() not in name.lower():
            continue
        ours, theirs = builds[name](torch)
        floor = build_floor()
        step, alone, torch_step = vs_torch.interleaved_medians([ours, floor.run, theirs], repeat)
        rate = f", {floor.gflop / alone:.0f} GFLOP/s" if floor.gflop else ""
        cells = (f"{step * 1e3:.2f}", f"{alone * 1e3:.2f}", f"{torch_step * 1e3:.2f}",
                 f"{alone / torch_step:.2f}", f"{(step - alone) / torch_step:.2f}",
                 f"{vs_torch.GOAL - alone / torch_step:.2f}")
        print(f"  {name:<46}" + "".join(f"{c:>9}" for c in cells) + f"   {floor.what}{rate}")
