# %% [markdown]
"""
# Lesson 14 — Autoencoders, variational autoencoders and disentanglement

**Lecture idea.** An autoencoder learns a code without labels: an encoder
squeezes the input through a narrow *bottleneck* and a decoder must rebuild
the input from it, so the code keeps what matters most. A linear autoencoder
finds the same subspace as PCA (Baldi & Hornik 1989); a non-linear one can do
better at the same size. Corrupting the input and asking for the clean
original (denoising, Vincent et al. 2008; inpainting) forces the code to
capture the structure of the data rather than copy pixels. The variational
autoencoder (Kingma & Welling 2014) makes the code a distribution: the
encoder outputs a mean and a variance, a sample is drawn by the
*reparameterization trick* z = mu + sigma * eps, and the loss (the negative
ELBO) adds to the reconstruction error the KL divergence from a standard
normal prior, so that decoding samples of the prior gives new digits.
beta-VAE (Higgins et al. 2017) weighs the KL by beta > 1 to push each code
dimension towards one factor of variation.

**What you build.** A convolutional autoencoder (convolutions down,
transposed convolutions up) on the digits, step by step with its shapes; a
sweep of the bottleneck size against PCA; a linear autoencoder whose subspace
is compared with PCA's, computed by SVD; a denoising and inpainting
autoencoder; the reparameterization trick by hand, with the gradient with
respect to mu computed with and without it; a VAE with a 2-D code (its loss
terms during training, the code of each digit class, samples of the prior,
an interpolation); and a beta-VAE sweep on images made from five known
factors (shape, size, colour, x, y), scored with the mutual information gap
(MIG, Chen et al. 2018).

**Data.** The UCI digits shipped with minidl, 8x8 (1,397 training images, of
which 300 are held out for validation; the 400 test images give every
reported number). The factors data set (`minidl/data/factors.py`): every
combination of 3 shapes x 4 sizes x 4 colours x 8 x 8 positions once, 3,072
images of 16x16.

**Expected result.** The reconstruction error falls with the bottleneck size
and the conv autoencoder beats PCA at small sizes; the linear autoencoder's
subspace lies within a few degrees of PCA's; the denoising autoencoder
cleans noise and fills masked patches better than the plain one; in the VAE
the reparameterized gradient is unbiased with a smaller variance than the
score-function estimator; in the beta-VAE sweep the reconstruction error
rises and the KL falls as beta grows, and the MIG rises on average (with a
large spread over seeds). Full run: under 5 minutes on 2 cores.

*Measured on a shared 2-core machine (full run, seed 0; the beta-VAEs seeds
0, 1, 2): test MSE per pixel at code size 2 / 8 / 32: autoencoder 0.044 /
0.016 / 0.004, PCA 0.052 / 0.024 / 0.003; the linear autoencoder's subspace
within 0.1 degree of PCA's; inside masked patches the denoising autoencoder's
error is 0.062 against the plain one's 0.209; VAE test -ELBO 25.2 nats (KL
2.1); from beta = 0.5 to 8 the KL falls from 16.8 to 3.2 nats and the mean MIG
rises from 0.08 to 0.14, with seeds spread over 0.04 to 0.21 (section 5).
177 s of CPU time (12.5 minutes of wall-clock on a machine shared with
other jobs: to be re-measured on an idle machine). Quick run: seconds.*

Run: `python lessons/14_autoencoders.py [--quick] [--seed S] [--out DIR]`
"""

# %%
from statistics import NormalDist

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import digits
from minidl.data.factors import (
    FACTOR_NAMES,
    entropy,
    factors_dataset,
    mutual_information_gap,
)
from minidl.optim import Adam
from minidl.utils.lesson import Timer, check_range, lesson_args, save_figure  # noqa: F401 (exercises)

args = lesson_args("14_autoencoders", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

lesson_timer = Timer().__enter__()

# %% [markdown]
# ## 1. An autoencoder on the digits
#
# The 1,397 training digits are split once (the same split whatever `--seed`):
# 1,097 train the models, 300 are held out for the choices made while writing
# this lesson (epochs, learning rate, widths). Every number reported below is
# measured on the 400 test digits, which took no part in those choices. The
# pixels are in [0, 1].

# %%
train_all, train_labels_all = digits("train")
test_images, test_labels = digits("test")
split = np.random.default_rng(0).permutation(len(train_all))
train_images, train_labels = train_all[split[:1097]], train_labels_all[split[:1097]]
val_images = train_all[split[1097:]]
if args.quick:
    train_images, train_labels = train_images[:256], train_labels[:256]
print(f"train {train_images.shape}, validation {val_images.shape}, test {test_images.shape}, "
      f"pixels in [{train_images.min()}, {train_images.max()}]")

# %% [markdown]
# The encoder halves the image once with a stride-2 convolution and ends in a
# linear layer to the code of `code_size` numbers. The decoder mirrors it: a
# linear layer back to 32 maps of 4x4, then a *transposed convolution* with
# a 4x4 kernel, stride 2 and padding 1, which doubles the size:
# H_out = (H - 1) * stride - 2 * padding + kernel = 3 * 2 - 2 + 4 = 8. A
# transposed convolution is the gradient of a convolution with respect to its
# input (each input pixel *spreads* a weighted copy of the kernel over the
# output): in `minidl/ops/conv.py`, `ConvTranspose2dFunction.forward` runs the
# computation of `Conv2dFunction.backward` for the input, and its backward is
# a convolution's forward (the layer is `ConvTranspose2d` in
# `minidl/nn/conv.py`). The output has no activation: the loss is the mean
# squared error, as PCA's.

# %%
class Unflatten(nn.Module):
    """[N, C*H*W] -> [N, C, H, W] (the inverse of nn.Flatten)."""

    def __init__(self, shape):
        super().__init__()
        self.shape = tuple(shape)

    def forward(self, x):
        return x.reshape(len(x), *self.shape)


def conv_encoder(out_features):
    """[N, 1, 8, 8] -> [N, out_features]."""
    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),             # [N, 16, 8, 8]
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),  # [N, 32, 4, 4]
        nn.Flatten(),                                          # [N, 512]
        nn.Linear(512, out_features))                          # [N, out_features]


