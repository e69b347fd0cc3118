"""The batched deadline runner on both databases: due order, lateness, one statement per
table per batch, a failing timer held back alone, and (PostgreSQL) work orders another
transaction holds skipped rather than waited for."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, event, select, text

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db import tables
from collabdesk.bootstrap import Container, build
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.states import State
from collabdesk.services import work_orders as wos
from collabdesk.services.context import ServiceContext
from collabdesk.services.timers import fire_due_timers
from collabdesk.settings import Settings
from tests.builders import make_world
from tests.conftest import START

DAY = timedelta(hours=24)


def _timer_rows(engine: Engine, kind: str) -> list[tuple[str, datetime, datetime | None]]:
    c = tables.timers.c
    with engine.connect() as conn:
        rows = conn.execute(select(c.work_order_id, c.due_at, c.fired_at)
                            .where(c.kind == kind).order_by(c.due_at)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def test_after_downtime_overdue_timers_fire_oldest_first_and_record_how_late(
        ctx: ServiceContext, clock: FixedClock, container: Container) -> None:
    world = make_world(ctx)
    opened = []
    for hours in (0, 1, 2):  # due at START + 24 h, + 25 h, + 26 h
        clock.set(START + timedelta(hours=hours))
        opened.append(world.open())
    clock.set(START + timedelta(hours=71))  # before the first adjudication SLA falls due
    small = replace(ctx, timer_batch_size=1)  # one timer per batch: the order shows
    heard: list[tuple[str, timedelta]] = []
    assert fire_due_timers(small, observe=lambda timers, at: heard.extend(
        (t.kind, at - t.due_at) for t in timers)) == 9  # 2 reminders + 1 timeout each
    assert [late for kind, late in heard if kind == "reply_timeout"] == [
        timedelta(hours=47), timedelta(hours=46), timedelta(hours=45)]
    assert len(heard) == 9

    timeouts = _timer_rows(container.engine, "reply_timeout")
    assert [wo_id for wo_id, _, _ in timeouts] == opened
    assert [fired - due for _, due, fired in timeouts if fired] == [
        timedelta(hours=47), timedelta(hours=46), timedelta(hours=45)]
    for wo_id, due, _ in timeouts:  # the effect is dated when it was due, not when fired
        wo = wos.get_work_order(ctx, world.triage, wo_id)
        assert (wo.state, wo.timed_out_at) == (State.IN_ADJUDICATION, due)


def test_a_batch_writes_each_table_with_one_statement(
        ctx: ServiceContext, clock: FixedClock, container: Container) -> None:
    world = make_world(ctx)
    for _ in range(30):
        world.open()
    clock.set(START + DAY - timedelta(hours=1))
    assert fire_due_timers(ctx) == 60  # both reminders of each
    statements: list[str] = []

    def count(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        words = [*statement.split(), "", ""]  # "INSERT INTO events", "UPDATE timers"
        statements.append(f"{words[0]} {words[2] if words[1] == 'INTO' else words[1]}")

    event.listen(container.engine, "before_cursor_execute", count)
    try:
        clock.set(START + DAY)
        assert fire_due_timers(ctx) == 30
    finally:
        event.remove(container.engine, "before_cursor_execute", count)
    # One batch of 30 timeouts, then an empty look: never a statement per timer (the
    # store's staff and its webhooks are read once, whatever the batch's size).
    assert len(statements) <= 15, statements
    assert statements.count("INSERT events") == 1
    assert statements.count("SELECT webhooks.id,") <= 1
    assert statements.count("UPDATE work_orders") == 1
    for wo in wos.list_work_orders(ctx, world.triage, wos.ListFilters(), None, 100):
        assert wo.state is State.IN_ADJUDICATION


def test_a_timer_whose_effect_fails_is_held_back_alone(
        ctx: ServiceContext, clock: FixedClock, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    world = make_world(ctx)
    good, bad, also_good = world.open(), world.open(), world.open()
    real = WorkOrder.time_out

    def time_out(self: WorkOrder, *args: object, **kwargs: object) -> bool:
        if self.id == bad:
            raise RuntimeError("a rule crashed")
        return real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(WorkOrder, "time_out", time_out)
    clock.set(START + DAY)
    with caplog.at_level(logging.ERROR, logger="collabdesk.timers"):
        assert fire_due_timers(ctx) == 8  # all six reminders, two of the three timeouts
    states = {i: wos.get_work_order(ctx, world.triage, i).state
              for i in (good, bad, also_good)}
    assert states == {good: State.IN_ADJUDICATION, bad: State.AWAITING_MERCHANT,
                      also_good: State.IN_ADJUDICATION}
    assert any(bad in r.getMessage() for r in caplog.records)
    monkeypatch.setattr(WorkOrder, "time_out", real)
    assert fire_due_timers(ctx) == 1  # the held-back timer is still due, and fires now
    assert wos.get_work_order(ctx, world.triage, bad).state is State.IN_ADJUDICATION


@pytest.fixture
def pg_container(postgres_database_url: str, tmp_path: Path) -> Iterator[Container]:
    container = build(Settings(database_url=postgres_database_url, data_dir=tmp_path),
                      clock=FixedClock(START))
    yield container
    container.engine.dispose()


@pytest.mark.postgres
def test_a_runner_skips_a_work_order_another_transaction_holds(
        pg_container: Container) -> None:
    ctx = pg_container.ctx
    world = make_world(ctx)
    held, free = world.open(), world.open()
    with pg_container.engine.connect() as other:
        other.execute(text("SELECT id FROM work_orders WHERE id = :i FOR UPDATE"),
                      {"i": held})
        # Not a wait: the held work order's three timers are left for a later batch.
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(fire_due_timers, ctx, START + DAY).result(timeout=20) == 3
        assert wos.get_work_order(ctx, world.triage, free).state is State.IN_ADJUDICATION
        other.rollback()
    assert wos.get_work_order(ctx, world.triage, held).state is State.AWAITING_MERCHANT
    assert fire_due_timers(ctx, now=START + DAY) == 3
    assert wos.get_work_order(ctx, world.triage, held).state is State.IN_ADJUDICATION
