# %% [markdown]
# # Lesson 01 — Autograd and gradient descent
#
# **Lecture idea.** A neural network is a function built from simple pieces; the
# chain rule gives the derivative of the loss with respect to every parameter
# (backpropagation), and gradient descent walks downhill along it. An MLP with
# one hidden layer can approximate non-linear functions a linear model cannot.
#
# **What you build.** The chain rule by hand on a tiny expression, checked
# against minidl's autograd and `gradcheck`; gradient descent from w = 0 on a
# linearly separable 2-D problem; a linear model failing on a non-linear
# problem and an MLP solving it; an MLP fitting a curve; finally an MLP on real
# handwritten digits (UCI 8x8 digits, shipped with minidl).
#
# **Expected result.** The digits MLP reaches >= 96% test accuracy.
# Full run on a 2-core laptop: under a minute.
#
# *Measured on a 2-core machine (full run): seed 0 — 98.25% test accuracy,
# digits training 1.5 s, whole lesson 4 s; seeds 1 and 2 — 98.00% and 97.75%.*
#
# Run: `python lessons/01_autograd_and_gradient_descent.py [--quick] [--seed S] [--out DIR]`

# %%
import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset, digits
from minidl.optim import SGD
from minidl.optim.lr_scheduler import CosineAnnealingLR
from minidl.utils.lesson import Timer, lesson_args, save_figure
from minidl.utils.training import evaluate, predict, train_epoch

args = lesson_args("01_autograd_and_gradient_descent", __doc__)
import matplotlib.pyplot as plt  # noqa: E402  (after lesson_args picked the backend)

# %% [markdown]
# ## 1. The chain rule by hand
#
# Take one neuron and a squared error: `z = w*x + b`, `a = tanh(z)`,
# `L = (a - y)^2`. The chain rule multiplies local derivatives along the path
# from L back to w:
#
#     dL/da = 2 (a - y)
#     da/dz = 1 - tanh(z)^2
#     dz/dw = x,   dz/db = 1
#     dL/dw = dL/da * da/dz * dz/dw

# %%
w_value, b_value, x_value, y_value = 0.5, -0.3, 2.0, 1.0
z = w_value * x_value + b_value
a = np.tanh(z)
loss_value = (a - y_value) ** 2
dL_da = 2 * (a - y_value)
da_dz = 1 - np.tanh(z) ** 2
by_hand = {"w": dL_da * da_dz * x_value, "b": dL_da * da_dz * 1.0}
print(f"forward: z = {z:.4f}, a = {a:.4f}, L = {loss_value:.4f}")
print(f"by hand: dL/dw = {by_hand['w']:.6f}, dL/db = {by_hand['b']:.6f}")

# %% [markdown]
# The same expression with minidl tensors. `backward()` walks the recorded graph
# from L to the leaves and applies exactly the products above.

# %%
w = Tensor(w_value, requires_grad=True, dtype=np.float64)
b = Tensor(b_value, requires_grad=True, dtype=np.float64)
x, y = Tensor(x_value, dtype=np.float64), Tensor(y_value, dtype=np.float64)
L = ((w * x + b).tanh() - y) ** 2
L.backward()
print(f"autograd: dL/dw = {w.grad.item():.6f}, dL/db = {b.grad.item():.6f}")
assert np.isclose(w.grad.item(), by_hand["w"]) and np.isclose(b.grad.item(), by_hand["b"])

# gradcheck compares backward with central differences (f(x+eps) - f(x-eps)) / 2eps.
print("gradcheck:", minidl.gradcheck(lambda w, b: ((w * x + b).tanh() - y) ** 2, [w, b]))

# %% [markdown]
# ## 2. Gradient descent on a linearly separable problem
#
# Two Gaussian blobs with labels -1 and +1. The model is linear,
# `f(x) = w . x + b`, the loss the mean squared error to the label. We start
# from w = 0 and take steps `w <- w - lr * dL/dw` with a fixed learning rate.

# %%
rng = np.random.default_rng(args.seed)


def two_blobs(n):
    centres = np.array([[-1.5, -1.0], [1.5, 1.0]])
    labels = rng.integers(0, 2, n)
    points = centres[labels] + rng.normal(0, 0.6, (n, 2))
    return points.astype(np.float32), (2.0 * labels - 1).astype(np.float32)