def conv_decoder(code_size):
    """[N, code_size] -> [N, 1, 8, 8]."""
    return nn.Sequential(
        nn.Linear(code_size, 512), nn.ReLU(),                           # [N, 512]
        Unflatten((32, 4, 4)),                                          # [N, 32, 4, 4]
        nn.ConvTranspose2d(32, 16, 4, stride=2, padding=1), nn.ReLU(),  # [N, 16, 8, 8]
        nn.Conv2d(16, 1, 3, padding=1))                                 # [N, 1, 8, 8]


class Autoencoder(nn.Module):
    def __init__(self, code_size):
        super().__init__()
        self.encoder, self.decoder = conv_encoder(code_size), conv_decoder(code_size)

    def forward(self, x):
        return self.decoder(self.encoder(x))


def show_shapes(blocks, x):
    """Run ``x`` through each block of a Sequential and print the shape after it."""
    print(f"  {str(tuple(x.shape)):<16} input")
    for block in blocks:
        x = block(x)
        print(f"  {str(tuple(x.shape)):<16} after {repr(block).split('  #')[0]}")
    return x


autoencoder = Autoencoder(code_size=8)
with minidl.no_grad():
    print("encoder:")
    code = show_shapes(autoencoder.encoder, Tensor(train_images[:4]))
    print("decoder:")
    show_shapes(autoencoder.decoder, code)

# %% [markdown]
# Training: Adam (learning rate 2e-3; `Adam` in `minidl/optim/adam.py`),
# minibatches of 64, `EPOCHS` passes over the 1,097 training digits. `fit` is
# written out below: each step draws a batch, asks `batch_loss` for the loss
# (for the VAE later, a sum of terms, each logged), and takes an Adam step.

# %%
EPOCHS = 30 if not args.quick else 2


def fit(model, images, batch_loss, epochs=EPOCHS, lr=2e-3, batch_size=64, seed=args.seed):
    """Minimize the sum of the terms ``batch_loss(model, x)`` returns (a dict of scalar Tensors).

    Returns the mean of each term per epoch: {name: [epoch 1, epoch 2, ...]}.
    """
    minidl.manual_seed(seed)
    optimizer = Adam(model.parameters(), lr=lr)
    order_rng = np.random.default_rng(seed)
    steps = len(images) // batch_size
    history = {}
    for _ in range(epochs):
        model.train()
        sums = {}
        order = order_rng.permutation(len(images))
        for step in range(steps):
            terms = batch_loss(model, images[order[step * batch_size:(step + 1) * batch_size]])
            optimizer.zero_grad()
            sum(terms.values()).backward()
            optimizer.step()
            for name, value in terms.items():
                sums[name] = sums.get(name, 0.0) + value.item()
        for name, total in sums.items():
            history.setdefault(name, []).append(total / steps)
    return history


def mse_term(model, x):
    return {"mse": F.mse_loss(model(Tensor(x)), Tensor(x))}


def reconstruct(model, images):
    model.eval()
    with minidl.no_grad():
        return model(Tensor(images)).data


def mse(a, b):
    return float(np.mean((a - b) ** 2))


minidl.manual_seed(args.seed)
autoencoder = Autoencoder(code_size=8)
with Timer() as timer:
    history = fit(autoencoder, train_images, mse_term)
test_mse_8 = mse(reconstruct(autoencoder, test_images), test_images)
print(f"code size 8: training MSE {history['mse'][-1]:.4f}, validation MSE "
      f"{mse(reconstruct(autoencoder, val_images), val_images):.4f}, test MSE {test_mse_8:.4f} "
      f"per pixel ({timer.seconds:.1f} s)")

