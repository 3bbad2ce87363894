"""The RoI heads: pooling wrapper, box head outputs, sampling, detections, masks, keypoints."""

import numpy as np
import pytest

import minidl
import minidl.nn.functional as F
from minidl import Tensor
from minidl.vision import BoxCoder, RoISampler, box_iou, project_masks_on_boxes, roi_align, roi_pool
from minidl.vision.models.roi_heads import (
    FastRCNNPredictor,
    FeatureRoIPool,
    KeypointHead,
    MaskHead,
    MLPMaskHead,
    TwoMLPHead,
    UniformRoISampler,
    box_regression_targets,
    heatmaps_to_keypoints,
    mask_probabilities,
    mask_softmax_loss,
    paste_masks_in_image,
    postprocess_detections,
    sample_uniformly,
)
from tests.vision.models.test_rpn import feature


@pytest.mark.parametrize("mode", ["pool", "align"])
def test_feature_roi_pool_is_the_op_at_the_maps_stride(mode):
    x = feature(n=2, channels=3, size=8)
    boxes = [np.array([[4.0, 8.0, 40.0, 30.0]], np.float32),
             np.array([[0.0, 0.0, 64.0, 64.0], [10, 10, 20, 20]], np.float32)]
    pooled = FeatureRoIPool(3, mode, sampling_ratio=2)([x], boxes, [(64, 64)] * 2)
    if mode == "pool":
        expected = roi_pool(x, boxes, 3, 1 / 8)
    else:
        expected = roi_align(x, boxes, 3, 1 / 8, 2)
    np.testing.assert_array_equal(pooled.data, expected.data)
    assert tuple(pooled.shape) == (3, 3, 3, 3)
    with pytest.raises(ValueError, match="FeatureRoIPool: mode must be"):
        FeatureRoIPool(3, "max")


def test_box_head_and_predictor_shapes():
    minidl.manual_seed(0)
    pooled = Tensor(np.ones((5, 3, 7, 7), np.float32))
    features = TwoMLPHead(3 * 7 * 7, 16)(pooled)
    logits, deltas = FastRCNNPredictor(16, num_classes=4)(features)
    assert tuple(features.shape) == (5, 16) and (features.data >= 0).all()
    assert tuple(logits.shape) == (5, 4) and tuple(deltas.shape) == (5, 16)


def test_uniform_sampling_labels_by_iou_and_draws_from_all_proposals():
    gt = np.array([[0, 0, 10, 10], [20, 20, 40, 40]], np.float32)
    gt_labels = np.array([3, 1])
    proposals = np.array([[0, 0, 10, 9], [20, 20, 40, 30], [50, 50, 60, 60],
                          [0, 0, 4, 4]], np.float32)
    sample = sample_uniformly(proposals, gt, gt_labels, 100, add_gt_as_proposals=False,
                              generator=np.random.default_rng(0))
    # everything is drawn when the pool is smaller than the batch: IoUs 0.9, 0.5, 0, 0.16
    assert len(sample.labels) == 4
    by_box = {tuple(b): lab for b, lab in zip(sample.proposals.tolist(), sample.labels)}
    assert by_box == {(0, 0, 10, 9): 3, (20, 20, 40, 30): 1, (50, 50, 60, 60): 0, (0, 0, 4, 4): 0}
    assert list(sample.labels[:2] > 0) == [True, True], "positives first"
    # a big pool: the foreground share follows the pool (not a fixed 25%)
    rng = np.random.default_rng(1)
    good, bad = np.tile([[0, 0, 10, 10]], (100, 1)), np.tile([[50, 50, 60, 60]], (300, 1))
    many = np.concatenate([good, bad]).astype(np.float32)
    shares = [(sampler_draw.labels > 0).mean() for sampler_draw in
              (UniformRoISampler(64, add_gt_as_proposals=False, generator=rng)(many, gt, gt_labels)
               for _ in range(50))]
    assert 0.2 < np.mean(shares) < 0.3
    empty = sample_uniformly(proposals, np.zeros((0, 4)), np.zeros(0), 3,
                             generator=np.random.default_rng(0))
    assert len(empty.labels) == 3 and not empty.labels.any() and (empty.matched_idxs == -1).all()


