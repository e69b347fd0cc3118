"""Store webhooks (register, list, remove, switch back on, redeliver one event) and the
answer to "why don't I receive work orders?" (`notification_check`).

A webhook's signing secret is never stored: it is derived from the server's secret key
and the webhook's random salt (HMAC-SHA256), shown once when the webhook is registered,
and derived again for each signature.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from datetime import datetime
from urllib.parse import urlsplit

from collabdesk.domain import bounds
from collabdesk.domain.delivery import WebhookEvent, mask_email, mask_phone
from collabdesk.domain.errors import Forbidden, InvalidTransition, NotFound, ValidationFailed
from collabdesk.domain.records import (
    Account,
    Channel,
    Delivery,
    OutboxMessage,
    Webhook,
)
from collabdesk.domain.states import MERCHANT_ROLES, PLATFORM_ROLES, Role
from collabdesk.domain.values import Actor

from . import notifications
from .access import can_see_store, handles_store
from .context import ServiceContext, new_id
from .ports import UnitOfWork

MAX_WEBHOOKS_PER_STORE = 10
MAX_URL_CHARS = 2000


def webhook_secret(key: bytes, hook: Webhook) -> str:
    mac = hmac.new(key, f"webhook:{hook.id}:{hook.secret_salt}".encode(), hashlib.sha256)
    return "whsec_" + base64.urlsafe_b64encode(mac.digest()).decode().rstrip("=")


def _store_for(uow: UnitOfWork, actor: Actor, store_id: str, *, owner: bool,
               any_staff: bool = False) -> None:
    """The store must exist and be the caller's (or the platform's to look at); changing
    webhooks is its owner's alone; the delivery log, which names the store's work orders,
    is for the staff who handle them (`any_staff`: every staff account)."""
    if uow.stores.get(store_id) is None or not can_see_store(actor, store_id):
        raise NotFound(f"store {store_id} not found")
    if owner:
        if actor.role is not Role.MERCHANT_OWNER:
            raise Forbidden("only the store's owner manages its webhooks")
    elif actor.role not in MERCHANT_ROLES | PLATFORM_ROLES | {Role.ADMIN}:
        raise Forbidden("delivery details are shown to the store and the platform")
    elif actor.role in MERCHANT_ROLES and not any_staff and not handles_store(actor,
                                                                              store_id):
        # The log names the store's work orders, which an agent without the work-order
        # permission no longer sees.
        raise Forbidden("delivery details are shown to the store's staff who handle its "
                        "work orders")


def _valid_url(url: str) -> str:
    if len(url) > MAX_URL_CHARS:
        raise ValidationFailed(f"url: at most {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise ValidationFailed(f"url: not a valid URL ({exc})") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValidationFailed("url: must be an absolute http:// or https:// URL")
    if parts.username or parts.password:
        raise ValidationFailed("url: credentials in the URL are not allowed; verify the "
                               "signature instead")
    del port
    return url


def _valid_events(events: list[str]) -> tuple[str, ...]:
    known = [str(e) for e in WebhookEvent]
    if not events:
        raise ValidationFailed("events: name at least one of " + ", ".join(known))
    unknown = [e for e in events if e not in known]
    if unknown:
        raise ValidationFailed(f"events: unknown {', '.join(unknown)}; known: "
                               + ", ".join(known))
    return tuple(dict.fromkeys(events))


def register(ctx: ServiceContext, actor: Actor, store_id: str, url: str,
             events: list[str]) -> tuple[Webhook, str]:
    """The new webhook and its secret (shown this once)."""
    hook = Webhook(new_id("whk"), store_id, _valid_url(url), _valid_events(events),
                   secrets.token_hex(16), True, ctx.clock.now(), actor.id)

    def run(uow: UnitOfWork) -> Webhook:
        _store_for(uow, actor, store_id, owner=True)
        if len(uow.webhooks.for_store(store_id)) >= MAX_WEBHOOKS_PER_STORE:
            raise ValidationFailed(f"a store has at most {MAX_WEBHOOKS_PER_STORE} webhooks")
        uow.webhooks.add(hook)
        return hook

    hook = ctx.write(run)
    return hook, webhook_secret(ctx.delivery.webhook_key, hook)


def list_hooks(ctx: ServiceContext, actor: Actor, store_id: str) -> list[Webhook]:
    def run(uow: UnitOfWork) -> list[Webhook]:
        _store_for(uow, actor, store_id, owner=False)
        return uow.webhooks.for_store(store_id)
    return ctx.read(run)


def _own_hook(uow: UnitOfWork, actor: Actor, store_id: str, hook_id: str) -> Webhook:
    _store_for(uow, actor, store_id, owner=True)
    hook = uow.webhooks.get(hook_id)
    if hook is None or hook.store_id != store_id:
        raise NotFound(f"webhook {hook_id} not found")
    return hook


def remove(ctx: ServiceContext, actor: Actor, store_id: str, hook_id: str) -> None:
    """Remove the webhook; its unsent events are given up, each logged."""
    def run(uow: UnitOfWork) -> None:
        hook = _own_hook(uow, actor, store_id, hook_id)
        _give_up(ctx, uow, hook, "the webhook was removed")
        uow.webhooks.delete(hook.id)
    ctx.write(run)


def enable(ctx: ServiceContext, actor: Actor, store_id: str, hook_id: str) -> Webhook:
    """Switch a webhook back on (after a run of failures switched it off)."""
    def run(uow: UnitOfWork) -> Webhook:
        hook = _own_hook(uow, actor, store_id, hook_id)
        if not hook.enabled:  # an enabled one keeps its run of failures going
            hook = replace(hook, enabled=True, disabled_at=None, failing_since=None)
            uow.webhooks.save(hook)
        return hook
    return ctx.write(run)


def _give_up(ctx: ServiceContext, uow: UnitOfWork, hook: Webhook, reason: str) -> None:
    now = ctx.clock.now()
    notifications.log_given_up(uow, hook, uow.outbox.close_open(hook.id, reason, now),
                               reason, now)


def redeliver(ctx: ServiceContext, actor: Actor, store_id: str, hook_id: str,
              event_id: str) -> OutboxMessage:
    """Send one event to the webhook again, now, with the same id and body, as a new
    delivery with its own retry schedule (one still retrying keeps its own: receivers
    tell repeats apart by the event id)."""
    if len(event_id) > bounds.ID_MAX:
        raise NotFound(f"event {event_id} not found")

    def run(uow: UnitOfWork) -> OutboxMessage:
        hook = _own_hook(uow, actor, store_id, hook_id)
        if not hook.enabled:
            raise InvalidTransition("the webhook is switched off: enable it first")
        sent = uow.outbox.by_event(event_id, hook.id)
        if sent is None:
            raise NotFound(f"event {event_id} not found for webhook {hook_id}")
        now = ctx.clock.now()
        notices = notifications.Notices(uow)
        notices.queue(Channel.WEBHOOK, sent.kind, sent.work_order_id, hook.store_id,
                       hook.id, hook.url, sent.payload, now, event_id)
        message = notices.outbox[0]
        notices.flush()
        return message
    return ctx.write(run)


@dataclass(frozen=True)
class RecipientCheck:
    account: Account
    channels: list[tuple[str, str | None, str | None]]  # (channel, shown address, problem)


@dataclass(frozen=True)
class Problem:
    code: str
    detail: str
    account_id: str | None = None
    webhook_id: str | None = None
    since: datetime | None = None


@dataclass(frozen=True)
class NotificationCheck:
    store_id: str
    checked_at: datetime
    recipients: list[RecipientCheck]
    webhooks: list[Webhook]
    problems: list[Problem]
    last_failures: list[Delivery]


def notification_check(ctx: ServiceContext, actor: Actor, store_id: str, *,
                       failures: int = 10) -> NotificationCheck:
    """Who would receive a new work order now, by which channel, and every problem on
    the way (rules.md §7: "why did I not receive the work order?")."""
    setup = ctx.delivery

    def run(uow: UnitOfWork) -> NotificationCheck:
        # Any of the store's staff may ask why they get nothing (an agent whose
        # permission was withdrawn first of all), but only those who handle the store's
        # work orders see the failed deliveries, which name them.
        _store_for(uow, actor, store_id, owner=False, any_staff=True)
        handles = actor.role not in MERCHANT_ROLES or handles_store(actor, store_id)
        staff = uow.accounts.store_staff(store_id)
        recipients = notifications.store_recipients(uow, store_id)
        hooks = uow.webhooks.for_store(store_id)
        problems: list[Problem] = []
        if not staff:
            problems.append(Problem("no_staff", "the store has no staff account: nobody "
                                                "receives its work orders"))
        elif not any(a.role is Role.MERCHANT_AGENT and a.handles_work_orders for a in staff):
            problems.append(Problem(
                "no_permission_holder", "no staff account holds the work-order permission, "
                "so the cards go to the owner" if recipients else
                "no staff account holds the work-order permission and the store has no "
                "owner account: nobody receives its work orders"))
        if not setup.sms_configured:
            problems.append(Problem("sms_not_configured", "the server has no SMS gateway "
                                    "(COLLABDESK_SMS_URL): texts are written to its log only"))
        if not setup.smtp_configured:
            problems.append(Problem("smtp_not_configured", "the server has no mail server "
                                    "(COLLABDESK_SMTP_URL): emails are written to its log only"))
        checks = []
        for account in recipients:
            channels: list[tuple[str, str | None, str | None]] = [("inbox", None, None)]
            if account.phone:
                channels.append(("sms", mask_phone(account.phone),
                                 None if setup.sms_configured else "sms_not_configured"))
            else:
                channels.append(("sms", None, "no_phone"))
                problems.append(Problem("no_phone", f"{account.name} ({account.id}) has no "
                                        "phone number: no SMS for them", account.id))
            if account.email:
                channels.append(("email", mask_email(account.email),
                                 None if setup.smtp_configured else "smtp_not_configured"))
            else:
                channels.append(("email", None, "no_email"))
                problems.append(Problem("no_email", f"{account.name} ({account.id}) has no "
                                        "email address: no email for them", account.id))
            checks.append(RecipientCheck(account, channels))
        for hook in hooks:
            if not hook.enabled:
                problems.append(Problem(
                    "webhook_disabled", f"webhook {hook.url} was switched off after failing "
                    f"for 3 days (last error: {hook.last_error})", webhook_id=hook.id,
                    since=hook.disabled_at))
            elif hook.failing_since is not None:
                problems.append(Problem(
                    "webhook_failing", f"webhook {hook.url} has failed since "
                    f"{hook.failing_since:%Y-%m-%d %H:%M} UTC: {hook.last_error}",
                    webhook_id=hook.id, since=hook.failing_since))
            elif WebhookEvent.WORK_ORDER_CREATED not in hook.events:
                problems.append(Problem(
                    "webhook_not_subscribed", f"webhook {hook.url} does not subscribe to "
                    "work_order.created", webhook_id=hook.id))
        last = (uow.deliveries.for_store(store_id, None, failures, failures_only=True)
                if handles else [])
        return NotificationCheck(store_id, ctx.clock.now(), checks, hooks, problems, last)
    return ctx.read(run)


def store_deliveries(ctx: ServiceContext, actor: Actor, store_id: str,
                     before: tuple[datetime, str] | None, limit: int) -> list[Delivery]:
    """Every delivery line to the store's staff and webhooks, newest first."""
    def run(uow: UnitOfWork) -> list[Delivery]:
        _store_for(uow, actor, store_id, owner=False)
        return uow.deliveries.for_store(store_id, before, limit)
    return ctx.read(run)
