"""Move a trained minidl model to PyTorch and back: lesson 02's modern LeNet.

minidl's layers have PyTorch's names and weight layouts, so the same network
built from `torch.nn` takes minidl's state dict as it is; only the arrays
change type (`minidl.utils.torch_bridge`). This script trains the network in
minidl for two epochs on the 16x16 digits, saves a checkpoint, moves the
weights to PyTorch, checks that PyTorch computes the same logits, and brings
them back into a fresh minidl model.

    python examples/torch_bridge.py [folder]

The move needs PyTorch (`pip install torch`); minidl never does. Without it the
script trains and saves, then says what it skipped. The same door converts a
file that `torch.save` wrote (which `minidl.load` refuses: it is a pickle)::

    minidl.save(from_torch_state_dict(torch.load("model.pt")), "model.npz")
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor
from minidl.data import DataLoader, TensorDataset, digits
from minidl.optim import SGD
from minidl.utils.torch_bridge import from_torch_state_dict, to_torch_state_dict
from minidl.utils.training import evaluate, train_epoch


def modern_net(nn):
    """Lesson 02's modern network, from ``nn`` = ``minidl.nn`` or ``torch.nn``."""
    return nn.Sequential(
        nn.Conv2d(1, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 12 x 8 x 8
        nn.Conv2d(12, 12, 5, padding=2, bias=False), nn.BatchNorm2d(12), nn.ReLU(),
        nn.MaxPool2d(2),                                   # 12 x 4 x 4
        nn.Flatten(), nn.Linear(12 * 4 * 4, 30), nn.ReLU(), nn.Linear(30, 10),
    )


def main(folder=None):
    folder = Path(folder or tempfile.mkdtemp())
    minidl.manual_seed(0)
    train_x, train_y = digits("train", size=16)
    test_x, test_y = digits("test", size=16)
    train_x, test_x = 2 * train_x - 1, 2 * test_x - 1     # [-1, 1], as in the lesson
    model = modern_net(nn)
    optimizer = SGD(model.parameters(), lr=0.05, momentum=0.9)
    loader = DataLoader(TensorDataset(train_x, train_y), batch_size=32, shuffle=True)
    for _ in range(2):
        train_epoch(model, loader, F.cross_entropy, optimizer)
    accuracy = evaluate(model, DataLoader(TensorDataset(test_x, test_y), batch_size=400))
    minidl.save({"model_state_dict": model.state_dict(), "accuracy": accuracy},
                folder / "lenet_minidl.npz")
    print(f"minidl: test accuracy {accuracy:.1%}, saved to {folder / 'lenet_minidl.npz'}")

    try:
        import torch
    except ImportError:
        print("skipped the move to PyTorch: PyTorch is not installed (pip install torch)")
        return {"accuracy": accuracy, "torch": None}

    # minidl -> PyTorch: the same architecture from torch.nn, the same state dict.
    checkpoint = minidl.load(folder / "lenet_minidl.npz")
    torch_model = modern_net(torch.nn)
    torch_model.load_state_dict(to_torch_state_dict(checkpoint["model_state_dict"]))
    torch_model.eval()
    model.eval()
    with torch.no_grad():
        torch_logits = torch_model(torch.from_numpy(test_x)).numpy()
    logits = model(Tensor(test_x)).data
    difference = float(np.abs(torch_logits - logits).max())
    torch_accuracy = float((torch_logits.argmax(1) == test_y).mean())
    print(f"PyTorch: test accuracy {torch_accuracy:.1%}, "
          f"largest logit difference from minidl {difference:.1e}")

    # PyTorch -> minidl: into a fresh model, which then computes the same logits again.
    back = modern_net(nn)
    back.load_state_dict(from_torch_state_dict(torch_model.state_dict()))
    back.eval()
    round_trip = float(np.abs(back(Tensor(test_x)).data - logits).max())
    print(f"back in minidl: largest logit difference {round_trip:.1e}")
    return {"accuracy": accuracy, "torch": torch_accuracy, "difference": difference,
            "round_trip": round_trip}


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
