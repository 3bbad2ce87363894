"""Autograd core: Tensor (tensor.py), Function and the version counter (function.py), the
backward engine (engine.py), in-place rules (inplace.py), dtypes and the device (dtypes.py),
factories (creation.py), gradcheck, grad modes (mode.py), the per-op timer (profiler.py)."""

from minidl.autograd.tensor import Tensor  # noqa: I001  (Tensor first: the ops import it)
from minidl.autograd.function import Function
from minidl.autograd.engine import backward, unbroadcast
from minidl.autograd.gradcheck import GradcheckError, gradcheck
from minidl.autograd import profiler
from minidl.autograd.mode import (
    AnomalyError,
    detect_anomaly,
    enable_grad,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)

__all__ = [
    "Tensor", "Function", "backward", "unbroadcast", "gradcheck", "GradcheckError",
    "AnomalyError", "detect_anomaly", "enable_grad", "is_grad_enabled", "no_grad",
    "set_grad_enabled", "profiler",
]
