# %% [markdown]
"""
# Lesson 06 — Detection basics: boxes, anchors, matching, NMS, average precision, RoI pooling

**Lecture idea.** Every modern detector (R-CNN, Fast / Faster R-CNN, SSD,
YOLO, RetinaNet, Mask R-CNN) is built from the same few parts: a measure of
overlap (IoU), a way to write a box as small offsets from a reference box
(the R-CNN box parametrization), reference boxes tiled over the image
(anchors), a rule that decides which reference box is responsible for which
object (matching) and a balanced sample of them to train on, a clean-up of
duplicate detections (non-maximum suppression), a fixed-size feature for a
box of any size (RoIPool / RoIAlign), and one number to compare detectors
(average precision). This lesson takes each part alone, on synthetic
images, and looks at what it does. Nothing is trained.

**What you build.** IoU by hand and with `box_iou`; the box encoding and its
inverse; anchors over a 64 x 64 image; matcher and sampler decisions as
pictures; NMS before and after; average precision worked out by hand on a
ranked list, then with the library; PASCAL VOC 2007, VOC 2010 and COCO
numbers for the same detections and why they differ; RoIPool against
RoIAlign on one feature map, with the quantization drawn.

**Expected result.** The hand-computed AP equals the library's; on noisy
detections VOC07 and VOC10 AP are close; as the boxes get sloppier the strict
COCO numbers fall much faster than the lenient ones: AP75 fastest, then
AP@[.5:.95] (an average over lenient and strict thresholds), then AP50 and VOC;
NMS raises AP; RoIAlign's output moves smoothly with the box while RoIPool's
jumps in steps.
Full run on a 2-core laptop: about 10 seconds.

*Measured (full run, seed 0): VOC mAP 0.649 before NMS and 0.848 after; from
jitter 0.25 to 4.0, VOC10 0.866 -> 0.689 (-20%), COCO AP50 0.862 -> 0.687
(-20%), AP@[.5:.95] 0.839 -> 0.228 (-73%), AP75 0.862 -> 0.080 (-91%). Time:
4 s on an idle 2-core machine for the previous version; this run took 159 s of
wall clock (7.5 s of CPU) on a machine shared with four other jobs at a load
of about 20, so its times say nothing.
The first run ever adds numba's one-time compilation of the kernels.*

Run: `python lessons/06_detection_basics.py [--quick] [--seed S] [--out DIR]`
"""

# %%
import time

import numpy as np

from minidl import Tensor
from minidl.data.shapes import SHAPE_CLASSES, ShapesDataset
from minidl.utils.lesson import check_range, lesson_args, save_figure  # noqa: F401 (exercises)
from minidl.vision import (
    AnchorGenerator,
    BalancedPositiveNegativeSampler,
    BoxCoder,
    Matcher,
    average_precision,
    batched_nms,
    box_iou,
    coco_evaluate,
    draw,
    pairwise_box_iou,
    precision_recall,
    roi_align,
    roi_pool,
    scaled_area_ranges,
    voc_evaluate,
)

args = lesson_args("06_detection_basics", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)
from matplotlib.lines import Line2D  # noqa: E402

lesson_start = time.perf_counter()
rng = np.random.default_rng(args.seed)

# %% [markdown]
# ## 1. The data: shapes with boxes and masks
#
# `ShapesDataset` draws rectangles, ellipses, triangles and crosses on a
# textured background, from a seed. Each image comes with boxes (x1, y1, x2, y2
# in pixels), labels 1..4 (0 is background), one mask per object and a
# semantic mask. Objects may overlap; the box is that of the visible part.

# %%
num_images = 40 if args.quick else 300
data = ShapesDataset(num_images, image_size=64, max_objects=4, seed=args.seed)
targets = [data[i][1] for i in range(len(data))]
print(f"{len(data)} images, {sum(len(t['labels']) for t in targets)} objects, "
      f"classes {SHAPE_CLASSES[1:]}")
image, target = data[0]
print("image", image.shape, image.dtype, " boxes", target["boxes"].tolist(),
      " labels", target["labels"].tolist())

fig, axes = plt.subplots(2, 4, figsize=(10, 5))
for k in range(4):
    im, t = data[k]
    draw.draw_boxes(im, t["boxes"], t["labels"], class_names=SHAPE_CLASSES, ax=axes[0, k])
    draw.draw_masks(im, t["masks"], t["labels"], ax=axes[1, k])
