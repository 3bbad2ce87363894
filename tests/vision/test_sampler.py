"""BalancedPositiveNegativeSampler and Fast R-CNN's RoISampler."""

import numpy as np
import pytest

import minidl
from minidl.vision.boxes import box_iou
from minidl.vision.sampler import BalancedPositiveNegativeSampler, RoISampler


# ---- BalancedPositiveNegativeSampler --------------------------------------------
def test_balanced_sampler_counts():
    labels = np.array([1] * 10 + [0] * 100 + [-1] * 5 + [2] * 3)
    pos, neg = BalancedPositiveNegativeSampler(32, 0.25, np.random.default_rng(0))([labels])
    assert pos[0].sum() == 8 and neg[0].sum() == 24
    assert (labels[pos[0]] >= 1).all() and (labels[neg[0]] == 0).all()
    # few positives: the batch is filled with negatives
    few = np.array([1] * 2 + [0] * 100)
    pos, neg = BalancedPositiveNegativeSampler(32, 0.5, np.random.default_rng(0))([few])
    assert pos[0].sum() == 2 and neg[0].sum() == 30
    # too few of both: take all
    pos, neg = BalancedPositiveNegativeSampler(32, 0.5)([np.array([1, 0, -1])])
    assert pos[0].tolist() == [True, False, False] and neg[0].tolist() == [False, True, False]


def test_positive_count_is_rounded_down():
    # batch 7, half positive: 3.5 -> int() = 3 positives (torchvision), 4 negatives
    labels = np.array([1] * 10 + [0] * 10)
    pos, neg = BalancedPositiveNegativeSampler(7, 0.5, np.random.default_rng(0))([labels])
    assert (pos[0].sum(), neg[0].sum()) == (3, 4)
    gt = np.array([[0.0, 0, 10, 10]])
    proposals = np.repeat(np.array([[0.0, 0, 10, 10], [0.0, 0, 10, 3]]), 10, axis=0)  # IoU 1, .3
    sample = RoISampler(7, 0.5, add_gt_as_proposals=False,
                        generator=np.random.default_rng(0))(proposals, gt, [1])
    assert (sample.labels > 0).sum() == 3 and sample.labels.size == 7


def test_balanced_sampler_is_seeded_by_minidl_manual_seed():
    labels = [np.array([1] * 20 + [0] * 50), np.array([0] * 30 + [1] * 5)]
    sampler = BalancedPositiveNegativeSampler(16, 0.5)
    minidl.manual_seed(3)
    first = sampler(labels)
    minidl.manual_seed(3)
    second = sampler(labels)
    for a, b in zip(first[0] + first[1], second[0] + second[1]):
        np.testing.assert_array_equal(a, b)
    assert len(first[0]) == 2 and first[0][1].sum() == 5


def test_balanced_sampler_errors():
    with pytest.raises(ValueError, match="positive_fraction in \\[0, 1\\]"):
        BalancedPositiveNegativeSampler(8, 1.5)


# ---- Fast R-CNN RoI sampler ---------------------------------------------------------
def _scene(rng):
    gt = np.array([[10.0, 10, 30, 30], [50, 40, 80, 90]])
    centres = rng.uniform(0, 100, (300, 2))
    sizes = rng.uniform(5, 40, (300, 2))
    proposals = np.concatenate([centres - sizes / 2, centres + sizes / 2], axis=1)
    near = np.concatenate([gt + rng.normal(0, 2, (2, 4)) for _ in range(20)])
    return np.concatenate([proposals, np.sort(near.reshape(-1, 2, 2), axis=1).reshape(-1, 4)]), gt


def test_roi_sampler_fractions_and_iou_ranges():
    rng = np.random.default_rng(0)
    proposals, gt = _scene(rng)
    sample = RoISampler(64, 0.25, generator=np.random.default_rng(1))(proposals, gt, [3, 7])
    assert sample.proposals.shape == (64, 4)
    best = box_iou(gt, sample.proposals).max(axis=0)
    num_fg = int((sample.labels > 0).sum())
    assert num_fg == 16
    assert (best[:num_fg] >= 0.5).all() and set(sample.labels[:num_fg]) <= {3, 7}
    assert ((best[num_fg:] >= 0.1) & (best[num_fg:] < 0.5)).all()
    # the label is the class of the best-overlapping ground truth
    matched = box_iou(gt, sample.proposals[:num_fg]).argmax(axis=0)
    np.testing.assert_array_equal(sample.labels[:num_fg], np.array([3, 7])[matched])
    np.testing.assert_array_equal(sample.matched_gt_boxes[:num_fg], gt[matched])


def test_roi_sampler_iou_boundaries_by_hand():
    # gt (0, 0, 10, 10); proposals (0, 0, 10, h) have IoU h / 10 with it:
    #   h = 5: IoU .5 exactly -> foreground (>= .5), not background ([.1, .5) excludes .5)
    #   h = 4.9: .49 -> background;  h = 1: .1 exactly -> background (lo is included)
    #   h = .5: .05 -> below lo: never sampled
    gt = np.array([[0.0, 0, 10, 10]])
    proposals = np.array([[0.0, 0, 10, h] for h in (5.0, 4.9, 1.0, 0.5)])
    sampler = RoISampler(64, 0.25, add_gt_as_proposals=False, generator=np.random.default_rng(0))
    sample = sampler(proposals, gt, [7])
    np.testing.assert_array_equal(sample.proposals[:1], proposals[:1])
    np.testing.assert_array_equal(sample.labels, [7, 0, 0])
    assert sorted(sample.proposals[1:, 3].tolist()) == [1.0, 4.9]


def test_roi_sampler_adds_the_ground_truth_as_proposals():
    # no proposal overlaps the object: only the appended ground-truth box can be positive
    gt = np.array([[0.0, 0, 10, 10]])
    far = np.array([[50.0, 50, 60, 60], [5.0, 0, 15, 10]])  # IoU 0 and 1/3 (background)
    with_gt = RoISampler(8, 0.5, generator=np.random.default_rng(0))(far, gt, [2])
    np.testing.assert_array_equal(with_gt.proposals[0], gt[0])
    np.testing.assert_array_equal(with_gt.labels, [2, 0])
    without = RoISampler(8, 0.5, add_gt_as_proposals=False,
                         generator=np.random.default_rng(0))(far, gt, [2])
    np.testing.assert_array_equal(without.labels, [0])


def test_roi_sampler_without_objects_and_errors():
    rng = np.random.default_rng(0)
    proposals, _ = _scene(rng)
    sampler = RoISampler(16, bg_iou_range=(0.0, 0.5), generator=np.random.default_rng(0))
    sample = sampler(proposals, np.zeros((0, 4)), np.zeros(0, np.int64))
    assert (sample.labels == 0).all() and sample.proposals.shape == (16, 4)
    assert (sample.matched_idxs == -1).all()
    with pytest.raises(ValueError, match="RoISampler: 2 gt_boxes but 1 gt_labels"):
        RoISampler()(proposals, np.array([[0.0, 0, 5, 5], [1, 1, 4, 4]]), [1])
    with pytest.raises(ValueError, match="RoISampler: need 0 <= bg lo <= bg hi"):
        RoISampler(bg_iou_range=(0.3, 0.2))
    with pytest.raises(ValueError, match=r"RoISampler: need .* positive_fraction in \[0, 1\]"):
        RoISampler(positive_fraction=1.5)
