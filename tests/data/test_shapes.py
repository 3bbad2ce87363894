"""Synthetic detection data: determinism, consistency of boxes / masks / labels, occlusion."""

import numpy as np
import pytest

from minidl import Tensor
from minidl.data import DataLoader
from minidl.data.shapes import (
    KEYPOINT_NAMES,
    SHAPE_CLASSES,
    SKELETON,
    DigitsDetection,
    ShapesDataset,
    StickFigures,
    boxes_from_masks,
    detection_collate,
    resolve_occlusion,
    shape_masks,
)

DATASETS = [
    lambda seed: ShapesDataset(40, 64, max_objects=5, seed=seed),
    lambda seed: DigitsDetection(30, 64, max_objects=3, seed=seed),
    lambda seed: StickFigures(20, 64, max_objects=2, seed=seed),
]
IDS = ["shapes", "digits", "figures"]


def _tight_box(mask):
    """Independent box of a mask: first / last row and column holding a pixel."""
    rows, cols = np.nonzero(mask)
    return [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]


@pytest.mark.parametrize("make", DATASETS, ids=IDS)
def test_same_seed_same_data_other_seed_other_data(make):
    a, b, c = make(3), make(3), make(4)
    np.testing.assert_array_equal(a.images, b.images)
    np.testing.assert_array_equal(a.instance_ids, b.instance_ids)
    np.testing.assert_array_equal(a.slot_boxes, b.slot_boxes)
    assert not np.array_equal(a.images, c.images)


@pytest.mark.parametrize("make", DATASETS, ids=IDS)
def test_targets_are_consistent(make):
    data = make(0)
    seen_objects = 0
    for i in range(len(data)):
        image, t = data[i]
        n = len(t["labels"])
        seen_objects += n
        assert image.dtype == np.float32 and image.shape == (3, 64, 64)
        assert 0.0 <= image.min() and image.max() <= 1.0
        assert t["boxes"].dtype == np.float32 and t["boxes"].shape == (n, 4)
        assert t["labels"].dtype == np.int64
        assert ((t["labels"] >= 1) & (t["labels"] <= data.num_classes)).all()
        assert t["masks"].shape == (n, 64, 64) and t["masks"].dtype == bool
        assert t["semantic"].shape == (64, 64)
        assert t["image_id"] == i
        # visible masks are disjoint, each non-empty, and boxes are their tight boxes
        assert (t["masks"].sum(0) <= 1).all()
        for k in range(n):
            assert t["masks"][k].any()
            np.testing.assert_array_equal(t["boxes"][k], _tight_box(t["masks"][k]))
        np.testing.assert_array_equal(t["area"], t["masks"].sum(axis=(1, 2)))
        # the semantic mask is the class of the visible instance at each pixel
        semantic = np.zeros((64, 64), np.int64)
        for k in range(n):
            semantic[t["masks"][k]] = t["labels"][k]
        np.testing.assert_array_equal(t["semantic"], semantic)
        assert not t["iscrowd"].any()
    assert seen_objects > len(data)  # several objects per image on average


def test_image_values_use_the_whole_range_and_objects_show():
    data = ShapesDataset(20, 64, seed=1)
    image, t = data[0]
    assert image.std() > 0.05
    # pixels of an object differ on average from the surrounding background
    inside = t["masks"][-1]
    assert np.abs(image[:, inside].mean(1) - image[:, t["semantic"] == 0].mean(1)).max() > 0.1


def test_resolve_occlusion_by_hand():
    # image 0: slot 0 a 4x4 square, slot 1 (on top) covers its left half -> slot 0 keeps
    # the right half (8 of 16 pixels = .5 >= .3). image 1: slot 1 covers slot 0 entirely
    # -> slot 0 is dropped and slot 1 stays whole.
    full = np.zeros((2, 2, 6, 6), bool)
    full[0, 0, 0:4, 0:4] = True
    full[0, 1, 0:4, 0:2] = True
    full[1, 0, 1:3, 1:3] = True
    full[1, 1, 0:5, 0:5] = True
    active = np.ones((2, 2), bool)
    keep, visible = resolve_occlusion(full, active, min_visible=0.3)
    np.testing.assert_array_equal(keep, [[True, True], [False, True]])
    want = np.zeros((6, 6), bool)
    want[0:4, 2:4] = True
    np.testing.assert_array_equal(visible[0, 0], want)
    np.testing.assert_array_equal(visible[0, 1], full[0, 1])
    assert not visible[1, 0].any()
    # a dropped object covers nothing. Slot 1 (36 px) is 5/6 under slot 2 -> dropped
    # (1/6 < .2). Slot 0 (16 px) would be hidden by slot 1, but slot 1 is not drawn: only
    # slot 2 covers 12 of its pixels, 4 / 16 = .25 >= .2 stay -> kept, column 0 visible.
    full2 = np.zeros((1, 3, 8, 8), bool)
    full2[0, 0, 0:4, 0:4] = True
    full2[0, 1, 0:6, 0:6] = True
    full2[0, 2, 0:6, 1:6] = True
    keep, visible = resolve_occlusion(full2, np.ones((1, 3), bool), 0.2)
    np.testing.assert_array_equal(keep, [[True, False, True]])
    want = np.zeros((8, 8), bool)
    want[0:4, 0] = True
    np.testing.assert_array_equal(visible[0, 0], want)


