"""YOLO v1 and YOLO v2: detection as one regression over a grid.

**YOLO v1** (Redmon, Divvala, Girshick & Farhadi, "You Only Look Once: Unified,
Real-Time Object Detection", CVPR 2016). The image is divided into an S x S grid.
The cell that contains an object's centre is responsible for it. Every cell
predicts B boxes, each as (x, y, w, h, confidence), and *one* set of C class
probabilities P(class | object) shared by its B boxes:

    output [N, S, S, 5B + C]       the paper: S = 7, B = 2, C = 20 -> 7 x 7 x 30

x, y are the box centre's offset inside the cell, w, h the size relative to the
image, confidence = P(object) x IoU(predicted box, object). At test time each box
gets a class-specific score P(class | object) x confidence, and NMS removes the
duplicates. The network is a conv backbone and two fully connected layers, so
every cell's prediction sees the whole image. The loss is a sum of squared errors
(``yolo_v1_loss_terms`` in ``minidl/vision/loss.py``) on the raw outputs: the last
layer is linear, as in the paper. (A sigmoid on the confidence looks tidier but
stalls: the no-object term drives it to 0, where its slope vanishes, and a
predictor that later becomes responsible for an object cannot raise it again.)

**YOLO v2** (Redmon & Farhadi, "YOLO9000: Better, Faster, Stronger", CVPR 2017)
keeps the grid but borrows anchors from Faster R-CNN: each cell has A *priors*
(box shapes), chosen by k-means on the training boxes with the distance
d = 1 - IoU (``kmeans_anchors``), and each prior predicts its own box,
objectness *and class distribution*:

    output [N, S, S, A (5 + C)]    the paper: 13 x 13 x 5 x (5 + 20) = 13 x 13 x 125
    box:   b_x = (sigmoid(t_x) + c_x) stride,  b_w = p_w exp(t_w)  (likewise y, h)

Two objects whose centres share a cell can now both be found (by different
priors), which YOLO v1's single class distribution per cell cannot do. The head
is convolutional, so the grid is the backbone's feature map (S = H / stride).
"""

from __future__ import annotations

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.nn.activation import LeakyReLU
from minidl.nn.containers import Sequential
from minidl.nn.conv import Conv2d
from minidl.nn.dropout import Dropout
from minidl.nn.linear import Flatten, Linear
from minidl.nn.module import Module
from minidl.vision.boxes import box_iou
from minidl.vision.loss import _cell_boxes_xyxy, prior_bias, yolo_v1_loss_terms, yolo_v1_targets
from minidl.vision.models.backbone import conv_norm_relu
from minidl.vision.models.dense import check_num_classes, labels_from_one, select_detections
from minidl.vision.models.rcnn import check_images, check_targets
from minidl.vision.models.recipes import TrainedDetector, small_backbone, train_recipe


