"""Violations for forged evidence and the append-only points ledger (rules.md §9)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum

from .errors import AppealWindowClosed, Forbidden, InvalidTransition, ValidationFailed
from .policy import Policy
from .states import Role
from .values import Actor, utc_iso


class Severity(StrEnum):
    GENERAL = "general"  # 一般违规
    SERIOUS = "serious"  # 严重违规


class ViolationKind(StrEnum):
    FALSE_EVIDENCE = "false_evidence"


class ViolationState(StrEnum):
    IN_FORCE = "in_force"
    UNDER_APPEAL = "under_appeal"
    REVOKED = "revoked"


class ViolationDecision(StrEnum):
    UPHELD = "upheld"
    REVOKED = "revoked"


RECORDERS = frozenset({Role.VERIFIER, Role.ADJUDICATOR})


@dataclass(frozen=True)
class LedgerEntry:
    """One line of a store's points ledger. Never edited: a revocation is a new line."""

    id: str
    store_id: str
    year: int
    violation_id: str
    points: int
    reason: str
    at: datetime


@dataclass
class Violation:
    id: str
    store_id: str
    work_order_id: str
    kind: ViolationKind
    severity: Severity
    points: int
    rationale: str
    evidence_ids: tuple[str, ...]
    state: ViolationState
    recorded_at: datetime
    recorded_by: str
    appeal_statement: str | None = None
    appealed_at: datetime | None = None
    decision: ViolationDecision | None = None
    decision_rationale: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None
    version: int = 0

    @classmethod
    def record(cls, *, violation_id: str, store_id: str, work_order_id: str,
               kind: ViolationKind, severity: Severity, rationale: str,
               evidence_ids: tuple[str, ...], actor: Actor, now: datetime,
               policy: Policy) -> Violation:
        if actor.role not in RECORDERS:
            raise Forbidden("only verifiers and adjudicators record violations")
        if not rationale.strip():
            raise ValidationFailed("rationale is required")
        return cls(violation_id, store_id, work_order_id, kind, severity,
                   policy.points[severity.value], rationale, evidence_ids,
                   ViolationState.IN_FORCE, now, actor.id)

    @property
    def ledger_year(self) -> int:
        """The calendar year (UTC) of the recording; its revocation books to it too."""
        return self.recorded_at.astimezone(UTC).year

    def ledger_entry(self, entry_id: str) -> LedgerEntry:
        """The penalty line; the year is the calendar year (UTC) of the recording."""
        return LedgerEntry(entry_id, self.store_id, self.ledger_year, self.id,
                           self.points, f"{self.severity} violation: {self.kind}",
                           self.recorded_at)

    def appeal(self, statement: str, actor: Actor, now: datetime, policy: Policy) -> None:
        if actor.role is not Role.MERCHANT_OWNER:
            raise Forbidden("only the store owner may appeal a violation")
        if self.state is not ViolationState.IN_FORCE or self.appealed_at is not None:
            raise InvalidTransition(
                f"a violation can be appealed once, while in force (it is {self.state})")
        if not statement.strip():
            raise ValidationFailed("statement is required")
        closes = self.recorded_at + policy.appeal_window
        if now >= closes:
            raise AppealWindowClosed(f"the appeal window closed at {utc_iso(closes)}")
        self.state = ViolationState.UNDER_APPEAL
        self.appeal_statement = statement
        self.appealed_at = now

    def decide(self, decision: ViolationDecision, rationale: str, actor: Actor,
               now: datetime, entry_id: str) -> LedgerEntry | None:
        """Returns the refund line of the ledger when the violation is revoked."""
        if actor.role is not Role.SUPERVISOR:
            raise Forbidden("only a supervisor decides violation appeals")
        if self.state is not ViolationState.UNDER_APPEAL:
            raise InvalidTransition(f"the violation is not under appeal (it is {self.state})")
        if not rationale.strip():
            raise ValidationFailed("rationale is required")
        self.decision = decision
        self.decision_rationale = rationale
        self.decided_at = now
        self.decided_by = actor.id
        if decision is ViolationDecision.UPHELD:
            self.state = ViolationState.IN_FORCE
            return None
        self.state = ViolationState.REVOKED
        return LedgerEntry(entry_id, self.store_id, self.ledger_year, self.id,
                           -self.points, f"violation {self.id} revoked on appeal", now)
