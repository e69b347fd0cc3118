"""timers: firing reply timeouts, against the same rows written by plain SQL in batches;
and how late a single runner fires them at a steady rate on the system clock."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, and_, bindparam, insert, select, update

from collabdesk.adapters.clock import FixedClock, SystemClock
from collabdesk.adapters.db import tables as t
from collabdesk.domain.audit import ALL, canonical_json, chain_key, event_hash
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.states import Role, State
from collabdesk.domain.timers import TimerKind
from collabdesk.domain.values import utc_iso
from collabdesk.services.context import ServiceContext, new_id
from collabdesk.services.timers import fire_due_timers
from collabdesk.worker.runner import DeadlineRunner

from . import data
from .core import Benchmark, Figure, Goal, Options, Stopwatch, percentile, progress
from .db import analyze, place, writing

DESCRIPTION = ("reply timeouts fired through the services with 100k (full: 1M) pending, "
               "against plain SQL batches; lateness of one runner at 500 due/s")

# Between the deadlines of the throughput set: 1M of them span 28 h, less than the 48 h
# adjudication SLA each timeout schedules, so no SLA falls due within a horizon and every
# round fires exactly the timeouts it counts.
SPACING = timedelta(milliseconds=100)


@dataclass
class Queue:
    """The throughput set: work orders whose reply timeouts fall due one `SPACING` apart
    from `first_due` (a month ahead, so no runner on the system clock touches them).
    Both the services and the plain-SQL baseline take the next ones due."""

    cast: data.Cast
    first_due: datetime
    size: int = 0
    taken: int = 0

    def grow(self, engine: Engine, policy: Policy, count: int) -> None:
        progress(f"timers: writing {count:,} pending reply timeouts "
                 f"({self.size:,} → {self.size + count:,})")
        started = time.perf_counter()
        items = data.pending_timeouts(self.cast, policy, prefix="q", start=self.size,
                                      count=count, first_due=self.first_due + self.size * SPACING,
                                      spacing=SPACING)
        step = max(count // 5, 1)

        def written(n: int) -> None:
            if n % step < 5_000:
                progress(f"timers: {n:,}/{count:,} written")

        data.write_all(engine, policy, items, fired_before=data.before_own_deadline,
                       chunk=5_000, progress=written)
        self.size += count
        analyze(engine)
        progress(f"timers: written in {time.perf_counter() - started:.1f} s")

    def horizon(self, count: int) -> datetime:
        """The time at which the next `count` timeouts are due."""
        return self.first_due + (self.taken + count - 1) * SPACING


def _service_round(ctx: ServiceContext, queue: Queue, count: int, watch: Stopwatch) -> None:
    with watch.timing():
        fired = fire_due_timers(ctx, queue.horizon(count))
    if fired != count:
        raise RuntimeError(f"fire_due_timers fired {fired} timers, {count} were due")
    queue.taken += fired
    watch.add(fired)


def _baseline_round(engine: Engine, policy: Policy, queue: Queue, count: int, batch: int,
                    watch: Stopwatch) -> None:
    """The rows `count` timeouts write (work order UPDATE, timer UPDATE, event INSERT, new
    timer INSERT, inbox INSERT, delivery INSERT), by plain SQL, `batch` timeouts per
    transaction: one SELECT of the due timers with their work orders' chain heads and one
    of the store's recipients, then an executemany per statement, then COMMIT."""
    horizon = queue.horizon(count)
    done = 0
    while done < count:
        with watch.timing(), writing(engine) as conn:
            n = _raw_batch(conn, policy, horizon, min(batch, count - done))
        done += n
        watch.add(n)
    queue.taken += done


_wo = t.work_orders.c
_tm = t.timers.c
_PENDING = and_(_tm.fired_at.is_(None), _tm.cancelled_at.is_(None))
_DUE = (select(_tm.id, _tm.work_order_id, _tm.due_at, _wo.version, _wo.chain_length,
               _wo.chain_head, _wo.store_id, _wo.order_id, _wo.state_entered_at)
        .join(t.work_orders, _wo.id == _tm.work_order_id)
        .where(_PENDING, _tm.due_at <= bindparam("horizon"))
        .order_by(_tm.due_at, _tm.id).limit(bindparam("limit")))
_STAFF = select(t.accounts.c.id, t.accounts.c.store_id).where(
    t.accounts.c.store_id.in_(bindparam("stores", expanding=True)),
    t.accounts.c.role == str(Role.MERCHANT_AGENT), t.accounts.c.handles_work_orders)
_TIME_OUT = (update(t.work_orders)
             .where(_wo.id == bindparam("b_id"), _wo.version == bindparam("b_version"))
             .values(state=str(State.IN_ADJUDICATION), state_entered_at=bindparam("b_at"),
                     evidence_waived=True, timed_out_at=bindparam("b_at"),
                     escalated_at=bindparam("b_at"), sla_overdue=False,
                     version=_wo.version + 1, chain_length=bindparam("b_length"),
                     chain_head=bindparam("b_head")))
