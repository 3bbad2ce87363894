"""Simulated data parallelism: k workers' averaged gradients equal the whole batch's gradient,
per-worker BN equals GhostBatchNorm2d in one pass (forward against a NumPy reference,
float64 gradcheck), and the ring allreduce's byte count."""

import numpy as np
import pytest

import minidl
import minidl.nn as nn
import minidl.nn.functional as F
from minidl import Tensor, gradcheck
from minidl.utils.data_parallel import (
    GhostBatchNorm1d,
    GhostBatchNorm2d,
    allreduce,
    ring_allreduce_bytes,
    set_gradients,
    shard,
    worker_gradients,
)

rng = np.random.default_rng(0)


def small_cnn(norm):
    """conv - norm - ReLU - GAP - linear, in float64."""
    minidl.manual_seed(0)
    return nn.Sequential(nn.Conv2d(2, 4, 3, padding=1, bias=False), norm(4), nn.ReLU(),
                         nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 3)).double()


def whole_batch_gradients(model, x, y):
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    return [p.grad.copy() for p in model.parameters()]


@pytest.fixture
def batch():
    return Tensor(rng.normal(size=(12, 2, 5, 5))), Tensor(rng.integers(0, 3, 12))


def test_shard_cuts_equal_consecutive_pieces():
    pieces = shard(np.arange(12), 3)
    assert [p.tolist() for p in pieces] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11]]
    with pytest.raises(ValueError, match="shard: a batch of 12 examples does not split into 5"):
        shard(np.arange(12), 5)
    with pytest.raises(ValueError, match="shard: num_workers must be a positive int"):
        shard(np.arange(12), 0)


@pytest.mark.parametrize("num_workers", [1, 2, 3, 6])
def test_averaged_worker_gradients_equal_the_whole_batch_gradient(batch, num_workers):
    """Without batch norm, the workers' mean gradient is the whole batch's, to rounding."""
    x, y = batch
    model = small_cnn(lambda c: nn.GroupNorm(2, c))
    want = whole_batch_gradients(model, x, y)
    grads = worker_gradients(model, F.cross_entropy, x, y, num_workers)
    assert len(grads) == num_workers and all(p.grad is None for p in model.parameters())
    for got, w in zip(allreduce(grads), want):
        np.testing.assert_allclose(got, w, rtol=1e-12, atol=1e-14)
    for got, w in zip(allreduce(grads, "sum"), want):  # summing multiplies the gradient by k
        np.testing.assert_allclose(got, num_workers * w, rtol=1e-12, atol=1e-14)


def test_per_worker_batch_norm_equals_ghost_batch_norm_in_one_pass(batch):
    """k workers with BatchNorm2d on n examples each = GhostBatchNorm2d(n) on the k*n batch:
    the same loss gradient and the same running statistics afterwards."""
    x, y = batch
    workers = small_cnn(nn.BatchNorm2d)
    ghost = small_cnn(lambda c: GhostBatchNorm2d(c, worker_batch_size=4))
    ghost.load_state_dict(workers.state_dict())
    averaged = allreduce(worker_gradients(workers, F.cross_entropy, x, y, num_workers=3))
    for got, want in zip(whole_batch_gradients(ghost, x, y), averaged):
        np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(ghost[1].running_mean, workers[1].running_mean, rtol=1e-12)
    np.testing.assert_allclose(ghost[1].running_var, workers[1].running_var, rtol=1e-12)
    # ...and differs from whole-batch statistics
    plain = small_cnn(nn.BatchNorm2d)
    plain_grads = whole_batch_gradients(plain, x, y)
    assert max(np.abs(a - b).max() for a, b in zip(plain_grads, averaged)) > 1e-4


def ghost_reference(x, n, gamma, beta, eps=1e-5):
    """Standardize each group of n examples over the examples and positions, per channel."""
    axes = (0,) + tuple(range(2, x.ndim))
    out = np.empty_like(x)
    for start in range(0, len(x), n):
        g = x[start:start + n]
        out[start:start + n] = ((g - g.mean(axis=axes, keepdims=True))
                                / np.sqrt(g.var(axis=axes, keepdims=True) + eps))
    shape = (1, -1) + (1,) * (x.ndim - 2)
    return out * gamma.reshape(shape) + beta.reshape(shape)


@pytest.mark.parametrize("layer, shape", [
    (GhostBatchNorm2d(3, worker_batch_size=4), (12, 3, 2, 2)),
    (GhostBatchNorm1d(3, worker_batch_size=4), (8, 3)),
    (GhostBatchNorm1d(3, worker_batch_size=2), (6, 3, 5)),
], ids=["2d", "1d", "1d-with-length"])
def test_ghost_batch_norm_forward_and_gradcheck(layer, shape):
    layer = layer.double()
    layer.weight.data[:] = rng.normal(size=3)
    layer.bias.data[:] = rng.normal(size=3)
    x = rng.normal(2.0, 3.0, size=shape)
    n = layer.worker_batch_size
    out = layer(Tensor(x)).data
    np.testing.assert_allclose(out, ghost_reference(x, n, layer.weight.data, layer.bias.data),
                               rtol=1e-10, atol=1e-12)
    assert gradcheck(lambda t: layer(t), [Tensor(x, requires_grad=True)])