save_figure(fig, args.out / "data.png")

# %% [markdown]
# ## 2. Intersection over union
#
# IoU(A, B) = |A ∩ B| / |A ∪ B|: 1 for the same box, 0 for disjoint ones.
# `box_iou` is in `minidl/vision/boxes.py` (`_intersection` there computes the
# intersections for all pairs at once and `iou_from_areas` turns them into IoUs,
# the one place for the union and the empty-union rule); the numba loop used by
# NMS is `pair_iou` in `minidl/kernels/boxes.py`.
# Two 10 x 10 boxes shifted by 5 pixels share 5 x 10 = 50 pixels; the union
# is 100 + 100 - 50 = 150, so IoU = 1/3. Note how fast IoU falls with a shift:
# the box is only half a side off, and IoU is already far below the usual 0.5.

# %%
a = np.array([[0.0, 0.0, 10.0, 10.0]])
b = np.array([[5.0, 0.0, 15.0, 10.0], [0.0, 0.0, 10.0, 10.0], [20.0, 20.0, 30.0, 30.0]])
by_hand = np.array([[50 / 150, 1.0, 0.0]])
print("box_iou:", np.round(box_iou(a, b), 4), " by hand:", np.round(by_hand, 4))
assert np.allclose(box_iou(a, b), by_hand)

shifts = np.linspace(0, 10, 41)
moved = np.stack([shifts, np.zeros_like(shifts), shifts + 10, np.full_like(shifts, 10)], 1)
iou_curve = box_iou(a, moved)[0]
# shift s: overlap (10 - s) * 10, union 200 - overlap -> IoU = (10 - s) / (10 + s)
assert np.allclose(iou_curve, (10 - shifts) / (10 + shifts), atol=1e-6)
third = box_iou(a, np.array([[10 / 3, 0.0, 10 + 10 / 3, 10.0]]))[0, 0]
print(f"a shift of a third of the side (3.33 px) already brings IoU down to {third:.3f}")
fig, ax = plt.subplots(figsize=(4, 3))
ax.plot(shifts, iou_curve)
ax.axhline(0.5, color="grey", linestyle="--")
ax.set_xlabel("horizontal shift of a 10 x 10 box (pixels)")
ax.set_ylabel("IoU with the original")
save_figure(fig, args.out / "iou_vs_shift.png")

# %% [markdown]
# ## 3. Boxes as offsets from a reference box
#
# A detector predicts how to move and stretch a reference box r onto the
# object g (R-CNN, appendix C): centre offsets in units of the reference size,
# and log size ratios,
#
#     t_x = (x_g - x_r) / w_r,   t_y = (y_g - y_r) / h_r,
#     t_w = log(w_g / w_r),      t_h = log(h_g / h_r).
#
# These numbers are small and scale-free: the same t describes a 10-pixel and a
# 500-pixel object. `BoxCoder` (`minidl/vision/box_coder.py`, methods
# `encode_single` and `decode_single`) also multiplies them by weights (10,
# 10, 5, 5 in Fast R-CNN's head) to give them unit-ish variance. Decoding is
# the inverse.

# %%
coder = BoxCoder(weights=(1.0, 1.0, 1.0, 1.0))
gt_box = np.array([[12.0, 20.0, 40.0, 36.0]])   # centre (26, 28), 28 x 16
ref_box = np.array([[8.0, 16.0, 40.0, 48.0]])   # centre (24, 32), 32 x 32
t = coder.encode_single(gt_box, ref_box)
by_hand = [(26 - 24) / 32, (28 - 32) / 32, np.log(28 / 32), np.log(16 / 32)]
print("encoded:", np.round(t, 4), " by hand:", np.round(by_hand, 4))
assert np.allclose(t, [by_hand])
boxes_all = np.concatenate([t["boxes"] for t in targets])
anchors_for_all = boxes_all + rng.normal(0, 3, boxes_all.shape)
anchors_for_all[:, 2:] = np.maximum(anchors_for_all[:, 2:], anchors_for_all[:, :2] + 2)
codes = coder.encode_single(boxes_all, anchors_for_all)
round_trip = coder.decode_single(codes, anchors_for_all)
print(f"decode(encode(g)) - g over {len(boxes_all)} boxes: max |error| = "
      f"{np.abs(round_trip - boxes_all).max():.2e} px")
