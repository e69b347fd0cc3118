"""The SQL unit of work: one connection, one transaction, repositories bound to it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Self

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from collabdesk.domain.errors import ConcurrentUpdate, ValidationFailed
from collabdesk.services.ports import (
    AccountRepository,
    DeliveryRepository,
    EventRepository,
    EvidenceRepository,
    IdempotencyRepository,
    InboxRepository,
    NoteRepository,
    OrderRepository,
    OutboxRepository,
    RollupRepository,
    StoreRepository,
    TimerRepository,
    ViolationRepository,
    WebhookRepository,
    WorkOrderRepository,
)

from .engine import WRITE
from .outbox import SqlOutbox, SqlWebhooks
from .repositories import (
    SqlAccounts,
    SqlDeliveries,
    SqlEvents,
    SqlEvidence,
    SqlIdempotency,
    SqlInbox,
    SqlNotes,
    SqlOrders,
    SqlStores,
    SqlTimers,
    SqlViolations,
    SqlWorkOrders,
)
from .rollups import SqlRollups


class SqlUnitOfWork:
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

    def __init__(self, engine: Engine, *, write: bool = True,
                 on_commit: Callable[[set[str]], None] | None = None) -> None:
        self._engine = engine
        self._write = write
        self._conn: Connection | None = None
        self._on_commit = on_commit
        self._signals: set[str] = set()

    def __enter__(self) -> Self:
        conn = self._engine.connect()
        if self._write:
            conn = conn.execution_options(**{WRITE: True})
        conn.begin()
        self._conn = conn
        self.accounts = SqlAccounts(conn)
        self.stores = SqlStores(conn)
        self.orders = SqlOrders(conn)
        self.work_orders = SqlWorkOrders(conn, lock=self._write)
        self.rollups = SqlRollups(conn)
        self.events = SqlEvents(conn)
        self.timers = SqlTimers(conn)
        self.notes = SqlNotes(conn)
        self.evidence = SqlEvidence(conn)
        self.inbox = SqlInbox(conn)
        self.deliveries = SqlDeliveries(conn)
        self.outbox = SqlOutbox(conn)
        self.webhooks = SqlWebhooks(conn, lock=self._write)
        self.violations = SqlViolations(conn, lock=self._write)
        self.idempotency = SqlIdempotency(conn, lock=self._write)
        return self

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        assert self._conn is not None
        try:
            if self._conn.in_transaction():
                self._conn.rollback()
        finally:
            self._conn.close()
            self._conn = None
        if isinstance(exc, DBAPIError) and _lost_a_race(exc):
            # The database chose this transaction as a deadlock or serialization victim:
            # nothing was written, so the service may rerun the use case.
            raise ConcurrentUpdate(f"transaction aborted by the database: {exc.orig}") from exc
        if isinstance(exc, OverflowError) or (
                isinstance(exc, DBAPIError) and _refused_a_value(exc)):
            # A value the edges should have bounded (a last line of defence): the
            # request is wrong, not the server, and nothing was written.
            raise ValidationFailed(
                f"a value is out of range for the database: {_first_line(exc)}") from exc

    def commit(self) -> None:
        assert self._conn is not None
        try:
            self._conn.commit()
        except DBAPIError as exc:
            if _lost_a_race(exc):
                raise ConcurrentUpdate(f"commit aborted by the database: {exc.orig}") from exc
            raise
        signals, self._signals = self._signals, set()
        if signals and self._on_commit is not None:
            self._on_commit(signals)

    def after_commit(self, signal: str) -> None:
        self._signals.add(signal)


# PostgreSQL: serialization_failure, deadlock_detected.
_RETRYABLE_SQLSTATES = frozenset({"40001", "40P01"})


def _lost_a_race(exc: DBAPIError) -> bool:
    return getattr(exc.orig, "sqlstate", None) in _RETRYABLE_SQLSTATES


def _refused_a_value(exc: DBAPIError) -> bool:
    """PostgreSQL's class 22, "data exception": out of range, bad encoding, NUL in text."""
    return str(getattr(exc.orig, "sqlstate", None) or "").startswith("22")


def _first_line(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None) or exc
    return str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__


class SqlUnitOfWorkFactory:
    """Units of work on `engine`; `on_commit` hears the signals a committed one raised."""

    def __init__(self, engine: Engine,
                 on_commit: Callable[[set[str]], None] | None = None) -> None:
        self.engine = engine
        self.on_commit = on_commit

    def __call__(self, *, write: bool = True) -> SqlUnitOfWork:
        return SqlUnitOfWork(self.engine, write=write, on_commit=self.on_commit)
