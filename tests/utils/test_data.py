"""minidl.utils.data: PyTorch's import path gives the same classes as minidl.data."""

import numpy as np

import minidl
import minidl.data


def test_same_classes_as_minidl_data():
    from minidl.utils.data import DataLoader, Dataset, Subset, TensorDataset, random_split

    assert DataLoader is minidl.data.DataLoader and Dataset is minidl.data.Dataset
    assert TensorDataset is minidl.data.TensorDataset and Subset is minidl.data.Subset
    assert random_split is minidl.data.random_split
    assert minidl.utils.data.DataLoader is DataLoader
    loader = DataLoader(TensorDataset(np.arange(6.0), np.arange(6)), batch_size=4)
    assert [len(x) for x, _ in loader] == [4, 2]
