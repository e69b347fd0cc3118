"""What every benchmark shares: options, figures with their baselines and goals, output,
progress on stderr and a stopwatch."""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Literal, TypeVar

T = TypeVar("T")

Mode = Literal["smoke", "quick", "full"]


@dataclass(frozen=True)
class Options:
    """How a benchmark runs: its size (`smoke` is the test suite's tiny one) and where.
    `database_url` None means SQLite in a fresh temporary directory."""

    mode: Mode = "full"
    database_url: str | None = None

    def pick(self, *, smoke: T, quick: T, full: T) -> T:
        """The size for this mode."""
        return {"smoke": smoke, "quick": quick, "full": full}[self.mode]


@dataclass(frozen=True)
class Goal:
    """What a figure should reach: `on` the ratio to its baseline or on the value itself;
    `aim` is a softer target shown beside the goal."""

    op: Literal[">=", "<="]
    threshold: float
    on: Literal["ratio", "value"] = "ratio"
    aim: float | None = None

    def meets(self, figure: Figure) -> bool | None:
        measured = figure.ratio if self.on == "ratio" else figure.value
        if measured is None:
            return None
        return measured >= self.threshold if self.op == ">=" else measured <= self.threshold

    def describe(self) -> str:
        sign = "≥" if self.op == ">=" else "≤"
        aim = f" (aim {self.aim:g})" if self.aim is not None else ""
        return f"{self.on} {sign} {self.threshold:g}{aim}"


@dataclass(frozen=True)
class Figure:
    """One measured number and, when it has one, the baseline measured in the same run."""

    figure: str
    value: float
    unit: str
    baseline: str | None = None
    baseline_value: float | None = None
    goal: Goal | None = None

    @property
    def ratio(self) -> float | None:
        if self.baseline_value is None or self.baseline_value == 0:
            return None
        return self.value / self.baseline_value

    def as_json(self) -> dict[str, object]:
        ratio = self.ratio
        return {"figure": self.figure, "value": _round(self.value), "unit": self.unit,
                "baseline": self.baseline,
                "baseline_value": None if self.baseline_value is None
                else _round(self.baseline_value),
                "ratio": None if ratio is None else _round(ratio)}

    def as_line(self) -> str:
        line = f"{self.figure:<26} {_shown(self.value):>11} {self.unit:<4}"
        if self.baseline is not None and self.baseline_value is not None:
            ratio = self.ratio
            line += (f"  baseline {self.baseline} {_shown(self.baseline_value)} {self.unit}"
                     f"  ratio {'-' if ratio is None else f'{ratio:.3f}'}")
        if self.goal is not None:
            met = self.goal.meets(self)
            verdict = "n/a" if met is None else "meets" if met else "misses"
            line += f"  goal {self.goal.describe()}: {verdict}"
        return line


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def _shown(value: float) -> str:
    if value == 0 or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.2f}"
    return f"{value:.3g}"


@dataclass(frozen=True)
class Benchmark:
    name: str
    description: str
    run: Callable[[Options], list[Figure]]


def render(name: str, figures: Sequence[Figure], *, as_json: bool) -> str:
    if as_json:
        return json.dumps({"name": name, "figures": [f.as_json() for f in figures]},
                          ensure_ascii=False)
    return "\n".join(f.as_line() for f in figures)


_START = time.monotonic()


def progress(message: str) -> None:
    """A line on stderr for a long phase, with the seconds since the run started."""
    print(f"[{time.monotonic() - _START:7.1f}s] {message}", file=sys.stderr, flush=True)


@dataclass
class Stopwatch:
    """Adds up the time of the timed parts only (setup between them is not counted)."""

    seconds: float = 0.0
    count: int = 0
    laps: list[float] = field(default_factory=list)

    @contextmanager
    def timing(self) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            lap = time.perf_counter() - started
            self.seconds += lap
            self.laps.append(lap)

    def add(self, count: int) -> None:
        self.count += count

    @property
    def rate(self) -> float:
        return self.count / self.seconds if self.seconds > 0 else 0.0


def median_ms(fn: Callable[[], object], *, repeats: int, budget_s: float) -> float:
    """The median of `repeats` calls of `fn` in milliseconds, after one warm-up call;
    fewer calls (at least three) when they would take longer than `budget_s`."""
    fn()
    laps: list[float] = []
    started = time.perf_counter()
    while len(laps) < repeats:
        t0 = time.perf_counter()
        fn()
        laps.append((time.perf_counter() - t0) * 1000)
        if len(laps) >= 3 and time.perf_counter() - started > budget_s:
            break
    return statistics.median(laps)


def percentile(values: Sequence[float], q: float) -> float:
    """The `q` (0-100) percentile, nearest-rank."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]
