"""minidl: a deep-learning framework written from scratch on NumPy, with numba kernels.

    import minidl
    import minidl.nn as nn
    import minidl.nn.functional as F

Tiers (DESIGN.md at the root of the repository maps the code): numba kernels
(``minidl.kernels``), primitives with a hand-written backward (``minidl.ops``), and
composites built from primitives.

``minidl.nn``, ``minidl.optim``, ``minidl.data``, ``minidl.utils`` (with
``minidl.utils.data``, PyTorch's path to the DataLoader) and ``minidl.vision`` load
on first use (the module ``__getattr__`` at the end), so ``import minidl`` stays fast.
"""

import importlib

import numpy as np

from minidl import cuda
from minidl.autograd import (  # noqa: I001
    AnomalyError,
    Function,
    GradcheckError,
    Tensor,
    detect_anomaly,
    enable_grad,
    gradcheck,
    is_grad_enabled,
    no_grad,
    set_grad_enabled,
)
from minidl.autograd.creation import (
    arange,
    as_tensor,
    empty,
    empty_like,
    eye,
    from_numpy,
    full,
    full_like,
    is_tensor,
    linspace,
    multinomial,
    ones,
    ones_like,
    rand,
    rand_like,
    randint,
    randn,
    randn_like,
    tensor,
    zeros,
    zeros_like,
)
from minidl.autograd.dtypes import device
from minidl.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from minidl.ops.elementwise import (
    abs,
    add,
    bitwise_and,
    bitwise_not,
    bitwise_or,
    bitwise_xor,
    clamp,
    cos,
    div,
    eq,
    exp,
    floor_divide,
    ge,
    gt,
    le,
    log,
    lt,
    maximum,
    minimum,
    mul,
    ne,
    neg,
    pow,
    remainder,
    sin,
    sqrt,
    sub,
    where,
)
from minidl.ops.indexing import gather, masked_fill, nonzero, scatter, scatter_add
from minidl.ops.matmul import bmm, matmul, mm
from minidl.ops.reduce import (
    all,
    amax,
    amin,
    any,
    argmax,
    argmin,
    logsumexp,
    max,
    mean,
    min,
    std,
    sum,
    var,
)
from minidl.ops.shape import (
    cat,
    chunk,
    clone,
    expand,
    flatten,
    narrow,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    t,
    transpose,
    unsqueeze,
)
from minidl.ops.sort import argsort, sort, topk
from minidl.random import manual_seed
from minidl.serialization import load, save
from minidl.utils.allocator import keep_freed_memory

keep_freed_memory()  # freed arrays stay in the heap for the next step (utils/allocator.py)

__version__ = "0.1.0"

_LAZY_SUBMODULES = ("nn", "optim", "data", "utils", "vision")


def __getattr__(name):
    """``minidl.nn`` and the other big subpackages, imported the first time they are used."""
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"minidl.{name}")
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")


# dtypes, with PyTorch's names (minidl/autograd/dtypes.py). Last in this file: ``float``,
# ``int`` and ``bool`` shadow Python's own names here, so nothing below may use those.
float16 = half = np.float16
float32 = float = np.float32
float64 = double = np.float64
int8 = np.int8
int16 = short = np.int16
int32 = int = np.int32
int64 = long = np.int64
uint8 = np.uint8
bool = np.bool_
