"""python -m minidl.bench --vs-torch: its helpers, and every workload's minidl side runs.

PyTorch is never needed here: the PyTorch side is only built when it is installed and the
comparison is asked for; without it the mode stops with a message saying so.
"""

import sys

import numpy as np
import pytest

from minidl.bench import __main__ as bench
from minidl.bench import lesson02, vs_torch


def test_without_pytorch_the_mode_says_how_to_get_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch now raises ImportError
    with pytest.raises(SystemExit, match="needs PyTorch, which minidl never depends on"):
        bench.main(["--vs-torch"])


def test_vs_torch_takes_no_sections():
    with pytest.raises(SystemExit):
        bench.main(["--vs-torch", "conv"])


def test_interleaved_medians_alternate_the_order_and_take_medians():
    calls = []
    steps = [lambda: calls.append("a"), lambda: calls.append("b")]
    medians = vs_torch.interleaved_medians(steps, repeat=4, target_seconds=0.0, gap=0.0)
    assert len(medians) == 2 and all(m >= 0 for m in medians)
    timed = calls[4:]  # after one warm-up and one calibration call of each
    assert timed == ["a", "b", "b", "a", "a", "b", "b", "a"]


def test_geometric_mean():
    assert vs_torch.geometric_mean([2.0, 0.5, 1.0]) == pytest.approx(1.0)
    assert vs_torch.geometric_mean([4.0, 1.0]) == pytest.approx(2.0)


@pytest.mark.parametrize("workload", vs_torch.WORKLOADS, ids=lambda w: w.name)
def test_every_workload_runs_its_minidl_side(workload):
    minidl_step, torch_step = workload.build(None)
    assert torch_step is None
    minidl_step()


def test_lesson02_networks_train_an_epoch_on_a_few_digits():
    images = np.random.default_rng(0).uniform(-1, 1, (8, 1, 16, 16)).astype(np.float32)
    labels = np.arange(8) % 10
    for make in (lesson02.epochs_1989, lesson02.epochs_modern):
        minidl_epoch, torch_epoch = make(None, images, labels)
        assert torch_epoch is None and np.isfinite(minidl_epoch())


def test_lesson02_connection_mask_reads_eight_of_twelve_maps():
    mask = lesson02.connection_mask()
    assert mask.shape == (12, 12, 1, 1) and (mask.sum(axis=1) == 8).all()


def test_conv_c_peak_memory_is_measured_for_minidl_in_a_fresh_interpreter():
    from minidl.bench import memory

    rss, traced = memory.peak_bytes("minidl")
    output_bytes = 32 * 64 * 32 * 32 * 4  # forward + backward holds at least the output
    assert rss > 0 and traced >= output_bytes


def test_markdown_table_has_a_row_per_workload_and_the_ratios():
    rows = [("conv2d C", 0.030, 0.025), ("GroupNorm", 0.002, 0.002)]
    text = vs_torch.markdown(rows, (20 * 2**20, 25 * 2**20), [("modern LeNet", 0.5, 0.4)], 150.0)
    assert "| conv2d C | 30.00 ms | 25.00 ms | 1.20 | <= 1.3 |" in text
    assert "| geometric mean | | | 1.10 |" in text
    assert "| 0.80 | <= 1.5 |" in text and "| one epoch of lesson 02: modern LeNet" in text
    assert "150 GFLOP/s" in text


def test_blas_threads_can_be_read_and_set_where_numpy_uses_openblas():
    before = vs_torch.blas_threads()
    if before is None:  # another BLAS: the comparison says '?' and goes on
        return
    try:
        assert vs_torch.blas_threads(1) == 1
    finally:
        vs_torch.blas_threads(before)
    assert vs_torch.blas_threads() == before


def test_profile_mode_prints_the_ops_and_the_python_functions_of_a_row(capsys):
    bench.main(["--profile", "3-layer MLP", "--quick"])
    out = capsys.readouterr().out
    assert "== 3-layer MLP training step, batch 64" in out
    assert "MatMul.backward" in out and "outside the ops" in out
    assert "cProfile" in out and "tottime" in out
    assert "minidl/ops/" in out  # package files are named from the package root


def test_profile_mode_lists_the_rows_when_none_matches():
    with pytest.raises(SystemExit, match="no workload name contains 'nonesuch'"):
        bench.main(["--profile", "nonesuch"])


def test_profile_mode_runs_a_script_and_times_its_ops(tmp_path, capsys):
    script = tmp_path / "tiny_lesson.py"
    script.write_text(
        "import sys\n"
        "import numpy as np\n"
        "import minidl\n"
        "steps = 2 if '--quick' in sys.argv else 50\n"
        "w = minidl.tensor(np.ones((3, 3)), requires_grad=True)\n"
        "for _ in range(steps):\n"
        "    (w * w).sum().backward()\n"
        "print('steps run:', steps)\n")
    bench.main(["--profile", str(script), "--quick"])
    out = capsys.readouterr().out
    assert "steps run: 2" in out  # --quick reached the script
    assert f"== {script} --quick" in out
    table = out[out.index("per op (the whole run"):]
    mul_forward = next(line for line in table.splitlines() if line.startswith("Mul.forward"))
    assert mul_forward.split()[1] == "2"  # one call per step
    assert "Sum.backward" in table and "outside the ops" in table
    assert "cProfile" in out and "tiny_lesson.py" in out  # the script's own frame is listed


def test_profile_mode_prints_the_tables_of_a_script_that_fails_then_raises(tmp_path, capsys):
    import sys

    script = tmp_path / "broken.py"
    script.write_text("import numpy as np\n"
                      "import minidl\n"
                      "(minidl.tensor(np.ones(3), requires_grad=True) * 2.0).sum().backward()\n"
                      "raise ValueError('broken on purpose')\n")
    before = list(sys.argv)
    with pytest.raises(ValueError, match="broken on purpose"):
        bench.main(["--profile", str(script)])
    out = capsys.readouterr().out
    assert "Mul.forward" in out and "Sum.backward" in out  # the work done before the error
    assert "the script stopped early: ValueError: broken on purpose" in out
    assert sys.argv == before
    from minidl.autograd import mode

    assert mode.profiler is None  # the per-op timer is off again


def test_profile_mode_names_a_missing_script():
    with pytest.raises(SystemExit, match="no such script 'nowhere/lesson.py'"):
        bench.main(["--profile", "nowhere/lesson.py"])
