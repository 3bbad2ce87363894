"""Every recipe in examples/ runs and does what its docstring promises."""

import importlib.util
from pathlib import Path

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
