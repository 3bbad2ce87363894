"""2-D convolution and transposed convolution: each is the other's adjoint over one im2col pair.

conv2d (cross-correlation, as in PyTorch), x: [N, C, H, W], w: [Cout, C/g, kh, kw]:

    y[n, o, oy, ox] = b[o] + sum_{c in group(o), i, j} w[o, c, i, j] x[n, c, iy, ix],
    iy = oy*s - p + i*d,  ix = ox*s - p + j*d   (x is 0 outside the image: zero padding)

With ``cols = im2col(x)`` (minidl/kernels/conv.py) that is a matrix product per
image and group, ``y = W @ cols`` with W = w.reshape(Cout, C/g*kh*kw). Its
gradients are matrix products too:

    dL/dW = sum_n dL/dy[n] @ cols[n]^T           dL/db = sum over n, oy, ox of dL/dy
    dL/dx = col2im(W^T @ dL/dy)                   (col2im is the transpose of im2col)

The transposed convolution (also called fractionally strided convolution or,
loosely, deconvolution; Zeiler et al. 2010, Dumoulin & Visin 2016 "A guide to
convolution arithmetic") is defined as that input gradient: with w: [Cin, Cout/g, kh, kw]

    conv_transpose2d(x, w) = col2im(W^T @ x)      W = w.reshape(Cin, Cout/g*kh*kw)

so its gradients are the convolution's forward pass and weight gradient with
the roles of input and output swapped. Three array functions do all the work:

    _correlate(image, w)          = W @ im2col(image)        conv forward, conv_t input grad
    _correlate_adjoint(plane, w)  = col2im(W^T @ plane)      conv input grad, conv_t forward
    _weight_grad(image, plane)    = sum_n plane @ im2col(image)^T

They run a few images at a time (``_chunk_size``, about 1 MB of columns): the
im2col buffer of a chunk stays in cache between the numba copy and the BLAS
product, and is reused for the next chunk. The images of a chunk sit side by side
in the columns, [C*kh*kw, B*Hout*Wout], so a chunk is one matrix product however
small its images; the output planes come back side by side too, [Cout, B*Hout*Wout],
and are copied into [B, Cout, Hout, Wout] (the bias added on the way). A small layer
(columns of at most 8 MB for the whole batch) keeps its columns from forward to
backward, so the weight gradient does not make them again. A 1x1 convolution with
stride 1 and no padding skips im2col altogether: its columns are the pixels themselves.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.kernels import conv as kernels
from minidl.ops.checks import check_float, kernel_array

# im2col buffer per chunk of images: about half of one core's L2 cache.
_CHUNK_BYTES = 1 << 20
# A conv2d whose columns (for the whole batch) take at most this many bytes keeps them from
# forward to backward, so the weight gradient does not im2col the input a second time. Small,
# few-channel layers spend much of their time in im2col; the memory it holds is bounded.
_KEEP_COLUMNS_BYTES = 8 << 20


def _chunk_size(n: int, bytes_per_image: int) -> int:
    """How many images to im2col at once so their columns fit in about _CHUNK_BYTES."""
    return max(1, min(n, _CHUNK_BYTES // max(1, bytes_per_image)))


def _is_pointwise(window, image_hw, out_hw) -> bool:
    """A 1x1 window, stride 1, no padding, same grid: im2col(image) is the image itself
    (one column per pixel), so the copy and col2im's scatter-add can be skipped."""
    return window[:6] == (1, 1, 1, 1, 0, 0) and tuple(image_hw) == tuple(out_hw)


