"""Synchronous data-parallel SGD, simulated in one process (Goyal et al. 2017, section 3).

k workers each hold a copy of the model and a shard of n examples of the
minibatch of k*n. Each computes the gradient of the mean loss over its shard;
an *allreduce* averages the k gradients, so every worker ends up with

    g = 1/k sum_j g_j = 1/k sum_j 1/n sum_{x in shard j} grad l(x, w) = 1/(kn) sum_x grad l(x, w),

exactly the gradient of the mean loss over the whole minibatch, and all take
the same step. Here the k workers run one after the other on the same model:

    grads = worker_gradients(model, F.cross_entropy, x, y, num_workers=4)
    set_gradients(model, allreduce(grads))       # then optimizer.step()

Batch norm is the one layer that sees other examples of the batch; as in the
paper, each worker normalizes with the statistics of its own n examples:
``ghost_batch_norm`` (and the layers ``GhostBatchNorm1d`` / ``GhostBatchNorm2d``)
computes exactly that in a single pass over the whole batch (Hoffer et al.
2017 call it "ghost batch norm").

A real engine overlaps this allreduce with the backward pass and runs it over
a network (PyTorch's DistributedDataParallel, Horovod); ``ring_allreduce_bytes``
says how much each worker sends per step. Nothing here runs in parallel.
"""

from __future__ import annotations

import numpy as np

from minidl.nn.norm import BatchNorm1d, BatchNorm2d
from minidl.ops.norm import batch_norm


def shard(batch, num_workers: int) -> list:
    """Split ``batch`` (ndarray or Tensor, examples on axis 0) into ``num_workers`` equal shards."""
    if isinstance(num_workers, bool) or not isinstance(num_workers, (int, np.integer)) \
            or num_workers < 1:
        raise ValueError(f"shard: num_workers must be a positive int, got {num_workers!r}")
    size = len(batch)
    if size % num_workers:
        raise ValueError(f"shard: a batch of {size} examples does not split into "
                         f"{num_workers} equal shards")
    n = size // num_workers
    return [batch[j * n:(j + 1) * n] for j in range(num_workers)]


def worker_gradients(model, loss_fn, inputs, targets, num_workers: int) -> list[list]:
    """Each worker's gradient of its mean loss over its shard: [worker][parameter] ndarrays.

    Every worker starts from the same buffers (BN running statistics, as replicas
    kept in sync would); afterwards the buffers hold the average of the workers'
    (a running average is linear, so that is the running average of their statistics).
    Leaves every parameter's ``.grad`` as None.
    """
    params = [p for p in model.parameters() if p.requires_grad]
    buffers = [b for b in model.buffers() if isinstance(b, np.ndarray) and b.dtype.kind == "f"]
    start = [b.copy() for b in buffers]
    ends = [np.zeros_like(b) for b in buffers]
    gradients = []
    for x, y in zip(shard(inputs, num_workers), shard(targets, num_workers)):
        for b, s in zip(buffers, start):
            b[...] = s
        model.zero_grad()
        loss_fn(model(x), y).backward()
        gradients.append([np.zeros_like(p.data) if p.grad is None else p.grad.copy()
                          for p in params])
        for e, b in zip(ends, buffers):
            e += b / num_workers
    for b, e in zip(buffers, ends):
        b[...] = e
    model.zero_grad()
    return gradients


def allreduce(gradients: list[list], op: str = "mean") -> list:
    """Combine the workers' gradients parameter by parameter: their mean (or sum)."""
    if op not in ("mean", "sum"):
        raise ValueError(f"allreduce: op must be 'mean' or 'sum', got {op!r}")
    if not gradients or len({len(g) for g in gradients}) != 1:
        raise ValueError("allreduce: expected one list of gradients per worker, all of one length")
    total = [np.sum(per_worker, axis=0) for per_worker in zip(*gradients)]
    return total if op == "sum" else [t / len(gradients) for t in total]


def set_gradients(model, gradients: list) -> None:
    """Write ``gradients`` (one ndarray per trainable parameter, in order) into ``.grad``."""
    params = [p for p in model.parameters() if p.requires_grad]
    if len(params) != len(gradients):
        raise ValueError(f"set_gradients: the model has {len(params)} trainable parameters, "
                         f"got {len(gradients)} gradients")
    for p, g in zip(params, gradients):
        if g.shape != p.data.shape:
            raise ValueError(f"set_gradients: gradient of shape {g.shape} for a parameter of "
                             f"shape {p.data.shape}")
        p.grad = g.astype(p.data.dtype)


def ring_allreduce_bytes(num_values: int, num_workers: int, bytes_per_value: int = 4) -> int:
    """Bytes each worker sends in one ring allreduce of ``num_values`` numbers.

    The ring algorithm (Patarasuk & Yuan 2009; Baidu's and Horovod's allreduce)
    cuts the vector into k pieces and passes them around the ring twice: k - 1
    steps of reduce-scatter, then k - 1 of all-gather, each sending one piece of
    num_values / k numbers. So each worker sends 2 (k - 1) / k * num_values
    numbers, almost independent of k: the time is bandwidth, not worker count.
    """
    for name, value in (("num_values", num_values), ("num_workers", num_workers),
                        ("bytes_per_value", bytes_per_value)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"ring_allreduce_bytes: {name} must be a positive int, got {value!r}")
    return int(round(2 * (num_workers - 1) / num_workers * num_values * bytes_per_value))


