"""metrics: a store's 30-day metrics, for a small and a large store in one database; the
large one should cost about what the small one does (rollups, not a scan)."""

from __future__ import annotations

import importlib
import random
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from functools import partial

from sqlalchemy import Engine

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.metrics import Window
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role
from collabdesk.domain.values import (
    SYSTEM_ACTOR,
    Actor,
    Contact,
    ContactChannel,
    ContactOutcome,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    VerificationOutcome,
)
from collabdesk.services.context import ServiceContext
from collabdesk.services.metrics import store_metrics

from . import data
from .core import Benchmark, Figure, Goal, Options, median_ms, progress
from .db import analyze, place

DESCRIPTION = ("a store's 30-day metrics with 1k and 100k work orders (full: 10k and 1M); "
               "the larger should cost at most 1.5x the smaller")

H = timedelta(hours=1)
# Distinct stories per store; larger stores repeat them under other ids. Their times are
# spread at random over the window, so 5,000 of them spread a month's load evenly enough.
TEMPLATES = 5_000

# What became of the work orders of a month, and how long each story takes to tell.
SHAPES: tuple[tuple[str, float, timedelta], ...] = (
    ("resolved", 0.30, 6 * H),
    ("judged_for_consumer", 0.12, 30 * H),
    ("judged_for_merchant", 0.10, 30 * H),
    ("in_adjudication", 0.08, 3 * H),
    ("timed_out_judged", 0.10, 48 * H),
    ("timed_out", 0.05, 24 * H),
    ("withdrawn", 0.05, 2 * H),
    ("dismissed", 0.05, 10 * H),
    ("worry_free_settled", 0.05, 5 * H),
    ("awaiting_merchant", 0.10, 0 * H),
)


def label(n: int) -> str:
    """1_000 -> "1k", 1_000_000 -> "1m": the figure names' way of writing sizes."""
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}m"
    if n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


class Story:
    """Tells one work order's story through the aggregate's own methods."""

    def __init__(self, cast: data.Cast, policy: Policy) -> None:
        self.cast, self.policy = cast, policy
        self.agent = cast.agent.actor
        platform = cast.platform
        self.adjudicator, self.verifier = platform.adjudicator.actor, platform.verifier.actor
        self.triage = platform.triage.actor

    def _contact(self, wo: WorkOrder, at: datetime, n: int) -> None:
        contact = Contact(f"ct_{wo.id}_{n}", wo.id, ContactChannel.PHONE, at,
                          ContactOutcome.REACHED, "Called the consumer", (), self.agent.id, at)
        wo.log_contact(contact, self.agent, at)

    def _reply(self, wo: WorkOrder, option: ReplyOption, at: datetime) -> None:
        agreement = Remedy(RemedyType.REFUND, 3_000) if option is ReplyOption.RESOLVED_AGREED \
            else None
        statement = None if agreement else "We do not agree with the claim"
        wo.give_reply(option=option, statement=statement, agreement=agreement,
                      evidence_ids=(), actor=self.agent, now=at, policy=self.policy)

    def _rule(self, wo: WorkOrder, ruling: Ruling, at: datetime) -> None:
        remedy = Remedy(RemedyType.REFUND, 5_000) if ruling is Ruling.FOR_CONSUMER else None
        wo.rule(ruling, "Decided on the evidence in the chat", remedy, self.adjudicator, at)

    def tell(self, shape: str, order: Order, wo_id: str, t0: datetime) -> WorkOrder:
        consumer = Actor(order.consumer_id, Role.CONSUMER)
        if shape == "worry_free_settled":
            wo = data.opened(order, wo_id, t0, self.policy)
            wo.settle(4_000, "Worry-free standard", self.triage, t0 + 5 * H)
            return wo
        wo = data.opened(order, wo_id, t0, self.policy)
        t0 = wo.created_at
        if shape == "resolved":
            self._contact(wo, t0 + H, 1)
            self._reply(wo, ReplyOption.RESOLVED_AGREED, t0 + 2 * H)
            wo.respond_as_consumer(True, "OK", consumer, t0 + 6 * H)
        elif shape in ("judged_for_consumer", "judged_for_merchant", "in_adjudication"):
            self._contact(wo, t0 + H, 1)
            self._reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT, t0 + 3 * H)
            if shape != "in_adjudication":
                ruling = Ruling.FOR_CONSUMER if shape == "judged_for_consumer" \
                    else Ruling.FOR_MERCHANT
                self._rule(wo, ruling, t0 + 30 * H)
        elif shape in ("timed_out", "timed_out_judged"):
            assert wo.due_at is not None
            wo.time_out(SYSTEM_ACTOR, wo.due_at)
            if shape == "timed_out_judged":
                self._rule(wo, Ruling.FOR_CONSUMER, t0 + 48 * H)
        elif shape == "withdrawn":
            wo.withdraw(consumer, t0 + 2 * H)
        elif shape == "dismissed":
            self._reply(wo, ReplyOption.NOT_RELATED, t0 + 2 * H)
            wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, "Shipped by another store",
                      self.verifier, t0 + 10 * H)
        return wo


