"""Dataset, TensorDataset, Subset and random_split."""


import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.data import Dataset, Subset, TensorDataset, random_split


def small_dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return {"x": np.full(2, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


def test_tensor_dataset_items_and_len():
    ds = TensorDataset(Tensor(np.ones((4, 2))), np.arange(4))
    assert len(ds) == 4
    x, y = ds[2]
    np.testing.assert_array_equal(x, [1, 1])
    assert y == 2
    with pytest.raises(ValueError, match=r"TensorDataset: all arrays need the same first "
                                         r"dimension .*\(4, 2\), \(3,\)"):
        TensorDataset(np.ones((4, 2)), np.ones(3))


def test_random_split_counts_and_fractions():
    ds = small_dataset(10)
    a, b = random_split(ds, [7, 3], generator=0)
    assert isinstance(a, Subset) and (len(a), len(b)) == (7, 3)
    together = np.sort(np.concatenate([a.indices, b.indices]))
    np.testing.assert_array_equal(together, np.arange(10))
    parts = random_split(ds, [0.5, 0.3, 0.2], generator=0)
    assert [len(p) for p in parts] == [5, 3, 2]
    parts = random_split(small_dataset(11), [0.5, 0.5], generator=0)
    assert [len(p) for p in parts] == [6, 5]   # leftover goes to the first part
    np.testing.assert_array_equal(a[0][0], ds[int(a.indices[0])][0])


def test_random_split_is_seeded():
    ds = small_dataset(10)
    minidl.manual_seed(3)
    a = random_split(ds, [5, 5])[0].indices
    minidl.manual_seed(3)
    b = random_split(ds, [5, 5])[0].indices
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(random_split(ds, [5, 5], generator=4)[0].indices,
                                  np.random.default_rng(4).permutation(10)[:5])


@pytest.mark.parametrize("lengths, match", [
    ([5, 4], "lengths sum to 9 but the dataset has 10"),
    ([0.5, 0.4], "fractions must sum to 1"),
    ([-1, 11], "lengths must be non-negative"),
])
def test_random_split_bad_lengths(lengths, match):
    with pytest.raises(ValueError, match=f"random_split: {match}"):
        random_split(small_dataset(10), lengths)


def test_random_split_fractions_floor_then_give_leftovers_from_the_first_part():
    """PyTorch's rule. 7 * [0.3, 0.3, 0.4] = [2.1, 2.1, 2.8]: floors [2, 2, 2] and one leftover
    for the first part gives [3, 2, 2]; rounding ([2, 2, 3]) or largest remainder ([2, 2, 3])
    would differ, and so would giving leftovers to the last part."""
    parts = random_split(small_dataset(7), [0.3, 0.3, 0.4], generator=0)
    assert [len(p) for p in parts] == [3, 2, 2]
    parts = random_split(small_dataset(10), [0.15, 0.15, 0.7], generator=0)  # 1.5, 1.5, 7
    assert [len(p) for p in parts] == [2, 1, 7]
