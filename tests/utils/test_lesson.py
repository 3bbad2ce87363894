"""The lesson helpers: command line (script and notebook), figures, exercise checks."""

import sys
import types

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from minidl.utils import lesson  # noqa: E402
from minidl.utils.lesson import (  # noqa: E402
    check_range,
    in_notebook,
    lesson_args,
    save_figure,
)


@pytest.fixture
def no_quick_variable(monkeypatch):
    monkeypatch.delenv("MINIDL_QUICK", raising=False)


def fake_ipython(monkeypatch, kernel):
    """Put a stand-in IPython module in sys.modules whose shell has (or lacks) a kernel."""
    shell = types.SimpleNamespace(kernel=object()) if kernel else types.SimpleNamespace()
    module = types.ModuleType("IPython")
    module.get_ipython = lambda: shell
    monkeypatch.setitem(sys.modules, "IPython", module)


def test_defaults(tmp_path, monkeypatch, no_quick_variable):
    monkeypatch.chdir(tmp_path)
    args = lesson_args("99_demo", argv=[])
    assert args.quick is False and args.seed == 0
    assert args.out == tmp_path.joinpath("runs", "99_demo").relative_to(tmp_path)
    assert (tmp_path / "runs" / "99_demo").is_dir()


def test_kernel_arguments_are_ignored(tmp_path, no_quick_variable, capsys):
    # A Jupyter kernel runs the lesson with its own "-f connection.json" on sys.argv.
    args = lesson_args("99_demo", argv=["-f", "/tmp/kernel-1.json", "--out", str(tmp_path)])
    assert args.out == tmp_path and args.quick is False
    assert "ignoring arguments it does not know: -f /tmp/kernel-1.json" in capsys.readouterr().out


def test_quick_from_the_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("MINIDL_QUICK", "1")
    assert lesson_args("99_demo", argv=["--out", str(tmp_path)]).quick is True
    monkeypatch.setenv("MINIDL_QUICK", "0")
    assert lesson_args("99_demo", argv=["--out", str(tmp_path)]).quick is False
    assert lesson_args("99_demo", argv=["--out", str(tmp_path), "--quick"]).quick is True


def test_seed_is_applied(tmp_path, no_quick_variable):
    import minidl

    lesson_args("99_demo", argv=["--seed", "5", "--out", str(tmp_path)])
    first = minidl.randn(3).data.copy()
    lesson_args("99_demo", argv=["--seed", "5", "--out", str(tmp_path)])
    np.testing.assert_array_equal(first, minidl.randn(3).data)


def test_help_shows_the_whole_docstring(capsys):
    doc = """
# Lesson 99 — a demo

**Lecture idea.** Something worth learning.

Run: `python lessons/99_demo.py`
"""
    with pytest.raises(SystemExit) as exit_info:
        lesson_args("99_demo", doc, argv=["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "# Lesson 99 — a demo" in out and "Run: `python lessons/99_demo.py`" in out
    assert "MINIDL_QUICK=1" in out


def test_not_in_notebook_under_pytest(monkeypatch):
    assert in_notebook() is False
    fake_ipython(monkeypatch, kernel=False)  # a terminal IPython: no kernel
    assert in_notebook() is False
    fake_ipython(monkeypatch, kernel=True)
    assert in_notebook() is True


def test_save_figure_saves_and_closes(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    path = save_figure(fig, tmp_path / "sub" / "line.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not plt.fignum_exists(fig.number)


def test_save_figure_displays_in_a_notebook(tmp_path, monkeypatch):
    shown = []
    fake_ipython(monkeypatch, kernel=True)
    display_module = types.ModuleType("IPython.display")
    display_module.display = lambda fig: shown.append(plt.fignum_exists(fig.number))
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    fig, _ = plt.subplots()
    save_figure(fig, tmp_path / "shown.png")
    assert shown == [True], "displayed once, while the figure was still open"
    assert not plt.fignum_exists(fig.number)


def test_save_figure_does_not_display_in_a_script(tmp_path, monkeypatch):
    display_module = types.ModuleType("IPython.display")
    display_module.display = lambda fig: pytest.fail("display called outside a notebook")
    monkeypatch.setitem(sys.modules, "IPython.display", display_module)
    save_figure(plt.subplots()[0], tmp_path / "quiet.png")


def test_check_range(capsys):
    assert check_range("accuracy", 0.75, 0.7, 0.8) is True
    assert "accuracy = 0.75 -> as expected in [0.7, 0.8]" in capsys.readouterr().out
    assert check_range("accuracy", 0.5, 0.7, 0.8) is False
    assert "not yet: expected in [0.7, 0.8]" in capsys.readouterr().out
    assert check_range("loss", 1e6, low=1e3) is True
    assert check_range("loss", float("nan"), low=1e3) is False
    assert check_range("edge", 0.7, 0.7, 0.8) and check_range("edge", 0.8, 0.7, 0.8)


def test_timer_measures():
    with lesson.Timer() as t:
        sum(range(1000))
    assert 0 < t.seconds < 5
