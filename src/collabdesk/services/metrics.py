"""Store metrics, read from the daily rollups: a window costs its days, not its work
orders. The rollups change with the facts (services/work_orders.commit_change, orders);
services/rollups.py rebuilds them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from collabdesk.domain import metrics
from collabdesk.domain.bounds import MIN_YEAR
from collabdesk.domain.errors import Forbidden, NotFound, ValidationFailed
from collabdesk.domain.states import MERCHANT_ROLES, PLATFORM_ROLES, Role
from collabdesk.domain.values import Actor, Store

from .access import can_see_store
from .context import ServiceContext
from .ports import UnitOfWork

DAILY_DEFAULT_DAYS = 30
DAILY_MAX_DAYS = 366


@dataclass(frozen=True)
class MetricsReport:
    store: Store
    window: metrics.Window
    window_days: int
    figures: metrics.StoreMetrics


@dataclass(frozen=True)
class DailyReport:
    store: Store
    first: date
    last: date
    days: list[tuple[date, metrics.StoreMetrics]]  # every day from first to last


def _store(uow: UnitOfWork, actor: Actor, store_id: str) -> Store:
    store = uow.stores.get(store_id)
    if store is None or not can_see_store(actor, store_id):
        raise NotFound(f"store {store_id} not found")
    if actor.role not in MERCHANT_ROLES | PLATFORM_ROLES | {Role.ADMIN}:
        raise Forbidden("metrics are shown to the store and the platform")
    return store


def store_metrics(ctx: ServiceContext, actor: Actor, store_id: str,
                  as_of: date | None) -> MetricsReport:
    days = ctx.policy.metric_window_days
    window = metrics.Window.ending_after(as_of or ctx.clock.now().date(), days)

    def run(uow: UnitOfWork) -> MetricsReport:
        store = _store(uow, actor, store_id)
        totals, minutes = uow.rollups.window(store_id, *window.days)
        return MetricsReport(store, window, days,
                             metrics.compute(store.platform, totals, minutes))
    return ctx.read(run)


def daily_metrics(ctx: ServiceContext, actor: Actor, store_id: str, first: date | None,
                  last: date | None) -> DailyReport:
    """The store's figures of each UTC day from `first` to `last` (both included; by
    default the 30 days up to today), days without anything included."""
    last = last or ctx.clock.now().date()
    if first is None:
        first = max(last - timedelta(days=DAILY_DEFAULT_DAYS - 1), date(MIN_YEAR, 1, 1))
    if first > last:
        raise ValidationFailed(f"from ({first}) is after to ({last})")
    span = (last - first).days + 1
    if span > DAILY_MAX_DAYS:
        raise ValidationFailed(f"from {first} to {last} spans {span} days; at most "
                               f"{DAILY_MAX_DAYS} are shown at once")

    def run(uow: UnitOfWork) -> DailyReport:
        store = _store(uow, actor, store_id)
        counters, minutes = uow.rollups.daily(store_id, first, last + timedelta(days=1))
        days = [first + timedelta(days=n) for n in range(span)]
        return DailyReport(store, first, last, [
            (day, metrics.compute(store.platform, counters.get(day, metrics.ZERO),
                                  minutes.get(day, {}))) for day in days])
    return ctx.read(run)
