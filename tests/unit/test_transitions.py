"""Every edge of the transition table (rules.md §4), and every move that is not an edge.

The helpers at the top (actors, `reach`, `perform`) are also used by the other unit tests:
they drive a real `WorkOrder` through legal moves into any state, then try one action.
"""

from __future__ import annotations

import copy
from datetime import datetime, timedelta

import pytest

from collabdesk.domain.errors import CollabdeskError, Forbidden, InvalidTransition
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import REPLY_REQUIREMENTS, ReplyOption
from collabdesk.domain.states import (
    ACTION_ROLES,
    OPEN_STATES,
    TERMINAL_STATES,
    TRANSITIONS,
    Action,
    Role,
    State,
    Transition,
    find_transition,
)
from collabdesk.domain.values import (
    SYSTEM_ACTOR,
    Actor,
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    VerificationOutcome,
)
from tests.actors import (
    ADJUDICATOR,
    ADMIN,
    AGENT,
    CONSUMER,
    INTEGRATION,
    OWNER,
    STORE_ID,
    SUPERVISOR,
    T0,
    TRIAGE,
    VERIFIER,
)

# ---- a small world ---------------------------------------------------------------------------

POLICY = Policy()
ORDER_AMOUNT = 10_000


ACTOR_OF: dict[Role, Actor] = {
    Role.CONSUMER: CONSUMER,
    Role.MERCHANT_AGENT: AGENT,
    Role.MERCHANT_OWNER: OWNER,
    Role.TRIAGE: TRIAGE,
    Role.VERIFIER: VERIFIER,
    Role.ADJUDICATOR: ADJUDICATOR,
    Role.SUPERVISOR: SUPERVISOR,
    Role.INTEGRATION: INTEGRATION,
    Role.ADMIN: ADMIN,
    Role.SYSTEM: SYSTEM_ACTOR,
}

# Moments of the standard path, all well inside the 24 h reply window.
CONTACT_AT = T0 + timedelta(minutes=10)
REPLY_AT = T0 + timedelta(minutes=20)
VERIFY_AT = T0 + timedelta(minutes=30)
RULE_AT = T0 + timedelta(minutes=40)
APPEAL_AT = T0 + timedelta(minutes=50)
NOW = T0 + timedelta(hours=1)  # when `reach` hands the work order over
LATER = T0 + timedelta(days=30)  # past every deadline and window

REFUND = Remedy(RemedyType.REFUND, 5_000)
# Reaching awaiting_verification needs the reply the verification action expects.
UNREACHABLE_CHECKS = frozenset({Action.CONTACT_VERIFIED, Action.CONTACT_REJECTED})

_seq = 0


def next_id(prefix: str) -> str:
    global _seq
    _seq += 1
    return f"{prefix}-{_seq}"


def make_order(kind: OrderKind = OrderKind.STANDARD, *, amount_cents: int = ORDER_AMOUNT,
               consumer_id: str = CONSUMER.id) -> Order:
    return Order(next_id("o"), STORE_ID, consumer_id, kind, amount_cents,
                 T0 - timedelta(days=1))


def open_work_order(kind: OrderKind = OrderKind.STANDARD, *, now: datetime = T0,
                    policy: Policy = POLICY, actor: Actor = CONSUMER,
                    amount_cents: int = ORDER_AMOUNT,
                    requested_remedy: Remedy | None = None) -> WorkOrder:
    return WorkOrder.open(
        work_order_id=next_id("wo"), order=make_order(kind, amount_cents=amount_cents),
        category=Category.DAMAGED, claim="arrived broken", requested_remedy=requested_remedy,
        actor=actor, now=now, policy=policy, order_has_open_work_order=False)


def make_contact(wo: WorkOrder, outcome: ContactOutcome, at: datetime, *,
                 evidence: bool = True,
                 channel: ContactChannel = ContactChannel.PHONE) -> Contact:
    return Contact(next_id("ct"), wo.id, channel, at, outcome, "called the buyer",
                   (next_id("ev"),) if evidence else (), AGENT.id, at)


def log_contact(wo: WorkOrder, outcome: ContactOutcome, at: datetime = CONTACT_AT, *,
                evidence: bool = True) -> None:
    wo.log_contact(make_contact(wo, outcome, at, evidence=evidence), AGENT, at)


def give_reply(wo: WorkOrder, option: ReplyOption, *, now: datetime = REPLY_AT,
               actor: Actor = AGENT, policy: Policy = POLICY) -> None:
    """A reply with every field an option may need; contacts are the caller's business."""
    wo.give_reply(option=option, statement="what happened", agreement=REFUND,
                  evidence_ids=("ev-reply",), actor=actor, now=now, policy=policy)


