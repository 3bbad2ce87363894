"""Module: registration, traversal, modes, state_dict / load_state_dict, repr, deepcopy."""

import copy
from collections import OrderedDict

import numpy as np
import pytest

import minidl.nn as nn
from minidl import Tensor


class Block(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 4)
        self.scale = nn.Parameter(np.ones(4, dtype=np.float32))
        self.register_buffer("running_mean", np.zeros(4, dtype=np.float32))
        self.note = "plain attribute"

    def forward(self, x):
        return self.fc(x) * self.scale


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.block = Block()
        self.drop = nn.Dropout(0.5)
        self.head = nn.Linear(4, 2, bias=False)

    def forward(self, x):
        return self.head(self.drop(self.block(x)))


def test_parameter_is_a_float_tensor_that_requires_grad():
    p = nn.Parameter(np.arange(3))
    assert isinstance(p, Tensor) and p.requires_grad and p.dtype == np.float32
    t = Tensor(np.ones(2))
    assert nn.Parameter(t).data is t.data  # shares the array
    assert repr(p).startswith("Parameter containing:\ntensor(")


def test_registration_and_traversal_order():
    net = Net()
    names = [n for n, _ in net.named_parameters()]
    assert names == ["block.scale", "block.fc.weight", "block.fc.bias", "head.weight"]
    assert [n for n, _ in net.named_buffers()] == ["block.running_mean"]
    assert [type(m).__name__ for m in net.children()] == ["Block", "Dropout", "Linear"]
    assert [n for n, _ in net.named_modules()] == ["", "block", "block.fc", "drop", "head"]
    assert net.block.note == "plain attribute"
    assert net.head.bias is None
    assert len(list(net.parameters())) == 4


def test_buffer_assignment_replaces_the_buffer():
    block = Block()
    block.running_mean = np.full(4, 2.0, dtype=np.float32)
    assert block._buffers["running_mean"][0] == 2.0
    assert "running_mean" not in block.__dict__
    assert list(block.buffers())[0] is block.running_mean


def test_reassigning_moves_between_registries():
    block = Block()
    block.fc = nn.Parameter(np.zeros(2))  # a module name becomes a parameter name
    assert "fc" not in block._modules and block._parameters["fc"] is block.fc
    with pytest.raises(TypeError, match="cannot assign ndarray to parameter 'fc'"):
        block.fc = np.zeros(2)
    del block.fc
    assert "fc" not in block._parameters


def test_shared_parameter_listed_once():
    a = nn.Linear(2, 2)
    seq = nn.Sequential(a, a)
    assert len(list(seq.parameters())) == 2


def test_assigning_before_init_is_a_clear_error():
    class Forgot(nn.Module):
        def __init__(self):
            self.fc = nn.Linear(2, 2)

    with pytest.raises(AttributeError, match=r"call super\(\).__init__\(\) first"):
        Forgot()


def test_train_eval_propagate():
    net = Net()
    assert net.eval() is net
    assert all(not m.training for m in net.modules())
    net.train()
    assert all(m.training for m in net.modules())
    x = Tensor(np.ones((2, 3), dtype=np.float32))
    net.eval()
    np.testing.assert_array_equal(net(x).data, net(x).data)  # dropout off


def test_zero_grad():
    net = Net()
    net(Tensor(np.ones((2, 3), dtype=np.float32))).sum().backward()
    assert all(p.grad is not None for p in net.parameters())
    net.zero_grad(set_to_none=False)
    assert all((p.grad == 0).all() for p in net.parameters())
    net.zero_grad()
    assert all(p.grad is None for p in net.parameters())


def test_double_converts_parameters_and_buffers_in_place():
    net = Net()
    weight = net.head.weight
    net.double()
    assert net.head.weight is weight and weight.dtype == np.float64
    assert net.block.running_mean.dtype == np.float64


