"""Detection losses: forward against NumPy references written from the papers' formulas,
float64 gradchecks over every element of the predictions, and errors / empty inputs."""

import math

import numpy as np
import pytest

import minidl
from minidl import Tensor, gradcheck
from minidl.testing import check_forward
from minidl.vision.loss import (
    fastrcnn_loss,
    generalized_box_iou_loss,
    keypointrcnn_loss,
    keypoints_to_heatmap,
    maskrcnn_loss,
    prior_bias,
    project_masks_on_boxes,
    rpn_loss,
    sigmoid_focal_loss,
    yolo_v1_loss,
    yolo_v1_loss_terms,
    yolo_v1_targets,
)
from minidl.vision.sampler import BalancedPositiveNegativeSampler

RNG = np.random.default_rng(21)


def t64(a, grad=True):
    return Tensor(np.asarray(a, dtype=np.float64), requires_grad=grad)


def np_sigmoid(x):
    return 1 / (1 + np.exp(-x))


def np_bce_logits(x, y):
    p = np_sigmoid(x)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def np_smooth_l1(d, beta):
    a = np.abs(d)
    return np.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)


def np_log_softmax(z):
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


# ---- focal loss -----------------------------------------------------------------
@pytest.mark.parametrize("alpha,gamma,reduction", [(0.25, 2.0, "none"), (0.5, 1.5, "mean"),
                                                   (-1.0, 2.0, "sum"), (0.25, 0.0, "none")])
def test_sigmoid_focal_loss(alpha, gamma, reduction):
    x = RNG.standard_normal((4, 3)) * 2
    y = (RNG.random((4, 3)) < 0.3).astype(np.float64)

    def reference(x):
        p = np_sigmoid(x)
        p_t = p * y + (1 - p) * (1 - y)
        loss = np_bce_logits(x, y) * (1 - p_t) ** gamma
        if alpha >= 0:
            loss = loss * (alpha * y + (1 - alpha) * (1 - y))
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]

    fn = lambda t: sigmoid_focal_loss(t, y, alpha, gamma, reduction)  # noqa: E731
    check_forward(fn, reference, [x])
    assert gradcheck(fn, [t64(x)])


def test_focal_loss_errors_and_prior_bias():
    with pytest.raises(ValueError, match="sigmoid_focal_loss: targets"):
        sigmoid_focal_loss(t64(np.zeros((2, 3))), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="reduction must be one of"):
        sigmoid_focal_loss(t64(np.zeros(2)), np.zeros(2), reduction="avg")
    b = prior_bias(0.01)
    assert b == pytest.approx(-math.log(99))
    assert np_sigmoid(b) == pytest.approx(0.01)
    with pytest.raises(ValueError, match=r"prior_bias: prior_probability must be in \(0, 1\)"):
        prior_bias(1.0)


# ---- GIoU loss -----------------------------------------------------------------------
def test_generalized_box_iou_loss():
    a = np.array([[0.0, 0, 2, 2], [1, 1, 3, 4], [0, 0, 1, 1]]) + RNG.uniform(0, 0.1, (3, 4))
    b = np.array([[1.0, 1, 3, 3], [1.5, 0, 2.5, 5], [5, 5, 6, 7]]) + RNG.uniform(0, 0.1, (3, 4))

    def reference(p, q):
        out = []
        for u, v in zip(p, q):
            iw = max(0, min(u[2], v[2]) - max(u[0], v[0]))
            ih = max(0, min(u[3], v[3]) - max(u[1], v[1]))
            union = (u[2] - u[0]) * (u[3] - u[1]) + (v[2] - v[0]) * (v[3] - v[1]) - iw * ih
            c = (max(u[2], v[2]) - min(u[0], v[0])) * (max(u[3], v[3]) - min(u[1], v[1]))
            out.append(1 - iw * ih / union + (c - union) / c)
        return np.array(out)

    check_forward(generalized_box_iou_loss, reference, [a, b], atol=1e-6)
    assert gradcheck(generalized_box_iou_loss, [t64(a), t64(b)])
    with pytest.raises(ValueError, match=r"must both be \[N, 4\]"):
        generalized_box_iou_loss(a, b[:2])


