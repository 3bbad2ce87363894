"""Threads: how many NumPy's BLAS uses, and sharing one op's work among that many.

NumPy's matrix products run on OpenBLAS, which splits every product among its
threads (one per core by default; ``OPENBLAS_NUM_THREADS`` sets another number when
the program starts). An op that alternates products with serial numba copies, as a
convolution does (im2col, a product, col2im, for one chunk of images after another),
leaves all cores but one idle during every copy. Such an op can instead split its
images into one share per thread and run the shares at once, each thread copying and
multiplying its own images, with OpenBLAS set to one thread meanwhile so that the
threads do not compete for cores (``run_shares``). This pays when the op is large
(measured on the convolutions of ``python -m minidl.bench --vs-torch``: 20-30% faster
on 2 cores for the large ones, slower for small ones, where starting the threads and
waking OpenBLAS's own threads afterwards cost more than they save).

Python threads can run at once only outside the interpreter: NumPy's products release
Python's global interpreter lock (the GIL), and so do minidl's numba kernels
(``nogil=True``, minidl/utils/jit.py).

With one BLAS thread (``OPENBLAS_NUM_THREADS=1``, as the lessons' timings are measured)
nothing is shared and nothing changes. With several, a share's products run on one
BLAS thread, whose last bits can differ from a product split among threads (DESIGN.md,
"numba rules"), so a run on two cores gives slightly different numbers than a run on
one, as it already did.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import threading
from concurrent.futures import ThreadPoolExecutor, wait

_blas = None  # (set_num_threads, get_num_threads) of NumPy's OpenBLAS, () if not found
_pool = None


def _openblas_functions():
    """OpenBLAS's ``set_num_threads`` and ``get_num_threads``, found among the libraries
    this process has loaded (NumPy's wheels name them ``scipy_openblas_*64_``), or ()
    where NumPy uses another BLAS or /proc is missing."""
    global _blas
    if _blas is None:
        _blas = ()
        try:
            with open("/proc/self/maps") as f:
                paths = {line.split()[-1] for line in f if "openblas" in line.lower()}
        except OSError:
            paths = set()
        for path in sorted(paths):
            lib = ctypes.CDLL(path)
            for name in ("scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_",
                         "scipy_openblas_{}_num_threads", "openblas_{}_num_threads"):
                setter = getattr(lib, name.format("set"), None)
                getter = getattr(lib, name.format("get"), None)
                if setter is not None and getter is not None:
                    setter.argtypes, setter.restype = [ctypes.c_int], None
                    getter.argtypes, getter.restype = [], ctypes.c_int
                    _blas = (setter, getter)
                    return _blas
    return _blas


def blas_threads(threads: int | None = None) -> int | None:
    """Set NumPy's OpenBLAS to ``threads`` threads (if given) and return how many it uses,
    or None where that cannot be found (another BLAS, or no /proc). OpenBLAS reads its
    environment only when it loads; its ``set_num_threads`` function changes it after."""
    import numpy  # noqa: F401  (OpenBLAS is loaded with NumPy)

    functions = _openblas_functions()
    if not functions:
        return None
    setter, getter = functions
    if threads is not None:
        setter(int(threads))
    return getter()


_lock = threading.Lock()
_inside = 0  # how many one_blas_thread blocks are running now (in any thread)
_restore = None  # the thread count to give back when the last of them ends


@contextlib.contextmanager
def one_blas_thread():
    """Run the block with OpenBLAS on one thread, then give it back its threads. Blocks may
    overlap (two Python threads each running a convolution): the count seen by the first
    is given back when the last one ends."""
    global _inside, _restore
    with _lock:
        if _inside == 0:
            _restore = blas_threads()
            if _restore is not None and _restore != 1:
                blas_threads(1)
        _inside += 1
    try:
        yield
    finally:
        with _lock:
            _inside -= 1
            if _inside == 0 and _restore is not None and _restore != 1:
                blas_threads(_restore)


def split_evenly(items: list, parts: int) -> list[list]:
    """``items`` cut into ``parts`` runs of consecutive items, their lengths differing by
    at most one (the first runs are the longer ones); no run is empty."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    runs, start = [], 0
    for k in range(parts):
        end = start + size + (k < extra)
        runs.append(items[start:end])
        start = end
    return runs


def run_shares(work, shares: list) -> list:
    """``[work(share) for share in shares]``, the shares run at once on as many threads: the
    first on the calling thread, the others on a pool kept for the next call. The results
    come back in the order of ``shares``; an exception in any share is raised here, after
    every share has finished (so no thread is still writing into the op's arrays)."""
    global _pool
    if len(shares) == 1:
        return [work(shares[0])]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=max(1, (os.cpu_count() or 2) - 1),
                                   thread_name_prefix="minidl")
    others = [_pool.submit(work, share) for share in shares[1:]]
    try:
        first = work(shares[0])
    finally:
        wait(others)
    return [first] + [future.result() for future in others]  # result() raises a share's error