class _Chunks:
    """Chunks of a batch of N images, and the two scratch matrices one chunk needs: ``cols``
    [K, B*L] (its columns) and ``planes`` [Cout, B*L] (its output planes side by side),
    allocated once for the largest chunk and reused. With ``keep``, each chunk's columns get
    an array of their own instead, collected in ``kept`` (for the backward pass)."""

    def __init__(self, N, K, Cout, out_hw, dtype, keep=False):
        L = out_hw[0] * out_hw[1]
        self.N, self.K, self.Cout, self.L, self.out_hw = N, K, Cout, L, tuple(out_hw)
        self.step = _chunk_size(N, K * L * np.dtype(dtype).itemsize)
        self.dtype, self.keep, self.kept = dtype, keep, []
        self._cols = None if keep else np.empty(K * self.step * L, dtype)
        self._planes = np.empty(Cout * self.step * L, dtype)

    def __iter__(self):
        """(k, n0, B): chunk k holds images n0 .. n0 + B - 1."""
        for k, n0 in enumerate(range(0, self.N, self.step)):
            yield k, n0, min(self.step, self.N - n0)

    def cols(self, B):
        """The columns of B images, [K, B*L] (contiguous)."""
        if self.keep:
            self.kept.append(np.empty((self.K, B * self.L), self.dtype))
            return self.kept[-1]
        return self._cols[:self.K * B * self.L].reshape(self.K, B * self.L)

    def planes(self, B, out):
        """Where to put B images' output planes side by side, [Cout, B*L]: the buffer, or
        for one image its own output ``out`` [1, Cout, *] (one plane needs no reordering)."""
        if B == 1:
            return out.reshape(self.Cout, self.L)
        return self._planes[:self.Cout * B * self.L].reshape(self.Cout, B * self.L)

    def image_major(self, planes, out, bias=None):
        """out[b, o, :] = planes[o, b*L:(b+1)*L] (+ bias[o]): [Cout, B*L] -> out [B, Cout, *]."""
        B = planes.shape[1] // self.L
        out = out.reshape(B, self.Cout, self.L)
        if B == 1:  # planes() handed out the output itself: only the bias is left to add
            if bias is not None:
                out += bias.reshape(-1, 1)
            return
        side_by_side = planes.reshape(self.Cout, B, self.L).transpose(1, 0, 2)
        if bias is None:
            np.copyto(out, side_by_side)
        else:
            np.add(side_by_side, bias.reshape(-1, 1), out=out)

    def side_by_side(self, images, B):
        """The inverse of image_major: images [B, Cout, *] -> planes [Cout, B*L] (for one
        image, the image itself)."""
        if B == 1:
            return images.reshape(self.Cout, self.L)
        planes = self.planes(B, None)
        np.copyto(planes.reshape(self.Cout, B, self.L),
                  images.reshape(B, self.Cout, self.L).transpose(1, 0, 2))
        return planes


def _columns(image, n0, B, window, chunks):
    """im2col of images n0 .. n0 + B - 1 into the chunk buffer: [K, B*L]."""
    cols = chunks.cols(B)
    kernels.im2col(image[n0:n0 + B], window, cols.reshape((chunks.K, B) + chunks.out_hw))
    return cols


