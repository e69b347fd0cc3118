"""The daily metric rollups in SQL, on SQLite and PostgreSQL: the adapter's upserts and
reads, the rebuild (and migration 0003, which fills them), races with them, and random
histories driven through the services, after which the rollup tables must equal a
recomputation from the facts and the figures must equal the pre-rollup computation over
every work order."""

from __future__ import annotations

import contextlib
import statistics
import threading
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import date, datetime, timedelta
from functools import partial
from pathlib import Path

import pytest
from alembic import command
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine, delete, event, insert, select

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db import tables as t
from collabdesk.adapters.db.engine import alembic_config, migrate
from collabdesk.adapters.db.repositories import SqlOrders
from collabdesk.bootstrap import Container
from collabdesk.domain.errors import CollabdeskError
from collabdesk.domain.metrics import (
    COUNTERS,
    Counters,
    Rollup,
    StoreMetrics,
    Window,
    WorkOrderFacts,
    contribution,
    counts,
    facts_of,
    metric_name,
    paid_order,
)
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import (
    AppealDecision,
    Category,
    ContactChannel,
    ContactOutcome,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    StorePlatform,
    VerificationOutcome,
)
from collabdesk.services import catalog, metrics, rollups
from collabdesk.services import work_orders as wos
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import UnitOfWork
from collabdesk.services.timers import fire_due_timers
from tests.builders import World, make_world
from tests.conftest import START
from tests.integration.test_races import Arena, _arena, code_of, race

NOV_1, NOV_2, NOV_3 = date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)
PLATFORMS = {"s-tmall": StorePlatform.TMALL, "s-taobao": StorePlatform.TAOBAO}


def stored(engine: Engine) -> Rollup:
    """What the rollup tables hold, rows that came back to zero left out."""
    with engine.connect() as conn:
        daily = {(r.store_id, r.day): Counters(*(r._mapping[c] for c in COUNTERS))
                 for r in conn.execute(select(t.store_daily))}
        minutes = {(r.store_id, r.day, r.minute): r._mapping["count"]
                   for r in conn.execute(select(t.store_reply_minutes))}
    return Rollup({k: c for k, c in daily.items() if c}, {k: n for k, n in minutes.items() if n})


def all_facts(ctx: ServiceContext, engine: Engine) -> list[tuple[str, WorkOrderFacts]]:
    """(store, facts) of every work order, from the aggregates as the services load them."""
    with engine.connect() as conn:
        ids = [r.id for r in conn.execute(select(t.work_orders.c.id))]

    def load(uow: UnitOfWork) -> list[tuple[str, WorkOrderFacts]]:
        found = []
        for wo_id in ids:
            wo = uow.work_orders.get(wo_id)
            assert wo is not None
            found.append((wo.store_id, facts_of(wo)))
        return found
    return ctx.read(load)


def all_paid(engine: Engine) -> list[tuple[str, datetime]]:
    with engine.connect() as conn:
        return [(r.store_id, r.paid_at)
                for r in conn.execute(select(t.orders.c.store_id, t.orders.c.paid_at))]


def recomputed(ctx: ServiceContext, engine: Engine) -> Rollup:
    """The rollups as they must be: every work order's contribution, every paid order."""
    rollup = Rollup()
    for store_id, facts in all_facts(ctx, engine):
        rollup.add(contribution(store_id, facts))
    for store_id, paid_at in all_paid(engine):
        rollup.add(paid_order(store_id, paid_at))
    return rollup


