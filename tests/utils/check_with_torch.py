"""Checks that need PyTorch itself, run by hand where it is installed (never by the suite,
which runs without torch: tests/utils/test_torch_bridge.py checks the same promises against
what PyTorch recorded once).

    python -m tests.utils.check_with_torch
"""

import tempfile
from pathlib import Path

import numpy as np
import pytest

import minidl
import minidl.nn as nn
from minidl import Tensor
from minidl.utils.torch_bridge import from_torch_state_dict, to_torch_state_dict
from tests.test_examples import load
from tests.utils.record_torch_state_dicts import build
from tests.utils.test_torch_bridge import RECORDED


def check_a_model_goes_to_pytorch_and_back_unchanged():
    import torch
    spec = RECORDED["Sequential (lesson 02 modern net)"]["layer"]
    minidl.manual_seed(0)
    model = build(nn, spec)
    model.eval()
    torch_model = build(torch.nn, spec).eval()
    torch_model.load_state_dict(to_torch_state_dict(model.state_dict()))
    x = np.random.default_rng(0).standard_normal((3, 1, 16, 16)).astype(np.float32)
    with torch.no_grad():
        want = torch_model(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(model(Tensor(x)).data, want, rtol=1e-5, atol=1e-5)

    back = build(nn, spec)
    back.load_state_dict(from_torch_state_dict(torch_model.state_dict()))
    for (key, a), (key2, b) in zip(model.state_dict().items(), back.state_dict().items()):
        assert key == key2 and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def check_conversions_copy_and_check_their_input():
    import torch
    weights = {"w": np.ones(2, np.float32), "t": Tensor(np.zeros(3)), "n": 5}
    converted = to_torch_state_dict(weights)
    assert [type(v) for v in converted.values()] == [torch.Tensor] * 3
    assert converted["t"].dtype == torch.float64 and converted["n"].dtype == torch.int64
    converted["w"][0] = 7
    assert weights["w"][0] == 1  # a copy
    back = from_torch_state_dict({"p": torch.nn.Parameter(torch.ones(2, dtype=torch.bfloat16))})
    assert back["p"].dtype == np.float32 and isinstance(back["p"], np.ndarray)
    with pytest.raises(TypeError, match=r"from_torch_state_dict: 'x' is a list, not a torch"):
        from_torch_state_dict({"x": [1.0]})
    with pytest.raises(TypeError, match=r"to_torch_state_dict: 's' holds <U1 values"):
        to_torch_state_dict({"s": np.array(["a"])})


def check_torch_bridge_example_moves_the_model_to_torch_and_back(tmp_path):
    result = load("torch_bridge").main(tmp_path)
    assert result["torch"] == result["accuracy"] > 0.8
    assert result["difference"] < 1e-4 and result["round_trip"] == 0.0


if __name__ == "__main__":
    check_a_model_goes_to_pytorch_and_back_unchanged()
    check_conversions_copy_and_check_their_input()
    with tempfile.TemporaryDirectory() as folder:
        check_torch_bridge_example_moves_the_model_to_torch_and_back(Path(folder))
    print("all PyTorch checks passed")
