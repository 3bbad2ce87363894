"""A training loop a student can read in one screen.

    for epoch in range(epochs):
        loss = train_epoch(model, train_loader, F.cross_entropy, optimizer)
        acc = evaluate(model, test_loader, accuracy)

That is all a framework's ``fit`` does: for each batch, clear the gradients,
compute the loss, backpropagate, take an optimizer step.
"""

from __future__ import annotations

import importlib.util
import os
import sys

import numpy as np

from minidl.autograd.mode import no_grad
from minidl.utils.lesson import in_notebook


def progress_enabled() -> bool:
    """Bars show in a terminal and in a notebook; not in logs or pipes, nor with TQDM_DISABLE=1."""
    if os.environ.get("TQDM_DISABLE", "") not in ("", "0"):  # tqdm's own switch
        return False
    return in_notebook() or sys.stderr.isatty()


def progress(iterable, desc: str = "", total: int | None = None, leave: bool = False):
    """A tqdm progress bar: the notebook widget in a notebook with ipywidgets, else plain text.

    Silent where nobody watches (output redirected to a log, the test suite).
    """
    if in_notebook() and importlib.util.find_spec("ipywidgets") is not None:
        from tqdm.notebook import tqdm
    else:
        from tqdm.std import tqdm
    return tqdm(iterable, desc=desc, total=total, leave=leave, disable=not progress_enabled())


def accuracy(logits, labels) -> float:
    """Fraction of rows whose largest logit is at the true label.  logits: [N, C], labels: [N]."""
    predicted = np.argmax(logits.data, axis=1)
    return float(np.mean(predicted == np.asarray(getattr(labels, "data", labels))))


def train_epoch(model, loader, loss_fn, optimizer, scheduler=None, clip_norm=None,
                desc: str = "train") -> float:
    """One pass over ``loader``; returns the mean training loss.

    ``scheduler.step()`` is called after every batch (schedules here count
    iterations, as in Goyal et al. 2017); ``clip_norm`` clips the global
    gradient norm before each step.
    """
    from minidl.nn.utils import clip_grad_norm_

    model.train()
    total, count = 0.0, 0
    for inputs, targets in progress(loader, desc=desc):
        optimizer.zero_grad()
        loss = loss_fn(model(inputs), targets)
        loss.backward()
        if clip_norm is not None:
            clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        if scheduler is not None:
            scheduler.step()
        batch = len(inputs)
        total += loss.item() * batch
        count += batch
    return total / max(count, 1)


def evaluate(model, loader, metric=accuracy) -> float:
    """``metric(model(inputs), targets)`` averaged over samples (eval mode, no graph)."""
    model.eval()
    total, count = 0.0, 0
    with no_grad():
        for inputs, targets in loader:
            batch = len(inputs)
            total += metric(model(inputs), targets) * batch
            count += batch
    return total / max(count, 1)


def predict(model, loader) -> tuple:
    """All logits and targets of ``loader`` as two ndarrays (eval mode, no graph)."""
    model.eval()
    outputs, targets = [], []
    with no_grad():
        for inputs, target in loader:
            outputs.append(model(inputs).data)
            targets.append(np.asarray(getattr(target, "data", target)))
    return np.concatenate(outputs), np.concatenate(targets)
