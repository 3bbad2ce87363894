"""Record PyTorch's state dicts and outputs of the layers the lessons use, once, for
tests/utils/test_torch_bridge.py (which then runs without PyTorch).

    python -m tests.utils.record_torch_state_dicts      # needs torch; rewrites the two files

Writes, beside this file:
- ``torch_state_dicts.json``: for each case, the layer (class name and arguments, the same
  for torch.nn and minidl.nn), the key -> shape and dtype of its state dict, and its input;
- ``torch_outputs.npz``: for each case, the state dict's values (random, so that a wrong
  layout cannot hide behind ones and zeros), an input and PyTorch's output(s) in eval mode.
Only ``build`` and ``CASES`` are needed without torch.
"""

import json
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
JSON_FILE = HERE / "torch_state_dicts.json"
NPZ_FILE = HERE / "torch_outputs.npz"

LENET_MODERN = ["Sequential", [  # lessons/02_lenet.py, modern_net()
    ["Conv2d", [1, 12, 5], {"padding": 2, "bias": False}], ["BatchNorm2d", [12], {}],
    ["ReLU", [], {}], ["MaxPool2d", [2], {}],
    ["Conv2d", [12, 12, 5], {"padding": 2, "bias": False}], ["BatchNorm2d", [12], {}],
    ["ReLU", [], {}], ["MaxPool2d", [2], {}],
    ["Flatten", [], {}], ["Linear", [192, 30], {}], ["ReLU", [], {}], ["Linear", [30, 10], {}],
]]

# name -> (layer spec [class, args, kwargs] or ["Sequential", [specs]], input shape, dtype)
CASES = {
    "Linear": (["Linear", [5, 3], {}], [2, 5], "float32"),
    "Linear without bias": (["Linear", [5, 3], {"bias": False}], [2, 5], "float32"),
    "Conv2d": (["Conv2d", [3, 8, 3], {"stride": 2, "padding": 1}], [2, 3, 7, 7], "float32"),
    "Conv2d groups": (["Conv2d", [4, 6, 3], {"groups": 2, "bias": False}], [1, 4, 5, 5],
                      "float32"),
    "ConvTranspose2d": (["ConvTranspose2d", [4, 6, 3],
                         {"stride": 2, "padding": 1, "output_padding": 1}], [2, 4, 3, 3],
                        "float32"),
    "ConvTranspose2d groups": (["ConvTranspose2d", [4, 6, 2], {"stride": 2, "groups": 2}],
                               [1, 4, 3, 3], "float32"),
    "BatchNorm1d": (["BatchNorm1d", [7], {}], [4, 7], "float32"),
    "BatchNorm2d": (["BatchNorm2d", [5], {}], [2, 5, 3, 3], "float32"),
    "BatchNorm2d without affine": (["BatchNorm2d", [5], {"affine": False}], [2, 5, 3, 3],
                                   "float32"),
    "LayerNorm": (["LayerNorm", [[4, 6]], {}], [3, 4, 6], "float32"),
    "GroupNorm": (["GroupNorm", [2, 6], {}], [2, 6, 3, 3], "float32"),
    "Embedding": (["Embedding", [10, 4], {"padding_idx": 0}], [2, 5], "int64"),
    "RNN": (["RNN", [3, 5], {"num_layers": 2, "bidirectional": True}], [4, 2, 3], "float32"),
    "LSTM": (["LSTM", [3, 5], {"num_layers": 2, "bidirectional": True}], [4, 2, 3], "float32"),
    "GRU": (["GRU", [3, 5], {"num_layers": 2, "bidirectional": True}], [4, 2, 3], "float32"),
    "LSTM batch_first": (["LSTM", [4, 6], {"batch_first": True}], [2, 4, 4], "float32"),
    "Sequential (lesson 02 modern net)": (LENET_MODERN, [2, 1, 16, 16], "float32"),
}


def build(nn, spec):
    """The layer ``spec`` describes, from ``nn`` (torch.nn or minidl.nn)."""
    if spec[0] == "Sequential":
        return nn.Sequential(*[build(nn, s) for s in spec[1]])
    name, args, kwargs = spec
    return getattr(nn, name)(*args, **kwargs)


def flat_outputs(out) -> list:
    """A layer's output(s) as a flat list: (output, (h, c)) -> [output, h, c]."""
    if isinstance(out, (tuple, list)):
        return [leaf for item in out for leaf in flat_outputs(item)]
    return [out]


def readable_json(record) -> str:
    """JSON with one line per case's layer and input, and one line per state-dict key."""
    cases = []
    for name, case in record["cases"].items():
        keys = ",\n".join(f"    {json.dumps(key)}: {json.dumps(entry)}"
                          for key, entry in case["state_dict"].items())
        cases.append(f"  {json.dumps(name)}: {{\n"
                     f"   \"layer\": {json.dumps(case['layer'])},\n"
                     f"   \"input\": {json.dumps(case['input'])},\n"
                     f"   \"state_dict\": {{\n{keys}}}}}")
    return (f"{{\"recorded_with\": {json.dumps(record['recorded_with'])},\n"
            " \"cases\": {\n" + ",\n".join(cases) + "}}")


def main():
    import torch

    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    record, arrays = {"recorded_with": f"torch {torch.__version__}", "cases": {}}, {}
    for name, (spec, input_shape, dtype) in CASES.items():
        layer = build(torch.nn, spec).eval()
        with torch.no_grad():
            for key, value in layer.state_dict().items():
                if value.dtype.is_floating_point:  # random, positive where a variance lives
                    new = torch.randn_like(value)
                    value.copy_(new.abs() + 0.5 if key.endswith("running_var") else new)
        if dtype == "int64":
            x = rng.integers(0, 10, input_shape)
        else:
            x = rng.standard_normal(input_shape).astype(dtype)
        with torch.no_grad():
            outputs = flat_outputs(layer(torch.from_numpy(x)))
        state = layer.state_dict()
        record["cases"][name] = {
            "layer": spec, "input": {"shape": list(input_shape), "dtype": dtype},
            "state_dict": {key: {"shape": list(v.shape), "dtype": str(v.dtype).split(".")[1]}
                           for key, v in state.items()}}
        arrays.update({f"{name}|state|{key}": v.numpy() for key, v in state.items()})
        arrays[f"{name}|input"] = x
        arrays.update({f"{name}|output{i}": o.numpy() for i, o in enumerate(outputs)})
    JSON_FILE.write_text(readable_json(record) + "\n")
    np.savez_compressed(NPZ_FILE, **arrays)
    print(f"wrote {JSON_FILE} and {NPZ_FILE} ({len(CASES)} cases)")


if __name__ == "__main__":
    main()
