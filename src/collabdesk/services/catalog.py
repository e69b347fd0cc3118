"""Stores and orders, registered by the marketplace's order system (or imported)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collabdesk.domain.errors import AlreadyExists, Forbidden, NotFound, ValidationFailed
from collabdesk.domain.states import Role
from collabdesk.domain.values import Actor, Order, OrderKind, Store

from .access import can_see_store
from .context import ServiceContext
from .ports import UnitOfWork

REGISTRARS = frozenset({Role.ADMIN, Role.INTEGRATION})


def _require_registrar(actor: Actor | None) -> None:
    if actor is not None and actor.role not in REGISTRARS:
        raise Forbidden("only admin and integration accounts register stores and orders")


def create_store(ctx: ServiceContext, actor: Actor | None, store: Store) -> Store:
    _require_registrar(actor)
    if not store.id.strip() or not store.name.strip():
        raise ValidationFailed("id and name are required")

    def run(uow: UnitOfWork) -> Store:
        uow.stores.add(store, ctx.clock.now())
        return store
    return ctx.write(run)


def get_store(ctx: ServiceContext, actor: Actor, store_id: str) -> Store:
    store = ctx.read(lambda uow: uow.stores.get(store_id))
    if store is None or not can_see_store(actor, store_id):
        raise NotFound(f"store {store_id} not found")
    return store


def _check_order(order: Order) -> None:
    if not order.id.strip():
        raise ValidationFailed("id is required")
    if order.amount_cents < 0:
        raise ValidationFailed("amount_cents may not be negative")
    if order.paid_at.tzinfo is None:
        raise ValidationFailed("paid_at needs a UTC offset")


def create_order(ctx: ServiceContext, actor: Actor | None, order: Order) -> Order:
    _require_registrar(actor)
    _check_order(order)

    def run(uow: UnitOfWork) -> Order:
        if uow.stores.get(order.store_id) is None:
            raise NotFound(f"store {order.store_id} not found")
        uow.orders.add(order, ctx.clock.now())
        return order
    return ctx.write(run)


@dataclass
class ImportResult:
    imported: int = 0
    refused: list[tuple[int, str]] = field(default_factory=list)  # (row number, why)


def parse_order_row(row: dict[str, Any]) -> Order:
    """One CSV or JSON-lines row to an Order; raises ValidationFailed saying what is wrong."""
    if "__error__" in row:
        raise ValidationFailed(str(row["__error__"]))
    missing = [k for k in ("id", "store_id", "consumer_id", "amount_cents", "paid_at")
               if row.get(k) in (None, "")]
    if missing:
        raise ValidationFailed(f"missing {', '.join(missing)}")
    try:
        kind = OrderKind(row.get("kind") or "standard")
    except ValueError:
        raise ValidationFailed(
            f"kind must be standard or worry_free, not {row['kind']!r}") from None
    try:
        amount = int(row["amount_cents"])
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"amount_cents must be an integer, not {row['amount_cents']!r}") from None
    if isinstance(row["amount_cents"], float | bool) or amount < 0:  # JSON true is not 1
        raise ValidationFailed("amount_cents must be a non-negative integer number of cents")
    try:
        paid_at = datetime.fromisoformat(str(row["paid_at"]).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(f"paid_at is not an ISO 8601 time: {row['paid_at']!r}") from None
    if paid_at.tzinfo is None:
        raise ValidationFailed("paid_at needs a UTC offset")
    return Order(str(row["id"]), str(row["store_id"]), str(row["consumer_id"]), kind, amount,
                 paid_at)


def import_orders(ctx: ServiceContext, rows: Iterable[tuple[int, dict[str, Any]]],
                  batch_size: int = 500,
                  progress: Callable[[int], object] | None = None) -> ImportResult:
    """Register orders in batches, one transaction per batch. Bad rows are refused with
    the reason and never stop the rest; a row whose id exists is refused, not replaced."""
    result = ImportResult()
    batch: list[tuple[int, Order]] = []

    def flush() -> None:
        def run(uow: UnitOfWork) -> int:
            known_stores: dict[str, bool] = {}
            existing = uow.orders.existing_ids([o.id for _, o in batch])
            seen: set[str] = set()
            added = 0
            now = ctx.clock.now()
            for line, order in batch:
                if order.store_id not in known_stores:
                    known_stores[order.store_id] = uow.stores.get(order.store_id) is not None
                if not known_stores[order.store_id]:
                    result.refused.append((line, f"unknown store {order.store_id}"))
                elif order.id in existing or order.id in seen:
                    result.refused.append((line, f"order {order.id} already exists"))
                else:
                    uow.orders.add(order, now)
                    seen.add(order.id)
                    added += 1
            return added
        try:
            result.imported += ctx.write(run, attempts=1)
        except AlreadyExists as exc:  # a concurrent writer took an id; report, keep going
            result.refused.extend((line, exc.detail) for line, _ in batch)
        if progress:
            progress(len(batch))
        batch.clear()

    for line, raw in rows:
        try:
            batch.append((line, parse_order_row(raw)))
        except ValidationFailed as exc:
            result.refused.append((line, exc.detail))
            if progress:
                progress(1)
        if len(batch) >= batch_size:
            flush()
    if batch:
        flush()
    result.refused.sort()
    return result
