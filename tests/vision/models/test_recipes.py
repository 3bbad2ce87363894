"""Recipes build, train and score each detector; options reach the model."""

import numpy as np
import pytest

from minidl.data.shapes import ShapesDataset, StickFigures
from minidl.vision.models.proposals import WithProposals
from minidl.vision.models.recipes import (
    TrainedDetector,
    fast_rcnn_recipe,
    faster_rcnn_recipe,
    keypoint_rcnn_recipe,
    mask_rcnn_recipe,
)
from minidl.vision.models.roi_heads import UniformRoISampler

TINY = dict(epochs=1, batch_size=4, widths=(8, 16))


@pytest.mark.parametrize("recipe,options", [
    (fast_rcnn_recipe, {"roi_pool": "align", "sampler": UniformRoISampler(16)}),
    (faster_rcnn_recipe, {"roi_pool": "pool"}),
    (mask_rcnn_recipe, {"mask_pool": "pool", "mask_loss": "softmax", "mask_layers": (8,)}),
])
def test_recipes_train_and_evaluate_with_their_options(recipe, options):
    data = ShapesDataset(8, image_size=32, seed=0)
    trained = recipe(data, seed=0, **TINY, **options)
    assert isinstance(trained, TrainedDetector) and trained.num_classes == 4
    assert len(trained.history["loss"]) == 2 and trained.train_seconds > 0
    heads = trained.model.roi_heads
    if "roi_pool" in options:
        assert heads.box_roi_pool.mode == options["roi_pool"]
    if "sampler" in options:
        assert heads.sampler is options["sampler"]
    if "mask_pool" in options:
        assert heads.mask_roi_pool.mode == "pool" and heads.mask_loss == "softmax"
    score = trained.evaluate(ShapesDataset(4, image_size=32, seed=1), batch_size=2)
    assert len(score.detections) == 4 and 0 <= score.voc07_map <= 1
    assert score.line().startswith(trained.name)


def test_fast_rcnn_recipe_reads_its_proposals_from_the_stand_in():
    data = ShapesDataset(4, image_size=32, seed=0)
    trained = fast_rcnn_recipe(data, seed=0, proposal_seed=3, **TINY)
    prepared = trained.prepare(data)
    assert isinstance(prepared, WithProposals)
    np.testing.assert_array_equal(prepared[2][1]["proposals"],
                                  WithProposals(data, seed=3)[2][1]["proposals"])
    assert set(trained.inputs([prepared[0][1]])) == {"proposals"}


def test_same_seed_same_model():
    data = ShapesDataset(8, image_size=32, seed=0)
    first = faster_rcnn_recipe(data, seed=5, **TINY)
    second = faster_rcnn_recipe(data, seed=5, **TINY)
    np.testing.assert_allclose(first.history["loss"], second.history["loss"], rtol=1e-5)


def test_keypoint_recipe_on_stick_figures():
    data = StickFigures(8, image_size=32, seed=0)
    trained = keypoint_rcnn_recipe(data, seed=0, keypoint_layers=(8,), **TINY)
    assert "loss_keypoint" in trained.history
    detections = trained.evaluate(StickFigures(2, image_size=32, seed=1)).detections
    assert all(d["keypoints"].shape[1:] == (14, 3) for d in detections)