# ---- Fast R-CNN -------------------------------------------------------------------------
def test_fastrcnn_loss_against_the_formula():
    r, k1 = 6, 4
    logits = RNG.standard_normal((r, k1))
    box = RNG.standard_normal((r, 4 * k1)) * 0.2
    labels = np.array([0, 2, 3, 0, 1, 2])
    targets = RNG.standard_normal((r, 4)) * 0.2

    def reference(logits, box):
        ce = -np_log_softmax(logits)[np.arange(r), labels].mean()
        per_class = box.reshape(r, k1, 4)
        pos = labels > 0
        loc = np_smooth_l1(per_class[pos, labels[pos]] - targets[pos], 1 / 9).sum() / r
        return ce, loc

    fn = lambda a, b: fastrcnn_loss(a, b, labels, targets)  # noqa: E731
    check_forward(fn, reference, [logits, box])
    assert gradcheck(fn, [t64(logits), t64(box)])
    # per-image lists are concatenated
    split = fastrcnn_loss(t64(logits), t64(box), [labels[:2], labels[2:]],
                          [targets[:2], targets[2:]])
    whole = fn(t64(logits), t64(box))
    np.testing.assert_allclose([s.item() for s in split], [v.item() for v in whole])


def test_fastrcnn_loss_class_agnostic_boxes_and_errors():
    logits, box = t64(RNG.standard_normal((3, 3))), t64(RNG.standard_normal((3, 4)))
    labels, targets = np.array([1, 0, 2]), RNG.standard_normal((3, 4))
    _, loc = fastrcnn_loss(logits, box, labels, targets)
    want = np_smooth_l1(box.data[[0, 2]] - targets[[0, 2]], 1 / 9).sum() / 3
    assert loc.item() == pytest.approx(want)
    with pytest.raises(ValueError, match="fastrcnn_loss: no RoIs"):
        fastrcnn_loss(t64(np.zeros((0, 3))), t64(np.zeros((0, 12))), np.zeros(0, int),
                      np.zeros((0, 4)))
    with pytest.raises(ValueError, match=r"box_regression must be \[R, 4 \(K \+ 1\)\]"):
        fastrcnn_loss(logits, t64(np.zeros((3, 8))), labels, targets)
    with pytest.raises(ValueError, match="fastrcnn_loss: 3 RoIs but labels"):
        fastrcnn_loss(logits, box, labels[:2], targets)


# ---- RPN --------------------------------------------------------------------------------
def test_rpn_loss_against_the_formula():
    labels = [np.array([1, 0, 0, -1, 0, 1, 0, 0]), np.array([0, 0, 1, 0, -1, 0])]
    a = 14
    objectness = RNG.standard_normal((a, 1))
    deltas = RNG.standard_normal((a, 4)) * 0.3
    targets = [RNG.standard_normal((8, 4)) * 0.3, RNG.standard_normal((6, 4)) * 0.3]

    def sampler():
        return BalancedPositiveNegativeSampler(4, 0.5, np.random.default_rng(5))

    pos, neg = sampler()(labels)
    pos, neg = np.concatenate(pos), np.concatenate(neg)
    sampled = pos | neg
    all_labels, all_targets = np.concatenate(labels), np.concatenate(targets)

    def reference(obj, d):
        o = np_bce_logits(obj[:, 0][sampled], (all_labels[sampled] > 0).astype(float)).mean()
        box = np_smooth_l1(d[pos] - all_targets[pos], 1 / 9).sum() / sampled.sum()
        return o, box

    fn = lambda o, d: rpn_loss(o, d, labels, targets, sampler())  # noqa: E731
    check_forward(fn, reference, [objectness, deltas])
    assert gradcheck(fn, [t64(objectness), t64(deltas)])


def test_rpn_loss_errors():
    sampler = BalancedPositiveNegativeSampler(4, 0.5)
    with pytest.raises(ValueError, match="rpn_loss: 3 anchor labels"):
        rpn_loss(t64(np.zeros(2)), t64(np.zeros((2, 4))), [np.array([1, 0, 0])],
                 [np.zeros((3, 4))], sampler)
    with pytest.raises(ValueError, match="rpn_loss: the sampler chose no anchors"):
        rpn_loss(t64(np.zeros(2)), t64(np.zeros((2, 4))), [np.array([-1, -1])],
                 [np.zeros((2, 4))], sampler)


# ---- YOLO v1 ---------------------------------------------------------------------------
def test_yolo_v1_targets_by_hand():
    boxes = [np.array([[0.0, 0, 20, 10], [2.0, 1, 18, 9], [40, 40, 60, 64]])]
    target = yolo_v1_targets(boxes, [np.array([1, 2, 0])], (64, 64), grid_size=4, num_classes=3)
    assert target.shape == (1, 4, 4, 8)
    np.testing.assert_allclose(target[0, 0, 0], [10 / 16, 5 / 16, 20 / 64, 10 / 64, 1, 0, 1, 0])
    np.testing.assert_allclose(target[0, 3, 3], [2 / 16, 4 / 16, 20 / 64, 24 / 64, 1, 1, 0, 0])
    assert target[0, 1:3].sum() == 0 and target[0, :, 1:3].sum() == 0  # second box: same cell
    with pytest.raises(ValueError, match="yolo_v1_targets: image 0 needs 1 labels in 0..2"):
        yolo_v1_targets([boxes[0][:1]], [np.array([3])], (64, 64), 4, 3)


