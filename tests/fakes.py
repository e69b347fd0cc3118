"""In-memory implementations of every port in `services/ports.py` and of the evidence
store, so service tests run without a database (style.md habit 7).

The fake database is a set of dicts. A unit of work deep-copies them on `__enter__` and
works on its copy: `commit()` publishes the copy, leaving without it discards it, exactly
like a rolled-back transaction. Guarded saves compare `version`; the one-open-work-order
per order rule is checked like the partial unique index; events are stored as the
chain links the service computed, like the SQL adapter.

Concurrency: first committer wins. A commit fails with `ConcurrentUpdate` when anything
else committed since the unit of work began (as SERIALIZABLE would), so an interleaved
writer is retried by `ServiceContext.write` and judged again on the winner's state, and
no update is ever lost.
"""

from __future__ import annotations

import copy
import hashlib
import io
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime
from pathlib import Path
from typing import BinaryIO, Self

from collabdesk.domain.audit import ALL, ChainHead, ChainLink
from collabdesk.domain.errors import AlreadyExists, ConcurrentUpdate, DuplicateOpenWorkOrder
from collabdesk.domain.evidence import HEAD_BYTES, is_plain_text
from collabdesk.domain.metrics import Counters, Rollup, WorkOrderFacts, facts_of
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.records import (
    Account,
    Delivery,
    DeliveryStatus,
    EvidenceRecord,
    InboxItem,
    Note,
    OutboxMessage,
    Timer,
    Webhook,
)
from collabdesk.domain.timers import TimerSpec
from collabdesk.domain.values import Contact, Order, Store
from collabdesk.domain.violations import LedgerEntry, Violation
from collabdesk.services.context import ServiceContext
from collabdesk.services.evidence_port import MAX_READ_AT, StagedFile
from collabdesk.services.ports import (
    AccountRepository,
    Clock,
    DeliveryRepository,
    EventRepository,
    EvidenceRepository,
    IdempotencyRepository,
    InboxRepository,
    NoteRepository,
    OrderRepository,
    OutboxRepository,
    RollupRepository,
    StoredResponse,
    StoreRepository,
    TimerRepository,
    ViolationRepository,
    WebhookRepository,
    WorkOrderQuery,
    WorkOrderRepository,
)

FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)


@dataclass
class TimerRow:
    id: int
    work_order_id: str
    kind: str
    due_at: datetime
    created_at: datetime
    fired_at: datetime | None = None
    cancelled_at: datetime | None = None

    @property
    def pending(self) -> bool:
        return self.fired_at is None and self.cancelled_at is None


@dataclass
class OutboxRow:
    message: OutboxMessage
    lease_until: datetime | None = None
    lease_token: str | None = None
    done_at: datetime | None = None

    @property
    def open(self) -> bool:
        return self.message.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)


@dataclass
class AccountRow:
    account: Account
    token_hash: str
    password_hash: str | None


@dataclass
class Tables:
    """The committed state of the fake database (and each unit of work's private copy)."""

    accounts: dict[str, AccountRow] = field(default_factory=dict)
    stores: dict[str, Store] = field(default_factory=dict)
    orders: dict[str, Order] = field(default_factory=dict)
    work_orders: dict[str, WorkOrder] = field(default_factory=dict)  # no events, no contacts
    contacts: dict[str, list[Contact]] = field(default_factory=dict)
    events: dict[tuple[str, str], list[ChainLink]] = field(default_factory=dict)
    timers: dict[int, TimerRow] = field(default_factory=dict)
    next_timer_id: int = 1
    fired: list[int] = field(default_factory=list)  # timer ids in the order they were claimed
    notes: list[Note] = field(default_factory=list)
    evidence: dict[str, EvidenceRecord] = field(default_factory=dict)
    attachments: dict[tuple[str, str], str] = field(default_factory=dict)  # -> visibility
    inbox: dict[str, InboxItem] = field(default_factory=dict)
    inbox_stored: dict[str, tuple[int, datetime]] = field(default_factory=dict)  # id -> order
    deliveries: list[Delivery] = field(default_factory=list)
    outbox: dict[int, OutboxRow] = field(default_factory=dict)
    next_outbox_id: int = 1
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    violations: dict[str, Violation] = field(default_factory=dict)
    ledger: list[LedgerEntry] = field(default_factory=list)
    idempotency: dict[tuple[str, str], StoredResponse] = field(default_factory=dict)
    rollup: Rollup = field(default_factory=Rollup)