# %%
def show_rows(rows, titles, path, suptitle, cmap="gray_r"):
    """A figure of image rows (each row: [n, 8, 8] or [n, H, W, 3]), one title per row."""
    n = len(rows[0])
    fig, axes = plt.subplots(len(rows), n, figsize=(1.1 * n, 1.2 * len(rows) + 0.4),
                             squeeze=False)
    for r, (row, title) in enumerate(zip(rows, titles)):
        for c in range(n):
            ax = axes[r, c]
            ax.imshow(np.clip(row[c], 0, 1), cmap=cmap, vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[r, 0].set_ylabel(title, rotation=0, ha="right", va="center", fontsize=9)
    fig.suptitle(suptitle)
    save_figure(fig, path)


picks = np.array([np.flatnonzero(test_labels == d)[0] for d in range(10)])
show_rows([test_images[picks, 0], reconstruct(autoencoder, test_images[picks])[:, 0]],
          ["test digit", "code size 8"], args.out / "reconstructions.png",
          "a digit in, 8 numbers in between, a digit out")

# %% [markdown]
# ### The bottleneck size, against PCA
#
# PCA by SVD: center the training images (X - mean, [N, 64]), take the SVD
# X_c = U S V^T; the first d rows of V^T are the d directions that keep most
# of the variance, and projecting onto them is the best *linear* code of size
# d for the squared error (Eckart & Young 1936). The autoencoder is
# non-linear, so at a small size it can do better.

# %%
flat_train = train_images.reshape(len(train_images), -1).astype(np.float64)
flat_test = test_images.reshape(len(test_images), -1).astype(np.float64)
pixel_mean = flat_train.mean(axis=0)
_, singular_values, principal_rows = np.linalg.svd(flat_train - pixel_mean, full_matrices=False)


def pca_test_mse(d):
    basis = principal_rows[:d].T  # [64, d], orthonormal columns
    code = (flat_test - pixel_mean) @ basis
    return mse(code @ basis.T + pixel_mean, flat_test)


CODE_SIZES = [2, 4, 8, 16, 32] if not args.quick else [2, 8]
sweep_mse, sweep_models = {}, {}
with Timer() as timer:
    for d in CODE_SIZES:
        minidl.manual_seed(args.seed)
        model = Autoencoder(d)
        fit(model, train_images, mse_term)
        sweep_models[d] = model
        sweep_mse[d] = mse(reconstruct(model, test_images), test_images)
        kept = np.sum(singular_values[:d] ** 2) / np.sum(singular_values ** 2)
        print(f"code size {d:2d}: conv autoencoder {sweep_mse[d]:.4f}, PCA {pca_test_mse(d):.4f} "
              f"test MSE per pixel (PCA keeps {kept:.0%} of the training variance)", flush=True)
print(f"  {timer.seconds:.0f} s for {len(CODE_SIZES)} autoencoders")

fig, axes = plt.subplots(1, 2, figsize=(12, 4))
axes[0].plot(CODE_SIZES, [sweep_mse[d] for d in CODE_SIZES], "o-", label="conv autoencoder")
axes[0].plot(CODE_SIZES, [pca_test_mse(d) for d in CODE_SIZES], "s--", label="PCA (by SVD)")
axes[0].set(xscale="log", yscale="log", xlabel="code size d", ylabel="test MSE per pixel",
            title="reconstruction error against the bottleneck")
axes[0].set_xticks(CODE_SIZES, [str(d) for d in CODE_SIZES])
axes[0].tick_params(axis="x", which="minor", labelbottom=False)
axes[0].legend()
variance = singular_values ** 2
axes[1].plot(np.arange(1, 65), np.cumsum(variance) / variance.sum(), ".-")
axes[1].set(xlabel="number of principal components", ylabel="fraction of the variance kept",
            title="PCA of the training digits")
save_figure(fig, args.out / "bottleneck_sweep.png")

# %%
rows = [test_images[picks, 0]] + [reconstruct(sweep_models[d], test_images[picks])[:, 0]
                                  for d in CODE_SIZES]
show_rows(rows, ["test digit"] + [f"d = {d}" for d in CODE_SIZES],
          args.out / "reconstructions_by_code_size.png", "reconstructions by code size")

# %% [markdown]
# ### A linear autoencoder finds PCA's subspace
#
# Remove the non-linearities: encoder `Linear(64, d)`, decoder `Linear(d,
# 64)`. Baldi & Hornik (1989) showed that at the minimum of the squared error
# the decoder's columns span the same d-dimensional subspace as the top d
# principal directions, but they need not *be* those directions: any
# invertible d x d matrix between encoder and decoder gives the same output.
# We train one with d = 4 (full batch, Adam with learning rate 0.03, 1,500
# steps) and compare the two subspaces by their *principal angles*: with Q an
# orthonormal basis of the decoder's columns (QR) and V the top 4 principal
# directions, the singular values of V^T Q are the cosines of the angles
# between the subspaces (all 1, angle 0, when they coincide). Gradient descent
# finds the subspace quickly when the d-th principal variance is well above
# the (d+1)-th: for d = 4 it is 1.5 times larger (exercise 2 tries a d where
# it is not).

# %%
LINEAR_CODE = 4
principal_variances = singular_values ** 2 / len(flat_train)
print(f"principal variances {np.round(principal_variances[:6], 3)}: the {LINEAR_CODE}th is "
      f"{principal_variances[LINEAR_CODE - 1] / principal_variances[LINEAR_CODE]:.2f}x the "
      f"{LINEAR_CODE + 1}th")


def train_linear_autoencoder(code_size, steps=1500 if not args.quick else 50):
    minidl.manual_seed(args.seed)
    model = nn.Sequential(nn.Linear(64, code_size), nn.Linear(code_size, 64))
    optimizer = Adam(model.parameters(), lr=0.03)
    inputs = Tensor(flat_train.astype(np.float32))
    for _ in range(steps):
        optimizer.zero_grad()
        F.mse_loss(model(inputs), inputs).backward()
        optimizer.step()
    return model


def principal_angles(model, code_size):
    """Angles (degrees) between the decoder's column space and the top principal directions."""
    q, _ = np.linalg.qr(model[1].weight.data.astype(np.float64))  # [64, d], orthonormal
    cosines = np.linalg.svd(principal_rows[:code_size] @ q, compute_uv=False)
    return np.degrees(np.arccos(np.clip(cosines, -1, 1)))


with Timer() as timer:
    linear_ae = train_linear_autoencoder(LINEAR_CODE)
with minidl.no_grad():
    linear_test_mse = mse(linear_ae(Tensor(flat_test.astype(np.float32))).data, flat_test)
angles = principal_angles(linear_ae, LINEAR_CODE)
largest_angle = float(angles.max())
decoder_columns = linear_ae[1].weight.data.astype(np.float64)  # [64, d]
unit_columns = decoder_columns / np.linalg.norm(decoder_columns, axis=0)
best_match = np.abs(principal_rows[:LINEAR_CODE] @ unit_columns).max(axis=0)
print(f"linear autoencoder, d = {LINEAR_CODE}: test MSE {linear_test_mse:.5f}, PCA "
      f"{pca_test_mse(LINEAR_CODE):.5f} ({timer.seconds:.1f} s)")
print(f"  principal angles between the two subspaces: {np.round(angles, 2)} degrees")
print(f"  but each decoder column alone is not a principal direction: each lies "
      f"{np.round(np.degrees(np.arccos(np.clip(best_match, 0, 1))), 1)} degrees from the nearest")

# %% [markdown]
# ## 2. Denoising and inpainting
#
# Train the same architecture (code size 16) on *corrupted* inputs with the
# *clean* digits as targets: half of each batch gets Gaussian noise (standard
# deviation 0.3, clipped to [0, 1]), the other half a 4x4 patch set to 0 at a
# random place. A fresh corruption is drawn at every step. To rebuild what the
# corruption destroyed, the code must know what digits look like. We compare
# it with the plain autoencoder of code size 16 (trained on clean digits) on
# the same corrupted test digits.

# %%
NOISE_STD, PATCH = 0.3, 4
corruption_rng = np.random.default_rng(args.seed + 1)


def add_noise(images, rng):
    return np.clip(images + rng.normal(0, NOISE_STD, images.shape), 0, 1).astype(np.float32)


def patch_masks(n, rng):
    """[n, 1, 8, 8] bool, a PATCH x PATCH square of True at a random place in each image."""
    top, left = rng.integers(0, 8 - PATCH + 1, (2, n))
    rows, cols = np.arange(8)[None, :, None], np.arange(8)[None, None, :]
    inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + PATCH)
              & (cols >= left[:, None, None]) & (cols < left[:, None, None] + PATCH))
    return inside[:, None]


