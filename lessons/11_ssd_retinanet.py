# %% [markdown]
"""
# Lesson 11 — SSD, feature pyramids, RetinaNet and the focal loss; speed against accuracy

**Lecture idea.** Single-shot detectors predict classes and box offsets for a
dense set of reference boxes in one pass. SSD (Liu et al., ECCV 2016) puts
default boxes of growing scale on several feature maps, matches them to the
objects and, since almost all of them are background, trains on the hardest
negatives only (3 per positive). A feature pyramid (FPN, Lin et al., CVPR 2017)
gives every level the deep layers' semantics through a top-down path with
lateral connections. RetinaNet (Lin et al., ICCV 2017) keeps *every* anchor and
changes the loss instead: the focal loss -alpha_t (1 - p_t)^gamma log p_t
shrinks the loss of easy, well-classified anchors, and a prior bias
(pi = 0.01) keeps the first steps stable. The lectures end with the speed /
accuracy trade-off of all these detectors.

**What you build.** SSD's default boxes on four maps, its matching and hard
negative mining, shown on real images, then SSD trained and evaluated; the
FPN drawn as shapes and RetinaNet's subnets on every level; the focal loss
against cross-entropy: the loss curves, the share of the loss carried by easy
negatives (a histogram), AP for gamma in {0, 0.5, 1, 2, 5} over several seeds
at one budget (Lin et al., Table 1b's trend in miniature), and the prior bias
against a zero bias on the first iterations' loss; finally **the speed /
accuracy table** of every detector of lessons 07-11 and 16 on one test set:
inference images per second, VOC07 mAP, COCO AP, and a scatter plot.

**Expected result.** At this lesson's budget (2 epochs of the 4,000 images)
SSD reaches a test VOC07 mAP above 0.6; RetinaNet, whose loss starts every
anchor near "background", about half of that. With cross-entropy the easiest
90% of the negatives carry most of their loss, with the focal loss far less;
the zero bias starts with a far higher loss than pi = 0.01: 16-23 times as high
under the focal loss, 8-11 times under cross-entropy (seeds 0-4).
The gamma ablation (2 epochs of 600 images, 3 seeds) is short, and at this
budget it reverses Lin et al.'s trend: AP falls steadily as gamma grows
(gamma = 0, alpha-balanced cross-entropy with the prior bias, is best; the
seeds agree to 0.001), because down-weighting the easy anchors also slows the
first epochs' learning; the paper's gain appears after far longer training.
So the full-budget RetinaNet uses gamma = 0, as chosen on validation. In the
speed / accuracy table, the lectures' trade-off: Faster R-CNN the most
accurate, SSD second; YOLO v1 and v2 the fastest, both well ahead of every
other detector. Full run on a 2-core laptop: about 9 minutes when
lessons 10 and 16 have saved their detectors (each lesson not run adds its
detectors' training time).

*Measured (full run, seed 0): SSD test VOC07 mAP 0.666 (COCO AP 0.424);
RetinaNet (gamma 0) 0.318 (0.138). The easiest 90% of the negatives carry
74.7% of their loss under cross-entropy, 34.4% under the focal loss. Loss at
step 1, zero bias against pi = 0.01: 35.4 against 1.63 (focal), 47.5 against
4.63 (cross-entropy); with seeds 1-4 (that cell alone) 26.4-36.6 against 1.60-1.63
and 35.5-49.1 against 4.43-4.65. Ablation (15 runs, 142 s), validation COCO AP over 3
seeds (+- 0.001 each): gamma 0: 0.017; 0.5: 0.016; 1: 0.013; 2: 0.008; 5:
0.004 (VOC07 mAP 0.096, 0.096, 0.081, 0.053, 0.027). The table (test VOC07
mAP, COCO AP, images per second at batch 1): SSD 0.666, 0.424, 129;
RetinaNet 0.318, 0.138, 115; Fast R-CNN (proposals made from the truth)
0.573, 0.314, 97; Faster R-CNN 0.734, 0.523, 110; Mask R-CNN 0.588, 0.375,
73; YOLO v1 0.219, 0.070, 268; YOLO v2 0.409, 0.198, 271; DETR 0.010, 0.001,
90; CenterNet 0.536, 0.292, 113 (the two-stage detectors trained here, the
others loaded from lessons 10 and 16). 517 s of CPU (user + system, one
thread, alone on the machine); 8.6 minutes of wall clock.*

Run: `python lessons/11_ssd_retinanet.py [--quick] [--seed S] [--out DIR]`
"""

