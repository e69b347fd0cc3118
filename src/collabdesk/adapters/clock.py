"""The clock is a dependency (style.md habit 4): one object tells the time everywhere."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime: ...


class MovableClock(Protocol):
    """A clock tests (and `--test-clock`) can move forward."""

    def now(self) -> datetime: ...
    def advance(self, seconds: float) -> datetime: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class TestClock:
    """`--test-clock`: real time plus an offset that only moves forward.

    It starts at the real time and keeps ticking, so the server behaves normally between
    `advance` calls; `advance` adds to the offset.
    """

    __test__ = False  # not a pytest class

    def __init__(self) -> None:
        self._offset = timedelta(0)
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return datetime.now(UTC) + self._offset

    def advance(self, seconds: float) -> datetime:
        if seconds < 0:
            raise ValueError("the test clock only moves forward")
        with self._lock:
            self._offset += timedelta(seconds=seconds)
            return datetime.now(UTC) + self._offset


class FixedClock:
    """A clock that moves only when told; for unit tests, the demo and benchmarks."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("FixedClock needs a timezone-aware start")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def set(self, moment: datetime) -> None:
        self._now = moment

    def advance(self, seconds: float) -> datetime:
        self._now += timedelta(seconds=seconds)
        return self._now