assert np.abs(round_trip - boxes_all).max() < 1e-3

# %% [markdown]
# ## 4. Anchors
#
# Faster R-CNN puts A reference boxes (several sizes x aspect ratios) at every
# position of the backbone's feature map. A stride-8 backbone on a 64 x 64
# image gives an 8 x 8 map; 3 sizes x 3 ratios make 8 * 8 * 9 = 576 anchors.
# `AnchorGenerator` is in `minidl/vision/anchors.py`: `cell_anchors` holds the
# 9 boxes centred at (0, 0), `anchors_for` shifts them to every cell.

# %%
anchor_gen = AnchorGenerator(sizes=((8, 16, 32),), aspect_ratios=((0.5, 1.0, 2.0),), offset=0.5)
anchors = anchor_gen.anchors_for((64, 64), [(8, 8)])
print(f"{len(anchors)} anchors; the 9 of one cell, centred at (0, 0):")
print(anchor_gen.cell_anchors[0])
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
centre_cell = anchors[(3 * 8 + 3) * 9:(3 * 8 + 4) * 9]   # the 9 anchors of cell (3, 3)
draw.draw_anchors(image, centre_cell, ax=axes[0], title="the 9 anchors of one cell")
draw.draw_anchors(image, anchors, ax=axes[1], max_anchors=60, title="60 of the 576 anchors")
save_figure(fig, args.out / "anchors.png")

# %% [markdown]
# ## 5. Matching and sampling
#
# Which anchors should predict which object? The RPN's rule (`Matcher(0.7, 0.3)`):
# an anchor whose best IoU with a ground-truth box is >= 0.7 is a positive for
# that box, < 0.3 is background, in between it is ignored by the loss. Small
# objects rarely reach 0.7 with any anchor, so each object also keeps its best
# anchor(s) (`allow_low_quality_matches`). Then, because almost every anchor is
# background, a sampler picks a small batch with at most half positives.
# (`Matcher` in `minidl/vision/matcher.py`, `BalancedPositiveNegativeSampler`
# in `minidl/vision/sampler.py`.) In the picture: white, the objects; solid, a
# positive anchor in its object's colour with a line to it; dashed orange,
# ignored; thin grey, a sample of the negatives.

# %%
matcher = Matcher(0.7, 0.3, allow_low_quality_matches=True)
quality = box_iou(target["boxes"], anchors)          # [objects, anchors]
matched = matcher(quality)
print(f"anchors: {(matched >= 0).sum()} positive, {(matched == -2).sum()} ignored, "
      f"{(matched == -1).sum()} negative")
# the sampler's convention: 1 positive, 0 negative, -1 ignored
labels = np.where(matched >= 0, 1, np.where(matched == -1, 0, -1))
sampler = BalancedPositiveNegativeSampler(32, 0.5, generator=np.random.default_rng(args.seed))
(pos,), (neg,) = sampler([labels])
print(f"sampled {pos.sum()} positives and {neg.sum()} negatives (batch of 32, at most half "
      f"positive)")
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
draw.draw_matches(image, anchors, matched, target["boxes"], ax=axes[0], title="matcher")
sampled = np.where(pos, matched, np.where(neg, -1, -3))
keep = sampled != -3
draw.draw_matches(image, anchors[keep], sampled[keep], target["boxes"], ax=axes[1],
                  title="sampled for the loss", max_negatives=32)
legend = [Line2D([], [], color="white", lw=2.5, label="object (ground truth)"),
          Line2D([], [], color=draw.class_colour(0), lw=1.2,
                 label="positive anchor (its object's colour)"),
          Line2D([], [], color="#ff9900", lw=1.0, ls="--", label="ignored (0.3 <= IoU < 0.7)"),
          Line2D([], [], color="#bbbbbb", lw=0.6, label="negative (IoU < 0.3), a sample")]
fig.legend(handles=legend, loc="lower center", ncol=2, fontsize=8, facecolor="#555555",
           labelcolor="white", bbox_to_anchor=(0.5, -0.12))
save_figure(fig, args.out / "matching.png")

