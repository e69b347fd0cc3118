"""The refusals and guards of rules.md §3-5, §6 (timers) and §9, one test per rule."""

from __future__ import annotations

from datetime import timedelta

import pytest

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
    MERCHANT_ROLES,
    OPEN_STATES,
    PLATFORM_ROLES,
    TERMINAL_STATES,
    Role,
    State,
    find_transition,
)
from collabdesk.domain.timers import TimerKind, TimerSpec, timers_for
from collabdesk.domain.values import (
    AMOUNT_REQUIRED,
    SYSTEM_ACTOR,
    AppealDecision,
    Category,
    ContactChannel,
    ContactOutcome,
    NoteVisibility,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    VerificationOutcome,
)
from tests.actors import (
    ADJUDICATOR,
    AGENT,
    CONSUMER,
    OTHER_CONSUMER,
    OWNER,
    SUPERVISOR,
    T0,
    TRIAGE,
    VERIFIER,
)

from .test_transitions import (
    ACTOR_OF,
    CONTACT_AT,
    LATER,
    NOW,
    ORDER_AMOUNT,
    POLICY,
    REFUND,
    REPLY_AT,
    RULE_AT,
    assert_unchanged,
    log_contact,
    make_contact,
    make_order,
    open_work_order,
    reach,
    reply_with,
    snapshot,
)

DUE = T0 + timedelta(hours=24)
US = timedelta(microseconds=1)

# ---- opening (§4 first rows) -----------------------------------------------------------------


def test_consumer_may_open_a_work_order_only_on_own_order() -> None:
    order = make_order(consumer_id=CONSUMER.id)
    with pytest.raises(Forbidden):
        WorkOrder.open(work_order_id="wo-x", order=order, category=Category.QUALITY,
                       claim="broken", requested_remedy=None, actor=OTHER_CONSUMER, now=T0,
                       policy=POLICY, order_has_open_work_order=False)
    wo = WorkOrder.open(work_order_id="wo-x", order=order, category=Category.QUALITY,
                        claim="broken", requested_remedy=None, actor=CONSUMER, now=T0,
                        policy=POLICY, order_has_open_work_order=False)
    assert wo.consumer_id == CONSUMER.id
    assert wo.created_by == CONSUMER.id


def test_triage_opens_a_work_order_on_behalf_of_the_orders_consumer() -> None:
    wo = open_work_order(actor=TRIAGE)
    assert wo.consumer_id == CONSUMER.id
    assert wo.created_by == TRIAGE.id
    assert wo.state is State.AWAITING_MERCHANT


@pytest.mark.parametrize("kind", list(OrderKind))
def test_duplicate_open_work_order_is_refused(kind: OrderKind) -> None:
    with pytest.raises(DuplicateOpenWorkOrder) as info:
        WorkOrder.open(work_order_id="wo-x", order=make_order(kind),
                       category=Category.QUALITY, claim="broken", requested_remedy=None,
                       actor=CONSUMER, now=T0, policy=POLICY, order_has_open_work_order=True)
    assert info.value.code == "duplicate_open_work_order"


@pytest.mark.parametrize("claim", ["", "   \n"])
def test_a_claim_is_required_to_open(claim: str) -> None:
    with pytest.raises(ValidationFailed):
        WorkOrder.open(work_order_id="wo-x", order=make_order(), category=Category.QUALITY,
                       claim=claim, requested_remedy=None, actor=CONSUMER, now=T0,
                       policy=POLICY, order_has_open_work_order=False)


def test_requested_remedy_follows_the_remedy_amount_rules() -> None:
    with pytest.raises(ValidationFailed, match="required"):
        open_work_order(requested_remedy=Remedy(RemedyType.REFUND))
    with pytest.raises(ValidationFailed, match="exceeds"):
        open_work_order(requested_remedy=Remedy(RemedyType.REFUND, ORDER_AMOUNT + 1))
    wo = open_work_order(requested_remedy=Remedy(RemedyType.REFUND, ORDER_AMOUNT))
    assert wo.requested_remedy == Remedy(RemedyType.REFUND, ORDER_AMOUNT)


def test_opening_records_an_opened_event_with_the_deadline() -> None:
    wo = open_work_order(now=T0)
    [event] = wo.events
    assert event.type == "opened"
    assert event.actor_id == CONSUMER.id
    assert event.data["due_at"] == "2026-11-03T08:00:00Z"
    assert event.data["state"] == "awaiting_merchant"


def test_reply_window_is_configurable() -> None:
    wo = open_work_order(policy=Policy(reply_window=timedelta(hours=6)))
    assert wo.due_at == T0 + timedelta(hours=6)


# ---- contacts (§5) ---------------------------------------------------------------------------