def corrupt(images, rng):
    """Noise on the first half of the batch, a masked patch on the second half."""
    half = len(images) // 2
    masked = np.where(patch_masks(len(images) - half, rng), 0.0, images[half:])
    return np.concatenate([add_noise(images[:half], rng), masked]).astype(np.float32)


def denoising_term(model, x):
    return {"mse": F.mse_loss(model(Tensor(corrupt(x, corruption_rng))), Tensor(x))}


minidl.manual_seed(args.seed)
denoiser = Autoencoder(16)
with Timer() as timer:
    fit(denoiser, train_images, denoising_term)
plain = sweep_models[16] if 16 in sweep_models else sweep_models[CODE_SIZES[-1]]

test_rng = np.random.default_rng(1234)  # the same corrupted test digits for every model
noisy_test = add_noise(test_images, test_rng)
masks = patch_masks(len(test_images), test_rng)
masked_test = np.where(masks, 0.0, test_images).astype(np.float32)


def in_patch_mse(output):
    return float(np.mean((output - test_images)[masks] ** 2))


corruption_table = {
    "noise (MSE to the clean digit)": (mse(noisy_test, test_images),
                                       mse(reconstruct(plain, noisy_test), test_images),
                                       mse(reconstruct(denoiser, noisy_test), test_images)),
    "masked patch (MSE inside the patch)": (in_patch_mse(masked_test),
                                            in_patch_mse(reconstruct(plain, masked_test)),
                                            in_patch_mse(reconstruct(denoiser, masked_test))),
}
print(f"denoising autoencoder trained in {timer.seconds:.1f} s; test digits:")
print(f"  {'corruption':<38} {'input':>8} {'plain AE':>9} {'denoising AE':>13}")
for name, (raw, plain_error, denoised_error) in corruption_table.items():
    print(f"  {name:<38} {raw:8.4f} {plain_error:9.4f} {denoised_error:13.4f}")

# %%
show_rows([test_images[picks, 0], noisy_test[picks, 0], reconstruct(plain, noisy_test[picks])[:, 0],
           reconstruct(denoiser, noisy_test[picks])[:, 0], masked_test[picks, 0],
           reconstruct(plain, masked_test[picks])[:, 0],
           reconstruct(denoiser, masked_test[picks])[:, 0]],
          ["clean", "noisy", "plain AE", "denoising AE", "masked", "plain AE", "denoising AE"],
          args.out / "denoising_inpainting.png", "corrupted test digits in, clean digits out")

# %% [markdown]
# ## 3. The variational autoencoder
#
# ### The reparameterization trick
#
# The VAE's encoder gives, for each input, a mean mu and a log-variance
# log sigma^2 per code dimension; the decoder is fed a *sample* z of
# N(mu, sigma^2). Training needs the gradient of the expected loss
# E_z[f(z)] with respect to mu and sigma. A sample drawn by a random number
# generator has no path back to mu: autograd sees z as a constant. The trick
# is to draw eps ~ N(0, 1), which does not depend on the parameters, and write
#
#     z = mu + sigma * eps,      sigma = exp(log sigma^2 / 2),
#
# an ordinary differentiable function of mu and sigma. Take f(z) = (z - 2)^2
# with mu = 0.5, sigma = 0.8: then E[f] = (mu - 2)^2 + sigma^2 and the exact
# gradient is dE/dmu = 2 (mu - 2) = -3. Without the trick the only unbiased
# estimate is the *score function* (REINFORCE, Williams 1992):
# dE/dmu = E[f(z) d log q(z)/dmu] = E[f(z) (z - mu) / sigma^2], which needs f
# but not its gradient, and is much noisier.

# %%
SAMPLES = 10_000
eps = minidl.randn(SAMPLES, dtype=np.float64)
mu = Tensor(np.array(0.5), requires_grad=True)
log_var = Tensor(np.array(np.log(0.8 ** 2)), requires_grad=True)
exact = 2 * (0.5 - 2)

# (a) Sample first, then compute: z is data to autograd, so no gradient can reach mu.
z_sampled = Tensor(np.random.default_rng(args.seed).normal(0.5, 0.8, SAMPLES))
loss_sampled = ((z_sampled - 2) ** 2).mean()
try:
    loss_sampled.backward()
except RuntimeError as error:
    print(f"(a) z drawn by the generator:   backward refuses: {str(error)[:60]}...")
print(f"    the loss requires grad: {loss_sampled.requires_grad}; mu.grad = {mu.grad}")
assert mu.grad is None

# (b) Reparameterized: z = mu + sigma * eps, and autograd differentiates through it.
z = mu + (0.5 * log_var).exp() * eps
((z - 2) ** 2).mean().backward()
pathwise = 2 * (z.data - 2)  # each sample's d f / d mu (what backward averaged)
print(f"(b) z = mu + sigma * eps:       mu.grad = {float(mu.grad):.4f}  (exact {exact}); "
      f"per-sample std {pathwise.std():.2f}")

# (c) Score function, no gradient of f needed: f(z) (z - mu) / sigma^2.
score = (z.data - 2) ** 2 * (z.data - 0.5) / 0.8 ** 2
print(f"(c) score-function estimate:    {score.mean():.4f}; per-sample std {score.std():.2f}, "
      f"{(score.std() / pathwise.std()) ** 2:.1f}x the variance of (b)")
assert mu.grad is not None and abs(mu.grad - exact) < 4 * pathwise.std() / np.sqrt(SAMPLES)
assert abs(score.mean() - exact) < 4 * score.std() / np.sqrt(SAMPLES)
assert score.std() > pathwise.std()