# %% [markdown]
# ## 6. Synthetic detections and non-maximum suppression
#
# We have no trained detector in this lesson, so we make detections from the
# ground truth the way a detector errs: each object is found several times
# with jittered boxes (a cluster of overlapping boxes, as from neighbouring
# anchors); the score is higher for better boxes; some objects are missed, some
# boxes get the wrong class, and random false alarms appear.
#
# NMS visits boxes by decreasing score and removes every later box of the same
# class overlapping a kept one with IoU > 0.5: one box per cluster survives.
# Below, greedy NMS in ten lines of Python, checked against the library's
# `batched_nms` (`minidl/vision/nms.py`; its loop is `nms_kernel` in
# `minidl/kernels/boxes.py`, which keeps the boxes of different classes apart by
# comparing only boxes with the same class index).

# %%
def noisy_detections(targets, rng, jitter=2.0, copies=5, miss=0.1, wrong_class=0.05,
                     false_alarms=1.0, num_classes=4, size=64):
    """Per image a dict of boxes, scores, labels made from the ground truth."""
    out = []
    for t in targets:
        g = t["boxes"]
        found = rng.uniform(size=len(g)) > miss
        src = np.repeat(np.nonzero(found)[0], copies)
        wh = np.repeat((g[found, 2:] - g[found, :2]), copies, axis=0)
        boxes = g[src] + rng.normal(0, 1, (len(src), 4)) * jitter * np.tile(wh, 2) / 20
        boxes = np.concatenate([np.minimum(boxes[:, :2], boxes[:, 2:]),
                                np.maximum(boxes[:, :2], boxes[:, 2:])], 1)
        iou = np.diag(pairwise_box_iou(boxes, g[src]))  # each box with its own object
        scores = np.clip(0.5 * iou + 0.5 * rng.uniform(size=len(src)), 0.01, 1)
        labels = t["labels"][src].copy()
        flip = rng.uniform(size=len(src)) < wrong_class
        labels[flip] = rng.integers(1, num_classes + 1, flip.sum())
        n_fa = rng.poisson(false_alarms)
        xy = rng.uniform(0, size - 16, (n_fa, 2))
        fa = np.concatenate([xy, xy + rng.uniform(6, 16, (n_fa, 2))], 1)
        boxes = np.concatenate([boxes.reshape(-1, 4), fa])
        out.append({"boxes": np.clip(boxes, 0, size).astype(np.float32),
                    "scores": np.concatenate([scores, rng.uniform(0, 0.6, n_fa)]),
                    "labels": np.concatenate([labels, rng.integers(1, num_classes + 1, n_fa)])})
    return out


def apply_nms(detections, threshold=0.5):
    kept = []
    for d in detections:
        k = batched_nms(d["boxes"], d["scores"], d["labels"], threshold)
        kept.append({key: value[k] for key, value in d.items()})
    return kept


def nms_by_hand(boxes, scores, labels, threshold=0.5):
    """Greedy NMS: indices of the kept boxes, by decreasing score."""
    keep = []
    for i in np.argsort(-scores, kind="stable"):
        overlaps = [box_iou(boxes[i:i + 1], boxes[k:k + 1])[0, 0] > threshold
                    for k in keep if labels[k] == labels[i]]
        if not any(overlaps):
            keep.append(i)
    return np.array(keep, dtype=np.int64)


raw = noisy_detections(targets, rng)
after_nms = apply_nms(raw)
first = raw[0]
by_hand_keep = nms_by_hand(first["boxes"], first["scores"], first["labels"])
library_keep = batched_nms(first["boxes"], first["scores"], first["labels"], 0.5)
print(f"image 0: NMS by hand keeps {by_hand_keep.tolist()}, batched_nms {library_keep.tolist()}")
assert np.array_equal(np.sort(by_hand_keep), np.sort(library_keep))
print(f"detections: {sum(len(d['scores']) for d in raw)} before NMS, "
      f"{sum(len(d['scores']) for d in after_nms)} after")
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
draw.draw_boxes(image, raw[0]["boxes"], raw[0]["labels"], raw[0]["scores"],
                class_names=SHAPE_CLASSES, ax=axes[0],
                title=f"before NMS: {len(raw[0]['scores'])} boxes")
draw.draw_boxes(image, after_nms[0]["boxes"], after_nms[0]["labels"], after_nms[0]["scores"],
                class_names=SHAPE_CLASSES, ax=axes[1],
                title=f"after NMS: {len(after_nms[0]['scores'])} boxes")
