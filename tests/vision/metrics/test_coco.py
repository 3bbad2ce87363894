"""COCO evaluation (minidl/vision/metrics/coco.py) against an independent slow
implementation, COCO numbers worked out by hand, and properties. The matching kernel
is held against its twin in tests/kernels/test_detection_eval.py."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from minidl.vision.metrics import coco_evaluate, scaled_area_ranges
from tests.vision.metrics.test_inputs import (
    check_a_duplicate_never_increases_ap,
    perfect,
    random_scene,
    shifted_away,
)

RECALLS = np.linspace(0, 1, 101)


def _iou(d, g, crowd):
    """IoU of two xyxy boxes; for a crowd region the union is the detection's area."""
    iw = max(0.0, min(d[2], g[2]) - max(d[0], g[0]))
    ih = max(0.0, min(d[3], g[3]) - max(d[1], g[1]))
    inter = iw * ih
    area_d = (d[2] - d[0]) * (d[3] - d[1])
    area_g = (g[2] - g[0]) * (g[3] - g[1])
    union = area_d if crowd else area_d + area_g - inter
    return inter / union if union > 0 else 0.0


def slow_coco(predictions, targets, num_classes, thresholds, areas, max_dets):
    """COCO evaluation written from its definition, one detection at a time.

    Per image and class, detections by decreasing score take the ground truth with
    the largest IoU >= t among those still free (crowd regions never run out); a
    regular object is preferred to an ignored one (crowd or outside the area range);
    ties go to the later object, as in pycocotools. Then, over all images, precision
    at recall r = best precision at any rank whose recall is >= r (0 if none).
    """
    T, K, A, M = len(thresholds), num_classes, len(areas), len(max_dets)
    precision = -np.ones((T, 101, K, A, M))
    recall = -np.ones((T, K, A, M))
    for k in range(1, K + 1):
        for a, (lo, hi) in enumerate(areas):
            for m, budget in enumerate(max_dets):
                rows, num_pos = [], 0  # rows: (score, image, det, tp[T], ignored[T])
                for i, (p, t) in enumerate(zip(predictions, targets)):
                    g = [j for j in range(len(t["labels"])) if t["labels"][j] == k]
                    crowd = [bool(t.get("iscrowd", np.zeros(len(t["labels"])))[j]) for j in g]
                    gt_area = [(t["boxes"][j][2] - t["boxes"][j][0])
                               * (t["boxes"][j][3] - t["boxes"][j][1]) for j in g]
                    ign = [crowd[n] or not lo <= gt_area[n] <= hi for n in range(len(g))]
                    num_pos += sum(not x for x in ign)
                    d = [j for j in range(len(p["labels"])) if p["labels"][j] == k]
                    d = sorted(d, key=lambda j: -p["scores"][j])[:max(max_dets)][:budget]
                    flags = np.zeros((len(d), T), bool)
                    ignored = np.zeros((len(d), T), bool)
                    for ti, thr in enumerate(thresholds):
                        taken = [False] * len(g)
                        for di, j in enumerate(d):
                            box = p["boxes"][j]
                            ious = [_iou(box, t["boxes"][g[n]], crowd[n]) for n in range(len(g))]
                            free = [n for n in range(len(g)) if (not taken[n] or crowd[n])
                                    and ious[n] >= min(thr, 1 - 1e-10)]
                            pool = [n for n in free if not ign[n]] or [n for n in free if ign[n]]
                            if pool:
                                n = max(pool, key=lambda n: (ious[n], n))
                                taken[n] = True
                                flags[di, ti] = not ign[n]
                                ignored[di, ti] = ign[n]
                            else:
                                det_area = (box[2] - box[0]) * (box[3] - box[1])
                                ignored[di, ti] = not lo <= det_area <= hi
                    for di, j in enumerate(d):
                        rows.append((p["scores"][j], i, di, flags[di], ignored[di]))
                if num_pos == 0:
                    continue
                rows.sort(key=lambda r: -r[0])  # stable: image order, then rank
                for ti in range(T):
                    tp = fp = 0
                    points = []
                    for row in rows:
                        if row[4][ti]:
                            continue
                        tp, fp = tp + row[3][ti], fp + (not row[3][ti])
                        points.append((tp / num_pos, tp / (tp + fp)))
                    recall[ti, k - 1, a, m] = points[-1][0] if points else 0.0
                    for ri, r in enumerate(RECALLS):
                        reached = [prec for rc, prec in points if rc >= r]
                        precision[ti, ri, k - 1, a, m] = max(reached) if reached else 0.0
    return precision, recall


