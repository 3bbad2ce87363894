"""Losses: forward against independent NumPy formulas, float64 gradcheck over every element,
PyTorch's reduction / weighting rules, and the errors on bad input."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl.nn.functional as F
from minidl import Tensor, gradcheck
from minidl.testing import check_op

REDUCTIONS = ["none", "mean", "sum"]
rng = np.random.default_rng(0)


def reduce_ref(loss, reduction):
    return {"none": loss, "mean": np.mean(loss), "sum": np.sum(loss)}[reduction]


def t64(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


# ---- regression losses -------------------------------------------------------
def away_from(values, points, gap=1e-2):
    """Nudge values so none sits within ``gap`` of a kink (finite differences need smoothness)."""
    values = values.copy()
    for p in points:
        close = np.abs(values - p) < gap
        values[close] += 3 * gap
    return values


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss(reduction):
    x, y = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    check_op(lambda a, b: F.mse_loss(a, b, reduction=reduction),
             lambda a, b: reduce_ref((a - b) ** 2, reduction), [x, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_l1_loss(reduction):
    y = rng.normal(size=(3, 4))
    x = y + away_from(rng.normal(size=(3, 4)), [0.0])
    check_op(lambda a, b: F.l1_loss(a, b, reduction=reduction),
             lambda a, b: reduce_ref(np.abs(a - b), reduction), [x, y])


def smooth_l1_ref(a, b, beta):
    out = np.empty_like(a)
    for i, d in np.ndenumerate(a - b):
        out[i] = 0.5 * d * d / beta if abs(d) < beta else abs(d) - 0.5 * beta
    return out


@pytest.mark.parametrize("beta", [1.0, 0.3, 2.5])
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_smooth_l1_loss(beta, reduction):
    y = rng.normal(size=(4, 5))
    d = away_from(rng.normal(scale=2.0, size=(4, 5)), [0.0, beta, -beta])
    check_op(lambda a, b: F.smooth_l1_loss(a, b, reduction=reduction, beta=beta),
             lambda a, b: reduce_ref(smooth_l1_ref(a, b, beta), reduction), [y + d, y])


def test_smooth_l1_beta_zero_is_l1():
    x, y = t64(rng.normal(size=6), False), t64(rng.normal(size=6), False)
    np.testing.assert_allclose(F.smooth_l1_loss(x, y, beta=0.0).data, F.l1_loss(x, y).data)


@pytest.mark.parametrize("delta", [1.0, 0.5])
def test_huber_loss(delta):
    y = rng.normal(size=(3, 4))
    d = away_from(rng.normal(scale=2.0, size=(3, 4)), [delta, -delta])

    def ref(a, b):
        e = np.abs(a - b)
        return np.mean(np.where(e <= delta, 0.5 * e ** 2, delta * (e - 0.5 * delta)))

    check_op(lambda a, b: F.huber_loss(a, b, delta=delta), ref, [y + d, y])


def test_regression_losses_reject_mismatched_shapes():
    x = Tensor(np.zeros((4, 1)))
    for loss in (F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.huber_loss):
        with pytest.raises(ValueError,
                           match=r"target shape \(4,\) must equal input shape \(4, 1\)"):
            loss(x, np.zeros(4))


@pytest.mark.parametrize("loss", [F.mse_loss, F.l1_loss, F.smooth_l1_loss, F.kl_div,
                                  F.binary_cross_entropy_with_logits, F.cross_entropy])
def test_unknown_reduction_is_a_clear_error(loss):
    x = Tensor(np.full((2, 3), 0.5))
    target = np.array([0, 1]) if loss is F.cross_entropy else np.full((2, 3), 0.5)
    with pytest.raises(ValueError, match=f"{loss.__name__}: reduction must be one of .*'avg'"):
        loss(x, target, reduction="avg")


# ---- cross-entropy ----------------------------------------------------------
def log_softmax_ref(v):
    """log softmax of one vector, written directly."""
    m = max(v)
    return v - m - np.log(np.sum(np.exp(v - m)))


def cross_entropy_ref(z, y, w=None, ignore_index=-100, reduction="mean", eps=0.0):
    """PyTorch's rule, one sample at a time:
    (1 - eps) * weighted NLL + eps / C * sum_c w_c (-logp_c), 'mean' over sum of w[y_i]."""
    n_classes = z.shape[1]
    w = np.ones(n_classes) if w is None else w
    rows = np.moveaxis(z, 1, -1).reshape(-1, n_classes)
    labels = y.reshape(-1)
    per = np.zeros(len(labels))
    weight_sum = 0.0
    for i, (row, label) in enumerate(zip(rows, labels)):
        if label == ignore_index:
            continue
        logp = log_softmax_ref(row)
        nll = -w[label] * logp[label]
        smooth = -sum(w[c] * logp[c] for c in range(n_classes))
        per[i] = (1 - eps) * nll + eps / n_classes * smooth
        weight_sum += w[label]
    if reduction == "none":
        return per.reshape(y.shape)
    return per.sum() if reduction == "sum" else per.sum() / weight_sum


CE_CASES = [
    dict(),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.7])),
    dict(ignore_index=2),
    dict(label_smoothing=0.2),
    dict(weight=np.array([0.2, 1.0, 3.0, 0.7]), ignore_index=1, label_smoothing=0.15),
]


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("options", CE_CASES)
def test_cross_entropy_index_targets(options, reduction):
    z = rng.normal(scale=2.0, size=(6, 4))
    y = np.array([0, 1, 2, 3, 1, 2])
    ref_kwargs = dict(w=options.get("weight"), ignore_index=options.get("ignore_index", -100),
                      eps=options.get("label_smoothing", 0.0), reduction=reduction)
    check_op(lambda a, b: F.cross_entropy(a, b, reduction=reduction, **options),
             lambda a, b: cross_entropy_ref(a, b, **ref_kwargs), [z, y])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_per_pixel(reduction):
    z = rng.normal(size=(2, 3, 2, 3))  # [N, C, H, W]
    y = rng.integers(0, 3, size=(2, 2, 3))
    y[0, 1, 2] = -1
    w = np.array([0.5, 2.0, 1.0])
    kwargs = dict(weight=w, ignore_index=-1, label_smoothing=0.1, reduction=reduction)
    check_op(lambda a, b: F.cross_entropy(a, b, **kwargs),
             lambda a, b: cross_entropy_ref(a, b, w, -1, reduction, 0.1), [z, y])


def test_cross_entropy_gradient_is_softmax_minus_onehot():
    z = t64(rng.normal(size=(3, 5)))
    y = np.array([4, 0, 2])
    F.cross_entropy(z, y, reduction="sum").backward()
    softmax = np.exp(z.data) / np.exp(z.data).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(z.grad, softmax - np.eye(5)[y], atol=1e-12)


def test_cross_entropy_stable_for_huge_logits():
    z = t64([[1e4, -1e4, 0.0], [-5e3, 5e3, 5e3]])
    loss = F.cross_entropy(z, np.array([0, 1]), reduction="none")
    np.testing.assert_allclose(loss.data, [0.0, np.log(2)], atol=1e-12)
    loss.sum().backward()
    assert np.isfinite(z.grad).all()


@pytest.mark.parametrize("reduction", REDUCTIONS)
@pytest.mark.parametrize("smoothing", [0.0, 0.25])
def test_cross_entropy_probability_targets(reduction, smoothing):
    z = rng.normal(size=(2, 3, 2))
    p = rng.uniform(size=(2, 3, 2))
    p /= p.sum(axis=1, keepdims=True)
    w = np.array([1.0, 0.5, 2.0])

    def ref(a, b):
        per = np.zeros((2, 2))
        for n in range(2):
            for k in range(2):
                logp = log_softmax_ref(a[n, :, k])
                q = (1 - smoothing) * b[n, :, k] + smoothing / 3
                per[n, k] = -np.sum(w * q * logp)
        return {"none": per, "sum": per.sum(), "mean": per.sum() / per.size}[reduction]

    # check_op also gradchecks the probability target (a soft label can be learned).
    check_op(lambda a, b: F.cross_entropy(a, b, weight=w, reduction=reduction,
                                          label_smoothing=smoothing), ref, [z, p])


def test_cross_entropy_unbatched_input():
    z = rng.normal(size=4)
    check_op(lambda a, b: F.cross_entropy(a, b, reduction="none"),
             lambda a, b: -log_softmax_ref(a)[b], [z, np.array(2)])


def test_cross_entropy_all_ignored_mean_is_nan():
    loss = F.cross_entropy(t64(rng.normal(size=(2, 3)), False), np.array([-100, -100]))
    assert np.isnan(loss.item())


def test_cross_entropy_errors():
    z = Tensor(np.zeros((4, 3)))
    with pytest.raises(IndexError, match=r"cross_entropy: target label 3 is out of range for 3 "
                                         r"classes \(expected 0..2"):
        F.cross_entropy(z, np.array([0, 1, 3, 2]))
    with pytest.raises(IndexError, match="cross_entropy: target label -2 is out of range"):
        F.cross_entropy(z, np.array([0, 1, -2, 2]))
    with pytest.raises(ValueError, match=r"cross_entropy .*target shape \(4,\) must equal "
                                         r"input shape \(4, 3\)"):
        F.cross_entropy(z, np.zeros(4))
    with pytest.raises(ValueError, match=r"cross_entropy: class-index target must have shape "
                                         r"\(4,\)"):
        F.cross_entropy(z, np.zeros((4, 1), dtype=np.int64))
    with pytest.raises(ValueError, match=r"cross_entropy: weight must have shape \(3,\)"):
        F.cross_entropy(z, np.array([0, 1, 2, 0]), weight=np.ones(4))
    with pytest.raises(ValueError, match="label_smoothing must be in"):
        F.cross_entropy(z, np.array([0, 1, 2, 0]), label_smoothing=1.5)


# ---- nll_loss ---------------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_nll_loss(reduction):
    logp = rng.normal(size=(2, 3, 4))  # [N, C, d]; nll does not need normalized input
    y = rng.integers(0, 3, size=(2, 4))
    y[1, 0] = 7
    w = np.array([1.5, 0.5, 1.0])

    def ref(a, b):
        per = np.zeros(b.shape)
        total_w = 0.0
        for n in range(2):
            for k in range(4):
                if b[n, k] != 7:
                    per[n, k] = -w[b[n, k]] * a[n, b[n, k], k]
                    total_w += w[b[n, k]]
        return {"none": per, "sum": per.sum(), "mean": per.sum() / total_w}[reduction]

    check_op(lambda a, b: F.nll_loss(a, b, weight=w, ignore_index=7, reduction=reduction),
             ref, [logp, y])


def test_nll_of_log_softmax_equals_cross_entropy():
    z = t64(rng.normal(size=(5, 4)), False)
    y = np.array([0, 3, 3, 1, 2])
    np.testing.assert_allclose(F.nll_loss(F.log_softmax(z, 1), y).data,
                               F.cross_entropy(z, y).data, rtol=1e-12)


def test_nll_loss_errors():
    with pytest.raises(IndexError, match="nll_loss: target label 5 is out of range for 3"):
        F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0, 5]))
    with pytest.raises(TypeError, match="nll_loss: target must hold class indices"):
        F.nll_loss(Tensor(np.zeros((2, 3))), np.array([0.0, 1.0]))


# ---- binary cross-entropy ---------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_binary_cross_entropy(reduction):
    x = rng.uniform(0.05, 0.95, size=(3, 4))
    y = rng.uniform(0, 1, size=(3, 4))
    w = rng.uniform(0.5, 2, size=(4,))

    def ref(a, b):
        return reduce_ref(-w * (b * np.log(a) + (1 - b) * np.log(1 - a)), reduction)

    check_op(lambda a, b: F.binary_cross_entropy(a, b, weight=w, reduction=reduction), ref, [x, y])


def test_binary_cross_entropy_clamps_log_at_minus_100():
    x = t64([0.0, 1.0, 0.0, 1.0])
    loss = F.binary_cross_entropy(x, [1.0, 0.0, 0.0, 1.0], reduction="none")
    np.testing.assert_array_equal(loss.data, [100.0, 100.0, 0.0, 0.0])
    loss.sum().backward()
    assert np.isfinite(x.grad).all()


def test_binary_cross_entropy_rejects_values_outside_0_1():
    with pytest.raises(ValueError, match=r"binary_cross_entropy: input must hold probabilities "
                                         r"in \[0, 1\]"):
        F.binary_cross_entropy(Tensor([0.5, 1.5]), [1.0, 0.0])


def bce_logits_ref(x, y, w=1.0, p=1.0):
    s = 1 / (1 + np.exp(-x))
    return -w * (p * y * np.log(s) + (1 - y) * np.log(1 - s))


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits(reduction):
    x = rng.normal(scale=3.0, size=(4, 3))
    y = rng.uniform(size=(4, 3))
    w = rng.uniform(0.5, 2, size=(4, 1))
    p = np.array([0.5, 1.0, 3.0])
    check_op(lambda a, b: F.binary_cross_entropy_with_logits(a, b, weight=w, pos_weight=p,
                                                             reduction=reduction),
             lambda a, b: reduce_ref(bce_logits_ref(a, b, w, p), reduction), [x, y])


def test_bce_with_logits_without_pos_weight():
    x, y = rng.normal(size=(5,)), rng.uniform(size=(5,))
    check_op(lambda a, b: F.binary_cross_entropy_with_logits(a, b),
             lambda a, b: np.mean(bce_logits_ref(a, b)), [x, y])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_bce_with_logits_exact_for_huge_logits(dtype):
    x = Tensor(np.array([1e4, 1e4, -1e4, -1e4, 1e4, -1e4], dtype=dtype), requires_grad=True)
    y = np.array([1.0, 0.0, 1.0, 0.0, 0.5, 0.5])
    loss = F.binary_cross_entropy_with_logits(x, y, reduction="none")
    # -log sigmoid(1e4) = 0 and -log(1 - sigmoid(1e4)) = 1e4, exactly in floating point.
    np.testing.assert_array_equal(loss.data, [0.0, 1e4, 1e4, 0.0, 5e3, 5e3])
    loss.sum().backward()
    np.testing.assert_array_equal(x.grad, [0.0, 1.0, -1.0, 0.0, 0.5, -0.5])  # sigmoid(x) - y
    weighted = F.binary_cross_entropy_with_logits(x, y, reduction="none", pos_weight=[3.0])
    np.testing.assert_array_equal(weighted.data, [0.0, 1e4, 3e4, 0.0, 5e3, 1.5e4])


def test_bce_with_logits_errors():
    x = Tensor(np.zeros((2, 3)))
    with pytest.raises(ValueError, match=r"binary_cross_entropy_with_logits: target shape "
                                         r"\(2,\) must equal input shape \(2, 3\)"):
        F.binary_cross_entropy_with_logits(x, np.zeros(2))
    with pytest.raises(ValueError, match=r"pos_weight of shape \(2,\) does not broadcast"):
        F.binary_cross_entropy_with_logits(x, np.zeros((2, 3)), pos_weight=np.ones(2))


# ---- KL divergence ----------------------------------------------------------
@pytest.mark.parametrize("reduction", REDUCTIONS + ["batchmean"])
def test_kl_div(reduction):
    q = rng.uniform(0.1, 1, size=(3, 4))
    logq = np.log(q / q.sum(axis=1, keepdims=True))
    p = rng.uniform(0.1, 1, size=(3, 4))
    p[0, 1] = 0.0  # 0 log 0 = 0
    p /= p.sum(axis=1, keepdims=True)

    def ref(a, b):
        per = np.zeros_like(a)
        for i, pi in np.ndenumerate(b):
            per[i] = pi * (np.log(pi) - a[i]) if pi > 0 else 0.0
        return per.sum() / 3 if reduction == "batchmean" else reduce_ref(per, reduction)

    fn = lambda a: F.kl_div(a, p, reduction=reduction)  # noqa: E731
    check_op(fn, lambda a: ref(a, p), [logq])


def test_kl_div_log_target():
    x, t = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))
    check_op(lambda a, b: F.kl_div(a, b, reduction="batchmean", log_target=True),
             lambda a, b: np.sum(np.exp(b) * (b - a)) / 2, [x, t])


def test_kl_div_of_equal_distributions_is_zero():
    p = np.array([[0.2, 0.3, 0.5], [0.0, 0.4, 0.6]])
    with np.errstate(divide="ignore"):
        logp = np.log(p)
    logp[1, 0] = -50.0  # the model's log-probability where the target is 0 does not matter
    assert abs(F.kl_div(t64(logp, False), p, reduction="sum").item()) < 1e-15


def test_float32_losses_stay_float32():
    x = Tensor(np.zeros((2, 3), dtype=np.float32))
    assert F.cross_entropy(x, np.array([0, 1]), weight=np.ones(3)).dtype == np.float32
    assert F.mse_loss(x, np.zeros((2, 3))).dtype == np.float32
    assert F.binary_cross_entropy_with_logits(x, np.zeros((2, 3)), pos_weight=[2.0, 1, 1]).dtype \
        == np.float32


def test_target_gradient_flows_in_regression_losses():
    x, y = t64(rng.normal(size=(3,))), t64(rng.normal(size=(3,)))
    assert gradcheck(lambda a, b: F.smooth_l1_loss(a, b, beta=0.5), [x, y])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3), c=st.integers(1, 4), spatial=st.lists(st.integers(1, 3), max_size=2),
       seed=st.integers(0, 1000))
def test_cross_entropy_per_position_equals_flattened_rows(n, c, spatial, seed):
    """[N, C, d1, ...] is the same loss as the [N * d1 * ..., C] rows with classes last."""
    r = np.random.default_rng(seed)
    z = r.normal(size=(n, c, *spatial))
    y = r.integers(0, c, size=(n, *spatial))
    per = F.cross_entropy(t64(z, False), y, reduction="none", label_smoothing=0.1)
    assert per.shape == y.shape
    rows = np.moveaxis(z, 1, -1).reshape(-1, c)
    flat = F.cross_entropy(t64(rows, False), y.reshape(-1), reduction="none", label_smoothing=0.1)
    np.testing.assert_allclose(per.data.reshape(-1), flat.data, rtol=1e-12)


# ---- bad input for per-pixel (segmentation) losses ---------------------------------
@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_per_pixel_target_of_another_size_names_the_loss_and_the_shapes(loss):
    logits = Tensor(np.zeros((2, 3, 8, 8)))  # [N, C, H, W]
    with pytest.raises(ValueError, match=rf"{loss.__name__}: class-index target must have shape "
                                         r"\(2, 8, 8\) for input \(2, 3, 8, 8\), got \(2, 4, 4\) "
                                         r"\(the target's size \(4, 4\) differs from the "
                                         r"logits' \(8, 8\)"):
        loss(logits, np.zeros((2, 4, 4), dtype=np.int64))
    with pytest.raises(ValueError, match=r"got \(2, 1, 8, 8\) \(drop the target's channel axis"):
        loss(logits, np.zeros((2, 1, 8, 8), dtype=np.int64))


@pytest.mark.parametrize("loss", [F.cross_entropy, F.nll_loss])
def test_per_pixel_label_outside_the_classes_names_where_it_is(loss):
    logits = Tensor(np.zeros((2, 3, 4, 4)))
    target = np.zeros((2, 4, 4), dtype=np.int64)
    target[1, 2, 3] = 3
    with pytest.raises(IndexError, match=rf"{loss.__name__}: target label 3 is out of range for 3 "
                                         r"classes \(expected 0..2, or ignore_index=-100\); "
                                         r"first at target\[1, 2, 3\] of a target of shape "
                                         r"\(2, 4, 4\), input \(2, 3, 4, 4\)"):
        loss(logits, target)
    target[1, 2, 3] = 255  # VOC's void label: a hint, and fine once it is the ignore_index
    with pytest.raises(IndexError, match="pass ignore_index=255"):
        loss(logits, target)
    assert np.isfinite(loss(logits, target, ignore_index=255).item())


def test_float_class_indices_are_named_as_such():
    with pytest.raises(ValueError, match=r"cross_entropy \(class-probability target\): target "
                                         r"shape \(2, 4, 4\) must equal input shape "
                                         r"\(2, 3, 4, 4\); a float target of this shape looks "
                                         r"like class indices"):
        F.cross_entropy(Tensor(np.zeros((2, 3, 4, 4))), np.zeros((2, 4, 4)))


@pytest.mark.parametrize("loss", [F.binary_cross_entropy, F.binary_cross_entropy_with_logits])
def test_binary_targets_are_probabilities(loss):
    x = Tensor(np.full((2, 1, 3, 3), 0.5))
    mask = np.zeros((2, 1, 3, 3))
    mask[0, 0, 1, 1] = 255.0  # a 0/255 mask
    with pytest.raises(ValueError, match=rf"{loss.__name__}: target must hold probabilities in "
                                         r"\[0, 1\] \(0/1 labels or soft labels\), got 255.0 at "
                                         r"target\[0, 0, 1, 1\] \(target shape \(2, 1, 3, 3\)\)"):
        loss(x, mask)
    for bad in (-1.0, np.nan):
        mask[0, 0, 1, 1] = bad
        with pytest.raises(ValueError, match=rf"{loss.__name__}: target must hold probabilities"):
            loss(x, mask)
    # soft labels, as PyTorch allows: fine, and equal to the formula
    soft = np.linspace(0, 1, 18).reshape(2, 1, 3, 3)
    p = 0.5 if loss is F.binary_cross_entropy else 1 / (1 + np.exp(-0.5))
    want = -(soft * np.log(p) + (1 - soft) * np.log(1 - p)).mean()
    assert loss(x, soft).item() == pytest.approx(want)
    # a [N, H, W] mask for [N, 1, H, W] logits: the shapes are named
    with pytest.raises(ValueError, match=rf"{loss.__name__}: target shape \(2, 3, 3\) must equal "
                                         r"input shape \(2, 1, 3, 3\)"):
        loss(x, soft[:, 0])
