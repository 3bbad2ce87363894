"""python -m minidl.bench [--quick] [section ...]  |  python -m minidl.bench --vs-torch [--only ROW]
|  python -m minidl.bench --floors [--only ROW]  |  python -m minidl.bench --profile ROW
|  python -m minidl.bench --profile SCRIPT.py [--quick]

Prints every benchmark table. Figures are measurements of this machine, not
assertions: the README lists the goals and the last measured values.
``--vs-torch`` instead runs the same workloads in minidl and in PyTorch side by side
and prints minidl / PyTorch per row (minidl/bench/vs_torch.py; needs PyTorch installed).
``--floors`` times, beside the two steps of some of those rows, the part of minidl's step
that bounds the row (a convolution's or the LSTM's matrix products, GroupNorm's kernels;
minidl/bench/floors.py).
``--profile ROW`` shows where minidl's time goes in the rows whose name contains ROW:
per op, and per Python function (minidl/bench/profile.py; no PyTorch needed).
``--profile lessons/08_faster_rcnn.py`` runs a lesson (or any script) once and prints
the same two tables for the whole run; ``--quick`` is passed on to it.
"""

from __future__ import annotations

import argparse
import importlib
import os

SECTIONS = ["autograd", "startup", "conv", "rnn", "vision", "vision_metrics"]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m minidl.bench", description=__doc__)
    parser.add_argument("sections", nargs="*",
                        help=f"which tables to print (default: all of {', '.join(SECTIONS)})")
    parser.add_argument("--quick", action="store_true", help="smaller sizes, fewer repeats")
    parser.add_argument("--vs-torch", action="store_true",
                        help="compare with PyTorch, row by row (needs PyTorch installed)")
    parser.add_argument("--floors", action="store_true",
                        help="time what bounds the conv, GroupNorm and LSTM rows of --vs-torch "
                             "(needs PyTorch installed)")
    parser.add_argument("--only", metavar="TEXT",
                        help="with --vs-torch or --floors: only the rows whose name contains TEXT "
                             "('memory', 'lesson' for those tables)")
    parser.add_argument("--profile", metavar="ROW",
                        help="time each op and each Python function of minidl's step in the "
                             "--vs-torch rows whose name contains ROW, or of one run of a "
                             "script (a lesson) when ROW ends in .py")
    parser.add_argument("--threads", type=int, default=2,
                        help="with --vs-torch or --floors: threads for PyTorch, NumPy's BLAS "
                             "and numba (default 2)")
    parser.add_argument("--markdown", action="store_true",
                        help="with --vs-torch: also print the table as Markdown (for README)")
    args = parser.parse_args(argv)
    if args.profile:
        if args.sections or args.vs_torch or args.floors:
            parser.error("--profile prints its own tables; give no sections, --vs-torch or "
                         "--floors")
        from minidl.bench import profile

        profile.run(args.profile, seconds=0.5 if args.quick else 2.0, quick=args.quick)
        return
    if args.floors:
        if args.sections or args.vs_torch:
            parser.error("--floors prints its own table; give neither sections nor --vs-torch")
        from minidl.bench import floors

        floors.run(quick=args.quick, only=args.only, threads=args.threads)
        return
    if args.vs_torch:
        if args.sections:
            parser.error("--vs-torch prints its own table; give no sections")
        from minidl.bench import vs_torch

        vs_torch.run(quick=args.quick, only=args.only, as_markdown=args.markdown,
                     threads=args.threads)
        return
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {unknown}; choose from {SECTIONS}")
    print(f"minidl benchmarks on {os.cpu_count()} cores")
    for name in args.sections or SECTIONS:
        module = importlib.import_module(f"minidl.bench.{name}")
        module.run(quick=args.quick)
        print()


if __name__ == "__main__":
    main()