def naive_yolo_terms(pred, target, b, lc, ln, eps=1e-6, frozen=None):
    """YOLO v1's loss, cell by cell and predictor by predictor (paper eq. 3). ``frozen``:
    the prediction whose IoUs give the responsible predictor and the confidence target."""
    frozen = pred if frozen is None else frozen
    n, s = pred.shape[:2]

    def xyxy(v, i, j):
        cx, cy = (j + v[0]) / s, (i + v[1]) / s
        w, h = max(v[2], 0) / 2, max(v[3], 0) / 2
        return (cx - w, cy - h, cx + w, cy + h)

    def iou(p, q):
        iw = max(0.0, min(p[2], q[2]) - max(p[0], q[0]))
        ih = max(0.0, min(p[3], q[3]) - max(p[1], q[1]))
        u = (p[2] - p[0]) * (p[3] - p[1]) + (q[2] - q[0]) * (q[3] - q[1]) - iw * ih
        return iw * ih / u if u > 0 else 0.0

    def ssqrt(v):
        return math.copysign(math.sqrt(abs(v) + eps), v) if v != 0 else 0.0

    terms = dict.fromkeys(["coord", "size", "obj", "noobj", "class"], 0.0)
    for m in range(n):
        for i in range(s):
            for j in range(s):
                t = target[m, i, j]
                boxes = [pred[m, i, j, 5 * k:5 * k + 5] for k in range(b)]
                if t[4] > 0:
                    ious = [iou(xyxy(frozen[m, i, j, 5 * k:5 * k + 5], i, j), xyxy(t, i, j))
                            for k in range(b)]
                    r = int(np.argmax(ious))
                    bx = boxes[r]
                    terms["coord"] += lc * ((bx[0] - t[0]) ** 2 + (bx[1] - t[1]) ** 2)
                    terms["size"] += lc * ((ssqrt(bx[2]) - ssqrt(t[2])) ** 2
                                           + (ssqrt(bx[3]) - ssqrt(t[3])) ** 2)
                    terms["obj"] += (bx[4] - ious[r]) ** 2
                    terms["class"] += ((pred[m, i, j, 5 * b:] - t[5:]) ** 2).sum()
                else:
                    r = -1
                for k in range(b):
                    if k != r:
                        terms["noobj"] += ln * boxes[k][4] ** 2
    return {key: v / n for key, v in terms.items()}


def test_yolo_v1_loss_against_a_cell_by_cell_loop():
    s, b, c = 3, 2, 4
    boxes = [np.array([[2.0, 3, 20, 25], [30, 30, 44, 47]]), np.array([[10.0, 12, 40, 30]])]
    target = yolo_v1_targets(boxes, [np.array([0, 3]), np.array([2])], (48, 48), s, c)
    pred = RNG.uniform(0.05, 0.95, (2, s, s, 5 * b + c))
    got = yolo_v1_loss_terms(t64(pred, False), target, b)
    want = naive_yolo_terms(pred, target.astype(np.float64), b, 5.0, 0.5)
    for key in want:
        assert got[key].item() == pytest.approx(want[key], rel=1e-12), key
    total = yolo_v1_loss(t64(pred, False), target, b).item()
    assert total == pytest.approx(sum(want.values()), rel=1e-12)
    # The responsible predictor and the confidence target (its IoU) are constants of the
    # loss (no gradient through them, as in the paper), so compare backward with central
    # differences of the loop loss at frozen IoUs, over every element.
    p = t64(pred)
    yolo_v1_loss(p, target, b).backward()
    numeric = np.zeros_like(pred)
    for index in np.ndindex(pred.shape):
        shifted = []
        for step in (1e-6, -1e-6):
            moved = pred.copy()
            moved[index] += step
            shifted.append(sum(naive_yolo_terms(moved, target, b, 5.0, 0.5, frozen=pred).values()))
        numeric[index] = (shifted[0] - shifted[1]) / 2e-6
    np.testing.assert_allclose(p.grad, numeric, atol=1e-6, rtol=1e-5)
    # With the box channels held fixed the loss is an ordinary function: gradcheck it too.
    conf_and_class = [4, 9] + list(range(10, 14))
    fixed = t64(pred, False)

    def on_scores(scores):
        return yolo_v1_loss(minidl.cat([fixed[..., :4], scores[..., :1], fixed[..., 5:9],
                                        scores[..., 1:]], dim=-1), target, b)

    assert gradcheck(on_scores, [t64(pred[..., conf_and_class])])


