"""DETR: detection as set prediction with a transformer (Carion et al., "End-to-End Object
Detection with Transformers", ECCV 2020).

Dense detectors predict many boxes per object and clean up with NMS. DETR predicts a
fixed-size *set* of N boxes and trains it with a one-to-one matching: each object is
assigned to exactly one prediction by the Hungarian algorithm
(``linear_sum_assignment`` in ``minidl/vision/assignment.py``), every other
prediction must say "no object". A second box on the same object is then a
mistake the loss punishes, so the network learns not to make duplicates, and no
NMS is needed.

    image -> CNN backbone [N, C, h, w] -> 1x1 conv to d -> h w tokens (+ 2-D sine positions)
          -> transformer encoder (self-attention over the h w positions)
          -> transformer decoder: N learned *object queries* attend to each other
             and to the encoded image
          -> per query: K + 1 class logits (index 0 = "no object") and a box
             (cx, cy, w, h) in [0, 1] (a 3-layer MLP and a sigmoid)

As in DETR's code, the positional encodings are added to the queries and keys of
every attention layer (not only at the input); the decoder's output after each
layer is also scored (auxiliary losses), which speeds up training.

**Matching cost** between prediction i and object j (section 3.1, DETR's weights):

    C_ij = -1 * p_i(c_j) + 5 * ||b_i - b_j||_1 + 2 * (-GIoU(b_i, b_j))

**Loss**, with sigma the optimal matching:

    L = CE over all N predictions (target: the matched class, else "no object", whose
        weight is 0.1) + 5 * L1(matched boxes) + 2 * (1 - GIoU(matched boxes)),

the box terms divided by the number of objects.
"""

from __future__ import annotations

import math

import numpy as np

import minidl
import minidl.nn.functional as F
from minidl.autograd.mode import no_grad
from minidl.nn import init
from minidl.nn.activation import ReLU
from minidl.nn.containers import ModuleList, Sequential
from minidl.nn.conv import Conv2d
from minidl.nn.linear import Linear
from minidl.nn.module import Module, Parameter
from minidl.nn.norm import LayerNorm
from minidl.nn.transformer import TransformerDecoderLayer, TransformerEncoderLayer
from minidl.vision.assignment import linear_sum_assignment
from minidl.vision.boxes import box_convert, elementwise_generalized_box_iou, generalized_box_iou
from minidl.vision.models.dense import select_detections
from minidl.vision.models.rcnn import check_images, check_targets
from minidl.vision.models.recipes import TrainedDetector, small_backbone, train_recipe


