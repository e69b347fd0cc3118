"""SQL implementations of the service ports. Repositories never commit (habit 2).

Hot statements are built once, at import, with bound parameters: building a statement
(`insert(t).values(**row)`) costs more than running it on SQLite, and a prebuilt one keeps
its cache key, so SQLAlchemy finds its compiled form at once. No savepoints: a refused
insert aborts the use case anyway, and its transaction is rolled back whole.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Connection,
    and_,
    bindparam,
    insert,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from collabdesk.domain.audit import ALL, PLATFORM, ChainHead, ChainLink
from collabdesk.domain.errors import AlreadyExists, ConcurrentUpdate, DuplicateOpenWorkOrder
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import (
    Account,
    Delivery,
    DeliveryStatus,
    EvidenceRecord,
    InboxItem,
    InboxKind,
    Note,
    Timer,
)
from collabdesk.domain.states import Role
from collabdesk.domain.timers import TimerSpec
from collabdesk.domain.values import (
    Contact,
    Order,
    OrderKind,
    Store,
    StorePlatform,
)
from collabdesk.domain.violations import (
    LedgerEntry,
    Severity,
    Violation,
    ViolationDecision,
    ViolationKind,
    ViolationState,
)
from collabdesk.services.ports import StoredResponse, WorkOrderQuery

from . import tables as t
from .mapping import (
    FAR_FUTURE,
    contact_from_row,
    work_order_changes,
    work_order_from_row,
    work_order_values,
)
from .types import UTCDateTime
from .wakeup import notify_if_due_soon


class _Repo:
    def __init__(self, conn: Connection, *, lock: bool = False) -> None:
        self.conn = conn
        # In a writing unit of work, aggregates are loaded with their row lock, so writers
        # to one work order (or violation) queue on it instead of racing to a conflict.
        self.lock = lock


def _account(m: Any) -> Account:
    return Account(m["id"], m["name"], Role(m["role"]), m["store_id"], m["phone"], m["email"],
                   m["login"], m["handles_work_orders"], m["created_at"], m["language"])


_ACCOUNT_BY_ID = select(t.accounts).where(t.accounts.c.id == bindparam("id"))
_ACCOUNT_BY_TOKEN = select(t.accounts).where(t.accounts.c.token_hash == bindparam("token_hash"))
_STORE_STAFF = (select(t.accounts).where(t.accounts.c.store_id == bindparam("store_id"))
                .order_by(t.accounts.c.created_at, t.accounts.c.id))


class SqlAccounts(_Repo):
    def add(self, account: Account, token_hash: str, password_hash: str | None) -> None:
        try:
            self.conn.execute(insert(t.accounts).values(
                id=account.id, name=account.name, role=str(account.role),
                store_id=account.store_id, phone=account.phone, email=account.email,
                login=account.login, password_hash=password_hash, token_hash=token_hash,
                handles_work_orders=account.handles_work_orders,
                created_at=account.created_at, language=account.language))
        except IntegrityError as exc:
            raise AlreadyExists(f"login {account.login!r} is already taken") from exc

    def get(self, account_id: str) -> Account | None:
        row = self.conn.execute(_ACCOUNT_BY_ID, {"id": account_id}).first()
        return _account(row._mapping) if row else None

    def by_token_hash(self, token_hash: str) -> Account | None:
        row = self.conn.execute(_ACCOUNT_BY_TOKEN, {"token_hash": token_hash}).first()
        return _account(row._mapping) if row else None

    def by_login(self, login: str) -> tuple[Account, str | None] | None:
        row = self.conn.execute(select(t.accounts).where(t.accounts.c.login == login)).first()
        return (_account(row._mapping), row._mapping["password_hash"]) if row else None

    def set_token_hash(self, account_id: str, token_hash: str) -> None:
        self.conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                          .values(token_hash=token_hash))

    def store_staff(self, store_id: str) -> list[Account]:
        rows = self.conn.execute(_STORE_STAFF, {"store_id": store_id})
        return [_account(r._mapping) for r in rows]

    def set_handles_work_orders(self, account_id: str, value: bool) -> None:
        self.conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                          .values(handles_work_orders=value))

    def set_contact(self, account_id: str, phone: str | None, email: str | None,
                    language: str) -> None:
        self.conn.execute(update(t.accounts).where(t.accounts.c.id == account_id)
                          .values(phone=phone, email=email, language=language))

    def get_many(self, account_ids: list[str]) -> list[Account]:
        if not account_ids:
            return []
        rows = self.conn.execute(select(t.accounts).where(t.accounts.c.id.in_(account_ids)))
        return [_account(r._mapping) for r in rows]


_STORE_BY_ID = select(t.stores).where(t.stores.c.id == bindparam("id"))


class SqlStores(_Repo):
    def add(self, store: Store, now: datetime) -> None:
        try:
            self.conn.execute(insert(t.stores).values(
                id=store.id, name=store.name, platform=str(store.platform), created_at=now))
        except IntegrityError as exc:
            raise AlreadyExists(f"store {store.id!r} already exists") from exc

    def get(self, store_id: str) -> Store | None:
        row = self.conn.execute(_STORE_BY_ID, {"id": store_id}).first()
        if row is None:
            return None
        m = row._mapping
        return Store(m["id"], m["name"], StorePlatform(m["platform"]))

    def existing(self, store_ids: list[str]) -> set[str]:
        if not store_ids:
            return set()
        rows = self.conn.execute(select(t.stores.c.id).where(t.stores.c.id.in_(store_ids)))
        return {r[0] for r in rows}


_ORDER_BY_ID = select(t.orders).where(t.orders.c.id == bindparam("id"))
_INSERT_ORDER = insert(t.orders)


class SqlOrders(_Repo):
    def add(self, order: Order, now: datetime) -> None:
        try:
            self.conn.execute(_INSERT_ORDER, {
                "id": order.id, "store_id": order.store_id, "consumer_id": order.consumer_id,
                "kind": str(order.kind), "amount_cents": order.amount_cents,
                "paid_at": order.paid_at, "created_at": now})
        except IntegrityError as exc:
            raise AlreadyExists(f"order {order.id!r} already exists") from exc

    def get(self, order_id: str) -> Order | None:
        row = self.conn.execute(_ORDER_BY_ID, {"id": order_id}).first()
        if row is None:
            return None
        m = row._mapping
        return Order(m["id"], m["store_id"], m["consumer_id"], OrderKind(m["kind"]),
                     m["amount_cents"], m["paid_at"])

    def existing_ids(self, order_ids: list[str]) -> set[str]:
        if not order_ids:
            return set()
        rows = self.conn.execute(select(t.orders.c.id).where(t.orders.c.id.in_(order_ids)))
        return {r[0] for r in rows}

    def add_many(self, orders: list[Order], now: datetime) -> None:
        # One executemany, no savepoint: a taken id spoils the caller's transaction.
        if not orders:
            return
        try:
            self.conn.execute(insert(t.orders), [
                {"id": o.id, "store_id": o.store_id, "consumer_id": o.consumer_id,
                 "kind": str(o.kind), "amount_cents": o.amount_cents, "paid_at": o.paid_at,
                 "created_at": now} for o in orders])
        except IntegrityError as exc:  # the ids were checked: another writer took one
            which = f"order {orders[0].id}" if len(orders) == 1 else "an order of the batch"
            raise AlreadyExists(f"{which} already exists") from exc


_WO = t.work_orders.c
_WORK_ORDER_BY_ID = select(t.work_orders).where(_WO.id == bindparam("id"))
_WORK_ORDER_BY_ID_LOCKED = _WORK_ORDER_BY_ID.with_for_update()
_CONTACTS_OF = (select(t.contacts).where(t.contacts.c.work_order_id == bindparam("id"))
                .order_by(t.contacts.c.recorded_at, t.contacts.c.id))
_INSERT_WORK_ORDER = insert(t.work_orders)
# Guarded on the version read: the SET clause comes from the row's keys.
_SAVE_WORK_ORDER = update(t.work_orders).where(
    _WO.id == bindparam("w_id"), _WO.version == bindparam("w_version"))
_INSERT_CONTACT = insert(t.contacts)
_OPEN_OF_ORDER = select(_WO.id).where(_WO.order_id == bindparam("order_id"), _WO.is_open).limit(1)


class SqlWorkOrders(_Repo):
    def add(self, wo: WorkOrder) -> None:
        try:
            self.conn.execute(_INSERT_WORK_ORDER, {**work_order_values(wo),
                                                   "version": wo.version})
        except IntegrityError as exc:
            raise DuplicateOpenWorkOrder(
                f"order {wo.order_id} already has an open work order") from exc

    def get(self, work_order_id: str) -> WorkOrder | None:
        stmt = _WORK_ORDER_BY_ID_LOCKED if self.lock else _WORK_ORDER_BY_ID
        row = self.conn.execute(stmt, {"id": work_order_id}).first()
        if row is None:
            return None
        contacts = [contact_from_row(r) for r in self.conn.execute(
            _CONTACTS_OF, {"id": work_order_id})]
        return work_order_from_row(row, contacts)

    def save(self, wo: WorkOrder, *, new_version: bool = True) -> None:
        self.save_many([(wo, wo.version, wo.version + 1 if new_version else wo.version)])

    def save_many(self, saves: list[tuple[WorkOrder, int, int]]) -> None:
        if not saves:
            return
        rows = [{**work_order_changes(wo), "version": new, "w_id": wo.id, "w_version": loaded}
                for wo, loaded, new in saves]
        try:
            result = self.conn.execute(_SAVE_WORK_ORDER, rows)
        except IntegrityError as exc:  # reopening (appeal) while another is open
            raise DuplicateOpenWorkOrder(
                f"order {saves[0][0].order_id} already has an open work order") from exc
        if result.rowcount != len(rows):
            ids = ", ".join(wo.id for wo, _, _ in saves[:3])
            raise ConcurrentUpdate(f"work order {ids} changed concurrently")
        for wo, _, new in saves:
            wo.version = new

    def add_contact(self, contact: Contact) -> None:
        self.conn.execute(_INSERT_CONTACT, {
            "id": contact.id, "work_order_id": contact.work_order_id,
            "channel": str(contact.channel), "contacted_at": contact.contacted_at,
            "outcome": str(contact.outcome), "summary": contact.summary,
            "evidence_ids": list(contact.evidence_ids), "recorded_by": contact.recorded_by,
            "recorded_at": contact.recorded_at})

    def has_open(self, order_id: str) -> bool:
        return self.conn.execute(_OPEN_OF_ORDER, {"order_id": order_id}).first() is not None

    def query(self, query: WorkOrderQuery) -> list[WorkOrder]:
        c = t.work_orders.c
        stmt = select(t.work_orders)
        if query.consumer_id is not None:
            stmt = stmt.where(c.consumer_id == query.consumer_id)
        if query.scope_store_id is not None:
            stmt = stmt.where(c.store_id == query.scope_store_id)
        if query.state is not None:
            stmt = stmt.where(c.state == str(query.state))
        if query.store_id is not None:
            stmt = stmt.where(c.store_id == query.store_id)
        if query.due_before is not None:
            stmt = stmt.where(c.sort_due_at < query.due_before)
        if query.overdue is not None:
            stmt = stmt.where(c.sla_overdue if query.overdue else ~c.sla_overdue)
        if query.after is not None:
            due, last_id = query.after
            stmt = stmt.where(tuple_(c.sort_due_at, c.id) > tuple_(
                literal(due or FAR_FUTURE, UTCDateTime), literal(last_id)))
        stmt = stmt.order_by(c.sort_due_at, c.id).limit(query.limit)
        return [work_order_from_row(r) for r in self.conn.execute(stmt)]


def _link(m: Any) -> ChainLink:
    return ChainLink(m["work_order_id"], m["seq"], m["at"], m["actor_id"], m["type"],
                     m["data"], m["prev_hash"], m["hash"], m["visibility"])


_INSERT_EVENT = insert(t.events)


class SqlEvents(_Repo):
    def append(self, links: list[ChainLink]) -> None:
        # (work_order_id, visibility, seq) is unique: two writers cannot both extend a chain.
        if links:
            self.conn.execute(_INSERT_EVENT, [
                {"work_order_id": k.work_order_id, "seq": k.seq, "at": k.at,
                 "actor_id": k.actor_id, "type": k.type, "data": k.data_json,
                 "prev_hash": k.prev_hash, "hash": k.hash, "visibility": k.visibility}
                for k in links])

    def after(self, work_order_id: str, visibility: str, after_seq: int, limit: int,
              actor_id: str | None = None) -> list[ChainLink]:
        c = t.events.c
        stmt = select(t.events).where(c.work_order_id == work_order_id,
                                      c.visibility == visibility, c.seq > after_seq)
        if actor_id is not None:
            stmt = stmt.where(c.actor_id == actor_id)
        rows = self.conn.execute(stmt.order_by(c.seq).limit(limit))
        return [_link(r._mapping) for r in rows]

    def anchors(self, after: str | None, limit: int) -> list[tuple[str, dict[str, ChainHead]]]:
        c = t.work_orders.c
        stmt = (select(c.id, c.chain_length, c.chain_head, c.platform_chain_length,
                       c.platform_chain_head).order_by(c.id).limit(limit))
        if after is not None:
            stmt = stmt.where(c.id > after)
        return [(r.id, {ALL: ChainHead(r.chain_length, r.chain_head),
                        PLATFORM: ChainHead(r.platform_chain_length, r.platform_chain_head)})
                for r in self.conn.execute(stmt)]

    def chain(self, work_order_id: str, visibility: str) -> list[ChainLink]:
        c = t.events.c
        rows = self.conn.execute(select(t.events).where(
            c.work_order_id == work_order_id, c.visibility == visibility).order_by(c.seq))
        return [_link(r._mapping) for r in rows]


_TM = t.timers.c
_PENDING = t.TIMER_PENDING
_INSERT_TIMER = insert(t.timers)
_CANCEL_TIMERS = (update(t.timers).where(_TM.work_order_id == bindparam("w_id"), _PENDING)
                  .values(cancelled_at=bindparam("at")))
_MARK_FIRED = (update(t.timers).where(_TM.id == bindparam("t_id"), _PENDING)
               .values(fired_at=bindparam("at")))
# Due timers with their work orders, oldest first. On PostgreSQL the work order rows are
# locked, skipping any another transaction holds (a request, another runner): runners
# never wait on each other, and the lock order (work order, then its timers) is the one
# every command takes. SQLite renders no FOR UPDATE; its writer holds the whole database.
_LOCK_DUE = (
    select(_TM.id.label("timer_id"), _TM.kind.label("timer_kind"),
           _TM.due_at.label("timer_due_at"), t.work_orders)
    .join_from(t.timers, t.work_orders, _TM.work_order_id == _WO.id)
    .where(_PENDING, _TM.due_at <= bindparam("now"))
    .order_by(_TM.due_at, _TM.id).limit(bindparam("limit"))
    .with_for_update(of=t.work_orders, skip_locked=True))
_STILL_PENDING = select(_TM.id).where(_TM.id.in_(bindparam("ids", expanding=True)), _PENDING)
_CONTACTS_OF_MANY = (
    select(t.contacts).where(t.contacts.c.work_order_id.in_(bindparam("ids", expanding=True)))
    .order_by(t.contacts.c.work_order_id, t.contacts.c.recorded_at, t.contacts.c.id))


class SqlTimers(_Repo):
    def schedule(self, work_order_id: str, specs: list[TimerSpec], now: datetime) -> None:
        self.schedule_many([(work_order_id, spec, now) for spec in specs])

    def schedule_many(self, items: list[tuple[str, TimerSpec, datetime]]) -> None:
        if items:
            self.conn.execute(_INSERT_TIMER, [
                {"work_order_id": wo_id, "kind": str(s.kind), "due_at": s.due_at,
                 "created_at": at} for wo_id, s, at in items])
            # PostgreSQL: a timer due soon wakes the runners when this transaction commits
            # (LISTEN/NOTIFY). Measured from the latest change of the batch: it never
            # misses a wake-up, at worst sends one more.
            notify_if_due_soon(self.conn, [s.due_at for _, s, _ in items],
                               max(at for _, _, at in items))

    def cancel_pending(self, work_order_id: str, now: datetime) -> None:
        self.conn.execute(_CANCEL_TIMERS, {"w_id": work_order_id, "at": now})

    def cancel_pending_many(self, items: list[tuple[str, datetime]]) -> None:
        if items:
            self.conn.execute(_CANCEL_TIMERS, [{"w_id": wo_id, "at": at} for wo_id, at in items])

    def lock_due(self, now: datetime, limit: int, exclude: frozenset[int]
                 ) -> list[tuple[Timer, WorkOrder]]:
        stmt = _LOCK_DUE.where(~_TM.id.in_(sorted(exclude))) if exclude else _LOCK_DUE
        rows = self.conn.execute(stmt, {"now": now, "limit": limit}).all()
        if rows and self.conn.dialect.name == "postgresql":
            # Locking re-reads a work order changed since the statement began, but not its
            # timer: one a request cancelled meanwhile would still look pending. A new
            # statement sees the latest state, which nobody can change now (the work
            # orders are ours), and the batch fires only what is still pending.
            pending = set(self.conn.execute(_STILL_PENDING, {
                "ids": [r.timer_id for r in rows]}).scalars())
            rows = [r for r in rows if r.timer_id in pending]
        if not rows:
            return []
        ids = sorted({r.id for r in rows})
        contacts: dict[str, list[Contact]] = {i: [] for i in ids}
        for r in self.conn.execute(_CONTACTS_OF_MANY, {"ids": ids}):
            contacts[r.work_order_id].append(contact_from_row(r))
        # One aggregate per work order, shared by all of its timers in the batch.
        loaded: dict[str, WorkOrder] = {}
        out = []
        for r in rows:
            if r.id not in loaded:
                loaded[r.id] = work_order_from_row(r, contacts[r.id])
            out.append((Timer(r.timer_id, r.id, r.timer_kind, r.timer_due_at), loaded[r.id]))
        return out

    def mark_fired(self, timer_ids: list[int], now: datetime) -> int:
        if not timer_ids:
            return 0
        result = self.conn.execute(_MARK_FIRED, [{"t_id": i, "at": now} for i in timer_ids])
        return int(result.rowcount)

    def due(self, now: datetime, limit: int) -> list[Timer]:
        c = t.timers.c
        stmt = (select(c.id, c.work_order_id, c.kind, c.due_at)
                .where(_PENDING, c.due_at <= now).order_by(c.due_at, c.id).limit(limit))
        return [Timer(r.id, r.work_order_id, r.kind, r.due_at) for r in self.conn.execute(stmt)]

    def claim(self, timer_id: int, now: datetime) -> bool:
        result = self.conn.execute(update(t.timers).where(
            t.timers.c.id == timer_id, _PENDING).values(fired_at=now))
        return result.rowcount == 1


_INSERT_NOTE = insert(t.notes)


class SqlNotes(_Repo):
    def add(self, note: Note) -> None:
        self.conn.execute(_INSERT_NOTE, {
            "id": note.id, "work_order_id": note.work_order_id, "author_id": note.author_id,
            "author_role": str(note.author_role), "text": note.text,
            "visibility": note.visibility, "evidence_ids": list(note.evidence_ids),
            "created_at": note.created_at})

    def for_work_order(self, work_order_id: str) -> list[Note]:
        c = t.notes.c
        rows = self.conn.execute(select(t.notes).where(c.work_order_id == work_order_id)
                                 .order_by(c.created_at, c.id))
        return [Note(r.id, r.work_order_id, r.author_id, Role(r.author_role), r.text,
                     r.visibility, tuple(r.evidence_ids), r.created_at) for r in rows]


def _evidence(m: Any) -> EvidenceRecord:
    return EvidenceRecord(m["id"], m["sha256"], m["media_type"], m["size"], m["filename"],
                          m["uploaded_by"], m["uploaded_at"])


class SqlEvidence(_Repo):
    def add(self, record: EvidenceRecord) -> None:
        self.conn.execute(insert(t.evidence).values(
            id=record.id, sha256=record.sha256, media_type=record.media_type,
            size=record.size, filename=record.filename, uploaded_by=record.uploaded_by,
            uploaded_at=record.uploaded_at))

    def get(self, evidence_id: str) -> EvidenceRecord | None:
        row = self.conn.execute(select(t.evidence).where(t.evidence.c.id == evidence_id)).first()
        return _evidence(row._mapping) if row else None

    def get_many(self, evidence_ids: list[str]) -> list[EvidenceRecord]:
        if not evidence_ids:
            return []
        rows = self.conn.execute(select(t.evidence).where(t.evidence.c.id.in_(evidence_ids)))
        return [_evidence(r._mapping) for r in rows]

    def attach(self, evidence_ids: list[str], work_order_id: str, now: datetime,
               visibility: str = ALL) -> None:
        c = t.evidence_attachments.c
        have = {r.evidence_id: r.visibility for r in self.conn.execute(
            select(c.evidence_id, c.visibility).where(
                c.work_order_id == work_order_id, c.evidence_id.in_(evidence_ids)))}
        new = sorted(set(evidence_ids) - have.keys())
        if new:
            self.conn.execute(insert(t.evidence_attachments), [
                {"evidence_id": e, "work_order_id": work_order_id, "attached_at": now,
                 "visibility": visibility} for e in new])
        # Cited where every party sees it: a platform-only attachment becomes public.
        widened = [e for e, v in have.items() if v != ALL] if visibility == ALL else []
        if widened:
            self.conn.execute(update(t.evidence_attachments).where(
                c.work_order_id == work_order_id, c.evidence_id.in_(widened))
                .values(visibility=ALL))

    def attached_to(self, evidence_id: str) -> list[tuple[str, str]]:
        c = t.evidence_attachments.c
        return [(r.work_order_id, r.visibility) for r in self.conn.execute(
            select(c.work_order_id, c.visibility).where(c.evidence_id == evidence_id))]


_INSERT_INBOX = insert(t.inbox)
_INSERT_DELIVERY = insert(t.deliveries)
_UPDATE_DELIVERY = (update(t.deliveries).where(t.deliveries.c.id == bindparam("line_id"))
                    .values(status=bindparam("b_status"), reason=bindparam("b_reason"),
                            at=bindparam("b_at"), attempt=bindparam("b_attempt")))


def _inbox_row(item: InboxItem, stored_at: datetime) -> dict[str, Any]:
    return {"id": item.id, "recipient_id": item.recipient_id, "kind": str(item.kind),
            "work_order_id": item.work_order_id, "text": item.text,
            "created_at": item.created_at, "read": item.read, "stored_at": stored_at}


def _inbox_item(r: Any) -> InboxItem:
    return InboxItem(r.id, r.recipient_id, InboxKind(r.kind), r.work_order_id, r.text,
                     r.created_at, r.read)


def _delivery_row(d: Delivery) -> dict[str, Any]:
    return {"id": d.id, "work_order_id": d.work_order_id, "recipient_id": d.recipient_id,
            "recipient_store_id": d.recipient_store_id, "channel": d.channel, "kind": d.kind,
            "status": str(d.status), "reason": d.reason, "at": d.at, "attempt": d.attempt,
            "event_id": d.event_id, "destination": d.destination}


def _delivery(r: Any) -> Delivery:
    return Delivery(r.id, r.work_order_id, r.recipient_id, r.recipient_store_id, r.channel,
                    r.kind, DeliveryStatus(r.status), r.reason, r.at, r.attempt, r.event_id,
                    r.destination)


class SqlInbox(_Repo):
    def add(self, item: InboxItem) -> None:
        self.add_many([item])

    def add_many(self, items: list[InboxItem]) -> None:
        if items:
            # The real time, not the service clock: streams follow the order of storing.
            stored_at = datetime.now(UTC)
            self.conn.execute(_INSERT_INBOX, [_inbox_row(i, stored_at) for i in items])

    def page(self, recipient_id: str, before: tuple[datetime, str] | None,
             limit: int) -> list[InboxItem]:
        c = t.inbox.c
        stmt = select(t.inbox).where(c.recipient_id == recipient_id)
        if before is not None:
            at, last_id = before
            stmt = stmt.where(or_(c.created_at < at, and_(c.created_at == at, c.id < last_id)))
        rows = self.conn.execute(stmt.order_by(c.created_at.desc(), c.id.desc()).limit(limit))
        return [_inbox_item(r) for r in rows]

    def mark_read(self, recipient_id: str, item_id: str) -> bool:
        c = t.inbox.c
        result = self.conn.execute(update(t.inbox).where(
            c.id == item_id, c.recipient_id == recipient_id).values(read=True))
        return result.rowcount == 1

    def stored_since(self, since: datetime, limit: int) -> list[tuple[datetime, InboxItem]]:
        c = t.inbox.c
        rows = self.conn.execute(select(t.inbox).where(c.stored_at >= since)
                                 .order_by(c.stored_at, c.id).limit(limit))
        return [(r.stored_at, _inbox_item(r)) for r in rows]

    def stored_after(self, recipient_id: str, item_id: str, limit: int
                     ) -> list[tuple[datetime, InboxItem]] | None:
        c = t.inbox.c
        mark = self.conn.execute(select(c.stored_at).where(
            c.id == item_id, c.recipient_id == recipient_id)).first()
        if mark is None or mark.stored_at is None:
            return None
        rows = self.conn.execute(
            select(t.inbox).where(c.recipient_id == recipient_id, or_(
                c.stored_at > mark.stored_at,
                and_(c.stored_at == mark.stored_at, c.id > item_id)))
            .order_by(c.stored_at, c.id).limit(limit))
        return [(r.stored_at, _inbox_item(r)) for r in rows]


class SqlDeliveries(_Repo):
    def add(self, delivery: Delivery) -> None:
        self.add_many([delivery])

    def add_many(self, deliveries: list[Delivery]) -> None:
        if deliveries:
            self.conn.execute(_INSERT_DELIVERY, [_delivery_row(d) for d in deliveries])

    def update_many(self, lines: list[Delivery]) -> None:
        if lines:
            self.conn.execute(_UPDATE_DELIVERY, [
                {"line_id": d.id, "b_status": str(d.status), "b_reason": d.reason,
                 "b_at": d.at, "b_attempt": d.attempt} for d in lines])

    def for_work_order(self, work_order_id: str) -> list[Delivery]:
        c = t.deliveries.c
        rows = self.conn.execute(select(t.deliveries).where(c.work_order_id == work_order_id)
                                 .order_by(c.at, c.id))
        return [_delivery(r) for r in rows]

    def for_store(self, store_id: str, before: tuple[datetime, str] | None, limit: int,
                  *, failures_only: bool = False) -> list[Delivery]:
        c = t.deliveries.c
        stmt = select(t.deliveries).where(c.recipient_store_id == store_id)
        if failures_only:
            stmt = stmt.where(c.status.in_(("failed", "retrying")))
        if before is not None:
            at, last_id = before
            stmt = stmt.where(or_(c.at < at, and_(c.at == at, c.id < last_id)))
        rows = self.conn.execute(stmt.order_by(c.at.desc(), c.id.desc()).limit(limit))
        return [_delivery(r) for r in rows]


def _violation_values(v: Violation) -> dict[str, Any]:
    return {"id": v.id, "store_id": v.store_id, "work_order_id": v.work_order_id,
            "kind": str(v.kind), "severity": str(v.severity), "points": v.points,
            "rationale": v.rationale, "evidence_ids": list(v.evidence_ids),
            "state": str(v.state), "recorded_at": v.recorded_at, "recorded_by": v.recorded_by,
            "appeal_statement": v.appeal_statement, "appealed_at": v.appealed_at,
            "decision": str(v.decision) if v.decision else None,
            "decision_rationale": v.decision_rationale, "decided_at": v.decided_at,
            "decided_by": v.decided_by}


class SqlViolations(_Repo):
    def add(self, violation: Violation) -> None:
        self.conn.execute(insert(t.violations).values(**_violation_values(violation),
                                                      version=violation.version))

    def get(self, violation_id: str) -> Violation | None:
        stmt = select(t.violations).where(t.violations.c.id == violation_id)
        row = self.conn.execute(stmt.with_for_update() if self.lock else stmt).first()
        if row is None:
            return None
        m = row._mapping
        return Violation(
            m["id"], m["store_id"], m["work_order_id"], ViolationKind(m["kind"]),
            Severity(m["severity"]), m["points"], m["rationale"], tuple(m["evidence_ids"]),
            ViolationState(m["state"]), m["recorded_at"], m["recorded_by"],
            m["appeal_statement"], m["appealed_at"],
            ViolationDecision(m["decision"]) if m["decision"] else None,
            m["decision_rationale"], m["decided_at"], m["decided_by"], m["version"])

    def save(self, violation: Violation) -> None:
        c = t.violations.c
        result = self.conn.execute(
            update(t.violations).where(c.id == violation.id, c.version == violation.version)
            .values(**_violation_values(violation), version=violation.version + 1))
        if result.rowcount != 1:
            raise ConcurrentUpdate(f"violation {violation.id} changed concurrently")
        violation.version += 1

    def append_ledger(self, entry: LedgerEntry) -> None:
        self.conn.execute(insert(t.points_ledger).values(
            id=entry.id, store_id=entry.store_id, year=entry.year,
            violation_id=entry.violation_id, points=entry.points, reason=entry.reason,
            at=entry.at))

    def ledger(self, store_id: str, year: int) -> list[LedgerEntry]:
        c = t.points_ledger.c
        rows = self.conn.execute(select(t.points_ledger).where(
            c.store_id == store_id, c.year == year).order_by(c.at, c.id))
        return [LedgerEntry(r.id, r.store_id, r.year, r.violation_id, r.points, r.reason, r.at)
                for r in rows]


class SqlIdempotency(_Repo):
    def get(self, account_id: str, key: str) -> StoredResponse | None:
        c = t.idempotency_keys.c
        stmt = select(t.idempotency_keys).where(c.account_id == account_id, c.key == key)
        row = self.conn.execute(stmt.with_for_update() if self.lock else stmt).first()
        if row is None:
            return None
        return StoredResponse(row.request_hash, row.status_code, row.response_body,
                              row.created_at, row.locked_until)

    def reserve(self, account_id: str, key: str, request_hash: str, now: datetime,
                locked_until: datetime) -> bool:
        values = {"account_id": account_id, "key": key, "request_hash": request_hash,
                  "created_at": now, "locked_until": locked_until}
        insert_ = pg_insert if self.conn.dialect.name == "postgresql" else sqlite_insert
        inserted = self.conn.execute(insert_(t.idempotency_keys).values(values)
                                     .on_conflict_do_nothing()
                                     .returning(t.idempotency_keys.c.key)).first()
        return inserted is not None

    def take_over(self, account_id: str, key: str, request_hash: str, now: datetime,
                  locked_until: datetime, expired_before: datetime) -> bool:
        c = t.idempotency_keys.c
        lapsed = and_(c.status_code.is_(None), c.locked_until <= now)
        result = self.conn.execute(update(t.idempotency_keys).where(
            c.account_id == account_id, c.key == key,
            or_(lapsed, c.created_at < expired_before)).values(
            request_hash=request_hash, status_code=None, response_body=None,
            created_at=now, locked_until=locked_until))
        return result.rowcount == 1

    def complete(self, account_id: str, key: str, status_code: int, body: str) -> None:
        c = t.idempotency_keys.c
        self.conn.execute(update(t.idempotency_keys).where(
            c.account_id == account_id, c.key == key).values(
            status_code=status_code, response_body=body, locked_until=None))

    def release(self, account_id: str, key: str) -> None:
        c = t.idempotency_keys.c
        self.conn.execute(t.idempotency_keys.delete().where(
            c.account_id == account_id, c.key == key, c.status_code.is_(None)))

    def purge(self, created_before: datetime, limit: int) -> int:
        c = t.idempotency_keys.c
        oldest = (select(c.account_id, c.key).where(c.created_at < created_before)
                  .order_by(c.created_at).limit(limit))
        result = self.conn.execute(t.idempotency_keys.delete().where(
            tuple_(c.account_id, c.key).in_(oldest)))
        return int(result.rowcount)
