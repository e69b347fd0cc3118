"""Firing due timers: each exactly once, in due order, a batch per transaction.

A batch locks up to `timer_batch_size` due timers' work orders (skipping any another
transaction holds), applies the rules to them in memory, oldest timer first, and writes
every effect of the batch with one statement per table, claim included. The claim
(fired_at set on a still-pending row) and the effect commit together, under the work
order's row lock, so a timer fires once however many runners race; a transition that
made it moot has already cancelled it, and the domain treats a late one as a no-op.

If a batch fails (a rule raised, a work order moved on despite its lock), its timers are
fired one per transaction instead, so only the timer at fault is held back (and logged).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from collabdesk.domain import metrics
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.records import Timer
from collabdesk.domain.states import State
from collabdesk.domain.timers import TimerKind
from collabdesk.domain.values import SYSTEM_ACTOR

from . import notifications
from .context import ServiceContext
from .ports import UnitOfWork
from .work_orders import Writes, stage_change

log = logging.getLogger("collabdesk.timers")


def _apply(ctx: ServiceContext, writes: Writes, timer: Timer, wo: WorkOrder) -> bool:
    """The effect of one timer on its (locked) work order, staged in `writes`; True when
    the work order's state changed (its other pending timers are then cancelled)."""
    # The effect happens as of the timer's due time (not when a late runner got to it),
    # so a chain of timers fires on schedule, but never before the last change.
    at = max(timer.due_at, wo.state_entered_at)
    before = wo.state
    kind = TimerKind(timer.kind)
    if kind is TimerKind.REMINDER:
        if wo.reply_window_open(at):
            notifications.remind_store(writes.notices, wo, at)
        return False
    facts = metrics.facts_of(wo)  # a reminder changes no figure
    if kind is TimerKind.REPLY_TIMEOUT:
        changed = wo.time_out(SYSTEM_ACTOR, at)
    elif kind is TimerKind.CONFIRMATION_LAPSE:
        changed = wo.lapse_confirmation(SYSTEM_ACTOR, at, ctx.policy)
    elif kind is TimerKind.VERIFICATION_SLA:
        changed = wo.mark_sla_overdue(State.AWAITING_VERIFICATION, SYSTEM_ACTOR, at)
    else:
        changed = wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, at)
    if changed:
        stage_change(ctx, writes, wo, facts, at)
    return wo.state is not before


@dataclass(frozen=True)
class BatchResult:
    found: int  # due timers locked (0: nothing left that this runner may take)
    fired: list[Timer]


# Told of the timers a batch fired, with when, once they are committed (the runner's
# metrics: counts by kind, lateness).
Observer = Callable[[list[Timer], datetime], None]


def _fire_batch(ctx: ServiceContext, uow: UnitOfWork, *, horizon: datetime,
                stamp: datetime, exclude: frozenset[int]) -> BatchResult:
    due = uow.timers.lock_due(horizon, ctx.timer_batch_size, exclude)
    writes = Writes(uow)
    fired: list[Timer] = []
    moved: set[str] = set()  # work orders whose state changed in this batch
    for timer, wo in due:
        if wo.id in moved:
            continue  # made moot earlier in the batch: cancelled with the others
        fired.append(timer)
        if _apply(ctx, writes, timer, wo):
            moved.add(wo.id)
    if uow.timers.mark_fired([t.id for t in fired], stamp) != len(fired):
        raise _BatchMiss("a locked timer was no longer pending")
    writes.flush()
    return BatchResult(len(due), fired)


class _BatchMiss(Exception):
    pass


def _fire_one(ctx: ServiceContext, timer: Timer, stamp: datetime) -> bool:
    """One timer in its own transaction: the fallback when its batch failed."""
    def run(uow: UnitOfWork) -> bool:
        # The work order's row lock first, then the timer: the order every command takes.
        wo = uow.work_orders.get(timer.work_order_id)
        if not uow.timers.claim(timer.id, stamp):
            return False
        if wo is not None:
            writes = Writes(uow)
            _apply(ctx, writes, timer, wo)
            writes.flush()
        return True
    return ctx.write(run)


def _fire_singly(ctx: ServiceContext, horizon: datetime, stamp: datetime,
                 failed: set[int]) -> BatchResult:
    due = [t for t in ctx.read(lambda uow: uow.timers.due(
        horizon, ctx.timer_batch_size + len(failed))) if t.id not in failed]
    fired = []
    for timer in due:
        try:
            if _fire_one(ctx, timer, stamp):
                fired.append(timer)
        except Exception:
            log.exception("timer %s (%s) of work order %s failed; it stays due",
                          timer.id, timer.kind, timer.work_order_id)
            failed.add(timer.id)
    return BatchResult(len(due), fired)


def fire_due_timers(ctx: ServiceContext, now: datetime | None = None, *,
                    observe: Observer | None = None,
                    should_stop: Callable[[], bool] | None = None) -> int:
    """Fire every timer due at or before `now` (default: the clock), oldest first,
    including those that firing schedules within the same horizon. Returns how many.

    Each timer's `fired_at` is when it was fired (the clock's time, or `now` if given),
    so `fired_at - due_at` is how late it was; `observe` hears of each committed batch.
    `should_stop` is asked between batches (a worker told to stop leaves the backlog to
    the others, or to its successor).
    """
    horizon = now or ctx.clock.now()
    fired = 0
    failed: set[int] = set()  # a timer whose effect crashed must not starve the others
    while True:
        stamp = now or max(horizon, ctx.clock.now())
        try:
            result = ctx.write(functools.partial(_fire_batch, ctx, horizon=horizon,
                                                 stamp=stamp, exclude=frozenset(failed)))
        except Exception:
            log.warning("a batch of timers failed; firing them one by one", exc_info=True)
            result = _fire_singly(ctx, horizon, stamp, failed)
        fired += len(result.fired)
        if observe is not None and result.fired:
            observe(result.fired, stamp)
        if result.found == 0 or (should_stop is not None and should_stop()):
            return fired
