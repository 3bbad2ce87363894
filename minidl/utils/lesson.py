"""What every lesson shares: its command line, its output folder, figures, a timer, checks.

    args = lesson_args("01_autograd_and_gradient_descent", __doc__)
    ...
    save_figure(fig, args.out / "curves.png")

A lesson is a script in jupytext's percent format: it runs with ``python
lessons/NN_topic.py`` and opens as a notebook. Its first cell is a markdown
cell written as a string literal, so that the script's ``__doc__`` is the
lesson's introduction and ``--help`` prints it.

``--quick`` shrinks data and training to seconds (the test suite runs every
lesson that way; in a notebook, set the environment variable ``MINIDL_QUICK=1``
before starting the kernel); ``--seed`` makes a run repeatable; ``--out`` is
where figures go (default ``runs/<lesson>``). In a notebook the figures are
also shown inline.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

from minidl.random import manual_seed

QUICK_VARIABLE = "MINIDL_QUICK"


def in_notebook() -> bool:
    """True inside a Jupyter kernel (a notebook), False in a script or a terminal IPython.

    Only looks at IPython if something already imported it, so scripts never pay for it.
    """
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    return getattr(shell, "kernel", None) is not None  # only a kernel's shell has one


def quick_from_environment() -> bool:
    """``MINIDL_QUICK=1`` (any value but empty or 0) asks for a quick run."""
    return os.environ.get(QUICK_VARIABLE, "") not in ("", "0")


def lesson_args(name: str, description: str | None = None, argv=None) -> argparse.Namespace:
    """Parse --quick / --seed / --out, seed minidl, create the output folder.

    Arguments it does not know are ignored (a Jupyter kernel runs with ``-f
    kernel.json``), with a note when run as a script. ``--quick`` is also read
    from ``MINIDL_QUICK=1``. Selects matplotlib's non-interactive backend so
    lessons run without a screen (a notebook keeps its inline backend).
    """
    parser = argparse.ArgumentParser(
        prog=f"{name}.py", description=(description or "").strip(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help=f"tiny data and few steps: runs in seconds (used by the tests); "
                             f"also set by {QUICK_VARIABLE}=1")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for figures (default runs/{name})")
    args, unknown = parser.parse_known_args(argv)
    if unknown and not in_notebook():
        print(f"[{name}] ignoring arguments it does not know: {' '.join(unknown)}")
    args.quick = args.quick or quick_from_environment()
    manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    quick = ", quick run" if args.quick else ""
    print(f"[{name}] seed {args.seed}{quick}; figures go to {args.out}/")
    return args


def save_figure(fig, path) -> Path:
    """Save a matplotlib figure as PNG, show it in a notebook, close it and print where it went.

    Closing frees the figure's memory (a lesson draws dozens); in a notebook it is
    displayed first, because the inline backend only shows figures still open.
    """
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    if in_notebook():
        from IPython.display import display

        display(fig)
    plt.close(fig)
    print(f"  saved {path}")
    return path


def check_range(what: str, value: float, low: float = -math.inf, high: float = math.inf) -> bool:
    """An exercise's check: print ``value`` and whether it lies in [low, high]; return that.

        check_range("test accuracy with 2 hidden units", acc, 0.6, 0.8)
        #  check: test accuracy with 2 hidden units = 0.7125 -> as expected, in [0.6, 0.8]

    The range is what a correct solution measured; a value outside it says
    "not yet" and the range, so a student working alone knows where they stand.
    """
    value = float(value)
    ok = low <= value <= high
    verdict = "as expected" if ok else "not yet: expected"
    print(f"  check: {what} = {value:.4g} -> {verdict} in [{low:.4g}, {high:.4g}]")
    return ok


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` holds the wall-clock time."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
