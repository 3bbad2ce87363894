"""Benchmarks of the detection kernels (issue: detection building blocks, item 12).

Each numba kernel is timed beside two twins:

* its NumPy twin from ``minidl.kernels`` (``box_iou_reference`` and friends:
  vectorized where the algorithm allows it), and
* the kernel's own loop run as plain Python (``python_loop(kernel)``: the
  function numba compiles, with every kernel it calls also left uncompiled),
  the "loops in Python" baseline. It is slow, so it runs on a slice of the
  input and its time is scaled up by the ratio of work (said in each row).

Goal (from the issue): every kernel at least 20x faster than its Python loop.
Cases: box_iou 2,000 x 2,000; nms on 2,000 boxes; roi_align and roi_pool,
forward + backward, 256 RoIs on [2, 64, 32, 32] features with 7 x 7 output.
"""

from __future__ import annotations

import types

import numpy as np

from minidl.bench._timing import best_time, row
from minidl.kernels import boxes as KB
from minidl.kernels import roi as KR
from minidl.utils.jit import LazyKernel


def python_loop(kernel):
    """The kernel as plain Python: its ``py_func`` with every kernel it calls (and ``prange``)
    replaced by their Python versions too, so nothing in the call is compiled."""
    func = kernel.py_func
    scope = dict(func.__globals__)
    for name in func.__code__.co_names:
        if isinstance(scope.get(name), LazyKernel):
            scope[name] = python_loop(scope[name])
    scope["prange"] = range
    return types.FunctionType(func.__code__, scope, func.__name__, func.__defaults__,
                              func.__closure__)


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:,.1f} ms"


def _report(name, numba_s, numpy_s, python_s, note):
    row(name, _ms(numba_s), _ms(numpy_s), _ms(python_s), f"{python_s / numba_s:,.0f}x",
        f"{numpy_s / numba_s:,.1f}x")
    print(f"  {'':<48}(Python loop: {note})")


def _boxes(n, rng, size=512.0, clusters=60):
    """Detector-like boxes: jittered copies around a few objects."""
    centres = rng.uniform(20, size - 20, (clusters, 2))[rng.integers(0, clusters, n)]
    centres = centres + rng.normal(0, 6, (n, 2))
    half = rng.uniform(8, 40, (n, 2)) * np.array([1.0, 1.2])
    return np.concatenate([centres - half, centres + half], axis=1)


