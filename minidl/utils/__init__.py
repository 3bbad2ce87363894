"""minidl.utils: helpers around the framework.

- ``jit``: numba settings (lazy compilation, the kernel cache folder)
- ``data``: PyTorch's path to DataLoader / Dataset / TensorDataset (from ``minidl.data``)
- ``graph``: ``draw_graph(tensor)``, the computation graph drawn with matplotlib
- ``lesson``, ``training``: what the lessons share

Each is imported when first used (the ``__getattr__`` below), so that importing the
kernels, which need ``jit``, loads neither the data tools nor matplotlib.
"""

import importlib

_LAZY_SUBMODULES = ("data", "graph", "jit", "lesson", "training")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"minidl.utils.{name}")
    if name == "draw_graph":
        return importlib.import_module("minidl.utils.graph").draw_graph
    raise AttributeError(f"module 'minidl.utils' has no attribute {name!r}")