def _scene(rng, n_images, num_classes, crowd_rate):
    predictions, targets = [], []
    for _ in range(n_images):
        g = rng.integers(0, 5)
        xy = rng.integers(0, 30, (g, 2)).astype(float)
        gt = np.concatenate([xy, xy + rng.integers(2, 25, (g, 2))], 1)  # overlaps allowed
        labels = rng.integers(1, num_classes + 1, g)
        d = rng.integers(0, 7)
        src = rng.integers(0, max(g, 1), d)
        if g:
            det = gt[src] + rng.integers(-3, 4, (d, 4))
            det_labels = np.where(rng.uniform(size=d) < 0.8, labels[src],
                                  rng.integers(1, num_classes + 1, d))
        else:
            det = rng.integers(0, 30, (d, 4)).astype(float)
            det_labels = rng.integers(1, num_classes + 1, d)
        det = np.concatenate([np.minimum(det[:, :2], det[:, 2:]),
                              np.maximum(det[:, :2], det[:, 2:]) + 1], 1).astype(float)
        targets.append({"boxes": gt, "labels": labels,
                        "iscrowd": rng.uniform(size=g) < crowd_rate})
        predictions.append({"boxes": det, "labels": det_labels,
                            "scores": np.round(rng.uniform(0, 1, d), 1)})  # ties on purpose
    return predictions, targets


@pytest.mark.parametrize("seed", range(6))
def test_coco_matches_a_slow_implementation(seed):
    rng = np.random.default_rng(seed)
    predictions, targets = _scene(rng, n_images=6, num_classes=3, crowd_rate=0.2 * (seed % 2))
    thresholds = np.array([0.3, 0.5, 0.75])
    areas = {"all": (0, 1e10), "small": (0, 60.0), "large": (60.0, 1e10)}
    max_dets = (1, 2, 5)
    result = coco_evaluate(predictions, targets, num_classes=3, iou_thresholds=thresholds,
                           area_ranges=areas, max_dets=max_dets)
    want_p, want_r = slow_coco(predictions, targets, 3, thresholds, list(areas.values()),
                               max_dets)
    np.testing.assert_allclose(result.precision, want_p, atol=1e-12)
    np.testing.assert_allclose(result.recall, want_r, atol=1e-12)


def test_coco_by_hand():
    # one image, two objects of class 1, three detections, IoU thresholds .5 and .75:
    #   d1 (.9): IoU .6 with A     d2 (.8): IoU 1 with B     d3 (.7): IoU 1 with A
    # t = .5:  d1 TP (A), d2 TP (B), d3 FP (A taken)  -> precision 1, 1, 2/3; recall .5, 1, 1
    #          101-point AP = 1 (every recall level reached at precision 1)
    # t = .75: d1 FP, d2 TP (B), d3 TP (A)           -> precision 0, 1/2, 2/3; recall 0, .5, 1
    #          envelope 2/3 everywhere -> AP = 2/3
    # AP@[.5, .75] = (1 + 2/3) / 2
    a, b = [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]
    d1 = [0.0, 0.0, 10.0, 6.0]  # 60 / 100
    targets = [{"boxes": np.array([a, b]), "labels": np.array([1, 1])}]
    predictions = [{"boxes": np.array([d1, b, a]), "labels": np.array([1, 1, 1]),
                    "scores": np.array([0.9, 0.8, 0.7])}]
    r = coco_evaluate(predictions, targets, iou_thresholds=[0.5, 0.75])
    assert r.ap(iou=0.5) == pytest.approx(1.0)
    assert r.ap(iou=0.75) == pytest.approx(2 / 3)
    assert r.stats["AP"] == pytest.approx((1 + 2 / 3) / 2)
    # maxDets = 1: only d1 -> t .5: recall 1/2 at precision 1 -> levels 0 .. .5 (51 of 101)
    assert r.ap(iou=0.5, max_dets=1) == pytest.approx(51 / 101)
    assert r.stats["AR1"] == pytest.approx((0.5 + 0.0) / 2)
    assert r.stats["AR100"] == pytest.approx(1.0)
    # both objects are 100 px^2: "small" (< 32^2) holds them, "medium" and "large" are empty
    assert r.stats["AP_small"] == pytest.approx(r.stats["AP"])
    assert r.stats["AP_medium"] == -1.0 and r.stats["AP_large"] == -1.0
    assert "maxDets=100" in r.summary()


def test_coco_matches_the_best_free_object():
    # the VOC case of test_voc.py: d2 overlaps the found A by .905 and the free B by .739;
    # COCO takes B (the best object still free), so at IoU .5 both are TPs: AP50 = 1
    targets = [{"boxes": np.array([[0.0, 0, 10, 10], [2.0, 0, 12, 10]]),
                "labels": np.array([1, 1])}]
    predictions = [{"boxes": np.array([[0.0, 0, 10, 10], [0.5, 0, 10.5, 10]]),
                    "scores": np.array([0.9, 0.8]), "labels": np.array([1, 1])}]
    assert coco_evaluate(predictions, targets).stats["AP50"] == pytest.approx(1.0)


