"""Detection metrics: hand-computed AP, VOC evaluation, properties, errors.

Every expected number below is worked out by hand in the comment above it.
"""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl import Tensor
from minidl.vision.metrics import (
    average_precision,
    coco_evaluate,
    mask_iou,
    pairwise_box_iou,
    precision_recall,
    scaled_area_ranges,
    voc_evaluate,
)

# ---------------------------------------------------------------------------
# AP of one ranked list, by hand
# ---------------------------------------------------------------------------

def test_precision_recall_and_ap_of_a_ranked_list_by_hand():
    # ranked: TP FP TP FP TP, 4 positives (one object never found)
    # TP_k = 1 1 2 2 3, FP_k = 0 1 1 2 2
    # precision = 1/1 1/2 2/3 2/4 3/5 = 1, .5, .667, .5, .6
    # recall    = 1/4 1/4 2/4 2/4 3/4 = .25 .25 .5 .5 .75
    p, r = precision_recall([1, 0, 1, 0, 1], num_positives=4)
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3, 0.5, 0.6])
    np.testing.assert_allclose(r, [0.25, 0.25, 0.5, 0.5, 0.75])
    # monotone envelope (best precision at this recall or beyond): 1, 2/3, 2/3, .6, .6
    # all-point: recall rises 0->.25 (p 1), .25->.5 (p 2/3), .5->.75 (p .6), .75->1 (p 0)
    #   AP = .25 * 1 + .25 * 2/3 + .25 * .6 = .25 + 1/6 + .15
    assert average_precision(p, r, "all") == pytest.approx(0.25 + 1 / 6 + 0.15)
    # 11-point: r = 0, .1, .2 -> 1 (3 levels); .3, .4, .5 -> 2/3 (3 levels: ranks 3-5 reach
    #   recall .5 >= .5); .6, .7 -> .6 (rank 5, recall .75); .8, .9, 1 -> 0
    #   AP = (3 * 1 + 3 * 2/3 + 2 * .6) / 11 = 6.2 / 11
    assert average_precision(p, r, "11point") == pytest.approx(6.2 / 11)


def test_voc07_all_point_and_coco101_differ_on_a_known_example():
    # ranked: TP FP TP TP, 3 positives
    # precision 1, 1/2, 2/3, 3/4; recall 1/3, 1/3, 2/3, 1; envelope 1, 3/4, 3/4, 3/4
    p, r = precision_recall([True, False, True, True], num_positives=3)
    # all-point: 1/3 * 1 + 1/3 * 3/4 + 1/3 * 3/4 = 2.5 / 3
    assert average_precision(p, r, "all") == pytest.approx(2.5 / 3)
    # 11-point: levels 0, .1, .2, .3 (<= 1/3) -> 1; .4 ... 1.0 (7 levels) -> 3/4
    #   (4 + 7 * .75) / 11 = 9.25 / 11
    assert average_precision(p, r, "11point") == pytest.approx(9.25 / 11)
    # 101-point: levels 0.00 ... 0.33 (34 levels) -> 1; 0.34 ... 1.00 (67 levels) -> 3/4
    #   (34 + 67 * .75) / 101 = 84.25 / 101
    assert average_precision(p, r, "101point") == pytest.approx(84.25 / 101)


def test_average_precision_edge_cases():
    assert average_precision([], [], "all") == 0.0
    assert average_precision([], [], "11point") == 0.0
    assert average_precision([1.0], [1.0], "all") == 1.0
    assert average_precision([1.0], [1.0], "101point") == 1.0
    with pytest.raises(ValueError, match="num_positives"):
        precision_recall([1, 0], 0)
    with pytest.raises(ValueError, match="method"):
        average_precision([1.0], [1.0], "13point")
    with pytest.raises(ValueError, match="same length"):
        average_precision([1.0, 0.5], [1.0], "all")


def test_precision_recall_skips_ignored_detections():
    # TP, (ignored), FP, TP with 2 positives -> like TP FP TP: p 1, .5, 2/3; r .5 .5 1
    p, r = precision_recall([1, 0, 0, 1], 2, ignored=[0, 1, 0, 0])
    np.testing.assert_allclose(p, [1, 0.5, 2 / 3])
    np.testing.assert_allclose(r, [0.5, 0.5, 1.0])


# ---------------------------------------------------------------------------
# IoU
# ---------------------------------------------------------------------------

