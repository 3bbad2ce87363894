"""Module and Parameter: the building blocks of every network.

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)     # registered as child "fc1"
            self.fc2 = nn.Linear(8, 2)     # registered as child "fc2"

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

How registration works (the one piece of attribute handling in minidl, as in
PyTorch): ``Module.__setattr__`` looks at the value being assigned.

* a ``Parameter``  goes into the ordered dict ``self._parameters``;
* a ``Module``     goes into the ordered dict ``self._modules``;
* a name already registered with ``register_buffer`` is stored in ``self._buffers``;
* anything else is an ordinary attribute.

``__getattr__`` (called by Python only when normal lookup fails) reads the
three dicts back, so ``self.fc1`` works. That is all: ``parameters()``,
``state_dict()`` and friends walk these dicts recursively, in the order the
attributes were assigned.

Buffers are non-trainable state such as BatchNorm's ``running_mean``: plain
ndarrays (a Tensor is accepted too), saved in ``state_dict`` but never seen by
an optimizer. Assigning a new array to a buffer's name replaces the buffer.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import numpy as np

from minidl.autograd.dtypes import as_dtype, parse_to
from minidl.autograd.tensor import DEFAULT_FLOAT, Tensor, to_array


class Parameter(Tensor):
    """A Tensor that a Module owns and an optimizer updates (``requires_grad=True``).

    ``Parameter(t)`` for a Tensor ``t`` shares ``t``'s array. Integer data is cast
    to float32, since only floating-point values can have gradients.
    """

    __slots__ = ()

    def __init__(self, data, requires_grad: bool = True):
        array = to_array(data)
        if array.dtype.kind != "f":
            array = array.astype(DEFAULT_FLOAT)
        super().__init__(array, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


_IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])


def _count(params) -> str:
    n = sum(p.data.size for p in params)
    return f"{n:,} parameter" + ("" if n == 1 else "s")


class Module:
    """Base class of all layers and models (PyTorch semantics).

    Subclasses call ``super().__init__()`` first, assign Parameters and
    sub-Modules as attributes, and define ``forward``; ``module(x)`` calls it.
    """

    def __init__(self):
        # object.__setattr__ skips our own __setattr__, which needs these dicts.
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # ---- registration ------------------------------------------------------
    def _check_init(self, name):
        if "_parameters" not in self.__dict__:
            raise AttributeError(
                f"{type(self).__name__}: cannot assign {name!r} before Module.__init__() "
                "(call super().__init__() first in your __init__)")

    def __setattr__(self, name, value):
        """Register Parameters, Modules and existing buffers; anything else is a plain attribute."""
        if isinstance(value, (Parameter, Module)) or name in self.__dict__.get("_buffers", {}):
            self._check_init(name)
            self._forget(name)
            if isinstance(value, Parameter):
                self._parameters[name] = value
            elif isinstance(value, Module):
                self._modules[name] = value
            else:
                self._buffers[name] = _as_buffer(value, type(self).__name__, name)
            return
        if name in self.__dict__.get("_parameters", {}) and value is not None:
            raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to "
                            f"parameter {name!r} (expected a Parameter or None)")
        if name in self.__dict__.get("_modules", {}) and value is not None:
            raise TypeError(f"{type(self).__name__}: cannot assign {type(value).__name__} to "
                            f"submodule {name!r} (expected a Module or None)")
        if value is None and name in self.__dict__.get("_parameters", {}):
            self._parameters[name] = None
            return
        if value is None and name in self.__dict__.get("_modules", {}):
            self._modules[name] = None
            return
        object.__setattr__(self, name, value)

    def _forget(self, name):
        """Remove ``name`` from wherever it was stored, so it lives in exactly one place."""
        for store in (self.__dict__, self._parameters, self._buffers, self._modules):
            store.pop(name, None)

    def __getattr__(self, name):
        # Only called when ordinary lookup fails: look in the three registries.
        d = self.__dict__
        for store in ("_parameters", "_buffers", "_modules"):
            if store in d and name in d[store]:
                return d[store][name]
        raise AttributeError(f"'{type(self).__name__}' object has no attribute {name!r}")

    def __delattr__(self, name):
        for store in ("_parameters", "_buffers", "_modules"):
            if name in self.__dict__.get(store, {}):
                del self.__dict__[store][name]
                return
        object.__delattr__(self, name)

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or a None placeholder, e.g. for ``bias=False``) under ``name``."""
        self._check_init(name)
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"{type(self).__name__}.register_parameter: {name!r} must be a "
                            f"Parameter or None, got {type(param).__name__}")
        self._forget(name)
        self._parameters[name] = param

    def register_buffer(self, name: str, value, persistent: bool = True) -> None:
        """Register non-trainable state (an ndarray, a Tensor or None) under ``name``.

        Persistent buffers are saved in ``state_dict``; others (``persistent=False``) are not.
        """
        self._check_init(name)
        if "." in name or not name:
            raise KeyError(f"{type(self).__name__}.register_buffer: invalid name {name!r}")
        self._forget(name)
        self._buffers[name] = _as_buffer(value, type(self).__name__, name)
        # Non-persistent buffers (kept out of state_dict) are listed per instance.
        kept_out = self._non_persistent - {name} | ({name} if not persistent else set())
        object.__setattr__(self, "_non_persistent", frozenset(kept_out))

    _non_persistent = frozenset()

    def add_module(self, name: str, module: Module | None) -> None:
        """Register ``module`` as a child called ``name`` (what attribute assignment does)."""
        self._check_init(name)
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module: {name!r} must be a Module, "
                            f"got {type(module).__name__}")
        if "." in name or not name:
            raise KeyError(f"{type(self).__name__}.add_module: invalid name {name!r}")
        self._forget(name)
        self._modules[name] = module

    # ---- calling -----------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise TypeError(f"{type(self).__name__} does not define forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ---- walking the tree --------------------------------------------------
    def named_modules(self, prefix: str = ""):
        """Yield (dotted name, module) for this module and every descendant, each once."""
        seen, stack = set(), [(prefix, self)]
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{n}" if name else n, m)
                        for n, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))  # reversed so the first child is visited first

    def modules(self):
        for _, module in self.named_modules():
            yield module

    def named_children(self):
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self):
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        """Yield (dotted name, Parameter); a Parameter shared by two modules appears once."""
        seen = set()
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, p in module._parameters.items():
                if p is not None and id(p) not in seen:
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self, recurse: bool = True):
        for _, p in self.named_parameters(recurse=recurse):
            yield p

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        for module_name, module in modules:
            for name, b in module._buffers.items():
                if b is not None:
                    yield (f"{module_name}.{name}" if module_name else name), b

    def buffers(self, recurse: bool = True):
        for _, b in self.named_buffers(recurse=recurse):
            yield b

    def apply(self, fn):
        """Call ``fn(module)`` on every descendant and then on self (e.g. custom init)."""
        for module in self.children():
            module.apply(fn)
        fn(self)
        return self

    # ---- modes and gradients ----------------------------------------------
    def train(self, mode: bool = True):
        """Set training mode here and in every descendant (Dropout, BatchNorm read it)."""
        if not isinstance(mode, bool):
            raise TypeError(f"{type(self).__name__}.train: mode must be a bool, got {mode!r}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self):
        """Evaluation mode: same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget the gradients of all parameters (None, or zeros if ``set_to_none=False``)."""
        for p in self.parameters():
            if set_to_none:
                p.grad = None
            elif p.grad is not None:
                p.grad[...] = 0

    def requires_grad_(self, requires_grad: bool = True):
        """Freeze (False) or unfreeze (True) every parameter."""
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def to(self, *args, dtype=None, device=None, non_blocking: bool = False):
        """``to(dtype)``, ``to(device)``, ``to(device, dtype)`` or ``to(tensor)``, as PyTorch.

        A floating dtype converts the parameters (and their gradients) and the float buffers
        in place: the Parameter objects stay the same, so an optimizer made earlier keeps
        working. The only device is the CPU, so a device changes nothing.
        """
        target = parse_to(f"{type(self).__name__}.to", args, dtype, device)
        if target is None:
            return self
        if target.kind != "f":
            raise TypeError(f"{type(self).__name__}.to: only floating-point dtypes convert a "
                            f"module, got {target}")
        for p in self.parameters():
            p.data = p.data.astype(target)
            if p.grad is not None:
                p.grad = p.grad.astype(target)
        for module in self.modules():
            for name, b in module._buffers.items():
                array = b.data if isinstance(b, Tensor) else b
                if array is not None and array.dtype.kind == "f":
                    if isinstance(b, Tensor):
                        b.data = array.astype(target)
                    else:
                        module._buffers[name] = array.astype(target)
        return self

    def type(self, dst_type):
        """Convert parameters and float buffers to the floating dtype ``dst_type``."""
        return self.to(as_dtype(dst_type, f"{type(self).__name__}.type"))

    def cpu(self):
        """Nothing to move: minidl runs on the CPU."""
        return self

    def double(self):
        """Parameters and float buffers to float64 (handy for gradcheck)."""
        return self.to(np.float64)

    def float(self):
        """Parameters and float buffers to float32."""
        return self.to(np.float32)

    # ---- state dict --------------------------------------------------------
    def _state_items(self):
        """(dotted name, Parameter / buffer) for everything that state_dict saves, in order."""
        for module_name, module in self.named_modules():
            dot = f"{module_name}." if module_name else ""
            for name, p in module._parameters.items():
                if p is not None:
                    yield dot + name, p
            for name, b in module._buffers.items():
                if b is not None and name not in module._non_persistent:
                    yield dot + name, b

    def state_dict(self) -> OrderedDict:
        """Ordered dict of dotted name -> ndarray copy of every parameter and persistent buffer."""
        return OrderedDict((name, np.array(_array(value), copy=True))
                           for name, value in self._state_items())

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy values from ``state_dict`` into this module's parameters and buffers.

        Values may be ndarrays, Tensors (as ``minidl.load`` gives them back) or
        anything ``np.asarray`` takes; each is converted to its destination's dtype.
        Everything is checked before anything is written, so a failed load leaves
        the module exactly as it was: a key this module has but the dict lacks is
        missing, a key the dict has but the module lacks is unexpected (both
        errors when ``strict``); a value of another shape, a value that is not
        numbers (strings, objects, complex), and a fractional value for an integer
        buffer (such as ``num_batches_tracked``) are always errors. All problems are
        reported together in one RuntimeError naming the class and the keys, as in
        PyTorch. Each parameter written counts as an in-place change (``_version``).

        Returns:
            ``(missing_keys, unexpected_keys)`` as a named tuple, as in PyTorch.
        """
        if not hasattr(state_dict, "keys"):
            raise TypeError(f"{type(self).__name__}.load_state_dict: expected a dict, "
                            f"got {type(state_dict).__name__}")
        own = OrderedDict(self._state_items())
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        problems, values = [], {}
        for key, dest in own.items():
            if key in state_dict:
                try:
                    values[key] = _value_for(key, state_dict[key], _array(dest))
                except ValueError as problem:
                    problems.append(str(problem))
        if strict:
            if missing:
                problems.append("missing keys: " + ", ".join(repr(k) for k in missing))
            if unexpected:
                problems.append("unexpected keys: " + ", ".join(repr(k) for k in unexpected))
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems))
        # Every value has its destination's shape and dtype: the copies below cannot fail.
        for key, value in values.items():
            np.copyto(_array(own[key]), value)
            if isinstance(own[key], Tensor):
                own[key]._version += 1
        return _IncompatibleKeys(missing, unexpected)

    # ---- printing ----------------------------------------------------------
    def extra_repr(self) -> str:
        """The text inside the parentheses of this module's line, e.g. ``in_features=4``."""
        return ""

    def __repr__(self) -> str:
        params = list(self.parameters())
        count = f"  # {_count(params)}" if params else ""
        children = list(self._modules.items())
        if not children:
            return f"{type(self).__name__}({self.extra_repr()}){count}"
        # Like PyTorch: extra_repr and then one line per child, indented.
        lines = [f"{type(self).__name__}({count}"]
        lines += [f"  {line}" for line in self.extra_repr().split("\n") if line]
        for name, module in children:
            text = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {text}")
        lines.append(")")
        return "\n".join(lines)


def _array(value) -> np.ndarray:
    return value.data if isinstance(value, Tensor) else np.asarray(value)


def _value_for(key: str, value, dest: np.ndarray) -> np.ndarray:
    """``value`` as an array of ``dest``'s dtype, or ValueError saying why it cannot be loaded."""
    if type(value).__module__.split(".")[0] == "torch":
        raise ValueError(f"{key} is a PyTorch tensor; convert the whole state dict first with "
                         "minidl.utils.torch_bridge.from_torch_state_dict")
    try:
        array = _array(value)
    except (ValueError, TypeError) as error:  # e.g. a ragged list
        raise ValueError(f"{key}: cannot turn the value into an array ({error})") from None
    if array.dtype.kind not in "biuf":
        raise ValueError(f"{key} holds {array.dtype} values ({type(value).__name__}); expected "
                         f"numbers to copy into the {dest.dtype} parameter")
    if array.shape != dest.shape:
        raise ValueError(f"size mismatch for {key}: copying a value of shape {array.shape}, "
                         f"the parameter in this module has shape {dest.shape}")
    if dest.dtype.kind in "biu" and array.dtype.kind == "f" and not (
            np.isfinite(array).all() and (array == np.round(array)).all()):
        raise ValueError(f"{key} holds fractional or non-finite values, but the buffer in this "
                         f"module holds integers ({dest.dtype})")
    return array.astype(dest.dtype, copy=False)


def _as_buffer(value, owner: str, name: str):
    """Buffers are ndarrays (or Tensors, or None); numbers become 0-d arrays."""
    if value is None or isinstance(value, (np.ndarray, Tensor)):
        return value
    if isinstance(value, (int, float, np.number, np.bool_)):
        return np.asarray(value)
    raise TypeError(f"{owner}: buffer {name!r} must be an ndarray, a Tensor or None, "
                    f"got {type(value).__name__}")
