"""Races decided by the database: threads released together by a barrier, many rounds.

Each timed or competing transition happens exactly once; the loser gets a domain error
(or the runner a no-op), never a database error and never a half-applied change.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

import pytest
from sqlalchemy import text

from collabdesk.adapters.clock import FixedClock
from collabdesk.bootstrap import Container, build
from collabdesk.domain.errors import CollabdeskError, DuplicateOpenWorkOrder
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import Note
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import (
    Actor,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    Remedy,
    RemedyType,
)
from collabdesk.services import work_orders as wos
from collabdesk.services.audit import verify_chains
from collabdesk.services.timers import fire_due_timers
from collabdesk.settings import Settings
from tests.builders import World, make_world
from tests.conftest import START

ROUNDS = 30
DUE = START + timedelta(hours=24)

log = logging.getLogger(__name__)


@dataclass
class Arena:
    container: Container
    clock: FixedClock
    world: World


def _arena(database_url: str, data_dir: Path) -> Iterator[Arena]:
    clock = FixedClock(START)
    container = build(Settings(database_url=database_url, data_dir=data_dir), clock=clock)
    try:
        yield Arena(container, clock, make_world(container.ctx))
    finally:
        container.engine.dispose()


@pytest.fixture
def pg(postgres_database_url: str, tmp_path: Path) -> Iterator[Arena]:
    yield from _arena(postgres_database_url, tmp_path)


@pytest.fixture
def sqlite(tmp_path: Path) -> Iterator[Arena]:
    yield from _arena(f"sqlite:///{tmp_path / 'race.db'}", tmp_path)


@pytest.fixture(autouse=True)
def _nothing_failed_quietly(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The timer runner logs and skips a timer whose effect crashed (a deadlock, say):
    a race that only shows up in the log is still a failure."""
    yield
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


def race(*actions: Callable[[], object]) -> list[object]:
    """Run the actions in threads released at the same instant; results or exceptions."""
    barrier = threading.Barrier(len(actions))
    results: list[object] = [None] * len(actions)

    def run(i: int, action: Callable[[], object]) -> None:
        barrier.wait()
        try:
            results[i] = action()
        except Exception as exc:  # collected and judged by the test
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i, a)) for i, a in enumerate(actions)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
        assert not thread.is_alive(), "a racer hung"
    return results


def code_of(result: object) -> str:
    """`ok` for a normal result, the domain error's code, or fail on anything else."""
    if isinstance(result, CollabdeskError):
        return result.code
    if isinstance(result, BaseException):
        raise AssertionError(f"not a domain error: {result!r}") from result
    return "ok"


def event_types(arena: Arena, wo_id: str) -> list[str]:
    return [e.type for e in wos.list_events(arena.container.ctx, arena.world.triage, wo_id,
                                            (0, 0), 1000)]


def opened_and_contacted(arena: Arena) -> str:
    arena.clock.set(START)
    wo_id = arena.world.open()
    arena.world.contact(wo_id)
    return wo_id


def reply_as(arena: Arena, actor: Actor, wo_id: str, option: ReplyOption) -> WorkOrder:
    agreement = Remedy(RemedyType.REFUND, 1_000) if option is ReplyOption.RESOLVED_AGREED \
        else None
    return wos.reply(arena.container.ctx, actor, wo_id, option=option,
                     statement="talked it through", agreement=agreement, evidence_ids=())


def assert_chains_intact(arena: Arena) -> None:
    assert verify_chains(arena.container.ctx).broken == []


