"""Benchmarks of the recurrent layers (issue: recurrent networks).

The case from the issue: ``nn.LSTM(32, 128)`` on a batch of 32 sequences of
T = 50 steps, forward and backward (the gradient of ``output.sum()`` with respect
to every parameter). Its time is printed next to the time of the same matrix
products done directly on ndarrays, with nothing else: the floor for this
design, where each step does

    forward:   x(t) W_ih^T   [32, 32] @ [32, 512]      h(t-1) W_hh^T   [32, 128] @ [128, 512]
    backward:  x(t)^T g(t)   [32, 32] @ [32, 512]      h(t-1)^T g(t)   [128, 32] @ [32, 512]
               g(t) W_hh     [32, 512] @ [512, 128]    (not at t = 1: h(0) is a constant)

with g(t) = dL/d(gates at t). The goal is to stay within 2x of that floor. A
second floor does the input products for all steps in one matmul each way, as the
fused layers of ``minidl/ops/rnn.py`` behind the modules do. GRU and the plain RNN
are timed the same way. (``python -m minidl.bench --vs-torch`` compares with PyTorch.)
"""

from __future__ import annotations

import numpy as np

from minidl.bench._timing import best_time, row


def _module_time(kind: str, steps: int, batch: int, inputs: int, hidden: int,
                 repeat: int) -> float:
    """Seconds for forward + backward of one ``nn.<kind>`` layer on [batch, steps, inputs]."""
    import minidl.nn as nn
    from minidl import Tensor, manual_seed

    manual_seed(0)
    model = getattr(nn, kind)(inputs, hidden, batch_first=True)
    x = Tensor(np.random.default_rng(0).standard_normal((batch, steps, inputs)).astype(np.float32))

    def forward_backward():
        model.zero_grad()
        output, _ = model(x)
        output.sum().backward()

    return best_time(forward_backward, repeat=repeat)


def _matmul_floor(gates: int, steps: int, batch: int, inputs: int, hidden: int,
                  repeat: int, hoisted: bool = False) -> float:
    """Seconds for the matrix products alone (see the module docstring)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((steps, batch, inputs)).astype(np.float32)
    h = rng.standard_normal((steps, batch, hidden)).astype(np.float32)
    g = rng.standard_normal((steps, batch, gates * hidden)).astype(np.float32)
    w_ih_t = rng.standard_normal((inputs, gates * hidden)).astype(np.float32)
    w_hh = rng.standard_normal((gates * hidden, hidden)).astype(np.float32)
    w_hh_t = np.ascontiguousarray(w_hh.T)

    def products():
        if hoisted:
            np.matmul(x.reshape(-1, inputs), w_ih_t)
        for t in range(steps):
            if not hoisted:
                np.matmul(x[t], w_ih_t)
            np.matmul(h[t], w_hh_t)
        for t in range(steps - 1, -1, -1):
            if not hoisted:
                np.matmul(x[t].T, g[t])
            np.matmul(h[t].T, g[t])
            if t > 0:
                np.matmul(g[t], w_hh)
        if hoisted:
            np.matmul(x.reshape(-1, inputs).T, g.reshape(-1, gates * hidden))

    return best_time(products, repeat=repeat)


def run(quick: bool = False) -> None:
    steps, batch, inputs, hidden = 50, 32, 32, 128
    repeat = 3 if quick else 15
    print(f"rnn  (T={steps}, batch {batch}, input {inputs}, hidden {hidden}; forward + backward)")
    row("", "measured", "matmul floor", "ratio", "goal")
    for kind, gates in (("LSTM", 4), ("GRU", 3), ("RNN", 1)):
        if quick and kind != "LSTM":
            continue
        module = _module_time(kind, steps, batch, inputs, hidden, repeat)
        floor = _matmul_floor(gates, steps, batch, inputs, hidden, repeat)
        goal = "<= 2x" if kind == "LSTM" else ""
        row(f"nn.{kind}", f"{module * 1e3:.2f} ms", f"{floor * 1e3:.2f} ms",
            f"{module / floor:.2f}x", goal)
    hoisted = _matmul_floor(4, steps, batch, inputs, hidden, repeat, hoisted=True)
    row("LSTM floor with one input matmul for all steps", "", f"{hoisted * 1e3:.2f} ms")


if __name__ == "__main__":
    run()