def test_to_cpu_float_type_as_pytorch():
    import minidl as md

    net = Net()
    weight = net.head.weight
    assert net.to("cpu") is net and net.cpu() is net and net.to(md.device("cpu")) is net
    assert net.to(md.float64) is net and weight.dtype == np.float64 and net.head.weight is weight
    net.to("cpu", md.float32)
    assert weight.dtype == np.float32 and net.block.running_mean.dtype == np.float32
    net.type(md.float64)
    assert weight.dtype == np.float64
    net.to(md.zeros(1, dtype=md.float32))  # the dtype of a tensor
    assert weight.dtype == np.float32
    net.float()
    assert weight.dtype == np.float32
    with pytest.raises(RuntimeError, match="Net.to: minidl runs on the CPU only"):
        net.to("cuda")
    with pytest.raises(TypeError, match="Net.to: only floating-point dtypes convert a module"):
        net.to(md.int64)
    assert weight.dtype == np.float32


def test_apply_and_requires_grad():
    net = Net()
    seen = []
    net.apply(lambda m: seen.append(type(m).__name__))
    assert seen == ["Linear", "Block", "Dropout", "Linear", "Net"]
    net.requires_grad_(False)
    assert not any(p.requires_grad for p in net.parameters())


# ---- state dict ---------------------------------------------------------------------
def test_state_dict_holds_copies_in_order():
    net = Net()
    state = net.state_dict()
    assert list(state) == ["block.scale", "block.running_mean", "block.fc.weight",
                           "block.fc.bias", "head.weight"]
    assert all(isinstance(v, np.ndarray) for v in state.values())
    state["head.weight"][...] = 123.0
    assert not (net.head.weight.data == 123.0).any()


def test_load_state_dict_round_trip_keeps_destination_dtype():
    a, b = Net(), Net()
    state = OrderedDict((k, v.astype(np.float64) + 1) for k, v in a.state_dict().items())
    result = b.load_state_dict(state)
    assert result.missing_keys == [] and result.unexpected_keys == []
    for key, value in b.state_dict().items():
        assert value.dtype == np.float32
        np.testing.assert_allclose(value, state[key], rtol=1e-6)


def test_load_state_dict_errors_leave_module_unchanged():
    net = Net()
    before = net.state_dict()
    state = net.state_dict()
    for value in state.values():
        value += 1  # would change every value if anything were copied
    del state["head.weight"]
    state["block.extra"] = np.zeros(1)
    state["block.fc.bias"] = np.zeros(5)
    with pytest.raises(RuntimeError) as info:
        net.load_state_dict(state)
    message = str(info.value)
    assert "Error(s) in loading state_dict for Net" in message
    assert "missing keys: 'head.weight'" in message
    assert "unexpected keys: 'block.extra'" in message
    assert "size mismatch for block.fc.bias: copying a value of shape (5,)" in message
    assert "has shape (4,)" in message
    for key, value in net.state_dict().items():
        np.testing.assert_array_equal(value, before[key])


def test_load_state_dict_non_strict():
    net = Net()
    state = net.state_dict()
    del state["head.weight"]
    state["block.extra"] = np.zeros(1)
    state["block.scale"] = np.full(4, 7.0)
    result = net.load_state_dict(state, strict=False)
    assert result.missing_keys == ["head.weight"]
    assert result.unexpected_keys == ["block.extra"]
    np.testing.assert_array_equal(net.block.scale.data, 7.0)
    state["block.scale"] = np.zeros(3)
    with pytest.raises(RuntimeError, match="size mismatch for block.scale"):
        net.load_state_dict(state, strict=False)  # shape errors are never skipped


class Stack(nn.Module):
    """Several modules in a row: a load that wrote as it checked would change the first ones."""

    def __init__(self):
        super().__init__()
        self.first = nn.Linear(3, 4)
        self.norm = nn.BatchNorm1d(4)
        self.inner = Net()
        self.last = nn.Linear(2, 2)


class LooksLikeATorchTensor:
    """What makes a value a PyTorch tensor for load_state_dict: the module it comes from."""

    __module__ = "torch"

    def __array__(self, dtype=None, copy=None):
        return np.zeros((2, 2), np.float32)


def changed_stack_state(stack, key, value):
    state = stack.state_dict()
    for v in state.values():
        v += 1  # every valid value differs from the module's, so a partial write would show
    state[key] = value
    return state


