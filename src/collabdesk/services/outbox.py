"""Sending the outbox: claim what is due, send it, record every attempt.

A batch is claimed (leased) in one short transaction, sent outside any transaction (all
at once, but one after another to the same destination, so a receiver sees its messages
in order), and its outcomes are recorded in a second transaction: the message's status
and next due time, a line in the delivery log per attempt, and the webhook's health.
A process that dies mid-send leaves its lease to run out; the message is then sent again
(at least once). Retry timing is data (domain/delivery.py), counted from the first due
time, so `POST /v1/test-clock/advance` delivers in due order whatever falls due.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import secrets
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta

from collabdesk.domain.delivery import (
    DISABLE_WEBHOOK_AFTER,
    MESSAGE_RETRIES,
    WEBHOOK_RETRIES,
    RetrySchedule,
    masked,
    should_disable,
)
from collabdesk.domain.records import (
    Account,
    Channel,
    Delivery,
    DeliveryStatus,
    OutboxMessage,
    Webhook,
)
from collabdesk.domain.states import Role
from collabdesk.domain.values import utc_iso

from . import notifications
from .context import ServiceContext, new_id
from .ports import Sender, SendResult, UnitOfWork
from .webhooks import webhook_secret

log = logging.getLogger("collabdesk.delivery")

BATCH_SIZE = 100
# A batch's lease. A batch starts no send after half of it and caps each send at three
# tenths of it, so every attempt ends, and is recorded, while the lease still holds
# (messages not reached go back unattempted): a lease outliving its holder only delays a
# message, a batch outliving its lease could send one twice.
LEASE_SECONDS = 60.0
START_WITHIN = 0.5
SEND_CAP = 0.3
KEEP_DONE = timedelta(days=30)  # finished messages kept for redelivery, then purged


def schedule_for(channel: Channel) -> RetrySchedule:
    return WEBHOOK_RETRIES if channel is Channel.WEBHOOK else MESSAGE_RETRIES


@dataclass(frozen=True)
class Attempt:
    message: OutboxMessage  # as claimed
    result: SendResult
    at: datetime  # when it was attempted (the service clock)


# Told of each recorded batch of attempts (the dispatcher's metrics).
Observer = Callable[[list[Attempt]], None]


def dispatch_due(ctx: ServiceContext, senders: Mapping[Channel, Sender], *,
                 now: datetime | None = None, batch_size: int = BATCH_SIZE,
                 lease_seconds: float = LEASE_SECONDS, observe: Observer | None = None,
                 should_stop: Callable[[], bool] | None = None) -> int:
    """Send every message due at or before `now` (default: the clock), oldest first,
    including retries that fall due within the same horizon. Returns how many attempts
    were made."""
    horizon = now or ctx.clock.now()
    made = 0
    while True:
        token = secrets.token_hex(16)
        batch, hooks = ctx.write(functools.partial(
            _claim, horizon=horizon, limit=batch_size, token=token,
            lease_seconds=lease_seconds))
        if not batch:
            return made
        results = asyncio.run(_send_all(batch, hooks, senders, ctx.delivery.webhook_key,
                                        lease_seconds))
        at = max(horizon, ctx.clock.now()) if now is None else now
        attempts = [Attempt(m, r, at) for m, r in zip(batch, results, strict=True)
                    if r is not None]
        unsent = [m.id for m, r in zip(batch, results, strict=True)
                  if r is None and m.id is not None]
        recorded = ctx.write(functools.partial(_record, ctx, attempts=attempts, token=token,
                                               unsent=unsent))
        made += len(recorded)
        if observe is not None:
            observe(recorded)
        if should_stop is not None and should_stop():
            return made


def _claim(uow: UnitOfWork, *, horizon: datetime, limit: int, token: str,
           lease_seconds: float) -> tuple[list[OutboxMessage], dict[str, Webhook]]:
    real_now = datetime.now(UTC)
    batch = uow.outbox.claim_due(horizon, limit, real_now + timedelta(seconds=lease_seconds),
                                 token, real_now)
    hook_ids = [m.recipient_id for m in batch if m.channel is Channel.WEBHOOK]
    return batch, {h.id: h for h in uow.webhooks.get_many(hook_ids)}


async def _send_all(batch: list[OutboxMessage], hooks: dict[str, Webhook],
                    senders: Mapping[Channel, Sender], key: bytes,
                    lease_seconds: float) -> list[SendResult | None]:
    """Each message's result, None for one not attempted (its destination's earlier
    messages took the batch's time: it goes back to the outbox as it was)."""
    loop = asyncio.get_running_loop()
    stop_starting = loop.time() + lease_seconds * START_WITHIN
    cap = lease_seconds * SEND_CAP
    results: dict[int, SendResult | None] = {}
    by_destination: dict[tuple[Channel, str], list[tuple[int, OutboxMessage]]] = (
        defaultdict(list))
    for index, message in enumerate(batch):
        by_destination[(message.channel, message.destination)].append((index, message))

    async def one_destination(messages: list[tuple[int, OutboxMessage]]) -> None:
        for index, message in messages:
            late = loop.time() >= stop_starting
            results[index] = None if late else await _send_one(message, hooks, senders,
                                                                key, cap)

    await asyncio.gather(*(one_destination(m) for m in by_destination.values()))
    return [results[i] for i in range(len(batch))]