def test_contact_dated_before_the_work_order_is_refused() -> None:
    wo = open_work_order()
    before = snapshot(wo)
    with pytest.raises(ContactBeforeWorkOrder) as info:
        wo.log_contact(make_contact(wo, ContactOutcome.REACHED, T0 - US), AGENT, CONTACT_AT)
    assert info.value.code == "contact_before_work_order"
    assert_unchanged(wo, before)


def test_contact_in_the_future_is_refused() -> None:
    wo = open_work_order()
    before = snapshot(wo)
    with pytest.raises(ContactInFuture) as info:
        wo.log_contact(make_contact(wo, ContactOutcome.REACHED, CONTACT_AT + US), AGENT,
                       CONTACT_AT)
    assert info.value.code == "contact_in_future"
    assert_unchanged(wo, before)


def test_contact_dated_exactly_at_creation_or_exactly_now_is_accepted() -> None:
    wo = open_work_order()
    wo.log_contact(make_contact(wo, ContactOutcome.REACHED, T0), AGENT, T0)
    wo.log_contact(make_contact(wo, ContactOutcome.REACHED, CONTACT_AT), OWNER, CONTACT_AT)
    assert [c.contacted_at for c in wo.contacts] == [T0, CONTACT_AT]
    assert [e.type for e in wo.events] == ["opened", "contact_logged", "contact_logged"]


def test_creation_is_recorded_to_the_second_so_a_contact_in_that_second_counts() -> None:
    opened_at = T0 + timedelta(milliseconds=640)
    wo = open_work_order(now=opened_at)
    assert wo.created_at == T0
    assert wo.due_at == T0 + timedelta(hours=24)
    wo.log_contact(make_contact(wo, ContactOutcome.REACHED, T0), AGENT, opened_at)
    assert [c.contacted_at for c in wo.contacts] == [T0]


@pytest.mark.parametrize("channel", list(ContactChannel))
def test_a_contact_on_any_channel_is_accepted(channel: ContactChannel) -> None:
    wo = open_work_order()
    wo.log_contact(make_contact(wo, ContactOutcome.UNREACHABLE, CONTACT_AT, channel=channel),
                   AGENT, CONTACT_AT)
    assert wo.contacts[-1].channel is channel


def test_contact_at_or_after_due_at_is_refused() -> None:
    wo = open_work_order()
    for now in (DUE, DUE + timedelta(hours=1)):
        before = snapshot(wo)
        with pytest.raises(ReplyWindowClosed):
            wo.log_contact(make_contact(wo, ContactOutcome.REACHED, REPLY_AT), AGENT, now)
        assert_unchanged(wo, before)
    wo.log_contact(make_contact(wo, ContactOutcome.REACHED, REPLY_AT), AGENT, DUE - US)
    assert len(wo.contacts) == 1


@pytest.mark.parametrize("role", sorted(frozenset(Role) - MERCHANT_ROLES))
def test_only_the_store_logs_contacts(role: Role) -> None:
    wo = open_work_order()
    with pytest.raises(Forbidden):
        wo.log_contact(make_contact(wo, ContactOutcome.REACHED, CONTACT_AT), ACTOR_OF[role],
                       CONTACT_AT)
    assert wo.contacts == []


def test_contacts_are_refused_once_the_store_has_replied() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.NOT_RELATED)
    with pytest.raises(InvalidTransition):
        log_contact(wo, ContactOutcome.REACHED, NOW)


# ---- the reply deadline (§4, "The deadline is a fact of time") ---------------------------------


def test_reply_at_exactly_due_at_is_refused_even_before_the_timeout_is_processed() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    assert wo.state is State.AWAITING_MERCHANT  # nobody has processed the timeout
    before = snapshot(wo)
    with pytest.raises(ReplyWindowClosed) as info:
        wo.give_reply(option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="no deal",
                      agreement=None, evidence_ids=(), actor=AGENT, now=DUE, policy=POLICY)
    assert info.value.code == "reply_window_closed"
    assert_unchanged(wo, before)


def test_reply_one_microsecond_before_due_at_is_accepted() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    wo.give_reply(option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="no deal",
                  agreement=None, evidence_ids=(), actor=AGENT, now=DUE - US, policy=POLICY)
    assert wo.state is State.IN_ADJUDICATION
    assert wo.reply is not None
    assert wo.reply.replied_at == DUE - US


def test_the_deadline_is_checked_before_the_reply_requirements() -> None:
    wo = open_work_order()  # no contacts at all: the requirements are not met either
    with pytest.raises(ReplyWindowClosed):
        wo.give_reply(option=ReplyOption.RESOLVED_AGREED, statement=None, agreement=None,
                      evidence_ids=(), actor=AGENT, now=DUE, policy=POLICY)


