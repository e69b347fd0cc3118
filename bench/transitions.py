"""transitions: a work order's first three commands through the services, one commit
each, against durable single-row commits on the same engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine

from collabdesk.adapters.clock import SystemClock
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.values import (
    Category,
    ContactChannel,
    ContactOutcome,
    Order,
    Remedy,
    RemedyType,
)
from collabdesk.services import work_orders as svc
from collabdesk.services.context import ServiceContext

from . import data
from .core import Benchmark, Figure, Goal, Options, Stopwatch, progress
from .db import place, raw_commits

DESCRIPTION = ("open → contact → reply through the services, against durable single-row "
               "commits")


class _Orders:
    """Orders registered ahead of use, in bulk and untimed, one per work order."""

    def __init__(self, ctx: ServiceContext, cast: data.Cast, chunk: int) -> None:
        self.ctx, self.cast, self.chunk = ctx, cast, chunk
        self.ready: list[Order] = []
        self.made = 0

    def refill(self, engine: Engine) -> None:
        paid = datetime.now(UTC) - timedelta(days=2)
        batch = [data.order(self.cast, f"tr-o{self.made + i:08d}", self.made + i, paid)
                 for i in range(self.chunk)]
        data.write_all(engine, self.ctx.policy, batch)
        self.made += self.chunk
        self.ready.extend(batch)


def _lifecycle(ctx: ServiceContext, cast: data.Cast, order: Order, n: int) -> None:
    """Open (the consumer), log a reached contact, reply (the agent): three commits.
    Replies alternate between an agreement (→ awaiting_consumer, the consumer is told)
    and no agreement (→ in_adjudication)."""
    consumer = next(p.actor for p in cast.consumers if p.actor.id == order.consumer_id)
    agent = cast.agent.actor
    wo = svc.open_work_order(ctx, consumer, order_id=order.id, category=Category.DAMAGED,
                             claim=data.CLAIM, requested_remedy=data.REQUESTED)
    svc.log_contact(ctx, agent, wo.id, channel=ContactChannel.PHONE,
                    contacted_at=ctx.clock.now(), outcome=ContactOutcome.REACHED,
                    summary="Called the consumer; they agreed to a partial refund",
                    evidence_ids=())
    if n % 2 == 0:
        svc.reply(ctx, agent, wo.id, option=ReplyOption.RESOLVED_AGREED, statement=None,
                  agreement=Remedy(RemedyType.REFUND, 3_000), evidence_ids=())
    else:
        svc.reply(ctx, agent, wo.id, option=ReplyOption.UNRESOLVED_NO_AGREEMENT,
                  statement="The consumer wants a full refund for a cosmetic scratch",
                  agreement=None, evidence_ids=())


def run(opts: Options) -> list[Figure]:
    # Short rounds, alternating, so that both sides see the same (shared) disk and CPU.
    rounds = opts.pick(smoke=1, quick=10, full=30)
    round_s = opts.pick(smoke=0.5, quick=1.0, full=2.0)
    with place(opts) as where:
        container = where.container(SystemClock())
        ctx = replace(container.ctx, clock=SystemClock())
        engine = container.engine
        try:
            cast = data.make_cast(ctx, data.make_platform(ctx), "bench-transitions")
            orders = _Orders(ctx, cast, chunk=opts.pick(smoke=50, quick=1_000, full=2_000))
            service, raw = Stopwatch(), Stopwatch()
            n = 0
            for r in range(rounds):
                if r % 5 == 0:
                    progress(f"transitions: round {r + 1}/{rounds} ({round_s:g} s each side)")
                spent = 0.0
                while spent < round_s:
                    if not orders.ready:
                        orders.refill(engine)
                    batch, orders.ready = orders.ready[:20], orders.ready[20:]
                    before = service.seconds
                    with service.timing():
                        for order in batch:
                            _lifecycle(ctx, cast, order, n)
                            n += 1
                    service.add(3 * len(batch))
                    spent += service.seconds - before
                raw_commits(engine, raw, round_s)
            progress(f"transitions: {n} work orders, {service.count} commands in "
                     f"{service.seconds:.1f} s; {raw.count} raw commits in {raw.seconds:.1f} s")
        finally:
            engine.dispose()
    return [Figure("transitions_per_s", service.rate, "/s", "raw_commits_per_s", raw.rate,
                   Goal(">=", 0.5))]


BENCHMARK = Benchmark("transitions", DESCRIPTION, run)