def sine_position_encoding(height: int, width: int, d_model: int,
                           temperature: float = 10000.0) -> np.ndarray:
    """DETR's 2-D sine positions: half the channels encode y, half x (each position
    normalized to (0, 2 pi]), as sines and cosines of geometrically spaced frequencies:

        PE(y, 2i) = sin(y / T^(2i / (d/2))),  PE(y, 2i + 1) = cos(y / T^(2i / (d/2)))

    -> float32 [height * width, d_model], row-major positions (as the flattened map).
    """
    if d_model % 4:
        raise ValueError(f"sine_position_encoding: d_model must be a multiple of 4, got {d_model}")
    half = d_model // 2
    y = (np.arange(1, height + 1) / height * 2 * math.pi)[:, None].repeat(width, 1)
    x = (np.arange(1, width + 1) / width * 2 * math.pi)[None, :].repeat(height, 0)
    frequencies = temperature ** (2 * (np.arange(half) // 2) / half)

    def encode(position):
        angles = position[..., None] / frequencies
        return np.stack([np.sin(angles[..., 0::2]), np.cos(angles[..., 1::2])],
                        axis=-1).reshape(height, width, half)

    return np.concatenate([encode(y), encode(x)], axis=-1).reshape(-1, d_model).astype(
        np.float32)


class DETREncoderLayer(TransformerEncoderLayer):
    """``nn.TransformerEncoderLayer`` (post-norm) with the positions added to queries and keys:

        x = norm1(x + SA(q = x + pos, k = x + pos, v = x));  x = norm2(x + FF(x))
    """

    def forward(self, src, pos):
        q = src + pos
        src = self.norm1(src + self.dropout1(self.self_attn(q, q, src, need_weights=False)[0]))
        return self.norm2(src + self._ff_block(src))


class DETRDecoderLayer(TransformerDecoderLayer):
    """``nn.TransformerDecoderLayer`` (post-norm) with positions on queries and keys:

        t = norm1(t + SA(q = k = t + query_pos, v = t))
        t = norm2(t + MHA(q = t + query_pos, k = memory + pos, v = memory))
        t = norm3(t + FF(t))

    Returns (t, the cross-attention weights [N, queries, positions], averaged over heads).
    """

    def forward(self, tgt, memory, pos, query_pos):
        q = tgt + query_pos
        tgt = self.norm1(tgt + self.dropout1(self.self_attn(q, q, tgt, need_weights=False)[0]))
        attended, weights = self.multihead_attn(tgt + query_pos, memory + pos, memory)
        tgt = self.norm2(tgt + self.dropout2(attended))
        return self.norm3(tgt + self._ff_block(tgt)), weights


def mlp(in_features: int, hidden: int, out_features: int, layers: int) -> Sequential:
    """Linear-ReLU ... Linear with ``layers`` linear layers (DETR's box head: 3)."""
    sizes = [in_features] + [hidden] * (layers - 1) + [out_features]
    blocks = []
    for a, b in zip(sizes[:-1], sizes[1:]):
        blocks += [Linear(a, b), ReLU()]
    return Sequential(*blocks[:-1])


class HungarianMatcher:
    """DETR's matcher: per image, the one-to-one assignment of predictions to objects that
    minimizes C = w_class (-p(class)) + w_bbox L1 + w_giou (-GIoU) (boxes in [0, 1] units).

    ``matcher(logits [Q, K + 1], boxes [Q, 4] cxcywh, labels [G], target boxes [G, 4] cxcywh)``
    -> (prediction indices [min(Q, G)], object indices), as ``linear_sum_assignment``.
    """

    def __init__(self, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0):
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    def cost(self, logits, boxes, labels, target_boxes) -> np.ndarray:
        """The [Q, G] cost matrix (arrays in, no gradient)."""
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs /= probs.sum(-1, keepdims=True)
        class_cost = -probs[:, labels]
        l1 = np.abs(boxes[:, None, :] - target_boxes[None, :, :]).sum(-1)
        giou = generalized_box_iou(box_convert(boxes, "cxcywh", "xyxy"),
                                   box_convert(target_boxes, "cxcywh", "xyxy"))
        return self.cost_class * class_cost + self.cost_bbox * l1 - self.cost_giou * giou

    def __call__(self, logits, boxes, labels, target_boxes):
        if len(labels) == 0:
            return np.zeros(0, np.int64), np.zeros(0, np.int64)
        return linear_sum_assignment(self.cost(logits, boxes, labels, target_boxes))


class DETR(Module):
    """A small DETR.

    Args:
        backbone: a ``Backbone``; its last map, average-pooled by ``token_pool``, gives the
            tokens (the lessons' stride-4 backbone, pooled by 2: 8 x 8 = 64 tokens for a
            64 x 64 image; DETR reads a stride-32 ResNet map). Self-attention costs
            (h w)^2, so pooling by 2 makes the encoder 16 times cheaper.
        num_classes: K + 1: the K object classes (labels 1..K) and "no object" (index 0).
        d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout:
            the transformer (DETR: 256, 8, 6, 6, 2048, 0.1).
        num_queries: N predictions per image (DETR: 100; it must exceed the most objects
            an image can hold).
        eos_coef: the weight of "no object" in the class loss (0.1).
        loss weights: class 1, bbox (L1) 5, giou 2 (also the matching cost weights).
        aux_loss: also score every decoder layer's output.

    Training: ``model(images, targets)`` -> {"loss_ce", "loss_bbox", "loss_giou"} (+ "_l" for
    each earlier decoder layer l when aux_loss), each already weighted. Eval: one dict per
    image with all N predictions (boxes, labels, scores), best first, no NMS.
    """

    def __init__(self, backbone, num_classes: int, d_model: int = 64, nhead: int = 4,
                 num_encoder_layers: int = 2, num_decoder_layers: int = 2,
                 dim_feedforward: int = 128, dropout: float = 0.0, num_queries: int = 10,
                 eos_coef: float = 0.1, weight_class: float = 1.0, weight_bbox: float = 5.0,
                 weight_giou: float = 2.0, aux_loss: bool = True, token_pool: int = 2):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"DETR: num_classes counts 'no object', so it must be >= 2, got "
                             f"{num_classes}")
        self.backbone = backbone
        self.input_proj = Conv2d(backbone.out_channels, d_model, 1)
        layer_args = dict(dim_feedforward=dim_feedforward, dropout=dropout, batch_first=True)
        self.encoder = ModuleList([DETREncoderLayer(d_model, nhead, **layer_args)
                                   for _ in range(num_encoder_layers)])
        self.decoder = ModuleList([DETRDecoderLayer(d_model, nhead, **layer_args)
                                   for _ in range(num_decoder_layers)])
        self.decoder_norm = LayerNorm(d_model)
        self.query_embed = Parameter(np.zeros((num_queries, d_model), np.float32))
        init.normal_(self.query_embed)          # nn.Embedding's init, as DETR's query_embed
        self.class_embed = Linear(d_model, num_classes)
        self.bbox_embed = mlp(d_model, d_model, 4, 3)
        self.matcher = HungarianMatcher(weight_class, weight_bbox, weight_giou)
        self.class_weight = np.ones(num_classes, np.float32)
        self.class_weight[0] = eos_coef
        self.weights = {"loss_ce": weight_class, "loss_bbox": weight_bbox,
                        "loss_giou": weight_giou}
        self.num_classes, self.num_queries, self.d_model = num_classes, num_queries, d_model
        self.aux_loss, self.token_pool = aux_loss, token_pool

    def transformer(self, images):
        """-> (decoder outputs, one [N, Q, d] per layer; the last layer's cross-attention
        [N, Q, h, w])."""
        features = self.backbone(images)
        if self.token_pool > 1:
            features = F.avg_pool2d(features, self.token_pool)
        features = self.input_proj(features)                         # [N, d, h, w]
        n, d, h, w = features.shape
        memory = features.reshape(n, d, h * w).permute(0, 2, 1)     # [N, hw, d] tokens
        pos = sine_position_encoding(h, w, d)                        # [hw, d]
        for layer in self.encoder:
            memory = layer(memory, pos)
        query_pos = self.query_embed.unsqueeze(0).expand(n, -1, -1)  # [N, Q, d]
        tgt = minidl.zeros((n, self.num_queries, d), dtype=memory.dtype)
        outputs = []
        for layer in self.decoder:
            tgt, attention = layer(tgt, memory, pos, query_pos)
            outputs.append(self.decoder_norm(tgt))
        return outputs, attention.data.reshape(n, self.num_queries, h, w)

    def heads(self, hidden):
        """[N, Q, d] -> (class logits [N, Q, K + 1], boxes [N, Q, 4] cxcywh in [0, 1])."""
        return self.class_embed(hidden), F.sigmoid(self.bbox_embed(hidden))

    def forward(self, images, targets=None):
        images = check_images(images, "DETR")
        if self.training:
            check_targets(targets, images, self.num_classes, "DETR")
        outputs, _ = self.transformer(images)
        if not self.training:
            logits, boxes = self.heads(outputs[-1])
            return self.postprocess(logits.data, boxes.data, tuple(images.shape[-2:]))
        size = np.array(images.shape[-2:][::-1] * 2, np.float32)    # (W, H, W, H)
        normalized = [(np.asarray(t["labels"], np.int64).reshape(-1),
                       box_convert(np.asarray(t["boxes"], np.float32).reshape(-1, 4), "xyxy",
                                   "cxcywh") / size) for t in targets]
        losses = self.loss(*self.heads(outputs[-1]), normalized)
        if self.aux_loss:
            for layer, hidden in enumerate(outputs[:-1]):
                aux = self.loss(*self.heads(hidden), normalized)
                losses.update({f"{name}_{layer}": value for name, value in aux.items()})
        return losses

    def match(self, logits, boxes, targets) -> list:
        """The Hungarian matching of every image (arrays, no gradient)."""
        return [self.matcher(logits[i], boxes[i], labels, target_boxes)
                for i, (labels, target_boxes) in enumerate(targets)]

    def loss(self, logits, boxes, targets) -> dict:
        """Class, L1 and GIoU losses of the matched set (see the module docstring), weighted.
        targets: per image (labels [G], boxes [G, 4] cxcywh in [0, 1])."""
        indices = self.match(logits.data, boxes.data, targets)
        n, q, _ = logits.shape
        target_classes = np.zeros((n, q), np.int64)                  # 0 = "no object"
        image_index = np.concatenate([np.full(len(p), i) for i, (p, _) in enumerate(indices)])
        pred_index = np.concatenate([p for p, _ in indices]).astype(np.int64)
        matched_boxes = np.concatenate([targets[i][1][o] for i, (_, o) in enumerate(indices)])
        for i, (p, o) in enumerate(indices):
            target_classes[i, p] = targets[i][0][o]
        loss_ce = F.cross_entropy(logits.reshape(n * q, -1), target_classes.reshape(-1),
                                  weight=self.class_weight.astype(logits.dtype))
        num_boxes = max(1, len(pred_index))
        if len(pred_index):
            chosen = boxes[image_index.astype(np.int64), pred_index]
            wanted = matched_boxes.astype(boxes.dtype)
            loss_bbox = (chosen - wanted).abs().sum() / num_boxes
            giou = elementwise_generalized_box_iou(box_convert(chosen, "cxcywh", "xyxy"),
                                                   box_convert(wanted, "cxcywh", "xyxy"))
            loss_giou = (1 - giou).sum() / num_boxes
        else:
            loss_bbox = loss_giou = boxes.sum() * 0.0
        return {"loss_ce": self.weights["loss_ce"] * loss_ce,
                "loss_bbox": self.weights["loss_bbox"] * loss_bbox,
                "loss_giou": self.weights["loss_giou"] * loss_giou}

    def postprocess(self, logits: np.ndarray, boxes: np.ndarray, image_size) -> list:
        """Each query's best object class and its probability (the "no object" class left
        out), its box in pixels; every query kept, best first: no NMS."""
        probs = np.exp(logits - logits.max(-1, keepdims=True))
        probs = (probs / probs.sum(-1, keepdims=True))[..., 1:]
        height, width = image_size
        pixels = box_convert(boxes.reshape(-1, 4), "cxcywh", "xyxy").reshape(boxes.shape) * \
            np.array([width, height, width, height], np.float32)
        return [select_detections(pixels[i], probs[i].max(-1), probs[i].argmax(-1) + 1,
                                  image_size, score_thresh=0.0, nms_thresh=None,
                                  detections_per_img=self.num_queries)
                for i in range(len(logits))]

    def attention_maps(self, images) -> np.ndarray:
        """The last decoder layer's attention from every query to every image position,
        averaged over heads: [N, Q, h, w] (each map sums to 1)."""
        was_training = self.training
        self.eval()
        with no_grad():
            _, attention = self.transformer(check_images(images, "DETR"))
        self.train(was_training)
        return attention


def detr_recipe(train_set, epochs: int = 3, seed: int = 0, batch_size: int = 16,
                lr: float = 5e-4, pretrained_backbone=None, **options) -> TrainedDetector:
    """The small DETR as lesson 16 trains it; ``options`` go to ``DETR``.

    ``pretrained_backbone``: a trained ``small_backbone`` (e.g. another detector's) whose
    weights the DETR's backbone starts from -- DETR starts from an ImageNet-trained ResNet.
    """
    minidl.manual_seed(seed)
    model = DETR(small_backbone(), train_set.num_classes + 1, **options)
    if pretrained_backbone is not None:
        model.backbone.load_state_dict(pretrained_backbone.state_dict())
    return train_recipe("DETR", model, train_set, train_set.num_classes, epochs, seed,
                        batch_size, lr)