def test_processing_a_timeout_that_a_reply_beat_is_a_no_op() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.NOT_RELATED, now=DUE - US)
    before = snapshot(wo)
    assert wo.time_out(SYSTEM_ACTOR, DUE) is False
    assert wo.time_out(SYSTEM_ACTOR, DUE + timedelta(days=3)) is False
    assert_unchanged(wo, before)
    assert wo.timed_out_at is None
    assert not wo.evidence_waived


def test_a_timeout_processed_before_due_at_is_a_no_op() -> None:
    wo = open_work_order()
    before = snapshot(wo)
    assert wo.time_out(SYSTEM_ACTOR, DUE - US) is False
    assert_unchanged(wo, before)


def test_a_timeout_happens_exactly_once() -> None:
    wo = open_work_order()
    assert wo.time_out(SYSTEM_ACTOR, DUE) is True
    before = snapshot(wo)
    assert wo.time_out(SYSTEM_ACTOR, DUE + timedelta(minutes=5)) is False
    assert_unchanged(wo, before)
    assert [e.type for e in wo.events].count("timed_out") == 1


def test_a_late_processed_timeout_waives_evidence_and_records_due_at() -> None:
    wo = open_work_order()
    late = DUE + timedelta(hours=3)
    assert wo.time_out(SYSTEM_ACTOR, late)
    assert wo.evidence_waived
    assert wo.timed_out_at == late
    assert wo.events[-1].data == {"due_at": "2026-11-03T08:00:00Z", "evidence_waived": True}


def test_after_a_timeout_the_store_can_no_longer_reply() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    wo.time_out(SYSTEM_ACTOR, DUE)
    with pytest.raises(ReplyWindowClosed):
        wo.give_reply(option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="late",
                      agreement=None, evidence_ids=(), actor=AGENT, now=DUE, policy=POLICY)
    assert wo.reply is None


@pytest.mark.parametrize("role", sorted(frozenset(Role) - {Role.SYSTEM}))
def test_only_the_system_processes_timeouts(role: Role) -> None:
    wo = open_work_order()
    with pytest.raises(Forbidden):
        wo.time_out(ACTOR_OF[role], DUE)
    assert wo.state is State.AWAITING_MERCHANT


# ---- replies (§4, §5) ------------------------------------------------------------------------


def _reply(wo: WorkOrder, option: ReplyOption, *, statement: str | None = None,
           agreement: Remedy | None = None, evidence_ids: tuple[str, ...] = (),
           policy: Policy = POLICY) -> None:
    wo.give_reply(option=option, statement=statement, agreement=agreement,
                  evidence_ids=evidence_ids, actor=AGENT, now=REPLY_AT, policy=policy)


def test_agreed_reply_needs_a_reached_contact_and_an_agreement() -> None:
    wo = open_work_order()
    with pytest.raises(ReplyRequirementsNotMet, match="reached"):
        _reply(wo, ReplyOption.RESOLVED_AGREED, agreement=REFUND)
    log_contact(wo, ContactOutcome.UNREACHABLE)
    with pytest.raises(ReplyRequirementsNotMet, match="reached"):
        _reply(wo, ReplyOption.RESOLVED_AGREED, agreement=REFUND)
    log_contact(wo, ContactOutcome.REACHED)
    before = snapshot(wo)
    with pytest.raises(ReplyRequirementsNotMet, match="agreement") as info:
        _reply(wo, ReplyOption.RESOLVED_AGREED)
    assert info.value.code == "reply_requirements_not_met"
    assert_unchanged(wo, before)
    _reply(wo, ReplyOption.RESOLVED_AGREED, agreement=REFUND)
    assert wo.state is State.AWAITING_CONSUMER


def test_the_agreed_remedy_may_not_exceed_the_order_amount() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    before = snapshot(wo)
    with pytest.raises(ValidationFailed, match="exceeds"):
        _reply(wo, ReplyOption.RESOLVED_AGREED,
               agreement=Remedy(RemedyType.REFUND, ORDER_AMOUNT + 1))
    with pytest.raises(ValidationFailed, match="required"):
        _reply(wo, ReplyOption.RESOLVED_AGREED, agreement=Remedy(RemedyType.COMPENSATION))
    assert_unchanged(wo, before)


def test_no_agreement_reply_needs_a_reached_contact_and_a_statement() -> None:
    wo = open_work_order()
    with pytest.raises(ReplyRequirementsNotMet, match="reached"):
        _reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="no deal")
    log_contact(wo, ContactOutcome.REACHED)
    for blank in (None, "", "  "):
        with pytest.raises(ReplyRequirementsNotMet, match="statement"):
            _reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT, statement=blank)
    _reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="no deal")
    assert wo.state is State.IN_ADJUDICATION


