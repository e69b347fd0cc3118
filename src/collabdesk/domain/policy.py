"""The rulebook's tunable numbers (rules.md §6, §8, §9) as one immutable value.

Built from `Settings` at start-up; the domain never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta


@dataclass(frozen=True)
class Policy:
    reply_window: timedelta = timedelta(hours=24)
    # Reminders (催促) are sent this long *before* due_at.
    reminders_before_due: tuple[timedelta, ...] = (timedelta(hours=12), timedelta(hours=2))
    confirmation_window: timedelta = timedelta(hours=48)
    verification_sla: timedelta = timedelta(hours=24)
    adjudication_sla: timedelta = timedelta(hours=48)
    appeal_window: timedelta = timedelta(days=7)
    min_contact_attempts: int = 2
    metric_window_days: int = 30
    points: dict[str, int] = field(default_factory=lambda: {"general": 12, "serious": 48})