class FakeDatabase:
    def __init__(self) -> None:
        self.tables = Tables()
        self.generation = 0
        self.commits = 0
        self.lock = threading.Lock()
        self.signals: list[str] = []  # raised by committed units of work, in order

    def snapshot(self) -> Tables:
        """A deep copy of what is committed, for tests to inspect or compare."""
        with self.lock:
            return copy.deepcopy(self.tables)


class _Repo:
    def __init__(self, tables: Tables) -> None:
        self.t = tables


class FakeAccounts(_Repo):
    def add(self, account: Account, token_hash: str, password_hash: str | None) -> None:
        if account.id in self.t.accounts:
            raise AlreadyExists(f"account {account.id!r} already exists")
        for row in self.t.accounts.values():
            if account.login is not None and row.account.login == account.login:
                raise AlreadyExists(f"login {account.login!r} is already taken")
            if row.token_hash == token_hash:
                raise AlreadyExists("token already in use")
        self.t.accounts[account.id] = AccountRow(account, token_hash, password_hash)

    def get(self, account_id: str) -> Account | None:
        row = self.t.accounts.get(account_id)
        return row.account if row else None

    def by_token_hash(self, token_hash: str) -> Account | None:
        return next((r.account for r in self.t.accounts.values()
                     if r.token_hash == token_hash), None)

    def by_login(self, login: str) -> tuple[Account, str | None] | None:
        return next(((r.account, r.password_hash) for r in self.t.accounts.values()
                     if r.account.login == login), None)

    def set_token_hash(self, account_id: str, token_hash: str) -> None:
        if account_id in self.t.accounts:
            self.t.accounts[account_id].token_hash = token_hash

    def store_staff(self, store_id: str) -> list[Account]:
        staff = [r.account for r in self.t.accounts.values() if r.account.store_id == store_id]
        return sorted(staff, key=lambda a: (a.created_at, a.id))

    def set_handles_work_orders(self, account_id: str, value: bool) -> None:
        row = self.t.accounts.get(account_id)
        if row is not None:
            row.account = replace(row.account, handles_work_orders=value)

    def set_contact(self, account_id: str, phone: str | None, email: str | None,
                    language: str) -> None:
        row = self.t.accounts.get(account_id)
        if row is not None:
            row.account = replace(row.account, phone=phone, email=email, language=language)

    def get_many(self, account_ids: list[str]) -> list[Account]:
        return [self.t.accounts[i].account for i in set(account_ids) if i in self.t.accounts]


class FakeStores(_Repo):
    def add(self, store: Store, now: datetime) -> None:
        if store.id in self.t.stores:
            raise AlreadyExists(f"store {store.id!r} already exists")
        self.t.stores[store.id] = store

    def get(self, store_id: str) -> Store | None:
        return self.t.stores.get(store_id)

    def existing(self, store_ids: list[str]) -> set[str]:
        return {i for i in store_ids if i in self.t.stores}


class FakeOrders(_Repo):
    def add(self, order: Order, now: datetime) -> None:
        if order.id in self.t.orders:
            raise AlreadyExists(f"order {order.id!r} already exists")
        self.t.orders[order.id] = order

    def get(self, order_id: str) -> Order | None:
        return self.t.orders.get(order_id)

    def existing_ids(self, order_ids: list[str]) -> set[str]:
        return {i for i in order_ids if i in self.t.orders}

    def add_many(self, orders: list[Order], now: datetime) -> None:
        ids = [o.id for o in orders]
        if len(set(ids)) < len(ids) or any(i in self.t.orders for i in ids):
            which = f"order {ids[0]}" if len(ids) == 1 else "an order of the batch"
            raise AlreadyExists(f"{which} already exists")
        for order in orders:
            self.t.orders[order.id] = order


