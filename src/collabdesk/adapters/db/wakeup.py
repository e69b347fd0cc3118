"""Waking deadline runners early: PostgreSQL's LISTEN/NOTIFY, with polling as the backstop.

A transaction that schedules a timer due soon calls `notify_timers` (or
`notify_if_due_soon`); PostgreSQL delivers the notification on commit, and only then, to
every connection listening on `collabdesk_timers`. A runner waits on its own listening
connection (`TimerListener`) for at most min(poll interval, time until the next pending
timer), so a notification lost while it reconnects costs at most one poll interval.

NOTIFY is cheap but not free: committing a transaction that notified takes a
database-wide lock on the notification queue, so notifying from every transaction that
schedules a timer would serialise those commits. Timers due later than `DUE_SOON` need no
notification: a waiting runner looks at the next due time again at least every poll
interval.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, select, text

from . import tables as t

log = logging.getLogger("collabdesk.wakeup")

CHANNEL = "collabdesk_timers"
# Messages just written to the outbox (notified by every transaction that adds some: a
# dispatcher in another process should send them now, not after its poll).
OUTBOX_CHANNEL = "collabdesk_outbox"
# Longer than any sensible poll interval (COLLABDESK_TIMER_POLL_SECONDS, 1 s by default).
DUE_SOON = timedelta(seconds=60)
# A listening connection that has heard nothing for this long is checked with SELECT 1,
# so a connection dropped without a word (a NAT or a failover) is found and replaced.
HEALTH_CHECK_SECONDS = 30.0



def notify_timers(conn: Connection, channel: str = CHANNEL) -> None:
    """Queue a wake-up for the runners (or, on `OUTBOX_CHANNEL`, the dispatchers), sent
    when `conn`'s transaction commits (and dropped if it rolls back). A no-op on SQLite,
    whose single runner polls."""
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": channel})


def notify_if_due_soon(conn: Connection, due_ats: Iterable[datetime], now: datetime,
                       *, within: timedelta = DUE_SOON) -> bool:
    """`notify_timers` when one of the timers just scheduled falls due within `within`
    of `now`. Returns whether it notified."""
    if any(due - now <= within for due in due_ats):
        notify_timers(conn)
        return True
    return False


def next_pending_due(engine: Engine, after: datetime) -> datetime | None:
    """The due time of the first pending timer due after `after` (a range scan of the
    partial index ix_timers_pending_due), or None when there is none."""
    c = t.timers.c
    with engine.connect() as conn:
        due: datetime | None = conn.execute(
            select(func.min(c.due_at)).where(t.TIMER_PENDING, c.due_at > after)).scalar()
        return due


class TimerListener:
    """A separate psycopg connection (outside the pool) that LISTENs on `CHANNEL`.

    `wait` connects (again) when needed; a dropped connection raises from `wait`, and the
    caller decides how long to poll before the next attempt.
    """

    def __init__(self, engine: Engine, *, application_name: str = "collabdesk-listener",
                 channel: str = CHANNEL) -> None:
        if engine.dialect.name != "postgresql":
            raise ValueError("LISTEN/NOTIFY needs PostgreSQL")
        args, params = engine.dialect.create_connect_args(engine.url)
        self._args: list[Any] = list(args)
        self._params: dict[str, Any] = {
            **params, "autocommit": True, "application_name": application_name,
            # The kernel notices a peer that vanished without closing the connection.
            "keepalives": 1, "keepalives_idle": 10, "keepalives_interval": 5,
            "keepalives_count": 3, "connect_timeout": 10}
        self._conn: Any = None
        self._checked = 0.0
        self._channel = channel

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.closed

    def connect(self) -> None:
        import psycopg

        if self.connected:
            return
        self.close()
        self._conn = psycopg.connect(*self._args, **self._params)
        self._conn.execute(f"LISTEN {self._channel}")
        self._checked = time.monotonic()

    def wait(self, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a notification; True when one came (any others
        already queued are consumed with it). Raises psycopg.Error when the connection is
        lost."""
        self.connect()
        conn = self._conn
        heard = False
        for _ in conn.notifies(timeout=max(timeout, 0.0), stop_after=1):
            heard = True
        if heard:
            for _ in conn.notifies(timeout=0.0):  # drain what came together
                pass
            self._checked = time.monotonic()
        elif time.monotonic() - self._checked >= HEALTH_CHECK_SECONDS:
            conn.execute("SELECT 1")
            self._checked = time.monotonic()
        return heard

    def backend_pid(self) -> int | None:
        return int(self._conn.info.backend_pid) if self.connected else None

    def close(self) -> None:
        if self._conn is not None:
            try:
                self._conn.close()
            except Exception:  # closing a broken connection must not mask why it broke
                log.debug("closing the listening connection failed", exc_info=True)
            self._conn = None
