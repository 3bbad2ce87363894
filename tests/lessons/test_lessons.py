"""Every lesson runs top to bottom, quick, as a script and as a notebook.

As a script: ``python lessons/NN_topic.py --quick`` in a fresh interpreter.
As a notebook: converted by jupytext, executed cell by cell by nbclient in a
Jupyter kernel of this interpreter, quick through ``MINIDL_QUICK=1``, its
figures shown inline.
"""

import ast
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LESSONS = sorted((ROOT / "lessons").glob("[0-9][0-9]_*.py"))
IDS = [p.stem for p in LESSONS]


def test_there_are_lessons():
    assert LESSONS, "no lessons/NN_topic.py found"


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_opens_with_its_docstring(lesson):
    """The first cell is a markdown cell written as a string: the script's __doc__."""
    source = lesson.read_text()
    assert source.startswith('# %% [markdown]\n"""\n# Lesson ' + lesson.name[:2] + " "), \
        "a lesson starts with '# %% [markdown]', then a docstring whose first line is its title"
    doc = ast.get_docstring(ast.parse(source), clean=False)
    assert doc and "Run: `python lessons/" + lesson.name in doc


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_every_exercise_has_a_check(lesson):
    """Each numbered exercise ends with a "Check:" (or "Check (seed 0):") the student can run."""
    text = lesson.read_text()
    assert "# ## Exercises" in text, "a lesson ends with exercises"
    exercises = re.split(r"^# \d+\. ", text[text.index("# ## Exercises"):], flags=re.M)[1:]
    assert exercises, "the exercises are a numbered list"
    for number, exercise in enumerate(exercises, 1):
        assert re.search(r"Check( \(.*?\))?:", exercise, re.S), f"exercise {number} has no check"


# "`name` in `minidl/x/y.py`" (name may be Class.method): the source a lesson points to.
BREAK = r"\s+(?:#\s+)?"  # a space, or a line break inside a markdown comment
POINTER = re.compile(rf"`([A-Za-z_][\w.]*)(?:\(\))?`,?{BREAK}(?:is{BREAK})?in{BREAK}"
                     r"`(minidl/[\w/]+\.py)`")


@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_source_pointers_exist(lesson):
    """Every file a lesson names exists, and every "`f` in `file`" names a def or class there."""
    text = lesson.read_text()
    paths = set(re.findall(r"`(minidl/[\w/]+\.py)`", text))
    assert paths, "a lesson points to the source of the ops it uses"
    for path in paths:
        assert (ROOT / path).is_file(), f"{lesson.name} points to {path}, which does not exist"
    for name, path in POINTER.findall(text):
        source = (ROOT / path).read_text()
        for part in re.sub(r"^(F|nn)\.", "", name).split("."):  # F.conv2d: conv2d
            assert re.search(rf"^\s*(def|class) {part}\b", source, re.M), \
                f"{lesson.name}: `{name}` is not defined in {path}"


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_runs_quick(lesson, tmp_path):
    env = dict(os.environ, MPLBACKEND="Agg")
    env.pop("MINIDL_QUICK", None)
    help_text = subprocess.run([sys.executable, str(lesson), "--help"], env=env,
                               capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert help_text.returncode == 0, help_text.stderr[-3000:]
    assert f"# Lesson {lesson.name[:2]} " in help_text.stdout, "--help shows the lesson's docstring"
    result = subprocess.run(
        [sys.executable, str(lesson), "--quick", "--out", str(tmp_path)],
        env=env, capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-3000:] + "\n" + result.stderr[-3000:]
    assert list(tmp_path.glob("*.png")), "a lesson saves its figures as PNG into --out"


@pytest.fixture(scope="module")
def this_python_kernel(tmp_path_factory):
    """A kernel spec that starts ``sys.executable -m ipykernel_launcher``, in a folder of its own.

    So the notebooks run in this virtualenv's interpreter, whatever kernels the
    machine has installed elsewhere.
    """
    from ipykernel.kernelspec import write_kernel_spec
    from jupyter_client.kernelspec import KernelSpecManager

    kernels = tmp_path_factory.mktemp("kernels")
    write_kernel_spec(kernels / "minidl-tests")
    manager = KernelSpecManager(kernel_dirs=[str(kernels)])
    assert manager.get_kernel_spec("minidl-tests").argv[0] == sys.executable
    return manager


def outputs_of(notebook, kind):
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs if kind(output)]


@pytest.mark.slow
@pytest.mark.parametrize("lesson", LESSONS, ids=IDS)
def test_lesson_runs_as_a_notebook(lesson, tmp_path, monkeypatch, this_python_kernel):
    import jupytext
    from jupyter_client import KernelManager
    from nbclient import NotebookClient

    monkeypatch.setenv("MINIDL_QUICK", "1")
    monkeypatch.setenv("TQDM_DISABLE", "1")  # bars would show in a notebook: not in the tests
    monkeypatch.delenv("MPLBACKEND", raising=False)  # the kernel picks its inline backend
    notebook = jupytext.read(lesson, fmt="py:percent")
    assert notebook.cells[0].cell_type == "markdown", "the docstring reads as a markdown cell"
    kernel = KernelManager(kernel_name="minidl-tests", kernel_spec_manager=this_python_kernel)
    try:
        NotebookClient(notebook, km=kernel, timeout=600,
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:  # nbclient leaves a kernel it was given running: one idle process per lesson
        if kernel.has_kernel:
            kernel.shutdown_kernel(now=True)

    printed = "".join(o.get("text", "") for o in outputs_of(notebook, lambda o: "text" in o))
    assert "quick run" in printed, "MINIDL_QUICK=1 makes the notebook run quick"
    saved = list((tmp_path / "runs" / lesson.stem).glob("*.png"))
    shown = outputs_of(notebook, lambda o: "image/png" in o.get("data", {}))
    assert saved, "figures are saved to runs/<lesson>/ in the notebook's folder"
    assert len(shown) == len(saved), "every saved figure is shown inline, once"