# ---- YOLO v1 ---------------------------------------------------------------------------
class YOLOv1(Module):
    """YOLO v1: a backbone, two fully connected layers, an S x S x (5B + C) output.

    Args:
        backbone: a Module with ``out_channels`` and ``strides`` (e.g. ``Backbone``).
        num_classes: K + 1 (background included, as the other detectors; YOLO itself
            predicts the K object classes, C = K).
        image_size: the side of the (square) images; fixes the fully connected input.
        grid_size: S (7, the paper). num_boxes: B (2, the paper).
        hidden: width of the first fully connected layer (4096 in the paper).
        dropout: after the first fully connected layer (0.5, the paper).
        lambda_coord, lambda_noobj: the loss weights (5 and 0.5, the paper).
        score_thresh, nms_thresh, detections_per_img: eval (``select_detections``).

    Training: ``model(images, targets)`` -> {"loss_coord", "loss_size", "loss_obj",
    "loss_noobj", "loss_class"}. Eval: one dict per image (boxes, labels 1..K, scores).
    ``predict(images)`` gives the activated output [N, S, S, 5B + C].
    """

    def __init__(self, backbone, num_classes: int, image_size: int = 64, grid_size: int = 7,
                 num_boxes: int = 2, head: str = "conv", hidden: int = 512, dropout: float = 0.5,
                 lambda_coord: float = 5.0, lambda_noobj: float = 0.5,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100):
        super().__init__()
        check_num_classes(num_classes, "YOLOv1")
        feature_size = image_size // backbone.strides[-1]
        self.depth = 5 * num_boxes + num_classes - 1
        width = backbone.out_channels
        self.backbone = backbone
        if head == "fc":
            self.head = Sequential(
                Flatten(), Linear(width * feature_size * feature_size, hidden),
                LeakyReLU(0.1), Dropout(dropout), Linear(hidden, grid_size ** 2 * self.depth))
        elif head == "conv":
            grid_size = feature_size   # one cell per position of the backbone's map
            self.head = Sequential(conv_norm_relu(width, width), Conv2d(width, self.depth, 1))
        else:
            raise ValueError(f"YOLOv1: head must be 'fc' (the paper) or 'conv', got {head!r}")
        self.head_kind = head
        self.num_classes, self.image_size = num_classes, image_size
        self.grid_size, self.num_boxes = grid_size, num_boxes
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img

    def predict(self, images):
        """[N, 3, H, W] -> [N, S, S, 5B + C]: per predictor (x, y, w, h, confidence), then
        the class scores P(class | object), all linear outputs (the paper)."""
        images = check_images(images, "YOLOv1")
        if images.shape[-2:] != (self.image_size, self.image_size):
            raise ValueError(f"YOLOv1: built for {self.image_size} x {self.image_size} images "
                             f"(the grid is fixed), got {images.shape[-2]} x {images.shape[-1]}")
        out = self.head(self.backbone(images))
        s, n = self.grid_size, images.shape[0]
        if self.head_kind == "fc":
            return out.reshape(n, s, s, self.depth)
        return out.permute(0, 2, 3, 1)       # [N, 5B + C, S, S] -> [N, S, S, 5B + C]

    def targets(self, targets) -> np.ndarray:
        """The loss's target [N, S, S, 5 + C] (``yolo_v1_targets``; one object per cell)."""
        return yolo_v1_targets([t["boxes"] for t in targets],
                               [labels_from_one(t["labels"]) for t in targets],
                               (self.image_size, self.image_size), self.grid_size,
                               self.num_classes - 1)

    def loss(self, predictions, targets) -> dict:
        terms = yolo_v1_loss_terms(predictions, self.targets(targets), self.num_boxes,
                                   self.lambda_coord, self.lambda_noobj)
        return {f"loss_{name}": value for name, value in terms.items()}

    def forward(self, images, targets=None):
        if self.training:
            images = check_images(images, "YOLOv1")
            check_targets(targets, images, self.num_classes, "YOLOv1")
            return self.loss(self.predict(images), targets)
        return self.postprocess(self.predict(images).data)

    def postprocess(self, predictions: np.ndarray) -> list:
        """Class-specific confidence P(class | object) x confidence for every box and class,
        then ``select_detections`` (threshold, per-class NMS, top detections)."""
        n, s = predictions.shape[:2]
        b, size = self.num_boxes, self.image_size
        boxes = predictions[..., :5 * b].reshape(n, s, s, b, 5)
        xyxy = _cell_boxes_xyxy(boxes[..., :4], s) * size                    # [N, S, S, B, 4]
        class_probs = predictions[..., 5 * b:]                                # [N, S, S, C]
        scores = class_probs[:, :, :, None, :] * boxes[..., 4:5]              # [N, S, S, B, C]
        c = class_probs.shape[-1]
        labels = np.broadcast_to(np.arange(1, c + 1), scores.shape)
        return [select_detections(np.repeat(xyxy[i].reshape(-1, 4), c, axis=0),
                                  scores[i].reshape(-1), labels[i].reshape(-1), (size, size),
                                  self.score_thresh, self.nms_thresh, self.detections_per_img)
                for i in range(n)]


