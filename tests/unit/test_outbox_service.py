"""The dispatcher's service on the in-memory fakes: what a late dispatcher does, and how a
batch that outlasts its time gives messages back instead of letting its lease run out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.records import Channel, DeliveryStatus, OutboxMessage, Webhook
from collabdesk.services import outbox
from collabdesk.services.context import ServiceContext
from collabdesk.services.ports import SendResult, UnitOfWork
from tests.fakes import fake_context

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
HOOK = Webhook("whk_1", "s-1", "http://127.0.0.1:9/hook", ("work_order.created",), "salt",
               True, T0, "acc_owner")


class Failing:
    def __init__(self, delay: float = 0.0) -> None:
        self.sent: list[int | None] = []
        self.delay = delay

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult:
        self.sent.append(message.id)
        await asyncio.sleep(self.delay)
        return SendResult(False, "HTTP 500")


def _queue(ctx: ServiceContext, channel: Channel, count: int, destination: str) -> None:
    def run(uow: UnitOfWork) -> None:
        uow.webhooks.add(HOOK)
        uow.outbox.add_many([OutboxMessage(
            channel, "work_order_created", f"wo_{i}", "s-1",
            HOOK.id if channel is Channel.WEBHOOK else "acc_1", destination, f"evt_{i}",
            json.dumps({"text": "x"}), T0, T0, T0, f"dlv_{i}") for i in range(count)])
    ctx.write(run)


def test_a_dispatcher_catching_up_runs_the_schedule_but_switches_no_webhook_off() -> None:
    # Down for four days: when it comes back every retry of the schedule is overdue. It
    # runs them, but the webhook has failed for minutes by the clock, not three days.
    clock = FixedClock(T0 + timedelta(days=4))
    ctx = fake_context(clock)
    _queue(ctx, Channel.WEBHOOK, 1, HOOK.url)
    sender = Failing()
    assert outbox.dispatch_due(ctx, {Channel.WEBHOOK: sender}) == 12
    hook = ctx.read(lambda uow: uow.webhooks.get(HOOK.id))
    assert hook is not None
    assert (hook.enabled, hook.failing_since) == (True, T0 + timedelta(days=4))


def test_a_slow_destination_gives_its_unreached_messages_back_before_the_lease_ends() -> None:
    clock = FixedClock(T0)
    ctx = fake_context(clock)
    _queue(ctx, Channel.SMS, 5, "13800000000")
    slow = Failing(delay=0.3)
    # A 1 s lease: no send starts after 0.5 s, so two or three of the five (one after
    # another to the same number) are tried; the rest go back untouched.
    made = outbox.dispatch_due(ctx, {Channel.SMS: slow}, lease_seconds=1.0,
                               should_stop=lambda: True)
    assert 1 <= made <= 3
    rows = ctx.read(lambda uow: uow.outbox.backlog())
    assert rows["sms"][0] == 5  # all still to deliver: the tried ones retry later
    tried = {i for i in slow.sent}
    lines = ctx.read(lambda uow: [uow.outbox.by_event(f"evt_{i}", "acc_1")
                                  for i in range(5)])
    for message in lines:
        assert message is not None
        if message.id in tried:
            assert (message.attempts, message.status) == (1, DeliveryStatus.RETRYING)
        else:  # given back: unattempted, and due again at once (no lease left)
            assert (message.attempts, message.status) == (0, DeliveryStatus.PENDING)
    again = outbox.dispatch_due(ctx, {Channel.SMS: Failing()})
    assert again == 5 - made  # the ones given back go at once; the retries wait
