"""Delivery rules as data: which webhook events exist, when a failed message is tried
again, when a failing webhook is switched off, and how a webhook body is signed.

The retry schedule counts from a message's first due time, not from each attempt, so an
attempt that runs late (a dispatcher was down, the test clock jumped) does not push the
rest of the schedule back: a message is given up exactly `give_up_after` after it first
fell due, whatever happened in between.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


class WebhookEvent(StrEnum):
    WORK_ORDER_CREATED = "work_order.created"
    WORK_ORDER_REMINDER = "work_order.reminder"
    WORK_ORDER_TIMED_OUT = "work_order.timed_out"
    WORK_ORDER_UPDATED = "work_order.updated"  # any change of state
    VIOLATION_RECORDED = "violation.recorded"


@dataclass(frozen=True)
class RetrySchedule:
    """Attempt n+1 (n >= 1 failed so far) is due at first_due + offsets[n-1]; past the
    listed delays, every `then_every`, and a last attempt at `give_up_after`."""

    delays: tuple[timedelta, ...]
    then_every: timedelta
    give_up_after: timedelta

    def next_due(self, first_due: datetime, failed_attempts: int) -> datetime | None:
        """When to try again after `failed_attempts` failures; None: give up."""
        if failed_attempts < 1:
            return first_due
        offsets = self.offsets()
        if failed_attempts > len(offsets):
            return None
        return first_due + offsets[failed_attempts - 1]

    def offsets(self) -> list[timedelta]:
        """Every retry's offset from the first due time, the last at `give_up_after`."""
        out: list[timedelta] = []
        at = timedelta(0)
        n = 0
        while True:
            at += self.delays[n] if n < len(self.delays) else self.then_every
            n += 1
            if at >= self.give_up_after:
                out.append(self.give_up_after)
                return out
            out.append(at)

    @property
    def max_attempts(self) -> int:
        return 1 + len(self.offsets())


# api.md: about 1 min, 5 min, 30 min, 2 h, 6 h, then every 12 h up to 3 days.
WEBHOOK_RETRIES = RetrySchedule(
    delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
            timedelta(hours=2), timedelta(hours=6)),
    then_every=timedelta(hours=12), give_up_after=timedelta(days=3))
# SMS and email: the same start, given up after a day (a reminder is stale by then).
MESSAGE_RETRIES = RetrySchedule(
    delays=(timedelta(minutes=1), timedelta(minutes=5), timedelta(minutes=30),
            timedelta(hours=2), timedelta(hours=6)),
    then_every=timedelta(hours=12), give_up_after=timedelta(days=1))
# A webhook failing without a success for this long is switched off (its owner is told).
DISABLE_WEBHOOK_AFTER = timedelta(days=3)


def should_disable(failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= DISABLE_WEBHOOK_AFTER


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """`Collabdesk-Signature`: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def mask_phone(phone: str) -> str:
    """138****5678: enough to recognise one's own number, not to read someone's."""
    digits = phone.strip()
    if len(digits) <= 7:
        return digits[:2] + "*" * max(len(digits) - 2, 0)
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def masked(channel: str, destination: str) -> str:
    """A destination as the delivery log and the server log show it: a phone number or
    an email address masked, a webhook's URL as it is (the store registered it)."""
    if channel == "sms":
        return mask_phone(destination)
    if channel == "email":
        return mask_email(destination)
    return destination


def mask_email(email: str) -> str:
    local, _, domain = email.partition("@")
    return (local[:1] + "***@" + domain) if domain else local[:1] + "***"
