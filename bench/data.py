"""Test data: people through the services, bulk rows through plain SQL.

Stores and accounts are made through the services (a handful of commits). Large sets of
orders and work orders are built as domain objects (`WorkOrder.open` and the aggregate's
own methods), their audit events chained with `audit.extend` exactly as `commit_change`
does, and written in bulk (executemany on SQLite, COPY on PostgreSQL), thousands per
transaction: fast, and every row is one the services could have written (valid chains,
the timers the state needs). `Template` copies such rows under new ids, for sets larger
than there are stories worth telling.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Table
from sqlalchemy.engine import Dialect
from sqlalchemy.types import JSON, TypeEngine

from collabdesk.adapters.db import tables as t
from collabdesk.adapters.db.mapping import work_order_values
from collabdesk.adapters.db.types import UTCDateTime
from collabdesk.domain.audit import VISIBILITIES, extend
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.states import Role
from collabdesk.domain.timers import timers_for
from collabdesk.domain.values import (
    Actor,
    Category,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Store,
    StorePlatform,
)
from collabdesk.services import accounts, catalog
from collabdesk.services.access import actor_of
from collabdesk.services.context import ServiceContext

from .db import writing


@dataclass(frozen=True)
class Person:
    actor: Actor
    token: str


@dataclass(frozen=True)
class Platform:
    """The platform's staff, shared by every store of a database."""

    adjudicator: Person
    verifier: Person
    triage: Person


@dataclass(frozen=True)
class Cast:
    """One store and its people: the owner, an agent holding the work-order permission
    (so the store's notifications go to the agent), and consumers."""

    store_id: str
    owner: Person
    agent: Person
    consumers: list[Person]
    platform: Platform


def _person(ctx: ServiceContext, name: str, role: Role, store_id: str | None = None) -> Person:
    account, token = accounts.create_account(ctx, None, name=name, role=role,
                                             store_id=store_id)
    return Person(actor_of(account), token)


def make_platform(ctx: ServiceContext) -> Platform:
    return Platform(_person(ctx, "Adjudicator", Role.ADJUDICATOR),
                    _person(ctx, "Verifier", Role.VERIFIER),
                    _person(ctx, "Triage", Role.TRIAGE))


def make_cast(ctx: ServiceContext, platform: Platform, store_id: str, *,
              consumers: int = 8, kind: StorePlatform = StorePlatform.TMALL) -> Cast:
    catalog.create_store(ctx, None, Store(store_id, f"Bench store {store_id}", kind))
    owner = _person(ctx, "Owner", Role.MERCHANT_OWNER, store_id)
    agent = _person(ctx, "After-sales agent", Role.MERCHANT_AGENT, store_id)
    people = [_person(ctx, f"Consumer {i}", Role.CONSUMER) for i in range(consumers)]
    return Cast(store_id, owner, agent, people, platform)


CLAIM = "The item arrived with a cracked screen; photos attached in the chat."
REQUESTED = Remedy(RemedyType.REFUND, 5_000)


def order(cast: Cast, order_id: str, n: int, paid_at: datetime,
          kind: OrderKind = OrderKind.STANDARD) -> Order:
    """The n-th order of a store, paid at `paid_at`, for one of its consumers."""
    consumer = cast.consumers[n % len(cast.consumers)].actor
    return Order(order_id, cast.store_id, consumer.id, kind, 10_000 + (n % 50) * 100, paid_at)


def opened(order_: Order, work_order_id: str, now: datetime, policy: Policy,
           opener: Actor | None = None) -> WorkOrder:
    """A work order opened on `order_` at `now` by its consumer (or `opener`)."""
    actor = opener or Actor(order_.consumer_id, Role.CONSUMER)
    return WorkOrder.open(work_order_id=work_order_id, order=order_,
                          category=Category.DAMAGED, claim=CLAIM,
                          requested_remedy=REQUESTED, actor=actor, now=now, policy=policy,
                          order_has_open_work_order=False)


# Flushed in this order, so foreign keys always point at rows already written.
_ORDER = (t.orders, t.work_orders, t.contacts, t.events, t.timers)