def _due_key(wo: WorkOrder) -> tuple[datetime, str]:
    return (wo.due_at or FAR_FUTURE, wo.id)


class FakeWorkOrders(_Repo):
    def _check_one_open(self, wo: WorkOrder) -> None:
        if wo.is_open and any(o.order_id == wo.order_id and o.is_open and o.id != wo.id
                              for o in self.t.work_orders.values()):
            raise DuplicateOpenWorkOrder(f"order {wo.order_id} already has an open work order")

    @staticmethod
    def _stored(wo: WorkOrder) -> WorkOrder:
        return copy.deepcopy(replace(wo, events=[], contacts=[]))

    def add(self, wo: WorkOrder) -> None:
        if wo.id in self.t.work_orders:
            raise AlreadyExists(f"work order {wo.id!r} already exists")
        self._check_one_open(wo)
        self.t.work_orders[wo.id] = self._stored(wo)

    def get(self, work_order_id: str) -> WorkOrder | None:
        stored = self.t.work_orders.get(work_order_id)
        if stored is None:
            return None
        contacts = sorted(self.t.contacts.get(work_order_id, []),
                          key=lambda c: (c.recorded_at, c.id))
        return replace(copy.deepcopy(stored), contacts=list(contacts))

    def save(self, wo: WorkOrder, *, new_version: bool = True) -> None:
        self.save_many([(wo, wo.version, wo.version + 1 if new_version else wo.version)])

    def save_many(self, saves: list[tuple[WorkOrder, int, int]]) -> None:
        for wo, loaded, _ in saves:
            stored = self.t.work_orders.get(wo.id)
            if stored is None or stored.version != loaded:
                raise ConcurrentUpdate(f"work order {wo.id} changed concurrently")
            self._check_one_open(wo)
        for wo, _, new in saves:
            wo.version = new
            self.t.work_orders[wo.id] = self._stored(wo)

    def add_contact(self, contact: Contact) -> None:
        self.t.contacts.setdefault(contact.work_order_id, []).append(contact)

    def has_open(self, order_id: str) -> bool:
        return any(o.order_id == order_id and o.is_open for o in self.t.work_orders.values())

    def query(self, query: WorkOrderQuery) -> list[WorkOrder]:
        def keep(wo: WorkOrder) -> bool:
            if query.consumer_id is not None and wo.consumer_id != query.consumer_id:
                return False
            if query.scope_store_id is not None and wo.store_id != query.scope_store_id:
                return False
            if query.state is not None and wo.state is not query.state:
                return False
            if query.store_id is not None and wo.store_id != query.store_id:
                return False
            if query.due_before is not None and (wo.due_at is None
                                                 or wo.due_at >= query.due_before):
                return False
            if query.overdue is not None and wo.sla_overdue is not query.overdue:
                return False
            if query.after is not None:
                due, last_id = query.after
                return _due_key(wo) > (due or FAR_FUTURE, last_id)
            return True
        rows = sorted((wo for wo in self.t.work_orders.values() if keep(wo)), key=_due_key)
        return [copy.deepcopy(wo) for wo in rows[:query.limit]]