@pytest.mark.postgres
def test_a_reply_and_the_timeout_at_the_same_instant_never_both_win(pg: Arena) -> None:
    ctx = pg.container.ctx
    winners: Counter[str] = Counter()
    for _ in range(ROUNDS):
        wo_id = opened_and_contacted(pg)
        assert fire_due_timers(ctx, now=DUE - timedelta(seconds=1)) == 2  # the reminders
        pg.clock.set(DUE - timedelta(seconds=1))  # the reply is still legal...
        replied, fired = race(  # ...while the runner processes the timeout as of DUE
            partial(reply_as, pg, pg.world.agent, wo_id, ReplyOption.RESOLVED_AGREED),
            partial(fire_due_timers, ctx, now=DUE))
        got = wos.get_work_order(ctx, pg.world.triage, wo_id)
        types = event_types(pg, wo_id)
        if code_of(replied) == "ok":
            winners["reply"] += 1
            assert fired == 0
            assert got.state is State.AWAITING_CONSUMER
            assert got.reply is not None
            assert got.timed_out_at is None
            assert not got.evidence_waived
            assert "timed_out" not in types
        else:
            winners["timeout"] += 1
            assert code_of(replied) == "invalid_transition"
            assert fired == 1
            assert got.state is State.IN_ADJUDICATION
            assert got.reply is None
            assert got.timed_out_at == DUE
            assert got.evidence_waived
            assert "replied" not in types
        assert types.count("replied") + types.count("timed_out") == 1
    assert_chains_intact(pg)
    assert sum(winners.values()) == ROUNDS
    log.info("%d rounds, winners: %s", ROUNDS, dict(winners))


def _two_replies(arena: Arena) -> Counter[str]:
    ctx = arena.container.ctx
    winners: Counter[str] = Counter()
    for _ in range(ROUNDS):
        wo_id = opened_and_contacted(arena)
        arena.clock.set(START + timedelta(minutes=5))
        agreed, no_deal = race(
            partial(reply_as, arena, arena.world.agent, wo_id, ReplyOption.RESOLVED_AGREED),
            partial(reply_as, arena, arena.world.owner, wo_id,
                    ReplyOption.UNRESOLVED_NO_AGREEMENT))
        codes = sorted([code_of(agreed), code_of(no_deal)])
        assert codes == ["invalid_transition", "ok"]
        got = wos.get_work_order(ctx, arena.world.triage, wo_id)
        assert got.reply is not None
        if code_of(agreed) == "ok":
            winners["resolved_agreed"] += 1
            assert got.state is State.AWAITING_CONSUMER
            assert got.reply.option is ReplyOption.RESOLVED_AGREED
        else:
            winners["unresolved_no_agreement"] += 1
            assert got.state is State.IN_ADJUDICATION
            assert got.reply.option is ReplyOption.UNRESOLVED_NO_AGREEMENT
        assert event_types(arena, wo_id).count("replied") == 1
        assert got.version == 2  # contact, then one reply
    assert_chains_intact(arena)
    return winners


@pytest.mark.postgres
def test_of_two_different_replies_exactly_one_succeeds(pg: Arena) -> None:
    log.info("postgresql: %s", dict(_two_replies(pg)))


def test_sqlite_writers_serialise_so_of_two_replies_exactly_one_succeeds(sqlite: Arena) -> None:
    log.info("sqlite: %s", dict(_two_replies(sqlite)))


@pytest.mark.postgres
def test_two_timer_runners_fire_each_timer_exactly_once(pg: Arena) -> None:
    ctx = pg.container.ctx
    split: Counter[str] = Counter()
    for _ in range(ROUNDS):
        pg.clock.set(START)
        wo_ids = [pg.world.open(), pg.world.open()]
        first, second = race(partial(fire_due_timers, ctx, now=DUE),
                             partial(fire_due_timers, ctx, now=DUE))
        assert code_of(first) == code_of(second) == "ok"
        assert isinstance(first, int)
        assert isinstance(second, int)
        assert first + second == 6  # per work order: two reminders and the timeout
        split[f"{max(first, second)}-{min(first, second)}"] += 1
        for wo_id in wo_ids:
            assert event_types(pg, wo_id).count("timed_out") == 1
            kinds = Counter(d.kind for d in wos.list_deliveries(ctx, pg.world.triage, wo_id)
                            if d.channel == "inbox")
            assert kinds == {"work_order_created": 1, "reminder": 2, "timeout": 1}
        with pg.container.engine.connect() as conn:
            counts = conn.execute(text(
                "SELECT kind, count(*) FROM inbox WHERE work_order_id IN (:a, :b) "
                "GROUP BY kind"), {"a": wo_ids[0], "b": wo_ids[1]}).all()
        assert dict(counts) == {"work_order_created": 2, "reminder": 4, "timeout": 2}
    assert fire_due_timers(ctx, now=DUE) == 0
    assert_chains_intact(pg)
    log.info("%s rounds, fired (more-fewer): %s", ROUNDS, dict(split))


