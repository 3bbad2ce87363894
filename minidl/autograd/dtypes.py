"""dtypes: PyTorch's names for NumPy's types, and the one device minidl has.

A minidl dtype *is* a NumPy type, so ``minidl.float32 is np.float32`` and
``t.dtype == minidl.float32`` compare as you expect. PyTorch's aliases map as
in PyTorch: ``float`` is float32, ``double`` float64, ``long`` int64, ``int``
int32, ``half`` float16. (Inside the package these names are only defined in
``minidl/__init__.py``, last, so that they never shadow Python's own ``float``,
``int`` and ``bool``.)

Devices: minidl computes with NumPy on the CPU, so ``device("cpu")`` is the only
device there is. ``device("cuda")`` raises an error that says so; PyTorch code
that checks ``minidl.cuda.is_available()`` first picks the CPU by itself.
"""

from __future__ import annotations

import numpy as np

DEFAULT_FLOAT = np.float32

# PyTorch's legacy tensor type names (``t.type()`` returns e.g. "minidl.FloatTensor").
_TYPE_NAMES = {
    np.float16: "HalfTensor", np.float32: "FloatTensor", np.float64: "DoubleTensor",
    np.int8: "CharTensor", np.int16: "ShortTensor", np.int32: "IntTensor",
    np.int64: "LongTensor", np.uint8: "ByteTensor", np.bool_: "BoolTensor",
}


def as_dtype(dtype, op: str) -> np.dtype:
    """``dtype`` (a NumPy type, ``np.dtype`` or a name such as "float32") as an ``np.dtype``.

    Raises a TypeError naming ``op`` for anything else, and for dtypes a Tensor cannot hold.
    """
    if dtype is None:  # np.dtype(None) would quietly mean float64
        raise TypeError(f"{op}: expected a dtype such as minidl.float32, got None")
    try:
        result = np.dtype(dtype)
    except TypeError:
        raise TypeError(f"{op}: expected a dtype such as minidl.float32, got {dtype!r}") from None
    if result.kind not in "biuf":
        raise TypeError(f"{op}: minidl tensors hold bool, integer or floating-point numbers, "
                        f"got dtype {dtype!r}")
    return result


def is_dtype(value) -> bool:
    """True for what ``Tensor.to`` reads as a dtype (a NumPy type or np.dtype, not a string)."""
    return isinstance(value, np.dtype) or (isinstance(value, type)
                                           and issubclass(value, np.generic))


def parse_to(op: str, args: tuple, dtype=None, device=None):
    """The dtype that ``to(*args, dtype=..., device=...)`` asks for (None: keep it).

    Like PyTorch's ``Tensor.to`` / ``Module.to``: each positional argument is a device
    (a string or ``device``), a dtype, or a tensor whose dtype is taken. A device must be
    the CPU.
    """
    for arg in args:
        if is_dtype(arg):
            dtype = arg
        elif isinstance(arg, (str, Device)):  # (the argument ``device`` hides the class name)
            check_device(arg, op)
        elif hasattr(arg, "dtype") and hasattr(arg, "shape"):  # a tensor: take its dtype
            dtype = arg.dtype
        else:
            raise TypeError(f"{op}: expected a device, a dtype or a tensor, got {arg!r}")
    check_device(device, op)
    return None if dtype is None else as_dtype(dtype, op)


def type_name(dtype: np.dtype) -> str:
    """PyTorch's name of the tensor type of ``dtype``, e.g. "minidl.FloatTensor"."""
    return "minidl." + _TYPE_NAMES.get(np.dtype(dtype).type, f"{np.dtype(dtype).name}Tensor")


class device:  # noqa: N801  (lower case: PyTorch's name, used as minidl.device("cpu"))
    """A compute device. minidl has one: ``device("cpu")`` (also "cpu:0").

    Accepted wherever PyTorch takes a device (``Tensor.to``, ``Module.to``,
    ``minidl.zeros(..., device=...)``, ``minidl.load(map_location=...)``).
    Any other device type raises a RuntimeError: minidl runs on the CPU only.
    """

    __slots__ = ("type", "index")

    def __init__(self, spec="cpu", index: int | None = None):
        if isinstance(spec, device):
            spec, index = spec.type, spec.index if index is None else index
        if not isinstance(spec, str):
            raise TypeError(f"device: expected a string such as 'cpu', got {spec!r}")
        kind, _, number = spec.partition(":")
        if number:
            if not number.isdigit() or index is not None:
                raise RuntimeError(f"device: invalid device string {spec!r}")
            index = int(number)
        if kind != "cpu":
            raise RuntimeError(
                f"device: minidl runs on the CPU only, got {spec!r}. Use 'cpu' (PyTorch code "
                "that asks minidl.cuda.is_available() first picks the CPU by itself)")
        if index not in (None, 0):
            raise RuntimeError(f"device: there is one CPU device, index 0; got index {index}")
        self.type, self.index = kind, index

    def __eq__(self, other):
        if not isinstance(other, device):
            return NotImplemented
        return self.type == other.type and (self.index or 0) == (other.index or 0)

    def __hash__(self):
        return hash(self.type)

    def __repr__(self) -> str:
        index = "" if self.index is None else f", index={self.index}"
        return f"device(type='{self.type}'{index})"

    def __str__(self) -> str:
        return self.type if self.index is None else f"{self.type}:{self.index}"


Device = device
CPU = device("cpu")


def check_device(spec, op: str) -> None:
    """Raise naming ``op`` unless ``spec`` is None or names the CPU (a string or a device)."""
    if spec is None or isinstance(spec, device):
        return
    if not isinstance(spec, str):
        raise TypeError(f"{op}: expected a device such as 'cpu', got {spec!r}")
    try:
        device(spec)
    except RuntimeError as error:
        raise RuntimeError(f"{op}: {error}".replace("device: ", "", 1)) from None