# %% [markdown]
# ### The ELBO's two terms
#
# For an image x, the VAE minimizes the negative evidence lower bound
#
#     -ELBO(x) = E_{z ~ q(z|x)}[-log p(x|z)] + KL(q(z|x) || N(0, I))
#
# with one sample of z per image for the first term. The decoder's output is
# read as 64 Bernoulli probabilities (logits; the digits' grey levels are
# treated as probabilities, as Kingma & Welling did for MNIST), so -log p(x|z)
# is the binary cross-entropy summed over the pixels
# (`binary_cross_entropy_with_logits` in `minidl/ops/loss.py`). The KL of two
# Gaussians has a closed form, 1/2 sum_j (mu_j^2 + sigma_j^2 - log sigma_j^2 -
# 1): `F.kl_normal` in `minidl/ops/gaussian.py`. Both terms are in nats per
# image. The code has 2 dimensions, so that we can draw it.

# %%
class VAE(nn.Module):
    """encoder: x -> [N, 2 d] (mu and log sigma^2 side by side); decoder: z [N, d] -> logits."""

    def __init__(self, encoder, decoder, code_size):
        super().__init__()
        self.encoder, self.decoder, self.code_size = encoder, decoder, code_size

    def encode(self, x):
        stats = self.encoder(x)
        return stats[:, :self.code_size], stats[:, self.code_size:]  # mu, log sigma^2

    def forward(self, x):
        mu, log_var = self.encode(x)
        z = mu + (0.5 * log_var).exp() * minidl.randn(*mu.shape)  # the reparameterization
        return self.decoder(z), mu, log_var


def negative_elbo_terms(model, x, beta=1.0):
    """The two terms of -ELBO for a batch, in nats per image; the KL weighted by beta."""
    x = Tensor(x)
    logits, mu, log_var = model(x)
    reconstruction = F.binary_cross_entropy_with_logits(logits, x, reduction="sum") / len(x)
    kl = F.kl_normal(mu, log_var, reduction="batchmean")  # sum over dimensions, mean over images
    return {"reconstruction": reconstruction, "KL": beta * kl}


def vae_terms_on(model, images):
    model.eval()
    with minidl.no_grad():
        terms = negative_elbo_terms(model, images)
    return {name: value.item() for name, value in terms.items()}


minidl.manual_seed(args.seed)
vae = VAE(conv_encoder(2 * 2), conv_decoder(2), code_size=2)
with minidl.no_grad():
    logits, mu_batch, log_var_batch = vae(Tensor(train_images[:4]))
print(f"VAE: x {train_images[:4].shape} -> mu {mu_batch.shape}, log sigma^2 "
      f"{log_var_batch.shape} -> z -> logits {logits.shape}")
VAE_EPOCHS = 40 if not args.quick else 2
with Timer() as timer:
    vae_history = fit(vae, train_images, negative_elbo_terms, epochs=VAE_EPOCHS)
vae_test = vae_terms_on(vae, test_images)
negative_elbo = vae_test["reconstruction"] + vae_test["KL"]
print(f"trained in {timer.seconds:.1f} s; test digits: reconstruction "
      f"{vae_test['reconstruction']:.2f} + KL {vae_test['KL']:.2f} = -ELBO {negative_elbo:.2f} "
      "nats per image")

fig, ax = plt.subplots(figsize=(6, 4))
epochs_axis = np.arange(1, VAE_EPOCHS + 1)
ax.plot(epochs_axis, vae_history["reconstruction"], label="reconstruction: E[-log p(x|z)]")
ax.plot(epochs_axis, vae_history["KL"], label="KL(q(z|x) || N(0, I))")
ax.plot(epochs_axis, np.add(vae_history["reconstruction"], vae_history["KL"]), "k--",
        label="-ELBO (their sum)")
ax.set(xlabel="epoch", ylabel="nats per image (training batches)", yscale="log",
       title="the VAE's loss, term by term")
ax.legend()
save_figure(fig, args.out / "elbo_terms.png")

# %% [markdown]
# ### The code space, samples of the prior, an interpolation
#
# The means mu of the test digits, coloured by class (the VAE never saw a
# label). How well the classes separate: a 1-nearest-neighbour classifier in
# the 2-D code (training digits' means as references) on the test digits.

# %%
def code_means(model, images):
    model.eval()
    with minidl.no_grad():
        return model.encode(Tensor(images))[0].data


test_codes, train_codes = code_means(vae, test_images), code_means(vae, train_images)
nearest = ((test_codes[:, None] - train_codes[None]) ** 2).sum(axis=2).argmin(axis=1)
knn_accuracy = float(np.mean(train_labels[nearest] == test_labels))
print(f"1-nearest-neighbour accuracy in the 2-D code: {knn_accuracy:.1%} (chance 10%)")

fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
for digit in range(10):
    mine = test_labels == digit
    axes[0].scatter(*test_codes[mine].T, s=9, color=plt.cm.tab10(digit), label=str(digit))
    axes[0].annotate(str(digit), test_codes[mine].mean(axis=0), fontsize=14, weight="bold")
axes[0].set(xlabel="mu_1", ylabel="mu_2", title="test digits in the VAE's 2-D code")
axes[0].legend(markerscale=2, fontsize=8, ncol=2)
# The decoder over a grid of the prior's quantiles (from 5% to 95% in each dimension).
grid = np.array([NormalDist().inv_cdf(q) for q in np.linspace(0.05, 0.95, 10)])
points = np.array([[a, b] for b in grid[::-1] for a in grid], dtype=np.float32)
vae.eval()
with minidl.no_grad():
    decoded = vae.decoder(Tensor(points)).sigmoid().data[:, 0]
tiles = np.pad(decoded, ((0, 0), (1, 0), (1, 0)), constant_values=np.nan)  # a gap between tiles
canvas = tiles.reshape(10, 10, 9, 9).transpose(0, 2, 1, 3).reshape(90, 90)
axes[1].imshow(canvas, cmap="gray_r", vmin=0, vmax=1,
               extent=(grid[0], grid[-1], grid[0], grid[-1]))