class FakeRollups(_Repo):
    """The rollup tables as one `Rollup` (entries that come to zero are dropped)."""

    def apply(self, change: Rollup) -> None:
        self.t.rollup.add(change)

    def window(self, store_id: str, first: date, end: date) -> tuple[Counters, dict[int, int]]:
        return self.t.rollup.window(store_id, first, end)

    def daily(self, store_id: str, first: date, end: date
              ) -> tuple[dict[date, Counters], dict[date, dict[int, int]]]:
        counters = {day: c for (store, day), c in self.t.rollup.daily.items()
                    if store == store_id and first <= day < end}
        minutes: dict[date, dict[int, int]] = {}
        for (store, day, minute), n in self.t.rollup.minutes.items():
            if store == store_id and first <= day < end:
                minutes.setdefault(day, {})[minute] = n
        return counters, minutes

    def clear(self) -> None:
        self.t.rollup = Rollup()

    def work_order_facts(self, after: str | None, limit: int
                         ) -> list[tuple[str, str, WorkOrderFacts]]:
        ids = sorted(i for i in self.t.work_orders if after is None or i > after)[:limit]
        return [(i, self.t.work_orders[i].store_id, facts_of(self.t.work_orders[i]))
                for i in ids]

    def paid_orders(self, after: str | None, limit: int) -> list[tuple[str, str, datetime]]:
        ids = sorted(i for i in self.t.orders if after is None or i > after)[:limit]
        return [(i, self.t.orders[i].store_id, self.t.orders[i].paid_at) for i in ids]


class FakeEvents(_Repo):
    def append(self, links: list[ChainLink]) -> None:
        for link in links:
            chain = self.t.events.setdefault((link.work_order_id, link.visibility), [])
            if link.seq != len(chain) + 1:  # as the unique (work order, chain, seq)
                raise ConcurrentUpdate(f"event {link.seq} of {link.work_order_id} exists")
            chain.append(link)

    def after(self, work_order_id: str, visibility: str, after_seq: int, limit: int,
              actor_id: str | None = None) -> list[ChainLink]:
        return [link for link in self.t.events.get((work_order_id, visibility), [])
                if link.seq > after_seq and actor_id in (None, link.actor_id)][:limit]

    def anchors(self, after: str | None, limit: int) -> list[tuple[str, dict[str, ChainHead]]]:
        ids = sorted(i for i in self.t.work_orders if after is None or i > after)
        return [(i, dict(self.t.work_orders[i].chains)) for i in ids[:limit]]

    def chain(self, work_order_id: str, visibility: str) -> list[ChainLink]:
        return list(self.t.events.get((work_order_id, visibility), []))


class FakeTimers(_Repo):
    def schedule(self, work_order_id: str, specs: list[TimerSpec], now: datetime) -> None:
        for spec in specs:
            timer_id = self.t.next_timer_id
            self.t.next_timer_id += 1
            self.t.timers[timer_id] = TimerRow(timer_id, work_order_id, str(spec.kind),
                                               spec.due_at, now)

    def schedule_many(self, items: list[tuple[str, TimerSpec, datetime]]) -> None:
        for work_order_id, spec, now in items:
            self.schedule(work_order_id, [spec], now)

    def cancel_pending(self, work_order_id: str, now: datetime) -> None:
        for row in self.t.timers.values():
            if row.work_order_id == work_order_id and row.pending:
                row.cancelled_at = now

    def cancel_pending_many(self, items: list[tuple[str, datetime]]) -> None:
        for work_order_id, now in items:
            self.cancel_pending(work_order_id, now)

    def lock_due(self, now: datetime, limit: int, exclude: frozenset[int]
                 ) -> list[tuple[Timer, WorkOrder]]:
        """No other transaction exists in memory: nothing is ever skipped as locked."""
        due = [t for t in self.due(now, limit + len(exclude)) if t.id not in exclude][:limit]
        loaded: dict[str, WorkOrder] = {}
        out = []
        for timer in due:
            if timer.work_order_id not in loaded:
                wo = FakeWorkOrders(self.t).get(timer.work_order_id)
                if wo is None:
                    continue
                loaded[timer.work_order_id] = wo
            out.append((timer, loaded[timer.work_order_id]))
        return out

    def mark_fired(self, timer_ids: list[int], now: datetime) -> int:
        return sum(self.claim(timer_id, now) for timer_id in timer_ids)

    def due(self, now: datetime, limit: int) -> list[Timer]:
        rows = sorted((r for r in self.t.timers.values() if r.pending and r.due_at <= now),
                      key=lambda r: (r.due_at, r.id))
        return [Timer(r.id, r.work_order_id, r.kind, r.due_at) for r in rows[:limit]]

    def claim(self, timer_id: int, now: datetime) -> bool:
        row = self.t.timers.get(timer_id)
        if row is None or not row.pending:
            return False
        row.fired_at = now
        self.t.fired.append(timer_id)
        return True