def old_figures(platform: StorePlatform, window: Window, paid_orders: int,
                facts: list[WorkOrderFacts]) -> StoreMetrics:
    """The figures as computed before the rollups, from the facts of every work order
    (that code, kept as the oracle), with reply times rounded down to the minute as the
    rollups keep them (rules.md §8)."""
    counted = [f for f in facts if counts(f)]
    disputes = sum(1 for f in counted if f.counts_as_dispute and f.judged_at is not None
                   and window.contains(f.judged_at))
    opened = [f for f in counted if window.contains(f.created_at)]
    on_time = [f for f in opened if f.replied_at is not None and f.due_at is not None
               and f.replied_at < f.due_at]
    reply_seconds = [(f.replied_at - f.created_at).total_seconds() // 60 * 60
                     for f in opened if f.replied_at is not None]
    agreed = sum(1 for f in opened if f.state is State.RESOLVED)

    def ratio(part: int, whole: int) -> float | None:
        return part / whole if whole else None
    return StoreMetrics(
        metric=metric_name(platform), dispute_count=disputes, paid_orders=paid_orders,
        dispute_rate=ratio(disputes, paid_orders), work_orders=len(opened),
        replied_on_time=len(on_time), on_time_reply_rate=ratio(len(on_time), len(opened)),
        timeouts=sum(1 for f in opened if f.timed_out),
        median_reply_seconds=statistics.median(reply_seconds) if reply_seconds else None,
        agreement_rate=ratio(agreed, len(opened)),
        intervention_rate=ratio(sum(1 for f in opened if f.escalated), len(opened)))


def assert_rollups_match_the_facts(container: Container, world: World,
                                   days: tuple[date, date]) -> None:
    """The tables equal a recomputation, and every figure equals the oracle's: the
    30-day metrics (and 1- and 7-day windows) for each as-of day, and each day's."""
    ctx, engine = container.ctx, container.engine
    assert stored(engine) == recomputed(ctx, engine)
    facts = all_facts(ctx, engine)
    paid = all_paid(engine)
    first, last = days
    for store_id, platform in PLATFORMS.items():
        mine = [f for s, f in facts if s == store_id]
        my_paid = [p for s, p in paid if s == store_id]

        def oracle(window: Window, platform: StorePlatform = platform,
                   mine: list[WorkOrderFacts] = mine,
                   my_paid: list[datetime] = my_paid) -> StoreMetrics:
            return old_figures(platform, window, sum(1 for p in my_paid if window.contains(p)),
                               mine)
        report = metrics.daily_metrics(ctx, world.triage, store_id, first, last)
        assert [day for day, _ in report.days] == [
            first + timedelta(days=n) for n in range((last - first).days + 1)]
        for day, figures in report.days:
            assert figures == oracle(Window.ending_after(day, 1)), (store_id, day)
        for window_days in (1, 7, 30):
            short = replace(ctx, policy=replace(ctx.policy, metric_window_days=window_days))
            as_of = first
            while as_of <= last:
                got = metrics.store_metrics(short, world.triage, store_id, as_of).figures
                assert got == oracle(Window.ending_after(as_of, window_days)), (
                    store_id, window_days, as_of)
                as_of += timedelta(days=3)


# ---- the SQL adapter -----------------------------------------------------------------------


def test_changes_add_to_the_stored_counters_and_take_back_to_zero(
        ctx: ServiceContext, container: Container) -> None:
    change = Rollup({("s-b", NOV_2): Counters(opened=2, replied=1, disputes=1),
                     ("s-a", NOV_3): Counters(paid_orders=5),
                     ("s-a", NOV_1): Counters(opened=1, agreements=1)},
                    {("s-b", NOV_2, 7): 1, ("s-a", NOV_1, 0): 3})
    with ctx.uow() as uow:
        uow.rollups.apply(change)
        uow.rollups.apply(Rollup({("s-b", NOV_2): Counters(opened=1, overturned=1)},
                                 {("s-b", NOV_2, 7): 2}))
        uow.commit()
    assert stored(container.engine) == Rollup(
        {("s-b", NOV_2): Counters(opened=3, replied=1, disputes=1, overturned=1),
         ("s-a", NOV_3): Counters(paid_orders=5),
         ("s-a", NOV_1): Counters(opened=1, agreements=1)},
        {("s-b", NOV_2, 7): 3, ("s-a", NOV_1, 0): 3})
    with ctx.uow() as uow:
        uow.rollups.apply(Rollup().add(change, sign=-1))
        uow.rollups.apply(Rollup())  # nothing to do
        uow.commit()
    assert stored(container.engine) == Rollup(
        {("s-b", NOV_2): Counters(opened=1, overturned=1)}, {("s-b", NOV_2, 7): 2})
    with container.engine.connect() as conn:  # emptied rows stay, holding zeros
        assert len(conn.execute(select(t.store_daily)).all()) == 3
    with ctx.uow() as uow:
        uow.rollups.clear()
        uow.commit()
    assert stored(container.engine) == Rollup()


