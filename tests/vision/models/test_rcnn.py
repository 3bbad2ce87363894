"""The assembled detectors: training lowers the loss, the eval format, empty images, bad input."""

import numpy as np
import pytest

import minidl
from minidl.data.shapes import ShapesDataset, StickFigures, detection_collate
from minidl.optim import Adam
from minidl.vision.models import Backbone
from minidl.vision.models.proposals import WithProposals, proposals_input
from minidl.vision.models.rcnn import FasterRCNN, FastRCNN, KeypointRCNN, MaskRCNN
from minidl.vision.models.roi_heads import KeypointHead, MaskHead, MLPMaskHead

SIZE = 32


def backbone():
    return Backbone(widths=(8, 16, 16), depth=1)


def build(kind, **options):
    minidl.manual_seed(0)
    if kind == "fast":
        return FastRCNN(backbone(), 5, representation_size=32, **options)
    if kind == "faster":
        return FasterRCNN(backbone(), 5, representation_size=32, **options)
    if kind == "mask":
        options.setdefault("mask_head", MaskHead(16, 5, layers=(8,)))
        return MaskRCNN(backbone(), 5, representation_size=32, mask_pool_size=7, **options)
    return KeypointRCNN(backbone(), 2, num_keypoints=14, representation_size=32,
                        keypoint_pool_size=7, keypoint_head=KeypointHead(16, 14, layers=(8,)),
                        **options)


def batch(kind, n=4, empty_first=False):
    if kind == "keypoint":
        data = StickFigures(n, image_size=SIZE, seed=0)
    else:
        data = ShapesDataset(n, image_size=SIZE, seed=0, min_objects=0 if empty_first else 1)
    if kind == "fast":
        data = WithProposals(data, seed=0, random_boxes=30)
    samples = [data[i] for i in range(n)]
    if empty_first:
        image, target = samples[0]
        target = dict(target, boxes=np.zeros((0, 4), np.float32),
                      labels=np.zeros(0, np.int64), masks=np.zeros((0, SIZE, SIZE), bool))
        samples[0] = (image, target)
    return detection_collate(samples)


def extra(kind, targets):
    return proposals_input(targets) if kind == "fast" else {}


KINDS = ["fast", "faster", "mask", "keypoint"]
LOSS_TERMS = {
    "fast": {"loss_classifier", "loss_box_reg"},
    "faster": {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg"},
    "mask": {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
             "loss_mask"},
    "keypoint": {"loss_objectness", "loss_rpn_box_reg", "loss_classifier", "loss_box_reg",
                 "loss_keypoint"},
}


def train_steps(model, images, targets, kind, steps, lr=3e-3):
    optimizer = Adam(model.parameters(), lr=lr)
    history = []
    model.train()
    for _ in range(steps):
        losses = model(images, targets, **extra(kind, targets))
        total = sum(losses.values())
        optimizer.zero_grad()
        total.backward()
        optimizer.step()
        history.append({name: float(value.item()) for name, value in losses.items()})
    return history


@pytest.mark.parametrize("kind", KINDS)
def test_training_steps_lower_every_loss_on_a_fixed_batch(kind):
    model = build(kind)
    images, targets = batch(kind)
    history = train_steps(model, images, targets, kind, 25)
    assert set(history[0]) == LOSS_TERMS[kind]
    first, last = sum(history[0].values()), sum(history[-1].values())
    assert last < 0.75 * first, (first, last)
    for term in ("loss_classifier", "loss_mask", "loss_keypoint", "loss_objectness"):
        if term in history[0]:
            assert history[-1][term] < history[0][term], term


@pytest.mark.parametrize("kind", KINDS)
def test_eval_returns_one_detection_dict_per_image(kind):
    model = build(kind)
    images, targets = batch(kind)
    train_steps(model, images, targets, kind, 3)
    model.eval()
    detections = model(images, **extra(kind, targets))
    assert len(detections) == images.shape[0]
    for d in detections:
        count = len(d["scores"])
        assert d["boxes"].shape == (count, 4) and d["labels"].shape == (count,)
        assert d["boxes"].dtype == np.float32 and d["labels"].dtype == np.int64
        assert np.all(np.diff(d["scores"]) <= 0), "best first"
        assert ((d["labels"] >= 1) & (d["labels"] < model.num_classes)).all()
        assert (d["boxes"] >= 0).all() and (d["boxes"] <= SIZE).all()
        if kind == "mask":
            assert d["masks"].shape == (count, 1, SIZE, SIZE) and d["masks"].dtype == np.float32
            assert ((d["masks"] >= 0) & (d["masks"] <= 1)).all()
        if kind == "keypoint":
            assert d["keypoints"].shape == (count, 14, 3)
            assert d["keypoints_scores"].shape == (count, 14)


@pytest.mark.parametrize("kind", ["fast", "faster", "mask"])
def test_an_image_without_objects_trains_and_evaluates(kind):
    model = build(kind)
    images, targets = batch(kind, empty_first=True)
    history = train_steps(model, images, targets, kind, 2)
    assert all(np.isfinite(v) for step in history for v in step.values())
    model.eval()
    assert len(model(images, **extra(kind, targets))) == len(targets)


@pytest.mark.parametrize("kind", ["faster", "mask"])
def test_a_batch_of_only_empty_images_trains(kind):
    model = build(kind)
    images, targets = batch(kind, n=2)
    targets = [dict(t, boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64),
                    masks=np.zeros((0, SIZE, SIZE), bool)) for t in targets]
    history = train_steps(model, images, targets, kind, 2)
    assert history[0]["loss_box_reg"] == 0.0
    if kind == "mask":
        assert history[0]["loss_mask"] == 0.0


