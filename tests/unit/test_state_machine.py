"""Random histories of every actor and of the clock, checked against the rulebook.

A Hypothesis `RuleBasedStateMachine` keeps a few work orders (standard and worry-free) and
a store's violations and points ledger. Each rule lets one actor try one thing at the
current time; the clock only moves forward, sometimes landing exactly on a deadline. Every
rule predicts, from rules.md, whether the domain must refuse (and with which error) or
accept, and a refusal must leave the aggregate exactly as it was.
"""

from __future__ import annotations

import copy
import itertools
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypeVar

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from collabdesk.domain.errors import (
    AppealWindowClosed,
    CollabdeskError,
    ContactBeforeWorkOrder,
    ContactInFuture,
    DuplicateOpenWorkOrder,
    Forbidden,
    InvalidTransition,
    ReplyRequirementsNotMet,
    ReplyWindowClosed,
    ValidationFailed,
)
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import REPLY_REQUIREMENTS, ReplyOption
from collabdesk.domain.states import (
    ACTION_ROLES,
    MERCHANT_ROLES,
    OPEN_STATES,
    PLATFORM_ROLES,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    Role,
    State,
    find_transition,
)
from collabdesk.domain.timers import TimerKind, timers_for
from collabdesk.domain.values import (
    SYSTEM_ACTOR,
    Actor,
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    VerificationOutcome,
)
from collabdesk.domain.violations import (
    RECORDERS,
    LedgerEntry,
    Severity,
    Violation,
    ViolationDecision,
    ViolationKind,
    ViolationState,
)
from tests.actors import CONSUMER, OTHER_CONSUMER, STORE_ID, T0

from .test_transitions import ACTOR_OF

ORDER_AMOUNT = 10_000
US = timedelta(microseconds=1)
ALL_ROLES = sorted(Role)
EDGES = {(t.source, t.target) for t in TRANSITIONS}

# Who acts: mostly someone whose role may, sometimes anyone at all.
WHO = st.integers(min_value=0, max_value=39)
PICK = st.integers(min_value=0, max_value=1_000)
TEXT = st.sampled_from([None, "", "  ", "what happened"])
AGREEMENTS = st.sampled_from([
    None,
    Remedy(RemedyType.REFUND, 1_000),
    Remedy(RemedyType.EXCHANGE),
    Remedy(RemedyType.REFUND, ORDER_AMOUNT + 1),  # more than the order
    Remedy(RemedyType.COMPENSATION),  # missing its amount
    Remedy(RemedyType.RETURN_AND_REFUND, 0),
])
# Mostly small steps, so that cases live through their windows; now and then a leap.
STEPS = st.sampled_from([US, timedelta(seconds=1), timedelta(minutes=1), timedelta(minutes=30),
                         timedelta(hours=1), timedelta(hours=2), timedelta(hours=6),
                         timedelta(hours=12), timedelta(hours=23), timedelta(hours=48),
                         timedelta(days=7)])
POLICIES = st.sampled_from([
    Policy(),
    Policy(reply_window=timedelta(hours=3), confirmation_window=timedelta(hours=1),
           appeal_window=timedelta(hours=5), min_contact_attempts=1),
    Policy(min_contact_attempts=3, appeal_window=timedelta(days=1)),
])

E = TypeVar("E")
WAITING = frozenset({State.AWAITING_CONSUMER, State.AWAITING_VERIFICATION,
                     State.IN_ADJUDICATION, State.JUDGED, State.UNDER_APPEAL,
                     State.WORRY_FREE})


def actor_for(allowed: frozenset[Role], who: int) -> Actor:
    roles = sorted(allowed) if who < 30 and allowed else ALL_ROLES
    return ACTOR_OF[roles[who % len(roles)]]


def remedy_ok(remedy: Remedy | None) -> bool:
    """rules.md / api.md: amount required for money remedies; positive; <= the order."""
    if remedy is None:
        return True
    money = remedy.type in {RemedyType.REFUND, RemedyType.RETURN_AND_REFUND,
                            RemedyType.COMPENSATION}
    if money and remedy.amount_cents is None:
        return False
    return remedy.amount_cents is None or 0 < remedy.amount_cents <= ORDER_AMOUNT


