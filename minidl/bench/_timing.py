"""Timing helpers shared by the benchmark sections."""

from __future__ import annotations

import time


def best_time(fn, repeat: int = 5, number: int = 1, warmup: int = 1) -> float:
    """Best wall-clock seconds of one call of ``fn`` over ``repeat`` rounds of ``number`` calls.

    The minimum, not the mean: other processes only ever add time.
    """
    for _ in range(warmup):
        fn()
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        best = min(best, (time.perf_counter() - start) / number)
    return best


def matmul_gflops(n: int = 1024, repeat: int = 5) -> float:
    """The machine's float32 matrix-multiply rate (GFLOP/s): the ceiling for im2col + GEMM."""
    import numpy as np

    a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
    b = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    seconds = best_time(lambda: a @ b, repeat=repeat)
    return 2 * n**3 / seconds / 1e9


def row(name: str, *cells) -> None:
    """Print one aligned table row."""
    print(f"  {name:<48}" + "".join(f"{c:>14}" for c in cells))
