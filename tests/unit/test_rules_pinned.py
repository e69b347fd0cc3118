"""The rulebook's tables and boundaries, written out by hand (rules.md §3-9).

Other unit tests walk `TRANSITIONS`, `TERMINAL_STATES`... and so agree with whatever the
code says. These state the rules themselves: every expected value below is literal, so a
row dropped from a table, a role added to a set or a boundary moved by one fails here.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from collabdesk.domain.errors import ValidationFailed
from collabdesk.domain.metrics import NEVER_COUNTED
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import REPLY_REQUIREMENTS, ReplyOption, ReplyRequirements
from collabdesk.domain.states import (
    ACCOUNT_ROLES,
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
from collabdesk.domain.timers import TimerKind, TimerSpec, timers_for
from collabdesk.domain.values import AMOUNT_REQUIRED, Remedy, RemedyType
from collabdesk.domain.violations import RECORDERS
from tests.actors import T0

from .test_transitions import open_work_order

S, A, R = State, Action, Role

# ---- states and roles (§3) -------------------------------------------------------------------


def test_resolved_judged_dismissed_withdrawn_and_settled_are_the_terminal_states() -> None:
    assert {S.RESOLVED, S.JUDGED, S.DISMISSED, S.WITHDRAWN, S.SETTLED} == TERMINAL_STATES


def test_settled_is_terminal() -> None:
    assert S.SETTLED in TERMINAL_STATES
    assert S.SETTLED not in OPEN_STATES


def test_the_open_states_are_the_six_waiting_working_and_appeal_states() -> None:
    assert {S.AWAITING_MERCHANT, S.AWAITING_CONSUMER, S.AWAITING_VERIFICATION,
            S.IN_ADJUDICATION, S.UNDER_APPEAL, S.WORRY_FREE} == OPEN_STATES


def test_the_state_names_are_the_api_contracts() -> None:
    assert [str(s) for s in State] == [
        "awaiting_merchant", "awaiting_consumer", "awaiting_verification", "in_adjudication",
        "under_appeal", "worry_free", "resolved", "judged", "dismissed", "withdrawn",
        "settled"]


def test_merchant_roles_are_the_agent_and_the_owner() -> None:
    assert {R.MERCHANT_AGENT, R.MERCHANT_OWNER} == MERCHANT_ROLES


def test_platform_roles_are_triage_verifier_adjudicator_and_supervisor() -> None:
    assert {R.TRIAGE, R.VERIFIER, R.ADJUDICATOR, R.SUPERVISOR} == PLATFORM_ROLES


def test_every_role_but_the_system_can_be_an_account() -> None:
    assert {R.CONSUMER, R.MERCHANT_AGENT, R.MERCHANT_OWNER, R.TRIAGE, R.VERIFIER,
            R.ADJUDICATOR, R.SUPERVISOR, R.INTEGRATION, R.ADMIN} == ACCOUNT_ROLES


def test_the_role_names_are_the_api_contracts() -> None:
    assert [str(r) for r in Role] == [
        "consumer", "merchant_agent", "merchant_owner", "triage", "verifier", "adjudicator",
        "supervisor", "integration", "admin", "system"]


# ---- the transition table (§4) ---------------------------------------------------------------

_MERCHANT = {R.MERCHANT_AGENT, R.MERCHANT_OWNER}
_OPENERS = {R.CONSUMER, R.TRIAGE}

# (source, action, roles, target), one line per row of rules.md §4.
RULEBOOK_EDGES: list[tuple[State | None, Action, set[Role], State]] = [
    (None, A.OPEN, _OPENERS, S.AWAITING_MERCHANT),
    (None, A.OPEN_WORRY_FREE, _OPENERS, S.WORRY_FREE),
    (S.AWAITING_MERCHANT, A.REPLY_RESOLVED_AGREED, _MERCHANT, S.AWAITING_CONSUMER),
    (S.AWAITING_MERCHANT, A.REPLY_UNRESOLVED_NO_AGREEMENT, _MERCHANT, S.IN_ADJUDICATION),
    (S.AWAITING_MERCHANT, A.REPLY_UNRESOLVED_UNREACHABLE, _MERCHANT, S.AWAITING_VERIFICATION),
    (S.AWAITING_MERCHANT, A.REPLY_NOT_RELATED, _MERCHANT, S.AWAITING_VERIFICATION),
    (S.AWAITING_MERCHANT, A.TIME_OUT, {R.SYSTEM}, S.IN_ADJUDICATION),
    (S.AWAITING_CONSUMER, A.CONSUMER_ACCEPT, {R.CONSUMER}, S.RESOLVED),
    (S.AWAITING_CONSUMER, A.CONSUMER_REJECT, {R.CONSUMER}, S.IN_ADJUDICATION),
    (S.AWAITING_CONSUMER, A.CONFIRMATION_LAPSE, {R.SYSTEM}, S.RESOLVED),
    (S.AWAITING_VERIFICATION, A.CONTACT_VERIFIED, {R.VERIFIER}, S.IN_ADJUDICATION),
    (S.AWAITING_VERIFICATION, A.CONTACT_REJECTED, {R.VERIFIER}, S.IN_ADJUDICATION),
    (S.AWAITING_VERIFICATION, A.UNRELATED_CONFIRMED, {R.VERIFIER}, S.DISMISSED),
    (S.AWAITING_VERIFICATION, A.UNRELATED_REJECTED, {R.VERIFIER}, S.IN_ADJUDICATION),
    (S.IN_ADJUDICATION, A.RULE, {R.ADJUDICATOR}, S.JUDGED),
    (S.JUDGED, A.APPEAL, {R.MERCHANT_OWNER}, S.UNDER_APPEAL),
    (S.UNDER_APPEAL, A.DECIDE_APPEAL, {R.SUPERVISOR}, S.JUDGED),
    (S.WORRY_FREE, A.SETTLE, {R.TRIAGE}, S.SETTLED),
    (S.AWAITING_MERCHANT, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
    (S.AWAITING_CONSUMER, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
    (S.AWAITING_VERIFICATION, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
    (S.IN_ADJUDICATION, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
    (S.UNDER_APPEAL, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
    (S.WORRY_FREE, A.WITHDRAW, {R.CONSUMER}, S.WITHDRAWN),
]


def test_the_transition_table_is_the_rulebooks_table_row_for_row() -> None:
    table = sorted((t.source or "", t.action, sorted(t.roles), t.target)
                   for t in TRANSITIONS)
    expected = sorted(((s or "", a, sorted(roles), t) for s, a, roles, t in RULEBOOK_EDGES))
    assert table == expected


@pytest.mark.parametrize(("source", "action", "roles", "target"), RULEBOOK_EDGES,
                         ids=lambda v: str(v) if isinstance(v, str | type(None)) else None)
def test_each_rulebook_edge_is_found_with_its_roles_and_target(
        source: State | None, action: Action, roles: set[Role], target: State) -> None:
    found = find_transition(source, action)
    assert found is not None
    assert (found.source, found.action, set(found.roles), found.target) == (
        source, action, roles, target)


def test_there_is_no_edge_out_of_a_terminal_state_but_the_appeal_of_a_ruling() -> None:
    for state in (S.RESOLVED, S.DISMISSED, S.WITHDRAWN, S.SETTLED):
        for action in Action:
            assert find_transition(state, action) is None
    assert [a for a in Action if find_transition(S.JUDGED, a)] == [A.APPEAL]


def test_who_may_do_what_is_the_rulebooks() -> None:
    assert {
        A.OPEN: _OPENERS, A.OPEN_WORRY_FREE: _OPENERS,
        A.REPLY_RESOLVED_AGREED: _MERCHANT, A.REPLY_UNRESOLVED_NO_AGREEMENT: _MERCHANT,
        A.REPLY_UNRESOLVED_UNREACHABLE: _MERCHANT, A.REPLY_NOT_RELATED: _MERCHANT,
        A.TIME_OUT: {R.SYSTEM}, A.CONFIRMATION_LAPSE: {R.SYSTEM},
        A.CONSUMER_ACCEPT: {R.CONSUMER}, A.CONSUMER_REJECT: {R.CONSUMER},
        A.CONTACT_VERIFIED: {R.VERIFIER}, A.CONTACT_REJECTED: {R.VERIFIER},
        A.UNRELATED_CONFIRMED: {R.VERIFIER}, A.UNRELATED_REJECTED: {R.VERIFIER},
        A.RULE: {R.ADJUDICATOR}, A.APPEAL: {R.MERCHANT_OWNER},
        A.DECIDE_APPEAL: {R.SUPERVISOR}, A.SETTLE: {R.TRIAGE}, A.WITHDRAW: {R.CONSUMER},
    } == ACTION_ROLES


# ---- reply options (§5) ----------------------------------------------------------------------


def test_the_reply_requirements_are_the_rulebooks() -> None:
    assert {
        ReplyOption.RESOLVED_AGREED: ReplyRequirements(
            A.REPLY_RESOLVED_AGREED, statement=False, agreement=True, evidence=False,
            reached_contacts=1, unreachable_attempts=False),
        ReplyOption.UNRESOLVED_NO_AGREEMENT: ReplyRequirements(
            A.REPLY_UNRESOLVED_NO_AGREEMENT, statement=True, agreement=False, evidence=False,
            reached_contacts=1, unreachable_attempts=False),
        ReplyOption.UNRESOLVED_UNREACHABLE: ReplyRequirements(
            A.REPLY_UNRESOLVED_UNREACHABLE, statement=False, agreement=False,
            evidence=False, reached_contacts=0, unreachable_attempts=True),
        ReplyOption.NOT_RELATED: ReplyRequirements(
            A.REPLY_NOT_RELATED, statement=True, agreement=False, evidence=False,
            reached_contacts=0, unreachable_attempts=False),
    } == REPLY_REQUIREMENTS


def test_a_requirements_row_asks_for_nothing_unless_told() -> None:
    row = ReplyRequirements(A.REPLY_NOT_RELATED)
    assert (row.statement, row.agreement, row.evidence, row.reached_contacts,
            row.unreachable_attempts) == (False, False, False, 0, False)


# ---- the policy's numbers (§6, §8, §9) -------------------------------------------------------


# ---- money (§5, §8) --------------------------------------------------------------------------


def test_refund_return_and_refund_and_compensation_need_an_amount() -> None:
    assert {RemedyType.REFUND, RemedyType.RETURN_AND_REFUND,
            RemedyType.COMPENSATION} == AMOUNT_REQUIRED


@pytest.mark.parametrize("remedy_type", ["refund", "return_and_refund", "compensation"])
def test_a_money_remedy_without_an_amount_is_refused(remedy_type: str) -> None:
    with pytest.raises(ValidationFailed) as info:
        Remedy(RemedyType(remedy_type)).check_against(10_000, "agreement")
    assert info.value.detail == f"agreement.amount_cents is required for {remedy_type}"


@pytest.mark.parametrize("remedy_type", ["exchange", "reissue", "repair", "other"])
def test_a_goods_remedy_without_an_amount_is_accepted(remedy_type: str) -> None:
    Remedy(RemedyType(remedy_type)).check_against(10_000, "agreement")


@pytest.mark.parametrize("remedy_type", ["refund", "return_and_refund", "compensation",
                                         "exchange"])
def test_a_1_cent_remedy_is_accepted_0_is_refused(remedy_type: str) -> None:
    Remedy(RemedyType(remedy_type), 1).check_against(10_000, "remedy")
    with pytest.raises(ValidationFailed) as info:
        Remedy(RemedyType(remedy_type), 0).check_against(10_000, "remedy")
    assert info.value.detail == "remedy.amount_cents must be positive"


def test_a_remedy_of_the_whole_order_is_accepted_one_cent_more_is_refused() -> None:
    Remedy(RemedyType.REFUND, 10_000).check_against(10_000, "requested_remedy")
    with pytest.raises(ValidationFailed) as info:
        Remedy(RemedyType.REFUND, 10_001).check_against(10_000, "requested_remedy")
    assert info.value.detail == (
        "requested_remedy.amount_cents 10001 exceeds the order's amount 10000")


def test_a_remedy_reads_and_writes_its_three_fields() -> None:
    remedy = Remedy(RemedyType.RETURN_AND_REFUND, 2_500, "keep the box")
    assert remedy.to_dict() == {"type": "return_and_refund", "amount_cents": 2_500,
                                "note": "keep the box"}
    assert Remedy.from_dict({"type": "return_and_refund", "amount_cents": 2_500,
                             "note": "keep the box"}) == remedy
    assert Remedy.from_dict({"type": "exchange"}) == Remedy(RemedyType.EXCHANGE, None, None)
    assert Remedy.from_dict(None) is None


# ---- reminders (§6) --------------------------------------------------------------------------


def test_reminders_fall_at_exactly_due_at_minus_12h_and_minus_2h() -> None:
    wo = open_work_order(now=T0)
    assert wo.due_at == T0 + timedelta(hours=24)
    assert timers_for(wo, Policy()) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=12)),
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=22)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=24)),
    ]


def test_a_reminder_that_would_fall_exactly_at_creation_is_not_scheduled() -> None:
    policy = Policy(reply_window=timedelta(hours=12))
    wo = open_work_order(now=T0, policy=policy)
    assert timers_for(wo, policy) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=10)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=12)),
    ]


def test_a_reminder_one_second_after_creation_is_scheduled() -> None:
    policy = Policy(reply_window=timedelta(hours=12, seconds=1))
    wo = open_work_order(now=T0, policy=policy)
    assert timers_for(wo, policy) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(seconds=1)),
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=10, seconds=1)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=12, seconds=1)),
    ]


def test_reminders_are_given_in_time_order_whatever_the_policys_order() -> None:
    policy = Policy(reminders_before_due=(timedelta(hours=2), timedelta(hours=12)))
    wo = open_work_order(now=T0, policy=policy)
    assert timers_for(wo, policy) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=12)),
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=22)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=24)),
    ]


def test_the_timer_kinds_are_the_schedulers_names() -> None:
    assert [str(k) for k in TimerKind] == [
        "reminder", "reply_timeout", "confirmation_lapse", "verification_sla",
        "adjudication_sla"]


# ---- metrics and violations (§8, §9) ---------------------------------------------------------


def test_worry_free_settled_dismissed_and_withdrawn_never_count() -> None:
    assert {S.WORRY_FREE, S.SETTLED, S.DISMISSED, S.WITHDRAWN} == NEVER_COUNTED


def test_verifiers_and_adjudicators_record_violations() -> None:
    assert {R.VERIFIER, R.ADJUDICATOR} == RECORDERS
