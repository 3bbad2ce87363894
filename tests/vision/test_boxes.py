"""Box utilities: formats, areas, IoU (kernel and composite), GIoU, clipping, masks.

References are written here from the definitions (per-pair Python loops), never
from the code under test.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minidl
from minidl import Tensor
from minidl.testing import check_op
from minidl.vision.boxes import (
    box_area,
    box_convert,
    box_iou,
    clip_boxes_to_image,
    elementwise_box_iou,
    elementwise_generalized_box_iou,
    generalized_box_iou,
    iou_from_areas,
    masks_to_boxes,
    remove_small_boxes,
)

RNG = np.random.default_rng(5)


def random_boxes(n, size=20.0, rng=RNG, min_side=0.5):
    """xyxy boxes with continuous coordinates (so no two coordinates tie)."""
    x1, y1 = rng.uniform(0, size, n), rng.uniform(0, size, n)
    w, h = rng.uniform(min_side, size / 2, n), rng.uniform(min_side, size / 2, n)
    return np.stack([x1, y1, x1 + w, y1 + h], axis=1)


def naive_iou(a, b):
    """IoU of two boxes from the definition |A n B| / |A u B|."""
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def naive_giou(a, b):
    c = (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))
    area_c = (c[2] - c[0]) * (c[3] - c[1])
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih
    return naive_iou(a, b) - (area_c - union) / area_c


def pairwise(fn, b1, b2):
    return np.array([[fn(a, b) for b in b2] for a in b1]).reshape(len(b1), len(b2))


# ---- formats ----------------------------------------------------------------------
def test_box_convert_by_hand():
    xyxy = np.array([[1.0, 2.0, 5.0, 8.0]])
    np.testing.assert_allclose(box_convert(xyxy, "xyxy", "xywh"), [[1, 2, 4, 6]])
    np.testing.assert_allclose(box_convert(xyxy, "xyxy", "cxcywh"), [[3, 5, 4, 6]])
    np.testing.assert_allclose(box_convert(np.array([[3.0, 5, 4, 6]]), "cxcywh", "xyxy"), xyxy)
    np.testing.assert_allclose(box_convert(np.array([[1.0, 2, 4, 6]]), "xywh", "xyxy"), xyxy)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 6), st.sampled_from(["xyxy", "xywh", "cxcywh"]),
       st.sampled_from(["xyxy", "xywh", "cxcywh"]))
def test_box_convert_round_trips(n, a, b):
    boxes = random_boxes(n, rng=np.random.default_rng(n))
    there = box_convert(box_convert(boxes, "xyxy", a), a, b)
    np.testing.assert_allclose(box_convert(there, b, "xyxy"), boxes, atol=1e-12)


def test_box_convert_keeps_leading_axes_and_is_differentiable():
    boxes = random_boxes(6).reshape(2, 3, 4)
    assert box_convert(boxes, "xyxy", "cxcywh").shape == (2, 3, 4)
    check_op(lambda b: box_convert(b, "cxcywh", "xyxy"),
             lambda b: np.concatenate([b[..., :2] - b[..., 2:] / 2, b[..., :2] + b[..., 2:] / 2],
                                      -1),
             [boxes])


def test_box_convert_rejects_unknown_format():
    with pytest.raises(ValueError, match="box_convert: unknown box format 'yxyx'"):
        box_convert(random_boxes(2), "yxyx", "xyxy")


def test_box_area():
    boxes = random_boxes(5)
    check_op(box_area, lambda b: (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1]), [boxes])
    np.testing.assert_allclose(box_area(np.array([[0.0, 0, 10, 10]])), [100])  # no +1


def test_box_iou_matches_the_definition():
    b1, b2 = random_boxes(6), random_boxes(4)
    b2[:2] = b1[:2] + [0.5, -0.3, 0.5, -0.3]  # some overlap for sure
    np.testing.assert_allclose(box_iou(b1, b2), pairwise(naive_iou, b1, b2), atol=1e-12)


def test_box_iou_small_cases_by_hand():
    a = np.array([[0.0, 0, 2, 2]])
    b = np.array([[1.0, 1, 3, 3], [2.0, 0, 4, 2], [0.0, 0, 2, 2]])
    np.testing.assert_allclose(box_iou(a, b), [[1 / 7, 0.0, 1.0]])  # touching edges: 0


def test_box_iou_float32_and_empty_and_degenerate():
    b = random_boxes(3).astype(np.float32)
    assert box_iou(b, b).dtype == np.float32
    assert box_iou(np.zeros((0, 4)), b).shape == (0, 3)
    point = np.array([[1.0, 1.0, 1.0, 1.0]])
    assert box_iou(point, point)[0, 0] == 0.0  # documented: 0, not NaN


def test_box_iou_with_tensors_is_differentiable():
    b1, b2 = random_boxes(3), random_boxes(4)
    b2[:2] = b1[:2] + [0.3, 0.2, -0.4, 0.1]
    check_op(box_iou, lambda p, q: pairwise(naive_iou, p, q), [b1, b2])
    out = box_iou(Tensor(b1), b2)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.data, box_iou(b1, b2), atol=1e-12)


def test_generalized_box_iou_matches_definition_and_gradchecks():
    b1, b2 = random_boxes(3), random_boxes(4)
    b2[0] = b1[0] + [0.3, 0.2, -0.4, 0.1]
    np.testing.assert_allclose(generalized_box_iou(b1, b2), pairwise(naive_giou, b1, b2),
                               atol=1e-12)
    check_op(generalized_box_iou, lambda p, q: pairwise(naive_giou, p, q), [b1, b2])


def test_generalized_box_iou_range_and_identity():
    b = random_boxes(5)
    g = generalized_box_iou(b, b)
    np.testing.assert_allclose(np.diag(g), 1.0)
    assert (g >= -1 - 1e-12).all() and (g <= 1 + 1e-12).all()
    far = generalized_box_iou(np.array([[0.0, 0, 1, 1]]), np.array([[9.0, 9, 10, 10]]))
    np.testing.assert_allclose(far, [[-98 / 100]])


# Edge cases where the conventions live: touching, nested, identical, zero-area boxes.
EDGE_BOXES = np.array([
    [0.0, 0, 2, 2],
    [2.0, 0, 4, 2],     # touches box 0 along an edge: IoU 0 (no "+1")
    [0.5, 0.5, 1.5, 1.5],  # inside box 0
    [0.0, 0, 2, 2],     # identical to box 0
    [1.0, 0, 1, 2],     # zero width, inside box 0
    [1.0, 1, 1, 1],     # a point
    [1.0, 1, 1, 1],     # the same point: empty union -> 0
    [5.0, 5, 6, 7],     # far away
])


def test_kernel_and_composite_agree_on_every_convention():
    # box_iou on ndarrays runs the numba kernel; on Tensors (and elementwise_box_iou) the
    # composite: a convention changed in one and not the other fails here
    kernel = box_iou(EDGE_BOXES, EDGE_BOXES)
    composite = box_iou(Tensor(EDGE_BOXES), EDGE_BOXES).data
    np.testing.assert_allclose(kernel, composite, atol=1e-15)
    np.testing.assert_allclose(kernel, pairwise(naive_iou, EDGE_BOXES, EDGE_BOXES), atol=1e-15)
    np.testing.assert_allclose(elementwise_box_iou(EDGE_BOXES[:, None], EDGE_BOXES[None]),
                               kernel, atol=1e-15)
    assert kernel[0, 1] == 0.0 and kernel[0, 2] == 0.25 and kernel[5, 6] == 0.0


def test_elementwise_box_iou_pairs_rows_and_broadcasts():
    b1, b2 = random_boxes(5), random_boxes(5)
    b2[:3] = b1[:3] + [0.3, -0.2, 0.4, 0.1]
    want = np.array([naive_iou(a, b) for a, b in zip(b1, b2)])
    np.testing.assert_allclose(elementwise_box_iou(b1, b2), want, atol=1e-12)
    # [N, 1, 4] against [1, M, 4]: every pair, as box_iou
    np.testing.assert_allclose(elementwise_box_iou(b1[:, None], b2[None]), box_iou(b1, b2),
                               atol=1e-12)
    check_op(elementwise_box_iou, lambda p, q: np.array([naive_iou(a, b) for a, b in zip(p, q)]),
             [b1, b2])
    with pytest.raises(ValueError, match=r"elementwise_box_iou: boxes1 \(5, 4\) and boxes2 "
                                         r"\(3, 4\) must pair up row by row"):
        elementwise_box_iou(b1, b2[:3])


def test_crowd_rule_by_hand():
    # detection 10 x 10, crowd region 40 x 10, overlap 5 x 10: 50 / 100 with the crowd rule
    # (the detection's area), 50 / 450 without (the union); the crowd's own area would give
    # 50 / 400
    det = np.array([[0.0, 0, 10, 10]] * 2)
    crowd = np.array([[5.0, 0, 45, 10]] * 2)
    np.testing.assert_allclose(elementwise_box_iou(det, crowd, crowd=[True, False]),
                               [0.5, 50 / 450])
    np.testing.assert_allclose(iou_from_areas(np.array([50.0, 0.0]), np.array([100.0, 0.0]),
                                              np.array([400.0, 0.0])), [50 / 450, 0.0])
    out = elementwise_box_iou(Tensor(det), crowd, crowd=[True, False])
    np.testing.assert_allclose(out.data, [0.5, 50 / 450])


def test_elementwise_generalized_box_iou_is_the_diagonal_of_the_pairwise_one():
    b1, b2 = random_boxes(4), random_boxes(4)
    b2[0] = b1[0] + [0.3, 0.2, -0.4, 0.1]
    np.testing.assert_allclose(elementwise_generalized_box_iou(b1, b2),
                               [naive_giou(a, b) for a, b in zip(b1, b2)], atol=1e-12)
    check_op(elementwise_generalized_box_iou,
             lambda p, q: np.array([naive_giou(a, b) for a, b in zip(p, q)]), [b1, b2])


@pytest.mark.parametrize("fn", [box_iou, generalized_box_iou])
def test_pairwise_functions_reject_bad_boxes(fn):
    good = random_boxes(2)
    flipped = good.copy()
    flipped[1, [0, 2]] = flipped[1, [2, 0]]
    with pytest.raises(ValueError, match=r"boxes2 row 1 .* has x2 < x1"):
        fn(good, flipped)
    nan = good.copy()
    nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="boxes1 row 0 has a non-finite coordinate"):
        fn(nan, good)
    with pytest.raises(ValueError, match=r"must have shape \[N, 4\]"):
        fn(good[:, :3], good)


# ---- clipping, filtering, masks ------------------------------------------------------
def test_clip_boxes_to_image():
    boxes = np.array([[-3.0, 2, 12, 30], [1, -1, 4, 5]])
    np.testing.assert_allclose(clip_boxes_to_image(boxes, (20, 10)), [[0, 2, 10, 20], [1, 0, 4, 5]])
    inside = random_boxes(3, size=4)
    check_op(lambda b: clip_boxes_to_image(b, (100, 100)), lambda b: b, [inside])


def test_remove_small_boxes():
    boxes = np.array([[0.0, 0, 1, 5], [0, 0, 3, 3], [0, 0, 5, 2.9], [1, 1, 4, 4]])
    np.testing.assert_array_equal(remove_small_boxes(boxes, 3.0), [1, 3])
    assert remove_small_boxes(np.zeros((0, 4)), 1.0).dtype == np.int64


def test_masks_to_boxes():
    masks = np.zeros((3, 6, 8), dtype=np.uint8)
    masks[0, 1:4, 2:7] = 1
    masks[1, 5, 0] = 1
    out = masks_to_boxes(masks)
    np.testing.assert_array_equal(out, [[2, 1, 6, 3], [0, 5, 0, 5], [0, 0, 0, 0]])
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match=r"masks_to_boxes: masks must have shape \[N, H, W\]"):
        masks_to_boxes(masks[0])


def test_boxes_package_names():
    import minidl.vision as V
    assert V.box_iou is box_iou and minidl.vision.nms is not None
