"""The audit chains are anchored on their work order, so `audit verify` finds history that
was cut short as surely as history that was edited; on SQLite and PostgreSQL, and on a
database migrated from before the anchors existed."""

from __future__ import annotations

from alembic import command
from sqlalchemy import Engine, text

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db.engine import alembic_config, migrate
from collabdesk.adapters.db.uow import SqlUnitOfWorkFactory
from collabdesk.bootstrap import Container
from collabdesk.domain.audit import ChainHead, event_hash
from collabdesk.domain.policy import Policy
from collabdesk.domain.values import NoteVisibility
from collabdesk.services import work_orders as wos
from collabdesk.services.audit import verify_chains
from collabdesk.services.context import ServiceContext
from tests.builders import World, make_world
from tests.conftest import START
from tests.fakes import FakeEvidenceStore


def case_with_both_chains(ctx: ServiceContext) -> tuple[World, str]:
    world = make_world(ctx)
    wo_id = world.open()
    world.contact(wo_id)
    wos.add_note(ctx, world.verifier, wo_id, text="internal", visibility=NoteVisibility.PLATFORM,
                 evidence_ids=())
    wos.add_note(ctx, world.verifier, wo_id, text="internal 2",
                 visibility=NoteVisibility.PLATFORM, evidence_ids=())
    return world, wo_id


def run_sql(container: Container, sql: str, **params: object) -> int:
    with container.engine.begin() as conn:
        return int(conn.execute(text(sql), params).rowcount)


def test_an_untouched_history_verifies(container: Container) -> None:
    case_with_both_chains(container.ctx)
    report = verify_chains(container.ctx)
    assert (report.checked, report.broken) == (1, [])
    assert report.events == 2 + 2  # opened, contact; two platform notes


def test_deleting_the_newest_event_is_found(container: Container) -> None:
    _, wo_id = case_with_both_chains(container.ctx)
    assert run_sql(container, "DELETE FROM events WHERE work_order_id = :w AND "
                   "visibility = 'all' AND seq = 2", w=wo_id) == 1
    (broken,) = verify_chains(container.ctx).broken
    assert broken == (wo_id, "the chain ends at event 1 but the work order records 2 "
                             "events: the newest were deleted")


def test_deleting_the_newest_platform_only_event_is_found(container: Container) -> None:
    _, wo_id = case_with_both_chains(container.ctx)
    assert run_sql(container, "DELETE FROM events WHERE work_order_id = :w AND "
                   "visibility = 'platform' AND seq = 2", w=wo_id) == 1
    (broken,) = verify_chains(container.ctx).broken
    assert broken[0] == wo_id
    assert broken[1].startswith("platform chain: the chain ends at event 1")


def test_deleting_a_whole_chain_is_found(container: Container) -> None:
    _, wo_id = case_with_both_chains(container.ctx)
    run_sql(container, "DELETE FROM events WHERE work_order_id = :w AND "
            "visibility = 'platform'", w=wo_id)
    (broken,) = verify_chains(container.ctx).broken
    assert "platform chain: the chain ends at event 0" in broken[1]


def test_an_appended_forged_event_is_found(container: Container) -> None:
    _, wo_id = case_with_both_chains(container.ctx)
    with container.engine.begin() as conn:
        last = conn.execute(text("SELECT hash FROM events WHERE work_order_id = :w AND "
                                 "visibility = 'all' AND seq = 2"), {"w": wo_id}).scalar_one()
        at, data = "2026-11-02T09:00:00Z", '{"forged":true}'
        digest = event_hash(wo_id, 3, at, "x", "replied", data, last)
        conn.execute(text(
            "INSERT INTO events (work_order_id, seq, at, actor_id, type, data, prev_hash, "
            "hash, visibility) VALUES (:w, 3, :at, 'x', 'replied', :d, :p, :h, 'all')"),
            {"w": wo_id, "at": at, "d": data, "p": last, "h": digest})
    (broken,) = verify_chains(container.ctx).broken
    assert broken[1] == ("the chain's newest event (3) does not match the head the work "
                         "order records (event 2)")


def test_an_anchor_that_was_moved_back_is_found(container: Container) -> None:
    _, wo_id = case_with_both_chains(container.ctx)
    run_sql(container, "UPDATE work_orders SET chain_length = 1 WHERE id = :w", w=wo_id)
    assert verify_chains(container.ctx).broken[0][0] == wo_id


def test_a_database_from_before_the_anchors_is_anchored_by_its_migration(
        empty_database: Engine) -> None:
    engine = empty_database
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0001")
    # Two events as the old code wrote them (hashed on the bare work order id).
    first = event_hash("wo-old", 1, "2026-11-01T00:00:00Z", "c", "opened", "{}", None)
    second = event_hash("wo-old", 2, "2026-11-01T01:00:00Z", "c", "withdrawn", "{}", first)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO stores VALUES ('s', 'S', 'tmall', '2026-01-01')"))
        conn.execute(text("INSERT INTO orders VALUES ('o', 's', 'c', 'standard', 1, "
                          "'2026-01-01', '2026-01-01')"))
        conn.execute(text(
            "INSERT INTO work_orders (id, order_id, store_id, consumer_id, order_kind, "
            "order_amount_cents, category, claim, state, is_open, created_at, created_by, "
            "state_entered_at, evidence_waived, counts_as_dispute, sla_overdue, version) "
            "VALUES ('wo-old', 'o', 's', 'c', 'standard', 1, 'other', 'x', 'withdrawn', false, "
            "'2026-11-01', 'c', '2026-11-01', false, false, false, 1)"))
        for seq, at, type_, prev, digest in ((1, "2026-11-01T00:00:00Z", "opened", None,
                                              first),
                                             (2, "2026-11-01T01:00:00Z", "withdrawn", first,
                                              second)):
            conn.execute(text(
                "INSERT INTO events (work_order_id, seq, at, actor_id, type, data, "
                "prev_hash, hash) VALUES ('wo-old', :s, :at, 'c', :t, '{}', :p, :h)"),
                {"s": seq, "at": at, "t": type_, "p": prev, "h": digest})
    migrate(engine)
    ctx = ServiceContext(SqlUnitOfWorkFactory(engine), FixedClock(START), Policy(),
                         FakeEvidenceStore())
    assert ctx.read(lambda uow: uow.events.anchors(None, 10)) == [
        ("wo-old", {"all": ChainHead(2, second), "platform": ChainHead(0, None)})]
    assert verify_chains(ctx).broken == []
