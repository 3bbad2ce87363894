# %% [markdown]
"""
# Lesson 05 — Semantic segmentation: from one label per image to one per pixel

**Lecture idea.** To label every pixel, classify a window around it. Sliding
a classifier over the image repeats most of the work; written as
convolutions ("convolutionized", Long et al. 2015), the same network labels
every window in one pass. Down-sampling gives context but loses detail, so
segmentation networks go down, then up again: nearest-neighbour, bed of
nails, max-unpooling, bilinear interpolation and transposed convolution are
the ways up. FCN adds the scores of finer layers ("skips") to recover
boundaries; U-Net concatenates the encoder's features into a decoder at
every resolution. The per-pixel loss depends on the question: binary
(sigmoid), multiclass (softmax), multilabel (independent sigmoids). Dilated
convolutions give context without down-sampling. Semantic, instance and
panoptic segmentation differ in what counts as one thing.

**What you build.** A crop classifier run as a sliding window and
convolutionized (`convolutionize`, equal outputs, timed); every up-sampling
method by hand on a tiny array, each checked against minidl's op, with the
1-D transposed convolution and its matrix; the checkerboard of stride-2
kernels; FCN with 0, 1 and 2 skips and a U-Net on the shapes data
(`minidl/vision/models/segmentation.py`), scored with pixel accuracy, mean
class accuracy and mean IoU over three seeds; the three per-pixel losses,
with the number that shows softmax is wrong for multilabel targets; a
dilation ablation with receptive fields computed and measured; semantic,
instance and panoptic labels of one image.

**Expected result.** The U-Net reaches a mean IoU above 0.8 on the shapes
test set (0.84-0.90 over seeds 0-3); the FCN with skips beats the coarse FCN.
Full run: under 5 minutes on a 2-core laptop.

*Measured (full run, seed 0: `python lessons/05_segmentation.py`): U-Net
(five epochs) test mean IoU 0.869, pixel accuracy 0.978, mean class accuracy
0.918; with `--seed 1`, `2` and `3` its mean IoU is 0.895, 0.885 and 0.844 (the
check asks for more than 0.8; FCN-4s with the same five epochs gets 0.645-0.661
with those seeds). FCN after one epoch, mean of 3 seeds, mean IoU: FCN-16s (no skip)
0.190, FCN-8s 0.276, FCN-4s 0.356, every seed of FCN-4s above every seed of
FCN-16s. The coarse net is worst where expected, on boundary pixels and
small objects, but the two skips raise every part by about as much (seed 0,
FCN-16s -> FCN-4s: boundary pixels 0.489 -> 0.559, other pixels
0.840 -> 0.902; share of their pixels found, smaller half of the objects
0.005 -> 0.250, larger half 0.132 -> 0.378). FCN-4s with the U-Net's five
epochs: 0.672. Convolutionized, the crop classifier labels
all 2,401 windows of a 96 x 96 image in one pass with 18x fewer multiply-adds
than the sliding window. Multilabel targets: independent sigmoids find both
labels on 72% of the two-label pixels, softmax on none. Dilations
(1, 2, 4, 8, 1) against none, 9,893 parameters each: receptive field 33 vs 11
pixels (computed = measured), mean IoU over three seeds 0.362 vs 0.286 (per seed
0.315, 0.386, 0.386 vs 0.266, 0.297, 0.296). With `--seed 5` it is 0.343 vs 0.296,
and that run's first seed alone has the dilated net behind (0.301 vs 0.310): one
seed is not enough for this comparison. CPU time of the whole run 251 s (seed 0)
and 256 s (seed 5), run side by side (user + sys, one BLAS thread each: about the
wall time on an idle 2-core laptop). Quick run: 10 s of CPU.*

Run: `python lessons/05_segmentation.py [--quick] [--seed S] [--out DIR]`
"""

# %%
import time

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset
from minidl.data.shapes import SHAPE_CLASSES, ShapesDataset
from minidl.optim import Adam
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401
from minidl.utils.training import train_epoch
from minidl.vision import draw, prior_bias
from minidl.vision.models import (
    FCN,
    Backbone,
    UNet,
    bilinear_upsampling_weight,
    conv_norm_relu,
    convolutionize,
    evaluate_segmentation,
    predict_segmentation,
    segmentation_arrays,
    train_segmentation,
)

