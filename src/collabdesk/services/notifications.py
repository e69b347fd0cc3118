"""Who is told what, written in the same transaction as the change that causes it.

The in-app inbox (the IM work-order card) is written directly: it is delivered when the
change commits. SMS, email and webhooks are rows in the outbox, sent after the commit by
the dispatcher (services/outbox.py), so nothing goes out for a change that rolled back
and nothing is lost when a channel or the process fails. Every delivery has a line in
the delivery log from the start (`pending` until its first attempt), so "why did I not
receive the work order?" has an answer: who was a recipient, by which channel, and what
happened (rules.md §7).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from collabdesk.domain.delivery import WebhookEvent, masked
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.records import (
    Account,
    Channel,
    Delivery,
    DeliveryStatus,
    InboxItem,
    InboxKind,
    OutboxMessage,
    Webhook,
)
from collabdesk.domain.states import Role
from collabdesk.domain.values import DomainEvent, utc_iso

from .context import new_id
from .messages import catalogue
from .ports import UnitOfWork
from .wire import work_order_out

INBOX = "inbox"  # the channel name in the delivery log


@dataclass
class _HookEvent:
    event_id: str
    type: WebhookEvent
    store_id: str
    work_order_id: str
    at: datetime
    data: dict[str, Any]  # beside "work_order"
    work_order: dict[str, Any]  # as it was at the event (its version is set at flush)
    wo: WorkOrder
    hooks: list[Webhook]


@dataclass
class Notices:
    """What one unit of work will tell people, written with one statement per table at
    `flush` (the timer runner shares one across a whole batch). Recipients and webhooks
    are looked up once per store or consumer."""

    uow: UnitOfWork
    inbox: list[InboxItem] = field(default_factory=list)
    deliveries: list[Delivery] = field(default_factory=list)
    outbox: list[OutboxMessage] = field(default_factory=list)
    hook_events: list[_HookEvent] = field(default_factory=list)
    _staff: dict[str, list[Account]] = field(default_factory=dict)
    _accounts: dict[str, Account | None] = field(default_factory=dict)
    _hooks: dict[str, list[Webhook]] = field(default_factory=dict)

    def store_recipients(self, store_id: str) -> list[Account]:
        if store_id not in self._staff:
            self._staff[store_id] = store_recipients(self.uow, store_id)
        return self._staff[store_id]

    def account(self, account_id: str) -> Account | None:
        if account_id not in self._accounts:
            self._accounts[account_id] = self.uow.accounts.get(account_id)
        return self._accounts[account_id]

    def webhooks(self, store_id: str) -> list[Webhook]:
        if store_id not in self._hooks:
            self._hooks[store_id] = [h for h in self.uow.webhooks.for_store(store_id)
                                     if h.enabled]
        return self._hooks[store_id]

    def flush(self) -> None:
        """Write what was gathered. Webhook bodies are rendered now, once the work orders
        have their new version."""
        for event in self.hook_events:
            self._queue_webhooks(event)
        self.uow.inbox.add_many(self.inbox)
        self.uow.deliveries.add_many(self.deliveries)
        self.uow.outbox.add_many(self.outbox)
        if self.outbox:
            self.uow.after_commit("outbox")
        if self.inbox:
            self.uow.after_commit("inbox")
        self.inbox, self.deliveries, self.outbox, self.hook_events = [], [], [], []

    def _queue_webhooks(self, event: _HookEvent) -> None:
        event.work_order["version"] = event.wo.version
        body = json.dumps({"id": event.event_id, "type": str(event.type),
                           "created_at": utc_iso(event.at),
                           "data": {"work_order": event.work_order, **event.data}},
                          ensure_ascii=False, separators=(",", ":"))
        for hook in event.hooks:
            self.queue(Channel.WEBHOOK, str(event.type), event.work_order_id, hook.store_id,
                        hook.id, hook.url, body, event.at, event.event_id)

    def queue(self, channel: Channel, kind: str, work_order_id: str | None,
              store_id: str | None, recipient_id: str, destination: str,
              payload: str, now: datetime, event_id: str | None = None) -> None:
        """One outbox message, due now, with its `pending` delivery line."""
        line = Delivery(new_id("dlv"), work_order_id, recipient_id, store_id, str(channel),
                        kind, DeliveryStatus.PENDING, None, now, None, event_id,
                        masked(channel, destination))
        self.deliveries.append(line)
        self.outbox.append(OutboxMessage(channel, kind, work_order_id, store_id,
                                         recipient_id, destination, event_id, payload, now,
                                         now, now, line.id))


def log_given_up(uow: UnitOfWork, hook: Webhook, messages: list[OutboxMessage], reason: str,
                 now: datetime) -> None:
    """The delivery log of a webhook's messages given up unsent (the webhook removed or
    switched off): a message never attempted has its `pending` line closed; one that
    was, a new line after its attempts."""
    lines = [Delivery(m.line_id if m.attempts == 0 else new_id("dlv"), m.work_order_id,
                      hook.id, hook.store_id, str(Channel.WEBHOOK), m.kind,
                      DeliveryStatus.FAILED, reason, now, m.attempts or None, m.event_id,
                      hook.url) for m in messages]
    uow.deliveries.update_many([d for d, m in zip(lines, messages, strict=True)
                                if m.attempts == 0])
    uow.deliveries.add_many([d for d, m in zip(lines, messages, strict=True) if m.attempts])


def store_recipients(uow: UnitOfWork, store_id: str) -> list[Account]:
    """Agents holding the work-order permission; the owner(s) when none does (§7)."""
    staff = uow.accounts.store_staff(store_id)
    agents = [a for a in staff if a.role is Role.MERCHANT_AGENT and a.handles_work_orders]
    return agents or [a for a in staff if a.role is Role.MERCHANT_OWNER]


def tell(notices: Notices, recipient: Account, template: str, wo: WorkOrder | None,
         now: datetime, **values: Any) -> None:
    """One notification to one account: its inbox now, its phone and email through the
    outbox (as the template's channels say), in its language."""
    msg = catalogue().render(template, recipient.language, wo, now, **values)
    wo_id = wo.id if wo is not None else None
    notices.inbox.append(InboxItem(new_id("ntf"), recipient.id, InboxKind(msg.kind), wo_id,
                                   msg.text, now))
    notices.deliveries.append(Delivery(new_id("dlv"), wo_id, recipient.id,
                                       recipient.store_id, INBOX, msg.kind,
                                       DeliveryStatus.DELIVERED, None, now))
    if "sms" in msg.channels:
        if recipient.phone:
            notices.queue(Channel.SMS, msg.kind, wo_id, recipient.store_id, recipient.id,
                           recipient.phone,
                           json.dumps({"text": msg.text}, ensure_ascii=False), now)
        else:
            notices.deliveries.append(Delivery(
                new_id("dlv"), wo_id, recipient.id, recipient.store_id, str(Channel.SMS),
                msg.kind, DeliveryStatus.SKIPPED, "no phone number on the account", now))
    if "email" in msg.channels and recipient.email:
        notices.queue(Channel.EMAIL, msg.kind, wo_id, recipient.store_id, recipient.id,
                       recipient.email,
                       json.dumps({"subject": msg.subject, "text": msg.body},
                                  ensure_ascii=False), now)


def notify_store(notices: Notices, wo: WorkOrder, template: str, now: datetime,
                 **values: Any) -> None:
    recipients = notices.store_recipients(wo.store_id)
    if not recipients:
        # Logged so the store can see why nobody got it.
        notices.deliveries.append(Delivery(
            new_id("dlv"), wo.id, "store:" + wo.store_id, wo.store_id, INBOX,
            catalogue().templates[template].kind, DeliveryStatus.SKIPPED,
            "the store has no staff account to receive it", now))
    for account in recipients:
        tell(notices, account, template, wo, now, **values)


def notify_consumer(notices: Notices, wo: WorkOrder, template: str, now: datetime,
                    **values: Any) -> None:
    consumer = notices.account(wo.consumer_id)
    if consumer is None:
        notices.deliveries.append(Delivery(
            new_id("dlv"), wo.id, wo.consumer_id, None, INBOX,
            catalogue().templates[template].kind, DeliveryStatus.SKIPPED,
            "the consumer has no account", now))
        return
    tell(notices, consumer, template, wo, now, **values)


def webhook_event(notices: Notices, wo: WorkOrder, type_: WebhookEvent, at: datetime,
                  **data: Any) -> None:
    """An event for the store's webhooks subscribed to `type_` (one event id, however
    many webhooks receive it): the work order as it is now, sent once the change commits."""
    hooks = [h for h in notices.webhooks(wo.store_id) if str(type_) in h.events]
    if hooks:
        notices.hook_events.append(_HookEvent(new_id("evt"), type_, wo.store_id, wo.id, at,
                                              data, work_order_out(wo), wo, hooks))


def on_events(notices: Notices, wo: WorkOrder, events: list[DomainEvent], policy: Policy,
              *, state_changed: bool = False) -> None:
    """Turn what happened to a work order into notifications (rules.md §7)."""
    for ev in events:
        now = ev.at
        if ev.type == "opened":
            notify_store(notices, wo, "card" if wo.due_at else "card_worry_free", now)
            webhook_event(notices, wo, WebhookEvent.WORK_ORDER_CREATED, now)
        elif ev.type == "timed_out":
            notify_store(notices, wo, "timeout", now)
            webhook_event(notices, wo, WebhookEvent.WORK_ORDER_TIMED_OUT, now)
        elif ev.type == "replied" and ev.data.get("option") == "resolved_agreed":
            notify_consumer(notices, wo, "confirmation_requested", now,
                            until=now + policy.confirmation_window)
        elif ev.type == "verified":
            for notify in (notify_store, notify_consumer):
                notify(notices, wo, "verification_decided", now, outcome=ev.data["outcome"])
        elif ev.type == "judged":
            for notify in (notify_store, notify_consumer):
                notify(notices, wo, "judged", now, ruling=ev.data["ruling"])
        elif ev.type == "appeal_decided":
            for notify in (notify_store, notify_consumer):
                notify(notices, wo, "appeal_decided", now, decision=ev.data["decision"])
        elif ev.type == "violation_recorded":
            notify_store(notices, wo, "violation_recorded", now,
                         severity=ev.data["severity"], points=ev.data["points"])
            webhook_event(notices, wo, WebhookEvent.VIOLATION_RECORDED, now, violation={
                "id": ev.data["violation_id"], "severity": ev.data["severity"],
                "points": ev.data["points"]})
        elif ev.type in ("consumer_responded", "confirmation_lapsed", "withdrawn", "settled"):
            notify_store(notices, wo, "state_changed" if wo.is_open else "closed", now)
            # The consumer decided the other two; these two decide the case for them.
            if ev.type == "settled":
                notify_consumer(notices, wo, "settled_consumer", now)
            elif ev.type == "confirmation_lapsed":
                notify_consumer(notices, wo, "lapsed_consumer", now)
    if state_changed and events:
        webhook_event(notices, wo, WebhookEvent.WORK_ORDER_UPDATED, events[-1].at)


def remind_store(notices: Notices, wo: WorkOrder, now: datetime) -> None:
    notify_store(notices, wo, "reminder", now)
    webhook_event(notices, wo, WebhookEvent.WORK_ORDER_REMINDER, now)