save_figure(fig, args.out / "nms.png")
ap_raw, ap_nms = voc_evaluate(raw, targets).mAP, voc_evaluate(after_nms, targets).mAP
print(f"VOC mAP before NMS {ap_raw:.3f}, after NMS {ap_nms:.3f}: duplicates are false positives")

# %% [markdown]
# ## 7. Average precision by hand
#
# Rank the detections of one class by score and walk down the list. After k
# detections, precision = TP / k and recall = TP / (number of objects). Here a
# ranked list of 6 detections against 5 objects: TP FP TP TP FP TP.
#
#     k   hit  TP  FP  precision  recall
#     1   TP   1   0   1/1 = 1.00  1/5 = 0.2
#     2   FP   1   1   1/2 = 0.50  0.2
#     3   TP   2   1   2/3 = 0.67  0.4
#     4   TP   3   1   3/4 = 0.75  0.6
#     5   FP   3   2   3/5 = 0.60  0.6
#     6   TP   4   2   4/6 = 0.67  0.8
#
# AP is the area under the curve after replacing each precision by the best
# precision at that recall or beyond (the "envelope": 1, .75, .75, .75, .67, .67).
# VOC 2010+ adds up rectangles where recall rises:
# 0.2 * 1 + 0.2 * 0.75 + 0.2 * 0.75 + 0.2 * 0.667 + 0.2 * 0 (recall 1 never reached)
# = 0.2 + 0.15 + 0.15 + 0.1333 = 0.6333.
# VOC 2007 averages the envelope at the 11 recalls 0, 0.1, ..., 1.0: three levels
# (0 to 0.2) at 1, four (0.3 to 0.6) at 0.75, two (0.7, 0.8) at 0.667, two at 0:
# (3 * 1 + 4 * 0.75 + 2 * 0.667) / 11 = 0.6667 — a coarser reading of the same curve.
#
# The library's versions: `precision_recall` and `average_precision` in
# `minidl/vision/metrics/ranking.py`.

# %%
hits = np.array([1, 0, 1, 1, 0, 1], bool)
num_objects = 5
tp = np.cumsum(hits)
fp = np.cumsum(~hits)
precision = tp / (tp + fp)
recall = tp / num_objects
for k in range(len(hits)):
    print(f"  {k + 1}  {'TP' if hits[k] else 'FP'}  precision {precision[k]:.3f}  "
          f"recall {recall[k]:.1f}")
envelope = np.maximum.accumulate(precision[::-1])[::-1]
ap_by_hand = 0.0
previous_recall = 0.0
for r, p in zip(recall, envelope):   # rectangles where recall rises
    ap_by_hand += (r - previous_recall) * p
    previous_recall = r
ap07_by_hand = np.mean([envelope[recall >= level].max() if (recall >= level).any() else 0.0
                        for level in np.arange(11) / 10])  # 3 / 10, not 0.1 + 0.1 + 0.1
p_lib, r_lib = precision_recall(hits, num_objects)
print(f"all-point AP: by hand {ap_by_hand:.4f}, library "
      f"{average_precision(p_lib, r_lib, 'all'):.4f}")
print(f"11-point AP:  by hand {ap07_by_hand:.4f}, library "
      f"{average_precision(p_lib, r_lib, '11point'):.4f}")
print(f"101-point AP (COCO's sampling): {average_precision(p_lib, r_lib, '101point'):.4f}")
assert np.isclose(ap_by_hand, 0.2 + 0.15 + 0.15 + 0.2 * 2 / 3)
assert np.isclose(ap_by_hand, average_precision(p_lib, r_lib, "all"))
assert np.isclose(ap07_by_hand, (3 + 4 * 0.75 + 2 * 2 / 3) / 11)
assert np.isclose(ap07_by_hand, average_precision(p_lib, r_lib, "11point"))
fig = draw.draw_pr_curve(precision, recall, label="ranked list",
                         title="precision-recall and its envelope (dashed)")
save_figure(fig, args.out / "pr_by_hand.png")

