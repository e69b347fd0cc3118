"""Clocks: the services' `Clock` port (services/ports.py) for real time, for `--test-clock`
and for tests. The clock is a dependency (style.md habit 4): one object tells the time."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from collabdesk.domain.bounds import LATEST
from collabdesk.domain.errors import ValidationFailed


def _forward(moment: datetime, seconds: float) -> datetime:
    if seconds < 0:
        raise ValidationFailed("seconds: the clock only moves forward")
    if seconds > (LATEST - moment).total_seconds():
        raise ValidationFailed(f"seconds: the clock cannot move past {LATEST.isoformat()}")
    return moment + timedelta(seconds=seconds)


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
        with self._lock:
            now = datetime.now(UTC)
            moved = _forward(now + self._offset, seconds)
            self._offset = moved - now
            return moved


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
        self._now = _forward(self._now, seconds)
        return self._now