def test_ghost_batch_norm_running_statistics_average_the_groups():
    layer = GhostBatchNorm2d(3, worker_batch_size=4, momentum=0.5)
    x = rng.normal(1.0, 2.0, size=(12, 3, 2, 2)).astype(np.float32)
    layer(Tensor(x))
    groups = x.reshape(3, 4, 3, 2, 2)
    mean = groups.mean(axis=(1, 3, 4)).mean(axis=0)
    var = groups.var(axis=(1, 3, 4), ddof=1).mean(axis=0)
    np.testing.assert_allclose(layer.running_mean, 0.5 * mean, rtol=1e-5)
    np.testing.assert_allclose(layer.running_var, 0.5 + 0.5 * var, rtol=1e-5)
    assert layer.running_mean.dtype == np.float32 and int(layer.num_batches_tracked) == 1


def test_ghost_batch_norm_parameter_gradients():
    """d loss / d gamma and d loss / d beta, through every group, against central differences."""
    x, weights = rng.normal(size=(6, 2, 3, 3)), Tensor(rng.normal(size=(6, 2, 3, 3)))

    def probe(gamma, beta):
        layer = GhostBatchNorm2d(2, worker_batch_size=2).double()
        layer.weight.data[:], layer.bias.data[:] = gamma, beta
        return layer, (layer(Tensor(x)) * weights).sum()

    params = [rng.normal(size=2), rng.normal(size=2)]  # gamma, beta
    layer, loss = probe(*params)
    loss.backward()
    for k, analytic in enumerate((layer.weight.grad, layer.bias.grad)):
        for c in range(2):
            plus, minus = [p.copy() for p in params], [p.copy() for p in params]
            plus[k][c] += 1e-6
            minus[k][c] -= 1e-6
            numeric = (probe(*plus)[1].item() - probe(*minus)[1].item()) / 2e-6
            assert analytic[c] == pytest.approx(numeric, rel=1e-5, abs=1e-8), (k, c)


def test_ghost_batch_norm_is_batch_norm_for_one_group_and_in_eval_mode():
    x = Tensor(rng.normal(size=(4, 3, 2, 2)))
    ghost, plain = GhostBatchNorm2d(3, worker_batch_size=4).double(), nn.BatchNorm2d(3).double()
    np.testing.assert_array_equal(ghost(x).data, plain(x).data)
    np.testing.assert_array_equal(ghost.running_var, plain.running_var)
    ghost(Tensor(rng.normal(size=(8, 3, 2, 2))))  # two groups: running stats move on
    plain.load_state_dict(ghost.state_dict())
    ghost.eval(), plain.eval()
    np.testing.assert_array_equal(ghost(x).data, plain(x).data)
    assert "worker_batch_size=4" in repr(ghost)


def test_ghost_batch_norm_errors():
    with pytest.raises(ValueError, match="GhostBatchNorm2d: worker_batch_size must be a positive"):
        GhostBatchNorm2d(3, worker_batch_size=0)
    with pytest.raises(ValueError, match=r"expected input \[N, C, H, W\] with C = 3"):
        GhostBatchNorm2d(3, worker_batch_size=2)(Tensor(np.zeros((4, 2, 2, 2))))
    layer = GhostBatchNorm1d(3, worker_batch_size=4)
    with pytest.raises(ValueError, match=r"a batch of shape \(10, 3\) does not split into "
                                         "workers of 4"):
        layer(Tensor(np.zeros((10, 3), dtype=np.float32)))
    assert np.all(layer.running_mean == 0) and int(layer.num_batches_tracked) == 0


def test_set_gradients():
    model = nn.Linear(3, 2).double()
    grads = [np.ones((2, 3)), np.ones(2)]
    set_gradients(model, grads)
    assert np.array_equal(model.weight.grad, grads[0]) and np.array_equal(model.bias.grad, grads[1])
    with pytest.raises(ValueError, match="the model has 2 trainable parameters, got 1"):
        set_gradients(model, grads[:1])
    with pytest.raises(ValueError, match=r"gradient of shape \(3, 2\)"):
        set_gradients(model, [np.ones((3, 2)), np.ones(2)])
    with pytest.raises(ValueError, match="op must be 'mean' or 'sum'"):
        allreduce([grads], "max")


def test_ring_allreduce_bytes():
    assert ring_allreduce_bytes(1000, 1) == 0  # nothing to exchange
    assert ring_allreduce_bytes(1000, 2) == 4000  # half sent, half received back, twice
    assert ring_allreduce_bytes(1000, 8, bytes_per_value=2) == 2 * 7 * 1000 * 2 // 8
    assert ring_allreduce_bytes(10**6, 1024) < 2 * 4 * 10**6  # bounded by 2 * size
    with pytest.raises(ValueError, match="num_workers must be a positive int"):
        ring_allreduce_bytes(1000, 0)