# %% [markdown]
# ## 8. VOC 2007, VOC 2010 and COCO on the same detections
#
# - **VOC 2007**: AP at IoU >= 0.5, 11-point interpolation.
# - **VOC 2010+**: AP at IoU >= 0.5, exact area under the envelope.
# - **COCO**: 101-point AP averaged over ten IoU thresholds 0.50, 0.55, ...,
#   0.95 (AP@[.5:.95]), also reported at 0.5 (AP50) and 0.75 (AP75) and per
#   object size. A box that is "roughly right" counts at 0.5 but not at 0.9,
#   so COCO's main number rewards precise localization.
#
# `voc_evaluate` is in `minidl/vision/metrics/voc.py` and `coco_evaluate` in
# `minidl/vision/metrics/coco.py`; COCO's
# greedy matching of detections to objects, one image and class at a time,
# is the numba loop `coco_match` in `minidl/kernels/detection_eval.py`.
#
# The same detections, scored three ways, for growing box jitter:

# %%
jitters = [0.5, 1.5, 3.0] if args.quick else [0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0]
rows = []
for jitter in jitters:
    dets = apply_nms(noisy_detections(targets, np.random.default_rng(args.seed + 1),
                                      jitter=jitter))
    voc07 = voc_evaluate(dets, targets, num_classes=4, use_07_metric=True).mAP
    voc10 = voc_evaluate(dets, targets, num_classes=4).mAP
    coco = coco_evaluate(dets, targets, num_classes=4).stats
    rows.append((jitter, voc07, voc10, coco["AP50"], coco["AP75"], coco["AP"]))
print(f"{'jitter':>7} {'VOC07':>7} {'VOC10':>7} {'AP50':>7} {'AP75':>7} {'AP':>7}")
for r in rows:
    print(f"{r[0]:7.2f} " + " ".join(f"{v:7.3f}" for v in r[1:]))
rows = np.array(rows)
fig, ax = plt.subplots(figsize=(5, 3.5))
for col, name in zip(range(1, 6), ["VOC07", "VOC10", "COCO AP50", "COCO AP75",
                                   "COCO AP@[.5:.95]"]):
    ax.plot(rows[:, 0], rows[:, col], marker="o", label=name)
ax.set_xlabel("box jitter (x 5% of the object size)")
ax.set_ylabel("mAP")
ax.legend(fontsize=7)
save_figure(fig, args.out / "voc_vs_coco.png")

# %% [markdown]
# Why the numbers differ:
#
# - VOC07 vs VOC10: same matches, different sampling of the same curve. The 11
#   points see the envelope only at 0, 0.1, ..., 1; the exact area sees every
#   step. Here about 10% of the objects are never found, so recall stops near
#   0.9: the exact area loses that last 10%, but the 11 points lose 2 of 11
#   levels (0.9 and 1.0) as soon as the recall ends just short of 0.9.
# - VOC10 vs COCO AP50: the same IoU threshold, but COCO matches each detection
#   to the best *still unmatched* object (VOC: to the best object, even if
#   taken), samples 101 points, and keeps at most 100 detections per image and
#   class. The numbers are close.
# - AP75 and AP@[.5:.95]: every pixel of localization error costs at strict
#   thresholds long before it costs at 0.5. AP75 falls fastest (its relative
#   drop is printed below): one strict threshold, where a sloppy box is simply
#   a miss. AP@[.5:.95] averages ten thresholds, the lenient ones included, so
#   it falls less than AP75 but much more than AP50 and the VOC numbers.
#
# Object sizes: COCO's small / medium / large limits are areas of 32^2 and
# 96^2 square pixels in ~640-pixel photos. On 64 x 64 images every object is
# "small"; `scaled_area_ranges(64)` scales both areas by (64 / 640)^2, so the
# split means the same fraction of the image as in COCO (the limits are
# printed below: areas of about 10 and 92 square pixels, i.e. squares of
# about 3.2 and 9.6 pixels a side).

# %%
drop = (rows[0, 1:] - rows[-1, 1:]) / rows[0, 1:]  # relative fall from least to most jitter
print(f"relative fall from jitter {jitters[0]} to {jitters[-1]}: " + ", ".join(
    f"{name} {d:.0%}" for name, d in zip(["VOC07", "VOC10", "AP50", "AP75", "AP@[.5:.95]"], drop)))

limits = scaled_area_ranges(64)
small_limit, large_limit = limits["small"][1], limits["large"][0]
print(f"scaled to 64 px: small < {small_limit:.2f} px^2 (a {np.sqrt(small_limit):.1f} px square), "
      f"large > {large_limit:.2f} px^2 (a {np.sqrt(large_limit):.1f} px square)")