# ---- YOLO v2's priors by k-means ------------------------------------------------------------
def shape_iou(wh1, wh2) -> np.ndarray:
    """IoU of boxes given only by their sizes, as if they shared one centre (YOLO v2, 2.2):

        IoU = min(w1, w2) min(h1, h2) / (w1 h1 + w2 h2 - min(w1, w2) min(h1, h2))

    wh1: [n, 2], wh2: [k, 2] -> [n, k].
    """
    wh1, wh2 = np.asarray(wh1, np.float64), np.asarray(wh2, np.float64)
    inter = (np.minimum(wh1[:, None, 0], wh2[None, :, 0])
             * np.minimum(wh1[:, None, 1], wh2[None, :, 1]))
    union = (wh1[:, 0] * wh1[:, 1])[:, None] + (wh2[:, 0] * wh2[:, 1])[None, :] - inter
    return inter / union


def kmeans_anchors(wh, k: int, distance: str = "iou", seed: int = 0,
                   iterations: int = 100) -> np.ndarray:
    """Box priors by k-means on the training boxes' sizes (YOLO v2, section 2, "Dimension
    Clusters"):

        assign each box to the nearest centroid, d(box, c) = 1 - IoU(box, c)  ("iou")
                                            or d = ||(w, h) - c||^2          ("euclidean")
        move each centroid to the mean size of its boxes; repeat until nothing changes

    The paper prefers 1 - IoU: with Euclidean distance "larger boxes generate more error
    than smaller boxes". wh: [n, 2] widths and heights -> [k, 2] priors, smallest first.
    """
    wh = np.asarray(wh, np.float64).reshape(-1, 2)
    if distance not in ("iou", "euclidean"):
        raise ValueError(f"kmeans_anchors: distance must be 'iou' or 'euclidean', got "
                         f"{distance!r}")
    if not 1 <= k <= len(wh):
        raise ValueError(f"kmeans_anchors: need 1 <= k <= {len(wh)} boxes, got k = {k}")
    rng = np.random.default_rng(seed)
    centroids = wh[rng.choice(len(wh), k, replace=False)]
    assignment = np.full(len(wh), -1)
    for _ in range(iterations):
        if distance == "iou":
            nearest = np.argmax(shape_iou(wh, centroids), axis=1)
        else:
            nearest = np.argmin(((wh[:, None] - centroids[None]) ** 2).sum(-1), axis=1)
        if np.array_equal(nearest, assignment):
            break
        assignment = nearest
        for c in range(k):   # an emptied cluster keeps its centroid
            if (assignment == c).any():
                centroids[c] = wh[assignment == c].mean(axis=0)
    return centroids[np.argsort(centroids.prod(axis=1))]


def best_prior_iou(wh, priors) -> float:
    """Avg IoU (YOLO v2, Table 1): the mean over boxes of the IoU with their best prior."""
    return float(shape_iou(wh, priors).max(axis=1).mean())


