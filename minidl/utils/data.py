"""minidl.utils.data: PyTorch's path to the data tools (``torch.utils.data``).

    from minidl.utils.data import DataLoader, Dataset, TensorDataset

The classes live in ``minidl.data`` (see there); this module only gives them
the address PyTorch code imports them from.
"""

# ruff: noqa: F401
from minidl.data.dataset import Dataset, Subset, TensorDataset, random_split
from minidl.data.loader import DataLoader, default_collate