_CLAIM = update(t.timers).where(_tm.id == bindparam("b_id"), _PENDING).values(
    fired_at=bindparam("b_fired"))


def _raw_batch(conn: Any, policy: Policy, horizon: datetime, limit: int) -> int:
    due = conn.execute(_DUE, {"horizon": horizon, "limit": limit}).all()
    if not due:
        raise RuntimeError("the baseline found no due timer")
    staff = {r.store_id: r.id for r in conn.execute(
        _STAFF, {"stores": sorted({r.store_id for r in due})})}
    updates: list[dict[str, Any]] = []
    claims: list[dict[str, Any]] = []
    events: list[dict[str, Any]] = []
    timers: list[dict[str, Any]] = []
    inbox: list[dict[str, Any]] = []
    deliveries: list[dict[str, Any]] = []
    for r in due:
        at = max(r.due_at, r.state_entered_at)
        at_iso = utc_iso(at)
        seq = r.chain_length + 1
        payload = canonical_json({"due_at": utc_iso(r.due_at), "evidence_waived": True})
        digest = event_hash(chain_key(r.work_order_id, ALL), seq, at_iso, "system",
                            "timed_out", payload, r.chain_head)
        updates.append({"b_id": r.work_order_id, "b_version": r.version, "b_at": at,
                        "b_length": seq, "b_head": digest})
        claims.append({"b_id": r.id, "b_fired": horizon})
        events.append({"work_order_id": r.work_order_id, "seq": seq, "at": at_iso,
                       "actor_id": "system", "type": "timed_out", "data": payload,
                       "prev_hash": r.chain_head, "hash": digest, "visibility": ALL})
        timers.append({"work_order_id": r.work_order_id,
                       "kind": str(TimerKind.ADJUDICATION_SLA),
                       "due_at": at + policy.adjudication_sla, "created_at": at})
        recipient = staff[r.store_id]
        inbox.append({"id": new_id("ntf"), "recipient_id": recipient, "kind": "timeout",
                      "work_order_id": r.work_order_id, "created_at": at, "read": False,
                      "text": f"【超时】协同工单 {r.work_order_id}（订单 {r.order_id}）"
                              "未在时限内回复，视为放弃举证，平台介入判责。"})
        deliveries.append({"id": new_id("dlv"), "work_order_id": r.work_order_id,
                           "recipient_id": recipient, "recipient_store_id": r.store_id,
                           "channel": "inbox", "kind": "timeout", "status": "delivered",
                           "reason": None, "at": at})
    conn.execute(_TIME_OUT, updates)
    conn.execute(_CLAIM, claims)
    conn.execute(insert(t.events), events)
    conn.execute(insert(t.timers), timers)
    conn.execute(insert(t.inbox), inbox)
    conn.execute(insert(t.deliveries), deliveries)
    return len(due)


@dataclass(frozen=True)
class Rates:
    service: float
    baseline: float | None