# ---- YOLO v2 ---------------------------------------------------------------------------------
class YOLOv2(Module):
    """YOLO v2: a conv head with A priors per cell, each with a box, objectness and C classes.

    Args:
        backbone: a Module with ``out_channels`` and ``strides``; its map is the S x S grid.
        num_classes: K + 1 (background included; the head predicts C = K classes per prior).
        anchors: [A, 2] prior widths and heights in pixels (e.g. ``kmeans_anchors``).
        lambda_coord, lambda_noobj: weights of the box and the no-object terms.
        ignore_thresh: a prior that is not responsible but whose box already overlaps an
            object by more than this is left out of the no-object term (0.6, the paper).
        score_thresh, nms_thresh, detections_per_img: eval (``select_detections``).

    Loss (a sum over the batch, divided by N, as YOLO v1's): for the responsible prior
    (the best-shaped prior, ``shape_iou``, in the cell of the object's centre):

        coord   = l_coord [(sigmoid t_x - x)^2 + (sigmoid t_y - y)^2 + (t_w - log(w / p_w))^2
                           + (t_h - log(h / p_h))^2]
        obj     = BCE(t_o, 1);   class = cross-entropy(class logits, class)
        noobj   = l_noobj BCE(t_o, 0) for every other prior not ignored

    When two objects need the same prior of the same cell, the first one keeps it.
    """

    def __init__(self, backbone, num_classes: int, anchors, lambda_coord: float = 1.0,
                 lambda_noobj: float = 1.0, ignore_thresh: float = 0.6,
                 score_thresh: float = 0.05, nms_thresh: float = 0.5,
                 detections_per_img: int = 100):
        super().__init__()
        check_num_classes(num_classes, "YOLOv2")
        self.anchors = np.asarray(anchors, np.float32).reshape(-1, 2)
        self.num_anchors = len(self.anchors)
        self.values = 5 + num_classes - 1
        width = backbone.out_channels
        self.backbone = backbone
        self.head = Sequential(conv_norm_relu(width, width, norm="batch"),
                               Conv2d(width, self.num_anchors * self.values, 1))
        # objectness starts at P(object) = 0.01 (RetinaNet's prior, ``prior_bias``), so the
        # hundreds of empty priors do not swamp the first steps
        objectness = self.head[1].bias.data.reshape(self.num_anchors, self.values)[:, 4]
        objectness[:] = prior_bias(0.01)
        self.num_classes, self.stride = num_classes, backbone.strides[-1]
        self.lambda_coord, self.lambda_noobj = lambda_coord, lambda_noobj
        self.ignore_thresh = ignore_thresh
        self.score_thresh, self.nms_thresh = score_thresh, nms_thresh
        self.detections_per_img = detections_per_img

    def predict(self, images):
        """[N, 3, H, W] -> raw [N, S, S, A, 5 + C]: t_x, t_y, t_w, t_h, t_o, class logits."""
        out = self.head(self.backbone(images))
        n, _, s, s2 = out.shape
        return out.reshape(n, self.num_anchors, self.values, s, s2).permute(0, 3, 4, 1, 2)

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """Boxes [N, S, S, A, 4] xyxy in pixels from t_x, t_y, t_w, t_h (the formula above)."""
        s_y, s_x = raw.shape[1:3]
        cols = np.arange(s_x).reshape(1, 1, s_x, 1)
        rows = np.arange(s_y).reshape(1, s_y, 1, 1)
        cx = (cols + _sigmoid(raw[..., 0])) * self.stride
        cy = (rows + _sigmoid(raw[..., 1])) * self.stride
        w = self.anchors[:, 0] * np.exp(np.clip(raw[..., 2], -10, 10))
        h = self.anchors[:, 1] * np.exp(np.clip(raw[..., 3], -10, 10))
        return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)

    def assign(self, targets, grid) -> dict:
        """Training targets: which (image, row, column, prior) is responsible for each object,
        and its regression targets and class. Returns arrays indexed by the responsible priors."""
        index, tx, ty, tw, th, classes = [], [], [], [], [], []
        taken = set()
        for n, target in enumerate(targets):
            boxes = np.asarray(target["boxes"], np.float64).reshape(-1, 4)
            wh = boxes[:, 2:] - boxes[:, :2]
            centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / self.stride
            best = np.argmax(shape_iou(wh, self.anchors), axis=1) if len(boxes) else []
            for k, (label, prior) in enumerate(zip(labels_from_one(target["labels"]), best)):
                col = min(int(centre[k, 0]), grid[1] - 1)
                row = min(int(centre[k, 1]), grid[0] - 1)
                if (n, row, col, prior) in taken:
                    continue
                taken.add((n, row, col, prior))
                index.append((n, row, col, prior))
                tx.append(centre[k, 0] - col)
                ty.append(centre[k, 1] - row)
                tw.append(np.log(wh[k, 0] / self.anchors[prior, 0]))
                th.append(np.log(wh[k, 1] / self.anchors[prior, 1]))
                classes.append(label)
        index = np.asarray(index, np.int64).reshape(-1, 4)
        return {"index": tuple(index.T), "xy": np.stack([tx, ty], -1).reshape(-1, 2),
                "wh": np.stack([tw, th], -1).reshape(-1, 2), "classes": np.asarray(classes)}

    def loss(self, raw, targets) -> dict:
        n, grid = raw.shape[0], raw.shape[1:3]
        assigned = self.assign(targets, grid)
        responsible = np.zeros(raw.shape[:4], bool)
        responsible[assigned["index"]] = True
        # no-object term: every other prior, unless its box already overlaps an object well
        boxes = self.decode(raw.data)
        overlapping = np.zeros(raw.shape[:4], bool)
        for i, target in enumerate(targets):
            if len(target["boxes"]):
                best = box_iou(boxes[i].reshape(-1, 4), target["boxes"]).max(axis=1)
                overlapping[i] = best.reshape(raw.shape[1:4]) > self.ignore_thresh
        negative = ~responsible & ~overlapping
        dtype = raw.dtype
        chosen = raw[assigned["index"]]                                      # [R, 5 + C]
        xy = F.sigmoid(chosen[:, :2])
        coord = (((xy - assigned["xy"].astype(dtype)) ** 2).sum()
                 + ((chosen[:, 2:4] - assigned["wh"].astype(dtype)) ** 2).sum())
        objectness = raw[..., 4]
        ones = np.ones(int(responsible.sum()), dtype)
        zeros = np.zeros(int(negative.sum()), dtype)
        obj = F.binary_cross_entropy_with_logits(objectness[responsible], ones, reduction="sum")
        noobj = F.binary_cross_entropy_with_logits(objectness[negative], zeros, reduction="sum")
        if len(assigned["classes"]):
            classes = F.cross_entropy(chosen[:, 5:], assigned["classes"], reduction="sum")
        else:
            classes = chosen.sum() * 0.0
        return {"loss_coord": self.lambda_coord * coord / n, "loss_obj": obj / n,
                "loss_noobj": self.lambda_noobj * noobj / n, "loss_class": classes / n}

    def forward(self, images, targets=None):
        images = check_images(images, "YOLOv2")
        if self.training:
            check_targets(targets, images, self.num_classes, "YOLOv2")
            return self.loss(self.predict(images), targets)
        return self.postprocess(self.predict(images).data, tuple(images.shape[-2:]))

    def postprocess(self, raw: np.ndarray, image_size) -> list:
        """Score = sigmoid(t_o) x softmax(class logits) for every prior and class, then
        ``select_detections``."""
        boxes = self.decode(raw)
        logits = raw[..., 5:]
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        scores = _sigmoid(raw[..., 4:5]) * probs                            # [N, S, S, A, C]
        c = probs.shape[-1]
        labels = np.broadcast_to(np.arange(1, c + 1), scores.shape)
        return [select_detections(np.repeat(boxes[i].reshape(-1, 4), c, axis=0),
                                  scores[i].reshape(-1), labels[i].reshape(-1), image_size,
                                  self.score_thresh, self.nms_thresh, self.detections_per_img)
                for i in range(raw.shape[0])]


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))   # = 1 / (1 + e^-x), without overflow


