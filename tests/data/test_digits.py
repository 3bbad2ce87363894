"""The shipped UCI digits: shapes, split, resizing, the dataset, the licence, the source CSV."""

import gzip
import sys
from pathlib import Path

import numpy as np
import pytest

import minidl.data
from minidl.data import DigitsDataset, digits
from tests.data.test_transforms import bilinear_loops

SHARED = Path(__file__).parents[2] / ".." / "shared" / "data"
PACKAGE = Path(minidl.data.__file__).parent


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
