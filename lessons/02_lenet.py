# %% [markdown]
"""
# Lesson 02 — LeNet 1989: convolutions that subsample, trained by backprop

**Paper.** Y. LeCun, B. Boser, J. S. Denker, D. Henderson, R. E. Howard,
W. Hubbard, L. D. Jackel (1989), "Backpropagation Applied to Handwritten Zip
Code Recognition", Neural Computation 1(4). A 16x16 digit goes through two
layers of 5x5 feature detectors whose weights are shared across positions
(convolutions) and that subsample by moving their window 2 pixels at a time
(stride 2), then through one fully connected hidden layer of 30 units to 10
outputs. Everything (9,760 free parameters) is learned by backpropagation.

**What you build.** One convolution written as loops over a tiny input,
checked against `F.conv2d`. The 1989 network, rebuilt from minidl's `conv2d`
with the paper's sizes (H1: 12 maps of 8x8, H2: 12 maps of 4x4, H3: 30 units),
its sparse H1 -> H2 connection table, per-unit biases, scaled tanh, +-1
targets with a squared error, and online SGD (one digit per step). Then a
modern network with the same layer sizes (ReLU, max-pooling, batch norm,
cross-entropy, momentum, cosine schedule), compared on the same data, with the
output shape of every layer printed. You look inside both: the first-layer
filters before and after training, and the feature maps of one digit. Last,
dilated (atrous) convolution: the receptive field of a stack of 3x3
convolutions computed by formula and measured by autograd, as the gradient of
one output pixel with respect to the input.

**Data.** The UCI digits shipped with minidl (8x8, resized to 16x16 as in
the paper's input; 1,397 training and 400 test images, each test error is
0.25%). The paper had 7,291 training and 2,007 test zip-code digits.

**Expected result.** The better of the two networks reaches >= 98% test
accuracy (mean over three seeds). Full run: a few minutes on 2 cores (measured below).

*Measured (full run, seeds 0, 1, 2): LeNet 1989 98.00%, 98.00%, 98.75% (mean
98.25%); modern 98.50%, 98.50%, 99.25% (mean 98.75%), 2.0 test digits better
on average. Over the last 5 epochs the 1989 network's test accuracy moves by
0.8 test digits (std), the modern one's by 0.1. First-layer filters after
training: the 1989 ones correlate 0.96 (median) with their random start
(||W - W0|| / ||W0|| = 0.40), the modern ones 0.75 (1.21). Time: 56 s on an
idle machine for the previous version (12 s per 1989 run, 6 s per modern
run); this run took 188 s of CPU (user + sys, one BLAS thread) and 211 s of
wall clock on a machine shared with other jobs.*

Run: `python lessons/02_lenet.py [--quick] [--seed S] [--out DIR]`
"""

# %%
import math

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset, digits
from minidl.optim import SGD
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401 (exercises)
from minidl.utils.training import evaluate, train_epoch

