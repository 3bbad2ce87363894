"""One seeded random number generator for the whole library.

``minidl.manual_seed(s)`` resets it; weight initialization, dropout masks,
``randn``/``rand`` and DataLoader shuffling all draw from it, so a lesson run
twice with the same seed prints the same numbers. Code that wants its own
stream passes an explicit ``numpy.random.Generator`` instead.
"""

from __future__ import annotations

import numpy as np

_generator = np.random.default_rng(0)


def manual_seed(seed: int) -> np.random.Generator:
    """Reset the global generator to ``seed`` and return it."""
    global _generator
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"manual_seed: seed must be a non-negative int, got {seed!r}")
    _generator = np.random.default_rng(int(seed))
    return _generator


def generator() -> np.random.Generator:
    """The global generator (changes identity after ``manual_seed``: call this each time)."""
    return _generator
