"""The metric rollups through the use cases, on the in-memory fakes: every change to a work
order moves them in its own unit of work, a batch can gather the deltas and apply them
once, orders add their payment day, a rebuild recomputes them, and the daily report's
range rules (rules.md §8)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.errors import ValidationFailed
from collabdesk.domain.metrics import Counters, Rollup, facts_of
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.values import Order, OrderKind, Remedy, RemedyType, Ruling
from collabdesk.domain.violations import Severity, ViolationKind
from collabdesk.services import catalog, metrics, rollups, violations
from collabdesk.services import work_orders as wos
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import UnitOfWork
from collabdesk.services.timers import fire_due_timers
from tests.builders import World, make_world
from tests.conftest import START
from tests.fakes import fake_context, fake_db

NOV_1, NOV_2, NOV_3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)


@pytest.fixture
def ctx(clock: FixedClock) -> ServiceContext:
    return fake_context(clock)


@pytest.fixture
def world(ctx: ServiceContext) -> World:
    return make_world(ctx)


def rollup(ctx: ServiceContext) -> Rollup:
    return fake_db(ctx).snapshot().rollup


def test_each_change_moves_the_rollups_in_its_own_unit_of_work(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    replied, timed_out = world.open(), world.open()
    assert rollup(ctx) == Rollup({("s-tmall", NOV_1): Counters(paid_orders=2),
                                  ("s-tmall", NOV_2): Counters(opened=2)})
    clock.advance(150)
    world.contact(replied)
    wos.reply(ctx, world.agent, replied, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
              statement="no deal", agreement=None, evidence_ids=())
    evidence = world.evidence("adjudicator")
    violations.record_violation(ctx, world.adjudicator, store_id="s-tmall",
                                work_order_id=replied, kind=ViolationKind.FALSE_EVIDENCE,
                                severity=Severity.GENERAL, rationale="edited",
                                evidence_ids=(evidence,))  # no change the metrics see
    clock.set(START + timedelta(hours=24))
    fire_due_timers(ctx)  # the other one times out
    wos.judge(ctx, world.adjudicator, replied, ruling=Ruling.FOR_CONSUMER, rationale="r",
              remedy=Remedy(RemedyType.REFUND, 1_000))
    assert rollup(ctx) == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=2),
         ("s-tmall", NOV_2): Counters(opened=2, replied=1, replied_on_time=1, timeouts=1,
                                      interventions=2),
         ("s-tmall", NOV_3): Counters(disputes=1)},
        {("s-tmall", NOV_2, 2): 1})
    wos.withdraw(ctx, world.consumer, timed_out)
    assert rollup(ctx).daily[("s-tmall", NOV_2)] == Counters(
        opened=1, replied=1, replied_on_time=1, interventions=1)


def test_a_batch_gathers_the_deltas_and_applies_them_once(
        ctx: ServiceContext, world: World) -> None:
    first, second = world.open(), world.open()
    before = rollup(ctx)

    def withdraw_both(uow: UnitOfWork) -> Rollup:
        writes = wos.Writes(uow)  # what the timer runner shares across a batch
        for wo_id in (first, second):
            wo = uow.work_orders.get(wo_id)
            assert wo is not None
            was = facts_of(wo)
            wo.withdraw(world.consumer, START)
            wos.stage_change(ctx, writes, wo, was, START)
        assert uow.rollups.window("s-tmall", NOV_2, NOV_3)[0] == Counters(opened=2)
        batch = writes.rollups
        writes.flush()
        return batch
    batch = ctx.write(withdraw_both)
    assert batch == Rollup({("s-tmall", NOV_2): Counters(opened=-2)})
    assert rollup(ctx) == before.add(batch) == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=2)})


def test_orders_add_their_payment_day_and_refused_rows_add_nothing(
        ctx: ServiceContext, world: World) -> None:
    catalog.create_order(ctx, None, Order("o-a", "s-taobao", world.consumer.id,
                                          OrderKind.WORRY_FREE, 1, START))
    rows = [(n, {"id": f"o-i{n}", "store_id": "s-taobao", "consumer_id": world.consumer.id,
                 "amount_cents": 100, "paid_at": "2026-11-03T00:00:00+08:00"})
            for n in range(3)]
    rows.append((3, {**rows[0][1], "id": "o-a"}))  # taken
    rows.append((4, {**rows[0][1], "id": "o-z", "store_id": "s-none"}))
    result = catalog.import_orders(ctx, rows, batch_size=2)
    assert (result.imported, [line for line, _ in result.refused]) == (3, [3, 4])
    assert rollup(ctx) == Rollup({("s-taobao", NOV_2): Counters(paid_orders=4)})


def test_a_rebuild_recomputes_what_the_changes_kept(
        ctx: ServiceContext, world: World) -> None:
    ids = [world.open() for _ in range(3)]
    world.contact(ids[0])
    wos.reply(ctx, world.agent, ids[0], option=ReplyOption.NOT_RELATED, statement="no",
              agreement=None, evidence_ids=())
    wos.withdraw(ctx, world.consumer, ids[1])
    kept = rollup(ctx)
    fake_db(ctx).tables.rollup = Rollup({("s-x", NOV_1): Counters(opened=9)})
    read: list[int] = []
    assert rollups.rebuild(ctx, progress=read.append) == 3
    assert read == [3]
    assert rollup(ctx) == kept == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=3),
         ("s-tmall", NOV_2): Counters(opened=2, replied=1, replied_on_time=1)},
        {("s-tmall", NOV_2, 0): 1})


def test_the_daily_report_lists_every_day_from_first_to_last(
        ctx: ServiceContext, world: World) -> None:
    world.open()
    report = metrics.daily_metrics(ctx, world.owner, "s-tmall", None, None)
    assert (report.first, report.last, len(report.days)) == (
        date(2026, 10, 4), NOV_2, 30)
    report = metrics.daily_metrics(ctx, world.owner, "s-tmall", NOV_1, NOV_3)
    assert [(day, f.work_orders, f.paid_orders) for day, f in report.days] == [
        (NOV_1, 0, 1), (NOV_2, 1, 0), (NOV_3, 0, 0)]
    assert len(metrics.daily_metrics(ctx, world.owner, "s-tmall", date(2024, 1, 1),
                                     date(2024, 12, 31)).days) == 366


@pytest.mark.parametrize(("first", "last", "detail"), [
    (NOV_3, NOV_2, "from (2026-11-03) is after to (2026-11-02)"),
    (date(2026, 11, 3), None, "from (2026-11-03) is after to (2026-11-02)"),
    (date(2025, 1, 1), date(2026, 1, 2),
     "from 2025-01-01 to 2026-01-02 spans 367 days; at most 366 are shown at once"),
])
def test_a_reversed_or_too_long_daily_range_is_refused(
        ctx: ServiceContext, world: World, first: date, last: date | None,
        detail: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        metrics.daily_metrics(ctx, world.owner, "s-tmall", first, last)
    assert info.value.detail == detail