axes[1].set(xlabel="z_1", ylabel="z_2", title="the decoder over the prior's 5%..95% quantiles")
save_figure(fig, args.out / "vae_code_space.png")

# %%
with minidl.no_grad():
    prior_samples = vae.decoder(minidl.randn(20, 2)).sigmoid().data[:, 0]
first, second = picks[0], picks[2]  # a test 0 and a test 2
ends = code_means(vae, test_images[[first, second]])
steps = np.linspace(0, 1, 10)[:, None]
with minidl.no_grad():
    along_code = vae.decoder(Tensor(((1 - steps) * ends[0] + steps * ends[1])
                                    .astype(np.float32))).sigmoid().data[:, 0]
along_pixels = (1 - steps[:, :, None]) * test_images[first, 0] + steps[:, :, None] * \
    test_images[second, 0]
show_rows([prior_samples[:10], prior_samples[10:], along_code, along_pixels],
          ["prior samples", "", "code path", "pixel path"], args.out / "vae_samples.png",
          "z ~ N(0, I) decoded; a 0 turning into a 2 along the code and in pixel space")

# %% [markdown]
# ## 4. beta-VAE on known factors
#
# The images of `factors_dataset` (in `minidl/data/factors.py`) are made from
# five factors, each known for every image: shape (3 values), size (4),
# colour (4), x (8), y (8). A code is *disentangled* if each factor is read
# off one code dimension that no other dimension shares. beta-VAE (Higgins et
# al. 2017) weighs the KL term by beta:
#
#     loss = E[-log p(x|z)] + beta * KL(q(z|x) || N(0, I))
#
# With beta > 1 each code dimension is pushed harder towards the prior's
# independent, unit-variance coordinates, at the price of a worse
# reconstruction. The score: the *mutual information gap* (MIG) of Chen, Li,
# Grosse & Duvenaud (2018), "Isolating Sources of Disentanglement in VAEs":
# for each factor v_k, take the two code dimensions with the largest mutual
# information I(z_j; v_k) with it, and divide the gap between them by the
# factor's entropy H(v_k); average over the factors. It is 1 when each factor
# lives in exactly one dimension, 0 when the best dimension knows no more than
# the second best. The mutual information is estimated from a 20-bin
# histogram of each dimension's means over all 3,072 images (the estimator of
# Locatello et al. 2019). `mutual_information_gap` in `minidl/data/factors.py`.
#
# The model: multi-layer perceptrons, as Higgins et al. used for dSprites
# (768 -> 128 -> 128 -> 2 x 10 for the encoder, the mirror image for the
# decoder), 10 code dimensions, Bernoulli pixels (each pixel of these images
# is exactly 0 or 1), Adam (1e-3), 30 epochs of batches of 64, for beta in
# 0.5, 1, 4, 8 and three seeds each, the same budget for every beta.

# %%
factor_images, factor_values = factors_dataset(seed=0)
if args.quick:
    factor_images, factor_values = factor_images[:512], factor_values[:512]
flat_factors = factor_images.reshape(len(factor_images), -1)
print(f"factors data set: images {factor_images.shape}, factors {factor_values.shape} "
      f"({', '.join(FACTOR_NAMES)}); entropies {np.round(entropy(factor_values), 2)} nats")

fig, axes = plt.subplots(2, 10, figsize=(12, 2.8))
for ax, image, values in zip(axes.flat, factor_images, factor_values):
    ax.imshow(image.transpose(1, 2, 0))
    ax.set_title(",".join(str(v) for v in values), fontsize=7)
    ax.axis("off")
fig.suptitle(f"factors data set ({', '.join(FACTOR_NAMES)} under each image)")
save_figure(fig, args.out / "factors_data.png")


def mlp(sizes):
    """Linear layers of the given sizes with ReLUs between them."""
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(n_in, n_out), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def mlp_vae(code_size=10, hidden=128, pixels=3 * 16 * 16):
    """The VAE of section 3 with MLPs: x [N, 768] -> mu, log sigma^2 [N, d] -> logits [N, 768]."""
    return VAE(mlp([pixels, hidden, hidden, 2 * code_size]),
               mlp([code_size, hidden, hidden, pixels]), code_size)


BETAS = [0.5, 1, 4, 8] if not args.quick else [1, 8]
BETA_SEEDS = [args.seed, args.seed + 1, args.seed + 2] if not args.quick else [args.seed]
BETA_EPOCHS = 30 if not args.quick else 2
beta_results, beta_models = {}, {}
with Timer() as timer:
    for beta in BETAS:
        for seed in BETA_SEEDS:
            minidl.manual_seed(seed)
            model = mlp_vae()
            fit(model, flat_factors, lambda m, x, beta=beta: negative_elbo_terms(m, x, beta),
                epochs=BETA_EPOCHS, lr=1e-3, seed=seed)
            model.eval()
            with minidl.no_grad():
                mu_all, log_var_all = model.encode(Tensor(flat_factors))
                logits = model.decoder(mu_all)  # reconstruction from the means
                reconstruction = F.binary_cross_entropy_with_logits(
                    logits, Tensor(flat_factors), reduction="sum").item() / len(flat_factors)
                kl_per_dimension = F.kl_normal(mu_all, log_var_all).data.mean(axis=0)
            mig, gaps, mi = mutual_information_gap(mu_all.data, factor_values)
            beta_results[beta, seed] = dict(reconstruction=reconstruction,
                                            kl=float(kl_per_dimension.sum()),
                                            kl_per_dimension=kl_per_dimension, mig=mig,
                                            gaps=gaps, mi=mi)
            beta_models[beta, seed] = model
            print(f"beta {beta:3}: seed {seed}: reconstruction {reconstruction:6.1f}, KL "
                  f"{kl_per_dimension.sum():5.1f} nats; dimensions with KL > 0.5 nats: "
                  f"{int((kl_per_dimension > 0.5).sum())}; MIG {mig:.3f} (per factor "
                  f"{np.round(gaps, 2)})", flush=True)