def _check_worker_batch_size(module: str, n) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"{module}: worker_batch_size must be a positive int, got {n!r}")
    return int(n)


def ghost_batch_norm(input, worker_batch_size: int, running_mean=None, running_var=None,
                     weight=None, bias=None, training: bool = True, momentum: float = 0.1,
                     eps: float = 1e-5):
    """Batch norm whose training statistics come from each worker's ``worker_batch_size`` examples.

    In training, the batch [k*n, C, *] is cut into k consecutive groups of
    n = ``worker_batch_size``; each group is normalized with its own mean and
    variance per channel, as worker j of k normalizes its shard with plain batch
    norm (Goyal et al. 2017, section 2.3: "the BN statistics should not be computed
    across all workers"; Hoffer et al. 2017 call it ghost batch norm). So the
    output and the gradient for a batch of k*n are what k workers compute and
    average. The running statistics move once, towards the average of the groups'
    statistics (the average of the k workers' running buffers). ``training=False``,
    or a batch of at most n, is ``F.batch_norm``.

    How, in one pass: [k*n, C, *] -> [k, n, C, L] -> [n, k, C, L] -> [n, k*C, L]
    makes each (group, channel) pair a channel of its own, so ``F.batch_norm``
    (minidl/ops/norm.py) computes every group's statistics at once.
    """
    op = "ghost_batch_norm"
    n = _check_worker_batch_size(op, worker_batch_size)
    if not training or len(input) <= n:
        return batch_norm(input, running_mean, running_var, weight, bias, training, momentum, eps)
    if input.ndim < 2 or len(input) % n:
        raise ValueError(f"{op}: a batch of shape {tuple(input.shape)} does not split into "
                         f"workers of {n} examples")
    k, C = len(input) // n, input.shape[1]
    grouped = input.reshape(k, n, C, -1).permute(1, 0, 2, 3).reshape(n, k * C, -1)
    # momentum 1: these buffers receive each group's mean and unbiased variance
    group_mean, group_var = np.zeros(k * C), np.ones(k * C)
    normalized = batch_norm(grouped, group_mean, group_var, training=True, momentum=1.0, eps=eps)
    out = normalized.reshape(n, k, C, -1).permute(1, 0, 2, 3).reshape(*input.shape)
    if running_mean is not None:
        running_mean *= 1 - momentum
        running_mean += momentum * group_mean.reshape(k, C).mean(axis=0)
    if running_var is not None:
        running_var *= 1 - momentum
        running_var += momentum * group_var.reshape(k, C).mean(axis=0)
    per_channel = (1, C) + (1,) * (input.ndim - 2)
    if weight is not None:
        out = out * weight.reshape(*per_channel)
    if bias is not None:
        out = out + bias.reshape(*per_channel)
    return out


class _PerWorkerStatistics:
    """What GhostBatchNorm1d and GhostBatchNorm2d add to BatchNorm1d / BatchNorm2d.

    Listed first among the bases, so ``super()`` here is the BatchNorm class.
    """

    def __init__(self, num_features: int, worker_batch_size: int, eps: float = 1e-5,
                 momentum=0.1, affine: bool = True, dtype=None):
        super().__init__(num_features, eps, momentum, affine, True, dtype)
        self.worker_batch_size = _check_worker_batch_size(type(self).__name__, worker_batch_size)

    def forward(self, x):
        return _ghost_forward(self, x, super().forward)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, worker_batch_size={self.worker_batch_size}"


class GhostBatchNorm1d(_PerWorkerStatistics, BatchNorm1d):
    """BatchNorm1d with per-worker statistics in training: see ``ghost_batch_norm``.

    Args: num_features (C), worker_batch_size (n), eps, momentum, affine. Its
    parameters and buffers are BatchNorm1d's, so a state_dict loads into either.
    """


class GhostBatchNorm2d(_PerWorkerStatistics, BatchNorm2d):
    """BatchNorm2d with per-worker statistics in training: see ``ghost_batch_norm``.

    Args: num_features (C), worker_batch_size (n), eps, momentum, affine. Its
    parameters and buffers are BatchNorm2d's, so a state_dict loads into either.
    """


def _ghost_forward(module, x, plain_forward):
    """Eval mode or a batch of one worker: the plain layer. Else ghost_batch_norm."""
    if not module.training or len(x) <= module.worker_batch_size:
        return plain_forward(x)
    if x.ndim not in module.ranks or x.shape[1] != module.num_features:
        raise ValueError(f"{type(module).__name__}: expected input {module.layout} with "
                         f"C = {module.num_features}, got shape {tuple(x.shape)}")
    batches = int(module.num_batches_tracked) + 1
    momentum = 1.0 / batches if module.momentum is None else module.momentum  # as BatchNorm
    out = ghost_batch_norm(x, module.worker_batch_size, module.running_mean, module.running_var,
                           module.weight, module.bias, True, momentum, module.eps)
    module.num_batches_tracked += 1  # after the checks in ghost_batch_norm passed
    return out
