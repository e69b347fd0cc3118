"""Store metrics over a rolling window (rules.md §8), as pure functions of facts.

A store's figures are kept as daily rollups: counters per (store, UTC day) and reply times
per (store, day, whole minute). What one work order adds to them (its *contribution*) is a
pure function of its current facts, so a change to a work order changes the rollups by
`delta(store, facts before, facts after)`, and a paid order adds one `paid_orders` on the
day it was paid. `compute` turns the sums over a window's days into the figures.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta

from .model import WorkOrder
from .states import State
from .values import AppealDecision, OrderKind, Ruling, StorePlatform

NEVER_COUNTED = frozenset({State.WORRY_FREE, State.SETTLED, State.DISMISSED, State.WITHDRAWN})


@dataclass(frozen=True)
class WorkOrderFacts:
    """What the metrics need of a work order. `ruled_for_consumer` is the ruling (whatever
    happened on appeal since); `overturned` says the appeal overturned it."""

    state: State
    worry_free: bool
    created_at: datetime
    due_at: datetime | None
    replied_at: datetime | None
    timed_out: bool
    escalated: bool
    judged_at: datetime | None
    ruled_for_consumer: bool
    overturned: bool = False

    @property
    def counts_as_dispute(self) -> bool:
        """A ruling for the consumer that was not overturned (rules.md §8), before the
        question whether the work order counts at all (`counts`)."""
        return self.ruled_for_consumer and not self.overturned


def facts_of(wo: WorkOrder) -> WorkOrderFacts:
    """A work order's facts as the metrics see them; take one before a change and one
    after, and `delta` says how the rollups change."""
    return WorkOrderFacts(
        state=wo.state, worry_free=wo.order_kind is OrderKind.WORRY_FREE,
        created_at=wo.created_at, due_at=wo.due_at,
        replied_at=wo.reply.replied_at if wo.reply else None,
        timed_out=wo.timed_out_at is not None, escalated=wo.escalated_at is not None,
        judged_at=wo.judgment.judged_at if wo.judgment else None,
        ruled_for_consumer=wo.judgment is not None
        and wo.judgment.ruling is Ruling.FOR_CONSUMER,
        overturned=wo.appeal is not None and wo.appeal.decision is AppealDecision.OVERTURNED)


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

    @property
    def days(self) -> tuple[date, date]:
        """The window as UTC days: [first, end) (its bounds are midnights)."""
        return self.start.date(), self.end.date()


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


# ---- rollups -----------------------------------------------------------------------------

# The columns of `store_daily`, in this order.
COUNTERS = ("opened", "replied", "replied_on_time", "timeouts", "agreements",
            "interventions", "disputes", "overturned", "paid_orders")


@dataclass(frozen=True)
class Counters:
    """One store's counters over some days. By the day a work order was opened: `opened`,
    `replied`, `replied_on_time`, `timeouts`, `agreements` (now resolved), `interventions`
    (ever in adjudication); by the day of the ruling: `disputes` (ruled for the consumer)
    and `overturned` (of those, overturned on appeal); by the day of payment:
    `paid_orders`. Only counted work orders (`counts`) add to them."""

    opened: int = 0
    replied: int = 0
    replied_on_time: int = 0
    timeouts: int = 0
    agreements: int = 0
    interventions: int = 0
    disputes: int = 0
    overturned: int = 0
    paid_orders: int = 0

    def values(self) -> tuple[int, ...]:
        return (self.opened, self.replied, self.replied_on_time, self.timeouts,
                self.agreements, self.interventions, self.disputes, self.overturned,
                self.paid_orders)

    def __add__(self, other: Counters) -> Counters:
        return Counters(*map(operator.add, self.values(), other.values()))

    def __neg__(self) -> Counters:
        return Counters(*(-a for a in self.values()))

    def __bool__(self) -> bool:
        return any(self.values())

    @property
    def dispute_count(self) -> int:
        return self.disputes - self.overturned


ZERO = Counters()

DayKey = tuple[str, date]  # (store id, UTC day)
MinuteKey = tuple[str, date, int]  # (store id, UTC day opened, whole minutes to the reply)


@dataclass
class Rollup:
    """Counters by (store, day) and reply counts by (store, day, minute): what the rollup
    tables hold, or a change to them (a contribution, a delta, a batch of deltas). Entries
    that come to zero are dropped, so an empty Rollup changes nothing."""

    daily: dict[DayKey, Counters] = field(default_factory=dict)
    minutes: dict[MinuteKey, int] = field(default_factory=dict)

    def add(self, other: Rollup, sign: int = 1) -> Rollup:
        """Add `other` (or subtract it, with `sign=-1`) in place; returns self."""
        for key, counters in other.daily.items():
            self._add_day(key, counters if sign == 1 else -counters)
        for mkey, count in other.minutes.items():
            self._add_minute(mkey, sign * count)
        return self

    def include(self, store_id: str, facts: WorkOrderFacts | None, sign: int = 1) -> Rollup:
        """Add one work order's contribution (`sign=-1`: take it away), given its current
        facts; a work order that does not count (or None) adds nothing. Returns self."""
        if facts is None or not counts(facts):
            return self
        opened_on = utc_day(facts.created_at)
        on_time = (facts.replied_at is not None and facts.due_at is not None
                   and facts.replied_at < facts.due_at)
        self._add_day((store_id, opened_on), Counters(
            opened=sign, replied=sign * (facts.replied_at is not None),
            replied_on_time=sign * on_time, timeouts=sign * facts.timed_out,
            agreements=sign * (facts.state is State.RESOLVED),
            interventions=sign * facts.escalated))
        if facts.judged_at is not None and facts.ruled_for_consumer:
            self._add_day((store_id, utc_day(facts.judged_at)),
                          Counters(disputes=sign, overturned=sign * facts.overturned))
        if facts.replied_at is not None:
            self._add_minute((store_id, opened_on,
                              reply_minute(facts.created_at, facts.replied_at)), sign)
        return self

    def _add_day(self, key: DayKey, counters: Counters) -> None:
        had = self.daily.get(key)
        total = counters if had is None else had + counters
        if total:
            self.daily[key] = total
        else:
            self.daily.pop(key, None)

    def _add_minute(self, key: MinuteKey, count: int) -> None:
        n = self.minutes.get(key, 0) + count
        if n:
            self.minutes[key] = n
        else:
            self.minutes.pop(key, None)

    def __bool__(self) -> bool:
        return bool(self.daily or self.minutes)

    def window(self, store_id: str, first: date, end: date) -> tuple[Counters, dict[int, int]]:
        """The store's counters summed over the days [first, end), and its reply minutes."""
        totals = ZERO
        for (store, day), counters in self.daily.items():
            if store == store_id and first <= day < end:
                totals += counters
        minutes: dict[int, int] = {}
        for (store, day, minute), count in self.minutes.items():
            if store == store_id and first <= day < end:
                minutes[minute] = minutes.get(minute, 0) + count
        return totals, {m: n for m, n in minutes.items() if n}


