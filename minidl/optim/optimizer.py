"""Optimizer: the base class that holds parameter groups and per-parameter state.

An optimizer changes parameters in place from their gradients::

    opt = SGD(model.parameters(), lr=0.1, momentum=0.9)
    for x, y in loader:
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()          # p.grad = None for every parameter
        loss.backward()          # fills p.grad
        opt.step()               # p.data -= lr * (update computed from p.grad)

``param_groups`` is a list of dicts, one per group; each has ``'params'`` (a
list of Tensors) and the hyperparameters (``'lr'``, ``'momentum'``, ...).
Groups let different parts of a model use different settings::

    SGD([{"params": model.backbone.parameters(), "lr": 0.01},
         {"params": model.head.parameters()}], lr=0.1)   # the head uses the default lr

``state`` maps a parameter (the Tensor itself) to a dict of its running
buffers (momentum, Adam's moments, ...). A subclass writes two methods:
``update(param, grad, state, group)``, the formula for one parameter on plain
ndarrays (``param`` is changed in place), and ``check_hyperparameters(group)``.
Everything else lives here, as in PyTorch's ``torch.optim.Optimizer``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np

from minidl.autograd.mode import enable_grad
from minidl.autograd.tensor import Tensor


class Optimizer:
    """Base class. ``params``: an iterable of Tensors, or of dicts (parameter groups);
    ``defaults``: the hyperparameters a group gets when it does not set its own."""

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.state: dict = {}
        self.param_groups: list[dict] = []
        if isinstance(params, Tensor):
            raise TypeError(f"{self.name}: params should be an iterable of Tensors or of dicts, "
                            "got a single Tensor (wrap it in a list)")
        groups = list(params)
        if not groups:
            raise ValueError(f"{self.name}: got an empty parameter list")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        for group in groups:
            self.add_param_group(group)

    @property
    def name(self) -> str:
        return type(self).__name__

    # ---- groups ----------------------------------------------------------
    def add_param_group(self, group: dict) -> None:
        """Add a group (a dict with ``'params'`` and optional hyperparameters).

        Checks everything before changing ``param_groups``, so a bad group leaves
        the optimizer as it was.
        """
        if not isinstance(group, dict) or "params" not in group:
            raise TypeError(f"{self.name}: a parameter group must be a dict with a 'params' key, "
                            f"got {type(group).__name__}")
        params = group["params"]
        params = [params] if isinstance(params, Tensor) else list(params)
        if not params:
            raise ValueError(f"{self.name}: got an empty parameter list in a parameter group")
        for p in params:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self.name}: can only optimize Tensors, got {type(p).__name__}")
            if not p.is_leaf:
                raise ValueError(f"{self.name}: can't optimize a non-leaf Tensor "
                                 "(one computed from others); optimize the leaves it came from")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{self.name}: can only optimize floating-point Tensors, "
                                f"got dtype {p.data.dtype}")
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        if len({id(p) for p in params}) != len(params) or seen & {id(p) for p in params}:
            raise ValueError(f"{self.name}: some parameters appear more than once "
                             "(in this group or in another group)")
        unknown = set(group) - set(self.defaults) - {"params", "initial_lr"}
        if unknown:
            raise ValueError(f"{self.name}: unknown hyperparameter(s) {sorted(unknown)} in a "
                             f"parameter group; expected some of {sorted(self.defaults)}")
        new_group = {**self.defaults, **group, "params": params}
        self.check_hyperparameters(new_group)
        self.param_groups.append(new_group)

    def check_hyperparameters(self, group: dict) -> None:
        """Raise a clear error if a group's hyperparameters are invalid (subclasses extend)."""
        check_number(self.name, "lr", group["lr"], low=0.0)

    # ---- the training-loop calls ----------------------------------------
    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients: ``p.grad = None`` (or fill with zeros if ``set_to_none=False``)."""
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none:
                    p.grad = None
                elif p.grad is not None:
                    p.grad[...] = 0

    def step(self, closure=None):
        """One update of every parameter that has a gradient. ``closure``, if given,
        re-evaluates the model and returns the loss (it is called with grad enabled).

        Every gradient is checked (an ndarray of floats, the parameter's shape) before
        any parameter changes, so a bad gradient leaves the whole model as it was.
        Each update changes ``p.data`` in place and adds 1 to ``p._version``, so that
        a backward pass through a graph built before the step can tell.
        """
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        work = [(p, group) for group in self.param_groups for p in group["params"]
                if p.grad is not None]  # a parameter without grad was unused (or frozen)
        for p, _ in work:
            self._check_grad(p)
        for p, group in work:
            self.update(p.data, p.grad, self.state.setdefault(p, {}), group)
            p._version += 1
        return loss

    def _check_grad(self, p: Tensor) -> None:
        grad = p.grad
        if not isinstance(grad, np.ndarray):
            raise TypeError(f"{self.name}: {self._where(p)} is a {type(grad).__name__}; "
                            "expected an ndarray (p.grad is a plain ndarray in minidl)")
        if grad.dtype.kind != "f":
            raise TypeError(f"{self.name}: {self._where(p)} has dtype {grad.dtype}; expected "
                            f"floating point, like the parameter ({p.data.dtype})")
        if grad.shape != p.data.shape:
            raise ValueError(f"{self.name}: {self._where(p)} has shape {grad.shape}; it must "
                             "match its parameter")

    def _where(self, p: Tensor) -> str:
        """Names p's gradient in an error (only then: finding its number scans every parameter)."""
        return f"the gradient of parameter {self._index_of(p)} (shape {p.data.shape})"

    def _index_of(self, p: Tensor) -> int:
        """The number of ``p`` in ``state_dict()`` (counted across groups, from 0)."""
        return next(i for i, q in enumerate(self._all_params()) if q is p)

    def _all_params(self) -> list:
        return [p for group in self.param_groups for p in group["params"]]

    # ---- checkpoints -----------------------------------------------------
    def state_dict(self) -> dict:
        """PyTorch's layout, which ``minidl.save`` writes as it is::

            {"state": {0: {"momentum_buffer": array, ...}, 3: {...}},   # by parameter number
             "param_groups": [{"lr": 0.1, "momentum": 0.9, ..., "params": [0, 1, 2]}, ...]}

        Parameters are numbered 0, 1, 2, ... in the order of ``param_groups``; only
        parameters that have been updated have state. Arrays are copies.
        """
        numbers = {id(p): i for i, p in enumerate(self._all_params())}
        state = {numbers[id(p)]: {key: np.copy(value) if isinstance(value, np.ndarray) else value
                                  for key, value in self.state[p].items()}
                 for p in self._all_params() if p in self.state}
        groups = [{**{k: v for k, v in group.items() if k != "params"},
                   "params": [numbers[id(p)] for p in group["params"]]}
                  for group in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` returned (also after ``minidl.save``/``load``).

        The groups must hold as many parameters, of the same shapes, in the same
        order. Everything is checked (group sizes, buffer shapes, hyperparameters)
        before the optimizer changes. The flat layout of earlier minidl versions
        (``'state.0.momentum_buffer'``, ``'param_groups.0.lr'``) is accepted too.
        """
        groups, state = _saved_groups_and_state(self.name, state_dict)
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{self.name}.load_state_dict: saved state has {len(groups)} "
                             f"parameter group(s), this optimizer has {len(self.param_groups)}")
        param_of, new_groups = {}, []
        for g, (saved, group) in enumerate(zip(groups, self.param_groups)):
            saved_numbers = list(saved.get("params", ()))
            if len(saved_numbers) != len(group["params"]):
                raise ValueError(f"{self.name}.load_state_dict: group {g} has "
                                 f"{len(saved_numbers)} saved parameters, "
                                 f"this optimizer has {len(group['params'])}")
            param_of.update(zip((int(i) for i in saved_numbers), group["params"]))
            new_groups.append(self._checked_group(g, saved, group))
        new_state = {}
        for i, buffers in state.items():
            if i not in param_of:
                raise ValueError(f"{self.name}.load_state_dict: state for parameter {i}, "
                                 f"which no saved group lists")
            new_state[param_of[i]] = self._checked_buffers(i, buffers, param_of[i])
        # All checks passed: now change the optimizer.
        for group, new in zip(self.param_groups, new_groups):
            group.update(new)
        self.state = new_state

    def _checked_group(self, g: int, saved: dict, group: dict) -> dict:
        """The saved hyperparameters of group ``g``, checked as if passed to the constructor."""
        hyper = {k: v for k, v in saved.items() if k != "params"}
        unknown = set(hyper) - set(self.defaults) - {"initial_lr"}
        if unknown:
            raise ValueError(f"{self.name}.load_state_dict: unknown hyperparameter(s) "
                             f"{sorted(unknown)} in group {g}")
        self.check_hyperparameters({**group, **hyper})
        return hyper

    def _checked_buffers(self, i: int, buffers: dict, p: Tensor) -> dict:
        out = {}
        for key, value in buffers.items():
            if isinstance(value, Tensor):
                value = value.data
            if isinstance(value, np.ndarray):
                if value.shape != p.data.shape:
                    raise ValueError(f"{self.name}.load_state_dict: '{key}' of parameter {i} "
                                     f"has shape {value.shape}, the parameter {p.data.shape}")
                value = value.astype(p.data.dtype, copy=True)
            out[key] = value
        return out

    def __repr__(self) -> str:
        lines = [f"{self.name} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _saved_groups_and_state(name: str, saved: dict) -> tuple[list[dict], dict]:
    """The list of saved groups and the dict parameter number -> buffers, from either layout."""
    if not isinstance(saved, dict):
        raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(saved).__name__}")
    if set(saved) == {"state", "param_groups"}:
        return list(saved["param_groups"]), {int(i): dict(b) for i, b in saved["state"].items()}
    return _unflatten(name, saved)


def _unflatten(name: str, flat: dict) -> tuple[list[dict], dict]:
    """The flat layout of earlier minidl versions: split 'param_groups.G.key' / 'state.I.key'
    entries, turning the 0-d arrays an old save made of numbers back into numbers."""
    groups: dict[int, dict] = {}
    state: dict[int, dict] = {}
    for full_key, value in flat.items():
        kind, _, rest = str(full_key).partition(".")
        number, _, key = rest.partition(".")
        if kind not in ("param_groups", "state") or not number.isdigit() or not key:
            raise ValueError(f"{name}.load_state_dict: unexpected key {full_key!r}; expected "
                             "{'state': ..., 'param_groups': ...} as state_dict() returns")
        if kind == "param_groups":
            groups.setdefault(int(number), {})[key] = _to_python(key, value)
        else:
            state.setdefault(int(number), {})[key] = (
                value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value)
    return [groups[g] for g in sorted(groups)], state


def _to_python(key: str, value):
    """A hyperparameter as the optimizer keeps it: 0-d arrays become numbers, the
    saved ``betas`` array becomes a tuple, the ``params`` index array a list."""
    if isinstance(value, np.ndarray):
        if key == "params":
            return value.tolist()
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value


def check_number(optimizer: str, name: str, value, low: float | None = None,
                 high: float | None = None, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming the optimizer unless ``value`` is a finite number with
    ``low <= value <= high`` (``value < high`` when ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) \
            or not math.isfinite(value):
        raise ValueError(f"{optimizer}: {name} must be a finite number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{optimizer}: {name} must be >= {low:g}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"< {high:g}" if high_open else f"<= {high:g}"
        raise ValueError(f"{optimizer}: {name} must be {bound}, got {value}")
