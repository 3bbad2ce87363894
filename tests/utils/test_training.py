"""The readable training loop: progress bars, accuracy, train_epoch, evaluate, predict."""

import io
import sys
import types

import numpy as np
import pytest

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset
from minidl.optim import SGD
from minidl.utils import training
from minidl.utils.training import accuracy, evaluate, predict, progress, train_epoch


class Terminal(io.StringIO):
    def isatty(self):
        return True


def in_kernel(monkeypatch):
    shell = types.SimpleNamespace(kernel=object())
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_progress_is_silent_in_logs_and_tests(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    bar = progress(range(3), desc="x")
    assert bar.disable and list(bar) == [0, 1, 2]


def test_progress_shows_in_a_terminal(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(sys, "stderr", Terminal())
    bar = progress(range(3), desc="epoch 1")
    assert not bar.disable and list(bar) == [0, 1, 2]
    assert "epoch 1" in sys.stderr.getvalue()
    monkeypatch.setenv("TQDM_DISABLE", "1")  # tqdm's own switch turns it off
    assert progress(range(3)).disable


def test_progress_in_a_notebook(monkeypatch):
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    monkeypatch.setattr(sys, "stderr", io.StringIO())  # a kernel's stderr is no terminal
    in_kernel(monkeypatch)
    assert training.progress_enabled()
    # Without ipywidgets: the plain text bar, enabled.
    monkeypatch.setattr(training.importlib.util, "find_spec", lambda name: None)
    bar = progress(range(2))
    assert type(bar).__module__ == "tqdm.std" and not bar.disable
    bar.close()
    monkeypatch.setenv("TQDM_DISABLE", "1")  # the notebook test runs silent
    assert progress(range(2)).disable


def test_accuracy_counts_argmax_hits():
    logits = Tensor(np.array([[2.0, 1.0, 0.0], [0.0, 0.0, 3.0], [1.0, 5.0, 0.0], [9, 0, 0]]))
    assert accuracy(logits, np.array([0, 2, 0, 1])) == 0.5
    assert accuracy(logits, Tensor(np.array([0, 2, 1, 0]))) == 1.0


def regression_data(n=40):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    y = (x @ np.array([1.0, -2.0, 0.5], np.float32))[:, None]
    return x, y


def test_train_epoch_returns_the_sample_weighted_mean_loss_and_learns():
    x, y = regression_data(40)
    model = nn.Linear(3, 1)
    # batch 16 over 40 samples: batches of 16, 16, 8; the mean is weighted by batch size
    loader = DataLoader(TensorDataset(x, y), batch_size=16)
    optimizer = SGD(model.parameters(), lr=0.0)  # no step: every batch sees the same model
    losses = [F.mse_loss(model(Tensor(x[s:s + 16])), Tensor(y[s:s + 16])).item()
              for s in (0, 16, 32)]
    expected = (16 * losses[0] + 16 * losses[1] + 8 * losses[2]) / 40
    assert train_epoch(model, loader, F.mse_loss, optimizer) == pytest.approx(expected, rel=1e-6)
    optimizer = SGD(model.parameters(), lr=0.1)
    first = train_epoch(model, loader, F.mse_loss, optimizer)
    for _ in range(20):
        last = train_epoch(model, loader, F.mse_loss, optimizer)
    assert last < first / 100


def test_train_epoch_calls_the_scheduler_each_batch_and_clips():
    x, y = regression_data(40)
    model = nn.Linear(3, 1)
    calls = []
    scheduler = types.SimpleNamespace(step=lambda: calls.append(1))
    loader = DataLoader(TensorDataset(x, 100 * y), batch_size=10)
    train_epoch(model, loader, F.mse_loss, SGD(model.parameters(), lr=0.0), scheduler,
                clip_norm=1e-3)
    assert len(calls) == 4
    norm = np.sqrt(sum((p.grad ** 2).sum() for p in model.parameters()))
    assert norm == pytest.approx(1e-3, rel=1e-4)


def test_evaluate_weights_batches_by_size_and_uses_eval_mode():
    x = np.zeros((5, 2), np.float32)
    labels = np.array([0, 0, 0, 1, 1])
    model = nn.Sequential(nn.Dropout(0.5), nn.Linear(2, 2))
    model[1].weight.data[...] = 0
    model[1].bias.data[...] = np.array([1.0, 0.0], np.float32)  # always predicts class 0
    loader = DataLoader(TensorDataset(x, labels), batch_size=4)  # batches of 4 and 1
    assert evaluate(model, loader) == pytest.approx(3 / 5)  # not (3/4 + 0/1) / 2
    assert not model.training


def test_predict_concatenates_in_order():
    x = np.arange(10, dtype=np.float32).reshape(5, 2)
    model = nn.Linear(2, 1)
    logits, targets = predict(model, DataLoader(TensorDataset(x, np.arange(5)), batch_size=2))
    np.testing.assert_allclose(logits, x @ model.weight.data.T + model.bias.data, rtol=1e-6)
    np.testing.assert_array_equal(targets, np.arange(5))
