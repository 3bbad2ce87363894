"""minidl.cuda: there is no GPU in minidl, so PyTorch's device check picks the CPU.

    device = "cuda" if minidl.cuda.is_available() else "cpu"    # -> "cpu"

minidl computes with NumPy (and numba) on the CPU. The seeding calls that PyTorch
scripts make for the GPU are accepted and do nothing.
"""

from __future__ import annotations


def is_available() -> bool:
    """False: minidl runs on the CPU only."""
    return False


def device_count() -> int:
    return 0


def manual_seed(seed: int) -> None:
    """Nothing to seed (no GPU); seed the CPU generator with ``minidl.manual_seed``."""


def manual_seed_all(seed: int) -> None:
    """Nothing to seed (no GPU); seed the CPU generator with ``minidl.manual_seed``."""
