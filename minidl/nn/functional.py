"""minidl.nn.functional (imported as ``F``): every op as a plain function.

This module only gathers names, by topic; each op is defined (with its formula
and backward) in the ``minidl/ops/`` file named in the comment above its block.
"""

# ruff: noqa: F401, I001  (one block per topic, in the order a course meets them)

# Arithmetic, reductions, shapes, matrix products (ops/elementwise.py, reduce.py, shape.py,
# matmul.py, linear.py, embedding.py).
from minidl.ops.elementwise import (
    abs, add, clamp, div, exp, log, maximum, minimum, mul, neg, pow, sqrt, sub, where,
)
from minidl.ops.reduce import (
    amax, amin, argmax, argmin, logsumexp, max, mean, min, std, sum, var,
)
from minidl.ops.shape import (
    cat, expand, flatten, getitem, pad, permute, reshape, split, squeeze, stack, transpose,
    unsqueeze, view,
)
from minidl.ops.matmul import matmul
from minidl.ops.linear import linear
from minidl.ops.embedding import embedding

# Activations and dropout (ops/activation.py, dropout.py).
from minidl.ops.activation import elu, gelu, leaky_relu, log_softmax, relu, sigmoid, softmax, tanh
from minidl.ops.dropout import dropout, dropout2d

# Losses (ops/loss.py).
from minidl.ops.loss import (
    binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy, huber_loss, kl_div,
    l1_loss, mse_loss, nll_loss, smooth_l1_loss,
)

# Gaussians for latent-variable models: closed-form KL, Gaussian NLL (ops/gaussian.py).
from minidl.ops.gaussian import gaussian_nll_loss, kl_normal

# Convolution, pooling, up-sampling, normalization (ops/conv.py, pool.py, upsample.py, norm.py).
from minidl.ops.conv import conv2d, conv_transpose2d
from minidl.ops.pool import (
    adaptive_avg_pool2d, adaptive_max_pool2d, avg_pool2d, max_pool2d, max_unpool2d,
)
from minidl.ops.upsample import interpolate
from minidl.ops.norm import batch_norm, group_norm, instance_norm, layer_norm

# Attention (ops/attention.py).
from minidl.ops.attention import scaled_dot_product_attention

# RoI pooling for detectors (ops/roi.py).
from minidl.ops.roi import roi_align, roi_pool
