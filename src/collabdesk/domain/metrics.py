"""Store metrics over a rolling window (rules.md §8), as pure functions of facts.

The repository hands over one `WorkOrderFacts` per work order that touches the window;
everything that decides what counts lives here.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from .states import State
from .values import StorePlatform

NEVER_COUNTED = frozenset({State.WORRY_FREE, State.SETTLED, State.DISMISSED, State.WITHDRAWN})


@dataclass(frozen=True)
class WorkOrderFacts:
    state: State
    worry_free: bool
    created_at: datetime
    due_at: datetime | None
    replied_at: datetime | None
    timed_out: bool
    escalated: bool
    judged_at: datetime | None
    counts_as_dispute: bool


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime

    @classmethod
    def ending_after(cls, as_of: date, days: int) -> Window:
        """[end - days, end) with end the start of the day after `as_of`, in UTC."""
        end = datetime.combine(as_of + timedelta(days=1), time(0), tzinfo=UTC)
        return cls(end - timedelta(days=days), end)

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


@dataclass(frozen=True)
class StoreMetrics:
    metric: str
    dispute_count: int
    paid_orders: int
    dispute_rate: float | None
    work_orders: int
    replied_on_time: int
    on_time_reply_rate: float | None
    timeouts: int
    median_reply_seconds: float | None
    agreement_rate: float | None
    intervention_rate: float | None


def metric_name(platform: StorePlatform) -> str:
    return "dispute_refund_rate" if platform is StorePlatform.TAOBAO else "platform_dispute_rate"


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def counts(facts: WorkOrderFacts) -> bool:
    """Worry-free, dismissed and withdrawn work orders never count (rules.md §8)."""
    return not facts.worry_free and facts.state not in NEVER_COUNTED


def compute(platform: StorePlatform, window: Window, paid_orders: int,
            facts: list[WorkOrderFacts]) -> StoreMetrics:
    counted = [f for f in facts if counts(f)]
    disputes = sum(1 for f in counted if f.counts_as_dispute and f.judged_at is not None
                   and window.contains(f.judged_at))
    opened = [f for f in counted if window.contains(f.created_at)]
    on_time = [f for f in opened if f.replied_at is not None and f.due_at is not None
               and f.replied_at < f.due_at]
    reply_seconds = [(f.replied_at - f.created_at).total_seconds()
                     for f in opened if f.replied_at is not None]
    agreed = sum(1 for f in opened if f.state is State.RESOLVED)
    return StoreMetrics(
        metric=metric_name(platform),
        dispute_count=disputes,
        paid_orders=paid_orders,
        dispute_rate=_ratio(disputes, paid_orders),
        work_orders=len(opened),
        replied_on_time=len(on_time),
        on_time_reply_rate=_ratio(len(on_time), len(opened)),
        timeouts=sum(1 for f in opened if f.timed_out),
        median_reply_seconds=statistics.median(reply_seconds) if reply_seconds else None,
        agreement_rate=_ratio(agreed, len(opened)),
        intervention_rate=_ratio(sum(1 for f in opened if f.escalated), len(opened)),
    )
