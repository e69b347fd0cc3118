"""Store metrics: the repository gathers facts, the domain decides what counts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from collabdesk.domain import metrics
from collabdesk.domain.errors import Forbidden, NotFound
from collabdesk.domain.states import MERCHANT_ROLES, PLATFORM_ROLES, Role
from collabdesk.domain.values import Actor, Store

from .access import can_see_store
from .context import ServiceContext
from .ports import UnitOfWork


@dataclass(frozen=True)
class MetricsReport:
    store: Store
    window: metrics.Window
    window_days: int
    figures: metrics.StoreMetrics


def store_metrics(ctx: ServiceContext, actor: Actor, store_id: str,
                  as_of: date | None) -> MetricsReport:
    days = ctx.policy.metric_window_days
    window = metrics.Window.ending_after(as_of or ctx.clock.now().date(), days)

    def run(uow: UnitOfWork) -> MetricsReport:
        store = uow.stores.get(store_id)
        if store is None or not can_see_store(actor, store_id):
            raise NotFound(f"store {store_id} not found")
        if actor.role not in MERCHANT_ROLES | PLATFORM_ROLES | {Role.ADMIN}:
            raise Forbidden("metrics are shown to the store and the platform")
        paid = uow.orders.count_paid(store_id, window.start, window.end)
        facts = uow.work_orders.facts(store_id, window.start, window.end)
        return MetricsReport(store, window, days,
                             metrics.compute(store.platform, window, paid, facts))
    return ctx.read(run)