def test_fast_rcnn_paper_sampling_with_only_empty_images_gives_zero_box_losses():
    # the paper's background window [0.1, 0.5) leaves no RoI in an image without objects
    model = build("fast")
    images, targets = batch("fast", n=2)
    targets = [dict(t, boxes=np.zeros((0, 4), np.float32), labels=np.zeros(0, np.int64))
               for t in targets]
    history = train_steps(model, images, targets, "fast", 1)
    assert history[0] == {"loss_classifier": 0.0, "loss_box_reg": 0.0}


@pytest.mark.parametrize("kind,key", [("faster", "boxes"), ("faster", "labels"),
                                      ("mask", "masks"), ("keypoint", "keypoints")])
def test_a_missing_target_key_names_the_model_and_the_key(kind, key):
    model = build(kind).train()
    images, targets = batch(kind)
    targets[1] = {k: v for k, v in targets[1].items() if k != key}
    with pytest.raises(ValueError, match=rf"{type(model).__name__}: target 1 has no \['{key}'\]"):
        model(images, targets)


@pytest.mark.parametrize("box,message", [
    ([10, 10, 40, 20], "lies outside the 32 x 32 image"),
    ([-1, 0, 10, 10], "lies outside"),
    ([10, 10, 5, 20], "has no area"),
    ([10, 10, 10, 20], "has no area"),
    ([np.nan, 0, 4, 4], "must be finite"),
])
def test_bad_boxes_are_refused_before_anything_runs(box, message):
    model = build("faster").train()
    images, targets = batch("faster")
    targets[2] = dict(targets[2], boxes=np.array([box], np.float32), labels=np.array([1]))
    before = [p.data.copy() for p in model.parameters()]
    with pytest.raises(ValueError, match=f"FasterRCNN: target 2: .*{message}"):
        model(images, targets)
    assert all(np.array_equal(a, p.data) for a, p in zip(before, model.parameters()))


@pytest.mark.parametrize("label", [0, 5, -1])
def test_labels_outside_one_to_k_are_refused(label):
    model = build("faster").train()
    images, targets = batch("faster")
    labels = targets[0]["labels"].copy()
    labels[0] = label
    targets[0] = dict(targets[0], labels=labels)
    with pytest.raises(ValueError, match=r"FasterRCNN: target 0: labels .* must be in 1..4"):
        model(images, targets)


def test_other_bad_input_is_named():
    model = build("mask").train()
    images, targets = batch("mask")
    with pytest.raises(ValueError, match="MaskRCNN: training mode needs targets"):
        model(images)
    with pytest.raises(ValueError, match="MaskRCNN: need one target dict per image"):
        model(images, targets[:2])
    targets[0] = dict(targets[0], labels=targets[0]["labels"].astype(np.float32))
    with pytest.raises(ValueError, match="integer labels"):
        model(images, targets)
    images2, targets2 = batch("mask")
    targets2[0] = dict(targets2[0], masks=targets2[0]["masks"][:, :16])
    with pytest.raises(ValueError, match="MaskRCNN: target 0: masks must be"):
        model(images2, targets2)
    with pytest.raises(ValueError, match="MaskRCNN: images must be a float"):
        model(images2.data[0], targets2)
    with pytest.raises(ValueError, match="num_classes counts the background"):
        FasterRCNN(backbone(), 1)


def test_fast_rcnn_needs_valid_proposals():
    model = build("fast")
    images, targets = batch("fast")
    with pytest.raises(ValueError, match=r"FastRCNN: needs proposals="):
        model(images, targets)
    model.eval()
    with pytest.raises(ValueError, match=r"FastRCNN: needs proposals="):
        model(images)
    bad = [t["proposals"] for t in targets]
    bad[3] = np.array([[5, 5, 2, 9]], np.float32)
    with pytest.raises(ValueError, match="FastRCNN: proposals of image 3 must be finite"):
        model(images, proposals=bad)


def test_mask_rcnn_variants_of_the_paper_ablations_train():
    images, targets = batch("mask")
    for options in ({"mask_pool": "pool"}, {"mask_loss": "softmax"},
                    {"mask_head": MLPMaskHead(16, 7, 5, 14, hidden=16)}):
        model = build("mask", **options)
        history = train_steps(model, images, targets, "mask", 15)
        assert history[-1]["loss_mask"] < history[0]["loss_mask"], options
        model.eval()
        masks = model(images)[0]["masks"]
        assert ((masks >= 0) & (masks <= 1)).all()


@pytest.mark.parametrize("kind", ["fast", "mask", "keypoint"])
def test_nothing_detected_gives_empty_arrays_of_the_right_shapes(kind):
    model = build(kind).eval()
    model.roi_heads.score_thresh = 1.1  # no score passes
    images, targets = batch(kind, n=2)
    proposals = {"proposals": [np.zeros((0, 4), np.float32)] * 2} if kind == "fast" else {}
    for d in model(images, **proposals):
        assert d["boxes"].shape == (0, 4) and d["scores"].shape == (0,)
        if kind == "mask":
            assert d["masks"].shape == (0, 1, SIZE, SIZE)
        if kind == "keypoint":
            assert d["keypoints"].shape == (0, 14, 3) and d["keypoints_scores"].shape == (0, 14)
