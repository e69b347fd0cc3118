"""The outbox's Prometheus metrics.

- `collabdesk_deliveries_total{channel,status}` (counter): attempts made by this process
  on the external channels, by outcome (delivered, retrying, failed, skipped).
- `collabdesk_delivery_latency_seconds{channel}` (histogram): first attempts only, from
  the message's creation (its change's commit, give or take) to the attempt's end.
- `collabdesk_outbox_backlog{channel}` and `collabdesk_outbox_oldest_due_seconds` (gauges
  read from the database when scraped): unsent messages, and how long the most overdue
  has waited.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

from prometheus_client import Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from collabdesk.domain.records import Channel, DeliveryStatus
from collabdesk.services.context import ServiceContext
from collabdesk.services.outbox import Attempt, schedule_for

log = logging.getLogger("collabdesk.metrics")

CHANNELS = (str(Channel.SMS), str(Channel.EMAIL), str(Channel.WEBHOOK))
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   300.0, 3600.0)

DELIVERIES = Counter("collabdesk_deliveries_total",
                     "Delivery attempts on the external channels, by channel and outcome",
                     ["channel", "status"])
LATENCY = Histogram("collabdesk_delivery_latency_seconds",
                    "First attempts: seconds from the message's creation to the attempt",
                    ["channel"], buckets=LATENCY_BUCKETS)


def observe(attempts: list[Attempt]) -> None:
    for a in attempts:
        message, result = a.message, a.result
        if result.delivered:
            status = DeliveryStatus.DELIVERED
        elif result.final:
            status = DeliveryStatus.SKIPPED
        elif schedule_for(message.channel).next_due(message.first_due_at,
                                                    message.attempts + 1) is None:
            status = DeliveryStatus.FAILED
        else:
            status = DeliveryStatus.RETRYING
        DELIVERIES.labels(str(message.channel), str(status)).inc()
        if message.attempts == 0:
            LATENCY.labels(str(message.channel)).observe(
                max((a.at - message.created_at).total_seconds(), 0.0))


class OutboxGauges(Collector):
    def __init__(self, ctx: ServiceContext) -> None:
        self._ctx = ctx

    def collect(self) -> Iterator[GaugeMetricFamily]:
        try:
            backlog = self._ctx.read(lambda uow: uow.outbox.backlog())
        except Exception:  # a scrape must not fail for the database: the gauges go absent
            log.exception("cannot read the outbox for /metrics")
            return
        family = GaugeMetricFamily("collabdesk_outbox_backlog",
                                   "Messages not yet delivered (pending or retrying)",
                                   labels=["channel"])
        for channel in CHANNELS:
            family.add_metric([channel], backlog.get(channel, (0, None))[0])
        yield family
        now = self._ctx.clock.now()
        dues = [due for _, due in backlog.values() if due is not None and due <= now]
        yield GaugeMetricFamily(
            "collabdesk_outbox_oldest_due_seconds",
            "How long the most overdue unsent message has been due (0 when none is)",
            value=max((now - min(dues)).total_seconds(), 0.0) if dues else 0.0)