def prepare_reply(wo: WorkOrder, option: ReplyOption, at: datetime = CONTACT_AT) -> None:
    """Log the contacts `option` needs."""
    if REPLY_REQUIREMENTS[option].unreachable_attempts:
        for i in range(POLICY.min_contact_attempts):
            log_contact(wo, ContactOutcome.UNREACHABLE, at + timedelta(seconds=i))
    elif REPLY_REQUIREMENTS[option].reached_contacts:
        log_contact(wo, ContactOutcome.REACHED, at)


def reply_with(wo: WorkOrder, option: ReplyOption, *, now: datetime = REPLY_AT) -> None:
    prepare_reply(wo, option)
    give_reply(wo, option, now=now)


def reach(state: State, *, for_action: Action | None = None,
          ruling: Ruling = Ruling.FOR_CONSUMER) -> WorkOrder:
    """A work order driven by legal moves into `state`, ready for `for_action`.

    Every move happens before `NOW`, inside the reply window.
    """
    if state in (State.WORRY_FREE, State.SETTLED):
        wo = open_work_order(OrderKind.WORRY_FREE)
        if state is State.SETTLED:
            wo.settle(3_000, "programme standard", TRIAGE, REPLY_AT)
        return wo
    wo = open_work_order()
    if state is State.AWAITING_MERCHANT:
        if for_action is not None and for_action.value.startswith("reply_"):
            option = next(o for o, r in REPLY_REQUIREMENTS.items() if r.action is for_action)
            prepare_reply(wo, option)
        return wo
    if state is State.WITHDRAWN:
        wo.withdraw(CONSUMER, REPLY_AT)
        return wo
    if state in (State.AWAITING_CONSUMER, State.RESOLVED):
        reply_with(wo, ReplyOption.RESOLVED_AGREED)
        if state is State.RESOLVED:
            wo.respond_as_consumer(True, None, CONSUMER, VERIFY_AT)
        return wo
    if state is State.AWAITING_VERIFICATION:
        option = (ReplyOption.UNRESOLVED_UNREACHABLE if for_action in UNREACHABLE_CHECKS
                  else ReplyOption.NOT_RELATED)
        reply_with(wo, option)
        return wo
    if state is State.DISMISSED:
        reply_with(wo, ReplyOption.NOT_RELATED)
        wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, "wrong shop", VERIFIER, VERIFY_AT)
        return wo
    reply_with(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    if state is State.IN_ADJUDICATION:
        return wo
    wo.rule(ruling, "the parcel was damaged", REFUND if ruling is Ruling.FOR_CONSUMER else None,
            ADJUDICATOR, RULE_AT)
    if state is State.JUDGED:
        return wo
    assert state is State.UNDER_APPEAL, state
    wo.file_appeal("the photos are of another parcel", (), OWNER, APPEAL_AT, POLICY)
    return wo


_REPLY_OPTION_OF = {r.action: o for o, r in REPLY_REQUIREMENTS.items()}
_OUTCOME_OF = {
    Action.CONTACT_VERIFIED: VerificationOutcome.CONTACT_VERIFIED,
    Action.CONTACT_REJECTED: VerificationOutcome.CONTACT_REJECTED,
    Action.UNRELATED_CONFIRMED: VerificationOutcome.UNRELATED_CONFIRMED,
    Action.UNRELATED_REJECTED: VerificationOutcome.UNRELATED_REJECTED,
}


def perform(wo: WorkOrder, action: Action, actor: Actor, now: datetime,
            policy: Policy = POLICY) -> bool | None:
    """Attempt `action` with valid data; the timer actions return whether they changed it."""
    if action in _REPLY_OPTION_OF:
        give_reply(wo, _REPLY_OPTION_OF[action], now=now, actor=actor, policy=policy)
    elif action is Action.TIME_OUT:
        return wo.time_out(actor, now)
    elif action is Action.CONFIRMATION_LAPSE:
        return wo.lapse_confirmation(actor, now, policy)
    elif action in (Action.CONSUMER_ACCEPT, Action.CONSUMER_REJECT):
        wo.respond_as_consumer(action is Action.CONSUMER_ACCEPT, "my answer", actor, now)
    elif action in _OUTCOME_OF:
        wo.verify(_OUTCOME_OF[action], "checked the call records", actor, now)
    elif action is Action.RULE:
        wo.rule(Ruling.FOR_CONSUMER, "the parcel was damaged", REFUND, actor, now)
    elif action is Action.APPEAL:
        wo.file_appeal("the photos are of another parcel", (), actor, now, policy)
    elif action is Action.DECIDE_APPEAL:
        wo.decide_appeal(AppealDecision.UPHELD, "the ruling stands", actor, now)
    elif action is Action.SETTLE:
        wo.settle(3_000, "programme standard", actor, now)
    elif action is Action.WITHDRAW:
        wo.withdraw(actor, now)
    else:
        raise AssertionError(f"{action} has no method on an existing work order")
    return None


TIMER_ACTIONS = frozenset({Action.TIME_OUT, Action.CONFIRMATION_LAPSE})
OPEN_ACTIONS = frozenset({Action.OPEN, Action.OPEN_WORRY_FREE})
WORK_ORDER_ACTIONS = sorted(frozenset(Action) - OPEN_ACTIONS)


def moment_for(wo: WorkOrder, action: Action) -> datetime:
    """When to try `action`: timers when they are due, everything else inside the window."""
    if action is Action.TIME_OUT:
        assert wo.due_at is not None
        return wo.due_at
    if action is Action.CONFIRMATION_LAPSE:
        return wo.state_entered_at + POLICY.confirmation_window
    return NOW


def snapshot(wo: WorkOrder) -> tuple[WorkOrder, int]:
    """Everything but the events (which `==` ignores), plus how many events there were."""
    return copy.deepcopy(wo), len(wo.events)


def assert_unchanged(wo: WorkOrder, before: tuple[WorkOrder, int]) -> None:
    assert wo == before[0]
    assert len(wo.events) == before[1]


# ---- the table itself ------------------------------------------------------------------------


def _edge_id(t: Transition) -> str:
    return f"{t.source or 'new'}--{t.action}--{t.target}"


EDGES = [(t, role) for t in TRANSITIONS for role in sorted(t.roles)]


@pytest.mark.parametrize(("edge", "role"), EDGES,
                         ids=[f"{_edge_id(t)}--{r}" for t, r in EDGES])
def test_every_edge_of_the_table_moves_to_its_target(edge: Transition, role: Role) -> None:
    actor = ACTOR_OF[role]
    if edge.source is None:
        kind = OrderKind.WORRY_FREE if edge.action is Action.OPEN_WORRY_FREE else (
            OrderKind.STANDARD)
        wo = open_work_order(kind, actor=actor)
        assert wo.state is edge.target
        assert [e.type for e in wo.events] == ["opened"]
        return
    wo = reach(edge.source, for_action=edge.action)
    assert wo.state is edge.source
    events_before = len(wo.events)
    now = moment_for(wo, edge.action)
    result = perform(wo, edge.action, actor, now)
    assert wo.state is edge.target
    assert wo.state_entered_at == now
    assert len(wo.events) == events_before + 1
    assert wo.events[-1].actor_id == actor.id
    assert wo.events[-1].at == now
    if edge.action in TIMER_ACTIONS:
        assert result is True


def test_the_table_has_one_row_per_source_and_action() -> None:
    keys = [(t.source, t.action) for t in TRANSITIONS]
    assert len(keys) == len(set(keys))


def test_terminal_states_have_no_outgoing_edge_except_the_appeal_of_a_ruling() -> None:
    leaving = {(t.source, t.action) for t in TRANSITIONS if t.source in TERMINAL_STATES}
    assert leaving == {(State.JUDGED, Action.APPEAL)}


def test_every_state_is_reachable_from_opening() -> None:
    reached: set[State] = set()
    frontier: set[State | None] = {None}
    while frontier:
        source = frontier.pop()
        for t in TRANSITIONS:
            if t.source == source and t.target not in reached:
                reached.add(t.target)
                frontier.add(t.target)
    assert reached == set(State)


def test_a_work_order_can_only_be_opened_from_nothing() -> None:
    for state in State:
        assert find_transition(state, Action.OPEN) is None
        assert find_transition(state, Action.OPEN_WORRY_FREE) is None


def test_the_system_role_is_only_on_timer_edges() -> None:
    system_actions = {t.action for t in TRANSITIONS if Role.SYSTEM in t.roles}
    assert system_actions == {Action.TIME_OUT, Action.CONFIRMATION_LAPSE}


def test_withdraw_is_an_edge_from_every_open_state_and_only_those() -> None:
    sources = {t.source for t in TRANSITIONS if t.action is Action.WITHDRAW}
    assert sources == set(OPEN_STATES)
    assert frozenset(State) - TERMINAL_STATES == OPEN_STATES


# ---- moves that are not edges ----------------------------------------------------------------

NON_EDGES = [(s, a) for s in State for a in WORK_ORDER_ACTIONS if find_transition(s, a) is None]


@pytest.mark.parametrize(("state", "action"), NON_EDGES,
                         ids=[f"{s}--{a}" for s, a in NON_EDGES])
def test_a_move_not_in_the_table_is_refused_and_changes_nothing(state: State,
                                                                action: Action) -> None:
    for role in sorted(ACTION_ROLES[action]):
        wo = reach(state, for_action=action)
        before = snapshot(wo)
        if action in TIMER_ACTIONS:
            # A timer that fires in the wrong state was made moot: a no-op, not an error.
            assert perform(wo, action, ACTOR_OF[role], LATER) is False
        else:
            with pytest.raises(InvalidTransition):
                perform(wo, action, ACTOR_OF[role], NOW)
        assert_unchanged(wo, before)


@pytest.mark.parametrize("action", WORK_ORDER_ACTIONS)
def test_a_wrong_role_is_forbidden_in_every_state_before_the_state_is_checked(
        action: Action) -> None:
    wrong_roles = sorted(frozenset(Role) - ACTION_ROLES[action])
    assert wrong_roles
    for state in State:
        for role in wrong_roles:
            wo = reach(state, for_action=action)
            before = snapshot(wo)
            now = moment_for(wo, action) if wo.state is State.AWAITING_MERCHANT else LATER
            with pytest.raises(Forbidden):
                perform(wo, action, ACTOR_OF[role], now)
            assert_unchanged(wo, before)


@pytest.mark.parametrize("role", sorted(frozenset(Role) - {Role.CONSUMER, Role.TRIAGE}))
@pytest.mark.parametrize("kind", list(OrderKind))
def test_only_a_consumer_or_triage_may_open_a_work_order(role: Role, kind: OrderKind) -> None:
    with pytest.raises(Forbidden):
        open_work_order(kind, actor=ACTOR_OF[role])


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_terminal_states_absorb_everything(state: State) -> None:
    for ruling in Ruling:
        for action in WORK_ORDER_ACTIONS:
            if (state, action) == (State.JUDGED, Action.APPEAL) and (
                    ruling is Ruling.FOR_CONSUMER):
                continue  # the one way out: tested as an edge
            for actor in ACTOR_OF.values():
                for now in (NOW, LATER):
                    wo = reach(state, for_action=action, ruling=ruling)
                    before = snapshot(wo)
                    try:
                        result = perform(wo, action, actor, now)
                    except CollabdeskError:
                        pass
                    else:
                        assert result is False, (state, action, actor.role)
                    assert wo.state is state
                    assert_unchanged(wo, before)


# ---- each edge by name (rules.md §4) ---------------------------------------------------------


def test_opening_a_standard_order_awaits_the_merchant_until_created_at_plus_the_window() -> None:
    wo = open_work_order(now=T0)
    assert wo.state is State.AWAITING_MERCHANT
    assert wo.due_at == T0 + timedelta(hours=24)
    assert wo.is_open


def test_opening_a_worry_free_order_goes_to_worry_free_with_no_deadline() -> None:
    wo = open_work_order(OrderKind.WORRY_FREE)
    assert wo.state is State.WORRY_FREE
    assert wo.due_at is None


def test_agreed_reply_asks_the_consumer_to_confirm() -> None:
    wo = reach(State.AWAITING_MERCHANT, for_action=Action.REPLY_RESOLVED_AGREED)
    give_reply(wo, ReplyOption.RESOLVED_AGREED)
    assert wo.state is State.AWAITING_CONSUMER
    assert wo.reply is not None
    assert wo.reply.option is ReplyOption.RESOLVED_AGREED
    assert wo.reply.agreement == REFUND


def test_no_agreement_reply_goes_to_adjudication() -> None:
    wo = reach(State.AWAITING_MERCHANT, for_action=Action.REPLY_UNRESOLVED_NO_AGREEMENT)
    give_reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    assert wo.state is State.IN_ADJUDICATION
    assert wo.escalated_at == REPLY_AT
    assert not wo.evidence_waived


def test_unreachable_reply_goes_to_second_line_verification() -> None:
    wo = reach(State.AWAITING_MERCHANT, for_action=Action.REPLY_UNRESOLVED_UNREACHABLE)
    give_reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    assert wo.state is State.AWAITING_VERIFICATION


def test_not_related_reply_goes_to_second_line_verification() -> None:
    wo = reach(State.AWAITING_MERCHANT)
    give_reply(wo, ReplyOption.NOT_RELATED)
    assert wo.state is State.AWAITING_VERIFICATION


def test_deadline_reached_escalates_and_waives_the_evidence() -> None:
    wo = reach(State.AWAITING_MERCHANT)
    assert wo.due_at is not None
    assert wo.time_out(SYSTEM_ACTOR, wo.due_at) is True
    assert wo.state is State.IN_ADJUDICATION
    assert wo.evidence_waived
    assert wo.timed_out_at == wo.due_at
    assert wo.escalated_at == wo.due_at
    assert wo.events[-1].type == "timed_out"


def test_consumer_accepting_the_agreement_resolves() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    wo.respond_as_consumer(True, None, CONSUMER, NOW)
    assert wo.state is State.RESOLVED
    assert wo.closed_at == NOW
    assert not wo.is_open


def test_consumer_rejecting_the_agreement_goes_to_adjudication() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    wo.respond_as_consumer(False, "no refund came", CONSUMER, NOW)
    assert wo.state is State.IN_ADJUDICATION
    assert wo.consumer_response is not None
    assert not wo.consumer_response.accept


def test_confirmation_window_over_resolves() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, REPLY_AT + timedelta(hours=48), POLICY)
    assert wo.state is State.RESOLVED