# %%
from pathlib import Path

import numpy as np

from minidl import Tensor
from minidl.autograd.mode import no_grad
from minidl.data.loader import DataLoader
from minidl.data.shapes import SHAPE_CLASSES, ShapesDataset, detection_collate
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401
from minidl.vision import draw, prior_bias, sigmoid_focal_loss
from minidl.vision.models.centernet import centernet_recipe
from minidl.vision.models.dense import anchor_labels
from minidl.vision.models.detr import detr_recipe
from minidl.vision.models.recipes import (
    fast_rcnn_recipe,
    faster_rcnn_recipe,
    mask_rcnn_recipe,
)
from minidl.vision.models.retinanet import retinanet_recipe
from minidl.vision.models.ssd import hard_negative_mask, ssd_recipe
from minidl.vision.models.train import evaluate_detector
from minidl.vision.models.yolo import yolo_v1_recipe, yolo_v2_recipe
from minidl.vision.models.zoo import load_detector, save_detector, shapes_splits

args = lesson_args("11_ssd_retinanet", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

lesson_timer = Timer().__enter__()
EPOCHS = 2                                      # SSD and RetinaNet: 2 epochs of 4,000 images
ABLATION_IMAGES = 32 if args.quick else 600     # each focal-loss run: 2 epochs of these
ABLATION_SEEDS = [0] if args.quick else [0, 1, 2]
GAMMAS = [0.0, 2.0] if args.quick else [0.0, 0.5, 1.0, 2.0, 5.0]

# %% [markdown]
# ## 1. SSD's default boxes
#
# The shapes benchmark of lessons 10, 11 and 16 (`shapes_splits` in
# `minidl/vision/models/zoo.py`). `SSD` (`minidl/vision/models/ssd.py`) reads four
# maps: the backbone's stride-4 map (16 x 16 for a 64 x 64 image) and three extra
# stride-2 convolutions (8 x 8, 4 x 4, 2 x 2). On map k every cell gets default
# boxes of scale s_k, growing linearly from 0.2 to 0.9 of the image, with
# aspect ratios 1, 2, 1/2 (and 3, 1/3 on the middle maps) plus one box of scale
# sqrt(s_k s_k+1) (`ssd_default_boxes` in `minidl/vision/anchors.py`).

# %%
splits = shapes_splits(quick=args.quick, seed=args.seed)
train_set, val_set, test_set = splits.train, splits.val, splits.test
K = train_set.num_classes
untrained_ssd = ssd_recipe(train_set, epochs=0, seed=args.seed).model
boxes_per_cell = [2 + 2 * len(r) for r in [(2,), (2, 3), (2, 3), (2,)]]
start = 0
fig, axes = plt.subplots(1, 4, figsize=(12, 3.2))
for ax, size, per_cell in zip(axes, untrained_ssd.map_sizes, boxes_per_cell):
    count = size * size * per_cell
    centre_cell = (size // 2) * size + size // 2
    cell_boxes = untrained_ssd.default_boxes[start + centre_cell * per_cell:
                                             start + (centre_cell + 1) * per_cell]
    draw.draw_anchors(test_set[0][0], cell_boxes, ax=ax,
                      title=f"{size} x {size} map: {per_cell} boxes per cell, {count} in all")
    print(f"map {size} x {size}: {per_cell} default boxes per cell -> {count}; sizes (px) "
          + ", ".join(f"{w:.0f}x{h:.0f}" for w, h in
                      cell_boxes[:, 2:] - cell_boxes[:, :2]))
    start += count
print(f"{len(untrained_ssd.default_boxes)} default boxes per image")
save_figure(fig, args.out / "ssd_default_boxes.png")

# %% [markdown]
# ## 2. Matching and hard negative mining
#
# Each object takes its best default box, then every default box overlapping an
# object by IoU >= 0.5 takes the object it overlaps most (`Matcher` in
# `minidl/vision/matcher.py` through `anchor_labels` in
# `minidl/vision/models/dense.py`). Everything else is background: far too many
# negatives. SSD keeps, per image, the 3 x (positives) negatives with the highest
# classification loss (`hard_negative_mask` in `minidl/vision/models/ssd.py`).

# %%
image, target = train_set[1]
labels, _, matched = anchor_labels(untrained_ssd.default_boxes, target["boxes"],
                                   target["labels"], untrained_ssd.matcher,
                                   untrained_ssd.box_coder)
fig, ax = plt.subplots(figsize=(4, 4))
draw.draw_matches(image, untrained_ssd.default_boxes, matched, target["boxes"], ax=ax,
                  title="matched default boxes", max_negatives=0)
save_figure(fig, args.out / "ssd_matching.png")
for g in range(len(target["boxes"])):
    print(f"object {g} ({SHAPE_CLASSES[target['labels'][g]]}): "
          f"{(matched == g).sum()} default boxes")
images, targets = detection_collate([train_set[i] for i in range(16)])
with no_grad():
    logits, offsets = untrained_ssd.head(untrained_ssd.feature_maps(images))
batch_labels, _ = untrained_ssd.targets(targets)
x = logits.data
log_p = x - x.max(-1, keepdims=True)
log_p -= np.log(np.exp(log_p).sum(-1, keepdims=True))
class_loss = -np.take_along_axis(log_p, np.maximum(batch_labels, 0)[..., None], -1)[..., 0]
kept = hard_negative_mask(class_loss, batch_labels)
positive, negative = batch_labels > 0, batch_labels == 0
hard = kept & negative
print(f"16 images: {positive.sum()} positive default boxes, {negative.sum()} negatives; kept "
      f"{hard.sum()} hard negatives ({hard.sum() / max(1, positive.sum()):.1f} per positive), "
      f"which carry {class_loss[hard].sum() / class_loss[negative].sum():.0%} of the negatives' "
      f"loss at initialization")

# %% [markdown]
# ## 3. SSD trained and evaluated
#
# `ssd_recipe` (AdamW, warmup and cosine decay through `train_detector`,
# `minidl/vision/models/train.py`): 2 epochs of the 4,000 training images. The
# loss is (cross-entropy over positives and hard negatives + smooth L1 over the
# positives' offsets) / positives. At test time: softmax scores, boxes decoded
# from the default boxes, per-class NMS at 0.45, as SSD.

# %%
with Timer() as timer:
    ssd = ssd_recipe(train_set, epochs=EPOCHS, seed=args.seed)
ssd_score = ssd.evaluate(test_set)
print(f"SSD trained in {timer.seconds:.0f} s; " + ssd_score.line())
save_detector(ssd, args.out / "ssd.npz", train_set)
fig, axes = plt.subplots(1, 4, figsize=(11, 3))
for ax, index in zip(axes, range(4)):
    d = ssd_score.detections[index]
    keep = d["scores"] >= 0.3
    draw.draw_boxes(test_set[index][0], d["boxes"][keep], d["labels"][keep], d["scores"][keep],
                    class_names=SHAPE_CLASSES, ax=ax, title=f"SSD, test {index}")
save_figure(fig, args.out / "ssd_detections.png")

# %% [markdown]
# ## 4. The feature pyramid and RetinaNet's subnets
#
# `RetinaNet` (`minidl/vision/models/retinanet.py`) reads the last two stages of a
# four-stage `Backbone` (C3 at stride 8, C4 at stride 16) through an `FPN`
# (`minidl/vision/models/backbone.py`): a 1x1 *lateral* conv brings each to 64
# channels, the coarser level is up-sampled x2 and added (*top-down*), a 3x3 conv
# smooths each sum; P5 is a stride-2 conv on P4. Two small subnets, shared by all
# levels, give each of the 9 anchors per position (3 scales x 3 ratios) K class
# logits (sigmoids, no background class) and 4 offsets.

# %%
untrained_retina = retinanet_recipe(train_set, epochs=0, seed=args.seed).model
with no_grad():
    c_maps = untrained_retina.backbone.features(images[:2])
    lateral = [untrained_retina.fpn.lateral[i](c) for i, c in enumerate(c_maps[-2:])]
    levels = untrained_retina.pyramid(images[:2])
    outputs = [(untrained_retina.head.cls_logits(untrained_retina.head.cls_subnet(p)),
                untrained_retina.head.bbox_pred(untrained_retina.head.bbox_subnet(p)))
               for p in levels]
names = ["C1", "C2", "C3", "C4"]
for name, c in zip(names, c_maps):
    print(f"backbone {name}: {c.shape}")
for level, (p, (cls, box)) in enumerate(zip(levels, outputs)):
    print(f"P{level + 3}: {p.shape} -> class subnet {cls.shape} (9 anchors x {K} classes), "
          f"box subnet {box.shape} (9 x 4)")
print(f"laterals: {[tuple(x.shape) for x in lateral]}; anchors per image: "
      f"{sum(p.shape[-1] * p.shape[-2] * 9 for p in levels)}")

fig, ax = plt.subplots(figsize=(8, 5))
scale = 9                     # a map of side f is drawn as a square of side f * scale
rows_y = {"P5": 10, "4": 60, "3": 150}


def square(x, y, tensor, name, colour):
    side = tensor.shape[-1] * scale
    ax.add_patch(plt.Rectangle((x, y), side, side, fill=False, color=colour, linewidth=1.5))
    ax.text(x + side / 2, y + side + 9, f"{name} {tuple(tensor.shape[1:])}", ha="center",
            fontsize=8)
    return x + side, y + side / 2


def arrow(start, end, text):
    ax.annotate("", xy=end, xytext=start, arrowprops={"arrowstyle": "->"})
    ax.text((start[0] + end[0]) / 2, (start[1] + end[1]) / 2 - 4, text, fontsize=7,
            ha="center")


c3_right, c3_mid = square(10, rows_y["3"], c_maps[-2], "C3", "tab:blue")
c4_right, c4_mid = square(30, rows_y["4"], c_maps[-1], "C4", "tab:blue")
p3_right, p3_mid = square(200, rows_y["3"], levels[0], "P3", "tab:orange")
p4_right, p4_mid = square(220, rows_y["4"], levels[1], "P4", "tab:orange")
p5_right, p5_mid = square(230, rows_y["P5"], levels[2], "P5", "tab:orange")
arrow((c3_right, c3_mid), (200, c3_mid), "lateral 1x1")
arrow((c4_right, c4_mid), (220, c4_mid), "lateral 1x1")
arrow((238, rows_y["4"] + 36), (238, rows_y["3"]), "")
ax.text(244, (rows_y["4"] + 36 + rows_y["3"]) / 2, "x2 up, +", fontsize=7)
arrow((238, rows_y["4"]), (238, rows_y["P5"] + 18), "")
ax.text(244, (rows_y["4"] + rows_y["P5"] + 18) / 2, "3x3 stride 2", fontsize=7)
for level_mid in (p3_mid, p4_mid, p5_mid):
    ax.text(300, level_mid, "class subnet -> 9 x K\nbox subnet -> 9 x 4", fontsize=7,
            va="center")
ax.set_xlim(0, 380)
ax.set_ylim(240, 0)
ax.axis("off")
ax.set_title("RetinaNet: bottom-up C3, C4 (blue), pyramid P3-P5 (orange), [channels, h, w]; "
             "one pair of subnets shared by all levels", fontsize=8)
save_figure(fig, args.out / "fpn_shapes.png")

# %% [markdown]
# ## 5. Focal loss against cross-entropy
#
# With p_t the model's probability of the true answer (p for an object, 1 - p
# for background), cross-entropy is -log p_t and the focal loss
# (`sigmoid_focal_loss` in `minidl/vision/loss.py`) is
# -alpha_t (1 - p_t)^gamma log p_t. At p_t = 0.9 (an easy background anchor)
# gamma = 2 divides the loss by 100; at p_t = 0.99, by 10,000.

# %%
p_t = np.linspace(0.01, 1.0, 200)
gammas = [0.0, 0.5, 1.0, 2.0, 5.0]   # the curves; GAMMAS: the trained ones
fig, ax = plt.subplots(figsize=(4.5, 3.2))
for gamma in gammas:
    logits_t = Tensor(np.log(p_t / (1 - p_t + 1e-12)).astype(np.float64))
    loss = sigmoid_focal_loss(logits_t, np.ones_like(p_t), alpha=-1, gamma=gamma).data
    ax.plot(p_t, loss, label=f"gamma = {gamma:g}")
ax.set_xlabel("probability of the true class p_t")
ax.set_ylabel("loss")
ax.set_ylim(0, 5)
ax.legend(fontsize=7)
save_figure(fig, args.out / "focal_loss_curves.png")
for p in (0.9, 0.99):
    ce = -np.log(p)
    print(f"p_t = {p}: cross-entropy {ce:.4f}, focal (gamma 2) {(1 - p) ** 2 * ce:.6f} "
          f"({1 / (1 - p) ** 2:,.0f} x smaller)")

# %% [markdown]
# **The prior bias.** RetinaNet's class logits start at b = -log((1 - pi) / pi)
# (`prior_bias` in `minidl/vision/loss.py`), pi = 0.01, so that every anchor
# starts at probability 0.01 of being an object. With a zero bias every one of
# the ~750 x K anchor outputs starts at 0.5, and the background's loss swamps
# the first steps. The same model trained from the same initial weights for 40
# steps, each way, with the focal loss and with cross-entropy (gamma = 0):

# %%
steps = 5 if args.quick else 40
first_steps = {}
small = ShapesDataset(16 * steps // 4, seed=args.seed + 300)
for gamma, alpha in ((2.0, 0.25), (0.0, 0.75)):
    for pi in (0.01, 0.5):
        run = retinanet_recipe(small, epochs=4, seed=args.seed, gamma=gamma, alpha=alpha,
                               prior_probability=pi)
        first_steps[gamma, pi] = run.history["loss"]
fig, ax = plt.subplots(figsize=(5, 3.2))
for (gamma, pi), values in first_steps.items():
    ax.semilogy(values, label=f"gamma {gamma:g}, bias {prior_bias(pi):.2f} (pi = {pi})")
ax.set_xlabel("step")
ax.set_ylabel("training loss")
ax.legend(fontsize=7)
save_figure(fig, args.out / "prior_bias.png")
for (gamma, pi), values in first_steps.items():
    print(f"gamma {gamma:g}, pi {pi}: loss at step 1 {values[0]:8.3f}, step 10 "
          f"{values[min(9, len(values) - 1)]:8.3f}, last {values[-1]:8.3f}")

# %% [markdown]
# **The ablation** (Lin et al., Table 1b, in miniature): the same RetinaNet
# trained for gamma in {0, 0.5, 1, 2, 5}, each with the paper's best alpha for
# that gamma (0.75, 0.5, 0.25, 0.25, 0.25), for the same budget (2 epochs of
# 600 images) and several seeds, scored on the *validation* set -- this is
# the choice of gamma, so the test set is not used. gamma = 0 is
# alpha-balanced cross-entropy.

# %%
alpha_for = {0.0: 0.75, 0.5: 0.5, 1.0: 0.25, 2.0: 0.25, 5.0: 0.25}
ablation_train = ShapesDataset(ABLATION_IMAGES, seed=args.seed)
ablation = {}
with Timer() as timer:
    for gamma in GAMMAS:
        for seed in ABLATION_SEEDS:
            run = retinanet_recipe(ablation_train, epochs=2, seed=seed, gamma=gamma,
                                   alpha=alpha_for[gamma])
            ablation[gamma, seed] = (run.evaluate(val_set), run)
print(f"{len(ablation)} runs in {timer.seconds:.0f} s")
print(f"{'gamma':>6} {'alpha':>6} {'COCO AP (val)':>16} {'AP50':>12} {'VOC07 mAP':>12}")
summary = {}
for gamma in GAMMAS:
    runs = [ablation[gamma, s][0] for s in ABLATION_SEEDS]
    aps = np.array([r.coco_ap for r in runs])
    summary[gamma] = aps.mean()
    print(f"{gamma:6g} {alpha_for[gamma]:6.2f} {aps.mean():8.3f} +- {aps.std():.3f} "
          f"{np.mean([r.coco_ap50 for r in runs]):12.3f} "
          f"{np.mean([r.voc07_map for r in runs]):12.3f}")
best_gamma = max(GAMMAS, key=lambda g: summary[g])
print(f"best on validation: gamma = {best_gamma:g}")

# %% [markdown]
# **Where the loss comes from.** Take the trained gamma = 2 model of seed 0 and
# its predictions on the validation images. For every negative anchor (and
# class) compute its loss under cross-entropy and under the focal loss: the
# histogram shows how many easy negatives there are, and the cumulative share
# shows who carries the loss (the paper's Figure 4).

# %%
model = ablation[2.0, ABLATION_SEEDS[0]][1].model
loader = DataLoader(val_set, batch_size=50, collate_fn=detection_collate)
negative_logits = []
with no_grad():
    for images_v, targets_v in loader:
        logits_v, _ = model.predict(images_v)
        labels_v, _ = model.targets(targets_v)
        one_hot = np.zeros(logits_v.shape, bool)
        n_i, a_i = np.nonzero(labels_v > 0)
        one_hot[n_i, a_i, labels_v[n_i, a_i] - 1] = True
        valid = (labels_v >= 0)[..., None] & ~one_hot
        negative_logits.append(logits_v.data[valid])
negative_logits = np.concatenate(negative_logits).astype(np.float64)
p = 1 / (1 + np.exp(-negative_logits))
ce_loss = -np.log(1 - p)
focal_loss = p ** 2 * ce_loss
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
bins = np.logspace(-8, 1, 60)
axes[0].hist(ce_loss, bins=bins, alpha=0.6, label="cross-entropy")
axes[0].hist(focal_loss, bins=bins, alpha=0.6, label="focal, gamma = 2")
axes[0].set_xscale("log")
axes[0].set_xlabel("loss of one negative")
axes[0].set_ylabel("negatives")
axes[0].legend(fontsize=7)
shares = {}
for name, values in (("cross-entropy", ce_loss), ("focal, gamma = 2", focal_loss)):
    ordered = np.sort(values)                       # easiest first
    cumulative = np.cumsum(ordered) / ordered.sum()
    axes[1].plot(np.linspace(0, 1, len(ordered)), cumulative, label=name)
    shares[name] = cumulative[int(0.9 * len(ordered)) - 1]
axes[1].set_xlabel("fraction of negatives, easiest first")
axes[1].set_ylabel("cumulative share of their loss")
axes[1].legend(fontsize=7)
save_figure(fig, args.out / "negatives_loss.png")
easy = p < 0.01
print(f"{len(p):,} negative anchor-class outputs on the validation set; {easy.mean():.1%} are "
      f"easy (p < 0.01)")
for name, share in shares.items():
    print(f"  {name}: the easiest 90% of the negatives carry {share:.1%} of their loss")

# %% [markdown]
# ## 6. RetinaNet at the full budget
#
# The gamma chosen on validation, trained like SSD (2 epochs of the 4,000
# training images) and scored on the test set.

# %%
with Timer() as timer:
    retina = retinanet_recipe(train_set, epochs=EPOCHS, seed=args.seed, gamma=best_gamma,
                              alpha=alpha_for[best_gamma])
retina_score = retina.evaluate(test_set)
print(f"RetinaNet (gamma {best_gamma:g}) trained in {timer.seconds:.0f} s; " + retina_score.line())
save_detector(retina, args.out / "retinanet.npz", train_set)

# %% [markdown]
# ## 7. The speed / accuracy table
#
# Every detector of the course on the same 500 test images. Each is loaded from
# what its lesson saved under `runs/` (`load_detector` in
# `minidl/vision/models/zoo.py`: only when it was trained on this same training
# set), or trained here with its recipe (`minidl/vision/models/recipes.py` and the
# one-stage model files) at its lesson's budget -- the table says which, and for
# how long. Speed is inference images per second at batch size 1, on this machine
# (numbers from a busy machine are lower; compare the ratios). Fast R-CNN's
# proposals are lesson 07's stand-in for selective search, made *from the
# ground truth*: its accuracy is an upper bound, not comparable with the
# others.

# %%
runs = Path("runs")
# (name, recipe, what its lesson saves, its lesson's budget: training images, epochs).
# Lessons 07-09 train on their own smaller sets and save nothing: their detectors are
# trained here on as many images of this training distribution, for as many epochs.
entries = [
    ("Fast R-CNN", fast_rcnn_recipe, None, (800, 3)),
    ("Faster R-CNN", faster_rcnn_recipe, None, (1200, 5)),
    ("Mask R-CNN", mask_rcnn_recipe, None, (800, 4)),
    ("YOLO v1", yolo_v1_recipe, runs / "10_yolo" / "yolo_v1.npz", (len(train_set), 2)),
    ("YOLO v2", yolo_v2_recipe, runs / "10_yolo" / "yolo_v2.npz", (len(train_set), 2)),
    ("DETR", detr_recipe, runs / "16_detr" / "detr.npz", (len(train_set), 3)),
    ("CenterNet", centernet_recipe, runs / "16_detr" / "centernet.npz", (len(train_set), 2)),
]
table = {"SSD": (ssd, "trained above"), "RetinaNet": (retina, "trained above")}
for name, recipe, path, (images_n, epochs) in entries:
    trained = None if path is None else load_detector(recipe, train_set, path, seed=args.seed)
    how = f"loaded from {path}"
    if trained is None:
        if args.quick:
            images_n, epochs = 32, 1
        data = train_set if images_n == len(train_set) else ShapesDataset(images_n,
                                                                         seed=args.seed)
        with Timer() as timer:
            trained = recipe(data, epochs=epochs, seed=args.seed)
        how = f"trained here, {epochs} epochs of {images_n} images ({timer.seconds:.0f} s)"
    table[name] = (trained, how)
print(f"{'detector':>13} {'images/s':>9} {'VOC07 mAP':>10} {'COCO AP':>8} {'AP50':>6}  source")
results = {}
for name, (trained, how) in table.items():
    loader = trained.loader(test_set, batch_size=1)
    score = evaluate_detector(trained.model, loader, K, name, trained.inputs)
    results[name] = score
    print(f"{name:>13} {score.images_per_second:9.1f} {score.voc07_map:10.3f} "
          f"{score.coco_ap:8.3f} {score.coco_ap50:6.3f}  {how}")
fig, ax = plt.subplots(figsize=(6, 4))
for name, score in results.items():
    ax.scatter(score.images_per_second, score.coco_ap, marker="s" if "R-CNN" in name else "o")
    ax.annotate(name, (score.images_per_second, score.coco_ap), fontsize=8,
                xytext=(4, 4), textcoords="offset points")
ax.set_xscale("log")
ax.set_xlabel("inference images per second (batch 1, this machine)")
ax.set_ylabel("COCO AP@[.5:.95] (test)")
ax.set_title("speed against accuracy (squares: two-stage)", fontsize=9)
save_figure(fig, args.out / "speed_accuracy.png")

# %% [markdown]
# ## 8. Checks

# %%
lesson_timer.__exit__()
print(f"whole lesson: {lesson_timer.seconds:.0f} s")
if not args.quick:
    assert ssd_score.voc07_map > 0.4, f"SSD test VOC07 mAP {ssd_score.voc07_map:.3f}"
    assert retina_score.voc07_map > 0.15, f"RetinaNet test VOC07 mAP {retina_score.voc07_map:.3f}"
    assert shares["cross-entropy"] > shares["focal, gamma = 2"] + 0.2
    for gamma, at_least in ((2.0, 10), (0.0, 5)):  # measured 16-23x and 8-11x, seeds 0-4
        zero_bias, prior = first_steps[gamma, 0.5][0], first_steps[gamma, 0.01][0]
        assert zero_bias > at_least * prior, "a zero bias starts with a far larger loss"
    assert max(summary.values()) > 0.005, "the ablation's budget lifts AP off zero"
    speeds = {name: score.images_per_second for name, score in results.items()}
    others = max(rate for name, rate in speeds.items() if not name.startswith("YOLO"))
    assert min(speeds["YOLO v1"], speeds["YOLO v2"]) > 1.5 * others, \
        "YOLO v1 and v2 are the fastest, well ahead of the rest"
    assert max(results, key=lambda name: results[name].coco_ap) == "Faster R-CNN"
    print("all promised results hold")

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **No hard negative mining.** Train SSD with `neg_pos_ratio=1000` (every
#    negative counts) at the same budget. What happens to the scores and to mAP?
#    Check: `check_range("SSD mAP with every negative", score.voc07_map, 0.5, 0.7)`.
# 2. **One map.** Give SSD no extra layers (`extra_widths=(), aspect_ratios=((2,),)`):
#    only the 16 x 16 map and its default boxes. Which objects does it miss (look at
#    their size)?
#    Check: `check_range("SSD mAP with one map", score.voc07_map, 0.45, 0.62)`.
# 3. **alpha alone.** Train RetinaNet with gamma = 0 and alpha in {0.25, 0.5,
#    0.75} on the ablation set (Table 1a). Is balancing the classes enough?
#    Check: `check_range("COCO AP, gamma 0, alpha 0.25", score.coco_ap, 0.0, 0.01)`.
# 4. **No pyramid.** Replace RetinaNet's `pyramid` by the backbone's C3 alone
#    (one level, all nine anchor sizes on it: `anchor_sizes=(sizes,)`), same gamma,
#    alpha and budget. What happens to the large objects, and to mAP at this budget?
#    Check (seed 0): `check_range("RetinaNet mAP on C3 only", score.voc07_map, 0.36, 0.46)`.
# 5. **Batch size and speed.** Re-run the table's timing with batch size 8.
#    Which detectors gain most, and why?
#    Check: `check_range("YOLO v1 images/s, batch 8 / batch 1", ratio, 1.2, 3.0)`.
