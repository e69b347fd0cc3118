"""What the services need from the outside world, as protocols: storage and the clock.
The SQL adapter implements the repositories (adapters/db/repositories.py), adapters/clock.py
the clocks; tests/fakes.py implements them in memory."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Protocol, Self

from collabdesk.domain.audit import ChainHead, ChainLink
from collabdesk.domain.metrics import Counters, Rollup, WorkOrderFacts
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import (
    Account,
    Delivery,
    EvidenceRecord,
    InboxItem,
    Note,
    OutboxMessage,
    Timer,
    Webhook,
)
from collabdesk.domain.states import State
from collabdesk.domain.timers import TimerSpec
from collabdesk.domain.values import Contact, Order, Store
from collabdesk.domain.violations import LedgerEntry, Violation


class Clock(Protocol):
    """The one source of "now" (style.md habit 4): timezone-aware UTC."""

    def now(self) -> datetime: ...


class MovableClock(Clock, Protocol):
    """A clock tests and `--test-clock` move forward."""

    def advance(self, seconds: float) -> datetime: ...


@dataclass(frozen=True)
class WorkOrderQuery:
    """A page of work orders, soonest `due_at` first (none last), then by id.

    Scope: `consumer_id` and/or `scope_store_id` restrict to what the caller may see.
    """

    limit: int
    consumer_id: str | None = None
    scope_store_id: str | None = None
    state: State | None = None
    store_id: str | None = None
    due_before: datetime | None = None
    overdue: bool | None = None  # internal SLA breached (verification / adjudication)
    after: tuple[datetime | None, str] | None = None  # (due_at, id) of the last item seen


class AccountRepository(Protocol):
    def add(self, account: Account, token_hash: str, password_hash: str | None) -> None: ...
    def get(self, account_id: str) -> Account | None: ...
    def by_token_hash(self, token_hash: str) -> Account | None: ...
    def by_login(self, login: str) -> tuple[Account, str | None] | None: ...
    def set_token_hash(self, account_id: str, token_hash: str) -> None: ...
    def store_staff(self, store_id: str) -> list[Account]: ...
    def set_handles_work_orders(self, account_id: str, value: bool) -> None: ...
    def set_contact(self, account_id: str, phone: str | None, email: str | None,
                    language: str) -> None:
        """Where and in which language the account is notified."""
    def get_many(self, account_ids: list[str]) -> list[Account]:
        """The accounts among these ids that exist, in no particular order."""


class StoreRepository(Protocol):
    def add(self, store: Store, now: datetime) -> None: ...
    def get(self, store_id: str) -> Store | None: ...
    def existing(self, store_ids: list[str]) -> set[str]:
        """Which of these stores exist."""


class OrderRepository(Protocol):
    def add(self, order: Order, now: datetime) -> None: ...
    def get(self, order_id: str) -> Order | None: ...
    def existing_ids(self, order_ids: list[str]) -> set[str]: ...
    def add_many(self, orders: list[Order], now: datetime) -> None:
        """Insert new orders in one statement; AlreadyExists if any id is taken (the
        caller's transaction is then spoilt: roll it back)."""


class WorkOrderRepository(Protocol):
    def add(self, wo: WorkOrder) -> None: ...
    def get(self, work_order_id: str) -> WorkOrder | None:
        """In a writing unit of work, the row stays locked until the commit, so writers to
        one work order queue instead of racing (a no-op on SQLite, which has one writer)."""
    def save(self, wo: WorkOrder, *, new_version: bool = True) -> None:
        """Guarded update on `wo.version`; raises ConcurrentUpdate if another won.
        `new_version=False` keeps the version (a change no party can see)."""
    def save_many(self, saves: list[tuple[WorkOrder, int, int]]) -> None:
        """Guarded updates of (aggregate, version loaded, new version), in one statement;
        raises ConcurrentUpdate if any row moved on. Sets each `wo.version`."""
    def add_contact(self, contact: Contact) -> None: ...
    def has_open(self, order_id: str) -> bool: ...
    def query(self, query: WorkOrderQuery) -> list[WorkOrder]: ...


class RollupRepository(Protocol):
    """The daily metric rollups (domain/metrics.py): counters per (store, UTC day) and
    reply counts per (store, day, minute), changed in the transaction of the facts."""

    def apply(self, change: Rollup) -> None:
        """Add a change (the deltas of any number of work orders, orders, stores and days)
        to the rollups: one upsert per table, rows in key order; nothing when empty."""
    def window(self, store_id: str, first: date, end: date) -> tuple[Counters, dict[int, int]]:
        """The store's counters summed over the days [first, end), and its reply counts by
        minute."""
    def daily(self, store_id: str, first: date, end: date
              ) -> tuple[dict[date, Counters], dict[date, dict[int, int]]]:
        """The store's counters and reply minutes of each day in [first, end) that has
        any (days without a row are left out)."""
    def clear(self) -> None:
        """Empty the rollups, and keep other writers of rollups waiting until this
        transaction ends (a rebuild refills them in the same transaction)."""
    def work_order_facts(self, after: str | None, limit: int
                         ) -> list[tuple[str, str, WorkOrderFacts]]:
        """A page of (work order id, store id, facts) by id, after the id `after`."""
    def paid_orders(self, after: str | None, limit: int) -> list[tuple[str, str, datetime]]:
        """A page of (order id, store id, paid_at) by id, after the id `after`."""


class EventRepository(Protocol):
    def append(self, links: list[ChainLink]) -> None: ...
    def after(self, work_order_id: str, visibility: str, after_seq: int, limit: int,
              actor_id: str | None = None) -> list[ChainLink]:
        """The chain's links after `after_seq`, oldest first; only `actor_id`'s if given."""
    def anchors(self, after: str | None, limit: int) -> list[tuple[str, dict[str, ChainHead]]]:
        """A page of work orders by id, each with the chain heads its row records."""
    def chain(self, work_order_id: str, visibility: str) -> list[ChainLink]: ...


class TimerRepository(Protocol):
    def schedule(self, work_order_id: str, specs: list[TimerSpec], now: datetime) -> None: ...
    def schedule_many(self, items: list[tuple[str, TimerSpec, datetime]]) -> None:
        """(work order id, spec, created at) rows, in one statement."""
    def cancel_pending(self, work_order_id: str, now: datetime) -> None: ...
    def cancel_pending_many(self, items: list[tuple[str, datetime]]) -> None:
        """Cancel the pending timers of each (work order id, at), in one statement."""
    def due(self, now: datetime, limit: int) -> list[Timer]: ...
    def claim(self, timer_id: int, now: datetime) -> bool:
        """Mark fired if still pending; False when fired or cancelled meanwhile."""
    def lock_due(self, now: datetime, limit: int, exclude: frozenset[int]
                 ) -> list[tuple[Timer, WorkOrder]]:
        """Up to `limit` pending timers due by `now`, oldest first, each with its work
        order loaded and row-locked. Work orders another transaction holds are skipped
        (their timers wait for the next batch), so runners never queue on each other."""
    def mark_fired(self, timer_ids: list[int], now: datetime) -> int:
        """Mark pending timers fired, in one statement; how many were still pending."""


class NoteRepository(Protocol):
    def add(self, note: Note) -> None: ...
    def for_work_order(self, work_order_id: str) -> list[Note]: ...


class EvidenceRepository(Protocol):
    def add(self, record: EvidenceRecord) -> None: ...
    def get(self, evidence_id: str) -> EvidenceRecord | None: ...
    def get_many(self, evidence_ids: list[str]) -> list[EvidenceRecord]: ...
    def attach(self, evidence_ids: list[str], work_order_id: str, now: datetime,
               visibility: str = "all") -> None:
        """Attach to the work order; attaching for "all" widens a "platform" attachment."""
    def attached_to(self, evidence_id: str) -> list[tuple[str, str]]:
        """(work order id, visibility) of every attachment."""


class InboxRepository(Protocol):
    def add(self, item: InboxItem) -> None: ...
    def add_many(self, items: list[InboxItem]) -> None: ...
    def page(self, recipient_id: str, before: tuple[datetime, str] | None,
             limit: int) -> list[InboxItem]: ...
    def mark_read(self, recipient_id: str, item_id: str) -> bool: ...
    def stored_since(self, since: datetime, limit: int) -> list[tuple[datetime, InboxItem]]:
        """Items of every recipient stored at or after `since` (the real time of the
        insert), oldest first, with when each was stored: what live streams poll."""
    def stored_after(self, recipient_id: str, item_id: str, limit: int
                     ) -> list[tuple[datetime, InboxItem]] | None:
        """The recipient's items stored after their item `item_id`, oldest first; None
        when they have no such item (a resume from an unknown id)."""


class DeliveryRepository(Protocol):
    def add(self, delivery: Delivery) -> None: ...
    def add_many(self, deliveries: list[Delivery]) -> None: ...
    def for_work_order(self, work_order_id: str) -> list[Delivery]: ...
    def update_many(self, lines: list[Delivery]) -> None:
        """Overwrite lines by id (a message's pending line becomes its first attempt)."""
    def for_store(self, store_id: str, before: tuple[datetime, str] | None, limit: int,
                  *, failures_only: bool = False) -> list[Delivery]:
        """Lines to the store's staff and webhooks, newest first."""


class OutboxRepository(Protocol):
    def add_many(self, messages: list[OutboxMessage]) -> None: ...
    def claim_due(self, now: datetime, limit: int, lease_until: datetime, token: str,
                  real_now: datetime) -> list[OutboxMessage]:
        """Lease up to `limit` messages due by `now`, in due order, to the caller until
        `lease_until` (real time): none another dispatcher holds an unexpired lease on,
        none another transaction has locked (PostgreSQL: SKIP LOCKED)."""
    def held(self, token: str, ids: list[int]) -> set[int]:
        """Which of these messages the lease `token` still holds, locked until the end
        of the transaction (no other dispatcher can take them over meanwhile)."""
    def release(self, ids: list[int], token: str) -> None:
        """Give back, unattempted, messages held under `token`."""
    def record(self, messages: list[OutboxMessage], token: str) -> int:
        """Store each message's attempts, status, due time and error if the caller's
        lease still holds, and drop the lease; how many were stored."""
    def by_event(self, event_id: str, recipient_id: str) -> OutboxMessage | None: ...
    def close_open(self, recipient_id: str, reason: str, now: datetime
                   ) -> list[OutboxMessage]:
        """Mark the recipient's unsent messages failed (a webhook removed or switched
        off); the messages closed."""
    def next_due(self) -> datetime | None:
        """The earliest due time of an unsent message."""
    def backlog(self) -> dict[str, tuple[int, datetime | None]]:
        """Unsent messages by channel: how many, and the earliest due time."""
    def clear_leases(self) -> int:
        """Drop every lease (a sole dispatcher starting after a crash)."""
    def purge(self, done_before: datetime, limit: int) -> int:
        """Delete up to `limit` messages finished before the given time."""


class WebhookRepository(Protocol):
    def add(self, hook: Webhook) -> None: ...
    def get(self, hook_id: str) -> Webhook | None: ...
    def for_store(self, store_id: str) -> list[Webhook]: ...
    def get_many(self, hook_ids: list[str]) -> list[Webhook]: ...
    def delete(self, hook_id: str) -> bool: ...
    def save(self, hook: Webhook) -> None: ...


class ViolationRepository(Protocol):
    def add(self, violation: Violation) -> None: ...
    def get(self, violation_id: str) -> Violation | None: ...
    def save(self, violation: Violation) -> None: ...
    def append_ledger(self, entry: LedgerEntry) -> None: ...
    def ledger(self, store_id: str, year: int) -> list[LedgerEntry]: ...


@dataclass(frozen=True)
class StoredResponse:
    request_hash: str
    status_code: int | None  # None while the first request is still running
    body: str | None
    created_at: datetime
    locked_until: datetime | None = None


class IdempotencyRepository(Protocol):
    def get(self, account_id: str, key: str) -> StoredResponse | None: ...
    def reserve(self, account_id: str, key: str, request_hash: str, now: datetime,
                locked_until: datetime) -> bool:
        """Insert a reservation; False when the key is already there (nothing changes)."""
    def take_over(self, account_id: str, key: str, request_hash: str, now: datetime,
                  locked_until: datetime, expired_before: datetime) -> bool:
        """Replace a reservation whose lease lapsed, or any row created before
        `expired_before`, with a new reservation; False when neither applies."""
    def complete(self, account_id: str, key: str, status_code: int, body: str) -> None: ...
    def release(self, account_id: str, key: str) -> None: ...
    def purge(self, created_before: datetime, limit: int) -> int:
        """Delete up to `limit` keys created before the given time; how many went."""


class UnitOfWork(Protocol):
    """One transaction. Leaving the `with` block without `commit()` rolls back."""

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

    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: object, exc: object, tb: object) -> None: ...
    def commit(self) -> None: ...
    def after_commit(self, signal: str) -> None:
        """Ask for `signal` ("outbox", "inbox") to be raised once this transaction has
        committed (the dispatcher and the live streams wake up; see ServiceContext)."""


class UnitOfWorkFactory(Protocol):
    def __call__(self, *, write: bool = True) -> UnitOfWork: ...


@dataclass(frozen=True)
class SendResult:
    """What one attempt came to. `delivered` False with `final` True: not worth another
    try (no channel configured: logged only, recorded as skipped)."""

    delivered: bool
    reason: str | None = None
    final: bool = False


class Sender(Protocol):
    """One external channel (sms, email, webhook), implemented in adapters/channels.py.
    `secret` is the webhook's signing secret (None on other channels). Never raises: a
    failure is a SendResult saying why."""

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult: ...