def test_box_and_mask_iou_by_hand():
    a = np.array([[0, 0, 10, 10]], float)
    b = np.array([[5, 0, 15, 10], [20, 20, 30, 30]], float)
    # overlap 5 x 10 = 50; union 100 + 100 - 50 = 150 -> 1/3; disjoint -> 0
    np.testing.assert_allclose(pairwise_box_iou(a, b), [[1 / 3, 0.0]])
    # crowd: intersection / area of the first box = 50 / 100
    np.testing.assert_allclose(pairwise_box_iou(a, b, crowd=[True, False]), [[0.5, 0.0]])
    m1 = np.zeros((1, 4, 4), bool)
    m1[0, :2, :2] = True  # 4 pixels
    m2 = np.zeros((2, 4, 4), bool)
    m2[0, :2, :] = True  # 8 pixels, 4 shared -> 4 / 8
    m2[1, 3, 3] = True   # disjoint
    np.testing.assert_allclose(mask_iou(m1, m2), [[0.5, 0.0]])
    np.testing.assert_allclose(mask_iou(m1.astype(np.float32) * 0.9, m2), [[0.5, 0.0]])
    with pytest.raises(ValueError, match="same size"):
        mask_iou(m1, np.zeros((1, 5, 4), bool))


# ---------------------------------------------------------------------------
# VOC evaluation on hand-made images
# ---------------------------------------------------------------------------

def _voc_case():
    """Class 1: A, B (+ difficult C) in image 0, D in image 1. Class 2: one box, never
    detected. Class 3: no ground truth, one detection."""
    targets = [
        {"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50],
                            [60, 0, 70, 10]], float),
         "labels": np.array([1, 1, 1, 2]), "difficult": np.array([0, 0, 1, 0])},
        {"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])},
    ]
    predictions = [
        {"boxes": np.array([[0, 0, 10, 10],    # d1 .9 on A: TP
                            [0, 0, 10, 9],     # d2 .8 on A again (IoU .9): duplicate -> FP
                            [40, 40, 50, 50],  # d3 .7 on difficult C: ignored
                            [20, 20, 30, 30],  # d5 .5 on B: TP
                            [0, 30, 5, 35]],   # class 3 (no ground truth anywhere)
                           float),
         "scores": np.array([0.9, 0.8, 0.7, 0.5, 0.3]), "labels": np.array([1, 1, 1, 1, 3])},
        {"boxes": np.array([[0, 0, 10, 4],     # d4 .6 on D, IoU 40/100 = .4 -> FP
                            [0, 0, 10, 10]],   # d6 .4 on D: TP
                           float),
         "scores": np.array([0.6, 0.4]), "labels": np.array([1, 1])},
    ]
    return predictions, targets


def test_voc_evaluate_by_hand():
    predictions, targets = _voc_case()
    # class 1, ranked without the ignored d3: d1 TP, d2 FP, d4 FP, d5 TP, d6 TP; 3 positives
    #   precision 1, 1/2, 1/3, 2/4, 3/5; recall 1/3, 1/3, 1/3, 2/3, 1
    #   envelope 1, .6, .6, .6, .6
    #   all-point AP = 1/3 * 1 + 1/3 * .6 + 1/3 * .6 = 2.2 / 3
    #   11-point: levels 0 .. .3 -> 1 (4 levels), .4 .. 1 -> .6 (7 levels): (4 + 4.2) / 11
    # class 2: one object, no detection -> AP 0. class 3: no ground truth -> -1, not in mAP.
    result = voc_evaluate(predictions, targets, num_classes=3)
    assert result.ap[1] == pytest.approx(2.2 / 3)
    assert result.ap[2] == 0.0
    assert result.ap[3] == -1.0
    assert result.mAP == pytest.approx((2.2 / 3 + 0.0) / 2)
    assert result.num_positives == {1: 3, 2: 1, 3: 0}
    np.testing.assert_allclose(result.precision[1], [1, 1 / 2, 1 / 3, 2 / 4, 3 / 5])
    np.testing.assert_allclose(result.recall[1], [1 / 3, 1 / 3, 1 / 3, 2 / 3, 1])
    voc07 = voc_evaluate(predictions, targets, num_classes=3, use_07_metric=True)
    assert voc07.ap[1] == pytest.approx(8.2 / 11)


