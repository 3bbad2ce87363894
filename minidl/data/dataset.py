"""Datasets: indexable collections of samples (PyTorch's ``torch.utils.data`` names).

A dataset is anything with ``__len__`` and ``__getitem__(i) -> sample``. A
sample is usually a tuple ``(image, label)`` of NumPy arrays or numbers; the
``DataLoader`` groups samples into batches and turns the arrays into Tensors.
(In minidl datasets speak NumPy and the loader hands Tensors to the model.)

    class Squares(Dataset):
        def __len__(self):
            return 100
        def __getitem__(self, i):
            return np.float32(i), np.float32(i * i)
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from minidl import random
from minidl.autograd.tensor import Tensor


class Dataset:
    """Base class for map-style datasets: a subclass defines ``__getitem__(i)`` and
    ``__len__()``. (Any object with those two methods works with the DataLoader;
    subclassing just says what the class is for.)"""


class TensorDataset(Dataset):
    """Samples are rows of equally long arrays: ``ds[i] = (a[i], b[i], ...)``.

    Takes ndarrays or Tensors (their ``.data`` is used), e.g.
    ``TensorDataset(images [N, 1, 8, 8], labels [N])``. ``ds.arrays`` holds them.
    """

    def __init__(self, *arrays):
        if not arrays:
            raise ValueError("TensorDataset: expected at least one array")
        arrays = tuple(a.data if isinstance(a, Tensor) else np.asarray(a) for a in arrays)
        lengths = [len(a) if a.ndim > 0 else None for a in arrays]
        if None in lengths or len(set(lengths)) != 1:
            shapes = ", ".join(str(a.shape) for a in arrays)
            raise ValueError("TensorDataset: all arrays need the same first dimension "
                             f"(the number of samples), got shapes {shapes}")
        self.arrays = arrays

    def __getitem__(self, index):
        return tuple(a[index] for a in self.arrays)

    def __len__(self) -> int:
        return len(self.arrays[0])


class Subset(Dataset):
    """The samples of ``dataset`` at ``indices``, in that order."""

    def __init__(self, dataset, indices):
        self.dataset = dataset
        self.indices = np.asarray(indices, dtype=np.int64)

    def __getitem__(self, index):
        return self.dataset[int(self.indices[index])]

    def __len__(self) -> int:
        return len(self.indices)


def _resolve_lengths(lengths, n: int) -> list[int]:
    """Turn fractions summing to 1 into counts summing to n (PyTorch's rule: floor each,
    then give the leftover samples one by one to the first parts)."""
    lengths = list(lengths)
    if not lengths or not all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                              and x >= 0 for x in lengths):
        raise ValueError(f"random_split: lengths must be non-negative numbers, got {lengths}")
    if all(isinstance(x, numbers.Integral) for x in lengths):
        if sum(lengths) != n:
            raise ValueError(f"random_split: lengths sum to {sum(lengths)} but the dataset has "
                             f"{n} samples")
        return [int(x) for x in lengths]
    if not math.isclose(sum(lengths), 1.0, abs_tol=1e-6):
        raise ValueError(f"random_split: fractions must sum to 1, got {lengths} "
                         f"(sum {sum(lengths)})")
    counts = [int(math.floor(n * f)) for f in lengths]
    for i in range(n - sum(counts)):
        counts[i % len(counts)] += 1
    return counts


def as_generator(op: str, generator) -> np.random.Generator:
    """None -> minidl's global generator (set by ``minidl.manual_seed``); an int -> a
    fresh generator seeded with it; a ``np.random.Generator`` is used as is."""
    if generator is None:
        return random.generator()
    if isinstance(generator, np.random.Generator):
        return generator
    if isinstance(generator, numbers.Integral) and not isinstance(generator, bool):
        return np.random.default_rng(int(generator))
    raise TypeError(f"{op}: generator must be None, an int seed or a numpy Generator, "
                    f"got {type(generator).__name__}")


def random_split(dataset, lengths, generator=None) -> list[Subset]:
    """Split ``dataset`` into non-overlapping random ``Subset``s.

    ``lengths``: counts summing to ``len(dataset)``, or fractions summing to 1
    (``random_split(ds, [0.8, 0.2])``). The permutation comes from ``generator``
    (default: ``minidl.random.generator()``, so ``minidl.manual_seed`` fixes it).
    """
    n = len(dataset)
    counts = _resolve_lengths(lengths, n)
    order = as_generator("random_split", generator).permutation(n)
    ends = np.cumsum(counts)
    return [Subset(dataset, order[end - count:end]) for count, end in zip(counts, ends)]