points, signs = two_blobs(200)
X, Y = Tensor(points), Tensor(signs)
weight = Tensor(np.zeros(2, np.float32), requires_grad=True)
bias = Tensor(np.zeros(1, np.float32), requires_grad=True)
lr, history = 0.1, []
for _step in range(100):
    loss = ((X @ weight + bias - Y) ** 2).mean()
    weight.grad = bias.grad = None  # gradients accumulate, so clear them each step
    loss.backward()
    weight.data -= lr * weight.grad
    bias.data -= lr * bias.grad
    history.append(loss.item())
separable_accuracy = np.mean(np.sign(points @ weight.data + bias.data) == signs)
print(f"loss {history[0]:.3f} -> {history[-1]:.3f}; training accuracy {separable_accuracy:.1%}")


def draw_boundary(ax, predict_fn, points, labels, title):
    """Colour the plane by the model's output and draw the data on top."""
    xs = np.linspace(points[:, 0].min() - 0.5, points[:, 0].max() + 0.5, 150)
    ys = np.linspace(points[:, 1].min() - 0.5, points[:, 1].max() + 0.5, 150)
    grid = np.stack(np.meshgrid(xs, ys), -1).reshape(-1, 2).astype(np.float32)
    ax.contourf(xs, ys, predict_fn(grid).reshape(150, 150), levels=20, cmap="RdBu", alpha=0.6)
    ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="RdBu", edgecolors="k", s=12)
    ax.set_title(title)


fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].plot(history)
axes[0].set(xlabel="step", ylabel="MSE", title="gradient descent from w = 0")
draw_boundary(axes[1], lambda g: g @ weight.data + bias.data, points, signs,
              f"linear model: {separable_accuracy:.0%} correct")
save_figure(fig, args.out / "linear_separable.png")

# %% [markdown]
# ## 3. A linear model fails on a non-linear problem
#
# Points inside a circle are one class, points outside the other. No straight
# line separates them, so the best linear model does no better than always
# answering "outside" (about 65% of the points are outside).

# %%
def circles(n):
    points = rng.uniform(-2, 2, (n, 2)).astype(np.float32)
    inside = (points**2).sum(1) < 1.8
    return points, inside.astype(np.int64)


circle_points, circle_labels = circles(600 if not args.quick else 200)
linear = nn.Linear(2, 2)
steps = 300 if not args.quick else 30


def fit_classifier(model, lr):
    optimizer = SGD(model.parameters(), lr=lr, momentum=0.9)
    inputs, targets = Tensor(circle_points), Tensor(circle_labels)
    for _ in range(steps):
        optimizer.zero_grad()
        F.cross_entropy(model(inputs), targets).backward()
        optimizer.step()
    with minidl.no_grad():
        return float(np.mean(model(inputs).data.argmax(1) == circle_labels))


linear_accuracy = fit_classifier(linear, lr=0.1)
print(f"linear model on circles: {linear_accuracy:.1%} training accuracy")

# %% [markdown]
# ## 4. An MLP is a non-linear function approximator
#
# One hidden layer of tanh units: `f(x) = W2 tanh(W1 x + b1) + b2`. Each hidden
# unit is a soft step; their weighted sum can bend the decision boundary into
# a circle. The same architecture fits a 1-D curve by regression.

# %%
mlp = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
mlp_accuracy = fit_classifier(mlp, lr=0.1)
print(f"MLP on circles: {mlp_accuracy:.1%} training accuracy")


def class_one_probability(model):
    def probability(grid):
        with minidl.no_grad():
            return F.softmax(model(Tensor(grid)), dim=1).data[:, 1]
    return probability


curve_x = np.linspace(-3, 3, 200, dtype=np.float32)[:, None]
curve_y = np.sin(2 * curve_x) + 0.3 * curve_x
regressor = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 1))
optimizer = SGD(regressor.parameters(), lr=0.05, momentum=0.9)
for _ in range(1500 if not args.quick else 50):
    optimizer.zero_grad()
    fit_loss = F.mse_loss(regressor(Tensor(curve_x)), Tensor(curve_y))
    fit_loss.backward()
    optimizer.step()
print(f"MLP regression of sin(2x) + 0.3x: MSE {fit_loss.item():.4f}")

fig, axes = plt.subplots(1, 3, figsize=(15, 4))
draw_boundary(axes[0], class_one_probability(linear), circle_points, circle_labels,
              f"linear: {linear_accuracy:.0%}")
