"""The shared benchmark split, and a saved detector that comes back identical."""

import numpy as np

from minidl.vision.models.yolo import yolo_v2_recipe
from minidl.vision.models.zoo import (
    TEST_SEED,
    data_key,
    load_detector,
    save_detector,
    shapes_splits,
)


def test_splits_share_one_test_set_whatever_the_seed():
    a, b = shapes_splits(quick=True, seed=0), shapes_splits(quick=True, seed=3)
    np.testing.assert_array_equal(a.test.images, b.test.images)
    assert a.test.seed == TEST_SEED
    assert not np.array_equal(a.train.images, b.train.images)
    assert not np.array_equal(a.train.images[:40], a.val.images), "validation is not training"
    assert (len(a.train), len(a.val), len(a.test)) == (160, 40, 40)


def test_a_saved_detector_loads_with_the_same_weights_and_detections(tmp_path):
    splits = shapes_splits(quick=True)
    trained = yolo_v2_recipe(splits.train, epochs=1, num_anchors=3)
    path = save_detector(trained, tmp_path / "yolo_v2.npz", splits.train)
    back = load_detector(yolo_v2_recipe, splits.train, path, num_anchors=3)
    np.testing.assert_array_equal(back.model.anchors, trained.model.anchors)
    for (name, a), (_, b) in zip(trained.model.state_dict().items(),
                                 back.model.state_dict().items()):
        np.testing.assert_array_equal(a, b, err_msg=name)
    first, second = trained.evaluate(splits.test), back.evaluate(splits.test)
    for d1, d2 in zip(first.detections, second.detections):
        np.testing.assert_array_equal(d1["boxes"], d2["boxes"])
    assert back.train_seconds == trained.train_seconds


def test_nothing_to_load_from_another_training_set_or_no_file(tmp_path):
    splits = shapes_splits(quick=True)
    trained = yolo_v2_recipe(splits.train, epochs=1, num_anchors=3)
    path = save_detector(trained, tmp_path / "yolo_v2.npz", splits.train)
    assert load_detector(yolo_v2_recipe, splits.val, path, num_anchors=3) is None
    assert load_detector(yolo_v2_recipe, splits.train, tmp_path / "none.npz") is None
    assert data_key(splits.train) == [160, 0, 64]
