"""The UCI handwritten digits, shipped inside minidl (no download needed).

Data set: "Optical Recognition of Handwritten Digits", E. Alpaydin and
C. Kaynak (1998), UCI Machine Learning Repository,
https://doi.org/10.24432/C50P49, licensed CC BY 4.0. minidl ships the 1,797
images of its test part (the copy scikit-learn distributes as ``load_digits``):
43 writers' digits, scanned as 32x32 bitmaps, split into 4x4 blocks whose
on-pixels were counted, so each image is 8x8 with values 0..16. See
``DIGITS_LICENSE.txt`` next to this file.

``digits.npz`` holds ``images`` (uint8 [1797, 8, 8]), ``labels`` (uint8
[1797]) in the order of the original file, and ``test`` (bool [1797]), the
fixed test split: 40 images of each class, 400 in all, leaving 1,397 for
training. It was chosen once by ``build_digits_npz``: walk the permutation
``np.random.default_rng(0).permutation(1797)`` and take the first 40 images of
each class. The mask is stored, not recomputed, so it never changes.

    images, labels = digits("train")           # [1397, 1, 8, 8] float32 in [0, 1], [1397] int64
    images, labels = digits("test", size=28)   # bilinearly resized to 28x28
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np

from minidl.data.dataset import TensorDataset
from minidl.data.transforms import resize_bilinear

DIGITS_FILE = Path(__file__).resolve().with_name("digits.npz")
TEST_PER_CLASS = 40
SPLIT_SEED = 0


def digits(split: str = "train", size: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """The UCI digits as ``(images, labels)``.

    split: 'train' (1,397 images), 'test' (400, 40 per class) or 'all' (1,797).
    size: 8 (the original) or any other side length, e.g. 16 or 28, reached by
    bilinear resizing (``resize_bilinear``, PyTorch's align_corners=False).
    Returns images float32 [N, 1, size, size] with values in [0, 1] (the counts
    0..16 divided by 16) and labels int64 [N] in 0..9, in the file's order.
    """
    if split not in ("train", "test", "all"):
        raise ValueError(f"digits: split must be 'train', 'test' or 'all', got {split!r}")
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"digits: size must be a positive int such as 8, 16 or 28, got {size!r}")
    with np.load(DIGITS_FILE) as f:
        images, labels, test = f["images"], f["labels"], f["test"]
    keep = {"train": ~test, "test": test, "all": np.ones_like(test)}[split]
    x = (images[keep].astype(np.float32) / 16.0)[:, None]
    if size != 8:
        x = np.clip(resize_bilinear(x, size), 0.0, 1.0)  # clip: float rounding only
    return np.ascontiguousarray(x, dtype=np.float32), labels[keep].astype(np.int64)


class DigitsDataset(TensorDataset):
    """``TensorDataset(*digits(split, size))``: samples ``(image [1, s, s], label)``."""

    def __init__(self, split: str = "train", size: int = 8):
        super().__init__(*digits(split, size))
        self.split, self.size = split, size


def read_digits_csv(csv_path) -> tuple[np.ndarray, np.ndarray]:
    """Read the UCI digits as distributed (one image a line: 64 counts, then the label;
    gzip allowed). Returns images uint8 [N, 8, 8] and labels uint8 [N]."""
    opener = gzip.open if str(csv_path).endswith(".gz") else open
    with opener(csv_path, "rt") as f:
        table = np.loadtxt(f, delimiter=",", dtype=np.int64, ndmin=2)
    if table.shape[1] != 65 or table[:, :64].min() < 0 or table[:, :64].max() > 16:
        raise ValueError(f"read_digits_csv: expected rows of 64 counts in 0..16 plus a label, "
                         f"got a table of shape {table.shape}")
    return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64].astype(np.uint8)


def stratified_test_mask(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """A bool mask choosing ``per_class`` samples of each label: the first ones met
    while walking ``np.random.default_rng(seed).permutation(len(labels))``."""
    mask = np.zeros(len(labels), dtype=bool)
    taken: dict[int, int] = {}
    for i in np.random.default_rng(seed).permutation(len(labels)):
        c = int(labels[i])
        if taken.get(c, 0) < per_class:
            taken[c] = taken.get(c, 0) + 1
            mask[i] = True
    return mask


def build_digits_npz(csv_path, out_path=DIGITS_FILE) -> None:
    """How ``digits.npz`` was made from the distributed CSV (run once, by hand)."""
    images, labels = read_digits_csv(csv_path)
    test = stratified_test_mask(labels, TEST_PER_CLASS, SPLIT_SEED)
    np.savez_compressed(out_path, images=images, labels=labels, test=test)