def check_refusal(error: CollabdeskError, expected: type[CollabdeskError] | None) -> None:
    """The refusal is the one rules.md demands (None: the rules demand acceptance)."""
    if expected is None or not isinstance(error, expected):
        wanted = "acceptance" if expected is None else expected.__name__
        raise AssertionError(f"refused with {error!r}; the rules call for {wanted}")


def blank(text: str | None) -> bool:
    return text is None or not text.strip()


@dataclass
class Track:
    """What the machine remembers about one work order, to check what must not change."""

    due_at: datetime | None
    last_state: State
    ever_escalated: bool
    events_seen: int


class Refused(Exception):
    """Internal marker: the domain refused; the aggregate was checked to be unchanged."""


class WorkOrderMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = T0
        self.policy = Policy()
        self.orders: list[Order] = []
        self.work_orders: list[WorkOrder] = []
        self.track: dict[str, Track] = {}
        self.violations: list[Violation] = []
        self.ledger: list[LedgerEntry] = []
        self.seq = 0

    def next_id(self, prefix: str) -> str:
        self.seq += 1
        return f"{prefix}-{self.seq}"

    # ---- set-up ------------------------------------------------------------------------------

    @initialize(policy=POLICIES, kinds=st.lists(st.sampled_from(list(OrderKind)),
                                                max_size=2))
    def set_up(self, policy: Policy, kinds: list[OrderKind]) -> None:
        self.policy = policy
        # Two standard orders and a worry-free one, plus up to two more of either kind.
        for kind in [OrderKind.STANDARD, OrderKind.STANDARD, OrderKind.WORRY_FREE, *kinds]:
            order = Order(self.next_id("o"), STORE_ID, CONSUMER.id, kind, ORDER_AMOUNT,
                          T0 - timedelta(days=1))
            self.orders.append(order)
            self._open(order, CONSUMER)

    def _open(self, order: Order, actor: Actor) -> WorkOrder:
        wo = WorkOrder.open(
            work_order_id=self.next_id("wo"), order=order, category=Category.QUALITY,
            claim="not as described", requested_remedy=None, actor=actor, now=self.now,
            policy=self.policy,
            order_has_open_work_order=any(w.is_open and w.order_id == order.id
                                          for w in self.work_orders))
        self.work_orders.append(wo)
        self.track[wo.id] = Track(wo.due_at, wo.state, False, len(wo.events))
        return wo

    def pick(self, index: int) -> WorkOrder:
        return self.work_orders[index % len(self.work_orders)]

    # ---- the one way every action is tried ------------------------------------------------

    def attempt(self, wo: WorkOrder, call: Callable[[], E],
                expected: type[CollabdeskError] | None) -> E:
        """Run `call`. `expected`: the refusal rules.md demands (None: it must succeed).
        Any refusal must leave `wo` exactly as it was, events included."""
        before, events = copy.deepcopy(wo), len(wo.events)
        try:
            result = call()
        except CollabdeskError as error:
            check_refusal(error, expected)
            assert wo == before, "a refusal changed the work order"
            assert len(wo.events) == events, "a refusal recorded an event"
            raise Refused from error
        assert expected is None, f"wanted {expected.__name__}, but it was accepted"
        return result

    def attempt_move(self, wo: WorkOrder, action: Action, call: Callable[[], object],
                     expected: type[CollabdeskError] | None) -> None:
        """A state-changing action: on success the move is the table's, with one event."""
        source, events = wo.state, len(wo.events)
        try:
            self.attempt(wo, call, expected)
        except Refused:
            return
        transition = find_transition(source, action)
        assert transition is not None
        assert wo.state is transition.target
        assert wo.state_entered_at == self.now
        assert len(wo.events) == events + 1
        assert wo.events[-1].at == self.now

    def gate(self, wo: WorkOrder, action: Action, actor: Actor, *,
             store: bool = False) -> type[CollabdeskError] | None:
        """Role first, then (store actions) the reply deadline, then the state."""
        if actor.role not in ACTION_ROLES[action]:
            return Forbidden
        if store and wo.due_at is not None and self.now >= wo.due_at and wo.reply is None:
            return ReplyWindowClosed
        if find_transition(wo.state, action) is None:
            return InvalidTransition
        return None

    # ---- the clock -------------------------------------------------------------------------

    @rule(step=STEPS)
    def advance(self, step: timedelta) -> None:
        self.now += step

    @rule(i=PICK, offset=st.sampled_from([-US, timedelta(0), US]))
    def land_on_due_at(self, i: int, offset: timedelta) -> None:
        due_at = self.pick(i).due_at
        if due_at is not None and due_at + offset >= self.now:
            self.now = due_at + offset

    @rule(i=PICK, offset=st.sampled_from([-US, timedelta(0)]))
    def land_on_a_window_end(self, i: int, offset: timedelta) -> None:
        wo = self.pick(i)
        ends = [wo.state_entered_at + self.policy.confirmation_window]
        if wo.judgment is not None:
            ends.append(wo.judgment.judged_at + self.policy.appeal_window)
        ends += [v.recorded_at + self.policy.appeal_window for v in self.violations]
        later = [end + offset for end in ends if end + offset >= self.now]
        if later:
            self.now = min(later)

    # ---- consumers and triage --------------------------------------------------------------

    @rule(o=PICK, who=st.sampled_from([Role.CONSUMER, Role.TRIAGE, Role.MERCHANT_OWNER,
                                       Role.ADJUDICATOR, None]))
    def open_work_order(self, o: int, who: Role | None) -> None:
        order = self.orders[o % len(self.orders)]
        actor = OTHER_CONSUMER if who is None else ACTOR_OF[who]
        duplicate = any(w.is_open and w.order_id == order.id for w in self.work_orders)
        if actor.role not in (Role.CONSUMER, Role.TRIAGE) or actor.id == OTHER_CONSUMER.id:
            expected: type[CollabdeskError] | None = Forbidden
        elif duplicate:
            expected = DuplicateOpenWorkOrder
        else:
            expected = None
        count = len(self.work_orders)
        try:
            wo = self._open(order, actor)
        except CollabdeskError as error:
            check_refusal(error, expected)
            assert len(self.work_orders) == count
            return
        assert expected is None, f"wanted {expected}"
        worry_free = order.kind is OrderKind.WORRY_FREE
        assert wo.state is (State.WORRY_FREE if worry_free else State.AWAITING_MERCHANT)
        assert wo.created_at == self.now.replace(microsecond=0)  # recorded to the second
        assert wo.due_at == (None if worry_free else wo.created_at + self.policy.reply_window)

    @rule(i=PICK, who=WHO, accept=st.booleans())
    def consumer_responds(self, i: int, who: int, accept: bool) -> None:
        wo = self.pick(i)
        action = Action.CONSUMER_ACCEPT if accept else Action.CONSUMER_REJECT
        actor = actor_for(ACTION_ROLES[action], who)
        self.attempt_move(wo, action,
                          lambda: wo.respond_as_consumer(accept, "answer", actor, self.now),
                          self.gate(wo, action, actor))

    @rule(i=PICK, who=WHO, rarely=st.integers(min_value=0, max_value=3))
    def withdraw(self, i: int, who: int, rarely: int) -> None:
        if rarely:  # consumers seldom give up; let most histories run their course
            return
        wo = self.pick(i)
        actor = actor_for(ACTION_ROLES[Action.WITHDRAW], who)
        self.attempt_move(wo, Action.WITHDRAW, lambda: wo.withdraw(actor, self.now),
                          self.gate(wo, Action.WITHDRAW, actor))

    @rule(i=PICK, who=WHO, amount=st.sampled_from([-1, 0, 1, 2_500, ORDER_AMOUNT,
                                                   ORDER_AMOUNT + 1]),
          rationale=st.sampled_from(["", "programme standard"]))
    def settle(self, i: int, who: int, amount: int, rationale: str) -> None:
        wo = self.pick(i)
        actor = actor_for(ACTION_ROLES[Action.SETTLE], who)
        expected = self.gate(wo, Action.SETTLE, actor)
        if expected is None and (not rationale or not 0 < amount <= ORDER_AMOUNT):
            expected = ValidationFailed
        self.attempt_move(wo, Action.SETTLE,
                          lambda: wo.settle(amount, rationale, actor, self.now), expected)

    # ---- the store -------------------------------------------------------------------------

    @rule(i=PICK, who=WHO, outcome=st.sampled_from(list(ContactOutcome)),
          evidence=st.booleans(),
          age=st.sampled_from([-timedelta(seconds=1), -US, timedelta(0), timedelta(minutes=5),
                               timedelta(hours=30)]))
    def log_contact(self, i: int, who: int, outcome: ContactOutcome, evidence: bool,
                    age: timedelta) -> None:
        wo = self.pick(i)
        actor = actor_for(MERCHANT_ROLES, who)
        at = self.now - age
        contact = Contact(self.next_id("ct"), wo.id, ContactChannel.IM, at, outcome, "chat",
                          (self.next_id("ev"),) if evidence else (), actor.id, self.now)
        expected = self.gate(wo, Action.REPLY_NOT_RELATED, actor, store=True)
        if expected is None and at < wo.created_at:
            expected = ContactBeforeWorkOrder
        elif expected is None and at > self.now:
            expected = ContactInFuture
        count = len(wo.contacts)
        try:
            self.attempt(wo, lambda: wo.log_contact(contact, actor, self.now), expected)
        except Refused:
            return
        assert wo.contacts[count:] == [contact]
        assert wo.events[-1].type == "contact_logged"

    def requirements_met(self, wo: WorkOrder, option: ReplyOption, statement: str | None,
                         agreement: Remedy | None) -> bool:
        """rules.md §4, written out independently of REPLY_REQUIREMENTS."""
        reached = [c for c in wo.contacts if c.outcome is ContactOutcome.REACHED]
        if option is ReplyOption.RESOLVED_AGREED:
            return bool(reached) and agreement is not None
        if option is ReplyOption.UNRESOLVED_NO_AGREEMENT:
            return bool(reached) and not blank(statement)
        if option is ReplyOption.UNRESOLVED_UNREACHABLE:
            return (len(wo.contacts) >= self.policy.min_contact_attempts and not reached
                    and all(c.evidence_ids for c in wo.contacts))
        return not blank(statement)

    @rule(i=PICK, who=WHO, option=st.sampled_from(list(ReplyOption)), statement=TEXT,
          agreement=AGREEMENTS)
    def reply(self, i: int, who: int, option: ReplyOption, statement: str | None,
              agreement: Remedy | None) -> None:
        wo = self.pick(i)
        action = REPLY_REQUIREMENTS[option].action
        actor = actor_for(ACTION_ROLES[action], who)
        expected = self.gate(wo, action, actor, store=True)
        if expected is None and not self.requirements_met(wo, option, statement, agreement):
            expected = ReplyRequirementsNotMet
        if expected is None and not remedy_ok(agreement):
            expected = ValidationFailed
        self.attempt_move(wo, action, lambda: wo.give_reply(
            option=option, statement=statement, agreement=agreement, evidence_ids=("ev-r",),
            actor=actor, now=self.now, policy=self.policy), expected)
        if expected is None:
            assert wo.reply is not None
            assert (wo.reply.option, wo.reply.replied_at) == (option, self.now)

    @rule(i=PICK, who=WHO, statement=st.sampled_from(["", "we were wrong before"]))
    def appeal_ruling(self, i: int, who: int, statement: str) -> None:
        wo = self.pick(i)
        actor = actor_for(ACTION_ROLES[Action.APPEAL], who)
        expected = self.gate(wo, Action.APPEAL, actor)
        if expected is None:
            assert wo.judgment is not None
            if wo.judgment.ruling is not Ruling.FOR_CONSUMER or wo.appeal is not None:
                expected = InvalidTransition
            elif not statement:
                expected = ValidationFailed
            elif self.now >= wo.judgment.judged_at + self.policy.appeal_window:
                expected = AppealWindowClosed
        self.attempt_move(wo, Action.APPEAL, lambda: wo.file_appeal(
            statement, (), actor, self.now, self.policy), expected)

    # ---- the system's timers ---------------------------------------------------------------

    @rule(i=PICK, system=st.booleans(), who=WHO)
    def process_timeout(self, i: int, system: bool, who: int) -> None:
        wo = self.pick(i)
        actor = SYSTEM_ACTOR if system else actor_for(frozenset(), who)
        if actor.role is not Role.SYSTEM:
            expected: type[CollabdeskError] | None = Forbidden
        else:
            expected = None
        due = (wo.state is State.AWAITING_MERCHANT and wo.due_at is not None
               and self.now >= wo.due_at)
        source = wo.state
        before, events = copy.deepcopy(wo), len(wo.events)
        try:
            changed = self.attempt(wo, lambda: wo.time_out(actor, self.now), expected)
        except Refused:
            return
        assert changed is due
        if not changed:  # a timeout that something beat is a no-op
            assert wo == before
            assert len(wo.events) == events
            return
        assert source is State.AWAITING_MERCHANT
        assert wo.state is State.IN_ADJUDICATION
        assert wo.evidence_waived
        assert wo.timed_out_at == self.now
        assert len(wo.events) == events + 1

    @rule(i=PICK, system=st.booleans(), who=WHO)
    def lapse_confirmation(self, i: int, system: bool, who: int) -> None:
        wo = self.pick(i)
        actor = SYSTEM_ACTOR if system else actor_for(frozenset(), who)
        expected: type[CollabdeskError] | None = (
            None if actor.role is Role.SYSTEM else Forbidden)
        due = (wo.state is State.AWAITING_CONSUMER
               and self.now >= wo.state_entered_at + self.policy.confirmation_window)
        before, events = copy.deepcopy(wo), len(wo.events)
        try:
            changed = self.attempt(
                wo, lambda: wo.lapse_confirmation(actor, self.now, self.policy), expected)
        except Refused:
            return
        assert changed is due
        if changed:
            assert wo.state is State.RESOLVED
            assert len(wo.events) == events + 1
        else:
            assert wo == before
            assert len(wo.events) == events

    @rule(i=PICK, state=st.sampled_from([State.AWAITING_VERIFICATION, State.IN_ADJUDICATION]))
    def sla_breach(self, i: int, state: State) -> None:
        wo = self.pick(i)
        flag = wo.state is state and not wo.sla_overdue
        before_state, events = wo.state, len(wo.events)
        assert wo.mark_sla_overdue(state, SYSTEM_ACTOR, self.now) is flag
        assert wo.state is before_state
        assert len(wo.events) == events + (1 if flag else 0)
        if flag:
            assert wo.sla_overdue

    # ---- the platform ----------------------------------------------------------------------

    @rule(i=PICK, who=WHO, outcome=st.sampled_from(list(VerificationOutcome)),
          rationale=st.sampled_from(["", "checked the call records"]))
    def verify(self, i: int, who: int, outcome: VerificationOutcome, rationale: str) -> None:
        wo = self.pick(i)
        action = Action(outcome.value)
        actor = actor_for(ACTION_ROLES[action], who)
        needs = (ReplyOption.UNRESOLVED_UNREACHABLE if outcome in (
            VerificationOutcome.CONTACT_VERIFIED, VerificationOutcome.CONTACT_REJECTED)
            else ReplyOption.NOT_RELATED)
        expected = self.gate(wo, action, actor)
        if expected is None and not rationale:
            expected = ValidationFailed
        elif expected is None and (wo.reply is None or wo.reply.option is not needs):
            expected = InvalidTransition
        waived = wo.evidence_waived
        self.attempt_move(wo, action,
                          lambda: wo.verify(outcome, rationale, actor, self.now), expected)
        if expected is None:  # accepted (attempt_move has checked that it was)
            assert wo.verification is not None
            assert wo.verification.outcome is outcome
            assert wo.evidence_waived == (
                waived or outcome is VerificationOutcome.CONTACT_REJECTED)

    @rule(i=PICK, who=WHO, ruling=st.sampled_from(list(Ruling)), remedy=AGREEMENTS,
          rationale=st.sampled_from(["", "the evidence shows damage"]))
    def rule_on_dispute(self, i: int, who: int, ruling: Ruling, remedy: Remedy | None,
                        rationale: str) -> None:
        wo = self.pick(i)
        actor = actor_for(ACTION_ROLES[Action.RULE], who)
        expected = self.gate(wo, Action.RULE, actor)
        if expected is None and (not rationale or (
                ruling is Ruling.FOR_CONSUMER and (remedy is None or not remedy_ok(remedy)))):
            expected = ValidationFailed
        self.attempt_move(wo, Action.RULE,
                          lambda: wo.rule(ruling, rationale, remedy, actor, self.now), expected)
        if expected is None:
            assert wo.counts_as_dispute is (ruling is Ruling.FOR_CONSUMER)

    @rule(i=PICK, who=WHO, decision=st.sampled_from(list(AppealDecision)),
          rationale=st.sampled_from(["", "reviewed"]))
    def decide_appeal(self, i: int, who: int, decision: AppealDecision,
                      rationale: str) -> None:
        wo = self.pick(i)
        actor = actor_for(ACTION_ROLES[Action.DECIDE_APPEAL], who)
        expected = self.gate(wo, Action.DECIDE_APPEAL, actor)
        if expected is None and not rationale:
            expected = ValidationFailed
        self.attempt_move(wo, Action.DECIDE_APPEAL, lambda: wo.decide_appeal(
            decision, rationale, actor, self.now), expected)
        if expected is None:
            assert wo.counts_as_dispute is (decision is AppealDecision.UPHELD)

    @rule(i=PICK, who=st.sampled_from(ALL_ROLES))
    def add_note(self, i: int, who: Role) -> None:
        wo = self.pick(i)
        actor = ACTOR_OF[who]
        expected: type[CollabdeskError] | None
        if who in MERCHANT_ROLES:
            expected = self.gate(wo, Action.REPLY_NOT_RELATED, actor, store=True)
        elif who is not Role.CONSUMER and who not in PLATFORM_ROLES:
            expected = Forbidden
        else:
            expected = None if wo.is_open else InvalidTransition
        events = len(wo.events)
        try:
            self.attempt(wo, lambda: wo.record_note(
                self.next_id("n"), NoteVisibility.ALL, (), actor, self.now), expected)
        except Refused:
            return
        assert len(wo.events) == events + 1
        assert wo.events[-1].type == "note_added"

    # ---- purposeful moves, so that random histories get deep into the table --------------

    def pick_where(self, i: int, wanted: Callable[[WorkOrder], bool]) -> int | None:
        """The index of the i-th work order (cyclically) that `wanted` accepts, if any."""
        found = [n for n, wo in enumerate(self.work_orders) if wanted(wo)]
        return found[i % len(found)] if found else None

    @rule(i=PICK, option=st.sampled_from(list(ReplyOption)),
          sloppy=st.sampled_from([None, "one_short", "no_evidence", "one_reached"]))
    def store_works_the_case(self, i: int, option: ReplyOption, sloppy: str | None) -> None:
        """Log the contacts `option` needs (or almost), then reply; all checked above."""
        found = self.pick_where(i, lambda wo: wo.reply_window_open(self.now))
        if found is None:
            return
        i = found
        unreachable = option is ReplyOption.UNRESOLVED_UNREACHABLE
        outcomes = ([ContactOutcome.UNREACHABLE] * self.policy.min_contact_attempts
                    if unreachable else [ContactOutcome.REACHED])
        if sloppy == "one_short":
            outcomes.pop()
        elif sloppy == "one_reached":
            outcomes[-1] = ContactOutcome.REACHED
        for n, outcome in enumerate(outcomes, start=1):
            evidence = not (sloppy == "no_evidence" and n == len(outcomes))
            self.log_contact(i, 0, outcome, evidence, timedelta(0))
        self.reply(i, 0, option, "what happened", Remedy(RemedyType.REFUND, 1_000))

    @rule(i=PICK, choice=st.booleans())
    def the_next_party_acts(self, i: int, choice: bool) -> None:
        """Whoever the work order waits for does what the table allows next."""
        found = self.pick_where(i, lambda wo: wo.state in WAITING)
        if found is None:
            return
        i = found
        wo = self.pick(i)
        if wo.state is State.AWAITING_CONSUMER:
            self.consumer_responds(i, 0, choice)
        elif wo.state is State.AWAITING_VERIFICATION and wo.reply is not None:
            if wo.reply.option is ReplyOption.UNRESOLVED_UNREACHABLE:
                outcome = (VerificationOutcome.CONTACT_VERIFIED if choice
                           else VerificationOutcome.CONTACT_REJECTED)
            else:
                outcome = (VerificationOutcome.UNRELATED_CONFIRMED if choice
                           else VerificationOutcome.UNRELATED_REJECTED)
            self.verify(i, 0, outcome, "checked the call records")
        elif wo.state is State.IN_ADJUDICATION:
            ruling = Ruling.FOR_CONSUMER if choice else Ruling.FOR_MERCHANT
            self.rule_on_dispute(i, 0, ruling, Remedy(RemedyType.REFUND, 1_000), "damage")
        elif wo.state is State.JUDGED:
            self.appeal_ruling(i, 0, "we were wrong before")
        elif wo.state is State.UNDER_APPEAL:
            decision = AppealDecision.UPHELD if choice else AppealDecision.OVERTURNED
            self.decide_appeal(i, 0, decision, "reviewed")
        elif wo.state is State.WORRY_FREE:
            self.settle(i, 0, 2_500, "programme standard")

    # ---- violations and the points ledger --------------------------------------------------

    @rule(i=PICK, who=WHO, severity=st.sampled_from(list(Severity)))
    def record_violation(self, i: int, who: int, severity: Severity) -> None:
        wo = self.pick(i)
        actor = actor_for(RECORDERS, who)
        try:
            violation = Violation.record(
                violation_id=self.next_id("v"), store_id=wo.store_id, work_order_id=wo.id,
                kind=ViolationKind.FALSE_EVIDENCE, severity=severity, rationale="forged",
                evidence_ids=(), actor=actor, now=self.now, policy=self.policy)
        except Forbidden:
            assert actor.role not in RECORDERS
            return
        assert actor.role in RECORDERS
        assert violation.points == self.policy.points[severity.value]
        self.violations.append(violation)
        self.ledger.append(violation.ledger_entry(self.next_id("le")))
        events = len(wo.events)
        wo.record_violation(violation.id, severity.value, violation.points, actor, self.now)
        assert len(wo.events) == events + 1

    @rule(v=PICK, who=WHO, statement=st.sampled_from(["", "not forged"]))
    def appeal_violation(self, v: int, who: int, statement: str) -> None:
        if not self.violations:
            return
        violation = self.violations[v % len(self.violations)]
        actor = actor_for(frozenset({Role.MERCHANT_OWNER}), who)
        expected: type[CollabdeskError] | None = None
        if actor.role is not Role.MERCHANT_OWNER:
            expected = Forbidden
        elif violation.state is not ViolationState.IN_FORCE or violation.appealed_at:
            expected = InvalidTransition
        elif not statement:
            expected = ValidationFailed
        elif self.now >= violation.recorded_at + self.policy.appeal_window:
            expected = AppealWindowClosed
        before = copy.deepcopy(violation)
        try:
            violation.appeal(statement, actor, self.now, self.policy)
        except CollabdeskError as error:
            check_refusal(error, expected)
            assert violation == before
            return
        assert expected is None, f"wanted {expected}"
        assert violation.state is ViolationState.UNDER_APPEAL

    @rule(v=PICK, who=WHO, decision=st.sampled_from(list(ViolationDecision)))
    def decide_violation(self, v: int, who: int, decision: ViolationDecision) -> None:
        if not self.violations:
            return
        violation = self.violations[v % len(self.violations)]
        actor = actor_for(frozenset({Role.SUPERVISOR}), who)
        expected: type[CollabdeskError] | None = None
        if actor.role is not Role.SUPERVISOR:
            expected = Forbidden
        elif violation.state is not ViolationState.UNDER_APPEAL:
            expected = InvalidTransition
        before = copy.deepcopy(violation)
        try:
            entry = violation.decide(decision, "reviewed", actor, self.now,
                                     self.next_id("le"))
        except CollabdeskError as error:
            check_refusal(error, expected)
            assert violation == before
            return
        assert expected is None, f"wanted {expected}"
        if decision is ViolationDecision.UPHELD:
            assert entry is None
            assert violation.state is ViolationState.IN_FORCE
        else:
            assert entry is not None
            assert entry.points == -violation.points
            assert violation.state is ViolationState.REVOKED
            self.ledger.append(entry)

    # ---- invariants ------------------------------------------------------------------------

    @invariant()
    def work_orders_keep_the_rules(self) -> None:
        for wo in self.work_orders:
            track = self.track[wo.id]
            # Terminal states absorb; every change of state is an edge of the table.
            if wo.state is not track.last_state:
                assert (track.last_state, wo.state) in EDGES, (track.last_state, wo.state)
                if track.last_state in TERMINAL_STATES:
                    assert (track.last_state, wo.state) == (State.JUDGED, State.UNDER_APPEAL)
                assert len(wo.events) > track.events_seen
            track.last_state = wo.state
            track.ever_escalated |= wo.state is State.IN_ADJUDICATION
            # Events only grow, in time order, starting with the opening.
            assert len(wo.events) >= track.events_seen
            track.events_seen = len(wo.events)
            assert wo.events[0].type == "opened"
            assert all(a.at <= b.at for a, b in itertools.pairwise(wo.events))
            # due_at never moves; a timeout and a reply never both win.
            assert wo.due_at == track.due_at
            assert wo.timed_out_at is None or wo.reply is None
            if wo.reply is not None:
                assert wo.due_at is not None
                assert wo.reply.replied_at < wo.due_at
            for contact in wo.contacts:
                assert wo.created_at <= contact.contacted_at
                assert wo.due_at is not None
                assert contact.contacted_at < wo.due_at
            # Evidence is waived by a timeout or a rejected contact claim, and only so.
            rejected = (wo.verification is not None and
                        wo.verification.outcome is VerificationOutcome.CONTACT_REJECTED)
            assert wo.evidence_waived == (wo.timed_out_at is not None or rejected)
            assert (wo.escalated_at is not None) == track.ever_escalated
            assert (wo.closed_at is not None) == (wo.state in TERMINAL_STATES)
            assert wo.is_open == (wo.state in OPEN_STATES)
            if wo.counts_as_dispute:
                assert wo.state in (State.JUDGED, State.UNDER_APPEAL)
                assert wo.judgment is not None
                assert wo.judgment.ruling is Ruling.FOR_CONSUMER
            if wo.sla_overdue:
                assert wo.state in (State.AWAITING_VERIFICATION, State.IN_ADJUDICATION)
            # The domain never touches the storage version.
            assert wo.version == 0
            if wo.order_kind is OrderKind.WORRY_FREE:
                assert wo.state in (State.WORRY_FREE, State.SETTLED, State.WITHDRAWN)
                assert wo.due_at is None
                assert wo.judgment is None
                assert wo.reply is None
                assert not wo.counts_as_dispute
            timers = timers_for(wo, self.policy)
            if wo.state is State.AWAITING_MERCHANT:
                assert timers[-1].kind is TimerKind.REPLY_TIMEOUT
                assert timers[-1].due_at == wo.due_at
                assert all(wo.created_at < t.due_at < timers[-1].due_at for t in timers[:-1])
            elif wo.state in TERMINAL_STATES or wo.state in (State.WORRY_FREE,
                                                            State.UNDER_APPEAL):
                assert timers == []

    @invariant()
    def one_open_work_order_per_order(self) -> None:
        # The guard is at opening (rules.md §4). An appeal may reopen a judged work order
        # after a newer one was opened on the same order, so `under_appeal` is left out.
        for order in self.orders:
            assert sum(1 for w in self.work_orders if w.order_id == order.id and w.is_open
                       and w.state is not State.UNDER_APPEAL) <= 1

    @invariant()
    def points_total_is_the_sum_of_the_ledger(self) -> None:
        by_year: dict[int, int] = {}
        for entry in self.ledger:
            by_year[entry.year] = by_year.get(entry.year, 0) + entry.points
        in_force: dict[int, int] = {}
        for violation in self.violations:
            if violation.state is not ViolationState.REVOKED:
                year = violation.ledger_entry("probe").year
                in_force[year] = in_force.get(year, 0) + violation.points
        assert {y: p for y, p in by_year.items() if p} == in_force
        assert all(total >= 0 for total in by_year.values())


def test_random_histories_keep_the_rules() -> None:
    run_state_machine_as_test(WorkOrderMachine, settings=settings(
        max_examples=400, stateful_step_count=60, deadline=None, database=None,
        suppress_health_check=[HealthCheck.too_slow]))
