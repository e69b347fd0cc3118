"""The outbox and the webhooks, in SQL.

A dispatcher claims due messages by leasing them (`lease_until`, real time, and a token),
in a short transaction: on PostgreSQL with `FOR UPDATE SKIP LOCKED`, so dispatchers never
wait on each other; on SQLite the write transaction itself serialises claims. It sends
outside any transaction and records the outcome only if its lease still holds, so a
dispatcher that died mid-send leaves its messages to the next one once the lease ends.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from collabdesk.domain.records import Channel, DeliveryStatus, OutboxMessage, Webhook

from . import tables as t
from .wakeup import OUTBOX_CHANNEL, notify_timers

o = t.outbox.c
_INSERT = insert(t.outbox)
_DUE = (select(o.id).where(t.OUTBOX_OPEN, o.due_at <= bindparam("now"),
                           (o.lease_until.is_(None)) | (o.lease_until < bindparam("real_now")))
        .order_by(o.due_at, o.id).limit(bindparam("limit")))
_LEASE = (update(t.outbox).where(o.id.in_(bindparam("ids", expanding=True)))
          .values(lease_until=bindparam("lease_until"), lease_token=bindparam("token")))
_BY_IDS = select(t.outbox).where(o.id.in_(bindparam("ids", expanding=True))).order_by(
    o.due_at, o.id)
_RECORD = (update(t.outbox).where(o.id == bindparam("b_id"), o.lease_token == bindparam("token"))
           .values(attempts=bindparam("b_attempts"), status=bindparam("b_status"),
                   due_at=bindparam("b_due_at"), last_error=bindparam("b_error"),
                   done_at=bindparam("b_done_at"), lease_until=None, lease_token=None))


def _row(m: OutboxMessage) -> dict[str, Any]:
    return {"channel": str(m.channel), "kind": m.kind, "work_order_id": m.work_order_id,
            "store_id": m.store_id, "recipient_id": m.recipient_id,
            "destination": m.destination, "event_id": m.event_id, "payload": m.payload,
            "created_at": m.created_at, "first_due_at": m.first_due_at, "due_at": m.due_at,
            "attempts": m.attempts, "status": str(m.status), "line_id": m.line_id,
            "last_error": m.last_error}


def _message(r: Any) -> OutboxMessage:
    return OutboxMessage(Channel(r.channel), r.kind, r.work_order_id, r.store_id,
                         r.recipient_id, r.destination, r.event_id, r.payload, r.created_at,
                         r.first_due_at, r.due_at, r.line_id, r.attempts,
                         DeliveryStatus(r.status), r.last_error, r.id)


class SqlOutbox:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def add_many(self, messages: list[OutboxMessage]) -> None:
        if messages:
            self.conn.execute(_INSERT, [_row(m) for m in messages])
            notify_timers(self.conn, OUTBOX_CHANNEL)

    def claim_due(self, now: datetime, limit: int, lease_until: datetime, token: str,
                  real_now: datetime) -> list[OutboxMessage]:
        stmt = _DUE
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update(skip_locked=True)
        ids = [r.id for r in self.conn.execute(
            stmt, {"now": now, "real_now": real_now, "limit": limit})]
        if not ids:
            return []
        self.conn.execute(_LEASE, {"ids": ids, "lease_until": lease_until, "token": token})
        return [_message(r) for r in self.conn.execute(_BY_IDS, {"ids": ids})]

    def held(self, token: str, ids: list[int]) -> set[int]:
        if not ids:
            return set()
        stmt = select(o.id).where(o.id.in_(ids), o.lease_token == token)
        if self.conn.dialect.name == "postgresql":
            stmt = stmt.with_for_update()
        return {r.id for r in self.conn.execute(stmt)}

    def release(self, ids: list[int], token: str) -> None:
        if ids:
            self.conn.execute(update(t.outbox).where(o.id.in_(ids), o.lease_token == token)
                              .values(lease_until=None, lease_token=None))

    def record(self, messages: list[OutboxMessage], token: str) -> int:
        if not messages:
            return 0
        result = self.conn.execute(_RECORD, [
            {"b_id": m.id, "token": token, "b_attempts": m.attempts,
             "b_status": str(m.status), "b_due_at": m.due_at, "b_error": m.last_error,
             "b_done_at": None if m.status in (DeliveryStatus.PENDING, DeliveryStatus.RETRYING)
             else m.due_at} for m in messages])
        return int(result.rowcount)

    def by_event(self, event_id: str, recipient_id: str) -> OutboxMessage | None:
        row = self.conn.execute(select(t.outbox).where(
            o.event_id == event_id, o.recipient_id == recipient_id)
            .order_by(o.id.desc()).limit(1)).first()
        return _message(row) if row else None

    def close_open(self, recipient_id: str, reason: str, now: datetime
                   ) -> list[OutboxMessage]:
        stmt = select(t.outbox).where(o.recipient_id == recipient_id, t.OUTBOX_OPEN)
        if self.conn.dialect.name == "postgresql":
            # Not the ones a dispatcher is sending now (its transaction holds them, or
            # will take them in its record): it records their outcome itself.
            stmt = stmt.with_for_update(skip_locked=True)
        rows = self.conn.execute(stmt).all()
        if rows:
            self.conn.execute(update(t.outbox).where(o.id.in_([r.id for r in rows])).values(
                status=str(DeliveryStatus.FAILED), last_error=reason, done_at=now,
                lease_until=None, lease_token=None))
        return [_message(r) for r in rows]

    def next_due(self) -> datetime | None:
        return self.conn.execute(select(func.min(o.due_at)).where(t.OUTBOX_OPEN)).scalar()

    def backlog(self) -> dict[str, tuple[int, datetime | None]]:
        rows = self.conn.execute(select(o.channel, func.count(), func.min(o.due_at))
                                 .where(t.OUTBOX_OPEN).group_by(o.channel))
        return {r[0]: (int(r[1]), r[2]) for r in rows}

    def clear_leases(self) -> int:
        result = self.conn.execute(update(t.outbox).where(
            t.OUTBOX_OPEN, o.lease_until.is_not(None)).values(lease_until=None,
                                                              lease_token=None))
        return int(result.rowcount)

    def purge(self, done_before: datetime, limit: int) -> int:
        ids = (select(o.id).where(o.done_at.is_not(None), o.done_at < done_before)
               .order_by(o.done_at).limit(limit).scalar_subquery())
        return int(self.conn.execute(delete(t.outbox).where(o.id.in_(ids))).rowcount)


w = t.webhooks.c
# Read with every change that notifies a store (services/notifications.py): built once.
_STORE_HOOKS = (select(t.webhooks).where(w.store_id == bindparam("store_id"))
                .order_by(w.created_at, w.id))


def _hook_values(h: Webhook) -> dict[str, Any]:
    return {"id": h.id, "store_id": h.store_id, "url": h.url, "events": list(h.events),
            "secret_salt": h.secret_salt, "enabled": h.enabled, "created_at": h.created_at,
            "created_by": h.created_by, "failing_since": h.failing_since,
            "last_error": h.last_error, "last_delivered_at": h.last_delivered_at,
            "disabled_at": h.disabled_at}


def _hook(r: Any) -> Webhook:
    return Webhook(r.id, r.store_id, r.url, tuple(r.events), r.secret_salt, r.enabled,
                   r.created_at, r.created_by, r.failing_since, r.last_error,
                   r.last_delivered_at, r.disabled_at)


class SqlWebhooks:
    def __init__(self, conn: Connection, *, lock: bool = False) -> None:
        self.conn = conn
        self.lock = lock

    def add(self, hook: Webhook) -> None:
        self.conn.execute(insert(t.webhooks).values(**_hook_values(hook)))

    def get(self, hook_id: str) -> Webhook | None:
        stmt = select(t.webhooks).where(w.id == hook_id)
        row = self.conn.execute(stmt.with_for_update() if self.lock else stmt).first()
        return _hook(row) if row else None

    def for_store(self, store_id: str) -> list[Webhook]:
        return [_hook(r) for r in self.conn.execute(_STORE_HOOKS, {"store_id": store_id})]

    def get_many(self, hook_ids: list[str]) -> list[Webhook]:
        if not hook_ids:
            return []
        stmt = select(t.webhooks).where(w.id.in_(hook_ids)).order_by(w.id)
        return [_hook(r) for r in self.conn.execute(
            stmt.with_for_update() if self.lock else stmt)]

    def delete(self, hook_id: str) -> bool:
        return bool(self.conn.execute(delete(t.webhooks).where(w.id == hook_id)).rowcount)

    def save(self, hook: Webhook) -> None:
        values = _hook_values(hook)
        del values["id"]
        self.conn.execute(update(t.webhooks).where(w.id == hook.id).values(**values))
