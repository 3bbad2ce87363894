"""Loss functions, with PyTorch's names, arguments and semantics.

Two losses are primitives with a hand-written backward, because the obvious
composite is numerically fragile:

* ``cross_entropy`` (log-softmax + negative log-likelihood fused): the gradient
  is simply softmax(z) - target, and log-softmax never takes log(0);
* ``binary_cross_entropy_with_logits``: written with softplus so that logits of
  +-1e4 give exact, finite losses, with gradient sigmoid(x) - target.

``binary_cross_entropy`` (on probabilities) is also a primitive, to reproduce
PyTorch's clamp of the logs at -100 and its gradient. The rest are composites of
existing primitives (no backward written): mse, l1, smooth L1, Huber, KL
divergence, and nll_loss as a gather.

Every loss takes ``reduction``: 'none' (per-element losses), 'mean' or 'sum'.
``check_reduction`` and ``reduce_loss`` below are the one place that checks and
applies it, for these losses, the loss Modules (``minidl.nn.loss``) and the
detection losses (``minidl.vision.loss``).

Targets are checked before anything is computed, with the per-pixel (segmentation)
mistakes in mind: a class-index target must be [N, d1, ...] for input [N, C, d1, ...]
(not another size, not with a channel axis) and hold labels in [0, C) or
``ignore_index``; a binary target must hold probabilities in [0, 1] (0/1 labels or
soft labels, as PyTorch; a 0/255 mask or a -1 "ignore" label raises, where PyTorch
returns a meaningless loss). Each error names the loss, the shapes and the first bad
position.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.function import Function
from minidl.autograd.tensor import Tensor
from minidl.ops.elementwise import abs, div, exp, log, mul, where
from minidl.ops.reduce import mean, sum
from minidl.ops.shape import getitem, permute, reshape

REDUCTIONS = ("none", "mean", "sum")


# ---- reduction: the one helper every loss uses ----------------------------------
def reduce_loss(loss, reduction: str, op: str):
    """'none' -> the per-element losses, 'sum' -> their sum, 'mean' -> their mean.

    ``op`` names the loss in the error raised for any other ``reduction``.
    """
    check_reduction(reduction, op)
    if reduction == "none":
        return loss
    return sum(loss) if reduction == "sum" else mean(loss)


def check_reduction(reduction, op: str, allowed=REDUCTIONS) -> None:
    """Raise ValueError naming ``op`` unless ``reduction`` is one of ``allowed``.

    Losses call it first, so a bad ``reduction`` is reported before any work is done.
    """
    if reduction not in allowed:
        names = ", ".join(repr(r) for r in allowed)
        raise ValueError(f"{op}: reduction must be one of {names}, got {reduction!r}")


# ---- shared helpers ---------------------------------------------------------


def _as_tensor(x, like: Tensor):
    """Targets may be Tensors, ndarrays or lists; constants take the input's float dtype.

    A target Tensor that requires grad is kept as is, so its gradient flows too.
    """
    if isinstance(x, Tensor):
        if x.requires_grad or x.dtype == like.dtype:
            return x
        return Tensor(x.data.astype(like.dtype))
    return Tensor(np.asarray(x).astype(like.dtype))


def _same_shape(input, target, op: str) -> None:
    if tuple(input.shape) != tuple(target.shape):
        raise ValueError(f"{op}: target shape {tuple(target.shape)} must equal input shape "
                         f"{tuple(input.shape)} (broadcasting a target is usually a bug)")


def _const(x, dtype, op: str, name: str):
    """A weight-like constant (ndarray) in the input's dtype, or None."""
    if x is None:
        return None
    array = x.data if isinstance(x, Tensor) else np.asarray(x)
    if array.dtype.kind not in "fiub":
        raise TypeError(f"{op}: {name} must be numeric, got dtype {array.dtype}")
    return array.astype(dtype)


def _mean_or_nan(total, denominator: float):
    """total / denominator, or NaN (as PyTorch) when every target was ignored."""
    if denominator == 0:
        return mul(total, np.nan)  # 0/0 without NumPy's warning; the gradient is NaN too
    return div(total, denominator)