def test_unreachable_reply_needs_min_contact_attempts_all_unreachable_each_with_evidence(
        ) -> None:
    # One attempt is not enough.
    wo = open_work_order()
    log_contact(wo, ContactOutcome.UNREACHABLE)
    with pytest.raises(ReplyRequirementsNotMet, match="at least 2 contact attempts"):
        _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    # Two attempts, but one reached the consumer.
    log_contact(wo, ContactOutcome.REACHED)
    with pytest.raises(ReplyRequirementsNotMet, match="unreachable"):
        _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    # Two unreachable attempts, but one without evidence.
    wo = open_work_order()
    log_contact(wo, ContactOutcome.UNREACHABLE)
    log_contact(wo, ContactOutcome.UNREACHABLE, evidence=False)
    before = snapshot(wo)
    with pytest.raises(ReplyRequirementsNotMet, match="evidence"):
        _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    assert_unchanged(wo, before)
    # Two unreachable attempts with evidence.
    wo = open_work_order()
    log_contact(wo, ContactOutcome.UNREACHABLE)
    log_contact(wo, ContactOutcome.UNREACHABLE)
    _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    assert wo.state is State.AWAITING_VERIFICATION


def test_min_contact_attempts_comes_from_the_policy() -> None:
    three = Policy(min_contact_attempts=3)
    wo = open_work_order(policy=three)
    log_contact(wo, ContactOutcome.UNREACHABLE)
    log_contact(wo, ContactOutcome.UNREACHABLE)
    with pytest.raises(ReplyRequirementsNotMet, match="at least 3 contact attempts"):
        _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE, policy=three)
    log_contact(wo, ContactOutcome.UNREACHABLE)
    _reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE, policy=three)
    assert wo.state is State.AWAITING_VERIFICATION


def test_not_related_reply_needs_a_statement_but_no_contact() -> None:
    wo = open_work_order()
    with pytest.raises(ReplyRequirementsNotMet, match="statement"):
        _reply(wo, ReplyOption.NOT_RELATED, statement=" ")
    _reply(wo, ReplyOption.NOT_RELATED, statement="we never sold this")
    assert wo.state is State.AWAITING_VERIFICATION
    assert wo.contacts == []


def test_reply_requirements_not_met_lists_everything_missing() -> None:
    wo = open_work_order()
    with pytest.raises(ReplyRequirementsNotMet) as info:
        _reply(wo, ReplyOption.RESOLVED_AGREED)
    assert "agreement" in info.value.detail
    assert "reached" in info.value.detail


def test_every_reply_option_has_one_requirements_row_leading_out_of_awaiting_merchant() -> None:
    assert set(REPLY_REQUIREMENTS) == set(ReplyOption)
    actions = [r.action for r in REPLY_REQUIREMENTS.values()]
    assert len(set(actions)) == len(actions)
    for action in actions:
        assert find_transition(State.AWAITING_MERCHANT, action) is not None


def test_a_reply_is_given_once() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.RESOLVED_AGREED)
    first = wo.reply
    with pytest.raises(InvalidTransition):
        _reply(wo, ReplyOption.NOT_RELATED, statement="changed our mind")
    assert wo.reply == first


def test_the_reply_is_recorded_with_who_and_when() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    wo.give_reply(option=ReplyOption.RESOLVED_AGREED, statement=None, agreement=REFUND,
                  evidence_ids=("ev-chat",), actor=OWNER, now=REPLY_AT, policy=POLICY)
    assert wo.reply is not None
    assert (wo.reply.replied_by, wo.reply.replied_at, wo.reply.evidence_ids) == (
        OWNER.id, REPLY_AT, ("ev-chat",))
    assert wo.events[-1].type == "replied"
    assert wo.events[-1].data["option"] == "resolved_agreed"


# ---- consumer confirmation (§4) --------------------------------------------------------------


def test_the_confirmation_window_lapses_only_once_it_is_over() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    before = snapshot(wo)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, REPLY_AT + timedelta(hours=48) - US,
                                 POLICY) is False
    assert_unchanged(wo, before)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, REPLY_AT + timedelta(hours=48), POLICY)
    assert wo.state is State.RESOLVED
    assert wo.events[-1].type == "confirmation_lapsed"


def test_a_lapse_that_the_consumer_beat_is_a_no_op() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    wo.respond_as_consumer(False, "nothing arrived", CONSUMER, NOW)
    before = snapshot(wo)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, LATER, POLICY) is False
    assert_unchanged(wo, before)


def test_the_confirmation_window_is_configurable() -> None:
    short = Policy(confirmation_window=timedelta(hours=1))
    wo = reach(State.AWAITING_CONSUMER)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, REPLY_AT + timedelta(hours=1), short)


# ---- verification (§4) -----------------------------------------------------------------------


