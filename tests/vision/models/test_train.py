"""The shared detector loop: history of every loss term, the loss falls, detections and scores."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from minidl.data import DataLoader
from minidl.data.shapes import ShapesDataset, detection_collate
from minidl.optim import SGD
from minidl.vision.models import detect, evaluate_detector, train_detector


class OneBoxDetector(nn.Module):
    """A toy detector in torchvision's convention: it learns one box and one class score
    for every image (training: two loss terms; eval: a list of detection dicts)."""

    def __init__(self):
        super().__init__()
        self.box = nn.Parameter(np.array([0.0, 0.0, 1.0, 1.0], np.float32))
        self.logit = nn.Parameter(np.zeros(1, np.float32))

    def forward(self, images, targets=None):
        if self.training:
            wanted = Tensor(np.stack([t["boxes"][0] for t in targets]))
            loss_box = ((self.box - wanted) ** 2).mean()
            loss_score = (1 - self.logit.sigmoid()).sum()
            return {"loss_box_reg": loss_box, "loss_objectness": loss_score}
        return [{"boxes": self.box.reshape(1, 4), "labels": np.array([1]),
                 "scores": self.logit.sigmoid()} for _ in range(len(images))]


def same_box_loader(n=8, batch_size=4):
    data = ShapesDataset(n, image_size=32, max_objects=1, seed=0)
    samples = [data[i] for i in range(n)]
    box = samples[0][1]["boxes"][:1]
    for _, target in samples:  # every image: the same single object (so one box is perfect)
        target["boxes"], target["labels"] = box.copy(), np.array([1])
        target["area"], target["iscrowd"] = np.array([16.0], np.float32), np.zeros(1, bool)
    return DataLoader(samples, batch_size=batch_size, collate_fn=detection_collate)


def test_train_detector_records_each_term_and_lowers_the_loss():
    minidl.manual_seed(0)
    model, loader = OneBoxDetector(), same_box_loader()
    history = train_detector(model, loader, SGD(model.parameters(), lr=0.1), epochs=5)
    assert set(history) == {"loss_box_reg", "loss_objectness", "loss"}
    assert len(history["loss"]) == 5 * len(loader)
    total = np.add(history["loss_box_reg"], history["loss_objectness"])
    np.testing.assert_allclose(history["loss"], total, rtol=1e-6)
    assert history["loss"][-1] < 0.5 * history["loss"][0]


def test_a_perfect_detector_scores_one_and_a_wrong_one_zero():
    loader = same_box_loader()
    model = OneBoxDetector()
    model.box.data[:] = loader.dataset[0][1]["boxes"][0]
    score = evaluate_detector(model, loader, num_classes=4, name="oracle")
    assert score.voc07_map == pytest.approx(1.0) and score.coco_ap == pytest.approx(1.0)
    assert score.coco_ap50 == pytest.approx(1.0) and score.images_per_second > 0
    assert score.line().startswith("oracle: VOC07 mAP 1.000, COCO AP 1.000")
    model.box.data[:] = [0, 0, 1, 1]  # far from every object
    assert evaluate_detector(model, loader, num_classes=4).voc07_map == 0.0


def test_detect_returns_arrays_in_target_order_and_leaves_eval_mode():
    loader = same_box_loader(n=6, batch_size=4)
    model = OneBoxDetector()
    detections, targets, seconds = detect(model, loader)
    assert len(detections) == len(targets) == 6 and seconds >= 0
    assert all(isinstance(v, np.ndarray) for d in detections for v in d.values())
    assert not model.training


class NeedsHints(OneBoxDetector):
    """A toy detector with an extra model input: per image a box hint it must be given."""

    def forward(self, images, targets=None, hints=None):
        if hints is None or len(hints) != len(images):
            raise ValueError("NeedsHints: needs hints=, one per image")
        if self.training:
            return super().forward(images, targets)
        return [{"boxes": np.asarray(h, np.float32).reshape(1, 4), "labels": np.array([1]),
                 "scores": np.array([0.9], np.float32)} for h in hints]


def hints_from(targets):
    return {"hints": [t["boxes"][0] for t in targets]}


def test_inputs_gives_the_model_extra_arguments_in_training_and_eval():
    minidl.manual_seed(0)
    model, loader = NeedsHints(), same_box_loader()
    with pytest.raises(ValueError, match="NeedsHints: needs hints"):
        train_detector(model, loader, SGD(model.parameters(), lr=0.1))
    history = train_detector(model, loader, SGD(model.parameters(), lr=0.1), inputs=hints_from)
    assert len(history["loss"]) == len(loader)
    score = evaluate_detector(model, loader, num_classes=4, inputs=hints_from)
    assert score.voc07_map == pytest.approx(1.0), "the hints reached the model in eval"
    assert len(score.targets) == len(score.detections) == 8
    np.testing.assert_array_equal(score.targets[3]["boxes"], loader.dataset[3][1]["boxes"])