@pytest.mark.parametrize("key, value, match", [
    ("last.weight", np.array([["a", "b"], ["c", "d"]]), r"last.weight holds <U1 values"),
    ("last.bias", np.array([None, None]), r"last.bias holds object values"),
    ("last.bias", np.array([1 + 2j, 3j]), r"last.bias holds complex128 values"),
    ("last.bias", None, r"last.bias holds object values \(NoneType\)"),
    ("last.bias", "0.5", r"last.bias holds <U3 values \(str\)"),
    ("last.weight", [[1.0, 2.0], [3.0]], r"last.weight: cannot turn the value into an array"),
    ("last.weight", np.zeros((2, 3)), r"size mismatch for last.weight: .* shape \(2, 3\)"),
    ("last.weight", LooksLikeATorchTensor(), r"last.weight is a PyTorch tensor; .*from_torch"),
    ("norm.num_batches_tracked", np.array(2.5), r"norm.num_batches_tracked holds fractional"),
    ("norm.num_batches_tracked", np.array(np.nan), r"norm.num_batches_tracked holds .* non-finite"),
])
def test_load_state_dict_checks_every_value_before_writing_any(key, value, match):
    stack = Stack()
    before = stack.state_dict()
    versions = [p._version for p in stack.parameters()]
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Stack:\n\t"
                                           + match):
        stack.load_state_dict(changed_stack_state(stack, key, value))
    for name, array in stack.state_dict().items():
        np.testing.assert_array_equal(array, before[name])
    assert [p._version for p in stack.parameters()] == versions


@pytest.mark.parametrize("change", ["missing", "unexpected"])
def test_load_state_dict_with_missing_or_unexpected_keys_changes_nothing(change):
    stack = Stack()
    before = stack.state_dict()
    state = changed_stack_state(stack, "first.weight", stack.state_dict()["first.weight"] + 1)
    if change == "missing":
        del state["last.bias"]
    else:
        state["last.extra"] = np.zeros(1)
    with pytest.raises(RuntimeError, match=f"{change} keys: 'last."):
        stack.load_state_dict(state)
    for name, array in stack.state_dict().items():
        np.testing.assert_array_equal(array, before[name])


def test_load_state_dict_takes_tensors_ndarrays_and_numbers_and_counts_versions():
    stack = Stack()
    state = stack.state_dict()
    want = {k: v + 1 for k, v in state.items()}
    given = OrderedDict((k, Tensor(v) if i % 2 else v) for i, (k, v) in enumerate(want.items()))
    given["norm.num_batches_tracked"] = 7.0  # an integral float into the int64 buffer
    want["norm.num_batches_tracked"] = np.array(7)
    versions = [p._version for p in stack.parameters()]
    stack.load_state_dict(given)
    for name, array in stack.state_dict().items():
        assert array.dtype == state[name].dtype
        np.testing.assert_array_equal(array, want[name])
    assert [p._version for p in stack.parameters()] == [v + 1 for v in versions]


def test_non_persistent_buffer_not_saved():
    m = nn.Module()
    m.register_buffer("cache", np.zeros(2), persistent=False)
    m.register_buffer("count", 0)
    assert list(m.state_dict()) == ["count"]
    assert m.count.shape == ()


# ---- repr -------------------------------------------------------------------------
def test_repr_shows_structure_and_parameter_counts():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 1, bias=False))
    assert repr(model) == (
        "Sequential(  # 18 parameters\n"
        "  (0): Linear(in_features=4, out_features=3, bias=True)  # 15 parameters\n"
        "  (1): ReLU()\n"
        "  (2): Linear(in_features=3, out_features=1, bias=False)  # 3 parameters\n"
        ")"
    )


def test_repr_of_nested_modules_is_indented():
    text = repr(Net())
    assert text.splitlines()[0] == "Net(  # 28 parameters"
    assert "  (block): Block(  # 20 parameters\n    (fc): Linear(" in text
    assert "  (drop): Dropout(p=0.5)\n" in text


def test_deepcopy_gives_independent_parameters():
    net = Net()
    clone = copy.deepcopy(net)
    assert clone.head.weight is not net.head.weight
    np.testing.assert_array_equal(clone.head.weight.data, net.head.weight.data)
    clone.head.weight.data += 1
    assert not np.array_equal(clone.head.weight.data, net.head.weight.data)
    assert isinstance(clone.head.weight, nn.Parameter)
