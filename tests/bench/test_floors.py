"""python -m minidl.bench --floors: its floors do the products minidl's step does.

PyTorch is never needed here (the mode itself stops with a message without it).
"""

import sys
from collections import Counter

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl.bench import __main__ as bench
from minidl.bench import floors, vs_torch
from minidl.ops import conv as conv_module
from minidl.ops import rnn as rnn_module

CONV_ROWS = [(name, shape, False) for name, shape in vs_torch.CONV_SHAPES.items()
             if not name.startswith("conv2d A")] + [
    ("conv_transpose2d 16x64x16x16 -> 32, k4 s2 p1", (16, 64, 16, 16, 32, 4, 2, 1), True)]


class _RecordingNumPy:
    """NumPy for minidl/ops/conv.py or rnn.py, with each np.matmul's (rows, inner, columns) recorded
    once per matrix of a stack."""

    def __init__(self):
        self.products = Counter()

    def matmul(self, a, b, **kwargs):
        stack = int(np.prod(np.broadcast_shapes(a.shape[:-2], b.shape[:-2])))
        self.products[(a.shape[-2], a.shape[-1], b.shape[-1])] += stack
        return np.matmul(a, b, **kwargs)

    def __getattr__(self, name):
        return getattr(np, name)


def _minidl_products(monkeypatch, shape, transposed):
    N, Cin, H, W, Cout, k, stride, pad = shape
    rng = np.random.default_rng(0)
    x = minidl.tensor(rng.standard_normal((N, Cin, H, W)).astype(np.float32), requires_grad=True)
    w_shape = (Cin, Cout, k, k) if transposed else (Cout, Cin, k, k)
    w = minidl.tensor(rng.standard_normal(w_shape).astype(np.float32), requires_grad=True)
    recording = _RecordingNumPy()
    monkeypatch.setattr(conv_module, "np", recording)
    op = F.conv_transpose2d if transposed else F.conv2d
    op(x, w, stride=stride, padding=pad).sum().backward()
    return recording.products


@pytest.mark.parametrize("name, shape, transposed", CONV_ROWS, ids=[r[0] for r in CONV_ROWS])
def test_a_conv_floor_is_the_products_minidl_makes(monkeypatch, name, shape, transposed):
    """Forward, input gradient and weight gradient of every chunk: the same (rows, inner,
    columns) as the np.matmul calls of minidl's own step, and the conv's multiply-adds."""
    chunk_shapes = floors.conv_products(*shape, transposed=transposed)
    expected = Counter()
    for rows, K, n in chunk_shapes:
        expected.update([(rows, K, n), (K, rows, n), (rows, n, K)])
    assert _minidl_products(monkeypatch, shape, transposed) == expected
    N, Cin, H, W, Cout, k, stride, pad = shape
    pixels = N * H * W if transposed else N * ((H + 2 * pad - k) // stride + 1) ** 2
    gflop = 3 * 2 * Cout * Cin * k * k * pixels / 1e9  # three products, 2 flops a multiply-add
    assert floors.products_floor(chunk_shapes).gflop == pytest.approx(gflop)


def test_the_lstm_floor_is_the_products_minidl_makes(monkeypatch):
    """nn.LSTM(32, 128) on [32, 50, 32] (batch first), input without gradient, as in its
    row: the floor's products are exactly the np.matmul calls of minidl's fused layer."""
    T, B, I, H = 50, 32, 32, 128
    lstm = minidl.nn.LSTM(I, H, batch_first=True)
    x = minidl.tensor(np.random.default_rng(0).standard_normal((B, T, I)).astype(np.float32))
    recording = _RecordingNumPy()
    monkeypatch.setattr(rnn_module, "np", recording)
    lstm(x)[0].sum().backward()
    products = floors.lstm_products(T, B, I, H)
    assert recording.products == Counter({(m, k, n): times for m, k, n, times in products})
    # multiply-adds: 4H gates x (I + H) inputs per sequence and step forward; backward the
    # hidden part twice (dh(t-1) and dW_hh) and the input part once (dW_ih; no dx)
    gflop = 2 * 4 * H * T * B * ((I + H) + (2 * H + I)) / 1e9
    assert floors.matmuls_floor(products).gflop == pytest.approx(gflop)


def test_every_floor_belongs_to_a_row_and_runs():
    names = {w.name for w in vs_torch.WORKLOADS}
    assert set(floors.FLOORS) <= names and len(floors.FLOORS) == len(CONV_ROWS) + 2
    for build_floor in floors.FLOORS.values():
        build_floor().run()


def test_without_pytorch_the_mode_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(SystemExit, match="needs PyTorch, which minidl never depends on"):
        bench.main(["--floors"])


def test_floors_take_no_sections():
    with pytest.raises(SystemExit):
        bench.main(["--floors", "conv"])
