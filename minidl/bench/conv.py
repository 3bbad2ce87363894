"""Benchmarks of convolution, pooling and normalization.

1. conv2d forward + backward (input, weight and bias gradients) on four layer shapes,
   as milliseconds and as effective GFLOP/s next to the machine's float32 matmul rate
   (the ceiling for im2col + GEMM). FLOPs of forward + backward = 3 * 2 * N * Cout *
   Hout * Wout * Cin/groups * kh * kw (forward, input gradient and weight gradient are
   one GEMM of that size each). Goal: >= 60% of the matmul rate on C and D.
2. conv_transpose2d forward + backward (a DCGAN / U-Net up-sampling layer).
3. max_pool2d 2x2 and batch_norm (training) forward + backward, against a plain-NumPy
   implementation of the same maths. Goal: >= 2x faster than NumPy.
4. Why columns: conv C's forward pass three ways, each on every core it can use: a loop
   nest compiled by numba (``direct_conv``), nine matrix products of shifted views of the
   padded images with no columns (``shifted_products_conv``), and minidl's im2col + one
   product per image; beside them the products alone, on columns made beforehand.

Figures are measurements of this machine (best of a few runs), not assertions.
"""

from __future__ import annotations

import numpy as np

from minidl.bench._timing import best_time, matmul_gflops, row
from minidl.utils.jit import njit, prange

#                     N, Cin,  H,  W, Cout, k, stride, pad
CONV_CASES = {
    "A  64x1x28x28 -> 6, k5 p2":     (64, 1, 28, 28, 6, 5, 1, 2),
    "B  64x6x14x14 -> 16, k5":       (64, 6, 14, 14, 16, 5, 1, 0),
    "C  32x32x32x32 -> 64, k3 p1":   (32, 32, 32, 32, 64, 3, 1, 1),
    "D  8x64x64x64 -> 64, k3 p1":    (8, 64, 64, 64, 64, 3, 1, 1),
}


def _tensors(rng, *shapes):
    from minidl import Tensor

    return [Tensor(rng.standard_normal(s).astype(np.float32), requires_grad=True)
            for s in shapes]


def conv_case(N, Cin, H, W, Cout, k, stride, pad, repeat=5):
    """(forward seconds, forward + backward seconds, FLOPs of forward + backward)."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    x, w, b = _tensors(rng, (N, Cin, H, W), (Cout, Cin, k, k), (Cout,))
    Ho = (H + 2 * pad - k) // stride + 1
    Wo = (W + 2 * pad - k) // stride + 1
    grad = rng.standard_normal((N, Cout, Ho, Wo)).astype(np.float32)

    def forward():
        return F.conv2d(x, w, b, stride, pad)

    def step():
        forward().backward(grad)

    flops = 3 * 2 * N * Cout * Ho * Wo * Cin * k * k
    return best_time(forward, repeat=repeat), best_time(step, repeat=repeat), flops


def conv_transpose_case(N=16, Cin=64, H=16, W=16, Cout=32, k=4, stride=2, pad=1, repeat=5):
    """Forward + backward seconds and FLOPs of conv_transpose2d (16x64x16x16 -> 32x32x32)."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    x, w, b = _tensors(rng, (N, Cin, H, W), (Cin, Cout, k, k), (Cout,))
    Ho = (H - 1) * stride - 2 * pad + k
    grad = rng.standard_normal((N, Cout, Ho, Ho)).astype(np.float32)

    def step():
        F.conv_transpose2d(x, w, b, stride, pad).backward(grad)

    return best_time(step, repeat=repeat), 3 * 2 * N * Cin * H * W * Cout * k * k


# ---- plain-NumPy implementations to compare with ------------------------------
def max_pool_numpy(x, grad, k=2):
    """2x2 / stride-2 max pooling forward + backward with NumPy reshapes and argmax."""
    N, C, H, W = x.shape
    Ho, Wo = H // k, W // k
    windows = x.reshape(N, C, Ho, k, Wo, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, Ho, Wo,
                                                                               k * k)
    arg = windows.argmax(axis=-1)[..., None]
    out = np.take_along_axis(windows, arg, axis=-1)[..., 0]
    dwin = np.zeros_like(windows)
    np.put_along_axis(dwin, arg, grad[..., None], axis=-1)
    dx = dwin.reshape(N, C, Ho, Wo, k, k).transpose(0, 1, 2, 4, 3, 5).reshape(N, C, H, W)
    return out, dx


