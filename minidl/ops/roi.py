"""RoI pooling primitives: ``roi_pool`` (Fast R-CNN) and ``roi_align`` (Mask R-CNN).

Both turn every region of interest into a fixed-size feature block, so one
fully connected head can classify regions of any size:

    input: [N, C, H, W] features, boxes -> [K, C, out_h, out_w]

``boxes`` is either a [K, 5] array/Tensor of rows (batch_index, x1, y1, x2, y2)
or a list of N per-image [K_i, 4] arrays/Tensors (xyxy), in input-image
coordinates; ``spatial_scale`` maps them onto the feature map (1/16 for a
stride-16 backbone). Names, arguments and numbers follow torchvision.ops.

* roi_pool (Girshick, Fast R-CNN, 2015): round the scaled box to whole cells
  (C's round, halves away from zero), take width = max(x2 - x1 + 1, 1) (inclusive
  ends), split into out_h x out_w bins with floor/ceil boundaries and max-pool
  each. Gradient: to the argmax of each bin (input only; the rounding makes the
  output piecewise constant in the boxes, so they get no gradient).
* roi_align (He et al., Mask R-CNN, 2017): no rounding; average grid_h x grid_w
  bilinear samples per bin (``sampling_ratio`` > 0 fixed, else ceil(roi_h / out_h)).
  ``aligned=True`` shifts the box by -0.5 pixel so that pixel centres sit at
  +0.5 (Detectron2's fix); ``aligned=False`` (torchvision's default) clamps the
  box to at least 1 x 1. Samples with y < -1 or y > H are 0 and others are
  clamped into [0, H - 1]. Gradient: to the input, and (an extension beyond
  torchvision) to the box coordinates, exact away from the points where the
  adaptive grid size or a clamp changes.

Kernels: ``minidl.kernels.roi``. Bad input (non-finite boxes, x2 < x1, a batch
index that is not an integer in [0, N)) raises ValueError before anything runs.
The features follow the dtype policy of ``minidl.ops.checks.kernel_array``:
float32 or float64 (integer, bool and float16 features raise a TypeError naming
the op; an array in non-native byte order is read in native order). The boxes
are converted to the features' dtype. An empty box set gives a
[0, C, out_h, out_w] result.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function, as_array
from minidl.autograd.mode import is_grad_enabled
from minidl.autograd.tensor import Tensor
from minidl.kernels.roi import (
    roi_align_backward_boxes_kernel,
    roi_align_backward_kernel,
    roi_align_forward_kernel,
    roi_pool_backward_kernel,
    roi_pool_forward_kernel,
)
from minidl.ops.checks import kernel_array
from minidl.ops.conv import pair_arg
from minidl.ops.shape import cat


class RoIPool(Function):
    """out[k, c, ph, pw] = max over bin (ph, pw) of RoI k;  d out / d input = 1 at the argmax."""

    def forward(ctx, input, rois, output_size=None, spatial_scale=1.0, with_argmax=True):
        input = kernel_array(input, "roi_pool")
        rois = np.ascontiguousarray(rois, dtype=input.dtype)
        out, argmax = roi_pool_forward_kernel(input, rois, output_size[0], output_size[1],
                                              spatial_scale, with_argmax)
        ctx.save_for_backward(argmax, rois)
        ctx.input_shape = input.shape
        return out

    def backward(ctx, grad):
        argmax, rois = ctx.saved_tensors
        n, _, h, w = ctx.input_shape
        return roi_pool_backward_kernel(np.ascontiguousarray(grad), argmax, rois, n, h, w), None


class RoIAlign(Function):
    """out[k, c, ph, pw] = (1 / count) sum over the bin's samples of bilinear(input[n_k, c], y, x);
    gradients to the input (bilinear weights) and to the box coordinates."""

    def forward(ctx, input, rois, output_size=None, spatial_scale=1.0, sampling_ratio=-1,
                aligned=False):
        input = kernel_array(input, "roi_align")
        rois = np.ascontiguousarray(rois, dtype=input.dtype)
        ctx.params = (spatial_scale, sampling_ratio, aligned)
        ctx.save_for_backward(input, rois)
        return roi_align_forward_kernel(input, rois, output_size[0], output_size[1], *ctx.params)

    def backward(ctx, grad):
        input, rois = ctx.saved_tensors
        need_input, need_rois = ctx.needs_input_grad
        grad = np.ascontiguousarray(grad)
        n, _, h, w = input.shape
        grad_input = grad_rois = None
        if need_input:
            grad_input = roi_align_backward_kernel(grad, rois, n, h, w, *ctx.params)
        if need_rois:
            grad_rois = roi_align_backward_boxes_kernel(grad, input, rois, *ctx.params)
        return grad_input, grad_rois


# ---- argument handling -------------------------------------------------------
def convert_boxes_to_roi_format(boxes, op: str = "roi_align"):
    """A list of per-image [K_i, 4] boxes -> [K, 5] rows (i, x1, y1, x2, y2); a [K, 5]
    array/Tensor is returned as it is. Stays a Tensor (through ``cat``) when a box
    Tensor is given, so gradients reach the per-image boxes."""
    if not isinstance(boxes, (list, tuple)):
        return boxes
    for i, b in enumerate(boxes):
        shape = as_array(b).shape
        if len(shape) != 2 or shape[1] != 4:
            raise ValueError(f"{op}: boxes[{i}] must have shape [K_i, 4], got {shape}")
    if not any(isinstance(b, Tensor) for b in boxes):
        rows = [np.concatenate([np.full((len(b), 1), i, dtype=np.float64),
                                np.asarray(b, dtype=np.float64)], axis=1)
                for i, b in enumerate(boxes)]
        return np.concatenate(rows or [np.zeros((0, 5))], axis=0)
    parts = []
    for i, b in enumerate(boxes):
        b = b if isinstance(b, Tensor) else Tensor(np.asarray(b, dtype=np.float64))
        index = Tensor(np.full((b.shape[0], 1), i, dtype=b.dtype))
        parts.append(cat([index, b], dim=1))
    return cat(parts, dim=0)


def check_rois(input, rois, op: str) -> None:
    """ValueError unless input is [N, C, H, W] and rois [K, 5] with finite coordinates,
    x1 <= x2, y1 <= y2 and integral batch indices in [0, N)."""
    data, r = as_array(input), as_array(rois)
    if data.ndim != 4:
        raise ValueError(f"{op}: input must have shape [N, C, H, W], got {data.shape}")
    if r.ndim != 2 or r.shape[1] != 5:
        raise ValueError(f"{op}: boxes must be [K, 5] rows (batch_index, x1, y1, x2, y2) or a list "
                         f"of [K_i, 4], got shape {r.shape}")
    if not np.isfinite(r).all():
        k = int(np.argmin(np.isfinite(r).all(axis=1)))
        raise ValueError(f"{op}: RoI {k} has a non-finite value: {r[k].tolist()}")
    index = r[:, 0]
    bad = (index != np.round(index)) | (index < 0) | (index >= data.shape[0])
    if bad.any():
        k = int(np.argmax(bad))
        raise ValueError(f"{op}: RoI {k} has batch index {index[k]}, expected an integer in "
                         f"[0, {data.shape[0]}) (input has {data.shape[0]} images)")
    flipped = (r[:, 3] < r[:, 1]) | (r[:, 4] < r[:, 2])
    if flipped.any():
        k = int(np.argmax(flipped))
        raise ValueError(f"{op}: RoI {k} = {r[k].tolist()} has x2 < x1 or y2 < y1")


def _check_scale(spatial_scale, op):
    if not (np.isfinite(spatial_scale) and spatial_scale > 0):
        raise ValueError(f"{op}: spatial_scale must be a positive number, got {spatial_scale}")


# ---- functional forms -------------------------------------------------------
def roi_pool(input, boxes, output_size, spatial_scale: float = 1.0):
    """Fast R-CNN's RoI max pooling (torchvision.ops.roi_pool).

    input: [N, C, H, W]; boxes: [K, 5] or list of [K_i, 4]; output_size: int or
    (out_h, out_w) -> [K, C, out_h, out_w]. Differentiable in ``input``.
    """
    size = pair_arg(output_size, "output_size", "roi_pool", 1)
    _check_scale(spatial_scale, "roi_pool")
    rois = convert_boxes_to_roi_format(boxes, "roi_pool")
    check_rois(input, rois, "roi_pool")
    # Only the backward reads the argmax: without a gradient to come (evaluation, no_grad)
    # the kernel keeps just the maxima, a scan about 3x faster.
    gradient_to_come = is_grad_enabled() and isinstance(input, Tensor) and input.requires_grad
    return RoIPool.apply(input, as_array(rois), output_size=size,
                         spatial_scale=float(spatial_scale), with_argmax=gradient_to_come)


def roi_align(input, boxes, output_size, spatial_scale: float = 1.0, sampling_ratio: int = -1,
              aligned: bool = False):
    """Mask R-CNN's RoIAlign (torchvision.ops.roi_align).

    input: [N, C, H, W]; boxes: [K, 5] or list of [K_i, 4]; output_size: int or
    (out_h, out_w); sampling_ratio: samples per bin side (<= 0: adaptive,
    ceil(roi_h / out_h)); aligned: half-pixel offset -> [K, C, out_h, out_w].
    Differentiable in ``input`` and in the box coordinates.
    """
    size = pair_arg(output_size, "output_size", "roi_align", 1)
    _check_scale(spatial_scale, "roi_align")
    rois = convert_boxes_to_roi_format(boxes, "roi_align")
    check_rois(input, rois, "roi_align")
    return RoIAlign.apply(input, rois, output_size=size, spatial_scale=float(spatial_scale),
                          sampling_ratio=int(sampling_ratio), aligned=bool(aligned))
