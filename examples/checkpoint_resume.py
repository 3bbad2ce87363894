"""Save a checkpoint, load it, and resume training exactly where it stopped.

A checkpoint is the dict PyTorch tutorials save: the model's state_dict, the
optimizer's (momentum buffers, learning rate), the step and the last loss.
`minidl.save` writes it as one .npz file, atomically (a crash mid-save never
destroys the last good checkpoint), and `minidl.load` gives the dict back.

    python examples/checkpoint_resume.py [folder]
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.optim import SGD


def make_model_and_optimizer():
    model = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    return model, optimizer


def train(model, optimizer, steps, x, y):
    for _ in range(steps):
        optimizer.zero_grad()
        loss = F.mse_loss(model(x), y)
        loss.backward()
        optimizer.step()
    return loss.item()


def save_checkpoint(path, model, optimizer, step, loss):
    minidl.save({"step": step,
                 "model_state_dict": model.state_dict(),
                 "optimizer_state_dict": optimizer.state_dict(),
                 "loss": loss}, path)


def load_checkpoint(path, model, optimizer):
    checkpoint = minidl.load(path)
    model.load_state_dict(checkpoint["model_state_dict"])
    optimizer.load_state_dict(checkpoint["optimizer_state_dict"])
    return checkpoint["step"]


def main(folder=None):
    folder = Path(folder or tempfile.mkdtemp())
    rng = np.random.default_rng(0)
    x = Tensor(rng.normal(size=(64, 4)).astype(np.float32))
    y = Tensor((x.data.sum(1, keepdims=True) ** 2 / 4).astype(np.float32))

    # Reference: 40 uninterrupted steps.
    minidl.manual_seed(0)
    model, optimizer = make_model_and_optimizer()
    uninterrupted = train(model, optimizer, 40, x, y)

    # Same start, 20 steps, checkpoint, "crash", new objects, load, 20 more steps.
    minidl.manual_seed(0)
    model, optimizer = make_model_and_optimizer()
    loss = train(model, optimizer, 20, x, y)
    save_checkpoint(folder / "checkpoint.npz", model, optimizer, step=20, loss=loss)
    del model, optimizer

    minidl.manual_seed(123)  # a different seed: everything must come from the checkpoint
    model, optimizer = make_model_and_optimizer()
    step = load_checkpoint(folder / "checkpoint.npz", model, optimizer)
    resumed = train(model, optimizer, 40 - step, x, y)

    print(f"loss after 40 steps: uninterrupted {uninterrupted:.6f}, resumed {resumed:.6f}")
    assert np.isclose(uninterrupted, resumed, rtol=1e-5), (uninterrupted, resumed)
    return uninterrupted, resumed


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