def batch_norm_numpy(x, grad, weight, bias, eps=1e-5):
    """Batch norm training forward + backward, the textbook NumPy formulas."""
    axes = (0, 2, 3)
    w, b = weight[None, :, None, None], bias[None, :, None, None]
    mean = x.mean(axis=axes, keepdims=True)
    var = x.var(axis=axes, keepdims=True)
    invstd = 1 / np.sqrt(var + eps)
    xhat = (x - mean) * invstd
    out = xhat * w + b
    gxhat = grad * w
    dx = invstd * (gxhat - gxhat.mean(axis=axes, keepdims=True)
                   - xhat * (gxhat * xhat).mean(axis=axes, keepdims=True))
    return out, dx, (grad * xhat).sum(axis=axes), grad.sum(axis=axes)


def pool_case(repeat=5):
    """(minidl seconds, NumPy seconds) of max_pool2d 2x2 forward + backward on 64x16x28x28."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    (x,) = _tensors(rng, (64, 16, 28, 28))
    grad = rng.standard_normal((64, 16, 14, 14)).astype(np.float32)
    ours = best_time(lambda: F.max_pool2d(x, 2).backward(grad), repeat=repeat)
    numpy = best_time(lambda: max_pool_numpy(x.data, grad), repeat=repeat)
    return ours, numpy


def norm_case(repeat=5):
    """(minidl seconds, NumPy seconds) of batch_norm training forward + backward, 64x32x32x32."""
    import minidl.nn.functional as F

    rng = np.random.default_rng(0)
    x, w, b = _tensors(rng, (64, 32, 32, 32), (32,), (32,))
    grad = rng.standard_normal(x.shape).astype(np.float32)
    running_mean, running_var = np.zeros(32, np.float32), np.ones(32, np.float32)

    def ours():
        F.batch_norm(x, running_mean, running_var, w, b, training=True).backward(grad)

    numpy = best_time(lambda: batch_norm_numpy(x.data, grad, w.data, b.data), repeat=repeat)
    return best_time(ours, repeat=repeat), numpy


# ---- 4. why columns: one convolution three ways --------------------------------------
@njit(parallel=True, fastmath={"reassoc", "contract"})
def direct_conv(x_padded, w, out):
    """A stride-1 convolution as a loop nest, no columns, channels last:

        out[n, y, x, o] = sum_{i, j, c} x_padded[n, y + i, x + j, c] w[i, j, c, o]

    x_padded: [N, H + kh - 1, W + kw - 1, C] (zero-padded already);  w: [kh, kw, C, O];
    out: [N, H, W, O] (written). The innermost loop runs over the output channels o,
    contiguous in w and in the accumulator, so it compiles to SIMD multiply-adds; four
    output pixels of a row are computed together, so each weight row w[i, j, c] loaded
    serves four of them (a register block, the first trick of a hand-written convolution
    kernel). Parallel over the images; fastmath lets LLVM fuse each multiply-add and
    reorder the sum over the taps and channels.
    """
    N, H, W, O = out.shape
    kh, kw, C = w.shape[0], w.shape[1], w.shape[2]
    for n in prange(N):  # image n writes only out[n]
        acc = np.empty((4, O), out.dtype)
        for y in range(H):
            for x0 in range(0, W, 4):
                pixels = min(4, W - x0)
                acc[:] = 0
                for i in range(kh):
                    for j in range(kw):
                        for c in range(C):
                            weights = w[i, j, c]
                            for p in range(pixels):
                                v = x_padded[n, y + i, x0 + p + j, c]
                                for o in range(O):
                                    acc[p, o] += v * weights[o]
                for p in range(pixels):
                    out[n, y, x0 + p] = acc[p]


def direct_conv_reference(x_padded, w):
    """direct_conv's twin in NumPy: one tensordot per tap (i, j) over the channels."""
    kh, kw = w.shape[:2]
    H, W = x_padded.shape[1] - kh + 1, x_padded.shape[2] - kw + 1
    out = np.zeros(x_padded.shape[:1] + (H, W, w.shape[3]), np.float64)
    for i in range(kh):
        for j in range(kw):
            out += np.tensordot(x_padded[:, i:i + H, j:j + W, :], w[i, j], axes=([3], [0]))
    return out


def shifted_products_conv(x, w, pad):
    """A stride-1 convolution with no columns and no loop nest: one matrix product per tap.

    Pad each image and lay its rows end to end, [C, Hp * Wp]. Output pixel (y, x) reads
    tap (i, j) at flat position (y + i) Wp + (x + j) = (y Wp + x) + (i Wp + j): for each tap
    the inputs of all the output pixels are *one* shifted view of the padded image, with
    no copy. So, per image, out_wide = sum over taps of w[:, :, i, j] @ view(i Wp + j),
    computed for all Wp columns of each output row, and the last Wp - W (which straddle
    two rows) are dropped. x: [N, C, H, W];  w: [O, C, kh, kw];  returns [N, O, H', W'].
    """
    N, C, H, W = x.shape
    O, _, kh, kw = w.shape
    Hp, Wp = H + 2 * pad, W + 2 * pad
    Ho, Wo = Hp - kh + 1, Wp - kw + 1
    flat = np.zeros((N, C, Hp * Wp + kw - 1), x.dtype)  # kw - 1 more: the last tap's view
    flat[:, :, :Hp * Wp].reshape(N, C, Hp, Wp)[:, :, pad:pad + H, pad:pad + W] = x
    taps = [(i * Wp + j, np.ascontiguousarray(w[:, :, i, j])) for i in range(kh)
            for j in range(kw)]
    out_wide = np.zeros((N, O, Ho * Wp), x.dtype)
    product = np.empty((O, Ho * Wp), x.dtype)
    for n in range(N):
        for shift, w_tap in taps:
            np.matmul(w_tap, flat[n, :, shift:shift + Ho * Wp], out=product)
            out_wide[n] += product
    return out_wide.reshape(N, O, Ho, Wp)[..., :Wo]