class FakeNotes(_Repo):
    def add(self, note: Note) -> None:
        self.t.notes.append(note)

    def for_work_order(self, work_order_id: str) -> list[Note]:
        return sorted((n for n in self.t.notes if n.work_order_id == work_order_id),
                      key=lambda n: (n.created_at, n.id))


class FakeEvidence(_Repo):
    def add(self, record: EvidenceRecord) -> None:
        self.t.evidence[record.id] = record

    def get(self, evidence_id: str) -> EvidenceRecord | None:
        return self.t.evidence.get(evidence_id)

    def get_many(self, evidence_ids: list[str]) -> list[EvidenceRecord]:
        return [self.t.evidence[i] for i in evidence_ids if i in self.t.evidence]

    def attach(self, evidence_ids: list[str], work_order_id: str, now: datetime,
               visibility: str = ALL) -> None:
        for evidence_id in evidence_ids:
            key = (evidence_id, work_order_id)
            if visibility == ALL or key not in self.t.attachments:
                self.t.attachments[key] = visibility

    def attached_to(self, evidence_id: str) -> list[tuple[str, str]]:
        return [(wo_id, visibility) for (ev_id, wo_id), visibility
                in self.t.attachments.items() if ev_id == evidence_id]


class FakeInbox(_Repo):
    def add(self, item: InboxItem) -> None:
        self.t.inbox[item.id] = item
        self.t.inbox_stored[item.id] = (len(self.t.inbox_stored), datetime.now(UTC))

    def add_many(self, items: list[InboxItem]) -> None:
        for item in items:
            self.add(item)

    def page(self, recipient_id: str, before: tuple[datetime, str] | None,
             limit: int) -> list[InboxItem]:
        items = [i for i in self.t.inbox.values() if i.recipient_id == recipient_id
                 and (before is None or (i.created_at, i.id) < before)]
        items.sort(key=lambda i: (i.created_at, i.id), reverse=True)
        return items[:limit]

    def mark_read(self, recipient_id: str, item_id: str) -> bool:
        item = self.t.inbox.get(item_id)
        if item is None or item.recipient_id != recipient_id:
            return False
        self.t.inbox[item_id] = replace(item, read=True)
        return True

    def _in_order(self) -> list[tuple[datetime, InboxItem]]:
        order = sorted(self.t.inbox_stored.items(), key=lambda kv: kv[1][0])
        return [(at, self.t.inbox[item_id]) for item_id, (_, at) in order]

    def stored_since(self, since: datetime, limit: int) -> list[tuple[datetime, InboxItem]]:
        return [(at, i) for at, i in self._in_order() if at >= since][:limit]

    def stored_after(self, recipient_id: str, item_id: str, limit: int
                     ) -> list[tuple[datetime, InboxItem]] | None:
        mine = [(at, i) for at, i in self._in_order() if i.recipient_id == recipient_id]
        ids = [i.id for _, i in mine]
        if item_id not in ids:
            return None
        return mine[ids.index(item_id) + 1:][:limit]


class FakeDeliveries(_Repo):
    def add(self, delivery: Delivery) -> None:
        self.t.deliveries.append(delivery)

    def add_many(self, deliveries: list[Delivery]) -> None:
        self.t.deliveries.extend(deliveries)

    def for_work_order(self, work_order_id: str) -> list[Delivery]:
        return sorted((d for d in self.t.deliveries if d.work_order_id == work_order_id),
                      key=lambda d: (d.at, d.id))

    def update_many(self, lines: list[Delivery]) -> None:
        by_id = {d.id: d for d in lines}
        self.t.deliveries = [
            replace(d, status=by_id[d.id].status, reason=by_id[d.id].reason,
                    at=by_id[d.id].at, attempt=by_id[d.id].attempt) if d.id in by_id else d
            for d in self.t.deliveries]

    def for_store(self, store_id: str, before: tuple[datetime, str] | None, limit: int,
                  *, failures_only: bool = False) -> list[Delivery]:
        lines = [d for d in self.t.deliveries if d.recipient_store_id == store_id
                 and (before is None or (d.at, d.id) < before)
                 and (not failures_only or d.status in (DeliveryStatus.FAILED,
                                                        DeliveryStatus.RETRYING))]
        return sorted(lines, key=lambda d: (d.at, d.id), reverse=True)[:limit]