args = lesson_args("05_segmentation", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

lesson_timer = Timer().__enter__()

# %% [markdown]
# ## The data
#
# `ShapesDataset` (`minidl/data/shapes.py`) with one to three shapes per
# 32 x 32 image, 30% to 60% of the side; every pixel is background (0) or the
# class of the shape that covers it (1 rectangle, 2 ellipse, 3 triangle,
# 4 cross). A shape that would be less than 70% visible (covered by the shapes
# drawn over it) is left out, so that every labelled pixel belongs to a shape
# one can recognize (with the data set's default of 30%, a triangle with two
# thirds hidden is still called a triangle; exercise 6). A training set, a
# validation set and a test set, generated from different seeds.
# `segmentation_arrays` gives images and class maps.

# %%
IMAGE_SIZE, NUM_CLASSES = 32, len(SHAPE_CLASSES)
SIZES = dict(train=192, val=64, test=64) if args.quick else dict(train=6000, val=500, test=1000)


def shapes(n, seed, min_visible=0.7):
    return ShapesDataset(n, image_size=IMAGE_SIZE, min_objects=1, max_objects=3,
                         size_range=(0.3, 0.6), min_visible=min_visible, seed=seed)


train_data = shapes(SIZES["train"], 1000 + args.seed)
val_data, test_data = shapes(SIZES["val"], 2000 + args.seed), shapes(SIZES["test"],
                                                                      3000 + args.seed)
train_x, train_y = segmentation_arrays(train_data)
val_x, val_y = segmentation_arrays(val_data)
test_x, test_y = segmentation_arrays(test_data)
print(f"train images {train_x.shape}, class maps {train_y.shape} {train_y.dtype}")
print("share of pixels per class (train):",
      ", ".join(f"{name} {share:.1%}" for name, share in
                zip(SHAPE_CLASSES, np.bincount(train_y.ravel(), minlength=NUM_CLASSES)
                    / train_y.size)))
fig, axes = plt.subplots(2, 8, figsize=(16, 4.4))
for k in range(8):
    draw.show_image(train_x[k], ax=axes[0, k])
    draw.draw_semantic(train_x[k], train_y[k], ax=axes[1, k], alpha=0.8)
save_figure(fig, args.out / "data.png")

# %% [markdown]
# ## 1. Sliding window versus fully convolutional
#
# The simplest segmenter classifies the centre pixel of a crop. A small CNN
# reads a 16 x 16 crop: a 3x3 convolution without padding (16 -> 14), ReLU,
# 2x2 max-pooling (-> 7), another 3x3 convolution (-> 5), ReLU, then a linear
# layer on the flattened 32 x 5 x 5 map gives 5 class scores. Each image is
# standardized first (`InstanceNorm2d`: each colour channel to mean 0,
# variance 1; the shapes come in random colours) and padded with 8 zero
# pixels, so every pixel can be the centre of a crop. We train it on random
# crops of the training images, each labelled with its centre pixel's class.

# %%
PATCH, PAD = 16, 8
standardize = nn.InstanceNorm2d(3)


def prepared(images):
    """Standardized (per image and channel) and padded with PAD zeros: [N, 3, H + 16, W + 16]."""
    with minidl.no_grad():
        x = standardize(Tensor(images)).data
    return np.pad(x, ((0, 0), (0, 0), (PAD, PAD), (PAD, PAD)))


def random_crops(images, labels, count, rng):
    """``count`` crops [count, 3, 16, 16] of prepared images and the class of each centre."""
    padded = prepared(images)
    n, y, x = (rng.integers(0, m, count) for m in (len(images),) + labels.shape[1:])
    rows, cols = y[:, None] + np.arange(PATCH), x[:, None] + np.arange(PATCH)
    crops = padded[n[:, None, None, None], np.arange(3)[None, :, None, None],
                   rows[:, None, :, None], cols[:, None, None, :]]
    return crops.astype(np.float32), labels[n, y, x]  # the centre (8, 8) of the crop at (y, x)


rng = np.random.default_rng(args.seed)
crops, centre_labels = random_crops(train_x, train_y, 2000 if args.quick else 40000, rng)
minidl.manual_seed(args.seed)
crop_classifier = nn.Sequential(
    nn.Conv2d(3, 16, 3), nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(16, 32, 3), nn.ReLU(),
    nn.Flatten(), nn.Linear(32 * 5 * 5, NUM_CLASSES))
h = Tensor(crops[:4])
for layer in crop_classifier:
    h = layer(h)
    print(f"{type(layer).__name__:>10}: {tuple(h.shape)}")
loader = DataLoader(TensorDataset(crops, centre_labels), batch_size=64, shuffle=True)
optimizer = Adam(crop_classifier.parameters(), lr=3e-3)
CROP_EPOCHS = 1 if args.quick else 3
scheduler = CosineAnnealingLR(optimizer, T_max=CROP_EPOCHS * len(loader))
with Timer() as crop_timer:
    for epoch in range(CROP_EPOCHS):
        loss = train_epoch(crop_classifier, loader, F.cross_entropy, optimizer, scheduler,
                           desc=f"crop classifier epoch {epoch + 1}")
val_crops, val_centres = random_crops(val_x, val_y, 2000, rng)
with minidl.no_grad():
    crop_accuracy = np.mean(crop_classifier.eval()(Tensor(val_crops)).data.argmax(1)
                            == val_centres)
print(f"crop classifier: training loss {loss:.3f}, validation accuracy of the centre pixel "
      f"{crop_accuracy:.3f} ({crop_timer.seconds:.0f} s)")

# %% [markdown]
# **Sliding window.** Classify the crop at every position of a larger image.
# Neighbouring crops overlap in 15 of their 16 columns, and the network
# computes every overlapping feature again for every crop that contains it.
# We slide with a step of 2 pixels (the network's total stride, for the
# comparison below), one crop at a time and as one big batch of crops.
#
# **Convolutionized.** The linear layer reads a 32 x 5 x 5 map; it *is* a 5x5
# convolution with 32 input channels whose weights are the linear layer's
# weights reshaped (`convolutionize` in `minidl/vision/models/segmentation.py`:
# `linear.weight.reshape(5, 32, 5, 5)`). Everything before it is already
# convolutional. So the network, with its head convolutionized, runs on the
# whole image at once and outputs a map of class scores, one per crop
# position, each convolution computing every feature once.

# %%
big = ShapesDataset(1, image_size=96, min_objects=5, max_objects=5, size_range=(0.1, 0.2),
                    seed=4000 + args.seed)
big_x, big_y = segmentation_arrays(big)
padded = prepared(big_x)
positions = range(0, padded.shape[2] - PATCH + 1, 2)
fully_convolutional = nn.Sequential(*list(crop_classifier)[:5],
                                    convolutionize(crop_classifier[6], 32, 5)).eval()

with minidl.no_grad():
    crop = padded[:, :, 40:56, 22:38]
    print("one crop, linear head:        ", np.round(crop_classifier(Tensor(crop)).data[0], 4))
    print("one crop, convolutionized head:",
          np.round(fully_convolutional(Tensor(crop)).data[0, :, 0, 0], 4))
    assert np.allclose(crop_classifier(Tensor(crop)).data[0],
                       fully_convolutional(Tensor(crop)).data[0, :, 0, 0], atol=1e-5)

    timed_rows = positions[:5]   # one crop at a time is slow: time 5 rows, scale to all
    start = time.perf_counter()
    one_by_one = np.array([[crop_classifier(Tensor(padded[:, :, y:y + PATCH, x:x + PATCH])).data[0]
                            for x in positions] for y in timed_rows])    # [rows, cols, classes]
    seconds_loop = (time.perf_counter() - start) * len(positions) / len(timed_rows)
    start = time.perf_counter()
    all_crops = np.stack([padded[0, :, y:y + PATCH, x:x + PATCH] for y in positions
                          for x in positions])
    batched = crop_classifier(Tensor(all_crops)).data.reshape(len(positions), len(positions), -1)
    seconds_batch = time.perf_counter() - start
    start = time.perf_counter()
    dense = fully_convolutional(Tensor(padded)).data[0]                  # [classes, rows, cols]
    seconds_dense = time.perf_counter() - start
dense_hwc = dense.transpose(1, 2, 0)
difference = max(np.abs(one_by_one - dense_hwc[:len(timed_rows)]).max(),
                 np.abs(batched - dense_hwc).max())
print(f"{len(positions) ** 2} crop positions on a 96 x 96 image:")
print(f"  sliding window, one crop at a time: {seconds_loop * 1000:8.1f} ms "
      f"(timed on {len(timed_rows)} of {len(positions)} rows)")
print(f"  sliding window, one batch of crops: {seconds_batch * 1000:8.1f} ms")
print(f"  fully convolutional, one pass:      {seconds_dense * 1000:8.1f} ms")
print(f"  max |sliding window - fully convolutional| = {difference:.1e}")
assert difference < 1e-4


def multiply_adds(net, size):
    """Multiply-adds of the convolutions and linear layers of ``net`` on a [1, 3, size, size]."""
    total, h = 0, Tensor(np.zeros((1, 3, size, size), np.float32))
    for layer in net:
        h = layer(h)
        if isinstance(layer, nn.Conv2d):
            total += h.data.size * layer.weight.data[0].size
        elif isinstance(layer, nn.Linear):
            total += layer.weight.data.size
    return total


with minidl.no_grad():
    per_crop, whole = multiply_adds(crop_classifier, PATCH), multiply_adds(fully_convolutional,
                                                                           padded.shape[2])
print(f"multiply-adds: {per_crop:,} per crop x {len(positions) ** 2} crops = "
      f"{per_crop * len(positions) ** 2:,}; fully convolutional {whole:,} "
      f"({per_crop * len(positions) ** 2 / whole:.0f}x fewer)")

fig, axes = plt.subplots(1, 3, figsize=(12, 4))
draw.show_image(big_x[0], ax=axes[0], title="image")
draw.draw_semantic(big_x[0], big_y[0], ax=axes[1], title="true classes", alpha=0.8)
coarse = np.repeat(np.repeat(dense.argmax(0), 2, axis=0), 2, axis=1)   # stride 2 -> pixels
draw.draw_semantic(big_x[0], coarse[:96, :96], ax=axes[2], alpha=0.8,
                   title=f"crop classifier, convolutionized ({seconds_dense * 1000:.0f} ms)")
save_figure(fig, args.out / "sliding_window.png")

# %% [markdown]
# ## 2. Down, then up: every way to up-sample, by hand and by the library
#
# A segmentation network sees context by down-sampling (strided convolutions,
# pooling) and must come back to the input resolution: an encoder-decoder.
# Each way up on a tiny array first, by hand in NumPy, then with minidl's op.
#
# **Nearest neighbour** copies each value into a 2 x 2 block;
# **bed of nails** puts it in the top-left corner and zeros elsewhere.
# `F.interpolate` (`minidl/ops/upsample.py`, `interpolate` and
# `nearest_source_index`) does the first. The second is a transposed
# convolution with a 1 x 1 kernel equal to 1 and stride 2 (each input value
# is "stamped" at every second position), and also max-unpooling with every
# switch in the top-left corner.

# %%
small = np.array([[1.0, 2.0], [3.0, 4.0]], np.float32)
as_tensor = Tensor(small[None, None])
nearest_by_hand = np.repeat(np.repeat(small, 2, axis=0), 2, axis=1)
nails_by_hand = np.zeros((4, 4), np.float32)
nails_by_hand[::2, ::2] = small
nearest = F.interpolate(as_tensor, scale_factor=2, mode="nearest").data[0, 0]
nails = F.conv_transpose2d(as_tensor, Tensor(np.ones((1, 1, 1, 1), np.float32)), stride=2,
                           output_padding=1).data[0, 0]
top_left = Tensor(np.array([[[[0, 2], [8, 10]]]]))  # flat positions of the corners in 4 x 4
nails_unpool = F.max_unpool2d(as_tensor, top_left, 2).data[0, 0]
print("nearest neighbour:\n", nearest, "\nbed of nails:\n", nails)
assert np.array_equal(nearest, nearest_by_hand)
assert np.array_equal(nails, nails_by_hand) and np.array_equal(nails_unpool, nails_by_hand)

# %% [markdown]
# **Max-unpooling** (Zeiler & Fergus 2014; SegNet) remembers where max-pooling
# found each maximum (the "switches") and puts the value back there. The
# library's `max_pool2d(..., return_indices=True)` returns the switches as
# flat positions in the H x W map; `max_unpool2d` (`minidl/ops/pool.py`,
# `MaxUnpool2dFunction`) scatters the values back.

# %%
x = np.random.default_rng(args.seed).permutation(16).astype(np.float32).reshape(4, 4)
windows = x.reshape(2, 2, 2, 2).transpose(0, 2, 1, 3).reshape(2, 2, 4)   # [oy, ox, 4 values]
pooled_by_hand = windows.max(axis=2)
unpooled_by_hand = np.zeros_like(x)
for oy in range(2):
    for ox in range(2):
        i, j = divmod(int(windows[oy, ox].argmax()), 2)        # the switch inside the window
        unpooled_by_hand[2 * oy + i, 2 * ox + j] = pooled_by_hand[oy, ox]
pooled, switches = F.max_pool2d(Tensor(x[None, None]), 2, return_indices=True)
unpooled = F.max_unpool2d(pooled, switches, 2).data[0, 0]
print("input:\n", x, "\nswitches (flat positions):", switches.data.ravel(),
      "\nmax-unpooled:\n", unpooled)
assert np.array_equal(pooled.data[0, 0], pooled_by_hand)
assert np.array_equal(unpooled, unpooled_by_hand)

# %% [markdown]
# **Bilinear interpolation** reads each output pixel between the four nearest
# input pixels. With `align_corners=False` (PyTorch's default) pixels are unit
# squares: output pixel o has its centre at input position
# (o + 0.5) / 2 - 0.5, clamped at 0, and mixes the two neighbours around it
# with weights given by the distances (`bilinear_source` in
# `minidl/ops/upsample.py`). Rows first, then columns.

# %%
def linear_weights(n_in, n_out):
    """The [n_out, n_in] matrix of 1-D linear interpolation, align_corners=False."""
    source = np.maximum((np.arange(n_out) + 0.5) * n_in / n_out - 0.5, 0)
    left = np.minimum(np.floor(source).astype(int), n_in - 1)
    right = np.minimum(left + 1, n_in - 1)
    matrix = np.zeros((n_out, n_in))
    np.add.at(matrix, (np.arange(n_out), left), 1 - (source - left))
    np.add.at(matrix, (np.arange(n_out), right), source - left)
    return matrix


bilinear_by_hand = linear_weights(2, 4) @ small @ linear_weights(2, 4).T
bilinear = F.interpolate(as_tensor, scale_factor=2, mode="bilinear").data[0, 0]
print("bilinear:\n", bilinear)
assert np.allclose(bilinear, bilinear_by_hand, atol=1e-6)

# %% [markdown]
# **Transposed convolution** (learnable up-sampling). The lecture's 1-D
# example: input (a, b), filter (x, y, z), stride 2. Each input value scales a
# copy of the filter, and the copies are placed 2 apart and summed where they
# overlap:
#
#     a * (x, y, z, 0, 0) + b * (0, 0, x, y, z) = (ax, ay, az + bx, by, bz)
#
# The library computes it as `col2im(W^T @ x)` (`ConvTranspose2dFunction` in
# `minidl/ops/conv.py`, `_correlate_adjoint`); a 1-D signal is a 2-D image of
# height 1.

# %%
a, b = 2.0, 3.0
x_, y_, z_ = 1.0, 10.0, 100.0
by_hand = np.zeros(5)
for position, value in zip((0, 2), (a, b)):        # each input stamps a scaled filter copy
    by_hand[position:position + 3] += value * np.array([x_, y_, z_])
library = F.conv_transpose2d(Tensor(np.array([[[[a, b]]]])), Tensor(np.array([[[[x_, y_, z_]]]])),
                             stride=(1, 2)).data.ravel()
print(f"1-D transposed conv of ({a:g}, {b:g}) with ({x_:g}, {y_:g}, {z_:g}), stride 2: by hand "
      f"{by_hand}, library {library}")
assert np.array_equal(by_hand, [a * x_, a * y_, a * z_ + b * x_, b * y_, b * z_])
assert np.allclose(library, by_hand)

# %% [markdown]
# **The matrix view.** A convolution is a linear map, so it is a matrix C: the
# stride-2 convolution of a length-5 signal with (x, y, z) is
#
#     C = [[x, y, z, 0, 0],
#          [0, 0, x, y, z]]        (2 outputs from 5 inputs)
#
# and the transposed convolution multiplies by C^T (5 outputs from 2 inputs):
# the same numbers as above, hence the name. C^T is also what backpropagation
# through the convolution computes: the gradient of conv(x) . g with respect to
# x is C^T g. In 2-D we build C column by column (the convolution of each
# basis image) and check both facts.

# %%
C = np.array([[x_, y_, z_, 0, 0], [0, 0, x_, y_, z_]])
assert np.allclose(C.T @ np.array([a, b]), library)
signal = np.array([[[[1.0, -2.0, 0.5, 3.0, 1.0]]]])
assert np.allclose(F.conv2d(Tensor(signal), Tensor(np.array([[[[x_, y_, z_]]]])),
                            stride=(1, 2)).data.ravel(), C @ signal.ravel())

weight_2d = np.random.default_rng(args.seed).normal(size=(1, 1, 3, 3))
basis = np.eye(25).reshape(25, 1, 5, 5)
C2 = F.conv2d(Tensor(basis), Tensor(weight_2d), stride=2).data.reshape(25, -1).T  # [4, 25]
g = np.random.default_rng(args.seed + 1).normal(size=(1, 1, 2, 2))
transposed = F.conv_transpose2d(Tensor(g), Tensor(weight_2d), stride=2).data.ravel()
image_5x5 = Tensor(np.zeros((1, 1, 5, 5)), requires_grad=True)
(F.conv2d(image_5x5, Tensor(weight_2d), stride=2) * Tensor(g)).sum().backward()
print(f"2-D: C is {C2.shape[0]} x {C2.shape[1]}; max |conv_transpose2d(g) - C^T g| = "
      f"{np.abs(transposed - C2.T @ g.ravel()).max():.1e}, max |gradient - C^T g| = "
      f"{np.abs(image_5x5.grad.ravel() - C2.T @ g.ravel()).max():.1e}")
assert np.allclose(transposed, C2.T @ g.ravel()) and np.allclose(image_5x5.grad.ravel(),
                                                                 C2.T @ g.ravel())

# %% [markdown]
# **Bilinear as a transposed convolution.** With the tent filter
# (0.25, 0.75, 0.75, 0.25) in each direction, stride 2 and padding 1, a
# transposed convolution is bilinear up-sampling, except at the border
# (where it sees zero padding and bilinear interpolation repeats the edge).
# FCN initializes its learned up-sampling layers to this filter
# (`bilinear_upsampling_weight`).

# %%
ramp = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
tent = F.conv_transpose2d(Tensor(ramp), Tensor(bilinear_upsampling_weight(1, 2)), stride=2,
                          padding=1).data[0, 0]
interpolated = F.interpolate(Tensor(ramp), scale_factor=2, mode="bilinear").data[0, 0]
print("bilinear transposed conv - bilinear interpolation:\n", tent - interpolated)
assert np.allclose(tent[1:-1, 1:-1], interpolated[1:-1, 1:-1])

# %% [markdown]
# **The checkerboard** (Odena, Dumoulin, Olah, "Deconvolution and
# Checkerboard Artifacts", Distill 2016). A stride-2 transposed convolution
# with a 3 x 3 kernel stamps overlapping copies: some output pixels receive
# one copy, some two, some four. Even with every weight equal, a constant
# input gives an uneven output. A 4 x 4 kernel overlaps evenly (each pixel gets
# 2 x 2 copies); so does resizing (nearest) followed by a 3 x 3 convolution.

# %%
flat = Tensor(np.ones((1, 1, 8, 8), np.float32))
ones = {k: Tensor(np.ones((1, 1, k, k), np.float32)) for k in (3, 4)}
patterns = {
    "transposed conv, k3 s2": F.conv_transpose2d(flat, ones[3], stride=2, padding=1,
                                                 output_padding=1).data[0, 0],
    "transposed conv, k4 s2": F.conv_transpose2d(flat, ones[4], stride=2, padding=1).data[0, 0],
    "nearest x2 + conv k3": F.conv2d(F.interpolate(flat, scale_factor=2), ones[3],
                                     padding=1).data[0, 0],
}
fig, axes = plt.subplots(1, 3, figsize=(12, 3.8))
unevenness = {}
for ax, (name, pattern) in zip(axes, patterns.items()):
    interior = pattern[2:-2, 2:-2]
    unevenness[name] = interior.max() / interior.min()
    ax.imshow(pattern, cmap="gray")
    ax.set(title=f"{name}\ninterior max / min = {unevenness[name]:.0f}", xticks=[], yticks=[])
    print(f"{name:>24}: interior values {sorted(set(interior.ravel().tolist()))}")
save_figure(fig, args.out / "checkerboard.png")
assert unevenness["transposed conv, k3 s2"] == 4
assert unevenness["transposed conv, k4 s2"] == 1 and unevenness["nearest x2 + conv k3"] == 1

# %% [markdown]
# ## 3. FCN: one coarse up-sampling, or skips from finer layers
#
# FCN (Long, Shelhamer, Darrell 2015; `FCN` in
# `minidl/vision/models/segmentation.py`) puts a 1x1 convolution on the
# backbone's last map to get class scores and up-samples them bilinearly to
# the image. Our backbone (`Backbone`) has 4 stages (strides 2, 4, 8, 16;
# 8, 16, 32, 64 channels): on a 32 x 32 image the last map is 2 x 2, so the
# coarse net paints each image with 2 x 2 blurry blobs. (The paper's coarsest
# net, FCN-32s, has 16 x 16 scores on 500-pixel images: ours is much coarser
# relative to the image, which gives the skips more to do.) FCN-16s and FCN-8s
# add the scores of finer maps: up-sample the coarse scores x2 (a learned
# transposed convolution started at bilinear, `bilinear_upsampling_weight`),
# add the scores of the next finer map, repeat. The names give the stride of
# the finest scores: here FCN-16s (no skip), FCN-8s (one) and FCN-4s (two).
# The skip scores start at zero, so every variant starts as the coarse net
# (the paper's initialization). The paper trains FCN-16s from a trained
# FCN-32s ("in stages"); we train each from scratch ("all at once", which
# the journal version of the paper found as good).
#
# Every network of this lesson is trained with one recipe: Adam, learning
# rate 6e-3 with a cosine schedule, batches of 16 (picked in trial runs of the
# U-Net scored on a validation split of their own, never on the test set).
# Each FCN gets one epoch (375 steps) and three seeds, and is scored on the test set
# with the three measures of the paper's section 5 (`segmentation_scores` in
# `minidl/vision/metrics/segmentation.py`), over one confusion matrix of all test pixels:
# pixel accuracy, mean class accuracy, mean IoU.

# %%
WIDTHS = (8, 16, 32, 64)        # the backbone of every FCN, and the U-Net's resolutions
SEEDS = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]
FCN_EPOCHS = 1
test_loader = DataLoader(TensorDataset(test_x, test_y), batch_size=100)
val_loader = DataLoader(TensorDataset(val_x, val_y), batch_size=100)