def test_contact_verified_goes_to_adjudication_without_waiving_evidence() -> None:
    wo = reach(State.AWAITING_VERIFICATION, for_action=Action.CONTACT_VERIFIED)
    wo.verify(VerificationOutcome.CONTACT_VERIFIED, "calls are real", VERIFIER, NOW)
    assert wo.state is State.IN_ADJUDICATION
    assert not wo.evidence_waived


def test_contact_rejected_goes_to_adjudication_and_waives_evidence() -> None:
    wo = reach(State.AWAITING_VERIFICATION, for_action=Action.CONTACT_REJECTED)
    wo.verify(VerificationOutcome.CONTACT_REJECTED, "no such calls", VERIFIER, NOW)
    assert wo.state is State.IN_ADJUDICATION
    assert wo.evidence_waived


def test_unrelated_confirmed_dismisses() -> None:
    wo = reach(State.AWAITING_VERIFICATION, for_action=Action.UNRELATED_CONFIRMED)
    wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, "other shop's parcel", VERIFIER, NOW)
    assert wo.state is State.DISMISSED
    assert wo.closed_at == NOW


def test_unrelated_rejected_goes_to_adjudication() -> None:
    wo = reach(State.AWAITING_VERIFICATION, for_action=Action.UNRELATED_REJECTED)
    wo.verify(VerificationOutcome.UNRELATED_REJECTED, "it is this shop's", VERIFIER, NOW)
    assert wo.state is State.IN_ADJUDICATION