# ---- regression losses (composites) ----------------------------------------
def mse_loss(input, target, reduction: str = "mean"):
    """Mean squared error:  l_i = (x_i - y_i)^2.   input, target: same shape."""
    check_reduction(reduction, "mse_loss")
    target = _as_tensor(target, input)
    _same_shape(input, target, "mse_loss")
    diff = input - target
    return reduce_loss(diff * diff, reduction, "mse_loss")


def l1_loss(input, target, reduction: str = "mean"):
    """Mean absolute error:  l_i = |x_i - y_i|  (gradient sign(x - y), 0 at a tie)."""
    check_reduction(reduction, "l1_loss")
    target = _as_tensor(target, input)
    _same_shape(input, target, "l1_loss")
    return reduce_loss(abs(input - target), reduction, "l1_loss")


def smooth_l1_loss(input, target, reduction: str = "mean", beta: float = 1.0):
    """Smooth L1 (Girshick, Fast R-CNN 2015), with d = x - y:

        l_i = 0.5 d^2 / beta    if |d| < beta
              |d| - 0.5 beta    otherwise

    Quadratic near zero (no kink), linear for outliers. ``beta = 0`` is the L1 loss.
    """
    check_reduction(reduction, "smooth_l1_loss")
    if beta < 0:
        raise ValueError(f"smooth_l1_loss: beta must be non-negative, got {beta}")
    target = _as_tensor(target, input)
    _same_shape(input, target, "smooth_l1_loss")
    diff = input - target
    size = abs(diff)
    if beta == 0:
        return reduce_loss(size, reduction, "smooth_l1_loss")
    inside = (size.data < beta)
    loss = where(inside, diff * diff * (0.5 / beta), size - 0.5 * beta)
    return reduce_loss(loss, reduction, "smooth_l1_loss")


def huber_loss(input, target, reduction: str = "mean", delta: float = 1.0):
    """Huber loss (Huber 1964):  0.5 d^2 if |d| <= delta, else delta (|d| - 0.5 delta).

    Equal to delta * smooth_l1_loss(beta=delta).
    """
    check_reduction(reduction, "huber_loss")
    if delta <= 0:
        raise ValueError(f"huber_loss: delta must be positive, got {delta}")
    target = _as_tensor(target, input)
    _same_shape(input, target, "huber_loss")
    diff = input - target
    size = abs(diff)
    inside = (size.data <= delta)
    loss = where(inside, diff * diff * 0.5, (size - 0.5 * delta) * delta)
    return reduce_loss(loss, reduction, "huber_loss")


# ---- classification: cross-entropy (primitive) -----------------------------
def _class_axis_shape(ndim: int, num_classes: int) -> tuple:
    """Shape that lines a per-class vector up with axis 1 of [N, C, d1, ...]."""
    return (1, num_classes) + (1,) * (ndim - 2)


class CrossEntropy(Function):
    """Per-sample cross-entropy of logits z against a target distribution q.

        logp = log_softmax(z) over the class axis 1 of z: [N, C, d1, ...]
        l    = -sum_c q_c logp_c                                  -> [N, d1, ...]
        dl/dz_c = softmax(z)_c * sum_c' q_c' - q_c
        dl/dq_c = -logp_c

    ``q`` already holds the class weights, label smoothing and ignored positions
    (zero rows); the functional ``cross_entropy`` builds it. q = one-hot(y) gives
    the familiar gradient softmax(z) - onehot(y).
    """

    def forward(ctx, z, q):
        shifted = z - z.max(axis=1, keepdims=True)
        logp = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        ctx.save_for_backward(logp, q)
        return -(q * logp).sum(axis=1)

    def backward(ctx, grad):
        logp, q = ctx.saved_tensors
        g = np.expand_dims(grad, 1)
        need_z, need_q = ctx.needs_input_grad
        grad_z = g * (np.exp(logp) * q.sum(axis=1, keepdims=True) - q) if need_z else None
        grad_q = -g * logp if need_q else None
        return grad_z, grad_q


