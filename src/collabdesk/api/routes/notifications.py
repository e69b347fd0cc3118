"""Webhooks, the store's delivery log, and "why don't I receive work orders?"."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response, status

from collabdesk.domain.values import utc_iso
from collabdesk.services import webhooks as svc

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx, Cursor, Limit, keyset_cursor, page
from ..fields import PathId
from ..idempotency import omit_from_replays
from ..openapi import problems

router = APIRouter(tags=["notifications"], route_class=m.RenderedRoute)

STORE = "/v1/stores/{store_id}"
HOOK = STORE + "/webhooks/{hook_id}"
_OWNER = "the caller is not the store's owner"
_NO_STORE = "no such store, or another store's"
_SEES = "the caller is a consumer (the store's merchants and the platform see this)"


@router.post(STORE + "/webhooks", status_code=status.HTTP_201_CREATED,
             response_model=m.NewWebhook, summary="Register a webhook",
             responses=problems(forbidden=_OWNER, not_found=_NO_STORE,
                                validation_error="not an http(s) URL, or an unknown event "
                                                 "type, or the store has 10 webhooks"))
def register(store_id: PathId, body: s.WebhookIn, request: Request, ctx: Ctx,
             caller: Caller) -> dict[str, Any]:
    """Register a URL to receive the store's events. **The store's owner only.**

    Each event is `POST`ed as `{"id", "type", "created_at", "data": {"work_order"}}` with
    the headers `Collabdesk-Event-Id` and `Collabdesk-Signature: t=<unix seconds>,v1=<hex
    HMAC-SHA256 of "<t>.<raw body>" keyed with the secret>`. A non-2xx answer, or none in
    10 s, is retried after about 1 min, 5 min, 30 min, 2 h, 6 h, then every 12 h up to 3
    days, with the same event id; a webhook failing for 3 days is switched off and the
    owner told. The secret is in this answer only.
    """
    omit_from_replays(request, "secret")
    hook, secret = svc.register(ctx, caller, store_id, body.url, body.events)
    return s.webhook_out(hook, secret)


@router.get(STORE + "/webhooks", response_model=m.WebhookPage, summary="List webhooks",
            responses=problems(forbidden=_SEES, not_found=_NO_STORE))
def list_webhooks(store_id: PathId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """The store's webhooks and their health (without secrets). **The store's merchants
    and platform roles.**"""
    return {"items": [s.webhook_out(h) for h in svc.list_hooks(ctx, caller, store_id)],
            "next_cursor": None}


@router.delete(HOOK, status_code=status.HTTP_204_NO_CONTENT, response_class=Response,
               summary="Remove a webhook",
               responses=problems(forbidden=_OWNER, not_found="no such webhook of the store"))
def remove(store_id: PathId, hook_id: PathId, ctx: Ctx, caller: Caller) -> Response:
    """Remove a webhook; its undelivered events are given up (each logged). **The store's
    owner only.**"""
    svc.remove(ctx, caller, store_id, hook_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post(HOOK + "/enable", response_model=m.Webhook, summary="Switch a webhook back on",
             responses=problems(forbidden=_OWNER, not_found="no such webhook of the store"))
def enable(store_id: PathId, hook_id: PathId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Switch a webhook on again after 3 days of failures switched it off (new events
    reach it again; redeliver the ones it missed). **The store's owner only.**"""
    return s.webhook_out(svc.enable(ctx, caller, store_id, hook_id))


@router.post(HOOK + "/redeliver", status_code=status.HTTP_202_ACCEPTED,
             response_model=m.Redelivery, summary="Redeliver one event",
             responses=problems(forbidden=_OWNER,
                                not_found="no such webhook of the store, or the event was "
                                          "never sent to it (or is older than 30 days)",
                                invalid_transition="the webhook is switched off"))
def redeliver(store_id: PathId, hook_id: PathId, body: s.RedeliverIn, ctx: Ctx,
              caller: Caller) -> dict[str, Any]:
    """Send one event to the webhook again, now: the same id, the same body, a fresh
    signature, and its own retry schedule. **The store's owner only.**"""
    message = svc.redeliver(ctx, caller, store_id, hook_id, body.event_id)
    return {"event_id": message.event_id, "webhook_id": message.recipient_id,
            "status": str(message.status), "due_at": utc_iso(message.due_at)}


@router.get(STORE + "/notification-check", response_model=m.NotificationCheck,
            summary="Why don't I receive work orders?",
            responses=problems(forbidden=_SEES, not_found=_NO_STORE))
def notification_check(store_id: PathId, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Who would receive a new work order of the store now, by which channel, and every
    problem found: nobody holds the work-order permission, a recipient without a phone
    number or email address, SMS or email not configured on the server, a webhook
    failing (since when, and why) or switched off, and the latest failed deliveries.
    **The store's merchants and platform roles.**"""
    check = svc.notification_check(ctx, caller, store_id)
    return {
        "store_id": check.store_id, "checked_at": utc_iso(check.checked_at),
        "ok": not check.problems,
        "recipients": [{
            "account_id": r.account.id, "name": r.account.name, "role": str(r.account.role),
            "channels": [{"channel": c, "address": address, "ok": problem is None,
                          "problem": problem} for c, address, problem in r.channels]}
            for r in check.recipients],
        "webhooks": [s.webhook_out(h) for h in check.webhooks],
        "problems": [{"code": p.code, "detail": p.detail, "account_id": p.account_id,
                      "webhook_id": p.webhook_id, "since": s.iso_or_none(p.since)}
                     for p in check.problems],
        "last_failures": [s.delivery_out(d) for d in check.last_failures],
    }


@router.get(STORE + "/deliveries", response_model=m.DeliveryPage,
            summary="List the store's deliveries",
            responses=problems(forbidden=_SEES, not_found=_NO_STORE,
                               validation_error="a `cursor` this server did not issue"))
def store_deliveries(store_id: PathId, ctx: Ctx, caller: Caller, limit: Limit = 50,
                     cursor: Cursor = None) -> dict[str, Any]:
    """Every delivery attempt to the store's staff and webhooks, on every channel,
    newest first. **The store's merchants and platform roles.**"""
    lines = svc.store_deliveries(ctx, caller, store_id, keyset_cursor(cursor), limit + 1)
    return page(lines, limit, lambda d: [s.iso_or_none(d.at), d.id], s.delivery_out)
