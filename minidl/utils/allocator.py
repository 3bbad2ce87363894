"""glibc's malloc and NumPy's large arrays: keep freed memory for the next training step.

NumPy gets the memory of every array from the C library's ``malloc``. glibc serves a
large request (over 128 KB to begin with) with a fresh ``mmap`` and returns it to the
operating system when the array is freed, and it gives back the free top of its heap
too. In a training loop every step allocates and frees arrays of the same sizes, so
the next step pays again: a page fault for each 4 KB page it writes, and a system
call for each array it frees. For a small network that is a large part of a step.

``keep_freed_memory()`` asks glibc (``mallopt(3)``) to serve arrays of up to 32 MB
from its heap (M_MMAP_THRESHOLD) and to keep up to 256 MB of freed heap memory for
reuse (M_TRIM_THRESHOLD). minidl calls it once, at ``import minidl``. The price: a
process may keep up to 256 MB more resident memory than it uses at that moment.

It does nothing where the C library is not glibc (macOS, Windows, musl), and nothing
if you set MALLOC_MMAP_THRESHOLD_, MALLOC_TRIM_THRESHOLD_ or MALLOC_TOP_PAD_ yourself
(glibc reads those at start-up; your choice wins). ``MALLOC_TRIM_THRESHOLD_=131072``
brings back glibc's eager return of memory. ``python -m minidl.bench --vs-torch``
(minidl/bench/vs_torch.py) measures the steps with it.
"""

from __future__ import annotations

import ctypes
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt's parameter numbers, from glibc's <malloc.h>
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 32 << 20
TRIM_THRESHOLD = 256 << 20
USER_SETTINGS = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_", "MALLOC_TOP_PAD_")


def _is_glibc() -> bool:
    try:
        return os.confstr("CS_GNU_LIBC_VERSION").startswith("glibc")
    except (ValueError, OSError, AttributeError):
        return False


def keep_freed_memory() -> bool:
    """Set glibc's thresholds as the module docstring says; True if they were set."""
    if not sys.platform.startswith("linux") or not _is_glibc():
        return False
    if any(name in os.environ for name in USER_SETTINGS):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
