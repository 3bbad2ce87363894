"""Package-level promises: light imports, seeding, the public namespace."""

import subprocess
import sys

import numpy as np
import pytest

import minidl


def test_import_minidl_loads_neither_numba_nor_matplotlib():
    code = ("import sys, minidl, minidl.nn, minidl.optim, minidl.data, minidl.vision; "
            "print(sorted(m for m in ('numba', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_manual_seed_repeats_random_tensors():
    minidl.manual_seed(7)
    a = minidl.randn(3, 4).data.copy()
    minidl.manual_seed(7)
    b = minidl.randn(3, 4).data
    minidl.manual_seed(8)
    c = minidl.randn(3, 4).data
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_factories_default_to_float32():
    assert minidl.zeros(2, 3).dtype == np.float32
    assert minidl.ones((2, 3)).shape == (2, 3)
    assert minidl.tensor([1.0, 2.0]).dtype == np.float32
    assert minidl.tensor([1, 2]).dtype == np.int64
    assert minidl.tensor(np.zeros(2)).dtype == np.float64  # ndarrays keep their dtype


def test_tensor_factory_copies():
    source = np.zeros(3, np.float32)
    t = minidl.tensor(source)
    source[0] = 1
    assert t.data[0] == 0


def _fresh(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_subpackages_load_lazily_on_first_use():
    code = ("import sys, minidl; "
            "print(sorted(m for m in ('minidl.nn', 'minidl.optim', 'minidl.data', "
            "'minidl.vision', 'minidl.utils.data') if m in sys.modules))")
    assert _fresh(code) == "[]"
    code = ("import minidl; "
            "print(minidl.nn.Linear.__name__, minidl.nn.functional.relu.__name__, "
            "minidl.optim.SGD.__name__, minidl.data.DataLoader.__name__, "
            "minidl.utils.data.TensorDataset.__name__, minidl.vision.nms.__name__, "
            "minidl.utils.draw_graph.__name__)")
    assert _fresh(code) == "Linear relu SGD DataLoader TensorDataset nms draw_graph"


def test_unknown_attributes_are_attribute_errors():
    with pytest.raises(AttributeError, match="module 'minidl' has no attribute 'nope'"):
        minidl.nope  # noqa: B018
    with pytest.raises(AttributeError, match="module 'minidl.utils' has no attribute 'nope'"):
        minidl.utils.nope  # noqa: B018


def test_pytorch_names_at_the_top_level():
    for name in ("from_numpy", "as_tensor", "linspace", "randn_like", "rand_like", "full_like",
                 "empty", "is_tensor", "nonzero", "gather", "sort", "topk", "argsort", "bmm",
                 "mm", "sin", "cos", "clone", "narrow", "masked_fill", "multinomial", "device",
                 "cuda", "eq", "all", "any", "float32", "long", "double"):
        assert hasattr(minidl, name), name
