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
        re-evaluates the model and returns the loss (it is called with grad enabled)."""
        loss = None
        if closure is not None:
            with enable_grad():
                loss = closure()
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue  # unused in this forward pass (or frozen): leave it alone
                if p.grad.shape != p.data.shape:
                    raise ValueError(f"{self.name}: gradient of shape {p.grad.shape} does not "
                                     f"match its parameter of shape {p.data.shape}")
                state = self.state.setdefault(p, {})
                self.update(p.data, p.grad, state, group)
        return loss

    # ---- checkpoints -----------------------------------------------------
    def state_dict(self) -> dict:
        """A flat dict name -> number or ndarray that ``minidl.save`` can write.

        Parameters are numbered 0, 1, 2, ... in the order of ``param_groups``:
        ``'state.3.momentum_buffer'`` is parameter 3's buffer,
        ``'param_groups.0.lr'`` group 0's lr, ``'param_groups.0.params'`` the
        numbers of group 0's parameters. Arrays are copies.
        """
        out = {}
        index = 0
        for g, group in enumerate(self.param_groups):
            numbers_in_group = []
            for p in group["params"]:
                for key, value in self.state.get(p, {}).items():
                    out[f"state.{index}.{key}"] = np.copy(value) if isinstance(
                        value, np.ndarray) else value
                numbers_in_group.append(index)
                index += 1
            for key, value in group.items():
                if key != "params":
                    out[f"param_groups.{g}.{key}"] = value
            out[f"param_groups.{g}.params"] = np.array(numbers_in_group, dtype=np.int64)
        return out

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what ``state_dict()`` returned (also after a ``minidl.save``/``load``
        round trip, which turns numbers into 0-d arrays). The groups must hold
        parameters of the same shapes, in the same order."""
        params = [p for group in self.param_groups for p in group["params"]]
        groups, state = _unflatten(self.name, state_dict)
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{self.name}.load_state_dict: saved state has {len(groups)} "
                             f"parameter group(s), this optimizer has {len(self.param_groups)}")
        for g, (saved, group) in enumerate(zip(groups, self.param_groups)):
            if len(saved.get("params", ())) != len(group["params"]):
                raise ValueError(f"{self.name}.load_state_dict: group {g} has "
                                 f"{len(saved.get('params', ()))} saved parameters, "
                                 f"this optimizer has {len(group['params'])}")
        for i, buffers in state.items():
            if i >= len(params):
                raise ValueError(f"{self.name}.load_state_dict: state for parameter {i}, "
                                 f"but the optimizer has only {len(params)}")
            for key, value in buffers.items():
                if isinstance(value, np.ndarray) and value.shape != params[i].data.shape:
                    raise ValueError(f"{self.name}.load_state_dict: '{key}' of parameter {i} "
                                     f"has shape {value.shape}, the parameter {params[i].shape}")
        # All checks passed: now change the optimizer.
        for saved, group in zip(groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = value
        self.state = {}
        for i, buffers in state.items():
            p = params[i]
            self.state[p] = {key: value.astype(p.data.dtype, copy=True)
                             if isinstance(value, np.ndarray) else value
                             for key, value in buffers.items()}

    def __repr__(self) -> str:
        lines = [f"{self.name} ("]
        for g, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {g}")
            lines += [f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params"]
        return "\n".join(lines + [")"])


def _unflatten(name: str, flat: dict) -> tuple[list[dict], dict]:
    """Split 'param_groups.G.key' / 'state.I.key' entries into a list of group dicts
    and a dict index -> buffers, turning saved 0-d arrays back into Python numbers."""
    if not isinstance(flat, dict):
        raise TypeError(f"{name}.load_state_dict: expected a dict, got {type(flat).__name__}")
    groups: dict[int, dict] = {}
    state: dict[int, dict] = {}
    for full_key, value in flat.items():
        kind, _, rest = str(full_key).partition(".")
        number, _, key = rest.partition(".")
        if kind not in ("param_groups", "state") or not number.isdigit() or not key:
            raise ValueError(f"{name}.load_state_dict: unexpected key {full_key!r}; expected "
                             "'state.<i>.<name>' or 'param_groups.<g>.<name>'")
        if kind == "param_groups":
            groups.setdefault(int(number), {})[key] = _to_python(key, value)
        else:
            state.setdefault(int(number), {})[key] = (
                value.item() if isinstance(value, np.ndarray) and value.ndim == 0 else value)
    return [groups[g] for g in sorted(groups)], state


def _to_python(key: str, value):
    """A hyperparameter as the optimizer keeps it: 0-d arrays become numbers, the
    saved ``betas`` array becomes a tuple, the ``params`` index list stays an array."""
    if key == "params":
        return np.asarray(value)
    if isinstance(value, np.ndarray):
        return value.item() if value.ndim == 0 else tuple(value.tolist())
    return value


def check_number(optimizer: str, name: str, value, low: float | None = None,
                 high: float | None = None, high_open: bool = False) -> None:
    """Raise ``ValueError`` naming the optimizer unless ``low <= value <= high``
    (``value < high`` when ``high_open``)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or np.isnan(value):
        raise ValueError(f"{optimizer}: {name} must be a number, got {value!r}")
    if low is not None and value < low:
        raise ValueError(f"{optimizer}: {name} must be >= {low:g}, got {value}")
    if high is not None and (value >= high if high_open else value > high):
        bound = f"< {high:g}" if high_open else f"<= {high:g}"
        raise ValueError(f"{optimizer}: {name} must be {bound}, got {value}")
