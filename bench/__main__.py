"""`python -m bench` lists the benchmarks; `python -m bench NAME` runs one and prints its
figures, one line each (or one JSON object with `--json`). Progress goes to stderr."""

from __future__ import annotations

import argparse
import sys

from . import delivery, http, imports, metrics, timers, transitions
from .core import Benchmark, Mode, Options, render

BENCHMARKS: dict[str, Benchmark] = {b.name: b for b in (
    transitions.BENCHMARK, timers.BENCHMARK, http.BENCHMARK, metrics.BENCHMARK,
    imports.BENCHMARK, delivery.BENCHMARK)}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("name", nargs="?", choices=sorted(BENCHMARKS),
                        help="the benchmark to run (none: list them)")
    parser.add_argument("--quick", action="store_true",
                        help="smaller sizes and shorter runs: under a minute")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--database-url",
                        help="a PostgreSQL URL whose public schema is dropped and recreated "
                             "(default: SQLite in a fresh temporary directory)")
    # Tiny sizes for the test suite (tests/integration/test_bench.py): seconds, not minutes.
    parser.add_argument("--smoke", action="store_true", help=argparse.SUPPRESS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.name is None:
        width = max(len(name) for name in BENCHMARKS)
        for bench in BENCHMARKS.values():
            print(f"{bench.name:<{width}}  {bench.description}")
        return 0
    mode: Mode = "smoke" if args.smoke else "quick" if args.quick else "full"
    bench = BENCHMARKS[args.name]
    figures = bench.run(Options(mode, args.database_url))
    print(render(bench.name, figures, as_json=args.json))
    return 0


if __name__ == "__main__":
    sys.exit(main())
