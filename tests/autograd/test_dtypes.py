"""dtypes and devices: PyTorch's dtype names are NumPy types, the CPU is the one device, and
anything else is a clear error."""

import numpy as np
import pytest

import minidl as md
from minidl.autograd.dtypes import as_dtype, check_device, device, parse_to, type_name


def test_dtype_aliases_are_pytorchs():
    assert md.float is md.float32 is np.float32 and md.double is md.float64 is np.float64
    assert md.long is md.int64 is np.int64 and md.int is md.int32 is np.int32
    assert md.half is md.float16 is np.float16 and md.bool is np.bool_
    assert md.uint8 is np.uint8 and md.short is np.int16 and md.int8 is np.int8
    assert md.zeros(2).dtype == md.float and md.tensor([1]).dtype == md.long
    # the package's own code still sees Python's float, int and bool
    assert md.tensor([True]).item() is True and isinstance(md.tensor([2]).item(), int)


def test_as_dtype():
    assert as_dtype(np.float32, "op") == np.dtype(np.float32)
    assert as_dtype("float64", "op") == np.dtype(np.float64)
    with pytest.raises(TypeError, match="op: expected a dtype such as minidl.float32, got None"):
        as_dtype(None, "op")
    with pytest.raises(TypeError, match="op: minidl tensors hold bool, integer or floating"):
        as_dtype(np.complex128, "op")
    with pytest.raises(TypeError, match="op: expected a dtype"):
        as_dtype("no such type", "op")


def test_device_cpu_and_its_forms():
    cpu = md.device("cpu")
    assert cpu == md.device("cpu:0") == md.device(cpu) == device("cpu", 0)
    assert repr(cpu) == "device(type='cpu')" and str(md.device("cpu:0")) == "cpu:0"
    assert cpu.type == "cpu" and hash(cpu) == hash(md.device("cpu:0"))
    assert cpu != "cpu"  # as PyTorch: a device equals devices only


@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "mps"])
def test_other_devices_say_minidl_runs_on_the_cpu(spec):
    with pytest.raises(RuntimeError, match="device: minidl runs on the CPU only"):
        md.device(spec)
    with pytest.raises(RuntimeError, match="^zeros: minidl runs on the CPU only"):
        check_device(spec, "zeros")


def test_invalid_device_strings():
    with pytest.raises(RuntimeError, match="invalid device string 'cpu:x'"):
        md.device("cpu:x")
    with pytest.raises(RuntimeError, match="one CPU device, index 0; got index 1"):
        md.device("cpu:1")
    with pytest.raises(TypeError, match="device: expected a string"):
        md.device(0)


def test_parse_to():
    assert parse_to("to", ()) is None
    assert parse_to("to", ("cpu",)) is None
    assert parse_to("to", (np.float64,)) == np.float64
    assert parse_to("to", ("cpu", np.float16)) == np.float16
    assert parse_to("to", (), dtype=np.int32, device="cpu") == np.int32
    assert parse_to("to", (md.zeros(1, dtype=md.long),)) == np.int64
    with pytest.raises(RuntimeError, match="to: minidl runs on the CPU only"):
        parse_to("to", (), device="cuda")


def test_type_names():
    assert type_name(np.float32) == "minidl.FloatTensor"
    assert type_name(np.bool_) == "minidl.BoolTensor" and type_name(np.uint8) == "minidl.ByteTensor"