dets = apply_nms(noisy_detections(targets, np.random.default_rng(args.seed + 1), jitter=1.5))
default = coco_evaluate(dets, targets, num_classes=4).stats
scaled = coco_evaluate(dets, targets, num_classes=4, area_ranges=scaled_area_ranges(64)).stats
for name in ("AP_small", "AP_medium", "AP_large"):
    print(f"{name:>10}: COCO's pixel limits {default[name]:6.3f}   scaled to 64 px "
          f"{scaled[name]:6.3f}   (-1: no object of that size)")
print(coco_evaluate(dets, targets, num_classes=4).summary())

# %% [markdown]
# ## 9. RoIPool versus RoIAlign
#
# `roi_pool` and `roi_align` are in `minidl/ops/roi.py` (the primitives
# `RoIPool` and `RoIAlign`, forward and backward side by side); their loops are
# `roi_pool_forward_kernel` and `roi_align_forward_kernel` in
# `minidl/kernels/roi.py`, each beside a plain-NumPy reference.
#
# Fast R-CNN's RoIPool cuts a box out of the feature map and max-pools it into
# a fixed grid (here 2 x 2). It rounds the box to whole feature cells, and
# rounds each bin to whole cells again, so the bins no longer match the box
# (left: the shaded bins against the dashed box). Mask R-CNN's RoIAlign keeps
# the exact box, splits it into equal bins and reads each at a few points by
# bilinear interpolation (right: the red points).
#
# On a stride-8 feature map one cell is 8 image pixels: moving the box by a few
# pixels does not change RoIPool's output at all, then changes it in one jump.
# RoIAlign's output follows the box smoothly — what mask prediction needs.

# %%
feature_map = np.add.outer(np.linspace(0, 1, 8), np.linspace(0, 2, 8)).astype(np.float32)
feature_map += 0.3 * np.sin(np.arange(64).reshape(8, 8)).astype(np.float32)
box_image = np.array([10.0, 5.0, 50.0, 41.0])   # in image pixels; feature map has stride 8
fig, axes = plt.subplots(1, 2, figsize=(8, 4))
draw.draw_roi_bins(feature_map, box_image, 2, mode="pool", spatial_scale=1 / 8, ax=axes[0],
                   title="RoIPool: bins snapped to cells")
draw.draw_roi_bins(feature_map, box_image, 2, mode="align", spatial_scale=1 / 8,
                   sampling_ratio=2, ax=axes[1], title="RoIAlign: exact bins, 4 samples each")
save_figure(fig, args.out / "roi_bins.png")

fmap = Tensor(feature_map[None, None])
pooled = roi_pool(fmap, [box_image[None]], 2, spatial_scale=1 / 8).data[0, 0]
aligned = roi_align(fmap, [box_image[None]], 2, spatial_scale=1 / 8, sampling_ratio=2).data[0, 0]
# the drawn bins are the bins the ops use: max over RoIPool's cells, mean of the samples
bins = draw.roi_pool_bins(box_image, 2, 1 / 8)
by_bins = np.array([feature_map[y0:y1, x0:x1].max() for x0, y0, x1, y1 in bins]).reshape(2, 2)
print("RoIPool output:\n", pooled, "\nmax over the drawn bins:\n", by_bins)
assert np.allclose(pooled, by_bins)
print("RoIAlign output:\n", aligned)

offsets = np.linspace(0, 16, 65)
pool_curve, align_curve = [], []
for dx in offsets:
    moved_box = [(box_image + np.array([dx, 0, dx, 0]))[None]]
    pool_curve.append(roi_pool(fmap, moved_box, 2, spatial_scale=1 / 8).data[0, 0, 0, 0])
    align_curve.append(roi_align(fmap, moved_box, 2, spatial_scale=1 / 8,
                                 sampling_ratio=2).data[0, 0, 0, 0])
pool_curve, align_curve = np.array(pool_curve), np.array(align_curve)
print(f"moving the box 0..16 px: RoIPool takes {len(np.unique(pool_curve))} distinct values, "
      f"RoIAlign {len(np.unique(np.round(align_curve, 6)))}")