@pytest.mark.parametrize(("option", "outcome"), [
    (ReplyOption.NOT_RELATED, VerificationOutcome.CONTACT_VERIFIED),
    (ReplyOption.NOT_RELATED, VerificationOutcome.CONTACT_REJECTED),
    (ReplyOption.UNRESOLVED_UNREACHABLE, VerificationOutcome.UNRELATED_CONFIRMED),
    (ReplyOption.UNRESOLVED_UNREACHABLE, VerificationOutcome.UNRELATED_REJECTED),
])
def test_the_verification_outcome_must_match_the_reply_option(
        option: ReplyOption, outcome: VerificationOutcome) -> None:
    wo = open_work_order()
    reply_with(wo, option)
    before = snapshot(wo)
    with pytest.raises(InvalidTransition, match=str(option)):
        wo.verify(outcome, "checked", VERIFIER, NOW)
    assert_unchanged(wo, before)


def test_contact_rejected_waives_evidence() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.UNRESOLVED_UNREACHABLE)
    assert not wo.evidence_waived
    wo.verify(VerificationOutcome.CONTACT_REJECTED, "the call logs are edited", VERIFIER, NOW)
    assert wo.evidence_waived
    assert wo.verification is not None
    assert wo.verification.outcome is VerificationOutcome.CONTACT_REJECTED
    assert wo.events[-1].data["evidence_waived"] is True


@pytest.mark.parametrize("outcome", [VerificationOutcome.UNRELATED_REJECTED,
                                     VerificationOutcome.UNRELATED_CONFIRMED])
def test_not_related_verification_never_waives_evidence(outcome: VerificationOutcome) -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.NOT_RELATED)
    wo.verify(outcome, "checked", VERIFIER, NOW)
    assert not wo.evidence_waived


def test_verification_needs_a_rationale() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.NOT_RELATED)
    with pytest.raises(ValidationFailed):
        wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, " ", VERIFIER, NOW)
    assert wo.state is State.AWAITING_VERIFICATION


# ---- ruling (§4) -----------------------------------------------------------------------------


def _rule(wo: WorkOrder, ruling: Ruling, remedy: Remedy | None,
          rationale: str = "damaged in transit") -> None:
    wo.rule(ruling, rationale, remedy, ADJUDICATOR, NOW)


def test_a_ruling_needs_a_rationale() -> None:
    wo = reach(State.IN_ADJUDICATION)
    with pytest.raises(ValidationFailed, match="rationale"):
        _rule(wo, Ruling.FOR_MERCHANT, None, rationale="")


def test_a_ruling_for_the_consumer_needs_a_remedy() -> None:
    wo = reach(State.IN_ADJUDICATION)
    before = snapshot(wo)
    with pytest.raises(ValidationFailed, match="remedy"):
        _rule(wo, Ruling.FOR_CONSUMER, None)
    assert_unchanged(wo, before)


@pytest.mark.parametrize("remedy_type", sorted(AMOUNT_REQUIRED))
def test_a_money_remedy_needs_an_amount_not_above_the_order_amount(
        remedy_type: RemedyType) -> None:
    assert remedy_type in {RemedyType.REFUND, RemedyType.RETURN_AND_REFUND,
                           RemedyType.COMPENSATION}
    wo = reach(State.IN_ADJUDICATION)
    before = snapshot(wo)
    for bad in (Remedy(remedy_type), Remedy(remedy_type, ORDER_AMOUNT + 1),
                Remedy(remedy_type, 0), Remedy(remedy_type, -5)):
        with pytest.raises(ValidationFailed):
            _rule(wo, Ruling.FOR_CONSUMER, bad)
        assert_unchanged(wo, before)
    _rule(wo, Ruling.FOR_CONSUMER, Remedy(remedy_type, ORDER_AMOUNT))
    assert wo.judgment is not None
    assert wo.judgment.remedy == Remedy(remedy_type, ORDER_AMOUNT)


@pytest.mark.parametrize("remedy_type", sorted(frozenset(RemedyType) - AMOUNT_REQUIRED))
def test_a_non_money_remedy_needs_no_amount(remedy_type: RemedyType) -> None:
    wo = reach(State.IN_ADJUDICATION)
    _rule(wo, Ruling.FOR_CONSUMER, Remedy(remedy_type, None, "send a new one"))
    assert wo.state is State.JUDGED


def test_the_judgment_records_who_when_and_why() -> None:
    wo = reach(State.IN_ADJUDICATION)
    _rule(wo, Ruling.FOR_CONSUMER, REFUND)
    assert wo.judgment is not None
    assert (wo.judgment.judged_by, wo.judgment.judged_at, wo.judgment.rationale) == (
        ADJUDICATOR.id, NOW, "damaged in transit")
    assert wo.closed_at == NOW


