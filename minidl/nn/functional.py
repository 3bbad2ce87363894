"""minidl.nn.functional (imported as ``F``): every op as a plain function.

This module only gathers names; each op is defined (with its formula and
backward) in ``minidl.ops`` or, for the vision ops, ``minidl.vision``.
"""

# ruff: noqa: F401, I001  (one import block per area, in the order the areas were added)
from minidl.ops.activation import elu, gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minidl.ops.elementwise import (
    abs, add, clamp, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where,
)
from minidl.ops.matmul import matmul
from minidl.ops.reduce import (
    amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var,
)
from minidl.ops.shape import (
    cat, expand, flatten, getitem, pad, permute, reshape, split, squeeze, stack, transpose,
    unsqueeze, view,
)

# Each area adds its block below (one block per area, kept in this order).

# Losses, dropout, linear, embedding (nn helper).
from minidl.nn.embedding import embedding
from minidl.nn.linear import linear
from minidl.ops.dropout import dropout, dropout2d
from minidl.ops.loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, mse_loss, nll_loss, smooth_l1_loss,
)

# vision: RoI pooling (minidl/ops/roi.py)
from minidl.ops.roi import roi_align, roi_pool

# Convolution, pooling, up-sampling, normalization (ops/conv.py, pool.py, upsample.py, norm.py).
from minidl.ops.conv import conv2d, conv_transpose2d
from minidl.ops.norm import batch_norm, group_norm, instance_norm, layer_norm
from minidl.ops.pool import (
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d, max_unpool2d,
)
from minidl.ops.upsample import interpolate
