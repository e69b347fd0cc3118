"""Service-layer rules on the in-memory fakes: units of work, timers, notifications,
rollback and If-Match. No database."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.errors import (
    ConcurrentUpdate,
    ContactBeforeWorkOrder,
    DuplicateOpenWorkOrder,
    InvalidTransition,
    ReplyRequirementsNotMet,
    VersionConflict,
)
from collabdesk.domain.metrics import facts_of
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import DeliveryStatus, InboxItem, InboxKind, Note
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role, State
from collabdesk.domain.timers import TimerKind
from collabdesk.domain.values import (
    Category,
    ContactChannel,
    ContactOutcome,
    OrderKind,
    Remedy,
    RemedyType,
    Store,
    StorePlatform,
)
from collabdesk.services import accounts, catalog, inbox
from collabdesk.services import work_orders as wos
from collabdesk.services.audit import verify_chains
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import UnitOfWork
from collabdesk.services.timers import fire_due_timers
from tests.builders import World, make_world
from tests.conftest import START
from tests.fakes import TimerRow, fake_context, fake_db

DUE = START + timedelta(hours=24)


@pytest.fixture
def ctx(clock: FixedClock) -> ServiceContext:
    return fake_context(clock)


@pytest.fixture
def world(ctx: ServiceContext) -> World:
    return make_world(ctx)


def timers_of(ctx: ServiceContext, work_order_id: str) -> list[TimerRow]:
    rows = fake_db(ctx).snapshot().timers.values()
    return sorted((r for r in rows if r.work_order_id == work_order_id),
                  key=lambda r: (r.due_at, r.id))


def event_types(ctx: ServiceContext, work_order_id: str) -> list[str]:
    return [link.type for link in fake_db(ctx).snapshot().events.get((work_order_id, "all"), [])]


def inbox_of(ctx: ServiceContext, world: World, who: str) -> list[InboxItem]:
    return inbox.list_inbox(ctx, world.actors[who], None, 100)


def reply_no_agreement(ctx: ServiceContext, world: World, wo_id: str,
                       expected_version: int | None = None) -> WorkOrder:
    return wos.reply(ctx, world.agent, wo_id, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
                     statement="the consumer wants more than the order cost",
                     agreement=None, evidence_ids=(), expected_version=expected_version)


# ---- opening ---------------------------------------------------------------------------


def test_opening_schedules_reminders_and_the_timeout_in_the_same_unit_of_work(
        ctx: ServiceContext, world: World) -> None:
    order = world.order()
    commits = fake_db(ctx).commits
    opened = wos.open_work_order(ctx, world.consumer, order_id=order.id,
                                 category=Category.DAMAGED, claim="arrived broken",
                                 requested_remedy=None)
    assert fake_db(ctx).commits == commits + 1
    assert opened.state is State.AWAITING_MERCHANT
    assert opened.due_at == DUE
    assert [(t.kind, t.due_at) for t in timers_of(ctx, opened.id)] == [
        (TimerKind.REMINDER, DUE - timedelta(hours=12)),
        (TimerKind.REMINDER, DUE - timedelta(hours=2)),
        (TimerKind.REPLY_TIMEOUT, DUE),
    ]
    assert all(t.pending for t in timers_of(ctx, opened.id))
    assert event_types(ctx, opened.id) == ["opened"]


def test_a_second_open_work_order_on_the_same_order_is_refused_and_writes_nothing(
        ctx: ServiceContext, world: World) -> None:
    first = wos.get_work_order(ctx, world.triage, world.open())
    before = fake_db(ctx).snapshot()
    with pytest.raises(DuplicateOpenWorkOrder):
        wos.open_work_order(ctx, world.triage, order_id=first.order_id,
                            category=Category.OTHER, claim="again", requested_remedy=None)
    assert fake_db(ctx).snapshot() == before


def test_a_new_work_order_may_be_opened_once_the_previous_one_is_closed(
        ctx: ServiceContext, world: World) -> None:
    first = wos.withdraw(ctx, world.consumer, world.open())
    second = wos.open_work_order(ctx, world.consumer, order_id=first.order_id,
                                 category=Category.OTHER, claim="still broken",
                                 requested_remedy=None)
    assert second.state is State.AWAITING_MERCHANT
    assert second.id != first.id


def test_a_worry_free_work_order_has_no_deadline_and_no_timers(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open(kind=OrderKind.WORRY_FREE)
    got = wos.get_work_order(ctx, world.triage, wo_id)
    assert got.state is State.WORRY_FREE
    assert got.due_at is None
    assert timers_of(ctx, wo_id) == []


# ---- timers follow the transitions ---------------------------------------------------------


def test_a_reply_cancels_the_reminders_and_the_timeout_in_its_own_unit_of_work(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    clock.advance(3600)
    world.contact(wo_id)
    commits = fake_db(ctx).commits
    replied = reply_no_agreement(ctx, world, wo_id)
    assert fake_db(ctx).commits == commits + 1
    assert replied.state is State.IN_ADJUDICATION
    old, new = timers_of(ctx, wo_id)[:3], timers_of(ctx, wo_id)[3:]
    assert [t.cancelled_at for t in old] == [clock.now()] * 3
    assert [(t.kind, t.due_at, t.pending) for t in new] == [
        (TimerKind.ADJUDICATION_SLA, clock.now() + ctx.policy.adjudication_sla, True)]


def test_after_a_reply_the_deadline_passes_without_reminders_or_timeout(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    reply_no_agreement(ctx, world, wo_id)
    assert fire_due_timers(ctx, now=DUE + timedelta(hours=1)) == 0
    got = wos.get_work_order(ctx, world.triage, wo_id)
    assert got.timed_out_at is None
    assert not got.evidence_waived
    assert "timed_out" not in event_types(ctx, wo_id)
    assert {i.kind for i in inbox_of(ctx, world, "agent")} == {InboxKind.WORK_ORDER_CREATED}


def test_a_change_that_keeps_the_state_keeps_the_timers(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    before = timers_of(ctx, wo_id)
    world.contact(wo_id)
    assert timers_of(ctx, wo_id) == before


def test_due_timers_fire_once_each_in_due_order_and_a_second_run_fires_nothing(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    first = world.open()
    clock.advance(3600)
    second = world.open()
    assert fire_due_timers(ctx, now=DUE + timedelta(hours=2)) == 6
    tables = fake_db(ctx).snapshot()
    fired = [tables.timers[i] for i in tables.fired]
    assert [(t.work_order_id, t.kind) for t in fired] == [
        (first, TimerKind.REMINDER), (second, TimerKind.REMINDER),
        (first, TimerKind.REMINDER), (second, TimerKind.REMINDER),
        (first, TimerKind.REPLY_TIMEOUT), (second, TimerKind.REPLY_TIMEOUT),
    ]
    assert [t.due_at for t in fired] == sorted(t.due_at for t in fired)
    assert fire_due_timers(ctx, now=DUE + timedelta(hours=2)) == 0
    for wo_id in (first, second):
        assert event_types(ctx, wo_id).count("timed_out") == 1
        got = wos.get_work_order(ctx, world.triage, wo_id)
        assert got.state is State.IN_ADJUDICATION
        assert got.evidence_waived
    kinds = [i.kind for i in inbox_of(ctx, world, "agent")]
    assert kinds.count(InboxKind.REMINDER) == 4
    assert kinds.count(InboxKind.TIMEOUT) == 2


def test_a_late_runner_applies_each_timer_as_of_its_due_time(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    assert fire_due_timers(ctx, now=DUE + timedelta(hours=5)) == 3
    got = wos.get_work_order(ctx, world.triage, wo_id)
    assert got.timed_out_at == DUE
    assert got.state_entered_at == DUE
    reminders = [i.created_at for i in inbox_of(ctx, world, "agent")
                 if i.kind is InboxKind.REMINDER]
    assert sorted(reminders) == [DUE - timedelta(hours=12), DUE - timedelta(hours=2)]


def test_timers_scheduled_by_firing_fire_in_the_same_run_when_due(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    horizon = DUE + ctx.policy.adjudication_sla
    assert fire_due_timers(ctx, now=horizon) == 4  # reminders, timeout, adjudication SLA
    got = wos.get_work_order(ctx, world.triage, wo_id)
    assert got.sla_overdue
    assert event_types(ctx, wo_id) == ["opened", "timed_out", "sla_overdue"]
    assert fire_due_timers(ctx, now=horizon + timedelta(days=30)) == 0


def test_the_confirmation_window_lapses_into_resolved(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    wos.reply(ctx, world.agent, wo_id, option=ReplyOption.RESOLVED_AGREED, statement=None,
              agreement=Remedy(RemedyType.REFUND, 2_500), evidence_ids=())
    assert fire_due_timers(ctx, now=START + ctx.policy.confirmation_window) == 1
    got = wos.get_work_order(ctx, world.consumer, wo_id)
    assert got.state is State.RESOLVED
    assert got.closed_at == START + ctx.policy.confirmation_window


# ---- notifications ---------------------------------------------------------------------------


def test_the_work_order_card_goes_to_agents_holding_the_permission_with_a_delivery_line(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    cards = inbox_of(ctx, world, "agent")
    assert [(i.kind, i.work_order_id) for i in cards] == [
        (InboxKind.WORK_ORDER_CREATED, wo_id)]
    assert "工单卡片" in cards[0].text
    assert wo_id in cards[0].text
    assert inbox_of(ctx, world, "owner") == []
    lines = wos.list_deliveries(ctx, world.triage, wo_id)
    # The agent has no phone number: the SMS is logged as skipped, with why.
    assert sorted((d.recipient_id, d.recipient_store_id, d.channel, d.kind, d.status, d.reason)
                  for d in lines) == [
        (world.agent.id, "s-tmall", "inbox", "work_order_created", DeliveryStatus.DELIVERED,
         None),
        (world.agent.id, "s-tmall", "sms", "work_order_created", DeliveryStatus.SKIPPED,
         "no phone number on the account")]


def test_the_owner_gets_the_card_when_no_agent_holds_the_permission(
        ctx: ServiceContext, world: World) -> None:
    accounts.set_staff_permission(ctx, world.owner, "s-tmall", world.agent.id, False)
    wo_id = world.open()
    assert [i.kind for i in inbox_of(ctx, world, "owner")] == [InboxKind.WORK_ORDER_CREATED]
    assert inbox_of(ctx, world, "agent") == []
    assert {(d.recipient_id, d.channel) for d in wos.list_deliveries(ctx, world.owner, wo_id)
            } == {(world.owner.id, "inbox"), (world.owner.id, "sms")}


def test_a_store_without_staff_gets_a_skipped_delivery_line_saying_why(
        ctx: ServiceContext, world: World) -> None:
    catalog.create_store(ctx, None, Store("s-empty", "No staff yet", StorePlatform.TAOBAO))
    order = world.order(store_id="s-empty")
    opened = wos.open_work_order(ctx, world.consumer, order_id=order.id,
                                 category=Category.REFUND, claim="refund stuck",
                                 requested_remedy=None)
    (line,) = wos.list_deliveries(ctx, world.triage, opened.id)
    assert line.status is DeliveryStatus.SKIPPED
    assert line.recipient_store_id == "s-empty"
    assert line.reason is not None
    assert "no staff" in line.reason


def test_reminders_and_the_timeout_notice_reach_the_store_with_delivery_lines(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    fire_due_timers(ctx, now=DUE)
    assert [i.kind for i in inbox_of(ctx, world, "agent")] == [
        InboxKind.TIMEOUT, InboxKind.REMINDER, InboxKind.REMINDER,
        InboxKind.WORK_ORDER_CREATED]
    assert [(d.kind, d.at) for d in wos.list_deliveries(ctx, world.agent, wo_id)
            if d.channel == "inbox"] == [
        ("work_order_created", START), ("reminder", DUE - timedelta(hours=12)),
        ("reminder", DUE - timedelta(hours=2)), ("timeout", DUE)]


def test_the_consumer_is_asked_to_confirm_an_agreed_reply(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    wos.reply(ctx, world.agent, wo_id, option=ReplyOption.RESOLVED_AGREED, statement=None,
              agreement=Remedy(RemedyType.REFUND, 2_500), evidence_ids=())
    (item,) = inbox_of(ctx, world, "consumer")
    assert item.kind is InboxKind.CONFIRMATION_REQUESTED
    assert item.work_order_id == wo_id
    consumer_lines = wos.list_deliveries(ctx, world.consumer, wo_id)
    assert sorted((d.channel, d.kind) for d in consumer_lines) == [
        ("inbox", "confirmation_requested"), ("sms", "confirmation_requested")]


# ---- rollback ---------------------------------------------------------------------------------


def test_a_domain_error_inside_a_unit_of_work_rolls_back_everything_it_wrote(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    before = fake_db(ctx).snapshot()

    def half_done(uow: UnitOfWork) -> None:
        uow.notes.add(Note("nt_x", wo_id, world.triage.id, Role.TRIAGE, "x", "all", (),
                           clock.now()))
        uow.inbox.add(InboxItem("ntf_x", world.agent.id, InboxKind.STATE_CHANGED, wo_id, "x",
                                clock.now()))
        uow.timers.cancel_pending(wo_id, clock.now())
        raise InvalidTransition("changed my mind")

    with pytest.raises(InvalidTransition):
        ctx.write(half_done)
    assert fake_db(ctx).snapshot() == before


def test_a_refused_reply_leaves_the_work_order_its_chain_and_timers_unchanged(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    before = fake_db(ctx).snapshot()
    with pytest.raises(ReplyRequirementsNotMet):  # no contact reached the consumer
        reply_no_agreement(ctx, world, wo_id)
    assert fake_db(ctx).snapshot() == before


def test_a_refused_contact_attaches_none_of_its_evidence(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    evidence_id = world.evidence("agent")
    before = fake_db(ctx).snapshot()
    with pytest.raises(ContactBeforeWorkOrder):
        wos.log_contact(ctx, world.agent, wo_id, channel=ContactChannel.IM,
                        contacted_at=START - timedelta(minutes=1),
                        outcome=ContactOutcome.REACHED, summary="too early",
                        evidence_ids=(evidence_id,))
    after = fake_db(ctx).snapshot()
    assert after == before
    assert after.attachments == {}


# ---- versions and races --------------------------------------------------------------------


def test_a_stale_if_match_version_is_refused_and_changes_nothing(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    world.contact(wo_id)  # version 0 -> 1
    before = fake_db(ctx).snapshot()
    with pytest.raises(VersionConflict, match="not 0"):
        reply_no_agreement(ctx, world, wo_id, expected_version=0)
    assert fake_db(ctx).snapshot() == before


def test_the_current_if_match_version_is_accepted_and_bumps_the_version(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    current = wos.get_work_order(ctx, world.agent, wo_id).version
    replied = reply_no_agreement(ctx, world, wo_id, expected_version=current)
    assert replied.version == current + 1
    assert wos.get_work_order(ctx, world.agent, wo_id).version == current + 1


def test_saving_a_stale_copy_is_refused_as_a_concurrent_update(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    stale = wos.get_work_order(ctx, world.triage, wo_id)
    world.contact(wo_id)
    before = fake_db(ctx).snapshot()
    stale.claim = "rewritten"
    with pytest.raises(ConcurrentUpdate), ctx.uow() as uow:
        uow.work_orders.save(stale)
    assert fake_db(ctx).snapshot() == before


def test_a_writer_that_lost_a_race_is_judged_again_on_the_winners_state(
        ctx: ServiceContext, world: World, clock: FixedClock) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    attempts: list[int] = []

    def slow_reply(uow: UnitOfWork) -> None:
        attempts.append(1)
        mine = uow.work_orders.get(wo_id)
        assert mine is not None
        if len(attempts) == 1:  # the owner replies and commits while we are thinking
            wos.reply(ctx, world.owner, wo_id, option=ReplyOption.RESOLVED_AGREED,
                      statement=None, agreement=Remedy(RemedyType.REFUND, 1_000),
                      evidence_ids=())
        before = facts_of(mine)
        mine.give_reply(option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="no",
                        agreement=None, evidence_ids=(), actor=world.agent, now=clock.now(),
                        policy=ctx.policy)
        wos.commit_change(ctx, uow, mine, before, clock.now())

    with pytest.raises(InvalidTransition):
        ctx.write(slow_reply)
    assert len(attempts) == 2
    got = wos.get_work_order(ctx, world.triage, wo_id)
    assert got.state is State.AWAITING_CONSUMER
    assert event_types(ctx, wo_id).count("replied") == 1


def test_the_fake_audit_chain_detects_an_edited_event(
        ctx: ServiceContext, world: World) -> None:
    wo_id = world.open()
    world.contact(wo_id)
    assert verify_chains(ctx).broken == []
    db = fake_db(ctx)
    chain = db.tables.events[(wo_id, "all")]
    chain[0] = replace(chain[0], data_json=chain[0].data_json.replace("arrived", "never"))
    (broken,) = verify_chains(ctx).broken
    assert broken[0] == wo_id
    assert "event 1" in broken[1]
