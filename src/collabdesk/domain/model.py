"""The work-order aggregate: every rule of rules.md §3-5 that needs the work order's data.

Methods check, in this order: the actor's role (`forbidden`), the reply deadline for store
actions (`reply_window_closed`), the state (`invalid_transition`), then the data. They
mutate the aggregate and append `DomainEvent`s to `events`; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from .audit import ALL, PLATFORM, ChainHead
from .errors import (
    AppealWindowClosed,
    ContactBeforeWorkOrder,
    ContactInFuture,
    DuplicateOpenWorkOrder,
    Forbidden,
    InvalidTransition,
    ReplyRequirementsNotMet,
    ReplyWindowClosed,
    ValidationFailed,
)
from .policy import Policy
from .replies import REPLY_REQUIREMENTS, ReplyOption
from .states import (
    ACTION_ROLES,
    MERCHANT_ROLES,
    OPEN_STATES,
    PLATFORM_ROLES,
    TERMINAL_STATES,
    Action,
    Role,
    State,
    find_transition,
)
from .values import (
    Actor,
    AppealDecision,
    Category,
    Contact,
    ContactOutcome,
    DomainEvent,
    Order,
    OrderKind,
    Remedy,
    Ruling,
    VerificationOutcome,
    utc_iso,
)


@dataclass(frozen=True)
class Reply:
    option: ReplyOption
    statement: str | None
    agreement: Remedy | None
    evidence_ids: tuple[str, ...]
    replied_at: datetime
    replied_by: str


@dataclass(frozen=True)
class Judgment:
    ruling: Ruling
    rationale: str
    remedy: Remedy | None
    judged_at: datetime
    judged_by: str


@dataclass(frozen=True)
class Appeal:
    statement: str
    evidence_ids: tuple[str, ...]
    appealed_at: datetime
    appealed_by: str
    decision: AppealDecision | None = None
    rationale: str | None = None
    decided_at: datetime | None = None
    decided_by: str | None = None


@dataclass(frozen=True)
class Verification:
    outcome: VerificationOutcome
    rationale: str
    verified_at: datetime
    verified_by: str


@dataclass(frozen=True)
class ConsumerResponse:
    accept: bool
    statement: str | None
    responded_at: datetime


@dataclass(frozen=True)
class Settlement:
    amount_cents: int
    rationale: str
    settled_at: datetime
    settled_by: str


_VERIFICATION_GUARD: dict[VerificationOutcome, tuple[Action, ReplyOption]] = {
    VerificationOutcome.CONTACT_VERIFIED: (
        Action.CONTACT_VERIFIED, ReplyOption.UNRESOLVED_UNREACHABLE),
    VerificationOutcome.CONTACT_REJECTED: (
        Action.CONTACT_REJECTED, ReplyOption.UNRESOLVED_UNREACHABLE),
    VerificationOutcome.UNRELATED_CONFIRMED: (
        Action.UNRELATED_CONFIRMED, ReplyOption.NOT_RELATED),
    VerificationOutcome.UNRELATED_REJECTED: (
        Action.UNRELATED_REJECTED, ReplyOption.NOT_RELATED),
}


def _a(role: Role) -> str:
    """The role with its article, for messages: "an adjudicator", "a consumer"."""
    return f"{'an' if role.value[0] in 'aeiou' else 'a'} {role.value}"


def _require_text(value: str | None, name: str) -> str:
    if value is None or not value.strip():
        raise ValidationFailed(f"{name} is required")
    return value


@dataclass
class WorkOrder:
    id: str
    order_id: str
    store_id: str
    consumer_id: str
    order_kind: OrderKind
    order_amount_cents: int
    category: Category
    claim: str
    requested_remedy: Remedy | None
    state: State
    created_at: datetime
    created_by: str
    due_at: datetime | None
    state_entered_at: datetime
    evidence_waived: bool = False
    reply: Reply | None = None
    judgment: Judgment | None = None
    appeal: Appeal | None = None
    verification: Verification | None = None
    consumer_response: ConsumerResponse | None = None
    settlement: Settlement | None = None
    timed_out_at: datetime | None = None
    escalated_at: datetime | None = None  # first entry into in_adjudication
    closed_at: datetime | None = None
    sla_overdue: bool = False
    version: int = 0
    contacts: list[Contact] = field(default_factory=list)
    # The head of each audit chain ("all", "platform"), kept with the row that anchors it.
    chains: dict[str, ChainHead] = field(
        default_factory=lambda: {ALL: ChainHead(), PLATFORM: ChainHead()})
    events: list[DomainEvent] = field(default_factory=list, compare=False, repr=False)

    # ---- opening -----------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        work_order_id: str,
        order: Order,
        category: Category,
        claim: str,
        requested_remedy: Remedy | None,
        actor: Actor,
        now: datetime,
        policy: Policy,
        order_has_open_work_order: bool,
    ) -> WorkOrder:
        worry_free = order.kind is OrderKind.WORRY_FREE
        action = Action.OPEN_WORRY_FREE if worry_free else Action.OPEN
        if actor.role not in ACTION_ROLES[action]:
            raise Forbidden(f"{_a(actor.role)} may not open work orders")
        if actor.role is Role.CONSUMER and order.consumer_id != actor.id:
            raise Forbidden("consumers open work orders on their own orders only")
        if order_has_open_work_order:
            raise DuplicateOpenWorkOrder(f"order {order.id} already has an open work order")
        _require_text(claim, "claim")
        if requested_remedy is not None:
            requested_remedy.check_against(order.amount_cents, "requested_remedy")
        transition = find_transition(None, action)
        assert transition is not None
        # Creation is recorded to the whole second (as api.md writes times), so a contact
        # stamped with a whole-second "now" just after opening is not "before" the work
        # order. The deadline follows from it: due_at is a whole second too.
        now = now.replace(microsecond=0)
        due_at = None if worry_free else now + policy.reply_window
        wo = cls(
            id=work_order_id, order_id=order.id, store_id=order.store_id,
            consumer_id=order.consumer_id, order_kind=order.kind,
            order_amount_cents=order.amount_cents, category=category, claim=claim,
            requested_remedy=requested_remedy, state=transition.target, created_at=now,
            created_by=actor.id, due_at=due_at, state_entered_at=now,
        )
        wo._record("opened", actor, now, {
            "order_id": order.id, "store_id": order.store_id, "consumer_id": order.consumer_id,
            "category": str(category), "claim": claim,
            "requested_remedy": requested_remedy.to_dict() if requested_remedy else None,
            "state": str(wo.state), "due_at": utc_iso(due_at) if due_at else None,
        })
        return wo

    # ---- derived facts -------------------------------------------------------------------

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def counts_as_dispute(self) -> bool:
        """A ruling for the consumer counts, unless overturned; worry-free and withdrawn
        work orders never count (rules.md §8)."""
        if self.order_kind is OrderKind.WORRY_FREE or self.judgment is None:
            return False
        if self.state is State.WITHDRAWN:
            return False
        if self.judgment.ruling is not Ruling.FOR_CONSUMER:
            return False
        return not (self.appeal is not None and self.appeal.decision is AppealDecision.OVERTURNED)

    def reply_window_open(self, now: datetime) -> bool:
        return self.due_at is not None and now < self.due_at and self.reply is None

    # ---- store actions ---------------------------------------------------------------------

    def _check_store_window(self, actor: Actor, now: datetime, what: str) -> None:
        if actor.role not in MERCHANT_ROLES:
            raise Forbidden(f"only the store may {what}")
        if self.due_at is not None and now >= self.due_at and self.reply is None:
            raise ReplyWindowClosed(
                f"the reply window closed at {utc_iso(self.due_at)}; the store can no longer "
                f"{what}"
            )
        if self.state is not State.AWAITING_MERCHANT:
            raise InvalidTransition(f"cannot {what} in state {self.state}")

    def log_contact(self, contact: Contact, actor: Actor, now: datetime) -> None:
        self._check_store_window(actor, now, "log contacts")
        if contact.contacted_at < self.created_at:
            raise ContactBeforeWorkOrder(
                f"contacted_at {utc_iso(contact.contacted_at)} is before the work order was "
                f"created at {utc_iso(self.created_at)}; such contacts do not count"
            )
        if contact.contacted_at > now:
            raise ContactInFuture(f"contacted_at {utc_iso(contact.contacted_at)} is in the future")
        self.contacts.append(contact)
        self._record("contact_logged", actor, now, {
            "contact_id": contact.id, "channel": str(contact.channel),
            "contacted_at": utc_iso(contact.contacted_at), "outcome": str(contact.outcome),
            "summary": contact.summary, "evidence_ids": list(contact.evidence_ids),
        })

    def missing_reply_requirements(
        self, option: ReplyOption, statement: str | None, agreement: Remedy | None,
        evidence_ids: tuple[str, ...], policy: Policy,
    ) -> list[str]:
        req = REPLY_REQUIREMENTS[option]
        missing: list[str] = []
        if req.statement and not (statement and statement.strip()):
            missing.append("statement")
        if req.agreement and agreement is None:
            missing.append("agreement")
        if req.evidence and not evidence_ids:
            missing.append("evidence_ids")
        reached = [c for c in self.contacts if c.outcome is ContactOutcome.REACHED]
        if len(reached) < req.reached_contacts:
            missing.append(
                f"at least {req.reached_contacts} contact(s) with outcome 'reached' "
                f"(logged after the work order was created)"
            )
        if req.unreachable_attempts:
            n = policy.min_contact_attempts
            if reached:
                missing.append("every contact must be 'unreachable' (a contact reached the "
                               "consumer)")
            if len(self.contacts) < n:
                missing.append(f"at least {n} contact attempts (have {len(self.contacts)})")
            if any(not c.evidence_ids for c in self.contacts):
                missing.append("evidence on every contact attempt")
        return missing

    def give_reply(
        self, *, option: ReplyOption, statement: str | None, agreement: Remedy | None,
        evidence_ids: tuple[str, ...], actor: Actor, now: datetime, policy: Policy,
    ) -> None:
        self._check_store_window(actor, now, "reply")
        missing = self.missing_reply_requirements(option, statement, agreement, evidence_ids,
                                                  policy)
        if missing:
            raise ReplyRequirementsNotMet(f"reply '{option}' requires: " + "; ".join(missing))
        if agreement is not None:
            agreement.check_against(self.order_amount_cents, "agreement")
        self._move(REPLY_REQUIREMENTS[option].action, actor, now)
        self.reply = Reply(option, statement, agreement, evidence_ids, now, actor.id)
        self._record("replied", actor, now, {
            "option": str(option), "statement": statement,
            "agreement": agreement.to_dict() if agreement else None,
            "evidence_ids": list(evidence_ids), "state": str(self.state),
        })

    def check_note_allowed(self, actor: Actor, now: datetime) -> None:
        """Store notes only while the reply window is open; others while the case is open."""
        if actor.role in MERCHANT_ROLES:
            self._check_store_window(actor, now, "add notes")
            return
        if actor.role is not Role.CONSUMER and actor.role not in PLATFORM_ROLES:
            raise Forbidden(f"{_a(actor.role)} may not add notes")
        if not self.is_open:
            raise InvalidTransition(f"cannot add notes to a work order in state {self.state}")

    def record_note(self, note_id: str, visibility: str, evidence_ids: tuple[str, ...],
                    actor: Actor, now: datetime) -> None:
        self.check_note_allowed(actor, now)
        # The text stays in the notes table; the chain proves the note existed. A
        # platform-only note goes to the platform chain, so its existence (and its
        # evidence ids) stay hidden from the parties.
        self._record("note_added", actor, now, {
            "note_id": note_id, "visibility": visibility, "evidence_ids": list(evidence_ids),
        }, visibility=PLATFORM if visibility == PLATFORM else ALL)

    # ---- system actions (timers); each is a no-op when something beat it ---------------------

    def time_out(self, actor: Actor, now: datetime) -> bool:
        self._check_role(Action.TIME_OUT, actor)
        if self.state is not State.AWAITING_MERCHANT or self.due_at is None:
            return False
        if now < self.due_at or self.reply is not None:
            return False
        self._move(Action.TIME_OUT, actor, now)
        self.evidence_waived = True
        self.timed_out_at = now
        self._record("timed_out", actor, now, {"due_at": utc_iso(self.due_at),
                                               "evidence_waived": True})
        return True

    def lapse_confirmation(self, actor: Actor, now: datetime, policy: Policy) -> bool:
        self._check_role(Action.CONFIRMATION_LAPSE, actor)
        if self.state is not State.AWAITING_CONSUMER:
            return False
        if now < self.state_entered_at + policy.confirmation_window:
            return False
        self._move(Action.CONFIRMATION_LAPSE, actor, now)
        self._record("confirmation_lapsed", actor, now, {"state": str(self.state)})
        return True

    def mark_sla_overdue(self, state: State, actor: Actor, now: datetime) -> bool:
        """Internal SLA breach: flags the case for supervisors, changes no state."""
        if self.state is not state or self.sla_overdue:
            return False
        self.sla_overdue = True
        self._record("sla_overdue", actor, now, {"state": str(state)})
        return True

    # ---- consumer actions ------------------------------------------------------------------

    def respond_as_consumer(self, accept: bool, statement: str | None, actor: Actor,
                            now: datetime) -> None:
        self._move(Action.CONSUMER_ACCEPT if accept else Action.CONSUMER_REJECT, actor, now)
        self.consumer_response = ConsumerResponse(accept, statement, now)
        self._record("consumer_responded", actor, now, {
            "accept": accept, "statement": statement, "state": str(self.state)})

    def withdraw(self, actor: Actor, now: datetime) -> None:
        self._move(Action.WITHDRAW, actor, now)
        self._record("withdrawn", actor, now, {"state": str(self.state)})

    # ---- platform actions ------------------------------------------------------------------

    def verify(self, outcome: VerificationOutcome, rationale: str, actor: Actor,
               now: datetime) -> None:
        action, needs_option = _VERIFICATION_GUARD[outcome]
        self._check_role(action, actor)
        self._check_state(action)
        _require_text(rationale, "rationale")
        if self.state is State.AWAITING_VERIFICATION and (
            self.reply is None or self.reply.option is not needs_option
        ):
            got = self.reply.option if self.reply else None
            raise InvalidTransition(
                f"outcome '{outcome}' applies to a '{needs_option}' reply, not '{got}'")
        self._move(action, actor, now)
        if outcome is VerificationOutcome.CONTACT_REJECTED:
            self.evidence_waived = True
        self.verification = Verification(outcome, rationale, now, actor.id)
        self._record("verified", actor, now, {
            "outcome": str(outcome), "rationale": rationale, "state": str(self.state),
            "evidence_waived": self.evidence_waived})

    def rule(self, ruling: Ruling, rationale: str, remedy: Remedy | None, actor: Actor,
             now: datetime) -> None:
        self._check_role(Action.RULE, actor)
        self._check_state(Action.RULE)
        _require_text(rationale, "rationale")
        if ruling is Ruling.FOR_CONSUMER:
            if remedy is None:
                raise ValidationFailed("remedy is required when ruling for_consumer")
            remedy.check_against(self.order_amount_cents, "remedy")
        self._move(Action.RULE, actor, now)
        self.judgment = Judgment(ruling, rationale, remedy, now, actor.id)
        self._record("judged", actor, now, {
            "ruling": str(ruling), "rationale": rationale,
            "remedy": remedy.to_dict() if remedy else None,
            "counts_as_dispute": self.counts_as_dispute})

    def file_appeal(self, statement: str, evidence_ids: tuple[str, ...], actor: Actor,
                    now: datetime, policy: Policy) -> None:
        self._check_role(Action.APPEAL, actor)
        self._check_state(Action.APPEAL)
        assert self.judgment is not None
        if self.judgment.ruling is not Ruling.FOR_CONSUMER:
            raise InvalidTransition("only a ruling for the consumer can be appealed")
        if self.appeal is not None:
            raise InvalidTransition("a ruling can be appealed once")
        _require_text(statement, "statement")
        closes = self.judgment.judged_at + policy.appeal_window
        if now >= closes:
            raise AppealWindowClosed(f"the appeal window closed at {utc_iso(closes)}")
        self._move(Action.APPEAL, actor, now)
        self.appeal = Appeal(statement, evidence_ids, now, actor.id)
        self._record("appealed", actor, now, {
            "statement": statement, "evidence_ids": list(evidence_ids)})

    def decide_appeal(self, decision: AppealDecision, rationale: str, actor: Actor,
                      now: datetime) -> None:
        self._check_role(Action.DECIDE_APPEAL, actor)
        self._check_state(Action.DECIDE_APPEAL)
        _require_text(rationale, "rationale")
        assert self.appeal is not None
        self._move(Action.DECIDE_APPEAL, actor, now)
        self.appeal = Appeal(self.appeal.statement, self.appeal.evidence_ids,
                             self.appeal.appealed_at, self.appeal.appealed_by, decision,
                             rationale, now, actor.id)
        self._record("appeal_decided", actor, now, {
            "decision": str(decision), "rationale": rationale,
            "counts_as_dispute": self.counts_as_dispute})

    def settle(self, amount_cents: int, rationale: str, actor: Actor, now: datetime) -> None:
        self._check_role(Action.SETTLE, actor)
        self._check_state(Action.SETTLE)
        _require_text(rationale, "rationale")
        if amount_cents <= 0:
            raise ValidationFailed("amount_cents must be greater than 0")
        if amount_cents > self.order_amount_cents:
            raise ValidationFailed(
                f"amount_cents {amount_cents} exceeds the order's amount "
                f"{self.order_amount_cents}")
        self._move(Action.SETTLE, actor, now)
        self.settlement = Settlement(amount_cents, rationale, now, actor.id)
        self._record("settled", actor, now, {"amount_cents": amount_cents,
                                             "rationale": rationale})

    def record_violation(self, violation_id: str, severity: str, points: int, actor: Actor,
                         now: datetime) -> None:
        """A violation is about a work order, so its chain records it (no state change)."""
        self._record("violation_recorded", actor, now, {
            "violation_id": violation_id, "severity": severity, "points": points})

    # ---- the state machine ---------------------------------------------------------------

    def _check_role(self, action: Action, actor: Actor) -> None:
        if actor.role not in ACTION_ROLES[action]:
            raise Forbidden(f"{_a(actor.role)} may not {action.value.replace('_', ' ')}")

    def _check_state(self, action: Action) -> None:
        if find_transition(self.state, action) is None:
            raise InvalidTransition(
                f"cannot {action.value.replace('_', ' ')} a work order in state {self.state}")

    def _move(self, action: Action, actor: Actor, now: datetime) -> None:
        self._check_role(action, actor)
        self._check_state(action)
        transition = find_transition(self.state, action)
        assert transition is not None
        self.state = transition.target
        self.state_entered_at = now
        if self.state is State.IN_ADJUDICATION and self.escalated_at is None:
            self.escalated_at = now
        # An appeal reopens a judged work order: it is not closed while under appeal.
        self.closed_at = now if self.state in TERMINAL_STATES else None
        self.sla_overdue = False

    def _record(self, type_: str, actor: Actor, now: datetime, data: dict[str, Any],
                visibility: str = ALL) -> None:
        self.events.append(DomainEvent(type_, actor.id, now, data, visibility))
