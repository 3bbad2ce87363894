"""minidl.utils.torch_bridge, and the promise behind it: minidl's layers have PyTorch's state-dict
keys, shapes, dtypes and layouts. Checked without PyTorch against what PyTorch 2.13 recorded
(tests/utils/record_torch_state_dicts.py): the keys, and the outputs of each layer given
PyTorch's random weights. Where PyTorch is installed,
``python -m tests.utils.check_with_torch`` also runs the conversions against torch itself."""

import json
import sys

import numpy as np
import pytest

import minidl.nn as nn
from minidl import Tensor
from minidl.utils.torch_bridge import from_torch_state_dict, to_torch_state_dict
from tests.utils.record_torch_state_dicts import JSON_FILE, NPZ_FILE, build

RECORDED = json.loads(JSON_FILE.read_text())["cases"]


@pytest.fixture(scope="module")
def recorded_arrays():
    with np.load(NPZ_FILE, allow_pickle=False) as f:
        return {key: f[key] for key in f.files}


@pytest.mark.parametrize("case", list(RECORDED))
def test_state_dict_keys_shapes_and_dtypes_are_pytorchs(case):
    want = RECORDED[case]["state_dict"]
    got = build(nn, RECORDED[case]["layer"]).state_dict()
    assert list(got) == list(want)  # same names, same order
    for key, entry in want.items():
        assert (list(got[key].shape), str(got[key].dtype)) == (entry["shape"], entry["dtype"]), key


@pytest.mark.parametrize("case", list(RECORDED))
def test_pytorchs_weights_give_pytorchs_outputs(case, recorded_arrays):
    """Same layout, not only the same shapes: e.g. LSTM gate order, ConvTranspose2d's
    [in, out/groups, kh, kw], GRU's reset gate, BatchNorm's running statistics in eval."""
    prefix = f"{case}|state|"
    state = {key[len(prefix):]: value for key, value in recorded_arrays.items()
             if key.startswith(prefix)}
    layer = build(nn, RECORDED[case]["layer"])
    layer.load_state_dict(state)
    layer.eval()
    out = layer(Tensor(recorded_arrays[f"{case}|input"]))
    outputs = [leaf.data for leaf in flatten(out)]
    want = [recorded_arrays[f"{case}|output{i}"] for i in range(len(outputs))]
    assert f"{case}|output{len(outputs)}" not in recorded_arrays
    for got, expected in zip(outputs, want):
        assert got.shape == expected.shape
        # float32 sums: rounding grows with the size of the terms (the lesson 02 net with
        # N(0, 1) weights reaches thousands), so the tolerance scales with the largest output.
        scale = max(1.0, float(np.abs(expected).max()))
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6 * scale)


def flatten(out):
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in flatten(item)]
    return [out]


@pytest.mark.parametrize("convert", [to_torch_state_dict, from_torch_state_dict])
def test_without_torch_the_bridge_says_what_to_install(monkeypatch, convert):
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees when absent
    with pytest.raises(ImportError, match=f"{convert.__name__} needs PyTorch, which is not "
                                          r"installed \(pip install torch\)"):
        convert({"weight": np.ones(2)})


def test_importing_minidl_and_the_bridge_does_not_import_torch():
    import subprocess

    code = ("import sys, minidl, minidl.utils.torch_bridge\n"
            "print('torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr
