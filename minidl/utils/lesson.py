"""What every lesson script shares: its command line, its output folder, figures, a timer.

    args = lesson_args("01_autograd_and_gradient_descent", __doc__)
    ...
    save_figure(fig, args.out / "curves.png")

``--quick`` shrinks data and training to seconds (the test suite runs every
lesson that way); ``--seed`` makes a run repeatable; ``--out`` is where
figures go (default ``runs/<lesson>``).
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from minidl.random import manual_seed


def lesson_args(name: str, description: str | None = None, argv=None) -> argparse.Namespace:
    """Parse --quick / --seed / --out, seed minidl, create the output folder.

    Also selects matplotlib's non-interactive backend so lessons run without a screen.
    """
    parser = argparse.ArgumentParser(
        prog=f"{name}.py", description=(description or "").strip()[:400],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--quick", action="store_true",
                        help="tiny data and few steps: runs in seconds (used by the tests)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument("--out", type=Path, default=Path("runs") / name,
                        help=f"folder for figures (default runs/{name})")
    args = parser.parse_args(argv)
    manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MPLBACKEND", "Agg")
    quick = ", quick run" if args.quick else ""
    print(f"[{name}] seed {args.seed}{quick}; figures go to {args.out}/")
    return args


def save_figure(fig, path) -> Path:
    """Save a matplotlib figure as PNG, close it (freeing its memory) and print where it went."""
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, bbox_inches="tight")
    plt.close(fig)
    print(f"  saved {path}")
    return path


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` holds the wall-clock time."""

    def __enter__(self):
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.start
        return False
