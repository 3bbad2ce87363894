"""minidl: a deep-learning framework written from scratch on NumPy, with numba kernels.

    import minidl
    import minidl.nn as nn
    import minidl.nn.functional as F

Tiers (see DESIGN.md): numba kernels (``minidl.kernels``), primitives with a
hand-written backward (``minidl.ops``), and composites built from primitives.
"""

import numpy as np

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
    eye,
    full,
    ones,
    ones_like,
    rand,
    randint,
    randn,
    tensor,
    zeros,
    zeros_like,
)
from minidl.ops.activation import log_softmax, relu, sigmoid, softmax, tanh
from minidl.ops.elementwise import (
    abs,
    add,
    clamp,
    div,
    exp,
    log,
    maximum,
    minimum,
    mul,
    neg,
    pow,
    sqrt,
    sub,
    where,
)
from minidl.ops.matmul import matmul
from minidl.ops.reduce import amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var
from minidl.ops.shape import (
    cat,
    expand,
    flatten,
    permute,
    reshape,
    split,
    squeeze,
    stack,
    transpose,
    unsqueeze,
)
from minidl.random import manual_seed
from minidl.serialization import load, save
from minidl.utils.allocator import keep_freed_memory

keep_freed_memory()  # freed arrays stay in the heap for the next step (utils/allocator.py)

float32 = np.float32
float64 = np.float64
int64 = np.int64

__version__ = "0.1.0"