def fit(make, epochs, seed, data=(train_x, train_y), loss_fn=F.cross_entropy, lr=6e-3,
        batch_size=16, name="model", val=None):
    """Build ``make()`` with ``seed`` and train it (``train_segmentation``); returns
    (model, history)."""
    minidl.manual_seed(seed)
    model = make()
    loader = DataLoader(TensorDataset(*data), batch_size=batch_size, shuffle=True)
    optimizer = Adam(model.parameters(), lr=lr)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    history = train_segmentation(model, loader, optimizer, epochs, loss_fn, scheduler,
                                 val_loader=val, num_classes=NUM_CLASSES if val else None,
                                 desc=name)
    return model, history


def fcn(skips):
    return lambda: FCN(Backbone(widths=WIDTHS, standardize_input=True), NUM_CLASSES, skips)


print(fcn(2)())
x = Tensor(train_x[:4])
with minidl.no_grad():
    model = fcn(2)()
    maps = model.backbone.features(x)
    for stride, m in zip(model.backbone.strides, maps):
        print(f"backbone map at stride {stride:2d}: {tuple(m.shape)}")
    print(f"FCN scores at the image size: {tuple(model(x).shape)}")

COLUMNS = ("pixel_accuracy", "mean_class_accuracy", "mean_iou")
fcn_scores, fcn_models = {}, {}
with Timer() as fcn_timer:
    for skips in (0, 1, 2):
        for seed in SEEDS:
            model, _ = fit(fcn(skips), FCN_EPOCHS, seed, name=f"FCN skips {skips} seed {seed}")
            scores = evaluate_segmentation(model, test_loader, NUM_CLASSES)
            fcn_scores.setdefault(model.name, []).append(scores)
            if seed == args.seed:
                fcn_models[model.name] = model
        print(f"{model.name}: " + ", ".join(
            f"{c} {np.mean([s[c] for s in fcn_scores[model.name]]):.3f}" for c in COLUMNS),
            flush=True)