fig, ax = plt.subplots(figsize=(5, 3.2))
ax.plot(offsets, pool_curve, label="RoIPool (top-left bin)", drawstyle="steps-post")
ax.plot(offsets, align_curve, label="RoIAlign (top-left bin)")
ax.set_xlabel("box shifted right by (image pixels; 8 px = 1 feature cell)")
ax.set_ylabel("output")
ax.legend(fontsize=7)
save_figure(fig, args.out / "roi_shift.png")

# %% [markdown]
# ## 10. Checks

# %%
print(f"whole lesson: {time.perf_counter() - lesson_start:.1f} s")
if not args.quick:
    assert ap_nms > ap_raw, "NMS removes duplicates, which VOC counts as false positives"
    voc07_col, voc10_col, ap50_col, ap_col = rows[:, 1], rows[:, 2], rows[:, 3], rows[:, 5]
    assert np.all(np.abs(voc07_col - voc10_col) < 0.1), "VOC07 and VOC10 sample one curve"
    assert np.all(np.abs(ap50_col - voc10_col) < 0.03), "VOC10 and COCO AP50: same threshold"
    assert np.all(ap_col < ap50_col), "AP@[.5:.95] is stricter than AP50"
    voc07_drop, voc10_drop, ap50_drop, ap75_drop, ap_drop = drop
    assert ap75_drop > ap_drop > max(voc07_drop, voc10_drop, ap50_drop), drop
    assert len(np.unique(pool_curve)) <= 4 < len(np.unique(np.round(align_curve, 6)))
    print("all promised results hold")

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run:
# 300 images, 733 objects).
#
# 1. **Which objects get no anchor?** Over all images (`targets`), count the
#    objects that no anchor matches as a positive, with `Matcher(0.7, 0.3,
#    allow_low_quality_matches=False)` and with RetinaNet's `Matcher(0.5, 0.4,
#    allow_low_quality_matches=False)`. Which objects are they (look at their
#    size and shape)? (Hint: object k has a positive anchor when
#    `(matcher(box_iou(t["boxes"], anchors)) == k).any()`.)
#    Check: `check_range("objects without a positive anchor, 0.7 / 0.3", n_07, 640, 660)`
#    and `check_range("objects without a positive anchor, 0.5 / 0.4", n_05, 85, 105)`.
# 2. **A finer anchor grid.** Add anchor size 4 to the generator of section 4,
#    then instead keep the sizes and tile them over a stride-4 map
#    (`anchors_for((64, 64), [(16, 16)])`, 2,304 anchors). Which of the two
#    helps the 0.7 / 0.3 matcher of exercise 1, and why?
#    Check: `check_range("objects without a positive anchor, stride 4", n_stride4, 440, 470)`.
# 3. **The NMS threshold.** Set the threshold of `apply_nms` to 0.3 and to 0.8
#    and watch VOC mAP. When do two different objects start suppressing each
#    other, and when do duplicates survive?
#    Check: `check_range("VOC mAP, NMS at 0.3", voc_evaluate(apply_nms(raw, 0.3), targets).mAP,
#    0.83, 0.87)` and the same at 0.8 in [0.65, 0.71].
# 4. **Scores that know nothing.** In `noisy_detections`, make the scores
#    independent of the IoU (e.g. `rng.uniform(0.01, 1, len(src))`) and
#    evaluate at jitter 1.5 as in section 8. Which metric suffers most, and why?
#    Check: `check_range("fall of COCO AP75", ap75_before - ap75_after, 0.1, 0.3)`.
# 5. **How far apart can VOC07 and VOC10 be?** Show that for any ranked list
#    |VOC07 - VOC10| <= 1/11 (compare the 11-point average with the area under
#    the same non-increasing envelope), then build a list that comes close.
#    (Hint: one true positive at the top, many objects.)
#    Check: `check_range("VOC07 - VOC10 of your list", ap07 - ap10, 0.08, 1 / 11)`.
# 6. **Pixel centres.** On a ramp feature map `f[y, x] = x` (8 x 8), pool the
#    box (2, 0, 4, 8) into one bin with `roi_align(..., 1, sampling_ratio=2,
#    aligned=True)` and with `aligned=False`. The box covers pixel columns 2
#    and 3, whose values average 2.5: which setting treats pixel centres
#    correctly, and what does the other one do?
#    Check: `check_range("RoIAlign of the box, aligned=True", value, 2.49, 2.51)`.