def test_area_ranges_include_both_ends():
    # pycocotools ignores an object when area < lo or area > hi: an object of exactly
    # 32^2 = 1024 px belongs to "small" (0, 1024) and to "medium" (1024, 9216) alike
    targets = [{"boxes": np.array([[0.0, 0, 32, 32]]), "labels": np.array([1])}]
    predictions = [{"boxes": np.array([[0.0, 0, 32, 32]]), "scores": np.array([1.0]),
                    "labels": np.array([1])}]
    stats = coco_evaluate(predictions, targets).stats
    assert stats["AP_small"] == pytest.approx(1.0) and stats["AP_medium"] == pytest.approx(1.0)
    assert stats["AP_large"] == -1.0


def test_crowd_region_absorbs_detections():
    # a crowd region: detections inside it are ignored, neither TP nor FP
    targets = [{"boxes": np.array([[0.0, 0, 10, 10], [20.0, 0, 60, 40]]),
                "labels": np.array([1, 1]), "iscrowd": np.array([False, True])}]
    inside = [[22.0, 2, 30, 10], [40.0, 20, 50, 30]]  # IoU with the crowd = 1 (inside it)
    predictions = [{"boxes": np.array([[0.0, 0, 10, 10]] + inside),
                    "labels": np.array([1, 1, 1]), "scores": np.array([0.5, 0.9, 0.8])}]
    assert coco_evaluate(predictions, targets).stats["AP"] == pytest.approx(1.0)
    no_crowd = coco_evaluate(predictions, targets, use_crowd=False).stats["AP"]
    assert no_crowd < 1.0


def test_segm_equals_bbox_for_rectangular_masks():
    rng = np.random.default_rng(5)
    predictions, targets = _scene(rng, n_images=5, num_classes=2, crowd_rate=0.0)
    size = 40

    def rasterize(boxes):
        m = np.zeros((len(boxes), size, size), bool)
        for i, (x1, y1, x2, y2) in enumerate(np.clip(boxes, 0, size).astype(int)):
            m[i, y1:y2, x1:x2] = True
        return m

    for d in predictions + targets:
        d["boxes"] = np.clip(d["boxes"], 0, size)
        d["masks"] = rasterize(d["boxes"])
    box = coco_evaluate(predictions, targets, num_classes=2)
    seg = coco_evaluate(predictions, targets, num_classes=2, iou_type="segm")
    np.testing.assert_allclose(seg.precision, box.precision)
    assert seg.stats == box.stats


def test_per_class_ap_and_missing_classes():
    targets = [{"boxes": np.array([[0.0, 0, 10, 10]]), "labels": np.array([2])}]
    predictions = [{"boxes": np.array([[0.0, 0, 10, 10]]), "labels": np.array([2]),
                    "scores": np.array([1.0])}]
    r = coco_evaluate(predictions, targets, num_classes=3)
    # pycocotools divides by tp + fp + eps: 1 / (1 + 2.2e-16) is a hair below 1
    assert r.per_class_ap == {1: -1.0, 2: pytest.approx(1.0), 3: -1.0}
    # classes without ground truth are left out of the mean
    assert r.stats["AP"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown area range"):
        r.ap(area="huge")
    with pytest.raises(ValueError, match="not one of the thresholds"):
        r.ap(iou=0.42)


# ---- properties -----------------------------------------------------------------------
def test_perfect_detections_give_ap_one():
    _, targets = random_scene(np.random.default_rng(0))
    stats = coco_evaluate(perfect(targets), targets).stats
    assert stats["AP"] == 1.0 and stats["AP50"] == 1.0 and stats["AP75"] == 1.0
    assert stats["AR100"] == 1.0


def test_all_wrong_detections_give_ap_zero():
    _, targets = random_scene(np.random.default_rng(1))
    assert coco_evaluate(shifted_away(targets), targets).stats["AP"] == 0.0
    relabelled = shifted_away(targets, relabel=True)
    assert coco_evaluate(relabelled, targets, num_classes=3).stats["AP"] == 0.0


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), which=st.integers(0, 100), drop=st.floats(0.0, 0.5))
def test_adding_a_duplicate_never_increases_ap(seed, which, drop):
    check_a_duplicate_never_increases_ap(coco_evaluate, lambda r: r.per_class_ap, seed, which,
                                         drop)


def test_scaled_area_ranges():
    r = scaled_area_ranges(64)
    # (64 / 640)^2 = 1 / 100 of COCO's 32^2 = 1024 and 96^2 = 9216
    assert r["small"] == (0.0, pytest.approx(10.24))
    assert r["medium"] == (pytest.approx(10.24), pytest.approx(92.16))
    assert r["all"][0] == 0.0 and r["large"][1] >= 1e10