def _throughput(ctx: ServiceContext, engine: Engine, queue: Queue, opts: Options, *,
                with_baseline: bool) -> Rates:
    """Rounds of `count` timeouts by the services, then as many by plain SQL, until the
    services have had their time; a first small round of each warms up, untimed."""
    batch = ctx.timer_batch_size
    count = opts.pick(smoke=batch // 2, quick=batch, full=5 * batch)
    budget = opts.pick(smoke=0.5, quick=6.0, full=30.0)
    most = opts.pick(smoke=1, quick=30, full=200)
    service, baseline = Stopwatch(), Stopwatch()
    _service_round(ctx, queue, batch // 4, Stopwatch())
    if with_baseline:
        _baseline_round(engine, ctx.policy, queue, batch // 4, batch, Stopwatch())
    rounds = 0
    while service.seconds < budget and rounds < most:
        _service_round(ctx, queue, count, service)
        if with_baseline:
            _baseline_round(engine, ctx.policy, queue, count, batch, baseline)
        rounds += 1
    line = (f"timers: {queue.size:,} pending: {service.count:,} timeouts by the services "
            f"in {service.seconds:.1f} s")
    if with_baseline:
        line += f", {baseline.count:,} by plain SQL in {baseline.seconds:.1f} s"
    progress(line)
    return Rates(service.rate, baseline.rate if with_baseline else None)


def _lateness(ctx: ServiceContext, engine: Engine, cast: data.Cast, opts: Options,
              poll_seconds: float) -> float:
    """p99 of (when the timeout was visible in the database - its due time), for timers
    falling due at a steady `rate` a second, fired by one DeadlineRunner on the system
    clock, waking for the next due time as `serve` and `worker` do. The database is
    watched every 20 ms from another connection; a timer still unfired when the wait ends
    counts as late as the wait (a lower bound)."""
    rate = 500
    seconds = opts.pick(smoke=0.4, quick=5.0, full=60.0)
    most_wait = opts.pick(smoke=1.0, quick=5.0, full=30.0)
    count = round(rate * seconds)
    lead = 1.5 + count / 4_000  # time to write them before the first falls due
    first_due = datetime.fromtimestamp(math.ceil(time.time() + lead), UTC)
    progress(f"timers: lateness: {count:,} timeouts due at {rate}/s for {seconds:g} s, "
             f"from {utc_iso(first_due)}")
    items = data.pending_timeouts(cast, ctx.policy, prefix="late", start=0, count=count,
                                  first_due=first_due, spacing=timedelta(seconds=1 / rate))
    made = list(items)
    due = [(wo.id, wo.due_at) for wo in made
           if isinstance(wo, WorkOrder) and wo.due_at is not None]
    data.write_all(engine, ctx.policy, made, fired_before=data.before_own_deadline)
    analyze(engine)
    if time.time() > first_due.timestamp():
        progress("timers: lateness: warning: writing took longer than the lead time")
    # As `serve` and `worker` run it: waking for the next due time, not a whole poll.
    runner = DeadlineRunner(ctx, poll_seconds, engine=engine)
    runner.start()
    seen: dict[str, float] = {}
    last_due = due[-1][1].timestamp()
    lo = 0
    try:
        while lo < len(due) and time.time() < last_due + most_wait:
            window = due[lo:lo + 2_000]
            with engine.connect() as conn:
                fired = conn.execute(select(_wo.id).where(
                    _wo.id.between(window[0][0], window[-1][0]),
                    _wo.state != str(State.AWAITING_MERCHANT))).scalars().all()
            now = time.time()
            for wo_id in fired:
                seen.setdefault(wo_id, now)
            while lo < len(due) and due[lo][0] in seen:
                lo += 1
            time.sleep(0.02)
    finally:
        ended = time.time()
        # The runner's pass goes on until nothing due is left: cancel what it has not
        # fired (bookkeeping, not a measurement) so that it stops now.
        if lo < len(due):
            with writing(engine) as conn:
                conn.execute(update(t.timers).where(
                    _PENDING, _tm.work_order_id.between(due[lo][0], due[-1][0]))
                    .values(cancelled_at=datetime.now(UTC)))
        runner.stop()
    late = [seen.get(wo_id, ended) - d.timestamp() for wo_id, d in due]
    missing = len(due) - len(seen)
    progress(f"timers: lateness p50 {percentile(late, 50):.3f} s, p99 "
             f"{percentile(late, 99):.3f} s, max {max(late):.3f} s"
             + (f"; {missing:,} not fired by the end (counted as late as the wait)"
                if missing else ""))
    return percentile(late, 99)


def run(opts: Options) -> list[Figure]:
    pending = opts.pick(smoke=2_000, quick=100_000, full=100_000)
    grown = opts.pick(smoke=None, quick=None, full=1_000_000)
    with place(opts) as where:
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(days=30)
        container = where.container(FixedClock(start))
        engine = container.engine
        try:
            fixed = container.ctx
            ctx = replace(fixed, clock=SystemClock())
            cast = data.make_cast(ctx, data.make_platform(ctx), "bench-timers")
            queue = Queue(cast, start)
            queue.grow(engine, fixed.policy, pending)
            first = _throughput(fixed, engine, queue, opts, with_baseline=grown is None)
            figures = []
            if grown is None:
                assert first.baseline is not None
                figures.append(Figure("timeouts_fired_per_s", first.service, "/s",
                                      "raw_same_rows_per_s", first.baseline, Goal(">=", 0.5)))
            else:
                queue.grow(engine, fixed.policy, grown - queue.size + queue.taken)
                second = _throughput(fixed, engine, queue, opts, with_baseline=True)
                assert second.baseline is not None
                figures.append(Figure("timeouts_fired_per_s", second.service, "/s",
                                      "raw_same_rows_per_s", second.baseline,
                                      Goal(">=", 0.5)))
            # Last: the timeouts it fires schedule SLA timers two days ahead, which would
            # fall inside the throughput rounds' horizons (a month ahead).
            p99 = _lateness(ctx, engine, cast, opts, container.settings.timer_poll_seconds)
            figures.append(Figure("lateness_p99_s", p99, "s", goal=Goal("<=", 1.0, on="value")))
            if grown is not None:
                figures.append(Figure("fire_rate_1m_over_100k", second.service / first.service,
                                      "x", goal=Goal(">=", 0.8, on="value")))
        finally:
            engine.dispose()
    return figures


BENCHMARK = Benchmark("timers", DESCRIPTION, run)