def _correlate_chunk(cols, wg, B, chunks, out, bias):
    """out [B, Cout, *] = W_g @ cols_g (+ bias), for one chunk's columns."""
    G = wg.shape[0]
    planes = chunks.planes(B, out)
    np.matmul(wg, cols.reshape(G, chunks.K // G, -1), out=planes.reshape(G, chunks.Cout // G, -1))
    chunks.image_major(planes, out, bias)


def _weight_grad_chunk(cols, plane, B, chunks, grad):
    """grad [G, Cout/G, K/G] += plane_g @ cols_g^T, for one chunk (plane: [B, Cout, *])."""
    G = grad.shape[0]
    planes = chunks.side_by_side(plane, B)
    cols_t = cols.reshape(G, chunks.K // G, -1).transpose(0, 2, 1)  # [G, B*L, K/G], a view
    grad += np.matmul(planes.reshape(G, chunks.Cout // G, -1), cols_t)


def _correlate(image, w, window, groups, out_hw, bias=None):
    """y[n] = W_g @ im2col(image[n]) (+ bias) for each group g.

    image: [N, C, H, W];  w: [Cout, C/g, kh, kw]  ->  y: [N, Cout, Hout, Wout].
    """
    return _correlate_and_weight_grad(image, w.shape, window, groups, out_hw, w=w, bias=bias)[0]


def _weight_grad(image, plane, window, groups, w_shape, columns=None):
    """dW_g = sum_n plane_g[n] @ im2col(image[n])_g^T, shaped like the weight.

    image: [N, C, H, W];  plane: [N, Cout, Hout, Wout]  ->  [Cout, C/g, kh, kw].
    ``columns``: im2col(image) kept by the forward pass, if it kept them.
    """
    return _correlate_and_weight_grad(image, w_shape, window, groups, plane.shape[2:],
                                      plane=plane, columns=columns)[1]


def _correlate_and_weight_grad(image, w_shape, window, groups, out_hw, w=None, bias=None,
                               plane=None, columns=None, keep_columns=False):
    """(y, dW, kept columns): y = _correlate(image, w) if ``w`` is given, dW =
    _weight_grad(image, plane) if ``plane`` is, with one im2col of each chunk serving both
    (the backward of conv_transpose2d needs both).

    ``keep_columns``: if the whole batch's columns fit in _KEEP_COLUMNS_BYTES, return them
    (a list, one array per chunk; else None); ``columns``: such kept columns, used instead of
    im2col.
    """
    N, C = image.shape[:2]
    Cout, Cg, kh, kw = w_shape
    G, K, L = groups, C * kh * kw, out_hw[0] * out_hw[1]
    output = w is not None
    wg = w.reshape(G, Cout // G, K // G) if output else None
    y = np.empty((N, Cout) + tuple(out_hw), dtype=image.dtype) if output else None
    # dW is made in the weight's shape and summed into through a [G, Cout/G, K/G] view, so
    # that the array returned owns its memory: the engine hands such an array to the
    # weight's .grad as it is (a view would be copied first)
    weight_grad = grad = None
    if plane is not None:
        weight_grad = np.zeros(w_shape, dtype=image.dtype)
        grad = weight_grad.reshape(G, Cout // G, K // G)
    if _is_pointwise(window, image.shape[2:], out_hw):  # the columns are the image's pixels
        pixels = image.reshape(N, G, K // G, L)
        if output:
            np.matmul(wg, pixels, out=y.reshape(N, G, Cout // G, L))
            if bias is not None:
                y += bias.reshape(1, -1, 1, 1)
        if grad is not None:
            grad += np.matmul(plane.reshape(N, G, Cout // G, L),
                              pixels.transpose(0, 1, 3, 2)).sum(axis=0)
        return y, weight_grad, None
    keep = keep_columns and N * K * L * image.itemsize <= _KEEP_COLUMNS_BYTES
    chunks = _Chunks(N, K, Cout, out_hw, image.dtype, keep=keep)
    for k, n0, B in chunks:
        cols = columns[k] if columns is not None else _columns(image, n0, B, window, chunks)
        if output:
            _correlate_chunk(cols, wg, B, chunks, y[n0:n0 + B], bias)
        if grad is not None:
            _weight_grad_chunk(cols, plane[n0:n0 + B], B, chunks, grad)
    return y, weight_grad, (chunks.kept if keep else None)


def _correlate_adjoint(plane, w, window, groups, image_shape):
    """image[n] = col2im(W_g^T @ plane[n]) for each group g: the adjoint of ``_correlate``.

    plane: [N, Cout, Hout, Wout];  w: [Cout, C/g, kh, kw]  ->  image: [N, C, H, W].
    """
    N, Cout = plane.shape[:2]
    out_hw = plane.shape[2:]
    _, Cg, kh, kw = w.shape
    G, K, L = groups, image_shape[1] * kh * kw, out_hw[0] * out_hw[1]
    wt = w.reshape(G, Cout // G, Cg * kh * kw).transpose(0, 2, 1)  # [G, K/G, Cout/G]
    if _is_pointwise(window, image_shape[2:], out_hw):  # the columns are the image's pixels
        image = np.empty(image_shape, dtype=plane.dtype)
        np.matmul(wt, plane.reshape(N, G, Cout // G, L), out=image.reshape(N, G, K // G, L))
        return image
    image = np.zeros(image_shape, dtype=plane.dtype)
    chunks = _Chunks(N, K, Cout, out_hw, plane.dtype)
    for _, n0, B in chunks:
        planes = chunks.side_by_side(plane[n0:n0 + B], B)
        cols = chunks.cols(B)
        np.matmul(wt, planes.reshape(G, Cout // G, B * L), out=cols.reshape(G, K // G, B * L))
        kernels.col2im(cols.reshape((K, B) + tuple(out_hw)), window, image[n0:n0 + B])
    return image


class Conv2dFunction(Function):
    """y = conv2d(x, w) + b; backward gives dL/dx only when x needs it (ctx.needs_input_grad)."""

    def forward(ctx, x, weight, bias, window=None, groups=1, out_hw=None, op="conv2d"):
        x = kernel_array(x, op)
        ctx.save_for_backward(x, weight)
        ctx.window, ctx.groups = window, groups
        y, _, ctx.columns = _correlate_and_weight_grad(x, weight.shape, window, groups, out_hw,
                                                       w=weight, bias=bias, keep_columns=True)
        return y

    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad = np.ascontiguousarray(grad, dtype=x.dtype)
        gx = _correlate_adjoint(grad, weight, ctx.window, ctx.groups, x.shape) if need_x else None
        gw = _weight_grad(x, grad, ctx.window, ctx.groups, weight.shape, ctx.columns) \
            if need_w else None
        gb = grad.sum(axis=(0, 2, 3)) if need_b else None
        return gx, gw, gb


class ConvTranspose2dFunction(Function):
    """y = conv_transpose2d(x, w) + b = col2im(W^T @ x) + b: the adjoint of conv2d in its input."""

    def forward(ctx, x, weight, bias, window=None, groups=1, out_hw=None,
                op="conv_transpose2d"):
        x = kernel_array(x, op)
        ctx.save_for_backward(x, weight)
        ctx.window, ctx.groups = window, groups
        y = _correlate_adjoint(x, weight, window, groups, x.shape[:1] + (weight.shape[1] * groups,)
                               + out_hw)
        if bias is not None:
            y += bias.reshape(1, -1, 1, 1)
        return y

    def backward(ctx, grad):
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad = np.ascontiguousarray(grad, dtype=x.dtype)
        window, groups = ctx.window, ctx.groups
        if need_x and need_w:  # both read im2col(grad): one pass serves them
            gx, gw, _ = _correlate_and_weight_grad(grad, weight.shape, window, groups,
                                                   x.shape[2:], w=weight, plane=x)
        else:
            gx = _correlate(grad, weight, window, groups, x.shape[2:]) if need_x else None
            gw = _weight_grad(grad, x, window, groups, weight.shape) if need_w else None
        gb = grad.sum(axis=(0, 2, 3)) if need_b else None
        return gx, gw, gb


# ---- argument checks --------------------------------------------------------
def is_int(value) -> bool:
    """A Python or NumPy integer, and not a bool (True is an int to Python, not a size)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def pair_arg(value, name: str, op: str, minimum: int) -> tuple:
    """An int or a pair of ints -> (h, w), each >= minimum (raises naming ``op`` otherwise)."""
    if is_int(value):
        pair = (value, value)
    elif isinstance(value, (tuple, list)):
        pair = tuple(value)
    else:
        pair = None
    if pair is None or len(pair) != 2 or not all(is_int(v) for v in pair):
        raise TypeError(f"{op}: {name} must be an int or a pair of ints, got {value!r} "
                        f"({type(value).__name__})")
    if min(pair) < minimum:
        raise ValueError(f"{op}: {name} must be >= {minimum}, got {value!r}")
    return int(pair[0]), int(pair[1])


def check_4d(x, op: str, what: str = "input") -> None:
    """Raise unless x is a 4-D [N, C, H, W] array or Tensor."""
    if x.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D {what} [N, C, H, W], got shape {tuple(x.shape)}")


def _check_channels(op, x, weight, bias, groups, in_per_group_axis):
    """Validate weight, bias and groups against x; return (in_channels, out_channels).

    conv2d's weight is [Cout, Cin/g, kh, kw] (in_per_group_axis=1); conv_transpose2d's
    is [Cin, Cout/g, kh, kw] (the input channels are axis 0).
    """
    check_4d(x, op)
    if weight.ndim != 4:
        raise ValueError(f"{op}: expected a 4-D weight, got shape {tuple(weight.shape)}")
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ValueError(f"{op}: groups must be a positive int, got {groups!r}")
    C = x.shape[1]
    if in_per_group_axis == 1:
        layout = "[Cout, Cin/groups, kh, kw]"
        cin, cout = weight.shape[1] * groups, weight.shape[0]
    else:
        layout = "[Cin, Cout/groups, kh, kw]"
        cin, cout = weight.shape[0], weight.shape[1] * groups
    if C % groups or cout % groups:
        raise ValueError(f"{op}: groups={groups} must divide both the input channels ({C}) and "
                         f"the output channels ({cout}); input {tuple(x.shape)}, "
                         f"weight {tuple(weight.shape)}")
    if cin != C:
        raise ValueError(f"{op}: weight {tuple(weight.shape)} (layout {layout}, groups={groups}) "
                         f"expects {cin} input channels, but input {tuple(x.shape)} has {C}")
    if bias is not None and tuple(bias.shape) != (cout,):
        raise ValueError(f"{op}: bias must have shape ({cout},), got {tuple(bias.shape)}")
    return cin, cout


def _check_floats(op, input, weight, bias) -> None:
    """The dtype policy (minidl/ops/checks.py): floating-point input, weight and bias."""
    for name, t in (("input", input), ("weight", weight), ("bias", bias)):
        if t is not None:
            check_float(t, op, name)


def common_dtype(*arrays):
    """Inputs of mixed float types are computed in the widest one."""
    return np.result_type(*[a.dtype for a in arrays if a is not None])


def conv_output_size(size: int, kernel: int, stride: int, padding: int, dilation: int) -> int:
    """floor((size + 2 padding - dilation (kernel - 1) - 1) / stride) + 1."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


# ---- functional forms -------------------------------------------------------
def conv2d(input, weight, bias=None, stride=1, padding=0, dilation=1, groups=1):
    """2-D convolution (cross-correlation) with PyTorch's arguments and weight layout.

    input: [N, Cin, H, W];  weight: [Cout, Cin/groups, kh, kw];  bias: [Cout] or None
    -> [N, Cout, Hout, Wout], Hout = floor((H + 2 p - d (kh - 1) - 1) / s) + 1.
    ``stride``, ``padding``, ``dilation`` are ints or (h, w) pairs; ``groups`` splits
    the channels into independent convolutions (groups = Cin: depthwise).
    """
    op = "conv2d"
    _check_floats(op, input, weight, bias)
    stride = pair_arg(stride, "stride", op, 1)
    padding = pair_arg(padding, "padding", op, 0)
    dilation = pair_arg(dilation, "dilation", op, 1)
    _check_channels(op, input, weight, bias, groups, in_per_group_axis=1)
    kh, kw = weight.shape[2:]
    H, W = input.shape[2:]
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    if span_h > H + 2 * padding[0] or span_w > W + 2 * padding[1]:
        raise ValueError(f"{op}: the kernel {kh}x{kw} (spanning {span_h}x{span_w} with dilation "
                         f"{dilation}) is larger than the padded input "
                         f"{H + 2 * padding[0]}x{W + 2 * padding[1]} (input {tuple(input.shape)}, "
                         f"padding {padding})")
    out_hw = (conv_output_size(H, kh, stride[0], padding[0], dilation[0]),
              conv_output_size(W, kw, stride[1], padding[1], dilation[1]))
    dtype = common_dtype(input, weight, bias)
    input, weight, bias = (cast_to(t, dtype) for t in (input, weight, bias))
    window = (kh, kw) + stride + padding + dilation
    return Conv2dFunction.apply(input, weight, bias, window=window, groups=int(groups),
                                out_hw=out_hw, op=op)


def conv_transpose2d(input, weight, bias=None, stride=1, padding=0, output_padding=0, groups=1,
                     dilation=1):
    """Transposed convolution (the gradient of conv2d with respect to its input), PyTorch's API.

    input: [N, Cin, H, W];  weight: [Cin, Cout/groups, kh, kw];  bias: [Cout] or None
    -> [N, Cout, Hout, Wout], Hout = (H - 1) s - 2 p + d (kh - 1) + output_padding + 1.
    ``output_padding`` (< stride or < dilation) adds rows/columns at the bottom/right:
    it picks one of the input sizes that a stride-s conv2d maps to the same H.
    """
    op = "conv_transpose2d"
    _check_floats(op, input, weight, bias)
    stride = pair_arg(stride, "stride", op, 1)
    padding = pair_arg(padding, "padding", op, 0)
    dilation = pair_arg(dilation, "dilation", op, 1)
    output_padding = pair_arg(output_padding, "output_padding", op, 0)
    _check_channels(op, input, weight, bias, groups, in_per_group_axis=0)
    for k in range(2):
        if not (output_padding[k] < stride[k] or output_padding[k] < dilation[k]):
            raise ValueError(f"{op}: output_padding {output_padding} must be smaller than either "
                             f"the stride {stride} or the dilation {dilation}")
    kh, kw = weight.shape[2:]
    H, W = input.shape[2:]
    out_hw = tuple((n - 1) * s - 2 * p + d * (k - 1) + op_ + 1 for n, s, p, d, k, op_ in
                   zip((H, W), stride, padding, dilation, (kh, kw), output_padding))
    if min(out_hw) < 1:
        raise ValueError(f"{op}: the output would be {out_hw[0]}x{out_hw[1]} for input "
                         f"{tuple(input.shape)}, weight {tuple(weight.shape)}, stride {stride}, "
                         f"padding {padding}, dilation {dilation}")
    dtype = common_dtype(input, weight, bias)
    input, weight, bias = (cast_to(t, dtype) for t in (input, weight, bias))
    window = (kh, kw) + stride + padding + dilation
    return ConvTranspose2dFunction.apply(input, weight, bias, window=window, groups=int(groups),
                                         out_hw=out_hw, op=op)


def cast_to(t, dtype):
    """Cast a Tensor (differentiably) or array to ``dtype``; None stays None."""
    if t is None or t.dtype == dtype:
        return t
    return t.astype(dtype) if isinstance(t, Tensor) else np.asarray(t, dtype=dtype)