def test_yolo_v1_loss_with_negative_sizes_uses_the_signed_square_root():
    # an untrained network predicts negative w and h: the size term compares
    # sign(w) sqrt(|w|) with sqrt(w^), so w = -0.25 is farther from w^ = 0.25 than w = 0.25
    s, b, c = 3, 2, 4
    boxes = [np.array([[2.0, 3, 20, 25], [30, 30, 44, 47]])]
    target = yolo_v1_targets(boxes, [np.array([0, 3])], (48, 48), s, c)
    pred = RNG.uniform(0.05, 0.95, (1, s, s, 5 * b + c))
    pred[..., [2, 3, 7, 8]] *= -1  # every predicted w and h negative
    got = yolo_v1_loss_terms(t64(pred, False), target, b)
    want = naive_yolo_terms(pred, target.astype(np.float64), b, 5.0, 0.5)
    for key in want:
        assert got[key].item() == pytest.approx(want[key], rel=1e-12), key


def test_yolo_v1_loss_errors():
    with pytest.raises(ValueError, match=r"yolo_v1_loss: predictions must be \[N, S, S, B\*5"):
        yolo_v1_loss(t64(np.zeros((1, 3, 3, 14))), np.zeros((1, 3, 3, 8)), 2)


# ---- Mask R-CNN --------------------------------------------------------------------------
def test_maskrcnn_loss():
    logits = RNG.standard_normal((3, 4, 5, 5))
    labels = np.array([2, 0, 3])
    targets = (RNG.random((3, 5, 5)) < 0.5).astype(np.float64)

    def reference(z):
        return np_bce_logits(z[np.arange(3), labels], targets).mean()

    fn = lambda z: maskrcnn_loss(z, labels, targets)  # noqa: E731
    check_forward(fn, reference, [logits])
    assert gradcheck(fn, [t64(logits)])
    empty = t64(np.zeros((0, 4, 5, 5)))
    loss = maskrcnn_loss(empty, np.zeros(0, int), np.zeros((0, 5, 5)))
    assert loss.item() == 0.0 and loss.requires_grad
    with pytest.raises(ValueError, match=r"maskrcnn_loss: mask_logits \(3, 4, 5, 5\) need"):
        maskrcnn_loss(t64(logits), labels[:2], targets)


def test_project_masks_on_boxes():
    masks = np.zeros((2, 8, 8))
    masks[0, :, :4] = 1  # left half
    masks[1] = 1
    boxes = np.array([[0.0, 0, 8, 8], [2.0, 2, 6, 6]])
    out = project_masks_on_boxes(masks, boxes, np.array([0, 1]), 4)
    assert out.shape == (2, 4, 4) and out.dtype == np.float32
    # bins of 2 px with 2 x 2 samples; columns: x = 0.5, 1.5 -> 1; x = 2.5, 3.5 -> (1 + 0.5) / 2
    np.testing.assert_allclose(out[0], [[1, 0.75, 0, 0]] * 4)
    np.testing.assert_allclose(out[1], 1)


def test_keypoints_to_heatmap_and_loss():
    rois = np.array([[0.0, 0, 8, 8], [2.0, 4, 6, 12]])
    kp = np.array([[[1.0, 1, 1], [7.9, 0.5, 2], [8.0, 8.0, 1], [3, 3, 0]],
                   [[2.0, 4, 1], [5.9, 11.9, 1], [1.0, 5, 1], [4, 8, 1]]])
    heat, valid = keypoints_to_heatmap(kp, rois, 4)
    # cells of 2 px (RoI 0) / 1 x 2 px (RoI 1); the right/bottom edge goes to the last cell
    np.testing.assert_array_equal(heat, [[0 * 4 + 0, 0 * 4 + 3, 3 * 4 + 3, 0],
                                         [0, 3 * 4 + 3, 0, 2 * 4 + 2]])
    np.testing.assert_array_equal(valid, [[1, 1, 1, 0], [1, 1, 0, 1]])
    logits = RNG.standard_normal((2, 4, 4, 4))

    def reference(z):
        flat = np_log_softmax(z.reshape(8, 16))
        keep = valid.reshape(-1)
        return -flat[keep, heat.reshape(-1)[keep]].mean()

    fn = lambda z: keypointrcnn_loss(z, heat, valid)  # noqa: E731
    check_forward(fn, reference, [logits])
    assert gradcheck(fn, [t64(logits)])
    none = keypointrcnn_loss(t64(logits), heat, np.zeros_like(valid))
    assert none.item() == 0.0
    with pytest.raises(ValueError, match="keypoints_to_heatmap: every RoI needs a positive"):
        keypoints_to_heatmap(kp, np.array([[0.0, 0, 0, 8], [0, 0, 1, 1]]), 4)
