"""The daily metric rollups in SQL (`store_daily`, `store_reply_minutes`).

Changes are upserts that add to the stored counters (`INSERT … ON CONFLICT (key) DO UPDATE
SET n = n + excluded.n`, on PostgreSQL and SQLite alike), one executemany per table with
the rows in key order, so concurrent transactions take the row locks in the same order.
Rows that come back to zero stay (they add nothing). Every statement is built once, here.

The rebuild reads (`work_order_facts`, `paid_orders`) select only columns that exist since
the first migration: migration 0003 fills the rollups through this class.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import BindParameter, Connection, Insert, bindparam, delete, func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from collabdesk.domain.metrics import COUNTERS, Counters, Rollup, WorkOrderFacts
from collabdesk.domain.states import State
from collabdesk.domain.values import AppealDecision, OrderKind, Ruling

from . import tables as t

_daily = t.store_daily
_minutes = t.store_reply_minutes


def _upsert(insert: Callable[[Any], Any], table: Any, key: list[str],
            columns: list[str]) -> Insert:
    stmt = insert(table)
    result: Insert = stmt.on_conflict_do_update(
        index_elements=key, set_={c: table.c[c] + stmt.excluded[c] for c in columns})
    return result


_UPSERT_DAILY = {
    name: _upsert(insert, _daily, ["store_id", "day"], list(COUNTERS))
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}
_UPSERT_MINUTES = {
    name: _upsert(insert, _minutes, ["store_id", "day", "minute"], ["count"])
    for name, insert in (("postgresql", pg_insert), ("sqlite", sqlite_insert))}

_STORE: BindParameter[str] = bindparam("store_id")
_FIRST: BindParameter[date] = bindparam("first")
_END: BindParameter[date] = bindparam("end")
_DAILY_RANGE = (_daily.c.store_id == _STORE, _daily.c.day >= _FIRST, _daily.c.day < _END)
_MINUTES_RANGE = (_minutes.c.store_id == _STORE, _minutes.c.day >= _FIRST,
                  _minutes.c.day < _END)

_WINDOW_TOTALS = select(*[func.coalesce(func.sum(_daily.c[c]), 0) for c in COUNTERS]).where(
    *_DAILY_RANGE)
_WINDOW_MINUTES = (select(_minutes.c.minute, func.sum(_minutes.c.count))
                   .where(*_MINUTES_RANGE).group_by(_minutes.c.minute))
_DAILY_ROWS = (select(_daily.c.day, *[_daily.c[c] for c in COUNTERS])
               .where(*_DAILY_RANGE).order_by(_daily.c.day))
_DAILY_MINUTES = (select(_minutes.c.day, _minutes.c.minute, _minutes.c.count)
                  .where(*_MINUTES_RANGE, _minutes.c.count != 0)
                  .order_by(_minutes.c.day, _minutes.c.minute))

_CLEAR = (delete(_daily), delete(_minutes))
# Writers that change rollups meanwhile wait for the rebuild's commit (they add their delta
# to the rebuilt rows then); readers are not blocked. SQLite writers queue anyway.
_LOCK_POSTGRESQL = text("LOCK TABLE store_daily, store_reply_minutes IN EXCLUSIVE MODE")

_wo = t.work_orders.c
_AFTER: BindParameter[str] = bindparam("after")
_LIMIT: BindParameter[int] = bindparam("limit")
# Only what the facts need: whether a time is set, the ruling and the appeal's decision
# out of their JSON (parsing the rest would cost most of a rebuild's time).
_FACT_COLUMNS = (_wo.id, _wo.store_id, _wo.state, _wo.order_kind, _wo.created_at, _wo.due_at,
                 _wo.replied_at, _wo.timed_out_at.is_not(None).label("timed_out"),
                 _wo.escalated_at.is_not(None).label("escalated"), _wo.judged_at,
                 _wo.judgment["ruling"].as_string().label("ruling"),
                 _wo.appeal["decision"].as_string().label("decision"))
_FIRST_FACTS = select(*_FACT_COLUMNS).order_by(_wo.id).limit(_LIMIT)
_NEXT_FACTS = _FIRST_FACTS.where(_wo.id > _AFTER)
_o = t.orders.c
_FIRST_PAID = select(_o.id, _o.store_id, _o.paid_at).order_by(_o.id).limit(_LIMIT)
_NEXT_PAID = _FIRST_PAID.where(_o.id > _AFTER)


def _facts(r: Any) -> WorkOrderFacts:
    """A row's facts, as `domain.metrics.facts_of` takes them from the aggregate."""
    return WorkOrderFacts(
        state=State(r.state), worry_free=r.order_kind == OrderKind.WORRY_FREE,
        created_at=r.created_at, due_at=r.due_at, replied_at=r.replied_at,
        timed_out=bool(r.timed_out), escalated=bool(r.escalated),
        judged_at=r.judged_at,
        ruled_for_consumer=r.ruling == Ruling.FOR_CONSUMER,
        overturned=r.decision == AppealDecision.OVERTURNED)


class SqlRollups:
    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def apply(self, change: Rollup) -> None:
        dialect = self.conn.dialect.name
        daily = [{"store_id": store, "day": day, **dict(zip(COUNTERS, c.values(), strict=True))}
                 for (store, day), c in sorted(change.daily.items()) if c]
        if daily:
            self.conn.execute(_UPSERT_DAILY[dialect], daily)
        minutes = [{"store_id": store, "day": day, "minute": minute, "count": n}
                   for (store, day, minute), n in sorted(change.minutes.items()) if n]
        if minutes:
            self.conn.execute(_UPSERT_MINUTES[dialect], minutes)

    def window(self, store_id: str, first: date, end: date) -> tuple[Counters, dict[int, int]]:
        params = {"store_id": store_id, "first": first, "end": end}
        totals = Counters(*(int(v) for v in self.conn.execute(_WINDOW_TOTALS, params).one()))
        minutes = {int(m): int(n) for m, n in self.conn.execute(_WINDOW_MINUTES, params) if n}
        return totals, minutes

    def daily(self, store_id: str, first: date, end: date
              ) -> tuple[dict[date, Counters], dict[date, dict[int, int]]]:
        params = {"store_id": store_id, "first": first, "end": end}
        counters = {r[0]: Counters(*r[1:]) for r in self.conn.execute(_DAILY_ROWS, params)}
        minutes: dict[date, dict[int, int]] = {}
        for day, minute, n in self.conn.execute(_DAILY_MINUTES, params):
            minutes.setdefault(day, {})[minute] = n
        return counters, minutes

    def clear(self) -> None:
        if self.conn.dialect.name == "postgresql":
            self.conn.execute(_LOCK_POSTGRESQL)
        for stmt in _CLEAR:
            self.conn.execute(stmt)

    def work_order_facts(self, after: str | None, limit: int
                         ) -> list[tuple[str, str, WorkOrderFacts]]:
        rows = self.conn.execute(_FIRST_FACTS if after is None else _NEXT_FACTS,
                                 {"after": after, "limit": limit})
        return [(r.id, r.store_id, _facts(r)) for r in rows]

    def paid_orders(self, after: str | None, limit: int) -> list[tuple[str, str, datetime]]:
        rows = self.conn.execute(_FIRST_PAID if after is None else _NEXT_PAID,
                                 {"after": after, "limit": limit})
        return [(r.id, r.store_id, r.paid_at) for r in rows]
