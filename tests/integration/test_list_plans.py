"""Lists by index: for every filter the work-order list offers, the database reads the
page in index order (no sort of all matching rows), so a first page costs the same for a
store with a million work orders as for one with a hundred. Checked on each database's
own plan of the very statement the repository sends."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, event

from collabdesk.bootstrap import Container
from collabdesk.domain.states import State
from collabdesk.services.ports import WorkOrderQuery
from tests.conftest import START

SOON = START + timedelta(hours=12)
BY_STORE = "ix_work_orders_store_id_sort_due_at_id"
BY_STORE_STATE = "ix_work_orders_store_id_state_sort_due_at_id"
BY_CONSUMER = "ix_work_orders_consumer_id_sort_due_at_id"
BY_CONSUMER_STATE = "ix_work_orders_consumer_id_state_sort_due_at_id"
BY_STATE = "ix_work_orders_state_sort_due_at_id"
OVERDUE = "ix_work_orders_overdue_sort_due_at_id"
ALL = "ix_work_orders_sort_due_at_id"
# Each filter of the list, and the index SQLite's planner reads it by.
QUERIES = {
    "merchant": (WorkOrderQuery(limit=51, scope_store_id="s-1"), BY_STORE),
    "merchant, state": (WorkOrderQuery(limit=51, scope_store_id="s-1",
                                       state=State.AWAITING_MERCHANT), BY_STORE_STATE),
    "merchant, due_before": (WorkOrderQuery(limit=51, scope_store_id="s-1", due_before=SOON),
                             BY_STORE),
    "merchant, next page": (WorkOrderQuery(limit=51, scope_store_id="s-1",
                                           after=(SOON, "wo_x")), BY_STORE),
    "consumer": (WorkOrderQuery(limit=51, consumer_id="acc_c"), BY_CONSUMER),
    "consumer, state": (WorkOrderQuery(limit=51, consumer_id="acc_c", state=State.JUDGED),
                        BY_CONSUMER_STATE),
    "platform": (WorkOrderQuery(limit=51), ALL),
    "platform, state": (WorkOrderQuery(limit=51, state=State.IN_ADJUDICATION), BY_STATE),
    "platform, store": (WorkOrderQuery(limit=51, store_id="s-1"), BY_STORE),
    "platform, store and state": (WorkOrderQuery(limit=51, store_id="s-1",
                                                 state=State.AWAITING_MERCHANT),
                                  BY_STORE_STATE),
    "platform, overdue": (WorkOrderQuery(limit=51, overdue=True), OVERDUE),
    "platform, state and overdue": (WorkOrderQuery(limit=51, state=State.IN_ADJUDICATION,
                                                   overdue=True), None),
}


def _sent(container: Container, query: WorkOrderQuery) -> tuple[str, Any]:
    """The SQL and parameters the repository sends for `query`."""
    seen: list[tuple[str, Any]] = []

    def keep(_c: Connection, _cur: object, statement: str, params: Any, *_: object) -> None:
        if "FROM work_orders" in statement:
            seen.append((statement, params))

    event.listen(container.engine, "before_cursor_execute", keep)
    try:
        container.ctx.read(lambda uow: uow.work_orders.query(query))
    finally:
        event.remove(container.engine, "before_cursor_execute", keep)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize("name", list(QUERIES))
def test_each_list_filter_reads_its_page_in_index_order(container: Container,
                                                         name: str) -> None:
    query, index = QUERIES[name]
    statement, params = _sent(container, query)
    with container.engine.connect() as conn:
        raw = conn.connection.dbapi_connection
        assert raw is not None
        cursor = raw.cursor()
        if container.engine.dialect.name == "sqlite":
            cursor.execute("EXPLAIN QUERY PLAN " + statement, params)
            plan = " | ".join(str(row[-1]) for row in cursor.fetchall())
            assert f"USING INDEX {index or 'ix_work_orders_'}" in plan, plan
            assert "TEMP B-TREE" not in plan, plan  # no sort of the matching rows
        else:
            # An empty table makes any plan cheap: forbid what a big one would avoid.
            cursor.execute("SET enable_seqscan = off")
            cursor.execute("SET enable_sort = off")
            cursor.execute("EXPLAIN (FORMAT JSON) " + statement, params)
            row = cursor.fetchone()
            assert row is not None
            plan = json.dumps(row[0])
            cursor.execute("RESET ALL")
            assert '"Sort"' not in plan, plan
            assert "Seq Scan" not in plan, plan
            assert "ix_work_orders_" in plan, plan
        cursor.close()
