"""Learning-rate schedules: set each parameter group's ``lr`` from the step count.

A scheduler is created after its optimizer and stepped once per epoch or once
per iteration (your choice; the counts below are in whatever unit you step)::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    sched = StepLR(opt, step_size=30, gamma=0.1)
    for epoch in range(90):
        train_one_epoch(model, opt)
        sched.step()                 # lr = 0.1 * 0.1 ** (epoch // 30)

Each group remembers the lr it started with as ``group['initial_lr']`` (the
*base lr*). Every schedule here is a closed formula of the step count t =
``last_epoch`` and the base lr, so the lr never drifts from rounding and a
schedule can be wrapped by another (``WarmupLR(after=...)``) simply by asking
it for ``lr_at(t)``. (PyTorch's schedulers multiply the current lr instead;
when nothing else touches the lr both give the same numbers.)

Creating a scheduler sets the lrs for t = 0; ``step()`` moves to t + 1.
``get_last_lr()`` returns the lrs it last set, one per group.
"""

from __future__ import annotations

import bisect
import math
import numbers

import numpy as np

from minidl.optim.optimizer import Optimizer


class LRScheduler:
    """Base class: subclasses define ``lr_at(t) -> [lr for each group]``."""

    def __init__(self, optimizer: Optimizer, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{self.name}: expected an Optimizer, got {type(optimizer).__name__}")
        if last_epoch != -1 and any("initial_lr" not in g for g in optimizer.param_groups):
            raise KeyError(f"{self.name}: last_epoch={last_epoch} resumes a schedule, but a "
                           "parameter group has no 'initial_lr' (load the optimizer's state first)")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            group.setdefault("initial_lr", group["lr"])
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()

    @property
    def name(self) -> str:
        return type(self).__name__

    def lr_at(self, t: int) -> list[float]:
        """The lr of each group at step ``t`` (pure: changes nothing)."""
        return [self.factor(t) * base for base in self.base_lrs]

    def factor(self, t: int) -> float:
        """Multiplier of the base lr at step ``t`` (for schedules of the form base * factor)."""
        return 1.0

    def get_lr(self) -> list[float]:
        """The lr of each group at the current step ``last_epoch``."""
        return self.lr_at(self.last_epoch)

    def get_last_lr(self) -> list[float]:
        """The lrs set by the last ``step()`` (or by the constructor)."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one step and write the new lr into every parameter group."""
        lrs = self.lr_at(self.last_epoch + 1)
        for lr in lrs:  # e.g. a LambdaLR whose function went negative or returned nan
            if not (isinstance(lr, numbers.Real) and math.isfinite(lr) and lr >= 0):
                raise ValueError(f"{self.name}: the lr for step {self.last_epoch + 1} would "
                                 f"be {lr!r}; an lr must be a finite number >= 0")
        self.last_epoch += 1
        self._last_lr = lrs
        for group, lr in zip(self.optimizer.param_groups, self._last_lr):
            group["lr"] = lr

    def state_dict(self) -> dict:
        """``{"last_epoch": t, "base_lrs": [...], "_last_lr": [...]}`` (PyTorch's names)."""
        return {"last_epoch": self.last_epoch, "base_lrs": list(self.base_lrs),
                "_last_lr": list(self._last_lr)}

    def load_state_dict(self, state_dict: dict) -> None:
        """Resume at the saved step. The lrs themselves come back with the optimizer's state."""
        base_lrs = np.asarray(state_dict["base_lrs"], dtype=np.float64).reshape(-1)
        if len(base_lrs) != len(self.optimizer.param_groups):
            raise ValueError(f"{self.name}.load_state_dict: saved {len(base_lrs)} base lrs, "
                             f"the optimizer has {len(self.optimizer.param_groups)} groups")
        self.last_epoch = int(np.asarray(state_dict["last_epoch"]))
        self.base_lrs = base_lrs.tolist()
        self._last_lr = self.lr_at(self.last_epoch)


def _check_int(scheduler: str, name: str, value, low: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < low:
        raise ValueError(f"{scheduler}: {name} must be an int >= {low}, got {value!r}")


def _check_gamma(scheduler: str, gamma) -> None:
    if isinstance(gamma, bool) or not isinstance(gamma, numbers.Real) or not gamma > 0:
        raise ValueError(f"{scheduler}: gamma must be a number > 0, got {gamma!r}")


class StepLR(LRScheduler):
    """Decay by ``gamma`` every ``step_size`` steps: lr_t = base_lr * gamma ** (t // step_size)."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        _check_int("StepLR", "step_size", step_size, low=1)
        _check_gamma("StepLR", gamma)
        self.step_size, self.gamma = step_size, gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return self.gamma ** (t // self.step_size)


class MultiStepLR(LRScheduler):
    """Decay by ``gamma`` at each milestone: lr_t = base_lr * gamma ** #{m in milestones : m <= t}.

    Goyal et al. (2017) train ResNet-50 with milestones (30, 60, 80) epochs, gamma = 0.1.
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        for m in milestones:
            _check_int("MultiStepLR", "each milestone", m, low=0)
        _check_gamma("MultiStepLR", gamma)
        self.milestones, self.gamma = sorted(milestones), gamma
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        return self.gamma ** bisect.bisect_right(self.milestones, t)


class LambdaLR(LRScheduler):
    """lr_t = base_lr * lr_lambda(t); ``lr_lambda`` is a function or one function per group."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"LambdaLR: expected an Optimizer, got {type(optimizer).__name__}")
        n = len(optimizer.param_groups)
        lambdas = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(lambdas) != n:
            raise ValueError(f"LambdaLR: expected {n} lr_lambdas (one per parameter group), "
                             f"got {len(lambdas)}")
        if not all(callable(f) for f in lambdas):
            raise TypeError("LambdaLR: lr_lambda must be a function of the step "
                            "(or a list of them)")
        self.lr_lambdas = lambdas
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int) -> list[float]:
        return [base * f(t) for base, f in zip(self.base_lrs, self.lr_lambdas)]


class CosineAnnealingLR(LRScheduler):
    """Half a cosine from base_lr down to eta_min over T_max steps
    (Loshchilov & Hutter, 2017, "SGDR: Stochastic Gradient Descent with Warm Restarts"):

        lr_t = eta_min + (base_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2

    Past T_max the cosine goes on (back up), as PyTorch's does; usually T_max is
    the total number of steps.
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        _check_int("CosineAnnealingLR", "T_max", T_max, low=1)
        if not isinstance(eta_min, numbers.Real) or eta_min < 0:
            raise ValueError(f"CosineAnnealingLR: eta_min must be a number >= 0, got {eta_min!r}")
        self.T_max, self.eta_min = T_max, eta_min
        super().__init__(optimizer, last_epoch)

    def lr_at(self, t: int) -> list[float]:
        cos = (1 + math.cos(math.pi * t / self.T_max)) / 2
        return [self.eta_min + (base - self.eta_min) * cos for base in self.base_lrs]


class WarmupLR(LRScheduler):
    """Warm up the lr over the first ``warmup_steps`` steps, then follow ``after``.

    Goyal et al. (2017), "Accurate, Large Minibatch SGD: Training ImageNet in
    1 Hour", section 2.2. With the linear scaling rule the target lr for a
    minibatch k times larger is k * lr; starting there at once can diverge, so
    the first steps use a smaller lr. With ``start_factor = 1/k``:

    - ``mode='linear'`` (their *gradual warmup*): start at lr/k and add a
      constant amount each step, reaching lr after ``warmup_steps``
      (they use 5 epochs of iterations)::

          factor(t) = start_factor + (1 - start_factor) * t / warmup_steps   for t < warmup_steps

    - ``mode='constant'`` (their *constant warmup*, from He et al. 2016): a
      low constant lr for the first steps, then the full lr at once::

          factor(t) = start_factor                                            for t < warmup_steps

    and ``factor(t) = 1`` afterwards. The lr is ``factor(t) * lr_after(t)``,
    where ``lr_after`` is the schedule ``after`` (any scheduler on the same
    optimizer, e.g. ``CosineAnnealingLR`` or ``MultiStepLR``) or the base lr
    when ``after`` is None. ``after`` counts the same steps t from the start of
    training: as in the paper, once warmup is over "we go back to the original
    learning rate schedule". Step only the WarmupLR; it keeps ``after``'s
    ``last_epoch`` in step with its own::

        sched = WarmupLR(opt, warmup_steps=5 * iters_per_epoch, start_factor=1 / k,
                         after=MultiStepLR(opt, [30 * iters_per_epoch, 60 * iters_per_epoch]))
        # call sched.step() after every iteration
    """

    def __init__(self, optimizer, warmup_steps: int, start_factor: float = 0.1,
                 mode: str = "linear", after: LRScheduler | None = None, last_epoch: int = -1):
        _check_int("WarmupLR", "warmup_steps", warmup_steps, low=0)
        if (isinstance(start_factor, bool) or not isinstance(start_factor, numbers.Real)
                or not 0 < start_factor <= 1):
            raise ValueError(f"WarmupLR: start_factor must be in (0, 1], got {start_factor!r}")
        if mode not in ("linear", "constant"):
            raise ValueError(f"WarmupLR: mode must be 'linear' or 'constant', got {mode!r}")
        if after is not None:
            if not isinstance(after, LRScheduler):
                raise TypeError(f"WarmupLR: after must be a scheduler, got {type(after).__name__}")
            if after.optimizer is not optimizer:
                raise ValueError("WarmupLR: after must schedule the same optimizer")
        self.warmup_steps, self.start_factor, self.mode = warmup_steps, start_factor, mode
        self.after = after
        super().__init__(optimizer, last_epoch)

    def factor(self, t: int) -> float:
        if t >= self.warmup_steps:
            return 1.0
        if self.mode == "constant":
            return self.start_factor
        return self.start_factor + (1 - self.start_factor) * t / self.warmup_steps

    def lr_at(self, t: int) -> list[float]:
        lrs = self.after.lr_at(t) if self.after is not None else self.base_lrs
        return [self.factor(t) * lr for lr in lrs]

    def step(self) -> None:
        super().step()
        self._sync_after()

    def load_state_dict(self, state_dict: dict) -> None:
        super().load_state_dict(state_dict)
        self._sync_after()

    def _sync_after(self) -> None:
        """Keep the wrapped schedule's counter equal to ours (it is not stepped itself)."""
        if self.after is not None:
            self.after.last_epoch = self.last_epoch
            self.after._last_lr = self.after.lr_at(self.last_epoch)