# ---- appeal of a ruling (§4) -----------------------------------------------------------------


def test_appeal_only_within_the_appeal_window_and_once() -> None:
    wo = reach(State.JUDGED)
    closes = RULE_AT + timedelta(days=7)
    before = snapshot(wo)
    with pytest.raises(AppealWindowClosed) as info:
        wo.file_appeal("too late?", (), OWNER, closes, POLICY)
    assert info.value.code == "appeal_window_closed"
    assert_unchanged(wo, before)
    wo.file_appeal("just in time", (), OWNER, closes - US, POLICY)
    assert wo.state is State.UNDER_APPEAL
    wo.decide_appeal(AppealDecision.UPHELD, "stands", SUPERVISOR, closes)
    before = snapshot(wo)
    with pytest.raises(InvalidTransition, match="once"):
        wo.file_appeal("again", (), OWNER, closes, POLICY)
    assert_unchanged(wo, before)


def test_the_appeal_window_is_configurable() -> None:
    wo = reach(State.JUDGED)
    with pytest.raises(AppealWindowClosed):
        wo.file_appeal("late", (), OWNER, RULE_AT + timedelta(days=1),
                       Policy(appeal_window=timedelta(days=1)))


def test_only_a_ruling_for_the_consumer_can_be_appealed() -> None:
    wo = reach(State.JUDGED, ruling=Ruling.FOR_MERCHANT)
    before = snapshot(wo)
    with pytest.raises(InvalidTransition):
        wo.file_appeal("we won but appeal anyway", (), OWNER, NOW, POLICY)
    assert_unchanged(wo, before)


def test_only_the_store_owner_appeals_a_ruling() -> None:
    wo = reach(State.JUDGED)
    with pytest.raises(Forbidden):
        wo.file_appeal("agent appeals", (), AGENT, NOW, POLICY)


def test_an_appeal_needs_a_statement() -> None:
    wo = reach(State.JUDGED)
    with pytest.raises(ValidationFailed):
        wo.file_appeal("  ", (), OWNER, NOW, POLICY)
    assert wo.appeal is None


def test_overturned_appeal_removes_the_dispute() -> None:
    wo = reach(State.UNDER_APPEAL)
    assert wo.counts_as_dispute  # still counts while the appeal is pending
    wo.decide_appeal(AppealDecision.OVERTURNED, "photos were of another parcel", SUPERVISOR,
                     NOW)
    assert wo.state is State.JUDGED
    assert not wo.counts_as_dispute
    assert wo.events[-1].data["counts_as_dispute"] is False


def test_upheld_appeal_keeps_the_dispute() -> None:
    wo = reach(State.UNDER_APPEAL)
    wo.decide_appeal(AppealDecision.UPHELD, "ruling stands", SUPERVISOR, NOW)
    assert wo.counts_as_dispute
    assert wo.appeal is not None
    assert (wo.appeal.decided_by, wo.appeal.decided_at) == (SUPERVISOR.id, NOW)


def test_an_appeal_decision_needs_a_rationale() -> None:
    wo = reach(State.UNDER_APPEAL)
    before = snapshot(wo)
    with pytest.raises(ValidationFailed):
        wo.decide_appeal(AppealDecision.OVERTURNED, "", SUPERVISOR, NOW)
    assert_unchanged(wo, before)


def test_a_work_order_under_appeal_is_open_again() -> None:
    wo = reach(State.UNDER_APPEAL)
    assert wo.is_open
    assert wo.closed_at is None
    wo.decide_appeal(AppealDecision.UPHELD, "ruling stands", SUPERVISOR, NOW)
    assert wo.closed_at == NOW


# ---- worry-free (§1, §4) ---------------------------------------------------------------------


def test_worry_free_work_order_has_no_deadline_and_cannot_be_ruled() -> None:
    wo = open_work_order(OrderKind.WORRY_FREE)
    assert wo.due_at is None
    assert timers_for(wo, POLICY) == []
    before = snapshot(wo)
    with pytest.raises(InvalidTransition):
        wo.rule(Ruling.FOR_CONSUMER, "ruling", REFUND, ADJUDICATOR, LATER)
    assert wo.time_out(SYSTEM_ACTOR, LATER) is False
    with pytest.raises(InvalidTransition):
        reply_with(wo, ReplyOption.NOT_RELATED, now=NOW)
    assert_unchanged(wo, before)
    assert not wo.counts_as_dispute


@pytest.mark.parametrize("amount", [0, -1])
def test_settlement_amount_must_be_greater_than_zero(amount: int) -> None:
    wo = open_work_order(OrderKind.WORRY_FREE)
    before = snapshot(wo)
    with pytest.raises(ValidationFailed):
        wo.settle(amount, "programme standard", TRIAGE, NOW)
    assert_unchanged(wo, before)