def bench_box_iou(n, repeat, rng):
    boxes = _boxes(n, rng)
    numba_s = best_time(lambda: KB.box_iou_kernel(boxes, boxes), repeat=repeat)
    numpy_s = best_time(lambda: KB.box_iou_reference(boxes, boxes), repeat=repeat)
    rows = max(n // 100, 1)
    loop = python_loop(KB.box_iou_kernel)
    python_s = best_time(lambda: loop(boxes[:rows], boxes), repeat=1, warmup=0) * n / rows
    _report(f"box_iou {n:,} x {n:,}", numba_s, numpy_s, python_s,
            f"{rows} x {n:,} timed, scaled x{n // rows}")


def bench_nms(n, repeat, rng):
    boxes = _boxes(n, rng)
    scores = rng.random(n)
    order = np.argsort(-scores, kind="stable").astype(np.int64)
    same = np.zeros(n, dtype=np.int64)
    numba_s = best_time(lambda: KB.nms_kernel(boxes, same, order, 0.5), repeat=repeat)
    numpy_s = best_time(lambda: KB.nms_reference(boxes, same, order, 0.5), repeat=repeat)
    loop = python_loop(KB.nms_kernel)
    python_s = best_time(lambda: loop(boxes, same, order, 0.5), repeat=1, warmup=0)
    kept = KB.nms_kernel(boxes, same, order, 0.5).size
    _report(f"nms {n:,} boxes (IoU 0.5, {kept} kept)", numba_s, numpy_s, python_s,
            "full input")


def _roi_case(num_rois, rng, channels=64, size=32, stride=4):
    features = rng.standard_normal((2, channels, size, size)).astype(np.float32)
    image = size * stride
    xy = rng.uniform(0, image * 0.8, (num_rois, 2))
    wh = rng.uniform(8, image * 0.5, (num_rois, 2))
    rois = np.concatenate([rng.integers(0, 2, (num_rois, 1)), xy, np.minimum(xy + wh, image)],
                          axis=1).astype(np.float32)
    return features, rois, 1.0 / stride


def bench_roi_align(num_rois, repeat, rng, sampling_ratio=2):
    x, rois, scale = _roi_case(num_rois, rng)
    args = (scale, sampling_ratio, False)
    out = KR.roi_align_forward_kernel(x, rois, 7, 7, *args)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    n, _, h, w = x.shape

    def with_numba():
        KR.roi_align_forward_kernel(x, rois, 7, 7, *args)
        KR.roi_align_backward_kernel(grad, rois, n, h, w, *args)

    def with_numpy():  # the twin's backward also gives the box gradient, so it does more
        KR.roi_align_reference(x, rois, 7, 7, *args)
        KR.roi_align_backward_reference(grad, x, rois, *args)

    few = max(num_rois // 32, 1)
    forward, backward = python_loop(KR.roi_align_forward_kernel), python_loop(
        KR.roi_align_backward_kernel)

    def with_python():
        forward(x, rois[:few], 7, 7, *args)
        backward(grad[:few], rois[:few], n, h, w, *args)

    numba_s = best_time(with_numba, repeat=repeat)
    numpy_s = best_time(with_numpy, repeat=1)
    python_s = best_time(with_python, repeat=1, warmup=0) * num_rois / few
    _report(f"roi_align fwd+bwd {num_rois} RoIs [2,64,32,32] 7x7 sr=2", numba_s, numpy_s,
            python_s, f"{few} RoIs timed, scaled x{num_rois // few}")
    boxes_s = best_time(lambda: KR.roi_align_backward_boxes_kernel(grad, x, rois, *args),
                        repeat=repeat)
    print(f"  {'':<48}(box gradient, an extra kernel when boxes require grad: {_ms(boxes_s)})")


def bench_roi_pool(num_rois, repeat, rng):
    x, rois, scale = _roi_case(num_rois, rng)
    out, argmax = KR.roi_pool_forward_kernel(x, rois, 7, 7, scale)
    grad = rng.standard_normal(out.shape).astype(np.float32)
    n, _, h, w = x.shape

    def with_numba():
        KR.roi_pool_forward_kernel(x, rois, 7, 7, scale)
        KR.roi_pool_backward_kernel(grad, argmax, rois, n, h, w)

    def with_numpy():
        KR.roi_pool_reference(x, rois, 7, 7, scale)
        KR.roi_pool_backward_reference(grad, argmax, rois, n, h, w)

    few = max(num_rois // 32, 1)
    forward, backward = python_loop(KR.roi_pool_forward_kernel), python_loop(
        KR.roi_pool_backward_kernel)

    def with_python():
        forward(x, rois[:few], 7, 7, scale)
        backward(grad[:few], argmax[:few], rois[:few], n, h, w)

    numba_s = best_time(with_numba, repeat=repeat)
    numpy_s = best_time(with_numpy, repeat=1)
    python_s = best_time(with_python, repeat=1, warmup=0) * num_rois / few
    _report(f"roi_pool fwd+bwd {num_rois} RoIs [2,64,32,32] 7x7", numba_s, numpy_s, python_s,
            f"{few} RoIs timed, scaled x{num_rois // few}")


def run(quick: bool = False) -> None:
    rng = np.random.default_rng(0)
    repeat = 3 if quick else 7
    print("vision kernels (numba, its NumPy twin, its loop run as plain Python; goal: >= 20x "
          "faster than the Python loop)")
    row("", "numba", "NumPy twin", "Python loop", "vs Python", "vs NumPy")
    bench_box_iou(500 if quick else 2000, repeat, rng)
    bench_nms(500 if quick else 2000, repeat, rng)
    bench_roi_align(64 if quick else 256, repeat, rng)
    bench_roi_pool(64 if quick else 256, repeat, rng)
