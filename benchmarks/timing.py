"""Timing helpers shared by the benchmarks: medians of repeated runs, side by side."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field

WARMUP = 1
"""Unmeasured runs before the measured ones, unless a figure says otherwise (0 for a smoke run)."""


def median_seconds(fn: Callable[[], object], runs: int, warmup: int | None = None) -> float:
    """Median wall time of ``fn()`` over ``runs`` runs, after ``warmup`` unmeasured ones."""
    for _ in range(WARMUP if warmup is None else warmup):
        fn()
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def command(argv: list[str], env: dict[str, str] | None = None, cwd: str | None = None) -> Callable[[], None]:
    """A callable that runs ``argv`` to completion and fails loudly if it fails."""

    def run() -> None:
        result = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"{argv[:4]} failed ({result.returncode}): {result.stderr[-2000:]}")

    return run


def python(code: str, env: dict[str, str] | None = None) -> Callable[[], None]:
    return command([sys.executable, "-c", code], env=env)


@dataclass
class Figure:
    """One row of the report: a measurement, its baseline from the same run, and the goal."""

    name: str
    value: float
    baseline: float | None
    unit: str
    goal: str
    ok: bool | None
    note: str = ""
    extra: dict = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        return None if not self.baseline else self.value / self.baseline


def table(figures: list[Figure]) -> str:
    rows = [("figure", "measured", "baseline", "ratio", "goal", "met")]
    for f in figures:
        rows.append(
            (
                f.name,
                f"{f.value:.3f} {f.unit}",
                "" if f.baseline is None else f"{f.baseline:.3f} {f.unit}",
                "" if f.ratio is None else f"{f.ratio:.2f}x",
                f.goal,
                {True: "yes", False: "NO", None: "-"}[f.ok],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    notes = [f"  {f.name}: {f.note}" for f in figures if f.note]
    return "\n".join(lines + ([""] + notes if notes else []))
