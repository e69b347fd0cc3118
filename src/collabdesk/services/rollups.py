"""Rebuilding the daily metric rollups from the facts (`collabdesk metrics rebuild`, and
migration 0003 on an existing database).

The rollups are kept in step with the facts by every change (domain/metrics.py `delta`);
a rebuild recomputes them from scratch: it clears them and adds up the contribution of
every work order and every order, read by id in pages (never all at once), in one
transaction. Writers that change rollups meanwhile wait for it (`RollupRepository.clear`)
and then add their own change on top, so nothing is counted twice or lost.
"""

from __future__ import annotations

from collections.abc import Callable

from collabdesk.domain import metrics

from .context import ServiceContext
from .ports import RollupRepository, UnitOfWork

PAGE = 1000
# Entries kept in memory before they are written: bounds the memory of a rebuild of many
# stores and days, whatever their number.
FLUSH_AT = 50_000


def refill(rollups: RollupRepository, progress: Callable[[int], object] | None = None,
           page: int = PAGE) -> int:
    """Clear the rollups and recompute them in the caller's transaction; returns how many
    work orders were read. `progress` is told of each page of work orders read."""
    rollups.clear()
    pending = metrics.Rollup()

    def flush(force: bool = False) -> None:
        nonlocal pending
        if force or len(pending.daily) + len(pending.minutes) >= FLUSH_AT:
            rollups.apply(pending)
            pending = metrics.Rollup()

    read = 0
    after: str | None = None
    while facts := rollups.work_order_facts(after, page):
        for _, store_id, f in facts:
            pending.include(store_id, f)
        read += len(facts)
        after = facts[-1][0]
        flush()
        if progress:
            progress(len(facts))
    after = None
    while paid := rollups.paid_orders(after, page):
        for _, store_id, paid_at in paid:
            pending.add(metrics.paid_order(store_id, paid_at))
        after = paid[-1][0]
        flush()
    flush(force=True)
    return read


def rebuild(ctx: ServiceContext, progress: Callable[[int], object] | None = None) -> int:
    """Recompute every store's rollups from the work orders and orders, in one
    transaction; returns how many work orders were read."""
    def run(uow: UnitOfWork) -> int:
        return refill(uow.rollups, progress)
    return ctx.write(run, attempts=1)
