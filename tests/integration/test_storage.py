"""The SQL adapter keeps the domain's invariants, on SQLite and on PostgreSQL."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect, text
from sqlalchemy.exc import DBAPIError, IntegrityError, StatementError

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db import tables
from collabdesk.adapters.db.engine import migrate
from collabdesk.adapters.db.mapping import work_order_values
from collabdesk.bootstrap import Container
from collabdesk.domain.errors import ConcurrentUpdate, DuplicateOpenWorkOrder
from collabdesk.domain.model import Appeal, Judgment, Reply, WorkOrder
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import (
    AppealDecision,
    Category,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
)
from collabdesk.domain.violations import Severity, ViolationDecision, ViolationKind
from collabdesk.services import violations
from collabdesk.services import work_orders as wos
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import WorkOrderQuery
from tests.builders import World, make_world
from tests.conftest import START

BEIJING = timezone(timedelta(hours=8))
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


def stored(ctx: ServiceContext, wo_id: str) -> WorkOrder:
    got = ctx.read(lambda uow: uow.work_orders.get(wo_id))
    assert got is not None
    return got


def judged_for_consumer(ctx: ServiceContext, world: World, clock: FixedClock,
                        remedy_cents: int = 5_000) -> str:
    wo_id = world.open()
    world.contact(wo_id, with_evidence=True)
    wos.reply(ctx, world.agent, wo_id, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
              statement="no agreement on the amount", agreement=None,
              evidence_ids=(world.evidence("agent", "chat log"),))
    clock.advance(3600)
    wos.judge(ctx, world.adjudicator, wo_id, ruling=Ruling.FOR_CONSUMER,
              rationale="the photos show the damage",
              remedy=Remedy(RemedyType.REFUND, remedy_cents, "full refund"))
    return wo_id


# ---- round trips ---------------------------------------------------------------------------


def test_a_work_order_with_contacts_reply_judgment_and_appeal_round_trips(
        ctx: ServiceContext, clock: FixedClock) -> None:
    world = make_world(ctx)
    wo_id = judged_for_consumer(ctx, world, clock)
    wos.appeal(ctx, world.owner, wo_id, statement="the consumer broke it",
               evidence_ids=(world.evidence("owner", "courier report"),))
    final = wos.decide_appeal(ctx, world.supervisor, wo_id,
                              decision=AppealDecision.OVERTURNED, rationale="courier proof")
    got = stored(ctx, wo_id)
    assert got == final
    assert len(got.contacts) == 1
    assert got.contacts[0].evidence_ids
    assert got.reply is not None
    assert got.reply.option is ReplyOption.UNRESOLVED_NO_AGREEMENT
    assert got.judgment is not None
    assert got.judgment.remedy == Remedy(RemedyType.REFUND, 5_000, "full refund")
    assert got.appeal is not None
    assert got.appeal.decision is AppealDecision.OVERTURNED
    assert got.state is State.JUDGED
    assert not got.counts_as_dispute
    assert got.version == 5  # contact, reply, judgment, appeal, decision


def test_times_come_back_timezone_aware_in_utc_and_equal(
        ctx: ServiceContext, clock: FixedClock) -> None:
    world = make_world(ctx)
    wo_id = world.open()
    local = datetime(2026, 11, 2, 17, 30, 15, 123456, tzinfo=BEIJING)  # 09:30:15 UTC
    wo = stored(ctx, wo_id)
    wo.state_entered_at = local
    wo.timed_out_at = local + timedelta(hours=1)
    wo.reply = Reply(ReplyOption.NOT_RELATED, "wrong shop", None, (), local, world.agent.id)
    wo.judgment = Judgment(Ruling.FOR_CONSUMER, "r", Remedy(RemedyType.REFUND, 1), local,
                           world.adjudicator.id)
    wo.appeal = Appeal("s", (), local, world.owner.id, AppealDecision.UPHELD, "r",
                       local + timedelta(days=1), world.supervisor.id)
    with ctx.uow() as uow:
        uow.work_orders.save(wo)
        uow.commit()
    got = stored(ctx, wo_id)
    assert got == wo
    assert got.reply is not None
    assert got.judgment is not None
    assert got.appeal is not None
    assert got.appeal.decided_at is not None
    assert got.timed_out_at is not None
    moments = [got.created_at, got.state_entered_at, got.timed_out_at, got.reply.replied_at,
               got.judgment.judged_at, got.appeal.appealed_at, got.appeal.decided_at]
    assert all(m.utcoffset() == timedelta(0) for m in moments)
    assert got.state_entered_at == datetime(2026, 11, 2, 9, 30, 15, 123456, tzinfo=UTC)
    assert got.created_at == START


def test_a_naive_datetime_is_refused_on_the_way_in(ctx: ServiceContext) -> None:
    world = make_world(ctx)
    wo = stored(ctx, world.open())
    wo.timed_out_at = datetime(2026, 11, 3, 8, 0)
    with pytest.raises(StatementError, match="naive datetime"), ctx.uow() as uow:
        uow.work_orders.save(wo)


def test_money_stays_integer_cents_beyond_float_precision(
        ctx: ServiceContext, clock: FixedClock) -> None:
    amount = 2**53 + 1  # the first integer a float cannot hold
    world = make_world(ctx)
    order = world.order(amount_cents=amount)
    opened = wos.open_work_order(ctx, world.consumer, order_id=order.id,
                                 category=Category.REFUND, claim="refund stuck",
                                 requested_remedy=Remedy(RemedyType.REFUND, amount))
    world.contact(opened.id)
    wos.reply(ctx, world.agent, opened.id, option=ReplyOption.RESOLVED_AGREED,
              statement=None, agreement=Remedy(RemedyType.REFUND, amount - 2), evidence_ids=())
    got = stored(ctx, opened.id)
    stored_order = ctx.read(lambda uow: uow.orders.get(order.id))
    assert stored_order is not None
    assert got.reply is not None
    assert got.reply.agreement is not None
    assert got.requested_remedy is not None
    cents = [stored_order.amount_cents, got.order_amount_cents,
             got.requested_remedy.amount_cents, got.reply.agreement.amount_cents]
    assert cents == [amount, amount, amount, amount - 2]
    assert all(type(c) is int for c in cents)


# ---- guarded writes ---------------------------------------------------------------------------


def test_a_stale_save_is_refused_and_changes_nothing(ctx: ServiceContext) -> None:
    world = make_world(ctx)
    wo_id = world.open()
    winner, stale = stored(ctx, wo_id), stored(ctx, wo_id)
    winner.sla_overdue = True
    with ctx.uow() as uow:
        uow.work_orders.save(winner)
        uow.commit()
    stale.evidence_waived = True
    with ctx.uow() as uow:
        with pytest.raises(ConcurrentUpdate):
            uow.work_orders.save(stale)
        uow.commit()  # even committed, the refused update wrote nothing
    got = stored(ctx, wo_id)
    assert (got.sla_overdue, got.evidence_waived) == (True, False)
    assert got.version == 1
    assert stale.version == 0


def test_the_database_allows_one_open_work_order_per_order(ctx: ServiceContext) -> None:
    world = make_world(ctx)
    first = stored(ctx, world.open())
    second = replace(first, id=first.id + "b", contacts=[], events=[])  # has_open bypassed
    closed = replace(first, id=first.id + "c", state=State.WITHDRAWN, contacts=[], events=[])
    with ctx.uow() as uow, pytest.raises(DuplicateOpenWorkOrder):
        uow.work_orders.add(second)  # no savepoint: the use case ends, its work undone
    with ctx.uow() as uow:
        uow.work_orders.add(closed)  # closed ones do not count
        uow.commit()
    assert ctx.read(lambda uow: uow.work_orders.get(second.id)) is None
    assert stored(ctx, closed.id).state is State.WITHDRAWN


def test_the_open_work_order_index_holds_against_raw_sql(
        ctx: ServiceContext, container: Container) -> None:
    world = make_world(ctx)
    first = stored(ctx, world.open())
    row = {**work_order_values(replace(first, id="wo_raw")), "version": 0}
    with container.engine.connect() as conn, pytest.raises(IntegrityError):
        conn.execute(tables.work_orders.insert().values(**row))


# ---- the points ledger ---------------------------------------------------------------------


def test_the_points_ledger_refuses_update_and_delete_in_the_database(
        ctx: ServiceContext, container: Container, clock: FixedClock) -> None:
    world = make_world(ctx)
    wo_id = judged_for_consumer(ctx, world, clock)
    violation = violations.record_violation(
        ctx, world.adjudicator, store_id="s-tmall", work_order_id=wo_id,
        kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.SERIOUS,
        rationale="edited screenshot", evidence_ids=())
    for sql in ("UPDATE points_ledger SET points = 0", "DELETE FROM points_ledger"):
        with container.engine.begin() as conn, pytest.raises(DBAPIError, match="append-only"):
            conn.execute(text(sql))
    statement = violations.points(ctx, world.owner, "s-tmall", START.year)
    assert [e.points for e in statement.entries] == [48]
    violations.appeal_violation(ctx, world.owner, violation.id, "the screenshot is real")
    violations.decide_violation(ctx, world.supervisor, violation.id,
                                ViolationDecision.REVOKED, "original file checked")
    statement = violations.points(ctx, world.owner, "s-tmall", START.year)
    assert [e.points for e in statement.entries] == [48, -48]  # revoked by a new line
    assert statement.total == 0


# ---- migrations -----------------------------------------------------------------------------


def test_the_migration_builds_an_empty_database_and_reapplying_it_changes_nothing(
        empty_database: Engine) -> None:
    assert inspect(empty_database).get_table_names() == []
    migrate(empty_database)
    created = set(inspect(empty_database).get_table_names())
    assert created == {t.name for t in tables.metadata.sorted_tables} | {"alembic_version"}
    migrate(empty_database)  # a second start is a no-op
    assert set(inspect(empty_database).get_table_names()) == created
    with empty_database.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).all() == [
            ("0004",)]
        assert compare_metadata(MigrationContext.configure(conn), tables.metadata) == []


# ---- queries ---------------------------------------------------------------------------------


def test_list_pages_by_due_at_then_id_with_no_deadline_last(
        ctx: ServiceContext, clock: FixedClock) -> None:
    world = make_world(ctx)
    ids = [world.open(kind=OrderKind.WORRY_FREE)]
    ids += [world.open(), world.open()]  # same due_at: the id breaks the tie
    clock.advance(3600)
    ids += [world.open(), world.open(kind=OrderKind.WORRY_FREE)]
    clock.set(START - timedelta(minutes=30))
    ids += [world.open()]
    everything = [stored(ctx, i) for i in ids]
    expected = [w.id for w in sorted(everything, key=lambda w: (w.due_at or FAR_FUTURE, w.id))]
    assert [w.due_at for w in sorted(everything, key=lambda w: expected.index(w.id))][-2:] == [
        None, None]

    def page_after(after: tuple[datetime | None, str] | None) -> list[WorkOrder]:
        return ctx.read(lambda uow: uow.work_orders.query(WorkOrderQuery(limit=2, after=after)))

    pages: list[list[str]] = []
    after: tuple[datetime | None, str] | None = None
    while True:
        page = page_after(after)
        if not page:
            break
        pages.append([w.id for w in page])
        after = (page[-1].due_at, page[-1].id)
    assert [i for page in pages for i in page] == expected
    assert [len(p) for p in pages] == [2, 2, 2]

    due_soon = ctx.read(lambda uow: uow.work_orders.query(
        WorkOrderQuery(limit=10, due_before=START + timedelta(hours=24, minutes=1))))
    assert [w.id for w in due_soon] == expected[:3]


def test_what_a_work_order_is_opened_with_is_never_rewritten(ctx: ServiceContext) -> None:
    """A save sets only what a change can move: the opening facts (and the primary key,
    whose rewrite makes SQLite re-check every child table's foreign keys) stay as stored."""
    world = make_world(ctx)
    wo_id = world.open()
    changed = stored(ctx, wo_id)
    changed.claim = "rewritten"
    changed.sla_overdue = True
    with ctx.uow() as uow:
        uow.work_orders.save(changed)
        uow.commit()
    got = stored(ctx, wo_id)
    assert (got.claim, got.sla_overdue, got.version) == ("arrived broken", True, 1)
