"""Every recipe in examples/ runs and does what its docstring promises."""

import importlib.util
import sys
from pathlib import Path

import numpy as np

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load(name):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_own_data_mlp_learns_the_spirals():
    assert load("own_data_mlp").main() > 0.9


def test_new_primitive_example_passes_its_checks():
    load("new_primitive").main()


def test_checkpoint_resume_matches_uninterrupted_training(tmp_path):
    uninterrupted, resumed = load("checkpoint_resume").main(tmp_path)
    assert abs(uninterrupted - resumed) <= 1e-5 * abs(uninterrupted)
    assert (tmp_path / "checkpoint.npz").exists()


def test_step_through_kernel_example_computes_box_sums():
    out = load("step_through_kernel").main().data[0, 0]
    image = np.arange(16.0).reshape(4, 4)
    padded = np.pad(image, 1)
    expected = [[padded[i:i + 3, j:j + 3].sum() for j in range(4)] for i in range(4)]
    np.testing.assert_allclose(out, expected)


def test_torch_bridge_example_without_torch_trains_saves_and_says_what_it_skipped(
        tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # what `import torch` sees when absent
    result = load("torch_bridge").main(tmp_path)
    assert result == {"accuracy": result["accuracy"], "torch": None}
    assert result["accuracy"] > 0.8 and (tmp_path / "lenet_minidl.npz").exists()
    assert "skipped the move to PyTorch: PyTorch is not installed" in capsys.readouterr().out


def test_the_breakpoint_readme_and_the_example_give_is_im2col_copying_a_pixel():
    """README and the example name a line of minidl/kernels/conv.py for pdb; it must stay
    the line of im2col that copies one pixel, where `p row, iy, ox` shows the loop."""
    import re

    repo = EXAMPLES.parent
    lines = {int(n) for path in (repo / "README.md", EXAMPLES / "step_through_kernel.py")
             for n in re.findall(r"minidl/kernels/conv\.py:(\d+)", path.read_text())}
    assert len(lines) == 1, f"README and the example disagree on the line: {sorted(lines)}"
    source = (repo / "minidl" / "kernels" / "conv.py").read_text().splitlines()
    line = lines.pop()
    assert "= in_row[np.uint64(ox + offset)]" in source[line - 1], source[line - 1]
    start = max(i for i in range(line) if source[i].startswith("def "))
    assert source[start].startswith("def im2col(")