def test_regression_targets_decode_back_to_the_matched_object_for_foreground_only():
    sampler = RoISampler(8, 0.5, 0.5, (0.0, 0.5), generator=np.random.default_rng(0))
    gt = np.array([[0, 0, 10, 10]], np.float32)
    proposals = np.array([[1, 1, 11, 11], [30, 30, 40, 40]], np.float32)
    sample = sampler(proposals, gt, np.array([2]))
    coder = BoxCoder((10, 10, 5, 5))
    targets = box_regression_targets(sample, coder)
    fg = sample.labels > 0
    np.testing.assert_allclose(coder.decode_single(targets[fg], sample.proposals[fg]),
                               np.repeat(gt, fg.sum(), 0), atol=1e-4)
    assert not targets[~fg].any()


def logits_for(probabilities):
    return np.log(np.asarray(probabilities, np.float64))


def test_postprocess_turns_scores_and_deltas_into_detections():
    coder = BoxCoder((10, 10, 5, 5))
    rois = [np.array([[0, 0, 10, 10], [1, 0, 11, 10], [30, 30, 50, 50]], np.float32),
            np.array([[5, 5, 15, 15]], np.float32)]
    # classes: background, 1, 2.  RoI 0 and 1 both say class 2, RoI 2 says class 1
    probabilities = [[0.1, 0.1, 0.8], [0.1, 0.2, 0.7], [0.3, 0.6, 0.1], [0.98, 0.01, 0.01]]
    deltas = np.zeros((4, 12), np.float32)
    deltas[2, 4:8] = [1.0, 0, 0, 0]  # class 1 of RoI 2 moves right by 0.1 of its width
    detections = postprocess_detections(logits_for(probabilities), deltas, rois, [(64, 64)] * 2,
                                        coder, score_thresh=0.05, nms_thresh=0.5)
    first, second = detections
    # image 0, per class (RoI 0 and RoI 1 overlap with IoU 0.82, RoI 2 overlaps neither):
    # class 2: 0.8 (RoI 0) suppresses 0.7 (RoI 1), 0.1 (RoI 2) stays;
    # class 1: 0.6 (RoI 2), 0.2 (RoI 1) suppresses 0.1 (RoI 0).  Image 1: only background.
    np.testing.assert_allclose(first["scores"], [0.8, 0.6, 0.2, 0.1], rtol=1e-6)
    np.testing.assert_array_equal(first["labels"], [2, 1, 1, 2])
    np.testing.assert_allclose(first["boxes"][:2], [[0, 0, 10, 10], [32, 30, 52, 50]], atol=1e-4)
    assert len(second["scores"]) == 0 and second["boxes"].shape == (0, 4)
    assert first["labels"].dtype == np.int64 and first["boxes"].dtype == np.float32
    capped = postprocess_detections(logits_for(probabilities), deltas, rois, [(64, 64)] * 2,
                                    coder, detections_per_img=2)
    assert len(capped[0]["scores"]) == 2


def test_postprocess_clips_to_the_image():
    coder = BoxCoder((10, 10, 5, 5))
    deltas = np.zeros((1, 8), np.float32)
    detections = postprocess_detections(logits_for([[0.1, 0.9]]), deltas,
                                        [np.array([[50, 50, 80, 70]], np.float32)], [(60, 64)],
                                        coder)
    np.testing.assert_allclose(detections[0]["boxes"], [[50, 50, 64, 60]])


def test_mask_softmax_loss_is_the_per_pixel_cross_entropy_over_classes():
    rng = np.random.default_rng(0)
    logits = rng.standard_normal((2, 3, 4, 4))
    targets = rng.uniform(0, 1, (2, 4, 4))
    labels = np.array([2, 1])
    loss = mask_softmax_loss(Tensor(logits), labels, targets)
    # by the definition: class labels[r] inside the mask, background (0) outside
    log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    wanted = np.where(targets >= 0.5, labels[:, None, None], 0)
    expected = -np.mean(np.take_along_axis(log_p, wanted[:, None], axis=1))
    np.testing.assert_allclose(loss.item(), expected, rtol=1e-10)
    no_rois = Tensor(np.zeros((0, 3, 4, 4)), requires_grad=True)
    empty = mask_softmax_loss(no_rois, [], np.zeros((0, 4, 4)))
    assert empty.item() == 0.0
    with pytest.raises(ValueError, match="mask_softmax_loss"):
        mask_softmax_loss(Tensor(logits), labels, targets[:, :3])


