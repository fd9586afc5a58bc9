"""The slot engine alone (pure Python, no I/O): the time `compute_slots` takes for a public
booking page's question.

Case: a 30-day window (March 2026, across the EU's spring-forward), a 5-person panel in four
European zones (9-17 on weekdays, one with a weekly cap), each with 300 random busy blocks
(15 min - 1 h, on the quarter hour, anywhere in the window), a 30-minute interview with a
10-minute buffer either side and 15-minute starts, shown in Asia/Kolkata. Every run draws
fresh blocks from one seeded generator; only the call is timed (building the inputs is the
caller's). Figures: wall-clock p50 / p95 / max in ms, the mean CPU ms per call (steadier than
wall time on this shared 2-core machine: read wall figures with the load printed beside them),
and the slots found (mean over runs). The same calendars as a pool of 2 of 5, and
`is_slot_available` for one start (what validating a booking costs), are timed beside it.

    uv run python bench/slots.py [--runs 200] [--seed 7] [--quick]
    uv run python bench/run.py --only slots
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta
from datetime import time as clock
from pathlib import Path

from scheduling_service.availability.slots import (
    Interval,
    InterviewerAvailability,
    SlotRules,
    WeeklyHours,
    compute_slots,
    is_slot_available,
)

NAME = "slots"
ZONES = ("Europe/London", "Europe/Berlin", "Europe/Paris", "Europe/Dublin", "Europe/Berlin")
NOW = datetime(2026, 3, 2, 6, 0, tzinfo=UTC)
WINDOW = (date(2026, 3, 2), date(2026, 3, 31))  # crosses the US and EU spring-forward


def _people(rng: random.Random, blocks: int) -> list[InterviewerAvailability]:
    span = int((datetime(2026, 4, 1, tzinfo=UTC) - NOW) / timedelta(minutes=15))
    people = []
    for n, zone in enumerate(ZONES):
        hours = WeeklyHours(zone, {d: [(clock(9), clock(17))] for d in range(5)})
        busy = []
        for _ in range(blocks):
            start = NOW + timedelta(minutes=15 * rng.randrange(span))
            busy.append(Interval(start, start + timedelta(minutes=15 * rng.randint(1, 4))))
        people.append(
            InterviewerAvailability(
                f"person{n}@example.com", hours, busy, weekly_cap=12 if n == 4 else None
            )
        )
    return people


def _rules(mode: str) -> SlotRules:
    return SlotRules(
        duration=timedelta(minutes=30),
        window_start=WINDOW[0],
        window_end=WINDOW[1],
        display_zone="Asia/Kolkata",
        mode="pool" if mode == "pool" else "panel",
        pool_size=2 if mode == "pool" else None,
        buffer_before=timedelta(minutes=10),
        buffer_after=timedelta(minutes=10),
        granularity=timedelta(minutes=15),
    )


def _measure(
    runs: int, seed: int, blocks: int, call: Callable[[list[InterviewerAvailability]], int]
) -> tuple[list[float], float, list[int]]:
    rng = random.Random(seed)
    for _ in range(5):  # warm-up: imports, zoneinfo caches
        call(_people(rng, blocks))
    took, cpu, found = [], 0.0, []
    for _ in range(runs):
        people = _people(rng, blocks)
        cpu_started, started = time.process_time(), time.perf_counter()
        found.append(call(people))
        took.append((time.perf_counter() - started) * 1000)
        cpu += (time.process_time() - cpu_started) * 1000
    return took, cpu / runs, found


def _line(label: str, took: list[float], cpu: float, found: list[int]) -> str:
    ordered = sorted(took)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * len(ordered)) - 1)]
    return (
        f"{label:<26} p50 {statistics.median(took):6.2f}  p95 {p95:6.2f}  "
        f"max {max(took):6.2f} ms   cpu {cpu:5.2f} ms/call   slots {statistics.mean(found):6.1f}"
    )


def _load() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="50 runs instead of 200")
    parser.add_argument("--seconds", type=float, default=None, help="ignored (fixed run count)")
    parser.add_argument("--runs", type=int, default=None)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--blocks", type=int, default=300, help="busy blocks per person")
    args, _ = parser.parse_known_args(argv)
    runs = args.runs or (50 if args.quick else 200)

    panel, pool = _rules("panel"), _rules("pool")
    probe = datetime(2026, 3, 17, 10, 30, tzinfo=UTC)
    print(
        f"slot engine: 30-day window, 5 interviewers x {args.blocks} busy blocks, 30 min, "
        f"15-min starts, {runs} runs (seed {args.seed})"
    )
    print(f"load average before: {_load()}")
    cases: list[tuple[str, Callable[[list[InterviewerAvailability]], int]]] = [
        ("compute_slots panel of 5", lambda p: len(compute_slots(panel, p, NOW).slots)),
        ("compute_slots pool 2 of 5", lambda p: len(compute_slots(pool, p, NOW).slots)),
        (
            "is_slot_available panel",
            lambda p: int(is_slot_available(panel, p, NOW, probe) is not None),
        ),
    ]
    for label, call in cases:
        print(_line(label, *_measure(runs, args.seed, args.blocks, call)))
    print(f"load average after: {_load()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