def test_a_window_sums_its_days_and_a_daily_read_gives_each_day(
        ctx: ServiceContext) -> None:
    with ctx.uow() as uow:
        uow.rollups.apply(Rollup(
            {("s-1", NOV_1): Counters(opened=1, paid_orders=2),
             ("s-1", NOV_2): Counters(opened=2, replied=2, replied_on_time=1),
             ("s-1", NOV_3): Counters(opened=4), ("s-2", NOV_2): Counters(opened=8)},
            {("s-1", NOV_1, 5): 1, ("s-1", NOV_2, 5): 1, ("s-1", NOV_2, 9): 1,
             ("s-1", NOV_3, 1): 4, ("s-2", NOV_2, 5): 8}))
        uow.rollups.apply(Rollup({("s-1", NOV_1): Counters(opened=-1, paid_orders=-2)},
                                 {("s-1", NOV_1, 5): -1}))  # NOV_1 back to zeros
        uow.commit()
    window = ctx.read(lambda uow: uow.rollups.window("s-1", NOV_1, NOV_3))
    assert window == (Counters(opened=2, replied=2, replied_on_time=1), {5: 1, 9: 1})
    assert ctx.read(lambda uow: uow.rollups.window("s-1", NOV_3, NOV_3)) == (Counters(), {})
    assert ctx.read(lambda uow: uow.rollups.window("s-3", NOV_1, NOV_3)) == (Counters(), {})
    counters, minutes = ctx.read(lambda uow: uow.rollups.daily("s-1", NOV_1, NOV_3))
    assert counters == {NOV_1: Counters(),
                        NOV_2: Counters(opened=2, replied=2, replied_on_time=1)}
    assert minutes == {NOV_2: {5: 1, 9: 1}}


def test_the_rebuild_reads_every_work_order_and_order_page_by_page(
        ctx: ServiceContext, container: Container, clock: FixedClock) -> None:
    world = make_world(ctx)
    ids = sorted(world.open() for _ in range(5))
    world.contact(ids[0])
    wos.reply(ctx, world.agent, ids[0], option=ReplyOption.NOT_RELATED,
              statement="not ours", agreement=None, evidence_ids=())
    def page_after(after: str | None) -> list[tuple[str, str, WorkOrderFacts]]:
        return ctx.read(lambda uow: uow.rollups.work_order_facts(after, 2))
    pages = [page_after(None)]
    while page := page_after(pages[-1][-1][0]):
        pages.append(page)
    assert [[wo_id for wo_id, _, _ in p] for p in pages] == [ids[:2], ids[2:4], ids[4:]]

    def from_the_aggregates(uow: UnitOfWork) -> list[tuple[str, str, WorkOrderFacts]]:
        found = [uow.work_orders.get(i) for i in ids]
        return [(wo.id, wo.store_id, facts_of(wo)) for wo in found if wo is not None]
    assert [row for page in pages for row in page] == ctx.read(from_the_aggregates)
    paid = ctx.read(lambda uow: uow.rollups.paid_orders("o-2", 2))
    assert [(o, s, p) for o, s, p in paid] == [("o-3", "s-tmall", START - timedelta(days=1)),
                                                ("o-4", "s-tmall", START - timedelta(days=1))]

    before = stored(container.engine)
    with container.engine.begin() as conn:  # the rollups go wrong behind our back
        conn.execute(delete(t.store_reply_minutes))
        conn.execute(insert(t.store_daily).values(store_id="s-taobao", day=NOV_3, opened=7))
    assert stored(container.engine) != before
    seen: list[int] = []
    assert rollups.rebuild(ctx, progress=seen.append) == 5
    assert seen == [5]
    assert stored(container.engine) == before == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=5),
         ("s-tmall", NOV_2): Counters(opened=5, replied=1, replied_on_time=1)},
        {("s-tmall", NOV_2, 0): 1})


