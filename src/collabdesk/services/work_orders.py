"""Work-order use cases: one function per command, each one unit of work."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TypeVar

from collabdesk.domain import metrics
from collabdesk.domain.audit import ALL, PLATFORM, VISIBILITIES, ChainLink, extend
from collabdesk.domain.errors import NotFound, ValidationFailed, VersionConflict
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import Delivery, Note
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import MERCHANT_ROLES, Role, State
from collabdesk.domain.timers import TimerSpec, timers_for
from collabdesk.domain.values import (
    Actor,
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    Remedy,
    Ruling,
    VerificationOutcome,
)

from . import notifications
from .access import SEES_EVERYTHING, handles_store, may_cite_evidence, visible_work_order
from .context import ServiceContext, new_id
from .ports import UnitOfWork, WorkOrderQuery


@dataclass
class Writes:
    """The rows that persisting work-order changes writes, gathered so that one command,
    or a whole batch of timer effects, goes out with one statement per table (`flush`).

    A work order changed several times before the flush (a batch firing its reminder and
    its timeout) is saved once, guarded on the version it was loaded with.
    """

    uow: UnitOfWork
    notices: notifications.Notices = field(init=False)
    added: list[WorkOrder] = field(default_factory=list)
    # work order id -> (the aggregate, the version it was loaded with, parties see a change)
    saved: dict[str, tuple[WorkOrder, int, bool]] = field(default_factory=dict)
    links: list[ChainLink] = field(default_factory=list)
    cancelled: list[tuple[str, datetime]] = field(default_factory=list)
    scheduled: list[tuple[str, TimerSpec, datetime]] = field(default_factory=list)
    rollups: metrics.Rollup = field(default_factory=metrics.Rollup)

    def __post_init__(self) -> None:
        self.notices = notifications.Notices(self.uow)

    def flush(self) -> None:
        uow = self.uow
        uow.timers.cancel_pending_many(self.cancelled)
        for wo in self.added:
            uow.work_orders.add(wo)
        if self.saved:
            uow.work_orders.save_many([(wo, loaded, loaded + 1 if seen else loaded)
                                       for wo, loaded, seen in self.saved.values()])
        uow.events.append(self.links)
        uow.timers.schedule_many(self.scheduled)
        uow.rollups.apply(self.rollups)
        self.notices.flush()
        self.added, self.saved, self.links = [], {}, []
        self.cancelled, self.scheduled, self.rollups = [], [], metrics.Rollup()


def stage_change(ctx: ServiceContext, writes: Writes, wo: WorkOrder,
                 before: metrics.WorkOrderFacts | None, now: datetime) -> None:
    """Stage a changed aggregate's writes: guarded save, audit events, timers,
    notifications, and the change to its store's metric rollups.

    `before` is `metrics.facts_of(wo)` as loaded, taken before the change (None for a new
    work order): the rollups move by `metrics.delta(before, after)`.

    The work order row was loaded with its lock (a writing unit of work), so changes to
    one work order queue rather than conflict, and the guarded save only guards. Its
    timers are touched after that lock, as the timer runner does too. The events extend
    the chains whose heads the row keeps, in the same transaction. A change only the
    platform can see (a platform-only note) does not move the version parties see.
    """
    state_changed = before is None or wo.state is not before.state
    if state_changed and before is not None:
        writes.cancelled.append((wo.id, now))
    events, wo.events = wo.events, []
    for visibility in VISIBILITIES:
        mine = [e for e in events if e.visibility == visibility]
        if mine:
            added, wo.chains[visibility] = extend(wo.id, visibility, wo.chains[visibility],
                                                  mine)
            writes.links += added
    if before is None:
        writes.added.append(wo)
    else:
        seen_by_parties = state_changed or any(e.visibility == ALL for e in events)
        _, loaded, seen = writes.saved.get(wo.id, (wo, wo.version, False))
        writes.saved[wo.id] = (wo, loaded, seen or seen_by_parties)
    if state_changed:
        writes.scheduled += [(wo.id, spec, now) for spec in timers_for(wo, ctx.policy)]
    writes.rollups.add(metrics.delta(wo.store_id, before, metrics.facts_of(wo)))
    notifications.on_events(writes.notices, wo, events, ctx.policy,
                            state_changed=state_changed and before is not None)


def commit_change(ctx: ServiceContext, uow: UnitOfWork, wo: WorkOrder,
                  before: metrics.WorkOrderFacts | None, now: datetime) -> None:
    """Persist one changed aggregate (see `stage_change`)."""
    writes = Writes(uow)
    stage_change(ctx, writes, wo, before, now)
    writes.flush()


def _check_version(wo: WorkOrder, expected_version: int | None) -> None:
    if expected_version is not None and expected_version != wo.version:
        raise VersionConflict(
            f"work order {wo.id} is at version {wo.version}, not {expected_version}")


def _usable_evidence(uow: UnitOfWork, actor: Actor, wo: WorkOrder,
                     evidence_ids: tuple[str, ...]) -> None:
    if not evidence_ids:
        return
    records = {r.id: r for r in uow.evidence.get_many(list(evidence_ids))}
    unusable = [e for e in evidence_ids if e not in records or not may_cite_evidence(
        actor, records[e].uploaded_by, uow.evidence.attached_to(e), wo.id)]
    if unusable:
        raise ValidationFailed(f"unknown evidence ids: {', '.join(unusable)}")


R = TypeVar("R")


def _change(ctx: ServiceContext, actor: Actor, work_order_id: str,
            expected_version: int | None, evidence_ids: tuple[str, ...],
            act: Callable[[UnitOfWork, WorkOrder, datetime], R],
            evidence_visibility: str = ALL) -> tuple[WorkOrder, R]:
    """The shape of every command on an existing work order. `act` builds its result
    inside the unit of work, so a rerun after a lost race answers with what it stored."""
    def run(uow: UnitOfWork) -> tuple[WorkOrder, R]:
        now = ctx.clock.now()
        wo = visible_work_order(uow, actor, work_order_id)
        _check_version(wo, expected_version)
        _usable_evidence(uow, actor, wo, evidence_ids)
        before = metrics.facts_of(wo)
        result = act(uow, wo, now)
        if evidence_ids:
            uow.evidence.attach(list(evidence_ids), wo.id, now, evidence_visibility)
        commit_change(ctx, uow, wo, before, now)
        return wo, result
    return ctx.write(run)


def _command(ctx: ServiceContext, actor: Actor, work_order_id: str,
             expected_version: int | None, evidence_ids: tuple[str, ...],
             act: Callable[[UnitOfWork, WorkOrder, datetime], None]) -> WorkOrder:
    return _change(ctx, actor, work_order_id, expected_version, evidence_ids, act)[0]


def open_work_order(ctx: ServiceContext, actor: Actor, *, order_id: str, category: Category,
                    claim: str, requested_remedy: Remedy | None) -> WorkOrder:
    def run(uow: UnitOfWork) -> WorkOrder:
        now = ctx.clock.now()
        order = uow.orders.get(order_id)
        if order is None or (actor.role is Role.CONSUMER and order.consumer_id != actor.id):
            raise NotFound(f"order {order_id} not found")
        wo = WorkOrder.open(
            work_order_id=new_id("wo"), order=order, category=category, claim=claim,
            requested_remedy=requested_remedy, actor=actor, now=now, policy=ctx.policy,
            order_has_open_work_order=uow.work_orders.has_open(order_id))
        commit_change(ctx, uow, wo, None, now)
        return wo
    return ctx.write(run)


def get_work_order(ctx: ServiceContext, actor: Actor, work_order_id: str) -> WorkOrder:
    return ctx.read(lambda uow: visible_work_order(uow, actor, work_order_id))


@dataclass(frozen=True)
class ListFilters:
    state: State | None = None
    store_id: str | None = None
    due_before: datetime | None = None
    overdue: bool | None = None


def list_work_orders(ctx: ServiceContext, actor: Actor, filters: ListFilters,
                     after: tuple[datetime | None, str] | None, limit: int) -> list[WorkOrder]:
    """Only what the caller may see; `limit + 1` rows tell the caller a next page exists."""
    consumer_id = scope_store = None
    if actor.role is Role.CONSUMER:
        consumer_id = actor.id
    elif actor.role not in SEES_EVERYTHING:
        if actor.store_id is None or not handles_store(actor, actor.store_id):
            return []
        scope_store = actor.store_id
    query = WorkOrderQuery(limit=limit, consumer_id=consumer_id, scope_store_id=scope_store,
                           state=filters.state, store_id=filters.store_id,
                           due_before=filters.due_before, overdue=filters.overdue,
                           after=after)
    return ctx.read(lambda uow: uow.work_orders.query(query))


def log_contact(ctx: ServiceContext, actor: Actor, work_order_id: str, *,
                channel: ContactChannel, contacted_at: datetime, outcome: ContactOutcome,
                summary: str | None, evidence_ids: tuple[str, ...],
                expected_version: int | None = None) -> Contact:
    def act(uow: UnitOfWork, wo: WorkOrder, now: datetime) -> Contact:
        contact = Contact(new_id("ct"), wo.id, channel, contacted_at, outcome, summary,
                          evidence_ids, actor.id, now)
        wo.log_contact(contact, actor, now)
        uow.work_orders.add_contact(contact)
        return contact

    return _change(ctx, actor, work_order_id, expected_version, evidence_ids, act)[1]


def list_contacts(ctx: ServiceContext, actor: Actor, work_order_id: str) -> list[Contact]:
    return ctx.read(lambda uow: visible_work_order(uow, actor, work_order_id).contacts)


def reply(ctx: ServiceContext, actor: Actor, work_order_id: str, *, option: ReplyOption,
          statement: str | None, agreement: Remedy | None, evidence_ids: tuple[str, ...],
          expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, evidence_ids,
                    lambda uow, wo, now: wo.give_reply(
                       option=option, statement=statement, agreement=agreement,
                       evidence_ids=evidence_ids, actor=actor, now=now, policy=ctx.policy))


def add_note(ctx: ServiceContext, actor: Actor, work_order_id: str, *, text: str,
             visibility: NoteVisibility, evidence_ids: tuple[str, ...],
             expected_version: int | None = None) -> Note:
    if not text.strip():
        raise ValidationFailed("text is required")

    def act(uow: UnitOfWork, wo: WorkOrder, now: datetime) -> Note:
        note = Note(new_id("nt"), wo.id, actor.id, actor.role, text, str(visibility),
                    evidence_ids, now)
        wo.record_note(note.id, note.visibility, evidence_ids, actor, now)
        uow.notes.add(note)
        return note

    # Evidence on a platform-only note is private to the platform (and its uploader).
    return _change(ctx, actor, work_order_id, expected_version, evidence_ids, act,
                   evidence_visibility=str(visibility))[1]


def list_notes(ctx: ServiceContext, actor: Actor, work_order_id: str) -> list[Note]:
    """Platform-only notes are shown to platform staff and to their author."""
    def run(uow: UnitOfWork) -> list[Note]:
        visible_work_order(uow, actor, work_order_id)
        platform = actor.role in SEES_EVERYTHING
        return [n for n in uow.notes.for_work_order(work_order_id)
                if n.visibility == NoteVisibility.ALL or platform or n.author_id == actor.id]
    return ctx.read(run)


def respond_as_consumer(ctx: ServiceContext, actor: Actor, work_order_id: str, *, accept: bool,
                        statement: str | None, expected_version: int | None = None
                        ) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.respond_as_consumer(accept, statement, actor, now))


def verify(ctx: ServiceContext, actor: Actor, work_order_id: str, *,
           outcome: VerificationOutcome, rationale: str,
           expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.verify(outcome, rationale, actor, now))


def judge(ctx: ServiceContext, actor: Actor, work_order_id: str, *, ruling: Ruling,
          rationale: str, remedy: Remedy | None, expected_version: int | None = None
          ) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.rule(ruling, rationale, remedy, actor, now))


def appeal(ctx: ServiceContext, actor: Actor, work_order_id: str, *, statement: str,
           evidence_ids: tuple[str, ...], expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, evidence_ids,
                    lambda uow, wo, now: wo.file_appeal(statement, evidence_ids, actor, now,
                                                       ctx.policy))


def decide_appeal(ctx: ServiceContext, actor: Actor, work_order_id: str, *,
                  decision: AppealDecision, rationale: str,
                  expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.decide_appeal(decision, rationale, actor, now))


def settle(ctx: ServiceContext, actor: Actor, work_order_id: str, *, amount_cents: int,
           rationale: str, expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.settle(amount_cents, rationale, actor, now))


def withdraw(ctx: ServiceContext, actor: Actor, work_order_id: str,
             expected_version: int | None = None) -> WorkOrder:
    return _command(ctx, actor, work_order_id, expected_version, (),
                    lambda uow, wo, now: wo.withdraw(actor, now))


def list_events(ctx: ServiceContext, actor: Actor, work_order_id: str,
                after: tuple[int, int], limit: int) -> list[ChainLink]:
    """The work order's history, oldest first: its `all` chain, merged with what the
    caller may see of its `platform` chain (all of it for the platform, one's own events
    for the others). `after` holds the last seq seen of each chain."""
    def run(uow: UnitOfWork) -> list[ChainLink]:
        visible_work_order(uow, actor, work_order_id)
        parties = uow.events.after(work_order_id, ALL, after[0], limit)
        only_own = None if actor.role in SEES_EVERYTHING else actor.id
        platform = uow.events.after(work_order_id, PLATFORM, after[1], limit, only_own)
        # A merge keeps each chain in its own order (a late timer's event may carry an
        # earlier time than the event before it).
        merged = heapq.merge(parties, platform,
                             key=lambda k: (datetime.fromisoformat(k.at), k.visibility))
        return list(itertools.islice(merged, limit))
    return ctx.read(run)


def list_deliveries(ctx: ServiceContext, actor: Actor, work_order_id: str) -> list[Delivery]:
    """Platform staff see every line; a store sees its staff's; a consumer their own."""
    def run(uow: UnitOfWork) -> list[Delivery]:
        wo = visible_work_order(uow, actor, work_order_id)
        lines = uow.deliveries.for_work_order(work_order_id)
        if actor.role in SEES_EVERYTHING:
            return lines
        if actor.role in MERCHANT_ROLES:
            return [d for d in lines if d.recipient_store_id == wo.store_id]
        return [d for d in lines if d.recipient_id == actor.id]
    return ctx.read(run)

