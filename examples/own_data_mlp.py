"""Train an MLP on your own NumPy arrays.

Replace `make_data` with your features X: [N, D] (float) and labels y: [N] (ints
0..C-1). Everything else stays the same.

    python examples/own_data_mlp.py
"""

import numpy as np

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl.data import DataLoader, TensorDataset, random_split
from minidl.optim import Adam
from minidl.utils.training import evaluate, train_epoch


def make_data(n=600, seed=0):
    """Three noisy spirals in 2-D: a problem a linear model cannot solve."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, n)
    radius = rng.uniform(0.1, 1.0, n)
    angle = 4 * radius + labels * 2 * np.pi / 3 + rng.normal(0, 0.15, n)
    X = np.stack([radius * np.cos(angle), radius * np.sin(angle)], 1)
    return X.astype(np.float32), labels.astype(np.int64)


def main():
    minidl.manual_seed(0)
    X, y = make_data()
    train_set, test_set = random_split(TensorDataset(X, y), [0.8, 0.2])
    train_loader = DataLoader(train_set, batch_size=32, shuffle=True)
    test_loader = DataLoader(test_set, batch_size=256)

    model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Linear(64, 64), nn.ReLU(),
                          nn.Linear(64, 3))
    optimizer = Adam(model.parameters(), lr=1e-2)
    for _epoch in range(40):
        loss = train_epoch(model, train_loader, F.cross_entropy, optimizer)
    accuracy = evaluate(model, test_loader)
    print(f"final training loss {loss:.3f}, test accuracy {accuracy:.1%}")
    return accuracy


if __name__ == "__main__":
    main()