@dataclass
class Rows:
    """Rows waiting to be written, by table."""

    policy: Policy
    by_table: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    work_orders: int = 0

    def _add(self, table: Table, row: dict[str, Any]) -> None:
        self.by_table.setdefault(table, []).append(row)

    def order(self, order_: Order, created_at: datetime) -> None:
        self._add(t.orders, {"id": order_.id, "store_id": order_.store_id,
                             "consumer_id": order_.consumer_id, "kind": str(order_.kind),
                             "amount_cents": order_.amount_cents, "paid_at": order_.paid_at,
                             "created_at": created_at})

    def work_order(self, wo: WorkOrder, *, fired_before: datetime | None = None,
                   audit: bool = True) -> None:
        """The work order as `commit_change` would leave it: its events chained onto its
        heads, its contacts, and the pending timers its current state needs (those due
        before `fired_before` have fired already, and their rows are left out). Without
        `audit`, its events are dropped and its chains left empty (as valid a start for
        the next event as any)."""
        events, wo.events = wo.events, []
        for visibility in VISIBILITIES if audit else ():
            mine = [e for e in events if e.visibility == visibility]
            if mine:
                links, wo.chains[visibility] = extend(wo.id, visibility, wo.chains[visibility],
                                                      mine)
                for k in links:
                    self._add(t.events, {
                        "work_order_id": k.work_order_id, "seq": k.seq, "at": k.at,
                        "actor_id": k.actor_id, "type": k.type, "data": k.data_json,
                        "prev_hash": k.prev_hash, "hash": k.hash, "visibility": k.visibility})
        self._add(t.work_orders, {**work_order_values(wo), "version": wo.version})
        for c in wo.contacts:
            self._add(t.contacts, {
                "id": c.id, "work_order_id": c.work_order_id, "channel": str(c.channel),
                "contacted_at": c.contacted_at, "outcome": str(c.outcome),
                "summary": c.summary, "evidence_ids": list(c.evidence_ids),
                "recorded_by": c.recorded_by, "recorded_at": c.recorded_at})
        if wo.is_open:
            for spec in timers_for(wo, self.policy):
                if fired_before is None or spec.due_at >= fired_before:
                    self._add(t.timers, {"work_order_id": wo.id, "kind": str(spec.kind),
                                         "due_at": spec.due_at,
                                         "created_at": wo.state_entered_at,
                                         "fired_at": None, "cancelled_at": None})
        self.work_orders += 1

    def count(self) -> int:
        return sum(len(rows) for rows in self.by_table.values())

    def write(self, engine: Engine) -> int:
        """Write everything in one transaction; returns how many rows."""
        written = 0
        with writing(engine) as conn:
            for table in _ORDER:
                rows = self.by_table.pop(table, [])
                if rows:
                    bulk_insert(conn, table, rows)
                    written += len(rows)
        assert not self.by_table, f"no flush order for {list(self.by_table)}"
        self.work_orders = 0
        return written


def write_chunks(engine: Engine, chunks: Iterable[Rows],
                 progress: Callable[[int], object] | None = None) -> int:
    """Write each chunk in a transaction of its own, from a thread, while the caller
    builds the next (the drivers let go of the GIL while the database works); `progress`
    hears the work orders written so far. Returns how many work orders."""
    total = 0
    with ThreadPoolExecutor(1, thread_name_prefix="bench-writer") as writer:
        pending: Future[int] | None = None
        for rows in chunks:
            if pending is not None:
                pending.result()
                if progress:
                    progress(total)
            total += rows.work_orders
            pending = writer.submit(rows.write, engine)
        if pending is not None:
            pending.result()
    return total


def write_all(engine: Engine, policy: Policy, items: Iterable[WorkOrder | Order],
              *, fired_before: Callable[[WorkOrder], datetime | None] | None = None,
              chunk: int = 5_000, progress: Callable[[int], object] | None = None) -> int:
    """Write orders and work orders (each order before the work orders that follow it),
    `chunk` work orders per transaction; `fired_before(wo)` says until when its timers
    have already fired. Returns how many work orders."""
    def chunks() -> Iterator[Rows]:
        rows = Rows(policy)
        for item in items:
            if isinstance(item, Order):
                rows.order(item, item.paid_at)
                continue
            rows.work_order(item, fired_before=fired_before(item) if fired_before else None)
            if rows.work_orders >= chunk:
                yield rows
                rows = Rows(policy)
        if rows.count():
            yield rows
    return write_chunks(engine, chunks(), progress)


@dataclass(frozen=True)
class Template:
    """The rows of one order and its work order (without audit events, whose hashes are
    bound to the work order's id), to be written again under other ids."""

    by_table: dict[Table, list[dict[str, Any]]]

    @classmethod
    def of(cls, policy: Policy, order_: Order, wo: WorkOrder, *,
           fired_before: datetime | None) -> Template:
        rows = Rows(policy)
        rows.order(order_, order_.paid_at)
        rows.work_order(wo, fired_before=fired_before, audit=False)
        return cls(rows.by_table)

    def copy_into(self, rows: Rows, work_order_id: str, order_id: str) -> None:
        for table, mine in self.by_table.items():
            for n, row in enumerate(mine):
                copy = dict(row)
                if table is t.orders:
                    copy["id"] = order_id
                elif table is t.work_orders:
                    copy["id"], copy["order_id"] = work_order_id, order_id
                else:
                    copy["work_order_id"] = work_order_id
                    if table is t.contacts:
                        copy["id"] = f"ct_{work_order_id}_{n}"
                rows.by_table.setdefault(table, []).append(copy)
        rows.work_orders += 1