def _check_class_labels(labels, input_shape, ignore_index, op):
    """Check class-index targets against input [N, C, d1, ...]; return the non-ignored mask.

    Per-pixel classification (input [N, C, H, W], target [N, H, W]) is where these go
    wrong: a target with a channel axis, a target of another size than the logits, or
    a void label (255 in VOC masks) that is not the ignore_index.
    """
    n_classes = input_shape[1]
    expected = tuple(input_shape[:1]) + tuple(input_shape[2:])
    if tuple(labels.shape) != expected:
        hint = ""
        if labels.ndim == len(input_shape) and labels.shape[1] == 1:
            hint = " (drop the target's channel axis, e.g. target[:, 0])"
        elif labels.ndim == len(expected) and labels.ndim > 1:
            hint = (f" (the target's size {tuple(labels.shape[1:])} differs from the logits' "
                    f"{tuple(input_shape[2:])}: resize one of them)")
        raise ValueError(f"{op}: class-index target must have shape {expected} for input "
                         f"{tuple(input_shape)}, got {tuple(labels.shape)}{hint}")
    valid = labels != ignore_index
    bad = valid & ((labels < 0) | (labels >= n_classes))
    if bad.any():
        where_bad = tuple(int(i) for i in np.argwhere(bad)[0])
        label = int(labels[where_bad])
        hint = " (masks that mark void pixels with 255: pass ignore_index=255)" \
            if label == 255 else ""
        raise IndexError(f"{op}: target label {label} is out of range for {n_classes} "
                         f"classes (expected 0..{n_classes - 1}, or ignore_index={ignore_index}); "
                         f"first at target{list(where_bad)} of a target of shape "
                         f"{tuple(labels.shape)}, input {tuple(input_shape)}{hint}")
    return valid


def _index_target(target, input, weight, ignore_index, smoothing, op):
    """Build q for class-index targets and the 'mean' denominator sum_i w[y_i].

    q_ic = (1 - eps) w[y_i] [c = y_i] + (eps / C) w_c, and q_i = 0 where y_i is ignored.
    """
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    n_classes = input.shape[1]
    valid = _check_class_labels(labels, input.shape, ignore_index, op)
    safe = np.where(valid, labels, 0)
    w = np.ones(n_classes, dtype=input.dtype) if weight is None else weight
    w_target = w[safe] * valid  # [N, d1, ...], 0 where ignored
    onehot = np.arange(n_classes).reshape(_class_axis_shape(input.ndim, n_classes)) == \
        np.expand_dims(safe, 1)
    q = (1 - smoothing) * onehot * np.expand_dims(w_target, 1)
    if smoothing:
        w_class = w.reshape(_class_axis_shape(input.ndim, n_classes))
        q = q + (smoothing / n_classes) * w_class * np.expand_dims(valid, 1)
    return q.astype(input.dtype), float(w_target.sum())


def _probability_target(target, input, weight, smoothing, op):
    """q = ((1 - eps) p + eps / C) * w  for class-probability targets p (same shape as input)."""
    if tuple(target.shape) == tuple(input.shape[:1]) + tuple(input.shape[2:]):
        raise ValueError(f"{op} (class-probability target): target shape {tuple(target.shape)} "
                         f"must equal input shape {tuple(input.shape)}; a float target of this "
                         "shape looks like class indices stored as floats: convert it to "
                         "integers, e.g. target.long()")
    _same_shape(input, target, op + " (class-probability target)")
    n_classes = input.shape[1]
    q = target * (1 - smoothing) + smoothing / n_classes if smoothing else target
    if weight is not None:
        q = q * weight.reshape(_class_axis_shape(input.ndim, n_classes))
    return q