def test_voc_threshold_is_inclusive_and_duplicates_of_found_boxes_are_false_positives():
    target = [{"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])}]
    # IoU exactly .5: box [0, 0, 10, 5] -> 50 / 100
    half = [{"boxes": np.array([[0, 0, 10, 5]], float), "scores": np.array([1.0]),
             "labels": np.array([1])}]
    assert voc_evaluate(half, target).ap[1] == 1.0
    assert voc_evaluate(half, target, iou_threshold=0.51).ap[1] == 0.0
    # two perfect boxes: TP then FP -> precision 1, .5 at recall 1, 1 -> AP still 1 (the
    # envelope keeps the 1); a duplicate scored above the true one cannot make it worse here
    dup = [{"boxes": np.array([[0, 0, 10, 10]] * 2, float), "scores": np.array([0.9, 0.8]),
            "labels": np.array([1, 1])}]
    r = voc_evaluate(dup, target)
    np.testing.assert_allclose(r.precision[1], [1.0, 0.5])
    assert r.ap[1] == 1.0


# ---------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------

def _random_scene(rng, n_images=4, n_classes=3, per_image=4):
    """Ground truth on a grid of separated cells (no two boxes overlap) and noisy
    detections of them, plus some random false positives."""
    targets, predictions = [], []
    for _ in range(n_images):
        cells = rng.choice(16, per_image, replace=False)
        xy = np.stack([cells % 4, cells // 4], 1) * 30.0
        gt = np.concatenate([xy, xy + rng.uniform(10, 20, (per_image, 2))], 1)
        labels = rng.integers(1, n_classes + 1, per_image)
        det = gt + rng.normal(0, 2, gt.shape)
        det[:, 2:] = np.maximum(det[:, 2:], det[:, :2] + 1)
        extra = rng.integers(0, 3)
        fp_xy = rng.uniform(0, 100, (extra, 2))
        det = np.concatenate([det, np.concatenate([fp_xy, fp_xy + 12], 1)])
        det_labels = np.concatenate([labels, rng.integers(1, n_classes + 1, extra)])
        targets.append({"boxes": gt, "labels": labels})
        predictions.append({"boxes": det, "labels": det_labels,
                            "scores": rng.uniform(0.05, 1, len(det))})
    return predictions, targets


def _perfect(targets):
    return [{"boxes": t["boxes"], "labels": t["labels"],
             "scores": np.linspace(1, 0.5, len(t["boxes"]))} for t in targets]


def test_perfect_detections_give_ap_one():
    _, targets = _random_scene(np.random.default_rng(0))
    predictions = _perfect(targets)
    assert voc_evaluate(predictions, targets).mAP == 1.0
    assert voc_evaluate(predictions, targets, use_07_metric=True).mAP == 1.0
    stats = coco_evaluate(predictions, targets).stats
    assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AP75"] == 1.0
    assert stats["AR100"] == 1.0


def test_all_wrong_detections_give_ap_zero():
    _, targets = _random_scene(np.random.default_rng(1))
    wrong = [{"boxes": t["boxes"] + 200, "labels": t["labels"],
              "scores": np.ones(len(t["boxes"]))} for t in targets]
    assert voc_evaluate(wrong, targets).mAP == 0.0
    assert coco_evaluate(wrong, targets).stats["AP"] == 0.0
    # right place, wrong class: also zero
    relabel = [{"boxes": t["boxes"], "labels": t["labels"] % 3 + 1,
                "scores": np.ones(len(t["boxes"]))} for t in targets]
    assert voc_evaluate(relabel, targets, num_classes=3).mAP == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.integers(0, 100), drop=st.floats(0.0, 0.5))
def test_adding_a_duplicate_never_increases_ap(seed, which, drop):
    rng = np.random.default_rng(seed)
    predictions, targets = _random_scene(rng)
    image = which % len(predictions)
    p = predictions[image]
    k = which % len(p["boxes"])
    before_voc = voc_evaluate(predictions, targets, num_classes=3)
    before_coco = coco_evaluate(predictions, targets, num_classes=3)
    # a duplicate: the same box and class, scored below the original (as NMS leftovers are)
    dup = {"boxes": np.concatenate([p["boxes"], p["boxes"][k:k + 1]]),
           "labels": np.concatenate([p["labels"], p["labels"][k:k + 1]]),
           "scores": np.concatenate([p["scores"], p["scores"][k:k + 1] * (1 - drop) - 1e-3])}
    predictions = predictions[:image] + [dup] + predictions[image + 1:]
    after_voc = voc_evaluate(predictions, targets, num_classes=3)
    after_coco = coco_evaluate(predictions, targets, num_classes=3)
    for c in (1, 2, 3):
        assert after_voc.ap[c] <= before_voc.ap[c] + 1e-12
        assert after_coco.per_class_ap[c] <= before_coco.per_class_ap[c] + 1e-12


def test_tensors_are_accepted():
    predictions, targets = _random_scene(np.random.default_rng(3))
    as_tensors = [{k: Tensor(v) for k, v in p.items()} for p in predictions]
    assert voc_evaluate(as_tensors, targets).mAP == voc_evaluate(predictions, targets).mAP


def test_dict_inputs_keyed_by_image_id():
    predictions, targets = _random_scene(np.random.default_rng(4))
    by_id_p = {f"img{i}": p for i, p in enumerate(predictions)}
    by_id_t = {f"img{i}": t for i, t in enumerate(targets)}
    assert voc_evaluate(by_id_p, by_id_t).mAP == voc_evaluate(predictions, targets).mAP
    # an image without any prediction may be left out of the predictions dict
    del by_id_p["img0"]
    predictions[0] = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                      "labels": np.zeros(0, int)}
    assert coco_evaluate(by_id_p, by_id_t).stats == coco_evaluate(predictions, targets).stats


# ---------------------------------------------------------------------------
# Empty inputs and errors
# ---------------------------------------------------------------------------

def _empty_pred():
    return {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}


def test_empty_images_and_empty_predictions_do_not_crash():
    target = {"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])}
    empty_target = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}
    # ground truth but no detections: AP 0
    assert voc_evaluate([_empty_pred()], [target]).ap[1] == 0.0
    r = coco_evaluate([_empty_pred()], [target])
    assert r.stats["AP"] == 0.0 and r.stats["AR100"] == 0.0
    # no ground truth at all: every AP is -1 (undefined), no division by zero
    det = {"boxes": np.array([[0, 0, 5, 5]], float), "scores": np.array([0.5]),
           "labels": np.array([1])}
    r = coco_evaluate([det], [empty_target], num_classes=2)
    assert r.stats["AP"] == -1.0 and r.per_class_ap == {1: -1.0, 2: -1.0}
    assert voc_evaluate([det], [empty_target], num_classes=1).mAP == -1.0
    # nothing at all
    assert coco_evaluate([], [], num_classes=1).stats["AP"] == -1.0
    assert voc_evaluate([_empty_pred()], [empty_target], num_classes=1).mAP == -1.0
    # an empty image among others changes nothing; a false positive on it costs precision
    r1 = voc_evaluate([_perfect([target])[0], _empty_pred()], [target, empty_target])
    assert r1.mAP == 1.0
    r2 = voc_evaluate([_empty_pred(), det], [target, empty_target])
    assert r2.mAP == 0.0


def test_unknown_class_or_image_is_a_clear_error():
    target = {"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])}
    det = {"boxes": np.array([[0, 0, 10, 10]], float), "scores": np.array([0.5]),
           "labels": np.array([4])}
    with pytest.raises(ValueError, match="unknown class"):
        coco_evaluate([det], [target], num_classes=3)
    with pytest.raises(ValueError, match="unknown class"):
        voc_evaluate([det], [target])  # classes inferred from the ground truth: only 1
    background = dict(det, labels=np.array([0]))
    with pytest.raises(ValueError, match="unknown class.*0 is background"):
        coco_evaluate([background], [target], num_classes=3)
    with pytest.raises(ValueError, match="predictions for 2 images but targets for 1"):
        coco_evaluate([det, det], [target], num_classes=4)
    with pytest.raises(KeyError, match="unknown image"):
        voc_evaluate({"a": det, "b": det}, {"a": target}, num_classes=4)
    with pytest.raises(KeyError, match="no 'scores'"):
        voc_evaluate([{"boxes": det["boxes"], "labels": det["labels"]}], [target],
                     num_classes=4)
    with pytest.raises(ValueError, match=r"boxes must be \[n, 4\]"):
        voc_evaluate([dict(det, boxes=np.zeros((1, 3)))], [target], num_classes=4)
    with pytest.raises(ValueError, match="x2 >= x1"):
        voc_evaluate([dict(det, boxes=np.array([[5.0, 0, 1, 1]]))], [target], num_classes=4)
    with pytest.raises(ValueError, match="1 boxes but 2 scores"):
        voc_evaluate([dict(det, scores=np.ones(2))], [target], num_classes=4)
    with pytest.raises(ValueError, match="NaN"):
        coco_evaluate([dict(det, scores=np.array([np.nan]))], [target], num_classes=4)
    with pytest.raises(ValueError, match="iou_type"):
        coco_evaluate([det], [target], iou_type="keypoints")


def test_mask_of_the_wrong_size_is_a_clear_error():
    target = {"boxes": np.array([[0, 0, 4, 4]], float), "labels": np.array([1]),
              "masks": np.ones((1, 8, 8), bool)}
    det = {"boxes": np.array([[0, 0, 4, 4]], float), "scores": np.array([0.5]),
           "labels": np.array([1]), "masks": np.ones((1, 8, 6), bool)}
    with pytest.raises(ValueError, match="prediction masks are 8x6 but target masks are 8x8"):
        coco_evaluate([det], [target], iou_type="segm")
    with pytest.raises(ValueError, match=r"masks must be \[1, H, W\]"):
        coco_evaluate([dict(det, masks=np.ones((2, 8, 8)))], [target], iou_type="segm")
    with pytest.raises(KeyError, match="no 'masks'"):
        coco_evaluate([{k: v for k, v in det.items() if k != "masks"}], [target],
                      iou_type="segm")


def test_scaled_area_ranges():
    r = scaled_area_ranges(64)
    # (64 / 640)^2 = 1 / 100 of COCO's 32^2 = 1024 and 96^2 = 9216
    assert r["small"] == (0.0, pytest.approx(10.24))
    assert r["medium"] == (pytest.approx(10.24), pytest.approx(92.16))
    assert r["all"][0] == 0.0 and r["large"][1] >= 1e10
