"""Given proposals (the selective-search stand-in) and proposal recall."""

import numpy as np

from minidl.data.shapes import ShapesDataset
from minidl.vision import box_iou
from minidl.vision.models.proposals import (
    WithProposals,
    jittered_proposals,
    proposal_recall,
    proposals_input,
)


def test_jittered_proposals_count_range_and_quality():
    rng = np.random.default_rng(0)
    gt = np.array([[10, 10, 30, 26], [40, 5, 60, 40]], np.float32)
    proposals = jittered_proposals(gt, (48, 64), rng, per_object=50, random_boxes=100)
    assert proposals.shape == (200, 4) and proposals.dtype == np.float32
    assert (proposals[:, :2] >= 0).all() and (proposals[:, 2] <= 64).all()
    assert (proposals[:, 3] <= 48).all()
    assert ((proposals[:, 2:] - proposals[:, :2]) >= 2 - 1e-6).all()
    best = box_iou(gt, proposals).max(axis=1)
    assert (best > 0.8).all(), "every object has a close copy among 50"
    overlaps = box_iou(gt, proposals).max(axis=0)
    assert 0.2 < (overlaps >= 0.5).mean() < 0.6, "a good share are foreground, most are not"
    # deterministic from the generator
    again = jittered_proposals(gt, (48, 64), np.random.default_rng(0), per_object=50,
                               random_boxes=100)
    np.testing.assert_array_equal(proposals, again)


def test_jittered_proposals_without_objects_are_random_boxes():
    proposals = jittered_proposals(np.zeros((0, 4)), (32, 32), np.random.default_rng(0),
                                   random_boxes=7)
    assert proposals.shape == (7, 4)


def test_proposal_recall_by_hand():
    targets = [{"boxes": np.array([[0, 0, 10, 10], [20, 20, 30, 30]], np.float32)},
               {"boxes": np.array([[0, 0, 4, 4]], np.float32)},
               {"boxes": np.zeros((0, 4), np.float32)}]
    proposals = [np.array([[0, 0, 10, 8], [20, 20, 26, 30]], np.float32),  # IoU 0.8 and 0.6
                 np.zeros((0, 4), np.float32),
                 np.array([[1, 1, 5, 5]], np.float32)]
    assert proposal_recall(proposals, targets, 0.5) == 2 / 3
    assert proposal_recall(proposals, targets, 0.7) == 1 / 3
    assert np.isnan(proposal_recall(proposals[2:], targets[2:]))


def test_with_proposals_adds_fixed_proposals_to_each_target():
    data = ShapesDataset(3, image_size=32, seed=0)
    wrapped = WithProposals(data, seed=5, random_boxes=10)
    image, target = wrapped[1]
    np.testing.assert_array_equal(image, data[1][0])
    assert set(target) == set(data[1][1]) | {"proposals"}
    assert len(target["proposals"]) == 8 * len(target["boxes"]) + 10
    np.testing.assert_array_equal(wrapped[1][1]["proposals"], target["proposals"])
    np.testing.assert_array_equal(WithProposals(data, seed=5, random_boxes=10)[1][1]["proposals"],
                                  target["proposals"])
    assert len(wrapped) == 3
    assert proposals_input([target, target])["proposals"][0] is target["proposals"]
