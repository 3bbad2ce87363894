"""Stacked hourglass shapes and training, heatmap targets and decoding, PCK and figure matching."""

import numpy as np
import pytest

import minidl
from minidl import Tensor
from minidl.data.shapes import StickFigures
from minidl.optim import Adam
from minidl.vision.models.pose import (
    Hourglass,
    StackedHourglass,
    gaussian_heatmaps,
    heatmaps_to_points,
    hourglass_loss,
    hourglass_targets,
    match_keypoints,
    pck,
    torso_length,
)


def test_hourglass_keeps_the_shape_and_the_stack_returns_every_stages_heatmaps():
    minidl.manual_seed(0)
    x = Tensor(np.random.default_rng(0).random((2, 8, 16, 16), dtype=np.float32))
    assert tuple(Hourglass(3, 8)(x).shape) == (2, 8, 16, 16)
    net = StackedHourglass(num_keypoints=5, channels=8, depth=2, num_stacks=3)
    outputs = net(Tensor(np.zeros((2, 3, 32, 32), np.float32)))
    assert len(outputs) == 3 and all(tuple(o.shape) == (2, 5, 16, 16) for o in outputs)


def test_gaussian_heatmaps_peak_at_the_keypoint_and_vanish_when_invisible():
    keypoints = np.array([[5.0, 9.0, 2], [3.0, 3.0, 0]])   # (5, 9) is the centre of cell (4, 2)
    maps = gaussian_heatmaps(keypoints, (8, 8), stride=2, sigma=1.5)
    assert maps.shape == (2, 8, 8) and maps.dtype == np.float32
    assert maps[0, 4, 2] == pytest.approx(1.0)
    assert np.unravel_index(maps[0].argmax(), (8, 8)) == (4, 2)
    assert maps[0, 4, 3] == pytest.approx(np.exp(-1 / (2 * 1.5 ** 2)))
    assert maps[0, 5, 3] == pytest.approx(np.exp(-2 / (2 * 1.5 ** 2)))
    assert not maps[1].any()
    np.testing.assert_allclose(heatmaps_to_points(maps[None], 2)[0, 0], [5.0, 9.0])


def test_hourglass_loss_sums_the_masked_mse_of_every_stack():
    rng = np.random.default_rng(0)
    stacks = [Tensor(rng.standard_normal((2, 3, 4, 4)), requires_grad=True) for _ in range(2)]
    targets = rng.random((2, 3, 4, 4))
    visible = np.array([[True, False, True], [True, True, True]])
    loss = hourglass_loss(stacks, targets, visible)
    per_stack = [((s.data - targets) ** 2)[visible].mean() for s in stacks]
    assert loss.item() == pytest.approx(sum(per_stack))
    loss.backward()
    assert all(np.abs(s.grad).sum() > 0 for s in stacks), "every stack is supervised"
    assert not stacks[0].grad[0, 1].any(), "invisible keypoints give no gradient"


def test_stacked_hourglass_learns_a_fixed_batch():
    minidl.manual_seed(0)
    data = StickFigures(4, image_size=32, max_objects=1, seed=0)
    images = Tensor(np.stack([data[i][0] for i in range(4)]))
    keypoints = np.stack([data[i][1]["keypoints"][0] for i in range(4)])
    targets, visible = hourglass_targets(keypoints, 32, stride=2)
    net = StackedHourglass(14, channels=16, depth=2, num_stacks=2)
    optimizer = Adam(net.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        loss = hourglass_loss(net(images), targets, visible)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_torso_length_and_pck_by_hand():
    truth = np.zeros((2, 14, 3))
    truth[..., 2] = 2
    truth[0, 1, :2], truth[0, 8, :2], truth[0, 9, :2] = (10, 0), (8, 10), (12, 10)  # torso 10
    truth[1, 1, :2], truth[1, 8, :2], truth[1, 9, :2] = (0, 0), (0, 20), (0, 20)    # torso 20
    np.testing.assert_allclose(torso_length(truth), [10, 20])
    predicted = truth[..., :2].copy()
    predicted[0, 0] += (1.5, 0)     # 1.5 px off: correct at alpha 0.2 (2 px), not at 0.1 (1 px)
    predicted[0, 2] += (3, 4)       # 5 px off: wrong at 0.2
    predicted[1, 3] += (0, 3.9)     # 3.9 px off at torso 20: correct at 0.2 (4 px)
    truth[1, 5, 2] = 0              # not counted
    predicted[1, 5] += 100
    assert pck(predicted, truth, 0.2) == pytest.approx(26 / 27)
    assert pck(predicted, truth, 0.1) == pytest.approx(24 / 27)
    predicted[1] = np.nan           # a missed figure: all its counted keypoints are wrong
    assert pck(predicted, truth, 0.2) == pytest.approx(13 / 27)
    assert np.isnan(pck(np.zeros((0, 14, 2)), np.zeros((0, 14, 3))))


def test_match_keypoints_pairs_figures_with_the_best_scored_overlapping_detection():
    kp_a, kp_b = np.full((14, 3), 1.0), np.full((14, 3), 2.0)
    target = {"boxes": np.array([[0, 0, 10, 20], [30, 0, 40, 20]], np.float32),
              "keypoints": np.stack([kp_a, kp_b])}
    detection = {"boxes": np.array([[0, 0, 10, 19], [1, 0, 10, 20], [50, 50, 60, 60]],
                                   np.float32),
                 "scores": np.array([0.5, 0.9, 0.99]),
                 "keypoints": np.stack([kp_a * 5, kp_a * 7, kp_a * 9])}
    predicted, truth = match_keypoints([detection], [target])
    assert predicted.shape == truth.shape == (2, 14, 3)
    np.testing.assert_array_equal(predicted[0], kp_a * 7)  # the better score wins figure 0
    assert np.isnan(predicted[1]).all(), "no detection overlaps figure 1"
    np.testing.assert_array_equal(truth[1], kp_b)


def test_hourglass_loss_gradient_float64():
    rng = np.random.default_rng(2)
    stacks = [Tensor(rng.standard_normal((1, 2, 3, 3)), requires_grad=True) for _ in range(2)]
    targets = rng.random((1, 2, 3, 3))
    visible = np.array([[True, False]])
    assert minidl.gradcheck(lambda a, b: hourglass_loss([a, b], targets, visible), stacks)