def test_the_rebuild_reads_from_each_row_the_facts_of_its_aggregate(
        ctx: ServiceContext, container: Container, clock: FixedClock) -> None:
    world = make_world(ctx)
    timed_out = world.open()
    clock.advance(25 * 3600)
    fire_due_timers(ctx)
    refund = Remedy(RemedyType.REFUND, 1_000)

    def replied(option: ReplyOption) -> str:
        wo_id = world.open()
        world.contact(wo_id)
        wos.reply(ctx, world.agent, wo_id, option=option, statement="s", evidence_ids=(),
                  agreement=refund if option is ReplyOption.RESOLVED_AGREED else None)
        return wo_id

    def ruled(ruling: Ruling, decision: AppealDecision | None = None) -> None:
        wo_id = replied(ReplyOption.UNRESOLVED_NO_AGREEMENT)
        wos.judge(ctx, world.adjudicator, wo_id, ruling=ruling, rationale="r",
                  remedy=refund if ruling is Ruling.FOR_CONSUMER else None)
        if decision is not None:
            wos.appeal(ctx, world.owner, wo_id, statement="s", evidence_ids=())
            wos.decide_appeal(ctx, world.supervisor, wo_id, decision=decision, rationale="r")

    ruled(Ruling.FOR_CONSUMER, AppealDecision.OVERTURNED)
    ruled(Ruling.FOR_CONSUMER, AppealDecision.UPHELD)
    ruled(Ruling.FOR_MERCHANT)
    wos.respond_as_consumer(ctx, world.consumer, replied(ReplyOption.RESOLVED_AGREED),
                            accept=True, statement=None)
    wos.withdraw(ctx, world.consumer, world.open())
    world.open(kind=OrderKind.WORRY_FREE)
    streamed = ctx.read(lambda uow: uow.rollups.work_order_facts(None, 100))

    def from_the_aggregates(uow: UnitOfWork) -> list[tuple[str, str, WorkOrderFacts]]:
        found = [uow.work_orders.get(i) for i, _, _ in streamed]
        return [(wo.id, wo.store_id, facts_of(wo)) for wo in found if wo is not None]
    assert streamed == ctx.read(from_the_aggregates)
    assert sorted((str(f.state), f.ruled_for_consumer, f.overturned, f.timed_out,
                   f.worry_free) for _, _, f in streamed) == [
        ("in_adjudication", False, False, True, False),
        ("judged", False, False, False, False),
        ("judged", True, False, False, False),
        ("judged", True, True, False, False),
        ("resolved", False, False, False, False),
        ("withdrawn", False, False, False, False),
        ("worry_free", False, False, False, True)]
    assert timed_out in [wo_id for wo_id, _, _ in streamed]
    before = stored(container.engine)
    assert rollups.rebuild(ctx) == 7
    assert stored(container.engine) == before == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=1),
         ("s-tmall", NOV_2): Counters(opened=1, timeouts=1, interventions=1, paid_orders=6),
         ("s-tmall", NOV_3): Counters(opened=4, replied=4, replied_on_time=4, agreements=1,
                                      interventions=3, disputes=2, overturned=1)},
        {("s-tmall", NOV_3, 0): 4})


