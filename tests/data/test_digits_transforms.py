"""The shipped UCI digits and the bilinear resize (PyTorch align_corners semantics)."""

import gzip
import math
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.data
from minidl.data import DigitsDataset, digits, resize_bilinear

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


# ---- digits --------------------------------------------------------------------------------
def test_digits_shapes_dtypes_and_range():
    x, y = digits("train")
    assert x.shape == (1397, 1, 8, 8) and x.dtype == np.float32
    assert y.shape == (1397,) and y.dtype == np.int64
    assert x.min() == 0.0 and x.max() == 1.0
    xt, yt = digits("test")
    assert xt.shape == (400, 1, 8, 8)
    np.testing.assert_array_equal(np.bincount(yt), [40] * 10)
    xa, ya = digits("all")
    assert len(xa) == 1797 and set(np.unique(ya)) == set(range(10))
    # all values are multiples of 1/16
    np.testing.assert_array_equal(xa * 16, np.round(xa * 16))


def test_train_and_test_are_disjoint_and_cover_all():
    with np.load(PACKAGE / "digits.npz") as f:
        test = f["test"]
    xa, ya = digits("all")
    np.testing.assert_array_equal(digits("train")[0], xa[~test])
    np.testing.assert_array_equal(digits("test")[1], ya[test])
    assert test.sum() == 400 and (~test).sum() == 1397


@pytest.mark.parametrize("size", [16, 28])
def test_digits_resized(size):
    x, y = digits("test", size=size)
    assert x.shape == (400, 1, size, size) and x.dtype == np.float32
    assert 0.0 <= x.min() and x.max() <= 1.0
    x8, _ = digits("test")
    np.testing.assert_allclose(x[:3], bilinear_loops(x8[:3].astype(np.float64), size, size),
                               atol=1e-6)


def test_digits_dataset():
    ds = DigitsDataset("test", size=16)
    image, label = ds[0]
    assert len(ds) == 400 and image.shape == (1, 16, 16) and label.dtype == np.int64


def test_digits_bad_input():
    with pytest.raises(ValueError, match="digits: split must be 'train', 'test' or 'all'"):
        digits("val")
    with pytest.raises(ValueError, match="digits: size must be a positive int"):
        digits("train", size=0)


def test_license_file_ships_with_attribution():
    text = (PACKAGE / "DIGITS_LICENSE.txt").read_text()
    assert "Alpaydin" in text and "Kaynak" in text and "CC BY 4.0" in text
    assert "CC BY 4.0" in sys.modules["minidl.data.digits"].__doc__


def test_package_never_reads_the_shared_folder():
    for path in PACKAGE.glob("*.py"):
        text = path.read_text()
        assert "shared/data" not in text and "/work/" not in text, path


@pytest.mark.skipif(not (SHARED / "digits.csv.gz").exists(), reason="no ../shared/data here")
def test_shipped_npz_equals_the_source_csv(tmp_path):
    with gzip.open(SHARED / "digits.csv.gz", "rt") as f:
        table = np.array([[int(v) for v in line.split(",")] for line in f if line.strip()])
    with np.load(PACKAGE / "digits.npz") as f:
        np.testing.assert_array_equal(f["images"].reshape(-1, 64), table[:, :64])
        np.testing.assert_array_equal(f["labels"], table[:, 64])
        shipped_test = f["test"]
    # The split is the one the documented rule gives.
    digits_module = sys.modules["minidl.data.digits"]
    digits_module.build_digits_npz(SHARED / "digits.csv.gz", tmp_path / "rebuilt.npz")
    with np.load(tmp_path / "rebuilt.npz") as f:
        np.testing.assert_array_equal(f["test"], shipped_test)
    rng_order = np.random.default_rng(0).permutation(len(table))
    for c in range(10):
        first40 = [i for i in rng_order if table[i, 64] == c][:40]
        assert set(np.flatnonzero(shipped_test & (table[:, 64] == c))) == set(first40)
