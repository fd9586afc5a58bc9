"""`make bench`: run every benchmark module in bench/ and print its figures.

A benchmark module is a `bench/<name>.py` (not starting with `_`) that defines
`main(argv) -> int` and accepts at least `--quick` and `--seconds`. Flags not known here are
passed on to every selected module, which ignores those it does not know; module-specific
flags are best given with `--only <name>`.

    uv run python bench/run.py                 # everything, full length
    uv run python bench/run.py --quick         # everything, short
    uv run python bench/run.py --only outbox_pipeline --rates 1000 --per-tx 1
"""

from __future__ import annotations

import argparse
import importlib
import sys
import time
from collections.abc import Sequence
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def discover() -> list[str]:
    return sorted(
        p.stem for p in BENCH_DIR.glob("*.py") if p.stem != "run" and not p.stem.startswith("_")
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the benchmarks in bench/.")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this module")
    parser.add_argument("--list", action="store_true", help="list the benchmark modules")
    args, rest = parser.parse_known_args(argv)
    names = discover()
    if args.list:
        print("\n".join(names))
        return 0
    unknown = sorted(set(args.only or ()) - set(names))
    if unknown:
        parser.error(f"no benchmark module {', '.join(unknown)} (have: {', '.join(names)})")
    if str(BENCH_DIR) not in sys.path:
        sys.path.insert(0, str(BENCH_DIR))
    worst = 0
    for name in args.only or names:
        module = importlib.import_module(name)
        if not callable(getattr(module, "main", None)):
            continue
        started = time.monotonic()
        rc = int(module.main(rest) or 0)
        print(f"== {name}: exit {rc} after {time.monotonic() - started:.0f}s\n")
        worst = max(worst, rc)
    return worst


if __name__ == "__main__":
    raise SystemExit(main())