def test_migration_0003_fills_the_rollups_of_an_existing_database(
        container: Container, clock: FixedClock) -> None:
    ctx, engine = container.ctx, container.engine
    world = make_world(ctx)
    first = world.open()
    clock.advance(3 * 3600 + 59)
    world.contact(first)
    wos.reply(ctx, world.agent, first, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
              statement="no deal", agreement=None, evidence_ids=())
    wos.judge(ctx, world.adjudicator, first, ruling=Ruling.FOR_CONSUMER, rationale="r",
              remedy=Remedy(RemedyType.REFUND, 1_000))
    world.open(kind=OrderKind.WORRY_FREE)
    expected = stored(engine)
    assert expected == Rollup(
        {("s-tmall", NOV_1): Counters(paid_orders=2),  # each paid a day before opening
         ("s-tmall", NOV_2): Counters(opened=1, replied=1, replied_on_time=1,
                                      interventions=1, disputes=1)},
        {("s-tmall", NOV_2, 180): 1})
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0002")  # drops the rollup tables
        conn.commit()
    migrate(engine)
    assert stored(engine) == expected


# ---- orders ---------------------------------------------------------------------------------


def order_rows(ids: list[str], store_id: str = "s-taobao", consumer: str = "",
               paid_at: str = "2026-11-02T23:30:00-01:00") -> list[tuple[int, dict[str, str]]]:
    return [(n + 1, {"id": i, "store_id": store_id, "consumer_id": consumer,
                     "amount_cents": "100", "paid_at": paid_at}) for n, i in enumerate(ids)]


def test_registered_and_imported_orders_count_on_the_utc_day_they_were_paid(
        ctx: ServiceContext, container: Container) -> None:
    world = make_world(ctx)
    catalog.create_order(ctx, None, Order("o-api", "s-taobao", world.consumer.id,
                                          OrderKind.WORRY_FREE, 100, START))
    rows = order_rows([f"o-{n}" for n in range(5)], consumer=world.consumer.id)
    rows.append((6, {**rows[0][1], "id": "o-x", "store_id": "s-none"}))  # unknown store
    rows.append((7, {**rows[0][1], "id": "o-y", "consumer_id": world.agent.id}))
    rows.append((8, rows[1][1]))  # a second o-1
    result = catalog.import_orders(ctx, rows, batch_size=3)
    assert result.imported == 5
    assert [line for line, _ in result.refused] == [6, 7, 8]
    assert stored(container.engine) == Rollup(
        {("s-taobao", NOV_2): Counters(paid_orders=1),
         ("s-taobao", NOV_3): Counters(paid_orders=5)})  # 23:30 at -01:00 is 00:30 UTC


def test_an_import_batch_costs_the_same_statements_whatever_its_size(
        ctx: ServiceContext, container: Container) -> None:
    world = make_world(ctx)
    statements: list[str] = []

    def count(conn: object, cursor: object, statement: str, *args: object) -> None:
        statements.append(statement.split()[0].upper())
    event.listen(container.engine, "before_cursor_execute", count)
    try:
        for size in (2, 40):
            statements.clear()
            ids = [f"o-{size}-{n}" for n in range(size)]
            result = catalog.import_orders(ctx, order_rows(ids, consumer=world.consumer.id),
                                           batch_size=size)
            assert (result.imported, result.refused) == (size, [])
            # the stores, the consumers, the ids taken; the orders; the paid orders
            assert statements.count("SELECT") == 3, statements
            assert statements.count("INSERT") == 2, statements
    finally:
        event.remove(container.engine, "before_cursor_execute", count)
    assert stored(container.engine).daily == {("s-taobao", NOV_3): Counters(paid_orders=42)}


