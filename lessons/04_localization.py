# %% [markdown]
"""
# Lesson 04 — Localization: what is in the image, and where

**Lecture idea.** Computer vision asks more than "what is in this image?".
Classification gives one label; classification + localization adds one box;
detection finds every object; semantic segmentation labels every pixel,
instance segmentation every object's pixels; keypoint estimation finds the
joints of a person. The first step beyond classification treats the box as
four numbers to *regress*: one backbone, a class head and a box head, two
losses added with a weight lambda. Convolutions are equivariant to shifts (the
feature map moves with the object) and pooled features are invariant (the
class does not care where the object is), but exactly so only for shifts by
multiples of the network's stride. A backbone pretrained as a
classifier is a good start for localization when box labels are few. And a
head that predicts a fixed number of boxes cannot detect: images hold a
varying number of objects.

**What you build.** Every task drawn on one image; invariance and
equivariance measured on random networks (and where strided subsampling
breaks them); a localizer (`minidl/vision/models/localization.py`) trained on
single-object shape images with L2 and smooth L1 box losses and a small sweep
of lambda; a backbone pretrained on class labels, fine-tuned for localization
and compared with training from scratch over three seeds; a two-box head that
fails on images with a varying number of objects.

**Expected result.** The localizer classifies >= 95% of the test images and
its boxes reach a mean IoU >= 0.75 with the true box. Full run: under 5
minutes on a 2-core laptop.

*Measured (full run, seed 0): test class accuracy 97.1%, mean IoU 0.774
(98.1% of the boxes at IoU >= 0.5), with smooth L1 and lambda 1 chosen on
the validation set. With 400 box-labelled images, pretrained vs from scratch
(validation, mean of 3 seeds): accuracy 0.62 vs 0.40, mean IoU 0.53 vs 0.40.
A two-box head finds 20% of the objects of two-shape images with the targets
in drawing order, 55% with the targets sorted left to right. CPU time of the
whole run 214 s (user + sys, one BLAS thread: about the wall time on an idle
2-core laptop); wall time 24 minutes on a machine shared with a dozen other
jobs. Quick run: 10 s of CPU.*

Run: `python lessons/04_localization.py [--quick] [--seed S] [--out DIR]`
"""

# %%
import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset
from minidl.data.shapes import KEYPOINT_NAMES, SHAPE_CLASSES, SKELETON, ShapesDataset, StickFigures
from minidl.optim import Adam
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401
from minidl.utils.training import evaluate, train_epoch
from minidl.vision import box_iou, draw
from minidl.vision.models import (
    Backbone,
    LocalizationDataset,
    Localizer,
    box_targets,
    boxes_in_pixels,
    evaluate_localizer,
    localization_arrays,
    localization_loss,
)