args = lesson_args("02_lenet", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

# %% [markdown]
# ## 1. The data at 16x16
#
# The paper normalized each zip-code digit to 16x16 pixels with values in
# [-1, 1] (background -1). Our digits are 8x8 counts; `digits(split, size=16)`
# resizes them bilinearly, and we map [0, 1] to [-1, 1]. The resized images
# hold no more detail than the 8x8 ones, but they give the convolutions room:
# two stride-2 layers take 16x16 down to 4x4.

# %%
train_images, train_labels = digits("train", size=16)
test_images, test_labels = digits("test", size=16)
train_images, test_images = 2 * train_images - 1, 2 * test_images - 1
if args.quick:
    train_images, train_labels = train_images[:200], train_labels[:200]
print(f"train {train_images.shape}, test {test_images.shape}, "
      f"values in [{train_images.min():.0f}, {train_images.max():.0f}]")

small_images, _ = digits("test")
fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for k in range(8):
    axes[0, k].imshow(small_images[k, 0], cmap="gray_r")
    axes[1, k].imshow(test_images[k, 0], cmap="gray_r")
    axes[0, k].set_title(f"label {test_labels[k]}", fontsize=9)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
axes[0, 0].set_ylabel("8x8")
axes[1, 0].set_ylabel("16x16")
save_figure(fig, args.out / "digits_16x16.png")

# %% [markdown]
# ## 2. One convolution by hand
#
# A convolution layer slides each of its filters over the image: output
# channel o at position (i, j) is the bias plus the sum, over the input
# channels c and the k x k taps (u, v), of
#
#     weight[o, c, u, v] * input[c, i * stride + u - padding, j * stride + v - padding]
#
# (positions outside the image read 0: the padding). Strictly this is a
# cross-correlation; deep-learning libraries call it a convolution. Below:
# one image of 2 channels, 5x5, three 3x3 filters, stride 2, padding 1,
# written as plain Python loops, against `F.conv2d`.
#
# The library computes the same sums differently: `conv2d` in
# `minidl/ops/conv.py` checks the arguments and calls `Conv2dFunction`, whose
# forward (`_correlate` there) copies every k x k patch into a row of a matrix
# (`im2col` in `minidl/kernels/conv.py`, a numba loop) and does one matrix
# product with the filters. Its backward (`Conv2dFunction.backward`) scatters
# the patch gradients back with `col2im` (same file) and gets the filter
# gradient from one more matrix product (`_weight_grad`).

# %%
def conv2d_by_loops(image, weight, bias, stride, padding):
    """image [C, H, W], weight [O, C, k, k], bias [O] -> [O, H_out, W_out], by the definition."""
    channels, height, width = image.shape
    out_channels, _, k, _ = weight.shape
    out_h = (height + 2 * padding - k) // stride + 1
    out_w = (width + 2 * padding - k) // stride + 1
    out = np.zeros((out_channels, out_h, out_w))
    for o in range(out_channels):
        for i in range(out_h):
            for j in range(out_w):
                total = bias[o]
                for c in range(channels):
                    for u in range(k):
                        for v in range(k):
                            y, x = i * stride + u - padding, j * stride + v - padding
                            if 0 <= y < height and 0 <= x < width:  # else: padding, reads 0
                                total += weight[o, c, u, v] * image[c, y, x]
                out[o, i, j] = total
    return out


conv_rng = np.random.default_rng(args.seed)
tiny_image = conv_rng.normal(size=(2, 5, 5))
tiny_weight, tiny_bias = conv_rng.normal(size=(3, 2, 3, 3)), conv_rng.normal(size=3)
by_loops = conv2d_by_loops(tiny_image, tiny_weight, tiny_bias, stride=2, padding=1)
by_library = F.conv2d(Tensor(tiny_image[None]), Tensor(tiny_weight), Tensor(tiny_bias),
                      stride=2, padding=1).data[0]
print(f"input {tiny_image.shape}, 3 filters {tiny_weight.shape[1:]}, stride 2, padding 1 "
      f"-> output {by_loops.shape}")
print(f"max |loops - F.conv2d| = {np.abs(by_loops - by_library).max():.1e}")
np.testing.assert_allclose(by_loops, by_library, rtol=1e-12, atol=1e-12)

# %% [markdown]
# ## 3. The 1989 network
#
# | layer | what | output |
# |---|---|---|
# | input | 16x16, padded with the background value -1 to 20x20 | 1 x 20 x 20 |
# | H1 | 12 filters 5x5, stride 2 | 12 x 8 x 8 |
# | H2 | 12 filters 5x5 over 8 of the 12 H1 maps, stride 2, zero padding 2 | 12 x 4 x 4 |
# | H3 | fully connected | 30 |
# | output | fully connected | 10 |
#
# A convolution with stride 2 computes the same 5x5 feature detector at every
# second position: it detects and subsamples in one step (LeNet-5 in 1998
# split this into a convolution and a separate subsampling layer; today's
# networks mostly use max-pooling or, again, strided convolutions).
#
# What we copied from the paper, and where we simplified:
#
# * **Per-unit biases.** Each unit of H1 and H2 has its own bias (the weights
#   are shared within a map, the biases are not), so `h1_bias` is [12, 8, 8].
# * **Sparse connections H1 -> H2.** Each H2 map sees only 8 of the 12 H1
#   maps. The paper does not list which 8, so we chose a regular table: the H1
#   maps form three groups of four (A, B, C); H2 maps 0-3 read A and B, maps
#   4-7 read B and C, maps 8-11 read A and C. It is implemented as a fixed 0/1
#   mask multiplied into the weight: the masked weights start at zero and
#   their gradient is zero, so they stay zero. With this table the network
#   has exactly the paper's 9,760 free parameters.
# * **Scaled tanh** f(a) = 1.7159 tanh(2a/3) in every layer, the output
#   included, and targets +1 for the true class, -1 for the others, with a
#   squared error. f(+-1) = +-1, so the targets sit where f still has slope
#   (LeCun et al. 1998, "Efficient BackProp", sections 4.4 and 4.5).
# * **Init** uniform in +-2.4 / sqrt(F), F = the unit's fan-in. The paper
#   writes 2.4 / F; with the square root every unit's summed input starts
#   with a variance that does not depend on its fan-in (the 1 / sqrt(F)
#   scaling "Efficient BackProp" recommends in section 4.6).
# * **Online SGD**: one digit per step, a constant learning rate, 23 passes
#   over the training set as in the paper. The paper scaled each weight's step
#   by an estimate of the diagonal of the Hessian; we use plain SGD.

# %%
def connection_table() -> np.ndarray:
    """mask[o, i] = 1 when H2 map o reads H1 map i: [12, 12, 1, 1] (broadcasts over 5x5)."""
    groups = [range(0, 4), range(4, 8), range(8, 12)]  # H1 maps in groups A, B, C
    reads = [(0, 1), (1, 2), (0, 2)]  # H2 maps 0-3 read A+B, 4-7 read B+C, 8-11 read A+C
    mask = np.zeros((12, 12, 1, 1), dtype=np.float32)
    for o in range(12):
        for g in reads[o // 4]:
            mask[o, list(groups[g])] = 1.0
    return mask


def scaled_tanh(a):
    """f(a) = 1.7159 tanh(2a/3): f(1) = 1, f(-1) = -1."""
    return 1.7159 * (a * (2.0 / 3.0)).tanh()


def uniform_init(shape, fan_in) -> nn.Parameter:
    bound = 2.4 / math.sqrt(fan_in)
    return nn.Parameter(minidl.random.generator().uniform(-bound, bound, shape).astype(np.float32))


class LeNet1989(nn.Module):
    """LeCun et al. 1989. x: [N, 1, 16, 16] in [-1, 1] -> [N, 10] in (-1.7, 1.7)."""

    def __init__(self):
        super().__init__()
        self.register_buffer("h2_mask", connection_table())
        self.h1_weight = uniform_init((12, 1, 5, 5), fan_in=25)
        self.h1_bias = nn.Parameter(np.zeros((12, 8, 8), np.float32))
        self.h2_weight = uniform_init((12, 12, 5, 5), fan_in=8 * 25)
        self.h2_weight.data *= self.h2_mask  # the 4 unconnected maps of each H2 map: zero
        self.h2_bias = nn.Parameter(np.zeros((12, 4, 4), np.float32))
        self.h3 = nn.Linear(12 * 4 * 4, 30)
        self.out = nn.Linear(30, 10)
        for layer in (self.h3, self.out):
            layer.weight = uniform_init(layer.weight.shape, layer.in_features)
            layer.bias = nn.Parameter(np.zeros(layer.out_features, np.float32))

    def features(self, x):
        """The two convolutional layers: H1 [N, 12, 8, 8] and H2 [N, 12, 4, 4]."""
        x = F.pad(x, (2, 2, 2, 2), value=-1.0)  # the background extends beyond the image
        h1 = scaled_tanh(F.conv2d(x, self.h1_weight, stride=2) + self.h1_bias)
        h2_weight = self.h2_weight * self.h2_mask
        h2 = scaled_tanh(F.conv2d(h1, h2_weight, stride=2, padding=2) + self.h2_bias)
        return h1, h2

    def forward(self, x):
        _, h2 = self.features(x)
        h3 = scaled_tanh(self.h3(h2.flatten(1)))
        return scaled_tanh(self.out(h3))


def free_parameters(model) -> int:
    """Trainable numbers, not counting the weights the connection table holds at zero."""
    total = sum(p.data.size for p in model.parameters())
    masked = getattr(model, "h2_mask", None)
    return total - (0 if masked is None else int((masked == 0).sum()) * 25)


def print_shapes(named_tensors):
    """One line per layer: its name and the shape of its output."""
    for name, tensor in named_tensors:
        print(f"  {name:<44} {str(tuple(tensor.shape)):>16}")


lenet = LeNet1989()
print(f"LeNet 1989: {free_parameters(lenet):,} free parameters (the paper: 9,760)")
assert free_parameters(lenet) == 9760
one_digit = Tensor(train_images[:1])
with minidl.no_grad():
    h1, h2 = lenet.features(one_digit)
    h3 = scaled_tanh(lenet.h3(h2.flatten(1)))
    print_shapes([("input", one_digit),
                  ("padded with -1 (F.pad)", F.pad(one_digit, (2, 2, 2, 2), value=-1.0)),
                  ("H1: 12 filters 5x5, stride 2, tanh", h1),
                  ("H2: 12 filters 5x5 over 8 maps, stride 2", h2),
                  ("flattened", h2.flatten(1)), ("H3: fully connected, tanh", h3),
                  ("output: fully connected, tanh", lenet(one_digit))])

fig, ax = plt.subplots(figsize=(4, 4))
ax.imshow(connection_table()[:, :, 0, 0], cmap="Greys")
ax.set(xlabel="H1 map", ylabel="H2 map", title="H1 -> H2 connections (black: connected)",
       xticks=range(12), yticks=range(12))
save_figure(fig, args.out / "connection_table.png")

# %% [markdown]
# ## 4. Training it: online SGD on a squared error
#
# One digit per step and 23 passes: about 32,000 weight updates. The loss is
# the mean over the 10 outputs of (output - target)^2 (`F.mse_loss`, in
# `minidl/ops/loss.py`). Before training we keep a copy of the first layer's
# filters, to compare with the trained ones in section 6.

# %%
TARGETS = np.full((10, 10), -1.0, np.float32)
np.fill_diagonal(TARGETS, 1.0)


def squared_error(outputs, labels):
    """Mean of (output - target)^2, target +1 at the label and -1 elsewhere."""
    return F.mse_loss(outputs, Tensor(TARGETS[labels.data]))


def digit_loader(images, labels, batch_size, shuffle):
    return DataLoader(TensorDataset(images, labels), batch_size=batch_size, shuffle=shuffle)


test_loader = digit_loader(test_images, test_labels, 400, shuffle=False)
seeds = [args.seed] if args.quick else [args.seed, args.seed + 1, args.seed + 2]


def train_lenet1989(seed, batch_size=1, lr=0.03, epochs=23 if not args.quick else 1):
    """Train the 1989 network; returns (model, test accuracy per epoch, initial H1 filters)."""
    minidl.manual_seed(seed)
    model = LeNet1989()
    initial_filters = model.h1_weight.data.copy()
    loader = digit_loader(train_images, train_labels, batch_size=batch_size, shuffle=True)
    optimizer = SGD(model.parameters(), lr=lr)
    curve = []
    for epoch in range(epochs):
        train_epoch(model, loader, squared_error, optimizer, desc=f"1989 epoch {epoch + 1}")
        curve.append(evaluate(model, test_loader))
    return model, curve, initial_filters


results = {"LeNet 1989": [], "modern": []}
curves = {"LeNet 1989": [], "modern": []}  # test accuracy per epoch, one curve per seed
models, initial_filters = {}, {}
with Timer() as timer_1989:
    for seed in seeds:
        model, curve, start = train_lenet1989(seed)
        results["LeNet 1989"].append(curve[-1])
        curves["LeNet 1989"].append(curve)
        print(f"LeNet 1989, seed {seed}: test accuracy {curve[-1]:.2%}")
        if seed == args.seed:
            models["LeNet 1989"], initial_filters["LeNet 1989"] = model, start
print(f"  {timer_1989.seconds / len(seeds):.1f} s per training run")

# %% [markdown]
# ## 5. The modern variant
#
# The same layer sizes (12 maps of 8x8, 12 maps of 4x4, 30 hidden units), with
# the ingredients of the 2010s:
#
# * **ReLU** instead of tanh (no saturation for positive inputs; Nair & Hinton
#   2010, Krizhevsky et al. 2012);
# * **max-pooling** for subsampling: a stride-1 5x5 convolution, then the
#   maximum of each 2x2 block (a feature counts if it fires anywhere nearby);
# * **batch normalization** after each convolution (Ioffe & Szegedy 2015; see
#   lesson 03), which is why the convolutions need no bias;
# * **cross-entropy** on softmax outputs instead of a squared error to +-1;
# * minibatches of 32, SGD with momentum 0.9, weight decay and a cosine
#   learning-rate schedule; PyTorch's default initialization.
#
# Where they live: `nn.MaxPool2d` calls `max_pool2d` in `minidl/ops/pool.py`
# (the primitive `WindowMax`, whose loops are `window_max` for the forward
# and `scatter_add_planes` for the backward, both in `minidl/kernels/pool.py`);
# `nn.BatchNorm2d`
# (`minidl/nn/norm.py`) calls `batch_norm` in `minidl/ops/norm.py`
# (`BatchNormFunction`, loops in `minidl/kernels/norm.py`); `nn.ReLU` is
# `ReLU` in `minidl/ops/activation.py`.

# %%
def modern_net():
    return nn.Sequential(
        nn.Conv2d(1, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 12 x 8 x 8
        nn.Conv2d(12, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 12 x 4 x 4
        nn.Flatten(), nn.Linear(12 * 4 * 4, 30), nn.ReLU(), nn.Linear(30, 10),
    )


def train_modern(seed):
    """Train the modern network; returns (model, test accuracy after each epoch, conv1 filters)."""
    minidl.manual_seed(seed)
    model = modern_net()
    start = model[0].weight.data.copy()
    loader = digit_loader(train_images, train_labels, batch_size=32, shuffle=True)
    epochs = 30 if not args.quick else 2
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(loader))
    curve = []
    for epoch in range(epochs):
        train_epoch(model, loader, F.cross_entropy, optimizer, scheduler,
                    desc=f"modern epoch {epoch + 1}")
        curve.append(evaluate(model, test_loader))
    return model, curve, start


print(f"modern net: {free_parameters(modern_net()):,} trainable parameters")
layer_outputs, flowing = [], one_digit
with minidl.no_grad():
    for layer in modern_net().eval():
        flowing = layer(flowing)
        layer_outputs.append((type(layer).__name__, flowing))
print_shapes([("input", one_digit)] + layer_outputs)
with Timer() as timer_modern:
    for seed in seeds:
        model, curve, start = train_modern(seed)
        results["modern"].append(curve[-1])
        curves["modern"].append(curve)
        print(f"modern, seed {seed}: test accuracy {curve[-1]:.2%}")
        if seed == args.seed:
            models["modern"], initial_filters["modern"] = model, start
print(f"  {timer_modern.seconds / len(seeds):.1f} s per training run")

for name, accs in results.items():
    errors = [round((1 - a) * 400) for a in accs]
    print(f"{name:>10}: test accuracy {np.mean(accs):.2%} mean over seeds {seeds} "
          f"({', '.join(f'{a:.2%}' for a in accs)}; {errors} of 400 wrong)")

fig, ax = plt.subplots(figsize=(6, 4))
for name, seed_curves in curves.items():
    curve = seed_curves[0]  # seed args.seed
    ax.plot(np.arange(1, len(curve) + 1), curve, marker=".", label=name)
lowest = min(min(seed_curves[0]) for seed_curves in curves.values())
ax.set(xlabel="epoch (pass over the training set)", ylabel="test accuracy",
       title=f"seed {args.seed}", ylim=(min(0.9, lowest - 0.02), 1.0))
ax.legend()
save_figure(fig, args.out / "test_accuracy.png")

# %% [markdown]
# ## 6. Looking inside: filters and feature maps
#
# The first layer's 12 filters are 5x5 images; each is slid over the digit.
# Each trained filter is shown below the random filter it started from (both
# networks draw theirs from the same seed, so their starts look alike; each
# row has its own colour scale). The trained filters look noisy, and the
# comparison says where the noise comes from: the 1989 filters are still
# mostly their random start (each trained filter correlates strongly with its
# start; the numbers are printed below), and the modern ones moved further
# but kept part of it. Training changed the filters only as much as the task
# needed; whether more data would smooth them is not something this lesson
# measures. Below the filters, the 12 H1 maps (8x8) and 12 H2 maps (4x4) that
# one test digit produces. The H1 maps still show the digit's shape, each map
# lighting up on different parts of the strokes; the H2 maps are too coarse to
# look like the digit: they say which feature is present in which quarter of
# the image. The modern network's maps are >= 0 (ReLU), and the 1989 maps
# saturate near +-1.7 (tanh) wherever the background is.

# %%
lenet, modern = models["LeNet 1989"], models["modern"]
modern.eval()
digit = Tensor(test_images[:1])
with minidl.no_grad():
    lenet_maps = [h.data[0] for h in lenet.features(digit)]
    modern_block1 = modern[:4](digit)
    modern_maps = [modern_block1.data[0], modern[4:8](modern_block1).data[0]]


def show_row(axes, images):
    limit = np.abs(images).max()
    for ax, image in zip(axes, images):
        ax.imshow(image, cmap="RdBu_r", vmin=-limit, vmax=limit)


trained_filters = {"LeNet 1989": lenet.h1_weight.data, "modern": modern[0].weight.data}
filter_change, filter_similarity = {}, {}
for name, trained in trained_filters.items():
    start = initial_filters[name]
    filter_change[name] = float(np.linalg.norm(trained - start) / np.linalg.norm(start))
    similarity = [np.corrcoef(a.ravel(), b.ravel())[0, 1] for a, b in zip(trained, start)]
    filter_similarity[name] = float(np.median(similarity))
    print(f"{name:>10} first-layer filters: ||W - W0|| / ||W0|| = {filter_change[name]:.2f}; "
          f"correlation of each trained filter with its start: median "
          f"{filter_similarity[name]:.2f}")
if not args.quick:
    assert filter_similarity["LeNet 1989"] > 0.8, filter_similarity

rows = [("1989 H1 filters, start", initial_filters["LeNet 1989"][:, 0]),
        ("1989 H1 filters, trained", lenet.h1_weight.data[:, 0]),
        ("modern conv1, start", initial_filters["modern"][:, 0]),
        ("modern conv1, trained", modern[0].weight.data[:, 0]),
        ("1989 H1 maps", lenet_maps[0]), ("1989 H2 maps", lenet_maps[1]),
        ("modern block 1", modern_maps[0]), ("modern block 2", modern_maps[1])]
fig, axes = plt.subplots(len(rows), 13, figsize=(14, 10))
for r, (label, images) in enumerate(rows):
    show_row(axes[r, 1:], images)
    axes[r, 0].set_ylabel(label, rotation=0, ha="right", va="center")
    if label.endswith("maps") or label.startswith("modern block"):
        axes[r, 0].imshow(test_images[0, 0], cmap="gray_r")  # the input of the maps
    else:
        for spine in axes[r, 0].spines.values():
            spine.set_visible(False)
for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle(f"5x5 filters (red +, blue -); feature maps of one test digit, a {test_labels[0]}")
save_figure(fig, args.out / "filters_and_feature_maps.png")

# %% [markdown]
# ## 7. Receptive fields, and what dilation buys
#
# The receptive field of a unit is the set of input pixels it depends on.
# With kernel sizes k_l and strides s_l, a unit of layer L sees
#
#     r_L = 1 + sum_l (k_l - 1) * d_l * (s_1 * ... * s_{l-1})
#
# input pixels along each axis (d_l is the dilation, 1 for a plain
# convolution). For the 1989 network's H2: r = 1 + 4*1 + 4*2 = 13 of the 16
# pixels, so the 30 H3 units, which see all of H2, see the whole digit.
#
# A **dilated (atrous) convolution** (Holschneider et al. 1989; Yu & Koltun
# 2016; Chen et al., DeepLab) spreads its k taps d pixels apart. Three 3x3
# layers with dilations 1, 2, 4 have a 15x15 receptive field with the same 27
# weights and the same output resolution as three plain 3x3 layers (7x7).
#
# Autograd measures it for us: backpropagate from one output pixel; the input
# pixels with a nonzero gradient are exactly the receptive field. With all
# weights 1 the gradient counts the paths from each input pixel to the output.
# It also shows that the pixels are not equally important: the counts pile up
# in the centre (the "effective receptive field", Luo et al. 2016). Dilations
# 2, 2, 2 leave holes: only every second pixel is seen ("gridding").

# %%
def measured_receptive_field(dilations, size=33):
    """|d out[centre] / d input| for a stack of 3x3 convolutions (weights 1) with padding = d."""
    x = Tensor(np.zeros((1, 1, size, size), np.float32), requires_grad=True)
    ones = Tensor(np.ones((1, 1, 3, 3), np.float32))
    h = x
    for d in dilations:
        h = F.conv2d(h, ones, padding=d, dilation=d)  # padding = d keeps the size
    h[0, 0, size // 2, size // 2].backward()
    return np.abs(x.grad[0, 0])


def extent(grad) -> int:
    """Width of the smallest square holding every nonzero entry."""
    rows = np.flatnonzero(grad.any(axis=1))
    return int(rows[-1] - rows[0] + 1)


stacks = [(1, 1, 1), (1, 2, 4), (2, 2, 2)]
fields = {}
for dilations in stacks:
    grad = measured_receptive_field(dilations)
    analytic = 1 + sum(2 * d for d in dilations)
    fields[dilations] = grad
    print(f"3x3 convs, dilations {dilations}: receptive field {analytic} by formula, "
          f"{extent(grad)} measured; {int((grad > 0).sum())} of {extent(grad) ** 2} pixels used")
    assert extent(grad) == analytic

# The 1989 network's H2 unit at (2, 2), measured on a real digit.
x = Tensor(test_images[:1].copy(), requires_grad=True)
_, h2 = lenet.features(x)
h2[0, 0, 2, 2].backward()
lenet_field = np.abs(x.grad[0, 0])
print(f"LeNet 1989 H2 unit: receptive field 13 by formula, {extent(lenet_field)} measured")
assert extent(lenet_field) == 13

fig, axes = plt.subplots(1, 4, figsize=(15, 4))
for ax, dilations in zip(axes, stacks):
    ax.imshow(fields[dilations], cmap="magma")
    ax.set_title(f"dilations {dilations}: {extent(fields[dilations])}x{extent(fields[dilations])}")
axes[3].imshow(test_images[0, 0], cmap="gray_r")
axes[3].imshow(np.ma.masked_equal(lenet_field, 0), cmap="magma", alpha=0.6)
axes[3].set_title("1989 H2 unit (2, 2): 13x13")
for ax in axes:
    ax.set_xticks([])
    ax.set_yticks([])
fig.suptitle("receptive fields measured by autograd: |d output pixel / d input|")
save_figure(fig, args.out / "receptive_fields.png")

# %% [markdown]
# ## 8. Result
#
# Both networks pass 98% on this small data set. Is the modern one steadier?
# Its last epochs run at a tiny learning rate (the cosine schedule), while the
# 1989 network's constant-rate online SGD keeps moving; we measure it as the
# spread (standard deviation) of the test accuracy over the last 5 epochs,
# in test digits, averaged over the seeds. And the difference between the
# two networks, in test digits out of 400.

# %%
def last_epochs_spread(seed_curves, last=5):
    """Mean over seeds of the std of the test accuracy over the last epochs, in test digits."""
    return float(np.mean([np.std(curve[-last:]) * 400 for curve in seed_curves]))


spread = {name: last_epochs_spread(seed_curves) for name, seed_curves in curves.items()}
for name in results:
    print(f"{name:>10}: mean test accuracy {np.mean(results[name]):.2%}; over the last 5 epochs "
          f"the test accuracy moves by {spread[name]:.1f} test digits (std, mean over seeds)")
gap = (np.mean(results["modern"]) - np.mean(results["LeNet 1989"])) * 400
print(f"modern - 1989: {gap:+.1f} test digits of 400 (mean over seeds)")
best = max(results, key=lambda name: np.mean(results[name]))
if not args.quick:
    assert np.mean(results[best]) >= 0.98, f"expected >= 98%, got {results}"
    assert spread["modern"] < spread["LeNet 1989"], spread

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **The paper's literal initialization.** In `uniform_init`, use the bound
#    2.4 / F instead of 2.4 / sqrt(F) and retrain the 1989 network
#    (`model, curve, _ = train_lenet1989(0)`). Compare its first epochs with
#    `curves["LeNet 1989"][0]`: how many epochs does it need to reach 95%, and
#    why (what variance does each unit's summed input start with)?
#    Check: `check_range("test accuracy after 1 epoch, init 2.4 / F", curve[0], 0.70, 0.85)`.
# 2. **Full connections.** Make `connection_table` return all ones. How many
#    free parameters does the network have, and does test accuracy change?
#    Check: `check_range("free parameters", free_parameters(LeNet1989()), 10960, 10960)`
#    and `check_range("test accuracy, full table", curve[-1], 0.975, 0.99)`.
# 3. **Minibatches.** Train the 1989 network with batches of 32 and the same
#    learning rate (`train_lenet1989(0, batch_size=32)`): 32 times fewer
#    steps. Then scale the learning rate by 32 as the linear scaling rule says
#    (`linear_scaling_rule` in `minidl/optim/scaling.py`: lr = 0.96). What
#    happens, and why does the rule fail here (Goyal et al. 2017 needed a
#    warmup for large rates)? Find a rate in between that does better than 0.03.
#    Check: `check_range("batch 32, lr 0.03", curve[-1], 0.94, 0.97)` and
#    `check_range("batch 32, lr 0.96", curve[-1], 0.05, 0.15)` (chance level).
# 4. **Ablation.** Remove one ingredient of the modern network at a time (tanh
#    for ReLU; a stride-2 convolution for the max-pooling; no batch norm, with
#    `bias=True` in the convolutions) and train three seeds of each. Which
#    matters most here? Each test digit is 0.25%, so compare means.
#    Check: `check_range("mean test accuracy without batch norm", acc, 0.98, 0.99)`.
# 5. **Receptive field of the modern network.** Compute by formula the
#    receptive field of one unit after the second max-pooling (5x5 conv, 2x2
#    pool, 5x5 conv, 2x2 pool; a pooling layer counts as a layer with k = s = 2),
#    then measure it with autograd as in section 7: feed `modern[:8]` (the
#    convolutional part takes any size) a random 32x32 input, backpropagate
#    from output unit (3, 3), and take the union (the sum of |gradient|) over
#    50 random inputs, because ReLU and max-pooling pass the gradient only
#    through the units that are active for that input. Why would a 16x16 input
#    give a smaller number?
#    Check: `check_range("receptive field after block 2", extent(union), 16, 16)`.