print(f"  {timer.seconds:.0f} s for {len(BETAS) * len(BETA_SEEDS)} beta-VAEs")


def beta_mean(key, beta):
    return float(np.mean([beta_results[beta, s][key] for s in BETA_SEEDS]))


print("\n| beta | reconstruction (nats) | KL (nats) | MIG, mean | MIG, each seed |")
print("|---|---|---|---|---|")
for beta in BETAS:
    print(f"| {beta} | {beta_mean('reconstruction', beta):.1f} | {beta_mean('kl', beta):.2f} | "
          f"{beta_mean('mig', beta):.3f} | "
          f"{', '.join(f'{m:.3f}' for m in (beta_results[beta, s]['mig'] for s in BETA_SEEDS))} |")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
for beta in BETAS:
    for seed in BETA_SEEDS:
        r = beta_results[beta, seed]
        axes[0].scatter(r["kl"], r["reconstruction"], color=f"C{BETAS.index(beta)}",
                        label=f"beta = {beta}" if seed == BETA_SEEDS[0] else None)
        axes[1].scatter(beta, r["mig"], color=f"C{BETAS.index(beta)}")
axes[0].set(xlabel="KL (nats per image)", ylabel="reconstruction (nats per image)",
            title="the rate-distortion trade-off: one dot per seed")
axes[0].legend()
axes[1].plot(BETAS, [beta_mean("mig", b) for b in BETAS], "k--", label="mean over seeds")
axes[1].set(xscale="log", xlabel="beta", ylabel="MIG", title="disentanglement (Chen et al. 2018)")
axes[1].set_xticks(BETAS, [str(b) for b in BETAS])
axes[1].tick_params(axis="x", which="minor", labelbottom=False)
axes[1].legend()
save_figure(fig, args.out / "beta_sweep.png")

# %% [markdown]
# Latent traversals: encode one image, then vary one code dimension at a time
# from -2.5 to 2.5 while the others keep their means, and decode. Rows are
# the dimensions ordered by their KL (how much they are used); each row is
# labelled with the factor it shares most information with, as a fraction of
# that factor's entropy. Beside them, the mutual information of every
# dimension with every factor.

# %%
def traversal_figure(beta, seed, path):
    model, r = beta_models[beta, seed], beta_results[beta, seed]
    order = np.argsort(-r["kl_per_dimension"])[:6]
    normalized = r["mi"] / entropy(factor_values)[None]  # [d, K]
    model.eval()
    with minidl.no_grad():
        base = model.encode(Tensor(flat_factors[:1]))[0].data[0]
        values = np.linspace(-2.5, 2.5, 9)
        fig = plt.figure(figsize=(15, 6))
        grid = fig.add_gridspec(len(order), len(values) + 6)
        for row, dim in enumerate(order):
            codes = np.repeat(base[None], len(values), axis=0)
            codes[:, dim] = values
            images = model.decoder(Tensor(codes.astype(np.float32))).sigmoid().data
            for col, image in enumerate(images.reshape(-1, 3, 16, 16)):
                ax = fig.add_subplot(grid[row, col])
                ax.imshow(image.transpose(1, 2, 0))
                ax.axis("off")
            factor = int(np.argmax(normalized[dim]))
            ax.text(1.15, 0.5, f"z{dim}: KL {r['kl_per_dimension'][dim]:.1f}, "
                    f"{FACTOR_NAMES[factor]} {normalized[dim, factor]:.0%}",
                    transform=ax.transAxes, va="center", fontsize=9)
        heat = fig.add_subplot(grid[:, len(values) + 3:])
        shown = heat.imshow(normalized[order], cmap="viridis", vmin=0, vmax=1, aspect="auto")
        heat.set(xticks=range(len(FACTOR_NAMES)), yticks=range(len(order)),
                 title="I(z_j; v_k) / H(v_k)")
        heat.set_xticklabels(FACTOR_NAMES, rotation=45)
        heat.set_yticklabels([f"z{d}" for d in order])
        fig.colorbar(shown, ax=heat)
        fig.suptitle(f"beta = {beta}, seed {seed}: MIG {r['mig']:.3f}")
        save_figure(fig, path)


traversal_figure(BETAS[1] if len(BETAS) > 2 else BETAS[0], BETA_SEEDS[0],
                 args.out / "traversals_low_beta.png")
traversal_figure(BETAS[-1], BETA_SEEDS[0], args.out / "traversals_high_beta.png")