async def _send_one(message: OutboxMessage, hooks: dict[str, Webhook],
                    senders: Mapping[Channel, Sender], key: bytes, cap: float) -> SendResult:
    secret = None
    if message.channel is Channel.WEBHOOK:
        hook = hooks.get(message.recipient_id)
        if hook is None:
            return SendResult(False, "the webhook was removed", final=True)
        if not hook.enabled:
            return SendResult(False, "the webhook is switched off", final=True)
        secret = webhook_secret(key, hook)
    sender = senders.get(message.channel)
    if sender is None:
        return SendResult(False, f"no {message.channel} channel in this process", final=True)
    try:
        return await asyncio.wait_for(sender.send(message, secret), cap)
    except TimeoutError:
        return SendResult(False, f"no answer within {cap:g} s")
    except Exception as exc:  # a sender's bug must not lose the batch's outcomes
        log.exception("sending message %s failed", message.id)
        return SendResult(False, f"{type(exc).__name__}: {exc}")


def _record(ctx: ServiceContext, uow: UnitOfWork, *, attempts: list[Attempt],
            token: str, unsent: list[int]) -> list[Attempt]:
    """Store the attempts of messages this dispatcher still holds (a lease that ran out
    and was taken over belongs to the other dispatcher now, whatever this one sent), and
    give back the ones it did not reach. Returns the attempts stored."""
    held = uow.outbox.held(token, [a.message.id for a in attempts if a.message.id] + unsent)
    uow.outbox.release([i for i in unsent if i in held], token)
    lost = [a for a in attempts if a.message.id not in held]
    if lost:
        log.warning("%d attempt(s) not recorded: their lease had run out and another "
                    "dispatcher took them over (they may arrive twice)", len(lost))
    attempts = [a for a in attempts if a.message.id in held]
    notices = notifications.Notices(uow)
    hook_ids = sorted({a.message.recipient_id for a in attempts
                       if a.message.channel is Channel.WEBHOOK})
    hooks = {h.id: h for h in uow.webhooks.get_many(hook_ids)}  # locked, in id order
    changed_hooks: set[str] = set()
    updated_lines: list[Delivery] = []
    done: list[OutboxMessage] = []
    for attempt in attempts:
        message, result = attempt.message, attempt.result
        n = message.attempts + 1
        if result.delivered:
            status, due = DeliveryStatus.DELIVERED, message.due_at
        elif result.final:
            status, due = DeliveryStatus.SKIPPED, message.due_at
        else:
            next_due = schedule_for(message.channel).next_due(message.first_due_at, n)
            status = DeliveryStatus.RETRYING if next_due else DeliveryStatus.FAILED
            due = next_due or message.due_at
        done.append(replace(message, attempts=n, status=status, due_at=due,
                            last_error=None if result.delivered else result.reason))
        reason = result.reason
        if status is DeliveryStatus.RETRYING:
            reason = f"{reason}; next attempt at {utc_iso(due)}"
        line = Delivery(message.line_id if n == 1 else new_id("dlv"), message.work_order_id,
                        message.recipient_id, message.store_id, str(message.channel),
                        message.kind, status, reason, attempt.at, n, message.event_id,
                        masked(message.channel, message.destination))
        if n == 1:
            updated_lines.append(line)
        else:
            notices.deliveries.append(line)
        hook = hooks.get(message.recipient_id)
        if hook is not None and not result.final:
            hooks[hook.id] = _hook_health(hook, message, result, attempt.at)
            changed_hooks.add(hook.id)
    uow.outbox.record(done, token)
    uow.deliveries.update_many(updated_lines)
    for hook_id in sorted(changed_hooks):
        hook = hooks[hook_id]
        if hook.enabled and _failed_for_three_days(hook, attempts):
            hook = replace(hook, enabled=False, disabled_at=ctx.clock.now())
            _switch_off(ctx, uow, notices, hook)
        uow.webhooks.save(hook)
    notices.flush()
    return attempts


