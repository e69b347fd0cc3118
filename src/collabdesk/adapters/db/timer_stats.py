"""Read-only figures about the timers table, for `/metrics`, the runner's log and
`collabdesk timers status`.

Cost: what is pending is read from the partial index `ix_timers_pending_due` (it holds
pending rows only, so it stays as small as the backlog of future deadlines, not the
table's history); counting all of them by kind visits each pending row (0.8 s for 3
million on a busy 2-core machine). What has fired has no index of its own:
`fired_between` and `fired_since` scan the table (0.5 s for 6 million rows), which only
`collabdesk timers status` does. The runner learns what it fired from
`fire_due_timers(observe=...)`, without a query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Connection, Engine, func, select

from . import tables as t

_c = t.timers.c



@dataclass(frozen=True)
class FiredTimer:
    kind: str
    due_at: datetime
    fired_at: datetime

    @property
    def lateness_seconds(self) -> float:
        return max((self.fired_at - self.due_at).total_seconds(), 0.0)


def pending_by_kind(conn: Connection) -> dict[str, int]:
    """Pending (neither fired nor cancelled) timers by kind, whenever they fall due."""
    rows = conn.execute(select(_c.kind, func.count()).where(t.TIMER_PENDING).group_by(_c.kind))
    return {kind: int(n) for kind, n in rows}


def due_by_kind(conn: Connection, now: datetime) -> dict[str, int]:
    """Pending timers already due at `now`: the backlog the runners have not fired yet."""
    rows = conn.execute(select(_c.kind, func.count())
                        .where(t.TIMER_PENDING, _c.due_at <= now).group_by(_c.kind))
    return {kind: int(n) for kind, n in rows}


def oldest_pending_due(conn: Connection) -> datetime | None:
    """The earliest due time among pending timers (one step along the partial index)."""
    due: datetime | None = conn.execute(select(func.min(_c.due_at)).where(t.TIMER_PENDING)).scalar()
    return due


def fired_between(conn: Connection, start: datetime, end: datetime) -> list[FiredTimer]:
    """Timers whose fired_at lies in [start, end], oldest fired first."""
    rows = conn.execute(select(_c.kind, _c.due_at, _c.fired_at)
                        .where(_c.fired_at >= start, _c.fired_at <= end)
                        .order_by(_c.fired_at, _c.id))
    return [FiredTimer(r.kind, r.due_at, r.fired_at) for r in rows]


def fired_since(conn: Connection, since: datetime) -> int:
    n = conn.execute(select(func.count()).select_from(t.timers)
                     .where(_c.fired_at >= since)).scalar()
    return int(n or 0)


@dataclass(frozen=True)
class TimersStatus:
    pending: dict[str, int]
    due: dict[str, int]
    oldest_overdue_seconds: float
    fired_last_hour: int
    fired_last_day: int
    lateness_last_hour: list[float]  # sorted, seconds

    def lateness_quantile(self, q: float) -> float:
        """The nearest-rank quantile of the last hour's lateness (0 when none fired)."""
        values = self.lateness_last_hour
        if not values:
            return 0.0
        rank = max(math.ceil(q * len(values)), 1)
        return values[min(rank, len(values)) - 1]


def read_status(engine: Engine, now: datetime) -> TimersStatus:
    """What `collabdesk timers status` prints, read in one snapshot."""
    with engine.connect() as conn:
        pending = pending_by_kind(conn)
        due = due_by_kind(conn, now)
        oldest = oldest_pending_due(conn)
        day = fired_since(conn, now - timedelta(days=1))
        hour = fired_between(conn, now - timedelta(hours=1), now)
    return TimersStatus(
        pending=pending, due=due,
        oldest_overdue_seconds=max((now - oldest).total_seconds(), 0.0) if oldest else 0.0,
        fired_last_hour=len(hour), fired_last_day=day,
        lateness_last_hour=sorted(f.lateness_seconds for f in hour))