# %% [markdown]
# ## 5. What we measured
#
# Full run, seed 0 (the beta-VAEs: seeds 0, 1, 2), one BLAS thread
# (`OPENBLAS_NUM_THREADS=1`; with more threads the sums are rounded in
# another order and the trained networks differ slightly). Test digits.
#
# | code size d | 2 | 4 | 8 | 16 | 32 |
# |---|---|---|---|---|---|
# | conv autoencoder, test MSE per pixel | 0.0440 | 0.0307 | 0.0156 | 0.0087 | 0.0043 |
# | PCA, test MSE per pixel | 0.0518 | 0.0379 | 0.0238 | 0.0113 | 0.0026 |
# | PCA's share of the training variance | 29% | 49% | 68% | 85% | 97% |
#
# * **The bottleneck.** The error falls with every doubling of the code. The
#   non-linear autoencoder beats PCA up to d = 16 (by 15% at d = 2, 34% at
#   d = 8); at d = 32 PCA, which keeps 97% of the variance, wins: the
#   autoencoder, trained for the same 30 epochs as the others, does not reach
#   that precision.
# * **Linear autoencoder = PCA's subspace.** At d = 4: test MSE 0.03787 for
#   both, principal angles 0, 0, 0 and 0.09 degrees; yet each decoder column
#   lies 18 to 26 degrees from the nearest principal direction.
# * **Denoising and inpainting** (MSE to the clean digit; inside the patch for
#   the masked ones): noise 0.0521 -> plain 0.0266 -> denoising 0.0243; masked
#   patch 0.3160 -> plain 0.2094 -> denoising 0.0618. The plain autoencoder
#   already removes much of the noise (it cannot code it in 16 numbers), but
#   only the one trained on masks fills the holes.
# * **The reparameterization trick.** With 10,000 samples: pathwise -2.990,
#   score function -2.982 (exact -3), the score function with 19.6 times the
#   variance; without either, backward refuses, as the loss does not depend on
#   mu.
# * **The VAE, d = 2.** Test -ELBO 25.19 nats per image = 23.08 reconstruction
#   + 2.11 KL; 1-nearest-neighbour accuracy in the 2-D code 67.0% (chance 10%).
#
# | beta | reconstruction (nats) | KL (nats) | dims with KL > 0.5 | MIG | MIG, seeds 0, 1, 2 |
# |---|---|---|---|---|---|
# | 0.5 | 16.4 | 16.79 | 8-9 | 0.083 | 0.098, 0.080, 0.069 |
# | 1 | 18.0 | 11.71 | 6 | 0.093 | 0.035, 0.156, 0.087 |
# | 4 | 25.6 | 6.22 | 4-5 | 0.099 | 0.165, 0.077, 0.055 |
# | 8 | 50.4 | 3.23 | 2-3 | 0.143 | 0.214, 0.119, 0.095 |
#
# * **The trade-off is clean**: every step up in beta costs reconstruction and
#   buys a smaller KL, in every seed; the code uses fewer dimensions.
# * **Disentanglement rises on average, weakly**: the mean MIG grows from 0.08
#   to 0.14 from beta = 0.5 to 8, but the seeds of one beta spread over as much
#   as the whole trend (0.035 to 0.156 at beta = 1), as Locatello et al. (2019)
#   found at scale. The gain comes almost entirely from colour: at beta = 8,
#   seed 0, one dimension holds all of it (gap 0.82; the traversals), while
#   x, y and size have gaps of 0.06 to 0.11 (spread over several dimensions,
#   or only partly coded: the heat map) and shape is barely coded at all.
#
# Times: the full run took 177 s of CPU time (one BLAS thread; 12.5 minutes
# of wall-clock on a 2-core machine shared with other jobs, so to be
# re-measured on an idle one).

# %%
lesson_timer.__exit__()
print(f"whole lesson: {lesson_timer.seconds:.0f} s")
if not args.quick:
    mse_by_size = [sweep_mse[d] for d in CODE_SIZES]
    assert all(a > b for a, b in zip(mse_by_size, mse_by_size[1:])), mse_by_size
    assert sweep_mse[2] < pca_test_mse(2), (sweep_mse[2], pca_test_mse(2))
    assert largest_angle < 2, angles
    assert linear_test_mse < 1.01 * pca_test_mse(LINEAR_CODE)
    for raw, plain_error, denoised_error in corruption_table.values():
        assert denoised_error < plain_error and denoised_error < raw, corruption_table
    assert knn_accuracy > 0.5, knn_accuracy
    recs = [beta_mean("reconstruction", b) for b in BETAS]
    kls = [beta_mean("kl", b) for b in BETAS]
    assert all(a < b for a, b in zip(recs, recs[1:])), recs
    assert all(a > b for a, b in zip(kls, kls[1:])), kls
    assert beta_mean("mig", BETAS[-1]) > beta_mean("mig", BETAS[0])

# %% [markdown]
# ## Exercises
#
# Each exercise ends with a check: run it after your change, and it prints
# whether your number lies where a correct solution's does (seed 0, full run).
#
# 1. **Posterior collapse.** Give the VAE a Gaussian decoder of fixed variance
#    instead of the Bernoulli one: in a copy of `negative_elbo_terms`, make the
#    reconstruction term `F.gaussian_nll_loss(mean, x, var, full=True,
#    reduction="sum") / len(x)` (`minidl/ops/gaussian.py`; the decoder's
#    output is now the mean pixel value). Train `VAE(conv_encoder(4),
#    conv_decoder(2), 2)` as in section 3 with var = 1, then with var = 0.01,
#    and compute the KL on the test digits. With var = 1 a pixel's squared
#    error costs at most half a nat, less than what a code costs in KL: the
#    encoder gives up, every digit gets the prior as its code and decodes to
#    the same blur. How does the decoder variance play the role of beta?
#    Check: `check_range("KL with variance 1", kl, 0, 0.05)` and
#    `check_range("KL with variance 0.01", kl, 4.5, 7.5)`.
# 2. **Where gradient descent cannot tell two directions apart.** Train
#    `train_linear_autoencoder(9)` and compare its test MSE and its
#    `principal_angles(model, 9)` with PCA's. The 9th and 10th principal
#    variances differ by 3%: why does the error match PCA's while one angle
#    stays large?
#    Check: `check_range("d = 9: test MSE / PCA's", mse9 / pca_test_mse(9), 1.0, 1.05)` and
#    `check_range("d = 9: largest angle", principal_angles(model9, 9).max(), 30, 90)`.
# 3. **Masks only.** Train the denoising autoencoder with masked patches on
#    every image and no noise (change `corrupt`). Is it a better inpainter
#    than the mixed one, and what does it do with noise it never saw?
#    Check: `check_range("masks only: MSE inside the patch", in_patch_mse(reconstruct(masker,
#    masked_test)), 0.045, 0.07)` and `check_range("masks only: MSE on noisy digits",
#    mse(reconstruct(masker, noisy_test), test_images), 0.028, 0.045)`.
# 4. **Seeds against beta.** Train beta = 1 and beta = 8 with three new seeds
#    (3, 4, 5) and compute their MIG. Locatello et al. (2019) found, on far
#    larger models and data, that the random seed moves the disentanglement
#    scores as much as the choice of beta: is that so here?
#    Check: `check_range("beta 1, seeds 3-5: mean MIG", mig_1, 0.02, 0.15)` and
#    `check_range("beta 8, seeds 3-5: mean MIG", mig_8, 0.08, 0.25)`.
