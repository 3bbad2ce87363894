"""python -m minidl.bench [--quick] [section ...]

Prints every benchmark table. Figures are measurements of this machine, not
assertions: the README lists the goals and the last measured values.
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
    args = parser.parse_args(argv)
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
