"""resize_bilinear against pixel loops (PyTorch's align_corners semantics)."""

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.data
from minidl.data import resize_bilinear

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"
PACKAGE = Path(minidl.data.__file__).parent


# ---- resize_bilinear -----------------------------------------------------------------------
def bilinear_loops(x, out_h, out_w, align_corners=False):
    """Pixel by pixel, as ATen's upsample_bilinear2d computes it (float64)."""
    in_h, in_w = x.shape[-2:]

    def source(j, n_in, n_out):
        if align_corners:
            return j * (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        return max((j + 0.5) * n_in / n_out - 0.5, 0.0)

    out = np.zeros(x.shape[:-2] + (out_h, out_w))
    for i in range(out_h):
        sy = source(i, in_h, out_h)
        y0 = int(math.floor(sy))
        y1 = y0 + 1 if y0 < in_h - 1 else y0
        ly = sy - y0
        for j in range(out_w):
            sx = source(j, in_w, out_w)
            x0 = int(math.floor(sx))
            x1 = x0 + 1 if x0 < in_w - 1 else x0
            lx = sx - x0
            out[..., i, j] = ((1 - ly) * ((1 - lx) * x[..., y0, x0] + lx * x[..., y0, x1])
                              + ly * ((1 - lx) * x[..., y1, x0] + lx * x[..., y1, x1]))
    return out


@settings(max_examples=30, deadline=None)
@given(in_h=st.integers(1, 7), in_w=st.integers(1, 7), out_h=st.integers(1, 12),
       out_w=st.integers(1, 12), align=st.booleans())
def test_resize_matches_pixel_loops(in_h, in_w, out_h, out_w, align):
    x = np.random.default_rng(in_h * 100 + in_w).standard_normal((2, 1, in_h, in_w))
    got = resize_bilinear(x, (out_h, out_w), align_corners=align)
    assert got.shape == (2, 1, out_h, out_w) and got.dtype == np.float64
    np.testing.assert_allclose(got, bilinear_loops(x, out_h, out_w, align), rtol=1e-12,
                               atol=1e-12)


def test_resize_known_values():
    # 2 -> 4 with align_corners=False: sources -0.25 (clamped to 0), 0.25, 0.75, 1.25 (-> 1)
    got = resize_bilinear(np.array([[0.0, 4.0]]), (1, 4))
    np.testing.assert_allclose(got, [[0.0, 1.0, 3.0, 4.0]])
    same = np.random.default_rng(0).standard_normal((3, 5, 6)).astype(np.float32)
    np.testing.assert_allclose(resize_bilinear(same, (5, 6)), same, rtol=1e-6)
    assert resize_bilinear(same, 4).dtype == np.float32
    assert resize_bilinear(np.ones((2, 2), dtype=np.uint8), 3).dtype == np.float32


def test_resize_bad_input():
    with pytest.raises(ValueError, match=r"resize_bilinear: expected images \[..., H, W\]"):
        resize_bilinear(np.ones(3), 4)
    with pytest.raises(ValueError, match="resize_bilinear: size must be a positive int"):
        resize_bilinear(np.ones((3, 3)), 0)