def test_a_batch_the_database_refuses_is_retried_row_by_row(
        ctx: ServiceContext, container: Container, monkeypatch: pytest.MonkeyPatch) -> None:
    """An id taken after the batch looked (by a concurrent writer): the batch's insert
    fails and nothing of it stays, then each row is tried on its own."""
    world = make_world(ctx)
    catalog.import_orders(ctx, order_rows(["o-2"], consumer=world.consumer.id))
    monkeypatch.setattr(SqlOrders, "existing_ids", lambda self, ids: set())
    result = catalog.import_orders(
        ctx, order_rows(["o-1", "o-2", "o-3"], consumer=world.consumer.id))
    assert result.imported == 2
    assert [line for line, _ in result.refused] == [2]
    assert result.refused == [(2, "order o-2 already exists")]
    assert stored(container.engine).daily == {("s-taobao", NOV_3): Counters(paid_orders=3)}


# ---- races -----------------------------------------------------------------------------------


@pytest.fixture
def pg(postgres_database_url: str, tmp_path: Path) -> Iterator[Arena]:
    yield from _arena(postgres_database_url, tmp_path)


def test_concurrent_writers_and_a_rebuild_on_postgresql_lose_and_double_nothing(
        pg: Arena) -> None:
    """Opens and withdrawals in one store on one day (the same rollup rows), an import,
    and a rebuild that clears and refills the rollups meanwhile."""
    ctx, world = pg.container.ctx, pg.world
    for round_ in range(4):
        opened = [world.open() for _ in range(2)]
        fresh = [world.order() for _ in range(2)]
        rows = [(n, {"id": f"o-race-{round_}-{n}", "store_id": "s-tmall",
                     "consumer_id": world.consumer.id, "amount_cents": 100,
                     "paid_at": (START - timedelta(days=n % 2)).isoformat()})
                for n in range(4)]

        def open_on(order: Order) -> object:
            return wos.open_work_order(ctx, world.consumer, order_id=order.id,
                                       category=Category.DAMAGED, claim="broken",
                                       requested_remedy=None)
        results = race(
            partial(open_on, fresh[0]), partial(open_on, fresh[1]),
            partial(wos.withdraw, ctx, world.consumer, opened[0]),
            partial(wos.withdraw, ctx, world.consumer, opened[1]),
            partial(catalog.import_orders, ctx, rows, batch_size=2),
            partial(rollups.rebuild, ctx))
        assert [code_of(r) for r in results] == ["ok"] * 6
        assert stored(pg.container.engine) == recomputed(ctx, pg.container.engine)
    assert stored(pg.container.engine).window("s-tmall", NOV_1, NOV_3)[0] == Counters(
        opened=8, paid_orders=32)


def test_a_writer_during_a_rebuild_is_counted_once(
        ctx: ServiceContext, container: Container) -> None:
    """An order registered while a rebuild runs (here: after it read the work orders,
    before it reads the orders), for a store and day the rollups do not have yet, is
    counted once: the writer waits for the rebuild to commit, then adds its own."""
    world = make_world(ctx)
    for _ in range(2):
        world.open()
    written = threading.Event()

    def register() -> None:
        catalog.create_order(ctx, None, Order("o-meanwhile", "s-taobao", world.consumer.id,
                                              OrderKind.STANDARD, 100, START))
        written.set()
    writer = threading.Thread(target=register)

    def progress(_: int) -> None:
        if not writer.is_alive() and not written.is_set():
            writer.start()
            written.wait(timeout=1)  # a writer that need not wait is done by now
    with ctx.uow() as uow:
        assert rollups.refill(uow.rollups, progress, page=1) == 2
        uow.commit()
    writer.join(timeout=30)
    assert written.is_set()
    assert stored(container.engine).window("s-taobao", NOV_1, NOV_3) == (
        Counters(paid_orders=1), {})
    assert stored(container.engine) == recomputed(ctx, container.engine)


# ---- random histories -----------------------------------------------------------------------