def utc_day(moment: datetime) -> date:
    return moment.astimezone(UTC).date()


def reply_minute(created_at: datetime, replied_at: datetime) -> int:
    """Whole minutes from opening to the reply, rounded down: 59.9 s is minute 0."""
    return (replied_at - created_at) // timedelta(minutes=1)


def contribution(store_id: str, facts: WorkOrderFacts | None) -> Rollup:
    """What one work order adds to its store's rollups, given its current facts (None: a
    work order that does not exist adds nothing): on the UTC day it was opened, `opened`,
    `replied`, `replied_on_time`, `timeouts`, `agreements` (resolved now),
    `interventions` and its reply minute; on the day of a ruling for the consumer,
    `disputes`, and `overturned` if the appeal overturned it. Nothing if it does not
    count (`counts`)."""
    return Rollup().include(store_id, facts)


def delta(store_id: str, before: WorkOrderFacts | None,
          after: WorkOrderFacts | None) -> Rollup:
    """How a work order's change moves its store's rollups: its new contribution minus its
    old one (`before=None` for a new work order). Empty when nothing the metrics see moved."""
    if before == after:
        return Rollup()
    return Rollup().include(store_id, after).include(store_id, before, sign=-1)


def paid_order(store_id: str, paid_at: datetime) -> Rollup:
    """A registered order: one paid order on the UTC day it was paid."""
    return Rollup({(store_id, utc_day(paid_at)): Counters(paid_orders=1)})


def median_reply_seconds(minutes: Mapping[int, int]) -> float | None:
    """The median of a histogram of whole reply minutes, minute m standing for m * 60 s;
    with an even count, the mean of the two middle values. None when it is empty."""
    n = sum(minutes.values())
    if n <= 0:
        return None
    ordered = sorted(minutes.items())

    def at(position: int) -> int:
        """The minute of the reply at this 0-based position, in order of reply time."""
        seen = 0
        for minute, count in ordered:
            seen += count
            if position < seen:
                return minute
        raise AssertionError  # position < n

    half, odd = divmod(n, 2)
    return (at(half - 1 + odd) + at(half)) * 60 / 2


def compute(platform: StorePlatform, totals: Counters,
            minutes: Mapping[int, int]) -> StoreMetrics:
    """The figures from a window's summed counters and its reply minutes."""
    opened = totals.opened
    disputes = totals.dispute_count
    return StoreMetrics(
        metric=metric_name(platform),
        dispute_count=disputes,
        paid_orders=totals.paid_orders,
        dispute_rate=_ratio(disputes, totals.paid_orders),
        work_orders=opened,
        replied_on_time=totals.replied_on_time,
        on_time_reply_rate=_ratio(totals.replied_on_time, opened),
        timeouts=totals.timeouts,
        median_reply_seconds=median_reply_seconds(minutes),
        agreement_rate=_ratio(totals.agreements, opened),
        intervention_rate=_ratio(totals.interventions, opened),
    )
