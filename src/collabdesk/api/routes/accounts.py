"""Accounts, stores, orders and the staff permission."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, status

from collabdesk.domain.values import Order, Store
from collabdesk.services import accounts, catalog

from .. import schemas as s
from ..deps import Caller, Ctx

router = APIRouter(tags=["accounts, stores, orders"])


@router.post("/v1/accounts", status_code=status.HTTP_201_CREATED)
def create_account(body: s.AccountIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    account, token = accounts.create_account(
        ctx, caller, name=body.name, role=body.role, store_id=body.store_id, phone=body.phone,
        email=body.email, login=body.login, password=body.password)
    return s.account_out(account, token)


@router.get("/v1/accounts/me")
def whoami(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return {"id": caller.id, "role": str(caller.role), "store_id": caller.store_id}


@router.post("/v1/stores/{store_id}/staff/{account_id}")
def set_staff_permission(store_id: str, account_id: str, body: s.StaffPermissionIn, ctx: Ctx,
                         caller: Caller) -> dict[str, Any]:
    account = accounts.set_staff_permission(ctx, caller, store_id, account_id,
                                            body.work_orders)
    return {**s.account_out(account), "work_orders": account.handles_work_orders}


@router.post("/v1/stores", status_code=status.HTTP_201_CREATED)
def create_store(body: s.StoreIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    store = catalog.create_store(ctx, caller, Store(body.id, body.name, body.platform))
    return s.store_out(store)


@router.get("/v1/stores/{store_id}")
def get_store(store_id: str, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    return s.store_out(catalog.get_store(ctx, caller, store_id))


@router.post("/v1/orders", status_code=status.HTTP_201_CREATED)
def create_order(body: s.OrderIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    order = catalog.create_order(ctx, caller, Order(
        body.id, body.store_id, body.consumer_id, body.kind, body.amount_cents, body.paid_at))
    return s.order_out(order)