def cross_entropy(input, target, weight=None, ignore_index: int = -100,
                  reduction: str = "mean", label_smoothing: float = 0.0):
    """Cross-entropy between logits and targets (softmax + negative log-likelihood, fused).

    input: logits [N, C], or [N, C, d1, ...] for per-pixel classification, or [C].
    target: class indices [N] / [N, d1, ...] (integers in [0, C) or ``ignore_index``),
        or class probabilities with the input's shape (floats).
    weight: [C] per-class weights.
    label_smoothing eps: the target becomes (1 - eps) one-hot + eps / C uniform
    (Szegedy et al. 2016, "Rethinking the Inception Architecture").

    With class indices, l_i = -(1 - eps) w[y_i] logp_i[y_i] - (eps / C) sum_c w_c logp_i[c],
    and 'mean' divides the sum by sum_i w[y_i] over non-ignored i (PyTorch's rule).
    With probabilities, 'mean' divides by the number of samples N * d1 * ...
    """
    op = "cross_entropy"
    check_reduction(reduction, op)
    if not 0 <= label_smoothing <= 1:
        raise ValueError(f"{op}: label_smoothing must be in [0, 1], got {label_smoothing}")
    if input.ndim == 0 or input.dtype.kind != "f":
        raise ValueError(f"{op}: input must be float logits [N, C, ...], got shape "
                         f"{input.shape} and dtype {input.dtype}")
    if input.ndim == 1:  # one unbatched sample [C]
        target = target if isinstance(target, Tensor) else np.asarray(target)
        batched = reshape(input, 1, input.shape[0])
        unsqueezed = reshape(target, 1, *target.shape) if isinstance(target, Tensor) \
            else target[None]
        loss = cross_entropy(batched, unsqueezed, weight, ignore_index, reduction,
                             label_smoothing)
        return reshape(loss, ()) if reduction == "none" else loss
    n_classes = input.shape[1]
    weight = _const(weight, input.dtype, op, "weight")
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"{op}: weight must have shape ({n_classes},), got {weight.shape}")
    target_dtype = (target.dtype if isinstance(target, Tensor) else np.asarray(target).dtype)
    if target_dtype.kind in "iu":
        q, denominator = _index_target(target, input, weight, ignore_index, label_smoothing, op)
        loss = CrossEntropy.apply(input, q)
        if reduction == "mean":
            return _mean_or_nan(sum(loss), denominator)
        return reduce_loss(loss, reduction, "cross_entropy")
    if target_dtype.kind != "f":
        raise TypeError(f"{op}: target must hold class indices (integers) or class "
                        f"probabilities (floats), got dtype {target_dtype}")
    target = _as_tensor(target, input)
    q = _probability_target(target, input, weight, label_smoothing, op)
    return reduce_loss(CrossEntropy.apply(input, q), reduction, "cross_entropy")


def nll_loss(input, target, weight=None, ignore_index: int = -100, reduction: str = "mean"):
    """Negative log-likelihood of log-probabilities: l_i = -w[y_i] input[i, y_i].

    input: log-probabilities [N, C] or [N, C, d1, ...]; target: [N] or [N, d1, ...] ints.
    'mean' divides by sum_i w[y_i] over non-ignored i. A composite: the pick
    ``input[i, y_i]`` is integer indexing, whose backward scatters the gradient.
    """
    op = "nll_loss"
    check_reduction(reduction, op)
    if input.ndim < 2:
        raise ValueError(f"{op}: input must be log-probabilities [N, C, ...], got shape "
                         f"{input.shape}")
    labels = target.data if isinstance(target, Tensor) else np.asarray(target)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"{op}: target must hold class indices (integers), got {labels.dtype}")
    n_classes = input.shape[1]
    valid = _check_class_labels(labels, input.shape, ignore_index, op)
    weight = _const(weight, input.dtype, op, "weight")
    if weight is not None and weight.shape != (n_classes,):
        raise ValueError(f"{op}: weight must have shape ({n_classes},), got {weight.shape}")
    # Classes last, everything else flattened: [M, C], so one fancy index picks the values.
    classes_last = permute(input, (0, *range(2, input.ndim), 1))
    flat = reshape(classes_last, -1, n_classes)
    safe = np.where(valid, labels, 0).reshape(-1)
    picked = getitem(flat, (np.arange(safe.size), safe))
    w = (np.ones(n_classes, dtype=input.dtype) if weight is None else weight)[safe]
    w = w * valid.reshape(-1)
    loss = reshape(picked * (-w), labels.shape)
    if reduction == "mean":
        return _mean_or_nan(sum(loss), float(w.sum()))
    return reduce_loss(loss, reduction, "nll_loss")


