"""Firing due timers: each exactly once, in due order, in its own transaction.

The claim (fired_at set on a still-pending row) and the effect commit together, under the
work order's row lock, so a timer is fired once however many runners race; a transition
that made it moot has already cancelled it, and the domain treats a late one as a no-op.
"""

from __future__ import annotations

import logging
from datetime import datetime

from collabdesk.domain import metrics
from collabdesk.domain.records import Timer
from collabdesk.domain.states import State
from collabdesk.domain.timers import TimerKind
from collabdesk.domain.values import SYSTEM_ACTOR

from . import notifications
from .context import ServiceContext
from .ports import UnitOfWork
from .work_orders import commit_change

log = logging.getLogger("collabdesk.timers")


def _fire(ctx: ServiceContext, timer: Timer, now: datetime) -> bool:
    def run(uow: UnitOfWork) -> bool:
        # The work order's row lock first, then the timer: the order every command takes
        # (load, then cancel or schedule timers), so a reply and a timeout queue on the
        # row instead of deadlocking.
        wo = uow.work_orders.get(timer.work_order_id)
        if not uow.timers.claim(timer.id, now):
            return False
        if wo is None:
            return True
        # The effect happens as of the timer's due time (not when a late runner got to it),
        # so a chain of timers fires on schedule, but never before the last change.
        at = max(timer.due_at, wo.state_entered_at)
        before = metrics.facts_of(wo)
        kind = TimerKind(timer.kind)
        if kind is TimerKind.REMINDER:
            if wo.reply_window_open(at):
                notifications.remind_store(uow, wo, at)
            return True
        if kind is TimerKind.REPLY_TIMEOUT:
            changed = wo.time_out(SYSTEM_ACTOR, at)
        elif kind is TimerKind.CONFIRMATION_LAPSE:
            changed = wo.lapse_confirmation(SYSTEM_ACTOR, at, ctx.policy)
        elif kind is TimerKind.VERIFICATION_SLA:
            changed = wo.mark_sla_overdue(State.AWAITING_VERIFICATION, SYSTEM_ACTOR, at)
        else:
            changed = wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, at)
        if changed:
            commit_change(ctx, uow, wo, before, at)
        return True
    return ctx.write(run)


def fire_due_timers(ctx: ServiceContext, now: datetime | None = None) -> int:
    """Fire every timer due at or before `now` (default: the clock), oldest first,
    including those that firing schedules within the same horizon. Returns how many."""
    horizon = now or ctx.clock.now()
    fired = 0
    failed: set[int] = set()  # a timer whose effect crashed must not starve the others
    while True:
        due = [t for t in ctx.read(lambda uow: uow.timers.due(
            horizon, ctx.timer_batch_size + len(failed))) if t.id not in failed]
        if not due:
            return fired
        for timer in due:
            try:
                if _fire(ctx, timer, horizon):
                    fired += 1
            except Exception:
                log.exception("timer %s (%s) of work order %s failed; it stays due",
                              timer.id, timer.kind, timer.work_order_id)
                failed.add(timer.id)
