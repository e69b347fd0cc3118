"""The timers' Prometheus metrics.

- `collabdesk_timers_fired_total{kind}` (counter) and `collabdesk_timer_lateness_seconds`
  (histogram of fired_at - due_at) are observed by the process that fires, as each batch
  commits (`fire_due_timers(observe=...)`).
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


def observe(fired: list[FiredTimer]) -> None:
    for timer in fired:
        FIRED.labels(timer.kind).inc()
        LATENESS.observe(timer.lateness_seconds)


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


def exposition(engine: Engine | None, clock: Clock | None,
               *extra: Collector) -> bytes:
    """The text for /metrics: the process metrics, then (with an engine) the gauges."""
    text: bytes = generate_latest(process_registry())
    if engine is not None and clock is not None:
        gauges = CollectorRegistry(auto_describe=False)
        gauges.register(TimerGauges(engine, clock))
        for collector in extra:
            gauges.register(collector)
        text += generate_latest(gauges)
    return text