# ---- binary classification -------------------------------------------------
class BinaryCrossEntropy(Function):
    """l = -(y log x + (1 - y) log(1 - x)) for probabilities x, each log clamped at -100.

    The clamp (PyTorch's) keeps x = 0 or 1 finite. Backward, also as PyTorch:
        dl/dx = (x - y) / max(x (1 - x), 1e-12),   dl/dy = log(1 - x) - log(x) (clamped logs)
    """

    def forward(ctx, x, y):
        with np.errstate(divide="ignore"):  # log(0) = -inf, clamped just below
            log_x = np.maximum(np.log(x), -100)
            log_1mx = np.maximum(np.log1p(-x), -100)
        ctx.save_for_backward(x, y, log_x, log_1mx)
        return -(y * log_x + (1 - y) * log_1mx)

    def backward(ctx, grad):
        x, y, log_x, log_1mx = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad
        grad_x = grad * (x - y) / np.maximum(x * (1 - x), 1e-12) if need_x else None
        grad_y = grad * (log_1mx - log_x) if need_y else None
        return grad_x, grad_y


def binary_cross_entropy(input, target, weight=None, reduction: str = "mean"):
    """Binary cross-entropy on probabilities:  l_i = -w_i (y_i log x_i + (1 - y_i) log(1 - x_i)).

    input: probabilities in [0, 1] (e.g. after sigmoid), any shape; target: same shape,
    probabilities in [0, 1] (0/1 labels or soft labels; anything else raises);
    weight: broadcastable to input. Prefer ``binary_cross_entropy_with_logits``,
    which is exact for large logits.
    """
    op = "binary_cross_entropy"
    check_reduction(reduction, op)
    target = _as_tensor(target, input)
    _same_shape(input, target, op)
    _check_binary_target(target, op)
    if input.data.size and (input.data.min() < 0 or input.data.max() > 1):
        raise ValueError(f"{op}: input must hold probabilities in [0, 1], got values in "
                         f"[{input.data.min():.4g}, {input.data.max():.4g}] (for logits use "
                         "binary_cross_entropy_with_logits)")
    loss = BinaryCrossEntropy.apply(input, target)
    weight = _const(weight, input.dtype, op, "weight")
    if weight is not None:
        _check_broadcast(weight.shape, input.shape, op, "weight")
        loss = loss * weight
    return reduce_loss(loss, reduction, "binary_cross_entropy")


def _check_binary_target(target, op: str) -> None:
    """Binary targets are probabilities: 0/1 labels or soft labels in between (PyTorch
    allows soft labels, so do we). A value outside [0, 1] or NaN gives a loss without
    meaning (unbounded below), so it is an error here, where PyTorch says nothing."""
    y = target.data
    outside = ~((y >= 0) & (y <= 1))  # NaN is outside too
    if outside.any():
        first = tuple(int(i) for i in np.argwhere(outside)[0])
        raise ValueError(f"{op}: target must hold probabilities in [0, 1] (0/1 labels or soft "
                         f"labels), got {y[first]} at target{list(first)} (target shape "
                         f"{tuple(y.shape)}); a mask stored as 0/255 needs target / 255, and "
                         "pixels to ignore need weight 0 rather than a special label")


def _check_broadcast(shape, input_shape, op, name):
    try:
        if np.broadcast_shapes(shape, input_shape) != tuple(input_shape):
            raise ValueError
    except ValueError:
        raise ValueError(f"{op}: {name} of shape {shape} does not broadcast to the input "
                         f"shape {tuple(input_shape)}") from None


def _softplus_neg(x):
    """log(1 + e^-x) = max(-x, 0) + log(1 + e^-|x|): never overflows, exact for large |x|."""
    return np.maximum(-x, 0) + np.log1p(np.exp(-np.abs(x)))


