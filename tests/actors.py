"""One actor per role and the start of time, for the domain's unit tests: plain values,
written out, shared so every module names the same people."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from collabdesk.domain.states import Role
from collabdesk.domain.values import Actor

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)  # a work order opened now is due 2026-11-03T08:00Z
STORE_ID = "s-1"

CONSUMER = Actor("c-1", Role.CONSUMER)
OTHER_CONSUMER = Actor("c-2", Role.CONSUMER)
AGENT = Actor("agent-1", Role.MERCHANT_AGENT, store_id=STORE_ID)
OWNER = Actor("owner-1", Role.MERCHANT_OWNER, store_id=STORE_ID)
TRIAGE = Actor("triage-1", Role.TRIAGE)
VERIFIER = Actor("verifier-1", Role.VERIFIER)
ADJUDICATOR = Actor("adjudicator-1", Role.ADJUDICATOR)
SUPERVISOR = Actor("supervisor-1", Role.SUPERVISOR)
INTEGRATION = Actor("integration-1", Role.INTEGRATION)
ADMIN = Actor("admin-1", Role.ADMIN)


def at(minutes: int) -> datetime:
    """`minutes` after T0."""
    return T0 + timedelta(minutes=minutes)