def before_own_deadline(wo: WorkOrder) -> datetime | None:
    """For `write_all`: the reminders before a work order's reply deadline have fired."""
    return wo.due_at


def pending_timeouts(cast: Cast, policy: Policy, *, prefix: str, start: int, count: int,
                     first_due: datetime, spacing: timedelta) -> Iterable[WorkOrder | Order]:
    """`count` work orders awaiting the store, each with its order, the i-th due at
    `first_due + i * spacing` (opened a reply window earlier): each has a pending
    `reply_timeout` timer (its reminders fire before it). Ids sort in due order."""
    for i in range(start, start + count):
        due = first_due + (i - start) * spacing
        created = due - policy.reply_window
        o = order(cast, f"{prefix}-o{i:08d}", i, created - timedelta(days=2))
        yield o
        yield opened(o, f"wo_{prefix}{i:08d}", created, policy)


# ---- bulk writing -----------------------------------------------------------------------

Convert = Callable[[Any], Any]


def _sqlite_instant(value: datetime | None) -> str | None:
    """UTCDateTime's SQLite text (naive UTC, always with microseconds), without going
    through SQLAlchemy's per-value processors, which cost more than the insert."""
    if value is None:
        return None
    if value.tzinfo is not UTC:
        value = value.astimezone(UTC)
    return value.isoformat(" ", "microseconds")[:26]


def _json(value: Any) -> str:
    # SQLAlchemy's serializer; None is stored as JSON null (not SQL NULL), as the app does.
    return "null" if value is None else json.dumps(value)


def _converter(type_: TypeEngine[Any], dialect: Dialect) -> Convert | None:
    if isinstance(type_, UTCDateTime):
        return _sqlite_instant if dialect.name == "sqlite" else None
    if isinstance(type_, JSON):
        return _json
    if dialect.name == "sqlite":
        processor: Convert | None = type_.dialect_impl(dialect).bind_processor(dialect)
        return processor
    return None


def _check(table: Table, keys: list[str], row: list[Any], dialect: Dialect) -> None:
    """On SQLite the stored text is what sorts and compares: make sure the fast path
    writes exactly what SQLAlchemy's own processors write."""
    if dialect.name != "sqlite":
        return
    for key, value in zip(keys, row, strict=True):
        type_ = table.c[key].type
        if value is None or not isinstance(type_, UTCDateTime | JSON):
            continue
        processor = type_.dialect_impl(dialect).bind_processor(dialect)
        assert processor is not None
        original = value
        if isinstance(type_, JSON):
            original = json.loads(value)
        else:
            original = datetime.fromisoformat(value).replace(tzinfo=UTC)
        if processor(original) != value:
            raise AssertionError(f"{table.name}.{key}: bulk writes {value!r}, SQLAlchemy "
                                 f"writes {processor(original)!r}")


def bulk_insert(conn: Connection, table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert `rows` (dicts with the same keys) with the driver's fastest bulk path:
    executemany on SQLite, COPY on PostgreSQL, values converted as the app's column types
    would convert them."""
    dialect = conn.dialect
    keys = list(rows[0])
    get = itemgetter(*keys)
    converted = [(i, f) for i, k in enumerate(keys)
                 if (f := _converter(table.c[k].type, dialect)) is not None]
    # Copies of a template share their values: convert each object once (the rows keep
    # them alive, so their ids stay theirs).
    memos: list[dict[int, Any]] = [{} for _ in converted]
    values: list[list[Any]] = []
    for r in rows:
        value = list(get(r)) if len(keys) > 1 else [get(r)]
        for (i, f), memo in zip(converted, memos, strict=True):
            v = value[i]
            key = id(v)
            if key in memo:
                value[i] = memo[key]
            else:
                value[i] = memo[key] = f(v)
        values.append(value)
    _check(table, keys, values[0], dialect)
    quote = dialect.identifier_preparer.quote
    columns = ", ".join(quote(k) for k in keys)
    raw: Any = conn.connection.driver_connection
    if dialect.name == "sqlite":
        marks = ", ".join("?" for _ in keys)
        cursor = raw.cursor()
        try:
            cursor.executemany(f"INSERT INTO {quote(table.name)} ({columns}) VALUES ({marks})",
                               values)
        finally:
            cursor.close()
        return
    with raw.cursor() as cursor, cursor.copy(
            f"COPY {quote(table.name)} ({columns}) FROM STDIN") as copy:
        for value in values:
            copy.write_row(value)