class BinaryCrossEntropyWithLogits(Function):
    """l = -p y log(sigmoid(x)) - (1 - y) log(1 - sigmoid(x)), with p the positive weight.

    With sp(x) = log(1 + e^-x) = -log(sigmoid(x)) and log(1 - sigmoid(x)) = -x - sp(x):

        l      = (1 - y) x + (1 + (p - 1) y) sp(x)
        dl/dx  = (1 - y) - (1 + (p - 1) y) sigmoid(-x)       (= sigmoid(x) - y when p = 1)
        dl/dy  = -x + (p - 1) sp(x)

    sp is computed as max(-x, 0) + log1p(e^-|x|), so x = +-1e4 gives exact losses
    (0 or 1e4) instead of log(0).
    """

    def forward(ctx, x, y, pos_weight=None):
        sp = _softplus_neg(x)
        log_weight = 1 if pos_weight is None else 1 + (pos_weight - 1) * y
        ctx.save_for_backward(x, y, sp, log_weight)
        ctx.pos_weight = pos_weight
        return (1 - y) * x + log_weight * sp

    def backward(ctx, grad):
        x, y, sp, log_weight = ctx.saved_tensors
        need_x, need_y = ctx.needs_input_grad
        grad_x = grad_y = None
        if need_x:
            e = np.exp(-np.abs(x))  # sigmoid(-x) without overflow
            sigmoid_neg = np.where(x >= 0, e / (1 + e), 1 / (1 + e))
            grad_x = grad * ((1 - y) - log_weight * sigmoid_neg)
        if need_y:
            p_minus_1 = 0 if ctx.pos_weight is None else ctx.pos_weight - 1
            grad_y = grad * (-x + p_minus_1 * sp)
        return grad_x, grad_y


def binary_cross_entropy_with_logits(input, target, weight=None, reduction: str = "mean",
                                     pos_weight=None):
    """Sigmoid + binary cross-entropy, fused and stable:

        l_i = -w_i [p y_i log sigmoid(x_i) + (1 - y_i) log(1 - sigmoid(x_i))]

    input: logits, any shape; target: same shape, probabilities in [0, 1]: 0/1 labels or
    soft labels, as PyTorch; a value outside [0, 1] or NaN raises (PyTorch computes a
    meaningless loss there, e.g. for a 0/255 mask);
    weight: broadcastable to input; pos_weight p: broadcastable to input, usually [C]
    for input [N, C] (p > 1 raises recall, e.g. p = #negatives / #positives).
    """
    op = "binary_cross_entropy_with_logits"
    check_reduction(reduction, op)
    target = _as_tensor(target, input)
    _same_shape(input, target, op)
    _check_binary_target(target, op)
    pos_weight = _const(pos_weight, input.dtype, op, "pos_weight")
    if pos_weight is not None:
        _check_broadcast(pos_weight.shape, input.shape, op, "pos_weight")
    loss = BinaryCrossEntropyWithLogits.apply(input, target, pos_weight=pos_weight)
    weight = _const(weight, input.dtype, op, "weight")
    if weight is not None:
        _check_broadcast(weight.shape, input.shape, op, "weight")
        loss = loss * weight
    return reduce_loss(loss, reduction, op)


# ---- distributions ----------------------------------------------------------
def kl_div(input, target, reduction: str = "mean", log_target: bool = False):
    """Kullback-Leibler divergence KL(target || model) with ``input`` = log q (log-probabilities):

        l_i = y_i (log y_i - input_i)        (0 where y_i = 0, since 0 log 0 = 0)
        with log_target=True, target holds log y:  l_i = e^{t_i} (t_i - input_i)

    reduction 'batchmean' = sum / N is the true KL per sample; 'mean' (PyTorch's
    default) averages over all elements instead.
    """
    op = "kl_div"
    check_reduction(reduction, op, REDUCTIONS + ("batchmean",))
    target = _as_tensor(target, input)
    _same_shape(input, target, op)
    if log_target:
        loss = exp(target) * (target - input)
    else:
        positive = target.data > 0
        # log of 1 where y = 0: the term is then y * (0 - input) = 0, with no log(0) warning.
        safe = where(positive, target, np.ones((), dtype=target.dtype))
        loss = target * (log(safe) - input)
    if reduction == "batchmean":
        batch = input.shape[0] if input.ndim else 1
        return div(sum(loss), batch)
    return reduce_loss(loss, reduction, "kl_div")