print(f"  {fcn_timer.seconds:.0f} s for {3 * len(SEEDS)} runs")

# %% [markdown]
# **Where do the skips help?** Two places the coarse net should find hard:
# pixels at a class boundary (within one pixel of a pixel of another class)
# and small objects. For each variant (seed 0's model): accuracy on boundary
# pixels and on the other pixels, and the share of each object's pixels
# labelled with its class, for the smaller and the larger half of the test
# objects. The last row, the gain from no skip to two skips, says whether
# the skips help *more* at boundaries and on small objects than elsewhere.

# %%
def boundary_pixels(labels):
    """[N, H, W] bool: pixels with a different class among their 8 neighbours."""
    padded = np.pad(labels, ((0, 0), (1, 1), (1, 1)), mode="edge")
    h, w = labels.shape[1:]
    different = np.zeros(labels.shape, bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            different |= padded[:, 1 + dy:1 + dy + h, 1 + dx:1 + dx + w] != labels
    return different


def object_recall(predicted, data, labels):
    """Per object of ``data``: its area and the share of its pixels predicted as its class."""
    areas, recalls = [], []
    for n in range(len(data)):
        for slot in np.flatnonzero(data.slot_labels[n]):
            mask = data.instance_ids[n] == slot + 1
            areas.append(mask.sum())
            recalls.append(np.mean(predicted[n][mask] == data.slot_labels[n, slot]))
    return np.array(areas), np.array(recalls)


at_boundary = boundary_pixels(test_y)
areas, _ = object_recall(test_y, test_data, test_y)
median_area = np.median(areas)
detail = {}
for name, model in fcn_models.items():
    predicted = predict_segmentation(model, test_x)
    areas, recalls = object_recall(predicted, test_data, test_y)
    detail[name] = {
        "boundary": np.mean(predicted[at_boundary] == test_y[at_boundary]),
        "interior": np.mean(predicted[~at_boundary] == test_y[~at_boundary]),
        "small objects": recalls[areas < median_area].mean(),
        "large objects": recalls[areas >= median_area].mean()}
print(f"{at_boundary.mean():.1%} of the test pixels are boundary pixels; objects split at "
      f"{median_area:.0f} pixels")
print(f"{'':>8} " + " ".join(f"{k:>14}" for k in next(iter(detail.values()))))
for name, values in detail.items():
    print(f"{name:>8} " + " ".join(f"{v:14.3f}" for v in values.values()))
coarse_detail, fine_detail = list(detail.values())[0], list(detail.values())[-1]
print(f"{'gain':>8} " + " ".join(f"{fine_detail[k] - coarse_detail[k]:+14.3f}"
                                  for k in coarse_detail))

fig, axes = plt.subplots(4, 6, figsize=(13, 9))
for k in range(6):
    draw.draw_semantic(test_x[k], test_y[k], ax=axes[0, k], alpha=0.8,
                       title="truth" if k == 0 else None)
    for row, (name, model) in enumerate(fcn_models.items(), start=1):
        draw.draw_semantic(test_x[k], predict_segmentation(model, test_x[k:k + 1])[0],
                           ax=axes[row, k], alpha=0.8, title=name if k == 0 else None)
save_figure(fig, args.out / "fcn_variants.png")

# %% [markdown]
# ## 4. U-Net
#
# U-Net (Ronneberger, Fischer, Brox 2015; `UNet` in
# `minidl/vision/models/segmentation.py`) keeps every resolution: the encoder
# halves it stage by stage, the decoder doubles it back with 2x2 transposed
# convolutions, and at each resolution the decoder *concatenates* the
# encoder's map of that resolution (a skip of features, not of scores) before
# two 3x3 convolutions. Our version pads its convolutions (so no cropping)
# and down-samples with stride-2 convolutions (the `Backbone` stages) instead
# of max-pooling. Its encoder has the FCNs' widths (8, 16, 32, 64); it is
# trained for five epochs (1,875 steps), with the validation mean IoU after
# each. Shapes, block by block:

# %%
UNET_EPOCHS = 1 if args.quick else 5
minidl.manual_seed(args.seed)
unet = UNet(3, NUM_CLASSES, WIDTHS, standardize_input=True)
with minidl.no_grad():
    skips = [unet.stem(unet.standardize(x))]
    print(f"{'stem':>28}: {tuple(skips[0].shape)}")
    for stage, stride in zip(unet.encoder.stages, unet.encoder.strides):
        skips.append(stage(skips[-1]))
        print(f"{f'encoder, stride {stride}':>28}: {tuple(skips[-1].shape)}")
    y = skips[-1]
    for level in range(len(WIDTHS) - 2, -1, -1):
        up = unet.up[level](y)
        joined = F.cat([skips[level], up], dim=1)
        y = unet.decoder[level](joined)
        print(f"{f'up to stride {2 ** level}':>28}: {tuple(up.shape)} + skip "
              f"{tuple(skips[level].shape)} -> {tuple(joined.shape)} -> {tuple(y.shape)}")
    print(f"{'1x1 conv to class scores':>28}: {tuple(unet.head(y).shape)}")
print(f"U-Net {sum(p.data.size for p in unet.parameters()):,} parameters; FCN "
      f"{sum(p.data.size for p in fcn(2)().parameters()):,}")

with Timer() as unet_timer:
    unet, unet_history = fit(lambda: UNet(3, NUM_CLASSES, WIDTHS, standardize_input=True),
                             UNET_EPOCHS, args.seed, name="U-Net", val=val_loader)
unet_scores = evaluate_segmentation(unet, test_loader, NUM_CLASSES)
print(f"U-Net ({unet_timer.seconds:.0f} s): validation mean IoU by epoch "
      + " ".join(f"{v:.3f}" for v in unet_history["val_mean_iou"]))
print("U-Net test: " + ", ".join(f"{c} {unet_scores[c]:.3f}" for c in COLUMNS))
print("  IoU per class: " + ", ".join(f"{n} {v:.3f}" for n, v in zip(SHAPE_CLASSES,
                                                                      unet_scores["iou"])))
unet_predicted = predict_segmentation(unet, test_x)
fig, axes = plt.subplots(3, 8, figsize=(16, 6.4))
for k in range(8):
    draw.show_image(test_x[k], ax=axes[0, k])
    draw.draw_semantic(test_x[k], test_y[k], ax=axes[1, k], alpha=0.8,
                       title="truth" if k == 0 else None)
    draw.draw_semantic(test_x[k], unet_predicted[k], ax=axes[2, k], alpha=0.8,
                       title="U-Net" if k == 0 else None)
save_figure(fig, args.out / "unet_predictions.png")

# %% [markdown]
# **Side by side** on the test set. The FCNs of section 3 had one epoch, the
# U-Net five; to compare the architectures at the same budget, FCN-4s is
# trained once more for five epochs (seed 0).

# %%
with Timer() as long_fcn_timer:
    long_fcn, _ = fit(fcn(2), UNET_EPOCHS, args.seed, name=f"FCN-4s, {UNET_EPOCHS} epochs")
long_fcn_scores = evaluate_segmentation(long_fcn, test_loader, NUM_CLASSES)
print(f"FCN-4s, {UNET_EPOCHS} epochs: {long_fcn_timer.seconds:.0f} s")
print(f"{'model':>22} " + " ".join(f"{c:>22}" for c in COLUMNS))
for name, runs in fcn_scores.items():
    print(f"{f'{name}, 1 epoch':>22} " + " ".join(
        f"{np.mean([s[c] for s in runs]):10.3f} ({min(s[c] for s in runs):.3f}-"
        f"{max(s[c] for s in runs):.3f})" for c in COLUMNS))
for name, scores in ((f"FCN-4s, {UNET_EPOCHS} epochs", long_fcn_scores),
                     (f"U-Net, {UNET_EPOCHS} epochs", unet_scores)):
    print(f"{name:>22} " + " ".join(f"{scores[c]:10.3f}{'':12}" for c in COLUMNS))

# %% [markdown]
# ## 5. Three kinds of per-pixel loss
#
# * **Binary**: one question per pixel, "is it foreground?". One output
#   channel z; p = sigmoid(z); binary cross-entropy
#   -[t log p + (1 - t) log(1 - p)] (`F.binary_cross_entropy_with_logits`,
#   `BinaryCrossEntropyWithLogits` in `minidl/ops/loss.py`, computed from z
#   without forming p, for stability).
# * **Multiclass**: each pixel has exactly one of K classes. K channels;
#   softmax over the channels; cross-entropy -log p_class (`F.cross_entropy`,
#   which takes [N, K, H, W] logits and [N, H, W] labels). Sections 3 and 4.
# * **Multilabel**: a pixel may carry several labels at once. K channels,
#   one independent sigmoid and binary cross-entropy each.
#
# A multilabel target, after DCAN (Chen et al., CVPR 2016, which segments
# glands and their contours with two sigmoid outputs, to split touching
# glands): label 1, "object", on every pixel of a shape; label 2, "contour",
# on the shape's pixels that touch another shape or the background.
# Background pixels carry no label, inner pixels one, contour pixels two.
# Softmax makes the labels compete for one unit of probability: to say
# "object *and* contour" it can at best give each 0.5, and the usual question
# "is this label present?" (p > 0.5) then gets a no for both. Softmax gets a
# third channel, "no label", for the background, and is trained with
# cross-entropy against the target spread evenly over the pixel's labels
# (probability targets, also `F.cross_entropy`).
#
# Each of the three is a smaller U-Net (three resolutions, 8, 16, 32
# channels) trained for one epoch: 2,000 images for the binary one, 4,000
# for the two multilabel ones. Each net's last bias starts at the labels'
# frequencies (log-odds for a sigmoid, `prior_bias` in
# `minidl/vision/loss.py` as in RetinaNet; log-frequencies for the softmax),
# so no net spends its first steps learning that most pixels are background.
# Scored on the test set.

# %%
def labels_of(data):
    """[N, 2, H, W] float32 0/1: 'object', and 'contour' (an object pixel with an
    8-neighbour of another object or of the background)."""
    _, semantic = segmentation_arrays(data)
    contour = boundary_pixels(data.instance_ids.astype(np.int64)) & (semantic > 0)
    return np.stack([semantic > 0, contour], axis=1).astype(np.float32)


def softmax_target(labels):
    """Spread one unit of probability over each pixel's labels; 'no label' for background."""
    nothing = (labels.sum(axis=1, keepdims=True) == 0).astype(np.float32)
    full = np.concatenate([labels, nothing], axis=1)
    return full / full.sum(axis=1, keepdims=True)


def unet_from_prior(channels, frequencies, softmax):
    """A small U-Net whose last bias makes its first outputs the label frequencies."""
    def make():
        model = UNet(3, channels, WIDTHS[:3], standardize_input=True)
        model.head.bias.data[...] = (np.log(frequencies) if softmax else
                                     [prior_bias(f) for f in frequencies])
        return model
    return make


multilabel = {"train": labels_of(train_data)[:4000], "test": labels_of(test_data)}
count = multilabel["train"].sum(axis=1)
print("labels per pixel (train): " + ", ".join(f"{k}: {np.mean(count == k):.1%}"
                                                for k in range(3)))
is_object = (train_y[:2000] > 0).astype(np.float32)
soft = softmax_target(multilabel["train"])
with Timer() as losses_timer:
    binary, _ = fit(unet_from_prior(1, [is_object.mean()], False), 1, args.seed,
                    (train_x[:2000], is_object),
                    lambda z, t: F.binary_cross_entropy_with_logits(z[:, 0], t), name="binary")
    sigmoid_net, _ = fit(unet_from_prior(2, multilabel["train"].mean(axis=(0, 2, 3)), False), 1,
                         args.seed, (train_x[:4000], multilabel["train"]),
                         F.binary_cross_entropy_with_logits, name="multilabel, sigmoid")
    softmax_net, _ = fit(unet_from_prior(3, soft.mean(axis=(0, 2, 3)), True), 1, args.seed,
                         (train_x[:4000], soft), F.cross_entropy, name="multilabel, softmax")


def probabilities(model, images, softmax):
    """Each label's probability [N, 2 (or 1), H, W] (softmax: without the 'no label' channel)."""
    model.eval()
    with minidl.no_grad():
        z = model(Tensor(images))
        return F.softmax(z, dim=1).data[:, :2] if softmax else F.sigmoid(z).data


foreground = probabilities(binary, test_x, False)[:, 0] > 0.5
binary_iou = np.sum(foreground & (test_y > 0)) / np.sum(foreground | (test_y > 0))
print(f"binary (sigmoid + BCE): foreground IoU {binary_iou:.3f} on the test set")

truth = multilabel["test"].astype(bool)
two = truth.sum(axis=1) == 2                                     # contour pixels: 2 labels
multilabel_rows = {}
for name, softmax in (("sigmoid", False), ("softmax", True)):
    p = probabilities(softmax_net if softmax else sigmoid_net, test_x, softmax)
    present = p > 0.5
    iou = [np.sum(present[:, k] & truth[:, k]) / np.sum(present[:, k] | truth[:, k])
           for k in range(2)]
    multilabel_rows[name] = {
        "IoU of 'object' (p > 0.5)": iou[0],
        "IoU of 'contour' (p > 0.5)": iou[1],
        "both labels found, 2-label pixels": np.mean(present[:, 0][two] & present[:, 1][two]),
        "mean p of a present label, 2-label pixels": np.moveaxis(p, 1, -1)[two].mean(),
    }
print(f"{np.mean(two):.1%} of the test pixels carry two labels "
      f"({losses_timer.seconds:.0f} s for the three nets)")
print(f"{'':>44} {'sigmoid':>8} {'softmax':>8}")
for what in multilabel_rows["sigmoid"]:
    print(f"{what:>44} {multilabel_rows['sigmoid'][what]:8.3f} "
          f"{multilabel_rows['softmax'][what]:8.3f}")

# %% [markdown]
# ## 6. Dilated convolutions: context without down-sampling
#
# A 3x3 convolution with dilation d reads pixels d apart: the same 9 weights
# see a (2d + 1) x (2d + 1) window (Yu & Koltun 2016; DeepLab). Stacking
# blocks with dilations 1, 2, 4, 8 grows the receptive field exponentially at
# full resolution. Two networks with the same parameters: five
# conv-BN-ReLU blocks of 16 channels at full resolution (`conv_norm_relu(...,
# dilation=d)` in `minidl/vision/models/backbone.py`, padding d keeps the
# size) and a 1x1 convolution to the classes; dilations (1, 1, 1, 1, 1)
# against (1, 2, 4, 8, 1), each trained for one epoch on 4,000 images with the
# same three seeds as the FCNs and scored on the test set (one seed is not
# enough here: with some initializations the dilated net ends its epoch no better
# than the plain one). The receptive field along each axis is
# r = 1 + sum over layers of (k - 1) d = 1 + 2 sum(d) (lesson 02, section 7):
# 11 against 33 pixels. We measure it with autograd: the input pixels with a
# non-zero gradient of the centre output pixel, on 64 x 64 noise images (the
# network is fully convolutional, and 33 pixels would not fit around the
# centre of a 32-pixel image), summed over a batch so that no pixel hides
# behind a ReLU that happens to be off. The first layer, the per-image
# standardization, is left out of the measurement: its mean and variance
# read every pixel of the image, so through it every output depends a little
# on every input.

# %%
DILATIONS = {"no dilation": (1, 1, 1, 1, 1), "dilations 1, 2, 4, 8, 1": (1, 2, 4, 8, 1)}


def dilated_net(dilations, width=16):
    blocks = [conv_norm_relu(3 if i == 0 else width, width, dilation=d)
              for i, d in enumerate(dilations)]
    return nn.Sequential(nn.InstanceNorm2d(3), *blocks, nn.Conv2d(width, NUM_CLASSES, 1))


def measured_receptive_field(model, images):
    """Width of the square of input pixels that the centre output pixel depends on."""
    model.eval()
    x = Tensor(images, requires_grad=True)
    centre = images.shape[-1] // 2
    model(x)[:, :, centre, centre].sum().backward()
    rows = np.flatnonzero(np.abs(x.grad).sum(axis=(0, 1, 3)) > 0)
    return int(rows[-1] - rows[0] + 1)


noise = np.random.default_rng(args.seed).random((4, 3, 64, 64), dtype=np.float32)
dilation_results = {}
with Timer() as dilation_timer:
    for name, dilations in DILATIONS.items():
        runs = []
        for seed in SEEDS:
            model, _ = fit(lambda d=dilations: dilated_net(d), 1, seed,
                           (train_x[:4000], train_y[:4000]), name=name)
            scores = evaluate_segmentation(model, test_loader, NUM_CLASSES)
            # the receptive field is measured after the standardization (model[1:])
            runs.append({"measured": measured_receptive_field(model[1:], noise), **scores})
        dilation_results[name] = {
            "parameters": sum(p.data.size for p in model.parameters()),
            "computed": 1 + 2 * sum(dilations),
            "measured": sorted({r["measured"] for r in runs}),
            "per_seed": [r["mean_iou"] for r in runs],
            "mean_iou": np.mean([r["mean_iou"] for r in runs]),
            "pixel_accuracy": np.mean([r["pixel_accuracy"] for r in runs])}
print(f"({dilation_timer.seconds:.0f} s)")
print(f"{'':>24} {'parameters':>10} {'RF computed':>11} {'RF measured':>11} "
      f"{'mean IoU':>9}   per seed")
for name, r in dilation_results.items():
    print(f"{name:>24} {r['parameters']:10,} {r['computed']:11d} "
          f"{', '.join(map(str, r['measured'])):>11} {r['mean_iou']:9.3f}   "
          + " ".join(f"{v:.3f}" for v in r["per_seed"]))
    assert r["measured"] == [r["computed"]]   # every seed's net

# %% [markdown]
# ## 7. Semantic, instance and panoptic segmentation
#
# Semantic segmentation labels pixels with classes, so two touching objects of
# one class become one region: it cannot count them. Instance segmentation
# gives each object its own mask (lesson 09 builds Mask R-CNN) but says
# nothing about the background ("stuff": road, sky, grass, which has no
# instances). Panoptic segmentation (Kirillov et al., CVPR 2019) gives every
# pixel both: a class, and for "things" an instance id. The data set carries
# all three for free; we find a test image where two shapes of one class
# touch and count its regions.

# %%
def regions(mask):
    """Number of 4-connected regions of a boolean [H, W] mask (a flood fill)."""
    seen, count = np.zeros_like(mask), 0
    for start in zip(*np.nonzero(mask)):
        if seen[start]:
            continue
        count, stack = count + 1, [start]
        while stack:
            y, x = stack.pop()
            if 0 <= y < mask.shape[0] and 0 <= x < mask.shape[1] and mask[y, x] \
                    and not seen[y, x]:
                seen[y, x] = True
                stack += [(y + 1, x), (y - 1, x), (y, x + 1), (y, x - 1)]
    return count


def touching_same_class(data, semantic):
    """First image index, and class, with fewer regions of a class than objects of it."""
    for n in range(len(data)):
        labels = data.slot_labels[n][data.slot_labels[n] > 0]
        for c in np.unique(labels):
            if regions(semantic[n] == c) < np.sum(labels == c):
                return n, int(c)
    return None, None


scene = shapes(200, 5000 + args.seed, min_visible=0.5)
scene_x, scene_y = segmentation_arrays(scene)
n, c = touching_same_class(scene, scene_y)
image, target = scene[n]
instances = np.sum(target["labels"] == c)
print(f"image {n}: {instances} {SHAPE_CLASSES[c]}s touch: semantic segmentation sees "
      f"{regions(scene_y[n] == c)} {SHAPE_CLASSES[c]} region, instance segmentation "
      f"{instances} objects")
panoptic = np.where(scene.instance_ids[n] > 0, 1000 * scene_y[n] + scene.instance_ids[n], 0)
print("panoptic ids (class * 1000 + instance; 0 = background 'stuff'):",
      sorted(np.unique(panoptic).tolist()))

fig, axes = plt.subplots(1, 4, figsize=(14, 3.8))
draw.show_image(image, ax=axes[0], title="image")
draw.draw_semantic(image, scene_y[n], ax=axes[1], alpha=0.8, title="semantic: classes")
draw.draw_masks(image, target["masks"], ax=axes[2], alpha=0.8,
                title="instance: one mask per object")
panoptic_colours = np.unique(panoptic, return_inverse=True)[1].reshape(panoptic.shape)
axes[3].imshow(panoptic_colours, cmap="tab10", interpolation="nearest")
axes[3].set(title="panoptic: stuff + every thing", xticks=[], yticks=[])
save_figure(fig, args.out / "semantic_instance_panoptic.png")

# %% [markdown]
# ## 8. What we measured
#
# The run prints its table here (full run, seed 0, in the header above).

# %%
fcn_mean = {name: {c: np.mean([s[c] for s in runs]) for c in COLUMNS}
            for name, runs in fcn_scores.items()}
print(f"{'test set':>34} " + " ".join(f"{c:>20}" for c in COLUMNS))
for name, values in fcn_mean.items():
    print(f"{name + f' (1 epoch, {len(SEEDS)} seeds)':>34} " + " ".join(
        f"{v:20.3f}" for v in values.values()))
print(f"{f'FCN-4s ({UNET_EPOCHS} epochs)':>34} " + " ".join(f"{long_fcn_scores[c]:20.3f}"
                                                         for c in COLUMNS))
print(f"{f'U-Net ({UNET_EPOCHS} epochs)':>34} " + " ".join(f"{unet_scores[c]:20.3f}"
                                                        for c in COLUMNS))
for name, r in dilation_results.items():
    print(f"{name + f' ({len(SEEDS)} seeds)':>34} {r['pixel_accuracy']:20.3f} {'':>20} "
          f"{r['mean_iou']:20.3f}")
lesson_timer.__exit__()
print(f"whole lesson: {lesson_timer.seconds:.0f} s")

if not args.quick:
    coarse, one_skip, two_skips = fcn_mean.values()
    # The promised results: the U-Net's mean IoU; skips beat the coarse FCN.
    assert unet_scores["mean_iou"] > 0.8, unet_scores["mean_iou"]
    assert two_skips["mean_iou"] > coarse["mean_iou"] and one_skip["mean_iou"] > coarse["mean_iou"]
    assert min(s["mean_iou"] for s in list(fcn_scores.values())[2]) > \
        max(s["mean_iou"] for s in list(fcn_scores.values())[0])   # for every seed
    assert unet_scores["mean_iou"] > long_fcn_scores["mean_iou"] > two_skips["mean_iou"]
    # Softmax cannot say "both" at p > 0.5; independent sigmoids can.
    assert multilabel_rows["softmax"]["both labels found, 2-label pixels"] < 0.05
    assert multilabel_rows["sigmoid"]["both labels found, 2-label pixels"] > 0.5
    # Dilation: same parameters, 3x the receptive field, better mean IoU (over the seeds).
    plain, dilated = dilation_results.values()
    assert plain["parameters"] == dilated["parameters"]
    assert dilated["mean_iou"] > plain["mean_iou"]

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **Convolutionize with a stride.** Slide the crop classifier of section 1
#    with a step of 1 pixel instead of 2. The convolutionized network cannot
#    do that in one pass (its max-pooling has stride 2). Run it on the image
#    shifted by one pixel in x, in y, and in both, and interleave the four
#    maps ("shift-and-stitch", Long et al. 2015, section 3.2). Check that the
#    result equals the stride-1 sliding window.
#    Check: `check_range("max |stitched - sliding|", difference, 0.0, 1e-4)`.
# 2. **Learned up-sampling in FCN.** Freeze FCN's `up2` layers at their
#    bilinear start (`layer.weight.requires_grad = False`, or leave them out
#    of the optimizer) and retrain FCN-4s. Does learning them matter here?
#    Check (seed 0, one epoch): `check_range("FCN-4s mean IoU, bilinear fixed",
#    scores["mean_iou"], 0.30, 0.42)`.
# 3. **Concatenate or add?** Change `UNet.forward` to add the up-sampled map
#    to the skip instead of concatenating (the decoder's first convolution
#    then reads `widths[level]` channels) and retrain it as in section 4.
#    Does it lose anything on these shapes? Compare the parameter counts, and
#    think of what a sum cannot keep apart that a concatenation can.
#    Check (seed 0): `check_range("U-Net with added skips, mean IoU", scores["mean_iou"],
#    0.83, 0.93)`.
# 4. **A weighted loss.** Background covers most pixels. Pass
#    `weight=Tensor(1 / class_share)` (normalized to mean 1) to `F.cross_entropy`
#    when training the U-Net. Which measure improves, which gets worse, and
#    why? (Compare pixel accuracy with mean class accuracy.)
#    Check (seed 0): `check_range("mean class accuracy, weighted",
#    scores["mean_class_accuracy"], 0.925, 0.97)` and `check_range("pixel accuracy,
#    weighted", scores["pixel_accuracy"], 0.90, 0.965)` (unweighted: 0.918 and 0.978).
# 5. **Gridding.** Measure the receptive field of `dilated_net((2, 2, 2, 2, 2))`
#    (untrained is enough), then count the input pixels inside it with a zero
#    gradient. Why are there holes? Why does the last block of section 6, with
#    dilation 1, fill them for (1, 2, 4, 8, 1)?
#    Check (seed 0): `check_range("share of the window with zero gradient", holes, 0.6, 0.8)`.
# 6. **Hidden shapes.** Make all three sets with `min_visible=0.3` (the data
#    set's default: a shape stays labelled while only 30% of it is visible)
#    and retrain the U-Net. Which classes lose most IoU, and why those?
#    Check (seed 0): `check_range("U-Net mean IoU, min_visible=0.3", scores["mean_iou"],
#    0.77, 0.86)`.
