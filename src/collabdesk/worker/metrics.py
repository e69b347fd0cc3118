"""The timers' Prometheus metrics.

- `collabdesk_timers_fired_total{kind}` (counter) and `collabdesk_timer_lateness_seconds`
  (histogram of fired_at - due_at) are observed by the process that fires: the runner
  notes the due timers before each tick and reads back those it fired after it
  (`before_tick`, `observe_tick`), by primary key.
- `collabdesk_timers_pending{kind}`, `collabdesk_timers_due{kind}` and
  `collabdesk_timers_oldest_overdue_seconds` are gauges of the database's state, computed
  when scraped (`TimerGauges`), so any process serving /metrics reports the same figures.

In `serve --workers N` the processes share their counters through prometheus_client's
multiprocess mode (`PROMETHEUS_MULTIPROC_DIR`, set by `serve`); a `collabdesk worker`
process exposes its own counters on its `--metrics-port`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector
from sqlalchemy import Engine

from collabdesk.adapters.db import timer_stats
from collabdesk.adapters.db.timer_stats import FiredTimer
from collabdesk.domain.timers import TimerKind
from collabdesk.services.ports import Clock

log = logging.getLogger("collabdesk.metrics")

KINDS = tuple(str(k) for k in TimerKind)
# Fine under a second (a runner woken on time fires within milliseconds), then up to a
# day (a runner that was down).
LATENESS_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.5, 5.0, 10.0,
                    30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 7200.0, 14400.0,
                    43200.0, 86400.0)

FIRED = Counter("collabdesk_timers_fired_total", "Timers fired by this process, by kind",
                ["kind"])
LATENESS = Histogram("collabdesk_timer_lateness_seconds",
                     "How late timers fired: fired_at - due_at", buckets=LATENESS_BUCKETS)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# At most this many due timers are noted before a tick to be read back after it.
READ_BACK = 5000


def observe(fired: list[FiredTimer]) -> None:
    for timer in fired:
        FIRED.labels(timer.kind).inc()
        LATENESS.observe(timer.lateness_seconds)


@dataclass(frozen=True)
class TickStart:
    """What the runner notes before a tick, to find afterwards what it fired."""

    horizon: datetime
    due_ids: list[int]
    max_id: int


def before_tick(engine: Engine, horizon: datetime) -> TickStart:
    """Note the timers due at `horizon` (up to READ_BACK of them) and the newest id."""
    with engine.connect() as conn:
        newest = timer_stats.max_id(conn)
        due = timer_stats.due_ids(conn, horizon, READ_BACK)
    return TickStart(horizon, due, newest)


def observe_tick(engine: Engine, start: TickStart, end: datetime, count: int
                 ) -> list[FiredTimer]:
    """Observe the `count` timers this process fired with `fire_due_timers(ctx,
    start.horizon)`, read back by primary key: those due when the tick began and those
    scheduled during it, fired between the horizon and `end`. Returns them.

    Another runner firing at the same time fires other timers among the same ones: those
    that carry this call's horizon as fired_at are this call's; failing that, the first
    `count` stand in for them (the total stays exact, the split by kind and the lateness
    approximate). What cannot be read back (past READ_BACK due at once) counts as kind
    "unknown"."""
    if count <= 0:
        return []
    with engine.connect() as conn:
        window = timer_stats.fired_among(conn, start.due_ids, start.max_id, start.horizon,
                                         end)
    if len(window) > count:
        mine = [f for f in window if f.fired_at == start.horizon]
        window = mine if len(mine) == count else window[:count]
    observe(window)
    if len(window) < count:
        FIRED.labels("unknown").inc(count - len(window))
    return window


class TimerGauges(Collector):
    """Gauges read from the database when scraped (indexed queries of pending timers)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self._engine = engine
        self._clock = clock

    def collect(self) -> Iterator[GaugeMetricFamily]:
        now = self._clock.now()
        try:
            with self._engine.connect() as conn:
                pending = timer_stats.pending_by_kind(conn)
                due = timer_stats.due_by_kind(conn, now)
                oldest = timer_stats.oldest_pending_due(conn)
        except Exception:  # a scrape must not fail for the database: the gauges go absent
            log.exception("cannot read the timers for /metrics")
            return
        yield _by_kind("collabdesk_timers_pending",
                       "Timers neither fired nor cancelled, by kind", pending)
        yield _by_kind("collabdesk_timers_due",
                       "Pending timers already due (the runners' backlog), by kind", due)
        overdue = max((now - oldest).total_seconds(), 0.0) if oldest else 0.0
        yield GaugeMetricFamily("collabdesk_timers_oldest_overdue_seconds",
                                "How long the oldest due, unfired timer has been due "
                                "(0 when none is due)", value=overdue)


def _by_kind(name: str, doc: str, counts: dict[str, int]) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc, labels=["kind"])
    for kind in sorted(set(KINDS) | set(counts)):
        family.add_metric([kind], counts.get(kind, 0))
    return family


def process_registry() -> CollectorRegistry:
    """This process's metrics, or all processes' in multiprocess mode."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess

        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return registry
    return REGISTRY


def exposition(engine: Engine | None, clock: Clock | None) -> bytes:
    """The text for /metrics: the process metrics, then (with an engine) the gauges."""
    text: bytes = generate_latest(process_registry())
    if engine is not None and clock is not None:
        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(TimerGauges(engine, clock))
        text += generate_latest(gauges)
    return text
