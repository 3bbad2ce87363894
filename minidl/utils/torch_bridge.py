"""A two-way door to PyTorch: move a state dict from minidl to PyTorch and back.

    from minidl.utils.torch_bridge import from_torch_state_dict, to_torch_state_dict

    torch_model.load_state_dict(to_torch_state_dict(model.state_dict()))     # minidl -> PyTorch
    model.load_state_dict(from_torch_state_dict(torch_model.state_dict()))   # PyTorch -> minidl

minidl's layers use PyTorch's parameter names and layouts (``Linear.weight`` is
``[out, in]``, ``Conv2d.weight`` ``[out, in / groups, kh, kw]``,
``ConvTranspose2d.weight`` ``[in, out / groups, kh, kw]``, an LSTM's
``weight_ih_l0`` stacks the gates i, f, g, o, BatchNorm keeps ``running_mean``,
``running_var`` and ``num_batches_tracked``), so the keys and shapes carry over
unchanged and only the array type changes: ndarrays (or minidl Tensors) one way,
``torch.Tensor`` the other. The matching model must be built on each side.

PyTorch is imported only when one of these functions is called, and is never a
dependency of minidl: without it they raise ImportError saying what to install.
To convert a file that ``torch.save`` wrote, where PyTorch is installed::

    minidl.save(from_torch_state_dict(torch.load("model.pt")), "model.npz")
"""

from __future__ import annotations

from collections import OrderedDict

import numpy as np

from minidl.autograd.tensor import Tensor


def _import_torch(caller: str):
    try:
        import torch
    except ImportError as error:
        raise ImportError(f"{caller} needs PyTorch, which is not installed (pip install torch). "
                          "minidl itself never needs it.") from error
    return torch


def to_torch_state_dict(state_dict) -> OrderedDict:
    """name -> ndarray (or minidl Tensor, or number) becomes name -> ``torch.Tensor`` (a copy),
    ready for ``torch_model.load_state_dict``. Keys and order are kept."""
    torch = _import_torch("to_torch_state_dict")
    _check_mapping("to_torch_state_dict", state_dict)
    out = OrderedDict()
    for key, value in state_dict.items():
        array = value.data if isinstance(value, Tensor) else np.asarray(value)
        if array.dtype.kind not in "biuf":
            raise TypeError(f"to_torch_state_dict: {key!r} holds {array.dtype} values; "
                            "expected numbers")
        out[key] = torch.from_numpy(np.array(array, copy=True))
    return out


def from_torch_state_dict(state_dict) -> OrderedDict:
    """name -> ``torch.Tensor`` becomes name -> ndarray (a copy, on the CPU, detached), ready
    for minidl's ``load_state_dict`` or ``minidl.save``. bfloat16, which NumPy lacks,
    becomes float32. Keys and order are kept."""
    torch = _import_torch("from_torch_state_dict")
    _check_mapping("from_torch_state_dict", state_dict)
    out = OrderedDict()
    for key, value in state_dict.items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"from_torch_state_dict: {key!r} is a {type(value).__name__}, not "
                            "a torch.Tensor; pass a module's state_dict()")
        value = value.detach().cpu()
        if value.dtype == torch.bfloat16:
            value = value.float()
        out[key] = value.numpy().copy()
    return out


def _check_mapping(caller: str, state_dict) -> None:
    if not hasattr(state_dict, "items"):
        raise TypeError(f"{caller}: expected a state dict (name -> array), "
                        f"got {type(state_dict).__name__}")