def test_mask_softmax_loss_gradient_float64():
    rng = np.random.default_rng(1)
    logits = Tensor(rng.standard_normal((2, 3, 3, 3)), requires_grad=True)
    targets = rng.uniform(0, 1, (2, 3, 3))
    assert minidl.gradcheck(lambda t: mask_softmax_loss(t, np.array([1, 2]), targets), [logits])


def test_mask_probabilities_take_the_roi_class():
    logits = np.random.default_rng(0).standard_normal((2, 3, 2, 2))
    labels = np.array([1, 2])
    sigmoid = mask_probabilities(logits, labels, "sigmoid")
    np.testing.assert_allclose(sigmoid[1], 1 / (1 + np.exp(-logits[1, 2])))
    softmax = mask_probabilities(logits, labels, "softmax")
    np.testing.assert_allclose(softmax[0], np.exp(logits[0, 1]) / np.exp(logits[0]).sum(0))


def test_paste_masks_fills_the_box_and_inverts_the_target_projection():
    ones = paste_masks_in_image(np.ones((1, 7, 7)), np.array([[2.0, 3.0, 10.0, 6.0]]), (12, 12))
    expected = np.zeros((12, 12))
    expected[3:6, 2:10] = 1
    np.testing.assert_array_equal(ones[0], expected)
    # an ellipse cut out at 14 x 14 and pasted back covers nearly the same pixels
    y, x = np.mgrid[:40, :40] + 0.5
    mask = ((x - 20) / 12) ** 2 + ((y - 18) / 8) ** 2 <= 1
    box = np.array([[8.0, 10.0, 32.0, 26.0]], np.float32)
    small = project_masks_on_boxes(mask[None], box, np.array([0]), 14)
    pasted = paste_masks_in_image(small, box, (40, 40))[0] >= 0.5
    assert (pasted & mask).sum() / (pasted | mask).sum() > 0.9
    outside = paste_masks_in_image(np.ones((1, 3, 3)), np.array([[50.0, 50, 60, 60]]), (40, 40))
    assert not outside.any()


def test_heads_shapes():
    minidl.manual_seed(0)
    x = Tensor(np.ones((3, 4, 7, 7), np.float32))
    assert tuple(MaskHead(4, num_classes=5, layers=(6,))(x).shape) == (3, 5, 14, 14)
    mlp = MLPMaskHead(4, 7, num_classes=5, mask_size=14, hidden=8)
    assert tuple(mlp(x).shape) == (3, 5, 14, 14)
    assert tuple(KeypointHead(4, num_keypoints=14, layers=(6, 6))(x).shape) == (3, 14, 28, 28)


def test_heatmaps_to_keypoints_reads_the_best_cell_centre():
    heatmaps = np.zeros((1, 2, 4, 4))
    heatmaps[0, 0, 1, 3] = 5.0   # row 1, column 3
    heatmaps[0, 1, 0, 0] = 2.0
    keypoints, scores = heatmaps_to_keypoints(heatmaps, np.array([[10.0, 20.0, 18.0, 28.0]]))
    # cells are 2 x 2 pixels: column 3 -> x = 10 + 3.5 * 2 = 17, row 1 -> y = 20 + 1.5 * 2 = 23
    np.testing.assert_allclose(keypoints[0], [[17, 23, 1], [11, 21, 1]])
    np.testing.assert_allclose(scores[0], [5.0, 2.0])


def test_paste_masks_in_image_is_consistent_with_iou():
    # two pasted masks: full boxes give IoU equal to the boxes' IoU
    boxes = np.array([[0.0, 0.0, 8.0, 8.0], [4.0, 0.0, 12.0, 8.0]])
    masks = paste_masks_in_image(np.ones((2, 4, 4)), boxes, (16, 16)) > 0.5
    iou = (masks[0] & masks[1]).sum() / (masks[0] | masks[1]).sum()
    np.testing.assert_allclose(iou, box_iou(boxes[:1], boxes[1:])[0, 0])


def test_cross_entropy_backs_mask_softmax_loss():
    # the composite reads the per-pixel form of F.cross_entropy
    logits = Tensor(np.zeros((1, 2, 2, 2)))
    assert np.isclose(F.cross_entropy(logits, np.zeros((1, 2, 2), int)).item(), np.log(2))