@pytest.mark.postgres
def test_two_concurrent_opens_on_one_order_make_exactly_one_work_order(pg: Arena) -> None:
    ctx = pg.container.ctx
    winners: Counter[str] = Counter()
    for _ in range(ROUNDS):
        order = pg.world.order()

        by_consumer, by_triage = race(
            partial(wos.open_work_order, ctx, pg.world.consumer, order_id=order.id,
                    category=Category.NOT_RECEIVED, claim="never came", requested_remedy=None),
            partial(wos.open_work_order, ctx, pg.world.triage, order_id=order.id,
                    category=Category.NOT_RECEIVED, claim="never came", requested_remedy=None))
        codes = sorted([code_of(by_consumer), code_of(by_triage)])
        assert codes == [DuplicateOpenWorkOrder.code, "ok"]
        winners["consumer" if code_of(by_consumer) == "ok" else "triage"] += 1
        with pg.container.engine.connect() as conn:
            n = conn.execute(text("SELECT count(*) FROM work_orders WHERE order_id = :o"),
                             {"o": order.id}).scalar_one()
            timers = conn.execute(text(
                "SELECT count(*) FROM timers t JOIN work_orders w ON w.id = t.work_order_id "
                "WHERE w.order_id = :o"), {"o": order.id}).scalar_one()
        assert n == 1
        assert timers == 3  # the loser left nothing behind
    assert_chains_intact(pg)
    log.info("%d rounds, winners: %s", ROUNDS, dict(winners))


def _eight_appends(arena: Arena) -> None:
    """Eight clients add contacts and notes to one work order at the same instant."""
    ctx = arena.container.ctx
    for _ in range(ROUNDS // 3):
        wo_id = opened_and_contacted(arena)
        arena.clock.set(START + timedelta(minutes=5))
        before = wos.get_work_order(ctx, arena.world.triage, wo_id).version
        contact = partial(wos.log_contact, ctx, arena.world.agent, wo_id,
                          channel=ContactChannel.PHONE, contacted_at=START,
                          outcome=ContactOutcome.REACHED, summary="again", evidence_ids=())
        note = partial(wos.add_note, ctx, arena.world.consumer, wo_id, text="any news?",
                       visibility=NoteVisibility.ALL, evidence_ids=())
        results = race(*([contact] * 4 + [note] * 4))
        assert [code_of(r) for r in results] == ["ok"] * 8  # nobody lost to anybody
        stored_contacts = {c.id for c in wos.list_contacts(ctx, arena.world.triage, wo_id)}
        stored_notes = {n.id for n in wos.list_notes(ctx, arena.world.triage, wo_id)}
        answered = [r for r in results if isinstance(r, Contact | Note)]
        # Every answer names a row that is stored, each a different one.
        assert {r.id for r in answered if isinstance(r, Contact)} <= stored_contacts
        assert {r.id for r in answered if isinstance(r, Note)} == stored_notes
        assert len(stored_contacts) == 1 + 4
        assert len({r.id for r in answered}) == 8
        assert wos.get_work_order(ctx, arena.world.triage, wo_id).version == before + 8
    assert_chains_intact(arena)


@pytest.mark.postgres
def test_concurrent_contacts_and_notes_all_succeed_and_name_stored_rows(pg: Arena) -> None:
    _eight_appends(pg)


def test_sqlite_concurrent_contacts_and_notes_all_succeed(sqlite: Arena) -> None:
    _eight_appends(sqlite)