class FakeOutbox(_Repo):
    def add_many(self, messages: list[OutboxMessage]) -> None:
        for m in messages:
            m = replace(m, id=self.t.next_outbox_id)
            self.t.next_outbox_id += 1
            self.t.outbox[m.id] = OutboxRow(m)  # type: ignore[index]

    def claim_due(self, now: datetime, limit: int, lease_until: datetime, token: str,
                  real_now: datetime) -> list[OutboxMessage]:
        due = sorted((r for r in self.t.outbox.values() if r.open and r.message.due_at <= now
                      and (r.lease_until is None or r.lease_until < real_now)),
                     key=lambda r: (r.message.due_at, r.message.id))[:limit]
        for r in due:
            r.lease_until, r.lease_token = lease_until, token
        return [replace(r.message) for r in due]

    def held(self, token: str, ids: list[int]) -> set[int]:
        return {i for i in ids if i in self.t.outbox and self.t.outbox[i].lease_token == token}

    def release(self, ids: list[int], token: str) -> None:
        for i in ids:
            row = self.t.outbox.get(i)
            if row is not None and row.lease_token == token:
                row.lease_until = row.lease_token = None

    def record(self, messages: list[OutboxMessage], token: str) -> int:
        stored = 0
        for m in messages:
            row = self.t.outbox.get(m.id or -1)
            if row is None or row.lease_token != token:
                continue
            row.message = replace(m)
            row.lease_until = row.lease_token = None
            row.done_at = None if row.open else m.due_at
            stored += 1
        return stored

    def by_event(self, event_id: str, recipient_id: str) -> OutboxMessage | None:
        rows = [r for r in self.t.outbox.values() if r.message.event_id == event_id
                and r.message.recipient_id == recipient_id]
        return replace(rows[-1].message) if rows else None

    def close_open(self, recipient_id: str, reason: str, now: datetime
                   ) -> list[OutboxMessage]:
        closed = []
        for r in self.t.outbox.values():
            if r.open and r.message.recipient_id == recipient_id:
                closed.append(replace(r.message))
                r.message = replace(r.message, status=DeliveryStatus.FAILED, last_error=reason)
                r.done_at, r.lease_until, r.lease_token = now, None, None
        return closed

    def next_due(self) -> datetime | None:
        return min((r.message.due_at for r in self.t.outbox.values() if r.open), default=None)

    def backlog(self) -> dict[str, tuple[int, datetime | None]]:
        out: dict[str, tuple[int, datetime | None]] = {}
        for r in self.t.outbox.values():
            if r.open:
                n, first = out.get(str(r.message.channel), (0, None))
                due = r.message.due_at
                out[str(r.message.channel)] = (n + 1, due if first is None else min(first, due))
        return out

    def clear_leases(self) -> int:
        held = [r for r in self.t.outbox.values() if r.open and r.lease_until is not None]
        for r in held:
            r.lease_until = r.lease_token = None
        return len(held)

    def purge(self, done_before: datetime, limit: int) -> int:
        old = [k for k, r in self.t.outbox.items()
               if r.done_at is not None and r.done_at < done_before][:limit]
        for k in old:
            del self.t.outbox[k]
        return len(old)


