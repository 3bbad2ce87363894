"""The tiled transposing copy against NumPy's.

Marked ``kernel``: tests/test_kernels_without_jit.py reruns them with NUMBA_DISABLE_JIT=1.
"""

import numpy as np
import pytest

from minidl.kernels import copy as kcopy

pytestmark = pytest.mark.kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int64])
@pytest.mark.parametrize("shape", [(1, 1), (1, 37), (37, 1), (16, 16), (33, 50), (70, 17)])
def test_transpose_into_equals_numpys_transposing_copy(dtype, shape):
    a = np.arange(np.prod(shape)).reshape(shape).astype(dtype)  # every entry distinct
    out = np.full(shape[::-1], -1, dtype)
    kcopy.transpose_into(a, out)
    np.testing.assert_array_equal(out, kcopy.transpose_reference(a))
    assert out.flags.c_contiguous