draw_boundary(axes[1], class_one_probability(mlp), circle_points, circle_labels,
              f"MLP, 16 tanh units: {mlp_accuracy:.0%}")
with minidl.no_grad():
    axes[2].plot(curve_x, curve_y, label="target")
    axes[2].plot(curve_x, regressor(Tensor(curve_x)).data, "--", label="MLP")
axes[2].legend()
axes[2].set_title("function approximation")
save_figure(fig, args.out / "mlp_vs_linear.png")

# %% [markdown]
# ## 5. An MLP on handwritten digits
#
# 1,797 scans of digits, 8x8 pixels (UCI, Alpaydin & Kaynak 1998). minidl ships
# them with a fixed train/test split. The MLP flattens each image to 64 numbers,
# maps them through a hidden layer of 128 ReLUs to 10 class scores, and is
# trained with SGD + momentum on the cross-entropy loss. The learning rate
# follows a cosine schedule: large steps early, small steps to settle at the end.

# %%
train_images, train_labels = digits("train")
test_images, test_labels = digits("test")
if args.quick:
    train_images, train_labels = train_images[:256], train_labels[:256]
print(f"train {train_images.shape}, test {test_images.shape}")

train_loader = DataLoader(TensorDataset(train_images, train_labels), batch_size=32, shuffle=True)
test_loader = DataLoader(TensorDataset(test_images, test_labels), batch_size=256)

model = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 10))
print(model)
epochs = 30 if not args.quick else 2
optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
scheduler = CosineAnnealingLR(optimizer, T_max=epochs * len(train_loader))

curves = {"loss": [], "train": [], "test": []}
with Timer() as timer:
    for epoch in range(epochs):
        curves["loss"].append(train_epoch(model, train_loader, F.cross_entropy, optimizer,
                                          scheduler, desc=f"epoch {epoch + 1}"))
        curves["train"].append(evaluate(model, train_loader))
        curves["test"].append(evaluate(model, test_loader))
        if epoch % 5 == 4 or epoch == epochs - 1:
            print(f"epoch {epoch + 1:2d}: loss {curves['loss'][-1]:.4f}, "
                  f"train {curves['train'][-1]:.1%}, test {curves['test'][-1]:.1%}")
test_accuracy = curves["test"][-1]
print(f"test accuracy {test_accuracy:.2%} after {epochs} epochs in {timer.seconds:.1f} s")

# %% [markdown]
# Loss and accuracy curves, and the test digits the model gets wrong.

# %%
fig, axes = plt.subplots(1, 2, figsize=(10, 4))
axes[0].plot(curves["loss"])
axes[0].set(xlabel="epoch", ylabel="training loss", yscale="log")
axes[1].plot(curves["train"], label="train")
axes[1].plot(curves["test"], label="test")
axes[1].set(xlabel="epoch", ylabel="accuracy")
axes[1].legend()
save_figure(fig, args.out / "digits_curves.png")

logits, targets = predict(model, test_loader)
wrong = np.flatnonzero(logits.argmax(1) != targets)
fig, axes = plt.subplots(2, 8, figsize=(12, 3.5))
for ax, i in zip(axes.flat, wrong):
    ax.imshow(test_images[i, 0], cmap="gray_r")
    ax.set_title(f"{targets[i]} -> {logits[i].argmax()}", fontsize=9)
for ax in axes.flat:
    ax.axis("off")
fig.suptitle(f"{len(wrong)} misclassified test digits (true -> predicted)")
save_figure(fig, args.out / "digits_misclassified.png")

if not args.quick:
    assert separable_accuracy > 0.95, separable_accuracy
    assert mlp_accuracy > linear_accuracy + 0.2, (mlp_accuracy, linear_accuracy)
    assert test_accuracy >= 0.96, f"expected >= 96% test accuracy, got {test_accuracy:.2%}"

# %% [markdown]
# ## Exercises
#
# 1. In section 2, raise the learning rate to 0.5, then 1.0. When does gradient
#    descent diverge, and why does the loss curve oscillate first?
# 2. Give the circle MLP 2 hidden units instead of 16. What shape can the
#    boundary take now?
# 3. Replace `nn.ReLU()` in the digits MLP by `nn.Tanh()`, or drop the cosine
#    schedule. How do test accuracy and the loss curve change?
# 4. Write the backward of `tanh` yourself as a `Function` (see
#    `examples/new_primitive.py`) and check it with `minidl.gradcheck`.
