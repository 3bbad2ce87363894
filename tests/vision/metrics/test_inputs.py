"""Checking and flattening the evaluators' input (minidl/vision/metrics/inputs.py): lists or
dicts, Tensors, empty images, and the errors for bad input. The scene helpers here are
shared by the VOC and COCO tests."""

import numpy as np
import pytest

from minidl import Tensor
from minidl.vision.metrics import coco_evaluate, voc_evaluate


def random_scene(rng, n_images=4, n_classes=3, per_image=4):
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


def perfect(targets):
    return [{"boxes": t["boxes"], "labels": t["labels"],
             "scores": np.linspace(1, 0.5, len(t["boxes"]))} for t in targets]


def with_duplicate(predictions, which, drop):
    """A copy of ``predictions`` where one detection is repeated, scored below the
    original (as NMS leftovers are)."""
    image = which % len(predictions)
    p = predictions[image]
    k = which % len(p["boxes"])
    dup = {"boxes": np.concatenate([p["boxes"], p["boxes"][k:k + 1]]),
           "labels": np.concatenate([p["labels"], p["labels"][k:k + 1]]),
           "scores": np.concatenate([p["scores"], p["scores"][k:k + 1] * (1 - drop) - 1e-3])}
    return predictions[:image] + [dup] + predictions[image + 1:]


def check_a_duplicate_never_increases_ap(evaluate, per_class_ap, seed, which, drop):
    """The property both evaluators must have: adding a lower-scored duplicate of a
    detection can only add a false positive, so no class's AP goes up."""
    predictions, targets = random_scene(np.random.default_rng(seed))
    before = per_class_ap(evaluate(predictions, targets, num_classes=3))
    after = per_class_ap(evaluate(with_duplicate(predictions, which, drop), targets,
                                  num_classes=3))
    for c in (1, 2, 3):
        assert after[c] <= before[c] + 1e-12


def shifted_away(targets, relabel=False):
    """Detections that find nothing: every box moved far away (or, with ``relabel``, in
    the right place with the wrong class)."""
    return [{"boxes": t["boxes"] if relabel else t["boxes"] + 200,
             "labels": t["labels"] % 3 + 1 if relabel else t["labels"],
             "scores": np.ones(len(t["boxes"]))} for t in targets]


def test_tensors_are_accepted():
    predictions, targets = random_scene(np.random.default_rng(3))
    as_tensors = [{k: Tensor(v) for k, v in p.items()} for p in predictions]
    assert voc_evaluate(as_tensors, targets).mAP == voc_evaluate(predictions, targets).mAP


def test_dict_inputs_keyed_by_image_id():
    predictions, targets = random_scene(np.random.default_rng(4))
    by_id_p = {f"img{i}": p for i, p in enumerate(predictions)}
    by_id_t = {f"img{i}": t for i, t in enumerate(targets)}
    assert voc_evaluate(by_id_p, by_id_t).mAP == voc_evaluate(predictions, targets).mAP
    # an image without any prediction may be left out of the predictions dict
    del by_id_p["img0"]
    predictions[0] = {"boxes": np.zeros((0, 4)), "scores": np.zeros(0),
                      "labels": np.zeros(0, int)}
    assert coco_evaluate(by_id_p, by_id_t).stats == coco_evaluate(predictions, targets).stats


def empty_prediction():
    return {"boxes": np.zeros((0, 4)), "scores": np.zeros(0), "labels": np.zeros(0, int)}


def test_empty_images_and_empty_predictions_do_not_crash():
    target = {"boxes": np.array([[0, 0, 10, 10]], float), "labels": np.array([1])}
    empty_target = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0, int)}
    # ground truth but no detections: AP 0
    assert voc_evaluate([empty_prediction()], [target]).ap[1] == 0.0
    r = coco_evaluate([empty_prediction()], [target])
    assert r.stats["AP"] == 0.0 and r.stats["AR100"] == 0.0
    # no ground truth at all: every AP is -1 (undefined), no division by zero
    det = {"boxes": np.array([[0, 0, 5, 5]], float), "scores": np.array([0.5]),
           "labels": np.array([1])}
    r = coco_evaluate([det], [empty_target], num_classes=2)
    assert r.stats["AP"] == -1.0 and r.per_class_ap == {1: -1.0, 2: -1.0}
    assert voc_evaluate([det], [empty_target], num_classes=1).mAP == -1.0
    # nothing at all
    assert coco_evaluate([], [], num_classes=1).stats["AP"] == -1.0
    assert voc_evaluate([empty_prediction()], [empty_target], num_classes=1).mAP == -1.0
    # an empty image among others changes nothing; a false positive on it costs precision
    r1 = voc_evaluate([perfect([target])[0], empty_prediction()], [target, empty_target])
    assert r1.mAP == 1.0
    r2 = voc_evaluate([empty_prediction(), det], [target, empty_target])
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
    with pytest.raises(ValueError, match=r"image 0: prediction boxes row 0 .* x2 < x1"):
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