def test_ruling_for_the_consumer_judges_and_counts_as_a_dispute() -> None:
    wo = reach(State.IN_ADJUDICATION)
    wo.rule(Ruling.FOR_CONSUMER, "damaged in transit", REFUND, ADJUDICATOR, NOW)
    assert wo.state is State.JUDGED
    assert wo.counts_as_dispute
    assert wo.events[-1].data["counts_as_dispute"] is True


def test_ruling_for_the_merchant_judges_and_does_not_count() -> None:
    wo = reach(State.IN_ADJUDICATION)
    wo.rule(Ruling.FOR_MERCHANT, "buyer's claim unsupported", None, ADJUDICATOR, NOW)
    assert wo.state is State.JUDGED
    assert not wo.counts_as_dispute


def test_appealing_a_ruling_for_the_consumer_puts_it_under_appeal() -> None:
    wo = reach(State.JUDGED)
    wo.file_appeal("new evidence", ("ev-1",), OWNER, NOW, POLICY)
    assert wo.state is State.UNDER_APPEAL
    assert wo.is_open
    assert wo.appeal is not None
    assert wo.appeal.decision is None


def test_deciding_an_appeal_returns_to_judged() -> None:
    wo = reach(State.UNDER_APPEAL)
    wo.decide_appeal(AppealDecision.UPHELD, "ruling stands", SUPERVISOR, NOW)
    assert wo.state is State.JUDGED
    assert wo.appeal is not None
    assert wo.appeal.decision is AppealDecision.UPHELD
    assert wo.counts_as_dispute


def test_settling_a_worry_free_order_settles() -> None:
    wo = reach(State.WORRY_FREE)
    wo.settle(2_500, "programme standard", TRIAGE, NOW)
    assert wo.state is State.SETTLED
    assert wo.settlement is not None
    assert wo.settlement.amount_cents == 2_500


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
def test_consumer_may_withdraw_from_any_open_state(state: State) -> None:
    wo = reach(state)
    wo.withdraw(CONSUMER, NOW)
    assert wo.state is State.WITHDRAWN
    assert wo.closed_at == NOW
    assert not wo.counts_as_dispute
