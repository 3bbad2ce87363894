"""DataLoader: iterate over a dataset in (shuffled) minibatches of Tensors.

    loader = DataLoader(TensorDataset(images, labels), batch_size=64, shuffle=True)
    for x, y in loader:          # x: Tensor [64, 1, 8, 8] float32, y: Tensor [64] int64
        ...

Each epoch (each ``for`` over the loader) draws a fresh permutation when
``shuffle=True``. The permutation comes from ``generator``: by default
minidl's global generator, so ``minidl.manual_seed(s)`` fixes the batch order
of every epoch; pass your own ``np.random.Generator`` (or an int seed) to give
the loader a stream of its own. The samples of a batch are merged by
``collate_fn`` (default: ``default_collate``).
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence

import numpy as np

from minidl import random
from minidl.autograd.tensor import DEFAULT_FLOAT, Tensor
from minidl.data.dataset import Subset, TensorDataset, as_generator


def default_collate(samples: list):
    """Merge a list of samples into one batch, recursively:

    - arrays / Tensors of equal shape ``[...]`` -> a Tensor ``[B, ...]`` (dtype kept);
    - Python numbers -> a Tensor ``[B]``: all bools -> bool, all ints (bools count as
      ints) -> int64, any float among them -> float32, so ``[1, 2.5]`` stays
      ``[1.0, 2.5]`` (minidl's default float; PyTorch gives float32 when the first
      is an int and float64 when it is a float); NumPy scalars and 0-d arrays are
      stacked, so NumPy's promotion decides (``[np.int64(1), np.float64(2.5)]`` ->
      float64), as in PyTorch;
    - tuples / lists -> the same kind of sequence, each field collated
      (``[(x0, y0), (x1, y1)] -> (X, Y)``); dicts -> a dict, each key collated;
    - strings -> a list of strings.

    Samples whose arrays differ in shape (e.g. a variable number of boxes per
    image) cannot be stacked: pass ``collate_fn`` to the DataLoader instead,
    e.g. ``collate_fn=lambda batch: tuple(zip(*batch))`` keeps them as lists.
    """
    if not samples:
        raise ValueError("default_collate: got an empty batch")
    elem = samples[0]
    if isinstance(elem, (Tensor, np.ndarray, np.generic)):
        arrays = [s.data if isinstance(s, Tensor) else np.asarray(s) for s in samples]
        shapes = {a.shape for a in arrays}
        if len(shapes) > 1:
            raise ValueError(f"default_collate: cannot stack arrays of different shapes "
                             f"{sorted(shapes)}; pass a collate_fn to the DataLoader for "
                             "variable-size samples")
        return Tensor(np.stack(arrays))
    if isinstance(elem, numbers.Number):
        return Tensor(np.array(samples, dtype=_python_number_dtype(samples)))
    if isinstance(elem, (str, bytes)):
        return list(samples)
    if isinstance(elem, Mapping):
        return {key: default_collate([s[key] for s in samples]) for key in elem}
    if isinstance(elem, Sequence):
        if any(len(s) != len(elem) for s in samples):
            raise ValueError("default_collate: samples in a batch have different lengths "
                             f"({sorted({len(s) for s in samples})}); pass a collate_fn")
        fields = [default_collate(list(field)) for field in zip(*samples)]
        if isinstance(elem, tuple) and hasattr(elem, "_fields"):  # namedtuple
            return type(elem)(*fields)
        return tuple(fields) if isinstance(elem, tuple) else fields
    raise TypeError(f"default_collate: don't know how to batch samples of type "
                    f"{type(elem).__name__}; pass a collate_fn to the DataLoader")


def _python_number_dtype(samples: list) -> type:
    """bool if all are bools, int64 if all are ints (or bools), float32 if any is a float."""
    for s in samples:
        if not isinstance(s, numbers.Real):
            raise TypeError(f"default_collate: a batch of Python numbers also holds "
                            f"{type(s).__name__} ({s!r}); pass a collate_fn to the DataLoader")
    if all(isinstance(s, bool) for s in samples):
        return bool
    if all(isinstance(s, numbers.Integral) for s in samples):
        return np.int64
    return DEFAULT_FLOAT


class DataLoader:
    """DataLoader(dataset, batch_size=1, shuffle=False, drop_last=False, collate_fn=None,
    generator=None).

    - ``batch_size``: samples per batch; the last batch is smaller unless ``drop_last``.
    - ``shuffle``: a new random order each epoch, drawn from ``generator``.
    - ``collate_fn(list_of_samples) -> batch``: default ``default_collate``.
    - ``generator``: None (minidl's global generator, read at the start of each
      epoch so that ``minidl.manual_seed`` takes effect), an int seed, or a
      ``np.random.Generator``.

    ``len(loader)`` is the number of batches per epoch.
    """

    def __init__(self, dataset, batch_size: int = 1, shuffle: bool = False,
                 drop_last: bool = False, collate_fn=None, generator=None):
        if not hasattr(dataset, "__getitem__") or not hasattr(dataset, "__len__"):
            raise TypeError("DataLoader: dataset needs __getitem__ and __len__, got "
                            f"{type(dataset).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Integral) \
                or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be a positive int, got {batch_size!r}")
        if collate_fn is not None and not callable(collate_fn):
            raise TypeError("DataLoader: collate_fn must be a function of a list of samples")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        self.collate_fn = collate_fn if collate_fn is not None else default_collate
        self.generator = None if generator is None else as_generator("DataLoader", generator)

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self):
        n = len(self.dataset)
        if self.shuffle:
            rng = self.generator if self.generator is not None else random.generator()
            order = rng.permutation(n)
        else:
            order = np.arange(n)
        for b in range(len(self)):
            yield self.fetch(order[b * self.batch_size:(b + 1) * self.batch_size])

    def fetch(self, indices: np.ndarray):
        """The batch of the samples at ``indices``."""
        if self.collate_fn is default_collate:
            arrays, rows = _tensor_dataset_rows(self.dataset, indices)
            if arrays is not None:
                # Same result as collating sample by sample, with one fancy index per array.
                return tuple(Tensor(a[rows]) for a in arrays)
        return self.collate_fn([self.dataset[int(i)] for i in indices])


def _tensor_dataset_rows(dataset, indices):
    """If ``dataset`` is a TensorDataset (possibly inside Subsets), its arrays and the
    rows that ``indices`` refer to; else (None, None)."""
    while type(dataset) is Subset:  # a subclass may change __getitem__: use it as is
        indices = dataset.indices[indices]
        dataset = dataset.dataset
    plain = type(dataset).__getitem__ is TensorDataset.__getitem__  # not overridden
    if isinstance(dataset, TensorDataset) and plain:
        return dataset.arrays, indices
    return None, None