args = lesson_args("04_localization", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

lesson_timer = Timer().__enter__()

# %% [markdown]
# ## 1. The vision tasks, drawn
#
# One synthetic image with three shapes (`minidl/data/shapes.py`,
# `ShapesDataset`) carries the targets of every task. Each task outputs
# something different:
#
# * **classification**: one label for the image (here: its largest object);
# * **classification + localization**: that label and one box;
# * **detection**: a box and a label for *every* object (their number varies);
# * **semantic segmentation**: a class for every pixel (objects of one class merge);
# * **instance segmentation**: a mask and a label for every object;
# * **keypoints**: for every person, the positions of its joints
#   (`StickFigures`, 14 keypoints joined by a skeleton).

# %%
scenes = ShapesDataset(32, image_size=64, min_objects=3, max_objects=3, seed=args.seed)
image, target = next(scenes[i] for i in range(len(scenes)) if len(scenes[i][1]["labels"]) == 3)
largest = int(np.argmax(target["area"]))
people = StickFigures(8, image_size=64, min_objects=2, max_objects=2, seed=args.seed)
person_image, person_target = people[0]
names = SHAPE_CLASSES

fig, axes = plt.subplots(1, 6, figsize=(18, 3.6))
draw.show_image(image, ax=axes[0], title=f"classification: '{names[target['labels'][largest]]}'")
draw.draw_boxes(image, target["boxes"][largest:largest + 1], target["labels"][largest:largest + 1],
                class_names=names, ax=axes[1], title="classification + localization")
draw.draw_boxes(image, target["boxes"], target["labels"], class_names=names, ax=axes[2],
                title="detection")
draw.draw_semantic(image, target["semantic"], ax=axes[3], title="semantic segmentation")
draw.draw_masks(image, target["masks"], ax=axes[4], title="instance segmentation")
draw.draw_keypoints(person_image, person_target["keypoints"], SKELETON, ax=axes[5],
                    title="keypoints")
save_figure(fig, args.out / "tasks.png")

outputs = {
    "classification": "1 label",
    "classification + localization": "1 label + 1 box (4 numbers)",
    "detection": f"{len(target['labels'])} labels + {target['boxes'].shape} boxes (n varies)",
    "semantic segmentation": f"{target['semantic'].shape} class map",
    "instance segmentation": f"{len(target['labels'])} labels + {target['masks'].shape} masks",
    "keypoints": f"{person_target['keypoints'].shape} = people x {len(KEYPOINT_NAMES)} "
                 f"joints x (x, y, visibility)",
}
for task, output in outputs.items():
    print(f"{task:>30}: {output}")

# %% [markdown]
# ## 2. Equivariance and invariance, measured
#
# A convolution slides one filter over the image, so shifting the input
# shifts the output by the same amount: conv(shift(x)) = shift(conv(x)). This
# is **equivariance**. It is exact except within the filter's reach of the
# image's edges: where the shifted image has new content (here zeros came in
# at the top and left) and where content left it (at the bottom and right, the
# shifted image's last pixels see zero padding where the original's saw their
# neighbours). We check it on a random 3x3 convolution (`minidl/ops/conv.py`,
# `conv2d`): the error map is zero except in the strips where the zeros came
# in (there the convolution outputs its bias, the shifted output has nothing)
# and in one-pixel bands along the edges.

# %%
def shifted(x, dy, dx):
    """x [N, C, H, W] moved down by dy and right by dx (dy, dx >= 0); zeros come in."""
    out = np.zeros_like(x)
    out[:, :, dy:, dx:] = x[:, :, :x.shape[2] - dy, :x.shape[3] - dx]
    return out


minidl.manual_seed(args.seed)
conv = nn.Conv2d(3, 8, 3, padding=1)
x = image[None]
dy, dx = 5, 9
with minidl.no_grad():
    error = np.abs(conv(Tensor(shifted(x, dy, dx))).data - shifted(conv(Tensor(x)).data, dy, dx))
error_map = error.max(axis=(0, 1))
away = error_map[dy + 1:-1, dx + 1:-1]   # more than a pixel away from those edges
print(f"conv of the shifted image vs the shifted conv output: max |difference| "
      f"{error_map.max():.3f} overall, {away.max():.1e} more than a pixel from the edges")
assert away.max() < 1e-5 < error_map.max()

# %% [markdown]
# A classifier pools the feature map (global average pooling) and then
# applies a linear layer. If the feature map only moves, its average stays
# the same: the classifier is **invariant** to shifts. Real backbones
# subsample (stride 2 convolutions or pooling), and then a shift by one input
# pixel is a shift by half a feature cell, which no feature map can express:
# equivariance, and with it invariance, holds only for shifts by multiples of
# the total stride (Zhang, "Making Convolutional Networks Shift-Invariant
# Again", ICML 2019).
#
# We place a 32 x 32 shape image on a 128 x 128 zero canvas and move it by
# 0..16 pixels to the right, far enough from the canvas edges that no unit's
# receptive field (43 pixels here) reaches them. Two random networks with the
# same six conv-BN-ReLU blocks and a GAP + linear head: one with all strides 1,
# one with stride 2 in every second block (`Backbone` in
# `minidl/vision/models/backbone.py`, total stride 8), each followed by global
# average pooling. We measure how much the pooled feature vector (what a
# linear classifier reads) changes, relative to its size.

# %%
def on_canvas(image, offset, canvas=128, corner=40):
    """[1, 3, canvas, canvas] zeros with ``image`` at row ``corner``, column ``corner + offset``."""
    out = np.zeros((1, 3, canvas, canvas), np.float32)
    side = image.shape[-1]
    out[0, :, corner:corner + side, corner + offset:corner + offset + side] = image
    return out


small = ShapesDataset(4, image_size=32, min_objects=1, max_objects=1, seed=args.seed)[0][0]


def pooled_features(seed, subsample):
    """Backbone (random, eval mode) -> global average pooling; the same weights for the same
    seed, with the stride-2 convolutions set to stride 1 if not ``subsample``."""
    minidl.manual_seed(seed)
    backbone = Backbone(widths=(8, 16, 32), depth=2)
    if not subsample:
        for stage in backbone.stages:
            stage[0][0].stride = (1, 1)  # the first conv of each stage
    return nn.Sequential(backbone, nn.AdaptiveAvgPool2d(1), nn.Flatten()).eval()


strided, unstrided = pooled_features(args.seed, True), pooled_features(args.seed, False)
offsets = list(range(17))
change = {}
with minidl.no_grad():
    for name, net in (("stride 1", unstrided), ("total stride 8", strided)):
        reference = net(Tensor(on_canvas(small, 0))).data
        change[name] = [float(np.abs(net(Tensor(on_canvas(small, k))).data - reference).max()
                              / np.abs(reference).max()) for k in offsets]
        print(f"{name:>15}: relative change of the pooled features, shifts 0..16: "
              + " ".join(f"{c:.3f}" for c in change[name]))
assert max(change["stride 1"]) < 1e-5
assert max(change["total stride 8"][k] for k in (0, 8, 16)) < 1e-5
assert min(change["total stride 8"][k] for k in offsets if k % 8) > 1e-2

with minidl.no_grad():
    maps = [strided[0](Tensor(on_canvas(small, k))).data for k in (0, 8)]
moved_one_cell = np.abs(maps[1][..., 1:] - maps[0][..., :-1]).max()
print(f"stride-8 feature map: a shift by 8 pixels moves it by exactly one cell "
      f"(max |difference| {moved_one_cell:.1e})")
assert moved_one_cell < 1e-5

fig, axes = plt.subplots(1, 3, figsize=(16, 4), width_ratios=(1, 1, 1.6))
draw.show_image(x[0], ax=axes[0], title="input")
axes[1].imshow(error_map, cmap="magma")
axes[1].set_title(f"|conv(shift(x)) - shift(conv(x))|, shift ({dy}, {dx})", fontsize=9)
for name, values in change.items():
    axes[2].plot(offsets, values, marker="o", label=name)
axes[2].set(xlabel="shift (pixels)", ylabel="relative change of the pooled features",
            title="after global average pooling: invariant only at multiples of the stride")
axes[2].legend()
save_figure(fig, args.out / "equivariance.png")

# %% [markdown]
# ## 3. Classification + localization as regression
#
# **Data.** 32 x 32 images holding exactly one shape (rectangle, ellipse,
# triangle or cross; width and height 30% to 70% of the side), generated from
# a seed: a training set, a validation set to choose settings on, and a test
# set used once at the end. The class is the label minus 1 (no background
# class: there is always an object); the box target is (cx, cy, w, h) divided
# by the image side, four numbers in [0, 1] (`box_targets`).

# %%
IMAGE_SIZE, NUM_CLASSES, WIDTHS = 32, 4, (16, 32, 64)
FEATURE_SIZE = IMAGE_SIZE // 2 ** len(WIDTHS)
SIZES = dict(train=256, val=128, test=128) if args.quick else dict(train=8000, val=1000, test=1000)


def single_shapes(n, seed):
    return localization_arrays(ShapesDataset(n, image_size=IMAGE_SIZE, min_objects=1,
                                             max_objects=1, size_range=(0.3, 0.7), seed=seed))


train_set = single_shapes(SIZES["train"], 1000 + args.seed)
val_set = single_shapes(SIZES["val"], 2000 + args.seed)
test_set = single_shapes(SIZES["test"], 3000 + args.seed)
print("train:", ", ".join(f"{name} {a.shape} {a.dtype}" for name, a in
                          zip(("images", "labels", "boxes"), train_set)))
print("class counts in training:", np.bincount(train_set[1], minlength=NUM_CLASSES))
fig, axes = plt.subplots(1, 8, figsize=(16, 2.4))
for k, ax in enumerate(axes):
    draw.draw_boxes(train_set[0][k], boxes_in_pixels(train_set[2][k:k + 1], IMAGE_SIZE),
                    train_set[1][k:k + 1] + 1, class_names=SHAPE_CLASSES, ax=ax)
save_figure(fig, args.out / "single_object_data.png")

# %% [markdown]
# **The model, block by block.** The backbone (`Backbone` in
# `minidl/vision/models/backbone.py`) first standardizes each image's colour
# channels (`InstanceNorm2d`, lesson 03: the shapes come in random colours on
# random backgrounds, and without this step the network spends its first few
# hundred steps learning that colour does not matter), then three stages of
# two conv-BN-ReLU blocks, each stage halving the resolution. The class head
# averages the last map over its positions and applies a linear layer; the box
# head flattens the map, keeping where each feature is, and applies a small
# MLP (`Localizer` in `minidl/vision/models/localization.py`), as OverFeat's
# and VGG's fully connected layers did. (Does it have to? Exercise 1.)

# %%
minidl.manual_seed(args.seed)
model = Localizer(Backbone(widths=WIDTHS, standardize_input=True), NUM_CLASSES, FEATURE_SIZE)
batch = Tensor(train_set[0][:8])
with minidl.no_grad():
    h = model.backbone.standardize(batch)
    print(f"{'input (standardized)':>28}: {tuple(h.shape)}")
    for s, stage in enumerate(model.backbone.stages):
        h = stage(h)
        print(f"{f'stage {s + 1} (stride {model.backbone.strides[s]})':>28}: {tuple(h.shape)}")
    pooled = h.mean(dim=(2, 3))
    print(f"{'class head: average over h, w':>28}: {tuple(pooled.shape)}")
    print(f"{'class head: linear':>28}: {tuple(model.class_head(pooled).shape)}")
    print(f"{'box head: flatten':>28}: {tuple(model.box_head[0](h).shape)}")
    print(f"{'box head: MLP':>28}: {tuple(model.box_head(h).shape)}")
print(f"{sum(p.data.size for p in model.parameters()):,} parameters")

# %% [markdown]
# **The loss.** L = cross_entropy(class scores, y) + lambda * box_loss(box, b):
# the classification loss of lesson 01 plus a regression loss on the four
# numbers. With L2 (`F.mse_loss`, `minidl/ops/loss.py`) a box that is off by
# a lot pulls with a force that grows with the error; smooth L1
# (`F.smooth_l1_loss`, Girshick 2015) is quadratic for errors below beta and
# linear above, so a few bad boxes cannot dominate a batch. One batch, by
# hand and with `localization_loss`:

# %%
labels, boxes = Tensor(train_set[1][:8]), Tensor(train_set[2][:8])
with minidl.no_grad():
    logits, predicted = model(batch)
z = logits.data - logits.data.max(axis=1, keepdims=True)
log_probabilities = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
by_hand = -log_probabilities[np.arange(8), labels.data].mean() \
    + 10.0 * ((predicted.data - boxes.data) ** 2).mean()
library = localization_loss((logits, predicted), (labels, boxes), box_weight=10.0).item()
print(f"untrained: loss by hand {by_hand:.5f}, localization_loss {library:.5f}")
assert np.isclose(by_hand, library, rtol=1e-5)

# %% [markdown]
# **Training.** Adam, learning rate 2e-3 with a cosine schedule, batches of
# 32 (`train_epoch` in `minidl/utils/training.py` is the whole loop). The
# same recipe for every run of this lesson; settings are compared on the
# validation set, the test set is used only for the chosen model.

# %%
EPOCHS = 1 if args.quick else 8
SHORT_EPOCHS = 1 if args.quick else 3


def make_loader(data, batch_size=32):
    return DataLoader(LocalizationDataset(*data), batch_size=batch_size, shuffle=True)


def train_localizer(data, epochs, box_loss="l2", box_weight=10.0, seed=0, backbone=None,
                    lr=2e-3, val=None, name="localizer"):
    """Train a fresh Localizer (or one on ``backbone``); returns it and, with ``val``,
    the validation scores after every epoch."""
    minidl.manual_seed(seed)
    backbone = backbone or Backbone(widths=WIDTHS, standardize_input=True)
    model = Localizer(backbone, NUM_CLASSES, FEATURE_SIZE)
    loader = make_loader(data)
    optimizer = Adam(model.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(loader))

    def loss_fn(outputs, targets):
        return localization_loss(outputs, targets, box_weight, box_loss)

    curve = []
    for epoch in range(epochs):
        train_epoch(model, loader, loss_fn, optimizer, scheduler,
                    desc=f"{name} epoch {epoch + 1}/{epochs}")
        if val is not None:
            curve.append(evaluate_localizer(model, *val, IMAGE_SIZE))
    return model, curve


def localization_score(scores):
    """One number to compare settings by: the mean over images of the box's IoU if the class
    is right, 0 if it is wrong (a box with the wrong label is worth nothing)."""
    return float(np.mean(scores["iou"] * scores["correct"]))


# %% [markdown]
# **L2 or smooth L1, and how much weight for the box?** A small grid on the
# validation set, each run with a short budget. lambda weighs two losses of
# different sizes: an L2 error of 0.05 (1.6 pixels) costs 0.0025 per number,
# the same error costs 0.025 with smooth L1 (beta 0.05, where it turns
# linear), and the classification loss starts at log 4 = 1.39. Too small a
# lambda and the boxes are sloppy; too large and the shared backbone serves
# the boxes at the expense of the class.

# %%
sweep_set = tuple(a[:len(a) // 2] for a in train_set)   # half the data: a quick look
WEIGHTS = [1.0, 10.0, 100.0]
sweep = {}
with Timer() as sweep_timer:
    for box_loss in ("l2", "smooth_l1"):
        for weight in WEIGHTS:
            trained, curve = train_localizer(sweep_set, SHORT_EPOCHS, box_loss, weight,
                                             seed=args.seed, val=val_set,
                                             name=f"{box_loss} lambda {weight:g}")
            scores = curve[-1]
            sweep[(box_loss, weight)] = scores
            print(f"{box_loss:>9}, lambda {weight:5g}: validation accuracy "
                  f"{scores['accuracy']:.3f}, mean IoU {scores['mean_iou']:.3f}, "
                  f"score {localization_score(scores):.3f}", flush=True)
print(f"  {sweep_timer.seconds:.0f} s for {len(sweep)} runs")
chosen_loss, chosen_weight = max(sweep, key=lambda k: localization_score(sweep[k]))
print(f"chosen on validation: {chosen_loss}, lambda {chosen_weight:g}")

fig, axes = plt.subplots(1, 2, figsize=(10, 3.5))
for box_loss, marker in (("l2", "o"), ("smooth_l1", "s")):
    axes[0].plot(WEIGHTS, [sweep[(box_loss, w)]["accuracy"] for w in WEIGHTS], marker=marker,
                 label=box_loss)
    axes[1].plot(WEIGHTS, [sweep[(box_loss, w)]["mean_iou"] for w in WEIGHTS], marker=marker,
                 label=box_loss)
for ax, what in zip(axes, ("validation class accuracy", "validation mean IoU")):
    ax.set(xscale="log", xlabel="lambda (box loss weight)", ylabel=what)
    ax.legend()
save_figure(fig, args.out / "lambda_sweep.png")

# %% [markdown]
# **The localizer.** The chosen setting, trained with the full budget on the
# whole training set, then scored once on the test set.

# %%
with Timer() as final_timer:
    localizer, curve = train_localizer(train_set, EPOCHS, chosen_loss, chosen_weight,
                                       seed=args.seed, val=val_set, name="localizer")
test_scores = evaluate_localizer(localizer, *test_set, IMAGE_SIZE)
print(f"test: class accuracy {test_scores['accuracy']:.3f}, mean IoU "
      f"{test_scores['mean_iou']:.3f}, IoU >= 0.5 for {np.mean(test_scores['iou'] >= 0.5):.3f} "
      f"of the boxes ({final_timer.seconds:.0f} s)")

test_boxes = boxes_in_pixels(test_set[2], IMAGE_SIZE)
fig, axes = plt.subplots(2, 8, figsize=(16, 4.6))
for k, ax in enumerate(axes.flat):
    draw.draw_boxes(test_set[0][k], test_boxes[k:k + 1], ax=ax, colour="white", linestyle="--")
    draw.draw_boxes(None, test_scores["predicted_boxes"][k:k + 1],
                    test_scores["predicted_labels"][k:k + 1] + 1, class_names=SHAPE_CLASSES,
                    ax=ax, title=f"IoU {test_scores['iou'][k]:.2f}")
fig.suptitle("test images: predicted box and class (colour), true box (white, dashed)")
save_figure(fig, args.out / "predictions.png")

# %% [markdown]
# **Invariant class, equivariant box.** Section 2 measured random networks;
# now the trained one. Move each test image 3 pixels to the right (its
# columns roll around: the background wraps, the object stays whole when it
# is at least 3 pixels away from the right edge). The class should not change
# and the box should move by 3 pixels.

# %%
SHIFT = 3
inside = test_boxes[:, 2] <= IMAGE_SIZE - SHIFT
moved = evaluate_localizer(localizer, np.roll(test_set[0][inside], SHIFT, axis=3),
                           test_set[1][inside], test_set[2][inside], IMAGE_SIZE)
same_class = np.mean(moved["predicted_labels"] == test_scores["predicted_labels"][inside])
box_moved = moved["predicted_boxes"][:, [0, 2]] - test_scores["predicted_boxes"][inside][:, [0, 2]]
print(f"{inside.sum()} test images moved by {SHIFT} px: the same class predicted for "
      f"{same_class:.1%} (accuracy {test_scores['correct'][inside].mean():.1%} before the move, "
      f"{moved['accuracy']:.1%} after); the box's left and right edges moved by "
      f"{box_moved.mean():.2f} px on average (spread {box_moved.std():.2f} px)")

# %% [markdown]
# ## 4. Pretraining and fine-tuning
#
# Class labels are cheap, boxes are expensive: ImageNet has 1.2 million
# class-labelled images and boxes for far fewer. The recipe of the lecture
# (and of R-CNN, OverFeat, VGG): train the backbone as a classifier on the
# large set, then fine-tune the whole network for localization on the small
# set with boxes.
#
# Here: the backbone is pretrained as a classifier (GAP + linear head,
# `train_epoch` with `F.cross_entropy`) on the training images' class labels;
# then a localizer is built on it and fine-tuned on FEW new images with boxes.
# The control trains the same localizer from scratch on the same few images
# with the same budget. Three seeds each (the seed sets the new heads and the
# batch order; the pretrained backbone is the same for all). The curves are
# measured on 300 validation images after every epoch.

# %%
FEW = 64 if args.quick else 400
FINETUNE_EPOCHS = 2 if args.quick else 10
PRETRAIN_EPOCHS = 1 if args.quick else 2
SEEDS = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]
few_boxes = single_shapes(FEW, 4000 + args.seed)
curve_set = tuple(a[:300] for a in val_set)

with Timer() as pretrain_timer:
    minidl.manual_seed(args.seed)
    classifier = nn.Sequential(Backbone(widths=WIDTHS, standardize_input=True),
                               nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                               nn.Linear(WIDTHS[-1], NUM_CLASSES))
    class_loader = DataLoader(TensorDataset(train_set[0], train_set[1]), batch_size=32,
                              shuffle=True)
    optimizer = Adam(classifier.parameters(), lr=2e-3)
    scheduler = CosineAnnealingLR(optimizer, T_max=PRETRAIN_EPOCHS * len(class_loader))
    for epoch in range(PRETRAIN_EPOCHS):
        train_epoch(classifier, class_loader, F.cross_entropy, optimizer, scheduler,
                    desc=f"pretraining epoch {epoch + 1}")
pretrained_accuracy = evaluate(classifier, DataLoader(TensorDataset(val_set[0], val_set[1]),
                                                      batch_size=500))
print(f"pretrained classifier: validation accuracy {pretrained_accuracy:.3f} "
      f"({pretrain_timer.seconds:.0f} s)")


def pretrained_backbone():
    """A fresh copy of the pretrained classifier's backbone (fine-tuning changes it)."""
    backbone = Backbone(widths=WIDTHS, standardize_input=True)
    backbone.load_state_dict(classifier[0].state_dict())
    return backbone


curves = {"from scratch": [], "pretrained": []}
with Timer() as finetune_timer:
    for seed in SEEDS:
        for name in curves:
            backbone = pretrained_backbone() if name == "pretrained" else None
            _, curve = train_localizer(few_boxes, FINETUNE_EPOCHS, chosen_loss, chosen_weight,
                                       seed=seed, backbone=backbone, val=curve_set,
                                       name=f"{name} seed {seed}")
            curves[name].append(curve)
        print(f"seed {seed}: " + "; ".join(
            f"{name} accuracy {c[-1][-1]['accuracy']:.3f}, IoU {c[-1][-1]['mean_iou']:.3f}"
            for name, c in curves.items()), flush=True)
print(f"  {finetune_timer.seconds:.0f} s for {len(SEEDS) * 2} runs")
final = {name: {what: np.array([c[-1][what] for c in runs]) for what in ("accuracy", "mean_iou")}
         for name, runs in curves.items()}
for name, values in final.items():
    print(f"{name:>13}: validation accuracy {values['accuracy'].mean():.3f} "
          f"(seeds {', '.join(f'{v:.3f}' for v in values['accuracy'])}), mean IoU "
          f"{values['mean_iou'].mean():.3f} (seeds "
          f"{', '.join(f'{v:.3f}' for v in values['mean_iou'])})")

fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
epochs_axis = np.arange(1, FINETUNE_EPOCHS + 1)
for k, (name, runs) in enumerate(curves.items()):
    for r, run in enumerate(runs):
        for ax, what in zip(axes, ("accuracy", "mean_iou")):
            ax.plot(epochs_axis, [scores[what] for scores in run], color=f"C{k}", alpha=0.8,
                    label=name if r == 0 else None)
for ax, what in zip(axes, ("validation class accuracy", "validation mean IoU")):
    ax.set(xlabel=f"epoch (of {FEW} images with boxes)", ylabel=what)
    ax.legend()
fig.suptitle(f"fine-tuning a pretrained backbone vs training from scratch ({len(SEEDS)} seeds)")
save_figure(fig, args.out / "pretraining.png")

# %% [markdown]
# With 400 box-labelled images and this budget, the network trained from
# scratch is still in the phase where it learns what a shape is; the
# pretrained backbone already knows, and its localizer is better at both the
# class and the box for every seed (asserted at the end of the full run). The
# gap would shrink with more boxes or more epochs (exercise 4).

# %% [markdown]
# ## 5. Why a fixed number of boxes cannot detect
#
# The box head outputs a fixed number of numbers. Give it two boxes' worth
# (`Localizer(..., boxes=2)`, 8 outputs) and images with exactly two shapes.
# Which output should predict which object? If the target lists the objects
# in an arbitrary order (here: the order they were drawn in), the same image
# content can ask for either order, and the L2 loss is minimized by predicting
# the *average* of the two objects in both slots. Sorting the targets, left
# to right, makes the task well defined. But a real image holds any number of
# objects: a two-box head must miss the third shape of a three-shape image and
# invent a second shape in a one-shape image. Detectors (lessons 06-11) avoid
# the fixed count by predicting a box and a score at each of many places
# (anchors, grid cells) and keeping the confident ones; DETR (lesson 16)
# predicts a set and matches it to the objects.

# %%
PAIRS = dict(train=256, test=64) if args.quick else dict(train=3000, test=300)
PAIR_EPOCHS = 1 if args.quick else 3


def shapes_with(count, n, seed):
    """Images with exactly ``count`` shapes; boxes [n, count, 4] normalized (cx, cy, w, h) in
    drawing order (data sets drop shapes hidden by others: keep full images only)."""
    data = ShapesDataset(2 * n, image_size=IMAGE_SIZE, min_objects=count, max_objects=count,
                         size_range=(0.3, 0.5), seed=seed)
    full = np.flatnonzero((data.slot_labels > 0).sum(axis=1) == count)[:n]
    return (data.images[full].astype(np.float32) / 255,
            box_targets(data.slot_boxes[full], IMAGE_SIZE))


def sorted_left_to_right(boxes):
    return np.take_along_axis(boxes, np.argsort(boxes[..., 0], axis=1)[..., None], axis=1)


def train_two_box_head(images, boxes, seed):
    """A Localizer with two box slots, trained on the box loss only."""
    minidl.manual_seed(seed)
    model = Localizer(Backbone(widths=WIDTHS, standardize_input=True), NUM_CLASSES,
                      FEATURE_SIZE, boxes=2)
    loader = DataLoader(TensorDataset(images, boxes), batch_size=32, shuffle=True)
    optimizer = Adam(model.parameters(), lr=2e-3)
    scheduler = CosineAnnealingLR(optimizer, T_max=PAIR_EPOCHS * len(loader))
    for epoch in range(PAIR_EPOCHS):
        train_epoch(model, loader, lambda outputs, target: F.mse_loss(outputs[1], target),
                    optimizer, scheduler, desc=f"two-box head epoch {epoch + 1}")
    return model


def found(model, images, boxes):
    """Per image: how many true objects some predicted box overlaps with IoU >= 0.5
    (each prediction used once), and the predicted boxes in pixels."""
    model.eval()
    with minidl.no_grad():
        predicted = boxes_in_pixels(model(Tensor(images))[1].data, IMAGE_SIZE)
    truth = boxes_in_pixels(boxes, IMAGE_SIZE)
    hits = []
    for p, t in zip(predicted, truth):
        iou = box_iou(t, p)
        count = 0
        while iou.size and iou.max() >= 0.5:   # greedy: the best remaining pair first
            i, j = np.unravel_index(iou.argmax(), iou.shape)
            iou[i, :], iou[:, j] = 0, 0
            count += 1
        hits.append(count)
    return np.array(hits), predicted


pair_train = shapes_with(2, PAIRS["train"], 5000 + args.seed)
pair_test = shapes_with(2, PAIRS["test"], 6000 + args.seed)
with Timer() as pairs_timer:
    heads = {"drawing order": train_two_box_head(*pair_train, args.seed),
             "left to right": train_two_box_head(pair_train[0], sorted_left_to_right(
                 pair_train[1]), args.seed)}
recall = {}
for name, head in heads.items():
    hits, _ = found(head, *pair_test)
    recall[("2", name)] = hits.sum() / (2 * len(hits))
for count in (1, 3):
    images, boxes = shapes_with(count, PAIRS["test"], 7000 + count + args.seed)
    hits, _ = found(heads["left to right"], images, boxes)
    recall[(str(count), "left to right")] = hits.sum() / (count * len(hits))
    recall[(f"{count} precision", "left to right")] = hits.sum() / (2 * len(hits))
print(f"two-box heads ({pairs_timer.seconds:.0f} s); objects found with IoU >= 0.5:")
print(f"  2 shapes, targets in drawing order: {recall[('2', 'drawing order')]:.1%}")
print(f"  2 shapes, targets left to right:    {recall[('2', 'left to right')]:.1%}")
print(f"  1 shape  (left to right head):      {recall[('1', 'left to right')]:.1%} found, "
      f"but only {recall[('1 precision', 'left to right')]:.1%} of its 2 boxes are right")
print(f"  3 shapes (left to right head):      {recall[('3', 'left to right')]:.1%} found "
      f"(at most 2 of 3 = 66.7%)")

fig, axes = plt.subplots(2, 6, figsize=(15, 5.4))
for row, (name, head) in enumerate(heads.items()):
    _, predicted = found(head, *pair_test)
    for k in range(6):
        draw.draw_boxes(pair_test[0][k], boxes_in_pixels(pair_test[1][k], IMAGE_SIZE),
                        ax=axes[row, k], colour="white", linestyle="--")
        for slot, colour in ((0, "orange"), (1, "red")):
            draw.draw_boxes(None, predicted[k][slot:slot + 1], ax=axes[row, k], colour=colour,
                            title=f"targets: {name}" if k == 0 else None)
fig.suptitle("two-box heads: slot 1 (orange) and slot 2 (red); true boxes (white, dashed)")
save_figure(fig, args.out / "fixed_number_of_boxes.png")

# %% [markdown]
# ## 6. What we measured
#
# The table is printed by the run (full run, seed 0, in the header above).

# %%
print(f"{'':>34} {'accuracy':>9} {'mean IoU':>9}")
for (box_loss, weight), scores in sweep.items():
    print(f"{f'validation, {box_loss}, lambda {weight:g}':>34} {scores['accuracy']:9.3f} "
          f"{scores['mean_iou']:9.3f}")
print(f"{f'test, {chosen_loss}, lambda {chosen_weight:g}':>34} {test_scores['accuracy']:9.3f} "
      f"{test_scores['mean_iou']:9.3f}")
for name, values in final.items():
    print(f"{f'{FEW} boxes, {name}':>34} {values['accuracy'].mean():9.3f} "
          f"{values['mean_iou'].mean():9.3f}")
lesson_timer.__exit__()
print(f"whole lesson: {lesson_timer.seconds:.0f} s")

if not args.quick:
    # The promised results.
    assert test_scores["accuracy"] >= 0.95, test_scores["accuracy"]
    assert test_scores["mean_iou"] >= 0.75, test_scores["mean_iou"]
    # The class survives a 3-pixel shift, and the box follows it.
    assert same_class > 0.9 and abs(box_moved.mean() - SHIFT) < 1.0
    # Pretraining helps at 400 boxes, for every seed, in both measures.
    for what in ("accuracy", "mean_iou"):
        assert final["pretrained"][what].min() > final["from scratch"][what].max()
    # A fixed two-box head: the arbitrary order fails, the sorted order works on pairs,
    # and a count it was not built for breaks it.
    assert recall[("2", "drawing order")] < 0.5 * recall[("2", "left to right")]
    assert recall[("3", "left to right")] <= 2 / 3
    assert recall[("1 precision", "left to right")] <= 0.5

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **Pool before the box head.** Give the box head the pooled features
#    instead of the whole map: on a fresh `Localizer`, set `box_head =
#    nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 128),
#    nn.ReLU(), nn.Linear(128, 4))` and train it as the localizer of section 3
#    (smooth L1, lambda 1, 8 epochs). Global average pooling is shift
#    invariant, so how can it still say where the box is? (Each of the 4 x 4
#    cells sees the whole 32-pixel image and its zero padding, 43 pixels of
#    receptive field: the border tells it where it is. Islam et al., ICLR 2020.)
#    Check (seed 0): `check_range("test mean IoU with a pooled box head", scores["mean_iou"],
#    0.72, 0.82)`.
# 2. **Max or average?** Replace the global average pooling in
#    `pooled_features` by global max pooling (`nn.AdaptiveMaxPool2d(1)`) and
#    redo the shift curve. Is the network still exactly invariant at
#    multiples of 8? Are the changes in between larger or smaller? Then roll
#    the bare 32 x 32 image by 8 pixels (`np.roll(small[None], 8, axis=3)`, no
#    canvas) and compare the average-pooled features with the unrolled ones:
#    why is a shift by the stride no longer exact?
#    Check (seed 0): `check_range("largest change for shifts 1..7, max pooling",
#    max(values[1:8]), 0.15, 0.25)` and `check_range("change after rolling by 8",
#    change, 0.02, 0.1)`.
# 3. **A class-agnostic box.** The box head predicts one box whatever the
#    class. Make it predict one box per class (replace `box_head` by
#    `nn.Sequential(nn.Flatten(), nn.Linear(1024, 128), nn.ReLU(),
#    nn.Linear(128, 4 * NUM_CLASSES))`), use the box of the true class in the
#    loss and the box of the predicted class at test time (as Fast R-CNN
#    does), and train as in section 3 (smooth L1, lambda 1, 8 epochs). Does
#    the IoU change? What would have to differ between the classes for it to?
#    Check (seed 0): `check_range("test mean IoU, class-specific boxes", iou.mean(), 0.72, 0.82)`.
# 4. **How few boxes are enough?** Repeat section 4 with FEW = 100 and with
#    FEW = 1000 (the same pretrained backbone). Where does pretraining add the
#    most?
#    Check (seed 0, mean of the 3 seeds): `check_range("IoU gain from pretraining, 100 boxes",
#    gain_100, 0.04, 0.15)` and `check_range("IoU gain from pretraining, 1000 boxes",
#    gain_1000, 0.03, 0.12)`.
