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


@pytest.mark.parametrize("n, batch_size", [(12, 4), (12, 3), (4, 4), (1, 1), (13, 4), (3, 4)])
@pytest.mark.parametrize("drop_last", [False, True])
def test_len_is_the_number_of_batches_and_no_batch_is_empty(n, batch_size, drop_last):
    """Sizes that are multiples of the batch size included: there an off-by-one in __len__ gives
    an empty last batch (or loses the last full one) while other sizes look right."""
    loader = DataLoader(small_dataset(n), batch_size=batch_size, drop_last=drop_last)
    batches = list(loader)
    assert len(loader) == len(batches)
    assert all(len(y) > 0 for _, y in batches)
    sizes = [len(y) for _, y in batches]
    full, rest = divmod(n, batch_size)
    assert sizes == [batch_size] * full + ([rest] if rest and not drop_last else [])
    slow = list(DataLoader(small_dataset(n), batch_size, drop_last=drop_last,
                           collate_fn=default_collate))  # the sample-by-sample path
    assert [len(y) for _, y in slow] == sizes


@pytest.mark.parametrize("batch, dtype, values", [
    ([1, 2], np.int64, [1, 2]),
    ([1.5, 2.5], np.float32, [1.5, 2.5]),
    ([1, 2.5], np.float32, [1.0, 2.5]),     # an int first must not truncate 2.5 to 2
    ([2.5, 1], np.float32, [2.5, 1.0]),
    ([True, False], np.bool_, [True, False]),
    ([True, 2], np.int64, [1, 2]),          # a bool first must not turn 2 into True
    ([True, 0.5], np.float32, [1.0, 0.5]),
    ([np.int64(1), np.int64(2)], np.int64, [1, 2]),
    ([np.int32(1), np.int32(3)], np.int32, [1, 3]),
    ([np.float32(1.5), np.float32(2)], np.float32, [1.5, 2.0]),
    ([np.int64(1), np.float64(2.5)], np.float64, [1.0, 2.5]),  # NumPy promotion, as torch
])
def test_default_collate_of_numbers(batch, dtype, values):
    out = default_collate(batch)
    assert out.dtype == dtype
    np.testing.assert_array_equal(out.data, values)


def test_default_collate_of_labels_mixing_ints_and_floats_through_a_loader():
    class Targets(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return np.zeros(2, np.float32), [1, 2.5, 3, 0.25][i]

    _, y = next(iter(DataLoader(Targets(), batch_size=4)))
    np.testing.assert_array_equal(y.data, [1.0, 2.5, 3.0, 0.25])


def test_default_collate_of_numbers_mixed_with_other_things_is_a_clear_error():
    with pytest.raises(TypeError, match=r"default_collate: a batch of Python numbers also holds "
                                        r"str \('2'\)"):
        default_collate([1, "2"])