def test_settlement_may_not_exceed_the_order_amount() -> None:
    wo = open_work_order(OrderKind.WORRY_FREE)
    with pytest.raises(ValidationFailed, match="exceeds"):
        wo.settle(ORDER_AMOUNT + 1, "programme standard", TRIAGE, NOW)
    wo.settle(ORDER_AMOUNT, "programme standard", TRIAGE, NOW)
    assert wo.state is State.SETTLED
    assert not wo.counts_as_dispute


def test_settlement_needs_a_rationale() -> None:
    wo = open_work_order(OrderKind.WORRY_FREE)
    with pytest.raises(ValidationFailed):
        wo.settle(100, "", TRIAGE, NOW)
    assert wo.state is State.WORRY_FREE


# ---- withdraw (§4) ---------------------------------------------------------------------------


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
def test_withdraw_from_any_open_state(state: State) -> None:
    wo = reach(state)
    wo.withdraw(CONSUMER, NOW)
    assert wo.state is State.WITHDRAWN
    assert wo.events[-1].type == "withdrawn"


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
def test_withdraw_from_a_closed_work_order_is_refused(state: State) -> None:
    wo = reach(state)
    with pytest.raises(InvalidTransition):
        wo.withdraw(CONSUMER, NOW)
    assert wo.state is state


def test_a_withdrawn_work_order_never_counts_as_a_dispute() -> None:
    wo = reach(State.UNDER_APPEAL)
    assert wo.counts_as_dispute
    wo.withdraw(CONSUMER, NOW)
    assert not wo.counts_as_dispute


# ---- notes (§5) ------------------------------------------------------------------------------


def test_the_store_adds_notes_only_while_the_reply_window_is_open() -> None:
    wo = open_work_order()
    wo.record_note("n-1", NoteVisibility.ALL, (), AGENT, DUE - US)
    assert wo.events[-1].type == "note_added"
    before = snapshot(wo)
    with pytest.raises(ReplyWindowClosed):
        wo.check_note_allowed(OWNER, DUE)
    with pytest.raises(ReplyWindowClosed):
        wo.record_note("n-2", NoteVisibility.ALL, (), OWNER, DUE)
    assert_unchanged(wo, before)


def test_the_store_may_not_add_notes_once_it_has_replied() -> None:
    wo = open_work_order()
    reply_with(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    with pytest.raises(InvalidTransition):
        wo.check_note_allowed(AGENT, NOW)


@pytest.mark.parametrize("state", sorted(OPEN_STATES))
@pytest.mark.parametrize("role", sorted(PLATFORM_ROLES | {Role.CONSUMER}))
def test_consumers_and_platform_staff_add_notes_while_the_work_order_is_open(
        state: State, role: Role) -> None:
    wo = reach(state)
    wo.record_note("n-1", NoteVisibility.PLATFORM, ("ev-1",), ACTOR_OF[role], LATER)
    assert wo.events[-1].data == {"note_id": "n-1", "visibility": "platform",
                                  "evidence_ids": ["ev-1"]}
    assert wo.state is state


@pytest.mark.parametrize("state", sorted(TERMINAL_STATES))
@pytest.mark.parametrize("role", sorted(PLATFORM_ROLES | MERCHANT_ROLES | {Role.CONSUMER}))
def test_nobody_adds_notes_to_a_closed_work_order(state: State, role: Role) -> None:
    wo = reach(state)
    before = snapshot(wo)
    with pytest.raises(CollabdeskError):
        wo.record_note("n-1", NoteVisibility.ALL, (), ACTOR_OF[role], NOW)
    assert_unchanged(wo, before)


@pytest.mark.parametrize("role", [Role.INTEGRATION, Role.ADMIN, Role.SYSTEM])
def test_integration_admin_and_system_may_not_add_notes(role: Role) -> None:
    wo = open_work_order()
    with pytest.raises(Forbidden):
        wo.check_note_allowed(ACTOR_OF[role], NOW)


# ---- internal SLAs (§6) ----------------------------------------------------------------------


def test_an_sla_breach_flags_the_case_once_and_changes_no_state() -> None:
    wo = reach(State.IN_ADJUDICATION)
    assert wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, LATER)
    assert wo.sla_overdue
    assert wo.state is State.IN_ADJUDICATION
    before = snapshot(wo)
    assert wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, LATER) is False
    assert_unchanged(wo, before)


def test_an_sla_breach_for_a_state_already_left_is_a_no_op() -> None:
    wo = reach(State.JUDGED)
    before = snapshot(wo)
    assert wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, LATER) is False
    assert_unchanged(wo, before)


