"""DataLoader (order, shuffling, seeding, drop_last, the fast path) and default_collate."""

from collections import namedtuple

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.data import DataLoader, Dataset, TensorDataset, default_collate, random_split


def small_dataset(n=10):
    x = np.arange(n * 3, dtype=np.float32).reshape(n, 3)
    y = np.arange(n, dtype=np.int64)
    return TensorDataset(x, y)


class Squares(Dataset):
    def __len__(self):
        return 7

    def __getitem__(self, i):
        return {"x": np.full(2, i, dtype=np.float32), "y": i * i, "name": f"s{i}"}


def test_loader_batches_in_order_without_shuffle():
    loader = DataLoader(small_dataset(10), batch_size=4)
    batches = list(loader)
    assert len(loader) == len(batches) == 3
    x, y = batches[0]
    assert isinstance(x, Tensor) and x.shape == (4, 3) and x.dtype == np.float32
    assert y.dtype == np.int64
    np.testing.assert_array_equal(np.concatenate([b[1].data for b in batches]), np.arange(10))
    assert batches[-1][0].shape == (2, 3)


def test_drop_last():
    loader = DataLoader(small_dataset(10), batch_size=4, drop_last=True)
    assert len(loader) == 2 and [b[1].shape for b in loader] == [(4,), (4,)]


def test_shuffle_is_a_permutation_and_changes_between_epochs():
    loader = DataLoader(small_dataset(20), batch_size=6, shuffle=True, generator=0)
    epoch1 = np.concatenate([y.data for _, y in loader])
    epoch2 = np.concatenate([y.data for _, y in loader])
    np.testing.assert_array_equal(np.sort(epoch1), np.arange(20))
    assert not np.array_equal(epoch1, epoch2)


def test_manual_seed_governs_shuffling_by_default():
    loader = DataLoader(small_dataset(20), batch_size=5, shuffle=True)

    def order():
        return [y.data.tolist() for _, y in loader]

    minidl.manual_seed(7)
    a = order()
    minidl.manual_seed(7)
    b = order()
    minidl.manual_seed(8)
    c = order()
    assert a == b and a != c


def test_explicit_generator():
    ds = small_dataset(20)
    a = [y.data.tolist() for _, y in DataLoader(ds, 5, shuffle=True,
                                                generator=np.random.default_rng(3))]
    minidl.manual_seed(0)  # does not affect an explicit generator
    b = [y.data.tolist() for _, y in DataLoader(ds, 5, shuffle=True,
                                                generator=np.random.default_rng(3))]
    assert a == b
    want = np.random.default_rng(3).permutation(20)
    np.testing.assert_array_equal(np.concatenate(a), want)


def test_fast_path_equals_sample_by_sample_collate():
    ds = small_dataset(13)
    sub = random_split(ds, [9, 4], generator=1)[0]
    for dataset in (ds, sub):
        fast = list(DataLoader(dataset, 4, shuffle=True, generator=5))
        slow = list(DataLoader(dataset, 4, shuffle=True, generator=5,
                               collate_fn=lambda s: default_collate(s)))
        for (xf, yf), (xs, ys) in zip(fast, slow):
            np.testing.assert_array_equal(xf.data, xs.data)
            np.testing.assert_array_equal(yf.data, ys.data)
            assert xf.dtype == xs.dtype and yf.dtype == ys.dtype


def test_default_collate_dicts_numbers_strings():
    batch = next(iter(DataLoader(Squares(), batch_size=3)))
    assert set(batch) == {"x", "y", "name"}
    np.testing.assert_array_equal(batch["x"].data, [[0, 0], [1, 1], [2, 2]])
    assert batch["y"].dtype == np.int64 and batch["y"].tolist() == [0, 1, 4]
    assert batch["name"] == ["s0", "s1", "s2"]


def test_default_collate_nested_and_types():
    Pair = namedtuple("Pair", "a b")
    out = default_collate([Pair(1.5, [np.zeros(2), True]), Pair(2.5, [np.ones(2), False])])
    assert isinstance(out, Pair)
    assert out.a.dtype == np.float32 and out.a.tolist() == [1.5, 2.5]
    assert isinstance(out.b, list)
    np.testing.assert_array_equal(out.b[0].data, [[0, 0], [1, 1]])
    assert out.b[1].dtype == bool
    t = default_collate([Tensor(np.ones(3)), Tensor(np.zeros(3))])
    assert t.shape == (2, 3) and t.dtype == np.float64
    s = default_collate([np.float64(1.0), np.float64(2.0)])
    assert s.dtype == np.float64


def test_default_collate_errors_point_to_collate_fn():
    with pytest.raises(ValueError, match="different shapes.*collate_fn"):
        default_collate([np.zeros((2, 4)), np.zeros((3, 4))])
    with pytest.raises(TypeError, match="don't know how to batch .*object"):
        default_collate([object(), object()])
    with pytest.raises(ValueError, match="different lengths"):
        default_collate([(1, 2), (1,)])


class Boxes(Dataset):
    """Variable number of boxes per image: the case for a custom collate_fn."""

    def __len__(self):
        return 5

    def __getitem__(self, i):
        return np.full((1, 4, 4), i, dtype=np.float32), np.zeros((i, 4), dtype=np.float32)


def test_custom_collate_fn_gets_the_list_of_samples():
    seen = []

    def collate(samples):
        seen.append(samples)
        images = Tensor(np.stack([s[0] for s in samples]))
        return images, [s[1] for s in samples]

    images, boxes = next(iter(DataLoader(Boxes(), batch_size=3, collate_fn=collate)))
    assert isinstance(seen[0], list) and len(seen[0]) == 3
    assert images.shape == (3, 1, 4, 4) and [b.shape for b in boxes] == [(0, 4), (1, 4), (2, 4)]


def test_loader_bad_input():
    with pytest.raises(ValueError, match="DataLoader: batch_size must be a positive int, got 0"):
        DataLoader(small_dataset(), batch_size=0)
    with pytest.raises(TypeError, match="DataLoader: dataset needs __getitem__ and __len__"):
        DataLoader(5)
    with pytest.raises(TypeError, match="DataLoader: generator must be"):
        DataLoader(small_dataset(), generator="seed")