class FakeWebhooks(_Repo):
    def add(self, hook: Webhook) -> None:
        self.t.webhooks[hook.id] = hook

    def get(self, hook_id: str) -> Webhook | None:
        return self.t.webhooks.get(hook_id)

    def for_store(self, store_id: str) -> list[Webhook]:
        return sorted((h for h in self.t.webhooks.values() if h.store_id == store_id),
                      key=lambda h: (h.created_at, h.id))

    def get_many(self, hook_ids: list[str]) -> list[Webhook]:
        return [self.t.webhooks[i] for i in sorted(set(hook_ids)) if i in self.t.webhooks]

    def delete(self, hook_id: str) -> bool:
        return self.t.webhooks.pop(hook_id, None) is not None

    def save(self, hook: Webhook) -> None:
        self.t.webhooks[hook.id] = hook


class FakeViolations(_Repo):
    def add(self, violation: Violation) -> None:
        self.t.violations[violation.id] = copy.deepcopy(violation)

    def get(self, violation_id: str) -> Violation | None:
        found = self.t.violations.get(violation_id)
        return copy.deepcopy(found) if found else None

    def save(self, violation: Violation) -> None:
        stored = self.t.violations.get(violation.id)
        if stored is None or stored.version != violation.version:
            raise ConcurrentUpdate(f"violation {violation.id} changed concurrently")
        violation.version += 1
        self.t.violations[violation.id] = copy.deepcopy(violation)

    def append_ledger(self, entry: LedgerEntry) -> None:
        self.t.ledger.append(entry)

    def ledger(self, store_id: str, year: int) -> list[LedgerEntry]:
        return sorted((e for e in self.t.ledger if e.store_id == store_id and e.year == year),
                      key=lambda e: (e.at, e.id))


class FakeIdempotency(_Repo):
    def get(self, account_id: str, key: str) -> StoredResponse | None:
        return self.t.idempotency.get((account_id, key))

    def reserve(self, account_id: str, key: str, request_hash: str, now: datetime,
                locked_until: datetime) -> bool:
        if (account_id, key) in self.t.idempotency:
            return False
        self.t.idempotency[(account_id, key)] = StoredResponse(request_hash, None, None, now,
                                                               locked_until)
        return True

    def take_over(self, account_id: str, key: str, request_hash: str, now: datetime,
                  locked_until: datetime, expired_before: datetime) -> bool:
        stored = self.t.idempotency.get((account_id, key))
        if stored is None:
            return False
        lapsed = stored.status_code is None and stored.locked_until is not None \
            and stored.locked_until <= now
        if not lapsed and stored.created_at >= expired_before:
            return False
        self.t.idempotency[(account_id, key)] = StoredResponse(request_hash, None, None, now,
                                                               locked_until)
        return True

    def complete(self, account_id: str, key: str, status_code: int, body: str) -> None:
        stored = self.t.idempotency.get((account_id, key))
        if stored is not None:
            self.t.idempotency[(account_id, key)] = replace(
                stored, status_code=status_code, body=body, locked_until=None)

    def release(self, account_id: str, key: str) -> None:
        stored = self.t.idempotency.get((account_id, key))
        if stored is not None and stored.status_code is None:
            del self.t.idempotency[(account_id, key)]

    def purge(self, created_before: datetime, limit: int) -> int:
        old = sorted((v.created_at, k) for k, v in self.t.idempotency.items()
                     if v.created_at < created_before)[:limit]
        for _, k in old:
            del self.t.idempotency[k]
        return len(old)


