"""Stores and orders, registered by the marketplace's order system (or imported)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collabdesk.domain import metrics
from collabdesk.domain.bounds import check_cents, check_id, check_instant
from collabdesk.domain.errors import CollabdeskError, Forbidden, NotFound, ValidationFailed
from collabdesk.domain.records import Account
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
    """The bounds of an order from outside (the API's schema checks the same, the import
    relies on this): ids, amount and payment time a database and the rules can hold."""
    check_id(order.id, "id")
    check_id(order.store_id, "store_id")
    check_id(order.consumer_id, "consumer_id")
    check_cents(order.amount_cents, "amount_cents")
    check_instant(order.paid_at, "paid_at")


def _consumer_problem(account: Account | None, consumer_id: str) -> CollabdeskError | None:
    """An order belongs to a consumer account: an unknown id or another role is refused."""
    if account is None:
        return NotFound(f"consumer {consumer_id} not found")
    if account.role is not Role.CONSUMER:
        return ValidationFailed(f"consumer_id {consumer_id} is a {account.role} account, "
                                "not a consumer")
    return None


def create_order(ctx: ServiceContext, actor: Actor | None, order: Order) -> Order:
    _require_registrar(actor)
    _check_order(order)

    def run(uow: UnitOfWork) -> Order:
        if uow.stores.get(order.store_id) is None:
            raise NotFound(f"store {order.store_id} not found")
        consumer = uow.accounts.get(order.consumer_id)
        if (problem := _consumer_problem(consumer, order.consumer_id)) is not None:
            raise problem
        uow.orders.add(order, ctx.clock.now())
        uow.rollups.apply(metrics.paid_order(order.store_id, order.paid_at))
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
    raw_amount = row["amount_cents"]
    if isinstance(raw_amount, float | bool):  # JSON true is not 1, 1.5 is no cents
        raise ValidationFailed("amount_cents must be a whole number of cents")
    try:
        amount = int(raw_amount)
    except (TypeError, ValueError):
        raise ValidationFailed(
            f"amount_cents must be an integer, not {_shown(raw_amount)}") from None
    try:
        paid_at = datetime.fromisoformat(str(row["paid_at"]).replace("Z", "+00:00"))
    except ValueError:
        raise ValidationFailed(
            f"paid_at is not an ISO 8601 time: {_shown(row['paid_at'])}") from None
    order = Order(str(row["id"]), str(row["store_id"]), str(row["consumer_id"]), kind,
                  amount, paid_at)
    _check_order(order)
    return order


def _shown(value: object) -> str:
    """A value quoted in a refusal, cut short: a row may hold megabytes of garbage."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _import_batch(ctx: ServiceContext, batch: list[tuple[int, Order]],
                  result: ImportResult) -> None:
    """One transaction for the batch: refusals are decided row by row before inserting,
    with one query for the batch's stores, one for its consumers and one for its ids;
    then one insert of the accepted orders and one change of the rollups (paid orders).
    If the database still refuses the batch (a concurrent writer took an id), each row
    is tried in a transaction of its own, so only the bad rows are lost."""
    def run(uow: UnitOfWork) -> list[tuple[int, str]]:
        refused: list[tuple[int, str]] = []
        orders = [o for _, o in batch]
        stores = uow.stores.existing(sorted({o.store_id for o in orders}))
        accounts = {a.id: a for a in uow.accounts.get_many(
            sorted({o.consumer_id for o in orders}))}
        existing = uow.orders.existing_ids([o.id for o in orders])
        accepted: list[Order] = []
        seen: set[str] = set()
        paid = metrics.Rollup()
        for line, order in batch:
            if order.store_id not in stores:
                refused.append((line, f"unknown store {order.store_id}"))
            elif (problem := _consumer_problem(accounts.get(order.consumer_id),
                                               order.consumer_id)) is not None:
                refused.append((line, problem.detail))
            elif order.id in existing or order.id in seen:
                refused.append((line, f"order {order.id} already exists"))
            else:
                accepted.append(order)
                seen.add(order.id)
                paid.add(metrics.paid_order(order.store_id, order.paid_at))
        uow.orders.add_many(accepted, ctx.clock.now())
        uow.rollups.apply(paid)
        return refused

    try:
        refused = ctx.write(run, attempts=1)
    except CollabdeskError:
        if len(batch) == 1:
            raise
        for one in batch:
            try:
                _import_batch(ctx, [one], result)
            except CollabdeskError as exc:
                result.refused.append((one[0], exc.detail))
        return
    result.refused.extend(refused)
    result.imported += len(batch) - len(refused)


def import_orders(ctx: ServiceContext, rows: Iterable[tuple[int, dict[str, Any]]],
                  batch_size: int = 500,
                  progress: Callable[[int], object] | None = None) -> ImportResult:
    """Register orders in batches, one transaction per batch. Bad rows are refused with
    the reason and never stop the rest; a row whose id exists is refused, not replaced."""
    result = ImportResult()
    batch: list[tuple[int, Order]] = []

    def flush() -> None:
        _import_batch(ctx, batch, result)
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