def box_sizes(dataset) -> np.ndarray:
    """[n, 2] widths and heights of every object box of a detection data set."""
    sizes = [np.asarray(dataset[i][1]["boxes"]).reshape(-1, 4) for i in range(len(dataset))]
    boxes = np.concatenate(sizes) if sizes else np.zeros((0, 4))
    return boxes[:, 2:] - boxes[:, :2]


# ---- recipes ------------------------------------------------------------------------------
def yolo_v1_recipe(train_set, epochs: int = 12, seed: int = 0, batch_size: int = 16,
                   lr: float = 1e-3, **options) -> TrainedDetector:
    """YOLO v1 (S = 7, B = 2) on ``small_backbone``, as lesson 10 trains it; ``options`` go
    to ``YOLOv1``."""
    minidl.manual_seed(seed)
    model = YOLOv1(small_backbone(), train_set.num_classes + 1, image_size=train_set.image_size,
                   **options)
    return train_recipe("YOLO v1", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)


def yolo_v2_recipe(train_set, epochs: int = 12, seed: int = 0, batch_size: int = 16,
                   lr: float = 1e-3, num_anchors: int = 5, anchors=None,
                   **options) -> TrainedDetector:
    """YOLO v2 with ``num_anchors`` priors from k-means (1 - IoU) on the training boxes
    (or the given ``anchors``), as lesson 10 trains it; ``options`` go to ``YOLOv2``."""
    minidl.manual_seed(seed)
    if anchors is None:
        anchors = kmeans_anchors(box_sizes(train_set), num_anchors, seed=seed)
    model = YOLOv2(small_backbone(), train_set.num_classes + 1, anchors, **options)
    return train_recipe("YOLO v2", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