def test_the_overdue_flag_is_cleared_by_the_next_move() -> None:
    wo = reach(State.IN_ADJUDICATION)
    wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, NOW)
    wo.rule(Ruling.FOR_MERCHANT, "unsupported", None, ADJUDICATOR, NOW)
    assert not wo.sla_overdue


# ---- timers (§6) -----------------------------------------------------------------------------


def test_awaiting_merchant_has_reminders_12h_and_2h_before_due_and_the_timeout_at_due() -> None:
    wo = open_work_order(now=T0)
    assert timers_for(wo, POLICY) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=12)),
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=22)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=24)),
    ]


def test_awaiting_consumer_has_the_confirmation_lapse_48h_after_the_reply() -> None:
    wo = reach(State.AWAITING_CONSUMER)
    assert timers_for(wo, POLICY) == [
        TimerSpec(TimerKind.CONFIRMATION_LAPSE, REPLY_AT + timedelta(hours=48))]


def test_awaiting_verification_has_the_24h_verification_sla() -> None:
    wo = reach(State.AWAITING_VERIFICATION)
    assert timers_for(wo, POLICY) == [
        TimerSpec(TimerKind.VERIFICATION_SLA, REPLY_AT + timedelta(hours=24))]


def test_in_adjudication_has_the_48h_adjudication_sla_from_entering_it() -> None:
    wo = open_work_order()
    wo.time_out(SYSTEM_ACTOR, DUE + timedelta(hours=1))
    assert timers_for(wo, POLICY) == [
        TimerSpec(TimerKind.ADJUDICATION_SLA, DUE + timedelta(hours=49))]


@pytest.mark.parametrize("state", sorted(frozenset(State) - {
    State.AWAITING_MERCHANT, State.AWAITING_CONSUMER, State.AWAITING_VERIFICATION,
    State.IN_ADJUDICATION}))
def test_states_without_a_clock_have_no_timers(state: State) -> None:
    assert timers_for(reach(state), POLICY) == []


def test_policy_overrides_change_the_timers() -> None:
    policy = Policy(reply_window=timedelta(hours=8),
                    reminders_before_due=(timedelta(hours=4), timedelta(minutes=30)),
                    confirmation_window=timedelta(hours=5),
                    verification_sla=timedelta(hours=6),
                    adjudication_sla=timedelta(hours=7))
    wo = open_work_order(now=T0, policy=policy)
    assert timers_for(wo, policy) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=4)),
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=7, minutes=30)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=8)),
    ]
    for state, kind, delta in [
        (State.AWAITING_CONSUMER, TimerKind.CONFIRMATION_LAPSE, timedelta(hours=5)),
        (State.AWAITING_VERIFICATION, TimerKind.VERIFICATION_SLA, timedelta(hours=6)),
        (State.IN_ADJUDICATION, TimerKind.ADJUDICATION_SLA, timedelta(hours=7)),
    ]:
        assert timers_for(reach(state), policy) == [TimerSpec(kind, REPLY_AT + delta)]


def test_a_reminder_that_would_fall_before_creation_is_not_scheduled() -> None:
    policy = Policy(reply_window=timedelta(hours=3))
    wo = open_work_order(now=T0, policy=policy)
    assert timers_for(wo, policy) == [
        TimerSpec(TimerKind.REMINDER, T0 + timedelta(hours=1)),
        TimerSpec(TimerKind.REPLY_TIMEOUT, T0 + timedelta(hours=3)),
    ]


def test_the_default_policy_is_the_rulebooks() -> None:
    assert POLICY.reply_window == timedelta(hours=24)
    assert POLICY.reminders_before_due == (timedelta(hours=12), timedelta(hours=2))
    assert POLICY.confirmation_window == timedelta(hours=48)
    assert POLICY.verification_sla == timedelta(hours=24)
    assert POLICY.adjudication_sla == timedelta(hours=48)
    assert POLICY.appeal_window == timedelta(days=7)
    assert POLICY.min_contact_attempts == 2
    assert POLICY.metric_window_days == 30
    assert POLICY.points == {"general": 12, "serious": 48}


# ---- errors ----------------------------------------------------------------------------------


def test_every_domain_error_carries_its_stable_code_and_detail() -> None:
    expected = {
        ValidationFailed: "validation_error", Forbidden: "forbidden",
        InvalidTransition: "invalid_transition", ReplyWindowClosed: "reply_window_closed",
        ContactBeforeWorkOrder: "contact_before_work_order",
        ContactInFuture: "contact_in_future",
        ReplyRequirementsNotMet: "reply_requirements_not_met",
        DuplicateOpenWorkOrder: "duplicate_open_work_order",
        AppealWindowClosed: "appeal_window_closed",
    }
    for cls, code in expected.items():
        error = cls("why")
        assert isinstance(error, CollabdeskError)
        assert (error.code, error.detail, str(error)) == (code, "why", "why")
