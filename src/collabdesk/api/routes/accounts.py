"""Accounts, stores, orders and the staff permission."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status

from collabdesk.domain.errors import ValidationFailed
from collabdesk.domain.values import Order, Store
from collabdesk.services import accounts, catalog

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx
from ..fields import PathId
from ..idempotency import omit_from_replays
from ..openapi import problems

router = APIRouter(tags=["accounts, stores, orders"], route_class=m.RenderedRoute)

_REGISTRAR = "only admin and integration accounts register stores and orders"


@router.post("/v1/accounts", status_code=status.HTTP_201_CREATED, response_model=m.NewAccount,
             summary="Create an account",
             responses=problems(
                 forbidden="the caller is not an admin",
                 not_found="`store_id` names no store",
                 validation_error="`store_id` is required for merchant roles and refused for "
                                  "others; `login` and `password` go together; a password "
                                  "has at least 8 characters",
                 already_exists="the `login` is taken"))
def create_account(body: s.AccountIn, request: Request, ctx: Ctx,
                   caller: Caller) -> dict[str, Any]:
    """Create an account of any role and its bearer token. **Admin only.**

    The token is in this answer only: it is stored hashed, and an `Idempotency-Key` replay
    of this request answers without it. Merchant accounts (`merchant_owner`,
    `merchant_agent`) belong to a store (`store_id`); an agent starts with the
    work-order permission. `login` and `password` (both or neither) allow signing in to
    the web pages.
    """
    # The token is shown once: an Idempotency-Key replay answers without it.
    omit_from_replays(request, "token")
    account, token = accounts.create_account(
        ctx, caller, name=body.name, role=body.role, store_id=body.store_id, phone=body.phone,
        email=body.email, login=body.login, password=body.password, language=body.language)
    return s.account_out(account, token)


@router.get("/v1/accounts/me", response_model=m.Me, summary="Who am I")
def whoami(ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The account the bearer token belongs to: its id, role and store. Any caller."""
    return {"id": caller.id, "role": str(caller.role), "store_id": caller.store_id}


@router.patch("/v1/accounts/me", response_model=m.MyContact,
              summary="Set my phone, email and notification language",
              responses=problems(validation_error="a malformed phone number or email, or a "
                                                  "language other than zh and en"))
def update_me(body: s.MyContactIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Where the caller's notifications go (SMS to `phone`, email to `email`) and in which
    language (`zh` or `en`). Fields left out keep their value; `null` clears a phone
    number or an email. **Any caller**, for their own account."""
    given = body.model_fields_set
    if "language" in given and body.language is None:
        raise ValidationFailed("language: zh or en (it cannot be cleared)")
    account = accounts.update_contact(
        ctx, caller, **{k: getattr(body, k) for k in ("phone", "email", "language")
                        if k in given})
    return {**s.account_out(account), "phone": account.phone, "email": account.email}


@router.post("/v1/stores/{store_id}/staff/{account_id}", response_model=m.StaffAccount,
             summary="Grant or withdraw an agent's work-order permission",
             responses=problems(
                 not_found="no such store (or another store's), or the account is not "
                           "staff of this store",
                 forbidden="the caller is not the store's owner",
                 validation_error="the account is not a `merchant_agent` (the owner always "
                                  "holds the permission)"))
def set_staff_permission(store_id: PathId, account_id: PathId, body: s.StaffPermissionIn,
                         ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Set whether a store's `merchant_agent` handles the store's work orders. **The store's
    owner only.**

    An agent without the permission no longer sees the store's work orders and receives no
    cards; while no agent holds it, cards go to the owner.
    """
    account = accounts.set_staff_permission(ctx, caller, store_id, account_id,
                                            body.work_orders)
    return {**s.account_out(account), "work_orders": account.handles_work_orders}


@router.post("/v1/stores", status_code=status.HTTP_201_CREATED, response_model=m.Store,
             summary="Register a store",
             responses=problems(forbidden=_REGISTRAR,
                                already_exists="a store with this `id` exists"))
def create_store(body: s.StoreIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Register a store under the id the marketplace gives it. **Admin and integration
    accounts only.** The platform (`tmall` or `taobao`) decides which metric the store is
    measured by."""
    store = catalog.create_store(ctx, caller, Store(body.id, body.name, body.platform))
    return s.store_out(store)


@router.get("/v1/stores/{store_id}", response_model=m.Store, summary="Get a store",
            responses=problems(not_found="no such store, or another store's (to a merchant)"))
def get_store(store_id: PathId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """A store's details: to its own merchants, to the platform and to admin and
    integration accounts; another store's merchants get 404."""
    return s.store_out(catalog.get_store(ctx, caller, store_id))


@router.post("/v1/orders", status_code=status.HTTP_201_CREATED, response_model=m.Order,
             summary="Register an order",
             responses=problems(
                 forbidden=_REGISTRAR,
                 not_found="`store_id` names no store, or `consumer_id` no account",
                 validation_error="`consumer_id` is not a consumer's account",
                 already_exists="an order with this `id` exists"))
def create_order(body: s.OrderIn, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Register a paid order of a store's, bought by a consumer account. **Admin and
    integration accounts only.** A consumer can open a work order on it; `kind:
    worry_free` orders (无忧购) open worry-free work orders, settled by the platform."""
    order = catalog.create_order(ctx, caller, Order(
        body.id, body.store_id, body.consumer_id, body.kind, body.amount_cents, body.paid_at))
    return s.order_out(order)
