"""Loss modules call the functional losses with their stored options."""

import numpy as np
import pytest

import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor

rng = np.random.default_rng(1)


def same(a, b):
    np.testing.assert_allclose(a.data, b.data, rtol=1e-12)


def test_modules_match_functional():
    x = Tensor(rng.normal(size=(4, 3)))
    y = Tensor(rng.uniform(size=(4, 3)))
    labels = np.array([0, 2, 1, 2])
    w = np.array([1.0, 2.0, 0.5])
    same(nn.MSELoss()(x, y), F.mse_loss(x, y))
    same(nn.L1Loss(reduction="sum")(x, y), F.l1_loss(x, y, reduction="sum"))
    same(nn.SmoothL1Loss(beta=0.5)(x, y), F.smooth_l1_loss(x, y, beta=0.5))
    same(nn.HuberLoss(delta=0.5)(x, y), F.huber_loss(x, y, delta=0.5))
    same(nn.CrossEntropyLoss(weight=w, ignore_index=1, label_smoothing=0.1)(x, labels),
         F.cross_entropy(x, labels, weight=w, ignore_index=1, label_smoothing=0.1))
    same(nn.NLLLoss(weight=w)(x, labels), F.nll_loss(x, labels, weight=w))
    same(nn.BCELoss(weight=w)(y, y), F.binary_cross_entropy(y, y, weight=w))
    same(nn.BCEWithLogitsLoss(pos_weight=w)(x, y),
         F.binary_cross_entropy_with_logits(x, y, pos_weight=w))
    same(nn.KLDivLoss(reduction="batchmean")(x, y), F.kl_div(x, y, reduction="batchmean"))


def test_class_weights_are_buffers():
    criterion = nn.CrossEntropyLoss(weight=[1.0, 2.0])
    assert list(criterion.parameters()) == []
    np.testing.assert_array_equal(criterion.state_dict()["weight"], [1.0, 2.0])
    assert "weight" not in nn.CrossEntropyLoss().state_dict()  # None buffers are not saved


def test_bad_reduction_at_construction():
    with pytest.raises(ValueError, match="MSELoss: reduction must be one of"):
        nn.MSELoss(reduction="batchmean")
    nn.KLDivLoss(reduction="batchmean")


def test_repr():
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss()"
    assert repr(nn.L1Loss(reduction="sum")) == "L1Loss(reduction='sum')"