class History:
    """Drives the services with what Hypothesis draws: opening work orders, every move of
    the parties and the platform (most of them legal in the work order's state, some not),
    order imports, and a clock that moves forward, firing the timers, across days."""

    def __init__(self, ctx: ServiceContext, clock: FixedClock, world: World) -> None:
        self.ctx, self.clock, self.world = ctx, clock, world
        self.ids: list[str] = []
        self.orders = 0
        self.merchant = {"s-tmall": world.agent, "s-taobao": world.other_owner}
        self.owner = {"s-tmall": world.owner, "s-taobao": world.other_owner}
        self.proof = {"s-tmall": world.evidence("agent"),
                      "s-taobao": world.evidence("other_owner")}

    def order(self, store_id: str, kind: OrderKind, paid_minutes_ago: int) -> Order:
        self.orders += 1
        paid_at = self.clock.now() - timedelta(minutes=paid_minutes_ago)
        return catalog.create_order(self.ctx, None, Order(
            f"o-h{self.orders}", store_id, self.world.consumer.id, kind, 10_000, paid_at))

    def open(self, data: st.DataObject) -> None:
        store_id = data.draw(st.sampled_from(sorted(PLATFORMS)))
        kind = data.draw(st.sampled_from([OrderKind.STANDARD] * 4 + [OrderKind.WORRY_FREE]))
        order = self.order(store_id, kind, data.draw(st.integers(0, 4 * 24 * 60)))
        self.ids.append(wos.open_work_order(
            self.ctx, self.world.consumer, order_id=order.id, category=Category.DAMAGED,
            claim="arrived broken", requested_remedy=None).id)

    def advance(self, data: st.DataObject) -> None:
        seconds = data.draw(st.sampled_from([st.integers(1, 3600)] * 2 + [
            st.integers(3600, 30 * 3600)]).flatmap(lambda s: s))
        self.clock.advance(seconds)
        fire_due_timers(self.ctx)

    def import_orders(self, data: st.DataObject) -> None:
        rows = []
        for n in range(data.draw(st.integers(1, 4))):
            self.orders += 1
            taken = data.draw(st.booleans()) and self.orders > 1
            rows.append((n, {
                "id": f"o-h{self.orders - 1 if taken else self.orders}",
                "store_id": data.draw(st.sampled_from(sorted(PLATFORMS))),
                "consumer_id": self.world.consumer.id, "amount_cents": 100,
                "paid_at": (self.clock.now() - timedelta(
                    minutes=data.draw(st.integers(0, 3 * 24 * 60)))).isoformat()}))
        catalog.import_orders(self.ctx, rows, batch_size=data.draw(st.integers(1, 3)))

    def act(self, data: st.DataObject) -> None:
        recent = data.draw(st.integers(0, 3)) > 0  # mostly the newest, still open ones
        wo_id = data.draw(st.sampled_from(self.ids[-8:] if recent else self.ids))
        wo = wos.get_work_order(self.ctx, self.world.triage, wo_id)
        w, ctx, now = self.world, self.ctx, self.clock.now()
        merchant, owner = self.merchant[wo.store_id], self.owner[wo.store_id]
        refund = Remedy(RemedyType.REFUND, 1_000)
        menu: dict[State, list[Callable[[], object]]] = {
            State.AWAITING_MERCHANT: [
                lambda: wos.log_contact(
                    ctx, merchant, wo_id, channel=ContactChannel.PHONE, contacted_at=now,
                    outcome=ContactOutcome.REACHED, summary="called", evidence_ids=()),
                lambda: wos.log_contact(
                    ctx, merchant, wo_id, channel=ContactChannel.PHONE, contacted_at=now,
                    outcome=ContactOutcome.UNREACHABLE, summary="no answer",
                    evidence_ids=(self.proof[wo.store_id],)),
                *(partial(wos.reply, ctx, merchant, wo_id, option=option,
                          statement="our answer", evidence_ids=(),
                          agreement=refund if option is ReplyOption.RESOLVED_AGREED else None)
                  for option in ReplyOption),
                *(partial(self.work_the_case, wo_id, wo.store_id, option)
                  for option in ReplyOption for _ in range(2))],
            State.AWAITING_CONSUMER: [
                lambda: wos.respond_as_consumer(ctx, w.consumer, wo_id, accept=True,
                                                statement=None),
                lambda: wos.respond_as_consumer(ctx, w.consumer, wo_id, accept=False,
                                                statement="not enough")],
            State.AWAITING_VERIFICATION: [
                partial(wos.verify, ctx, w.verifier, wo_id, outcome=outcome,
                        rationale="checked") for outcome in VerificationOutcome],
            State.IN_ADJUDICATION: [
                lambda: wos.judge(ctx, w.adjudicator, wo_id, ruling=Ruling.FOR_CONSUMER,
                                  rationale="damaged", remedy=refund),
                lambda: wos.judge(ctx, w.adjudicator, wo_id, ruling=Ruling.FOR_MERCHANT,
                                  rationale="fine", remedy=None)],
            State.JUDGED: [lambda: wos.appeal(ctx, owner, wo_id, statement="wrong",
                                              evidence_ids=())],
            State.UNDER_APPEAL: [
                partial(wos.decide_appeal, ctx, w.supervisor, wo_id, decision=decision,
                        rationale="decided") for decision in AppealDecision],
            State.WORRY_FREE: [lambda: wos.settle(ctx, w.triage, wo_id, amount_cents=500,
                                                  rationale="goodwill")],
        }
        moves = menu.get(wo.state, [])
        if not moves or data.draw(st.integers(0, 5)) == 0:
            moves = [lambda: wos.withdraw(ctx, w.consumer, wo_id)]
        move: Callable[[], object] = data.draw(st.sampled_from(moves))
        with contextlib.suppress(CollabdeskError):
            move()  # refused (a missing contact, a closed window...): it changes nothing

    def work_the_case(self, wo_id: str, store_id: str, option: ReplyOption) -> None:
        """The contacts the option needs, then the reply."""
        merchant, now = self.merchant[store_id], self.clock.now()
        unreachable = option is ReplyOption.UNRESOLVED_UNREACHABLE
        for _ in range(2 if unreachable else 1):
            wos.log_contact(
                self.ctx, merchant, wo_id, channel=ContactChannel.PHONE, contacted_at=now,
                outcome=ContactOutcome.UNREACHABLE if unreachable else ContactOutcome.REACHED,
                summary="called", evidence_ids=(self.proof[store_id],) if unreachable else ())
        wos.reply(self.ctx, merchant, wo_id, option=option, statement="our answer",
                  evidence_ids=(), agreement=Remedy(RemedyType.REFUND, 1_000)
                  if option is ReplyOption.RESOLVED_AGREED else None)

    def step(self, data: st.DataObject) -> None:
        what = data.draw(st.sampled_from(["open", "act", "act", "act", "act", "advance",
                                          "import"]))
        if what == "open" or not self.ids:
            self.open(data)
        elif what == "act":
            self.act(data)
        elif what == "advance":
            self.advance(data)
        else:
            self.import_orders(data)


def test_random_histories_keep_the_rollups_equal_to_the_facts(
        container: Container, clock: FixedClock) -> None:
    world = make_world(container.ctx)
    history = History(container.ctx, clock, world)

    @settings(max_examples=6, deadline=None, database=None,
              suppress_health_check=[HealthCheck.too_slow])
    @given(st.data())
    def run(data: st.DataObject) -> None:
        # Each example starts from rollups rebuilt from the facts so far, so what it
        # finds is its own doing.
        rollups.rebuild(container.ctx)
        for _ in range(data.draw(st.integers(30, 70))):
            history.step(data)
        first = (START - timedelta(days=5)).date()
        assert_rollups_match_the_facts(container, world,
                                       (first, clock.now().date() + timedelta(days=1)))
        assert rollups.rebuild(container.ctx) == len(history.ids)
        assert stored(container.engine) == recomputed(container.ctx, container.engine)

    run()