def month_of_work_orders(cast: data.Cast, policy: Policy, count: int, window: Window,
                         now: datetime, seed: int) -> Iterator[WorkOrder | Order]:
    """`count` work orders opened across the window, each with its order, in the mix of
    SHAPES; a story that would end after `now` becomes what it would be by now."""
    rng = random.Random(seed)
    names = [s[0] for s in SHAPES]
    weights = [s[1] for s in SHAPES]
    needs = {s[0]: s[2] for s in SHAPES}
    story = Story(cast, policy)
    span = (now - window.start).total_seconds()
    prefix = cast.store_id.removeprefix("bench-")
    for i in range(count):
        t0 = window.start + timedelta(seconds=rng.uniform(0, span - 60))
        shape = rng.choices(names, weights)[0]
        if t0 + needs[shape] > now or shape == "awaiting_merchant":
            shape = "awaiting_merchant" if now - t0 < policy.reply_window else "timed_out"
        kind = OrderKind.WORRY_FREE if shape == "worry_free_settled" else OrderKind.STANDARD
        o = data.order(cast, f"{prefix}-o{i:08d}", i, t0 - timedelta(days=1), kind)
        yield o
        yield story.tell(shape, o, f"wo_{prefix}{i:08d}", t0)


def _rebuild_rollups(ctx: ServiceContext) -> None:
    """Fill the daily rollups, when the code that keeps them exists (untimed)."""
    try:
        rollups = importlib.import_module("collabdesk.services.rollups")
    except ModuleNotFoundError:
        progress("metrics: no collabdesk.services.rollups: measuring the code as it is")
        return
    rebuild: Callable[[ServiceContext], object] | None = getattr(rollups, "rebuild", None)
    if rebuild is None:
        progress("metrics: collabdesk.services.rollups has no rebuild(ctx): not rebuilt")
        return
    progress("metrics: rebuilding the rollups")
    rebuild(ctx)


def _fill(engine: Engine, cast: data.Cast, policy: Policy, count: int, window: Window,
          now: datetime) -> None:
    """`count` work orders: up to TEMPLATES stories told by the domain, then copied under
    new ids (with their orders, contacts and timers) until there are `count`."""
    progress(f"metrics: writing {count:,} work orders of {cast.store_id}")
    started = time.perf_counter()
    stories = iter(month_of_work_orders(cast, policy, min(count, TEMPLATES), window, now,
                                        seed=count))
    templates = [data.Template.of(policy, o, wo, fired_before=now)
                 for o, wo in zip(stories, stories, strict=True)
                 if isinstance(o, Order) and isinstance(wo, WorkOrder)]
    prefix = cast.store_id.removeprefix("bench-")

    def chunks() -> Iterator[data.Rows]:
        rows = data.Rows(policy)
        for i in range(count):
            templates[i % len(templates)].copy_into(rows, f"wo_{prefix}{i:08d}",
                                                    f"{prefix}-o{i:08d}")
            if rows.work_orders >= 5_000:
                yield rows
                rows = data.Rows(policy)
        if rows.count():
            yield rows

    step = max(count // 5, 1)

    def written(n: int) -> None:
        if n % step < 5_000:
            progress(f"metrics: {n:,}/{count:,} written")

    data.write_chunks(engine, chunks(), written)
    progress(f"metrics: written in {time.perf_counter() - started:.1f} s")


def run(opts: Options) -> list[Figure]:
    small, large = opts.pick(smoke=(100, 1_000), quick=(1_000, 100_000),
                             full=(10_000, 1_000_000))
    now = datetime.now(UTC).replace(microsecond=0)
    as_of: date = now.date()
    with place(opts) as where:
        container = where.container(FixedClock(now))
        ctx, engine = container.ctx, container.engine
        try:
            window = Window.ending_after(as_of, ctx.policy.metric_window_days)
            platform = data.make_platform(ctx)
            casts = {n: data.make_cast(ctx, platform, f"bench-m{label(n)}")
                     for n in (small, large)}
            for n, cast in casts.items():
                _fill(engine, cast, ctx.policy, n, window, now)
            analyze(engine)
            _rebuild_rollups(ctx)
            ms: dict[int, float] = {}
            for n, cast in casts.items():
                progress(f"metrics: timing store metrics with {n:,} work orders")
                ms[n] = median_ms(
                    partial(store_metrics, ctx, cast.owner.actor, cast.store_id, as_of),
                    repeats=7, budget_s=opts.pick(smoke=1.0, quick=8.0, full=60.0))
                progress(f"metrics: {ms[n]:.1f} ms")
        finally:
            engine.dispose()
    return [Figure(f"metrics_ms_at_{label(small)}", ms[small], "ms"),
            Figure(f"metrics_ms_at_{label(large)}", ms[large], "ms",
                   f"metrics_ms_at_{label(small)}", ms[small], Goal("<=", 1.5))]


BENCHMARK = Benchmark("metrics", DESCRIPTION, run)