class FakeUnitOfWork:
    accounts: AccountRepository
    stores: StoreRepository
    orders: OrderRepository
    work_orders: WorkOrderRepository
    rollups: RollupRepository
    events: EventRepository
    timers: TimerRepository
    notes: NoteRepository
    evidence: EvidenceRepository
    inbox: InboxRepository
    deliveries: DeliveryRepository
    outbox: OutboxRepository
    webhooks: WebhookRepository
    violations: ViolationRepository
    idempotency: IdempotencyRepository

    def __init__(self, db: FakeDatabase, *, write: bool = True) -> None:
        self._db = db
        self._write = write
        self._tables: Tables | None = None
        self._generation = -1
        self._signals: set[str] = set()

    def __enter__(self) -> Self:
        with self._db.lock:
            tables = copy.deepcopy(self._db.tables)
            self._generation = self._db.generation
        self._tables = tables
        self.accounts = FakeAccounts(tables)
        self.stores = FakeStores(tables)
        self.orders = FakeOrders(tables)
        self.work_orders = FakeWorkOrders(tables)
        self.rollups = FakeRollups(tables)
        self.events = FakeEvents(tables)
        self.timers = FakeTimers(tables)
        self.notes = FakeNotes(tables)
        self.evidence = FakeEvidence(tables)
        self.inbox = FakeInbox(tables)
        self.deliveries = FakeDeliveries(tables)
        self.outbox = FakeOutbox(tables)
        self.webhooks = FakeWebhooks(tables)
        self.violations = FakeViolations(tables)
        self.idempotency = FakeIdempotency(tables)
        return self

    def __exit__(self, *exc: object) -> None:
        self._tables = None  # whatever was not committed is gone

    def commit(self) -> None:
        assert self._tables is not None, "commit outside the with block"
        if not self._write:
            raise RuntimeError("a read-only unit of work cannot commit")
        with self._db.lock:
            if self._db.generation != self._generation:
                raise ConcurrentUpdate("another unit of work committed first")
            self._db.tables = copy.deepcopy(self._tables)
            self._db.generation += 1
            self._db.commits += 1
            self._generation = self._db.generation
            self._db.signals.extend(sorted(self._signals))
        self._signals = set()

    def after_commit(self, signal: str) -> None:
        self._signals.add(signal)


class FakeUnitOfWorkFactory:
    def __init__(self, db: FakeDatabase) -> None:
        self.db = db

    def __call__(self, *, write: bool = True) -> FakeUnitOfWork:
        return FakeUnitOfWork(self.db, write=write)


class FakeEvidenceStore:
    """Evidence bytes in memory, keyed by digest; published files are never replaced."""

    HEAD = HEAD_BYTES

    def __init__(self) -> None:
        self.staged: dict[Path, bytes] = {}
        self.published: dict[str, bytes] = {}
        self.reads = 0  # read_at calls, so tests can see the sniffer reach past the head
        self._seq = 0

    def stage(self, source: BinaryIO, max_bytes: int) -> StagedFile | None:
        buffer = io.BytesIO()
        while chunk := source.read(64 * 1024):
            buffer.write(chunk)
            if buffer.tell() > max_bytes:
                return None
        data = buffer.getvalue()
        try:
            text = is_plain_text(data.decode("utf-8"))
        except UnicodeDecodeError:
            text = False
        self._seq += 1
        path = Path(f"/fake-staging/{self._seq}")
        self.staged[path] = data
        return StagedFile(path, hashlib.sha256(data).hexdigest(), len(data),
                          data[:self.HEAD], text)

    def publish(self, staged: StagedFile) -> None:
        data = self.staged.pop(staged.path)
        self.published.setdefault(staged.sha256, data)

    def read_at(self, staged: StagedFile, offset: int, size: int) -> bytes:
        if offset < 0 or not 0 <= size <= MAX_READ_AT:  # as LocalEvidenceStore
            raise ValueError(f"read_at({offset}, {size}) is out of bounds")
        self.reads += 1
        return self.staged[staged.path][offset:offset + size]

    def discard(self, staged: StagedFile) -> None:
        self.staged.pop(staged.path, None)

    def open(self, sha256: str) -> Iterator[bytes]:
        yield self.published[sha256]

    def path(self, sha256: str) -> Path:
        return Path("/fake-evidence") / sha256


def fake_context(clock: Clock, policy: Policy | None = None) -> ServiceContext:
    """A ServiceContext over a fresh in-memory database."""
    return ServiceContext(uow=FakeUnitOfWorkFactory(FakeDatabase()), clock=clock,
                          policy=policy or Policy(), evidence_store=FakeEvidenceStore())


def fake_db(ctx: ServiceContext) -> FakeDatabase:
    """The in-memory database behind a `fake_context`."""
    assert isinstance(ctx.uow, FakeUnitOfWorkFactory)
    return ctx.uow.db
