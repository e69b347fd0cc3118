"""Which timers a work order needs in its current state (rules.md §6).

On every state change the service cancels the work order's pending timers and schedules
`timers_for(...)` in the same transaction, so a transition always makes moot timers moot.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from .model import WorkOrder
from .policy import Policy
from .states import State


class TimerKind(StrEnum):
    REMINDER = "reminder"
    REPLY_TIMEOUT = "reply_timeout"
    CONFIRMATION_LAPSE = "confirmation_lapse"
    VERIFICATION_SLA = "verification_sla"
    ADJUDICATION_SLA = "adjudication_sla"


@dataclass(frozen=True)
class TimerSpec:
    kind: TimerKind
    due_at: datetime


def timers_for(wo: WorkOrder, policy: Policy) -> list[TimerSpec]:
    entered = wo.state_entered_at
    if wo.state is State.AWAITING_MERCHANT and wo.due_at is not None:
        specs = [
            TimerSpec(TimerKind.REMINDER, wo.due_at - before)
            for before in policy.reminders_before_due
            if wo.due_at - before > wo.created_at
        ]
        specs.append(TimerSpec(TimerKind.REPLY_TIMEOUT, wo.due_at))
        return sorted(specs, key=lambda s: s.due_at)
    if wo.state is State.AWAITING_CONSUMER:
        return [TimerSpec(TimerKind.CONFIRMATION_LAPSE, entered + policy.confirmation_window)]
    if wo.state is State.AWAITING_VERIFICATION:
        return [TimerSpec(TimerKind.VERIFICATION_SLA, entered + policy.verification_sla)]
    if wo.state is State.IN_ADJUDICATION:
        return [TimerSpec(TimerKind.ADJUDICATION_SLA, entered + policy.adjudication_sla)]
    return []