def test_occlusion_in_generated_data_drops_hidden_objects():
    data = ShapesDataset(200, 64, min_objects=5, max_objects=5, min_visible=0.3, seed=2)
    kept = (data.slot_labels > 0).sum(1)
    assert kept.min() >= 1 and kept.max() <= 5
    assert kept.mean() < 5  # with five objects of up to 45 % of the side, some get hidden
    # every labelled object shows at least 4 pixels
    for i in range(10):
        _, t = data[i]
        assert (t["area"] >= 4).all()


def test_shape_masks_by_hand():
    # centre (4, 4), half sizes (2, 1): rectangle covers x in [2, 6], y in [3, 5] -> pixel
    # centres 2.5 .. 5.5 (4 columns) and 3.5, 4.5 (2 rows) = 8 pixels
    m = shape_masks([1], [4.0], [4.0], [2.0], [1.0], [0.7], 8)[0]
    assert m.sum() == 8 and m[3:5, 2:6].all()
    # ellipse with a = b = 3 is a disk of radius 3: about pi * 9 = 28 pixels
    disk = shape_masks([2], [8.0], [8.0], [3.0], [3.0], [0.0], 16)[0]
    assert 24 <= disk.sum() <= 32
    # the triangle's apex is up (angle 0): its top rows are narrower than its bottom rows
    tri = shape_masks([3], [8.0], [8.0], [6.0], [6.0], [0.0], 16)[0]
    widths = tri.sum(1)[tri.any(1)]
    assert widths[0] < widths[-1]
    cross = shape_masks([4], [8.0], [8.0], [6.0], [6.0], [0.0], 16)[0]
    assert cross[8, 2] and cross[2, 8] and not cross[3, 3]


def test_boxes_from_masks_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    masks = rng.uniform(size=(5, 9, 7)) < 0.1
    masks[0] = False
    boxes = boxes_from_masks(masks)
    np.testing.assert_array_equal(boxes[0], [0, 0, 0, 0])
    for k in range(1, 5):
        if masks[k].any():
            np.testing.assert_array_equal(boxes[k], _tight_box(masks[k]))


def test_digits_labels_are_digit_plus_one():
    data = DigitsDetection(50, 64, seed=0)
    labels = np.concatenate([data[i][1]["labels"] for i in range(len(data))])
    assert labels.min() >= 1 and labels.max() <= 10
    assert len(np.unique(labels)) >= 6
    assert data.classes[1] == "0" and data.num_classes == 10


def test_stick_figure_keypoints():
    data = StickFigures(30, 64, seed=0)
    assert len(KEYPOINT_NAMES) == 14 and all(0 <= a < 14 and 0 <= b < 14 for a, b in SKELETON)
    visible_seen = 0
    for i in range(len(data)):
        _, t = data[i]
        kp = t["keypoints"]
        assert kp.shape == (len(t["labels"]), 14, 3) and kp.dtype == np.float32
        assert set(np.unique(kp[..., 2])) <= {0.0, 1.0, 2.0}
        for k in range(len(kp)):
            for x, y, v in kp[k]:
                if v == 0:
                    assert x == 0 and y == 0  # COCO stores unlabelled points as (0, 0, 0)
                else:
                    assert 0 <= x < 64 and 0 <= y < 64
                if v == 2:  # a visible keypoint lies on its own figure's visible mask
                    assert t["masks"][k][int(y), int(x)]
                    visible_seen += 1
                if v == 1:  # an occluded one lies on another figure
                    assert not t["masks"][k][int(y), int(x)]
    assert visible_seen > 100


def test_detection_collate_and_the_data_loader():
    data = ShapesDataset(10, 64, seed=0)
    loader = DataLoader(data, batch_size=4, shuffle=False, collate_fn=detection_collate)
    images, targets = next(iter(loader))
    assert isinstance(images, Tensor) and images.shape == (4, 3, 64, 64)
    assert images.dtype == np.float32
    assert isinstance(targets, list) and len(targets) == 4
    assert [t["image_id"] for t in targets] == [0, 1, 2, 3]
    assert len(loader) == 3
    with pytest.raises(ValueError, match="empty batch"):
        detection_collate([])
    with pytest.raises(ValueError, match="one size"):
        detection_collate([(np.zeros((3, 4, 4)), {}), (np.zeros((3, 5, 5)), {})])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="image_size"):
        ShapesDataset(10, image_size=8)
    with pytest.raises(ValueError, match="num_images"):
        ShapesDataset(0)
    with pytest.raises(ValueError, match="min_objects"):
        ShapesDataset(10, min_objects=3, max_objects=2)
    with pytest.raises(ValueError, match="classes"):
        ShapesDataset(10, classes=(1, 5))
    with pytest.raises(ValueError, match="size_range"):
        ShapesDataset(10, size_range=(0.5, 0.2))
    with pytest.raises(ValueError, match="min_visible"):
        StickFigures(10, min_visible=1.5)
    with pytest.raises(IndexError, match="out of range"):
        ShapesDataset(3)[3]


def test_class_subsets_and_empty_images():
    data = ShapesDataset(30, 64, classes=(2,), min_objects=0, max_objects=2, seed=0)
    labels = np.concatenate([data[i][1]["labels"] for i in range(len(data))])
    assert set(labels.tolist()) == {2} and SHAPE_CLASSES[2] == "ellipse"
    empty = [i for i in range(len(data)) if len(data[i][1]["labels"]) == 0]
    assert empty  # some images hold no object at all
    _, t = data[empty[0]]
    assert t["boxes"].shape == (0, 4) and t["masks"].shape == (0, 64, 64)
    assert (t["semantic"] == 0).all()
