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
``GhostBatchNorm2d`` computes exactly that in a single pass over the whole
batch (Hoffer et al. 2017 call it "ghost batch norm").

A real engine overlaps this allreduce with the backward pass and runs it over
a network (PyTorch's DistributedDataParallel, Horovod); ``ring_allreduce_bytes``
says how much each worker sends per step. Nothing here runs in parallel.
"""

from __future__ import annotations

import numpy as np

from minidl.autograd.tensor import Tensor
from minidl.nn.norm import BatchNorm2d
from minidl.ops.norm import batch_norm
from minidl.ops.shape import cat, split


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


class GhostBatchNorm2d(BatchNorm2d):
    """Batch norm whose training statistics come from groups of ``worker_batch_size`` examples.

    In training, the batch [k*n, C, H, W] is cut into k consecutive groups of
    n = ``worker_batch_size``; each group is normalized with its own mean and
    variance, as worker j of k would normalize its shard (Goyal et al. 2017,
    section 2.3: "the BN statistics should not be computed across all workers").
    So the output, and the gradient, for a batch of k*n equals what k workers
    with plain BatchNorm2d compute and average. A batch of n or fewer is plain
    batch norm; a last group smaller than n is normalized on its own.

    The running statistics are updated once per batch with the average of the
    groups' statistics. Evaluation uses them, as BatchNorm2d does. The parameters
    and buffers are BatchNorm2d's, so a state_dict loads into either.
    """

    def __init__(self, num_features: int, worker_batch_size: int, eps: float = 1e-5,
                 momentum=0.1, affine: bool = True, dtype=None):
        n = worker_batch_size
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"GhostBatchNorm2d: worker_batch_size must be a positive int, got "
                             f"{worker_batch_size!r}")
        super().__init__(num_features, eps, momentum, affine, track_running_stats=True, dtype=dtype)
        self.worker_batch_size = int(worker_batch_size)

    def forward(self, x):
        if not self.training or len(x) <= self.worker_batch_size:
            return super().forward(x)
        self._check_input(x)
        groups = split(x, self.worker_batch_size, 0)
        outputs = [batch_norm(g, None, None, self.weight, self.bias, True, 0.0, self.eps)
                   for g in groups]
        self._update_running_stats([g.data for g in groups])
        return cat(outputs, 0)

    def _check_input(self, x: Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"GhostBatchNorm2d: expected input [N, {self.num_features}, H, W], "
                             f"got shape {tuple(x.shape)}")

    def _update_running_stats(self, groups: list) -> None:
        """running = (1 - m) running + m * (mean over groups of each group's statistic)."""
        self.num_batches_tracked += 1
        momentum = (1.0 / float(self.num_batches_tracked) if self.momentum is None
                    else self.momentum)
        means = [g.mean(axis=(0, 2, 3)) for g in groups]
        variances = [g.var(axis=(0, 2, 3), ddof=1) for g in groups]  # unbiased, as BatchNorm2d
        self.running_mean[...] = ((1 - momentum) * self.running_mean
                                  + momentum * np.mean(means, axis=0))
        self.running_var[...] = ((1 - momentum) * self.running_var
                                 + momentum * np.mean(variances, axis=0))

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, worker_batch_size={self.worker_batch_size}"
