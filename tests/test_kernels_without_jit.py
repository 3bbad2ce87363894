"""Rerun every test marked ``kernel`` with NUMBA_DISABLE_JIT=1, in a subprocess.

numba reads NUMBA_DISABLE_JIT when it is imported, so the switch needs a fresh
interpreter. With the JIT off each kernel runs as the plain Python loop a
student can step through, and must still agree with its NumPy twin.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent


@pytest.mark.slow
def test_kernels_agree_with_their_twins_with_the_jit_disabled():
    env = dict(os.environ, NUMBA_DISABLE_JIT="1")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "kernel", "-p", "no:cacheprovider",
         str(TESTS)],
        env=env, capture_output=True, text=True, timeout=1800,
    )
    if result.returncode == 5:
        pytest.skip("no test is marked kernel yet")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