def conv_routes_case(N=32, C=32, H=32, W=32, O=64, k=3, pad=1, repeat=5):
    """Seconds of conv C's forward pass each way, and its FLOPs:
    (loop nest, shifted products, im2col + products, products alone, flops)."""
    import minidl.nn.functional as F
    from minidl import Tensor
    from minidl.kernels.conv import im2col

    rng = np.random.default_rng(0)
    x = rng.standard_normal((N, C, H, W)).astype(np.float32)
    w = rng.standard_normal((O, C, k, k)).astype(np.float32)
    x_last = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad))).transpose(0, 2, 3, 1).copy()
    w_last = np.ascontiguousarray(w.transpose(2, 3, 1, 0))
    out = np.empty((N, H, W, O), np.float32)
    x_t, w_t = Tensor(x), Tensor(w)
    window = (k, k, 1, 1, pad, pad, 1, 1)
    columns = []  # one image's columns each, made before the timing
    for n in range(N):
        cols = np.empty((C * k * k, 1, H, W), np.float32)
        im2col(x[n:n + 1], window, cols)
        columns.append(cols.reshape(C * k * k, H * W))
    w_rows, y = w.reshape(O, -1), np.empty((O, H * W), np.float32)

    def products_alone():
        for cols in columns:
            np.matmul(w_rows, cols, out=y)
    times = (best_time(lambda: direct_conv(x_last, w_last, out), repeat=repeat),
             best_time(lambda: shifted_products_conv(x, w, pad), repeat=repeat),
             best_time(lambda: F.conv2d(x_t, w_t, None, 1, pad), repeat=repeat),
             best_time(products_alone, repeat=repeat))
    return times + (2 * N * O * H * W * C * k * k,)


def run(quick: bool = False) -> None:
    repeat = 2 if quick else 10
    peak = matmul_gflops(repeat=repeat)
    print(f"conv (float32; matmul 1024^3 runs at {peak:.0f} GFLOP/s on this machine)")
    row("conv2d forward + backward", "fwd ms", "fwd+bwd ms", "GFLOP/s", "% of matmul")
    for name, case in CONV_CASES.items():
        forward, step, flops = conv_case(*case, repeat=repeat)
        rate = flops / step / 1e9
        row(name, f"{forward * 1e3:.2f}", f"{step * 1e3:.2f}", f"{rate:.0f}",
            f"{100 * rate / peak:.0f}%")
    row("  goal: C and D at >= 60% of matmul", "", "", "", "60%")
    step, flops = conv_transpose_case(repeat=repeat)
    rate = flops / step / 1e9
    row("conv_transpose2d 16x64x16x16 -> 32, k4 s2 p1", "", f"{step * 1e3:.2f}", f"{rate:.0f}",
        f"{100 * rate / peak:.0f}%")
    print()
    row("forward + backward vs plain NumPy", "minidl ms", "NumPy ms", "speed-up", "goal")
    ours, numpy = pool_case(repeat=repeat)
    row("max_pool2d 2x2 on 64x16x28x28", f"{ours * 1e3:.2f}", f"{numpy * 1e3:.2f}",
        f"{numpy / ours:.1f}x", ">= 2x")
    ours, numpy = norm_case(repeat=repeat)
    row("batch_norm training on 64x32x32x32", f"{ours * 1e3:.2f}", f"{numpy * 1e3:.2f}",
        f"{numpy / ours:.1f}x", ">= 2x")
    print()
    *times, flops = conv_routes_case(repeat=repeat)
    row("why columns: conv C's forward three ways", "ms", "GFLOP/s", "% of matmul")
    names = ("a loop nest (numba, channels last)", "9 shifted products, no columns",
             "im2col + products (minidl's conv2d)", "  the products alone, columns ready")
    for name, seconds in zip(names, times):
        rate = flops / seconds / 1e9
        row(name, f"{seconds * 1e3:.2f}", f"{rate:.0f}", f"{100 * rate / peak:.0f}%")