def _failed_for_three_days(hook: Webhook, attempts: list[Attempt]) -> bool:
    """Switch a webhook off when it has failed every attempt for 3 days, by the clock
    (so a dispatcher catching up on a backlog in minutes switches nothing off), and one
    of its messages failed on its schedule for as long (so a test clock's one long step
    runs the whole schedule first)."""
    return any(a.message.recipient_id == hook.id and not a.result.delivered
               and a.message.due_at - a.message.first_due_at >= DISABLE_WEBHOOK_AFTER
               and should_disable(hook.failing_since, a.at) for a in attempts)


def _hook_health(hook: Webhook, message: OutboxMessage, result: SendResult,
                 at: datetime) -> Webhook:
    """A success ends a run of failures; a failure starts one, as of when it was
    attempted: the three days are three days of failing attempts, so a dispatcher that
    catches up on a backlog of retries in minutes does not switch a webhook off."""
    if result.delivered:
        return replace(hook, failing_since=None, last_error=None, last_delivered_at=at)
    return replace(hook, failing_since=hook.failing_since or at, last_error=result.reason)


def _switch_off(ctx: ServiceContext, uow: UnitOfWork, notices: notifications.Notices,
                hook: Webhook) -> None:
    """Three days of failures: the webhook is switched off, its unsent events are given
    up (each logged), and the store's owners are told by inbox and email."""
    now = ctx.clock.now()
    reason = "the webhook was switched off after 3 days of failures"
    notifications.log_given_up(uow, hook, uow.outbox.close_open(hook.id, reason, now),
                               reason, now)
    log.warning("webhook %s of store %s switched off: failing since %s (%s)", hook.id,
                hook.store_id, hook.failing_since, hook.last_error)
    owners: list[Account] = [a for a in uow.accounts.store_staff(hook.store_id)
                             if a.role is Role.MERCHANT_OWNER]
    for owner in owners:
        notifications.tell(notices, owner, "webhook_disabled", None, now, hook_id=hook.id,
                           url=hook.url, since=hook.failing_since or now,
                           error=hook.last_error or "?")


def purge_done(ctx: ServiceContext, limit: int = 1000) -> int:
    """Delete messages finished more than KEEP_DONE ago, up to `limit`."""
    before = ctx.clock.now() - KEEP_DONE
    return ctx.write(lambda uow: uow.outbox.purge(before, limit))


def release_leases(ctx: ServiceContext) -> int:
    """A sole dispatcher starting (SQLite, under its file lock): leases left by one that
    died are void, so their messages go out now rather than when the leases run out."""
    return ctx.write(lambda uow: uow.outbox.clear_leases())
