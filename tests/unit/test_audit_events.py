"""What each move records (rules.md §10): the exact event type, author, time, data and
chain of every event, and what the aggregate keeps.

The audit chain is the case's history for every party, so an event's name and each key of
its data are part of the contract: the expected events below are written out in full.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone, tzinfo

import pytest

from collabdesk.domain.audit import ChainHead, event_hash, extend, find_break
from collabdesk.domain.bounds import instant_problem
from collabdesk.domain.model import (
    Appeal,
    ConsumerResponse,
    Judgment,
    Reply,
    Settlement,
    Verification,
    WorkOrder,
)
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import (
    SYSTEM_ACTOR,
    AppealDecision,
    Category,
    Contact,
    ContactChannel,
    ContactOutcome,
    DomainEvent,
    Order,
    OrderKind,
    Remedy,
    RemedyType,
    Ruling,
    VerificationOutcome,
    utc_iso,
)
from tests.actors import ADJUDICATOR, AGENT, CONSUMER, OWNER, SUPERVISOR, T0, TRIAGE, VERIFIER, at


def new_work_order(kind: OrderKind = OrderKind.STANDARD, *,
                   requested: Remedy | None = None) -> WorkOrder:
    order = Order("o-1", "s-1", "c-1", kind, 10_000, T0 - timedelta(days=1))
    return WorkOrder.open(work_order_id="wo-1", order=order, category=Category.DAMAGED,
                          claim="arrived broken", requested_remedy=requested, actor=CONSUMER,
                          now=T0, policy=Policy(), order_has_open_work_order=False)


def contact(contact_id: str, outcome: ContactOutcome, when: datetime,
            evidence: tuple[str, ...]) -> Contact:
    return Contact(contact_id, "wo-1", ContactChannel.PHONE, when, outcome, "called the buyer",
                   evidence, "agent-1", when)


def opened_event(state: str = "awaiting_merchant",
                 due_at: str | None = "2026-11-03T08:00:00Z",
                 requested: dict[str, object] | None = None) -> DomainEvent:
    return DomainEvent("opened", "c-1", T0, {
        "order_id": "o-1", "store_id": "s-1", "consumer_id": "c-1", "category": "damaged",
        "claim": "arrived broken", "requested_remedy": requested, "state": state,
        "due_at": due_at}, "all")


def no_agreement_reply(wo: WorkOrder) -> None:
    wo.log_contact(contact("ct-1", ContactOutcome.REACHED, at(10), ("ev-1",)), AGENT, at(10))
    wo.give_reply(option=ReplyOption.UNRESOLVED_NO_AGREEMENT, statement="we disagree",
                  agreement=None, evidence_ids=("ev-2",), actor=AGENT, now=at(20),
                  policy=Policy())


# ---- opening and the store's moves -----------------------------------------------------------


def test_opening_records_who_what_and_the_deadline() -> None:
    wo = new_work_order(requested=Remedy(RemedyType.REFUND, 5_000, "half"))
    assert wo.events == [opened_event(
        requested={"type": "refund", "amount_cents": 5_000, "note": "half"})]
    assert (wo.state, wo.created_at, wo.created_by, wo.state_entered_at, wo.due_at) == (
        State.AWAITING_MERCHANT, T0, "c-1", T0, T0 + timedelta(hours=24))


def test_opening_a_worry_free_order_records_no_deadline() -> None:
    wo = new_work_order(OrderKind.WORRY_FREE)
    assert wo.events == [opened_event(state="worry_free", due_at=None)]


def test_an_agreed_reply_and_its_acceptance_are_recorded() -> None:
    wo = new_work_order()
    wo.log_contact(contact("ct-1", ContactOutcome.REACHED, at(10), ("ev-1",)), AGENT, at(10))
    agreed = Remedy(RemedyType.RETURN_AND_REFUND, 4_000)
    wo.give_reply(option=ReplyOption.RESOLVED_AGREED, statement=None, agreement=agreed,
                  evidence_ids=(), actor=AGENT, now=at(20), policy=Policy())
    wo.respond_as_consumer(True, "thanks", CONSUMER, at(30))
    assert wo.events[1:] == [
        DomainEvent("contact_logged", "agent-1", at(10), {
            "contact_id": "ct-1", "channel": "phone", "contacted_at": "2026-11-02T08:10:00Z",
            "outcome": "reached", "summary": "called the buyer", "evidence_ids": ["ev-1"]}),
        DomainEvent("replied", "agent-1", at(20), {
            "option": "resolved_agreed", "statement": None,
            "agreement": {"type": "return_and_refund", "amount_cents": 4_000, "note": None},
            "evidence_ids": [], "state": "awaiting_consumer"}),
        DomainEvent("consumer_responded", "c-1", at(30), {
            "accept": True, "statement": "thanks", "state": "resolved"}),
    ]
    assert wo.reply == Reply(ReplyOption.RESOLVED_AGREED, None, agreed, (), at(20), "agent-1")
    assert wo.consumer_response == ConsumerResponse(True, "thanks", at(30))
    assert (wo.state, wo.state_entered_at, wo.closed_at, wo.escalated_at) == (
        State.RESOLVED, at(30), at(30), None)


def test_a_rejected_agreement_is_recorded_and_escalates() -> None:
    wo = new_work_order()
    wo.log_contact(contact("ct-1", ContactOutcome.REACHED, at(10), ("ev-1",)), AGENT, at(10))
    wo.give_reply(option=ReplyOption.RESOLVED_AGREED, statement=None,
                  agreement=Remedy(RemedyType.EXCHANGE), evidence_ids=("ev-3",), actor=OWNER,
                  now=at(20), policy=Policy())
    wo.respond_as_consumer(False, None, CONSUMER, at(30))
    assert wo.events[-2:] == [
        DomainEvent("replied", "owner-1", at(20), {
            "option": "resolved_agreed", "statement": None,
            "agreement": {"type": "exchange", "amount_cents": None, "note": None},
            "evidence_ids": ["ev-3"], "state": "awaiting_consumer"}),
        DomainEvent("consumer_responded", "c-1", at(30), {
            "accept": False, "statement": None, "state": "in_adjudication"}),
    ]
    assert wo.consumer_response == ConsumerResponse(False, None, at(30))
    assert (wo.state, wo.escalated_at, wo.closed_at) == (State.IN_ADJUDICATION, at(30), None)


def test_a_no_agreement_reply_is_recorded_with_its_statement_and_evidence() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    assert wo.events[-1] == DomainEvent("replied", "agent-1", at(20), {
        "option": "unresolved_no_agreement", "statement": "we disagree", "agreement": None,
        "evidence_ids": ["ev-2"], "state": "in_adjudication"})
    assert wo.reply == Reply(ReplyOption.UNRESOLVED_NO_AGREEMENT, "we disagree", None,
                             ("ev-2",), at(20), "agent-1")
    assert (wo.escalated_at, wo.closed_at) == (at(20), None)


def test_the_timeout_is_recorded_by_the_system_and_waives_the_evidence() -> None:
    wo = new_work_order()
    due = T0 + timedelta(hours=24)
    assert wo.time_out(SYSTEM_ACTOR, due + timedelta(minutes=5)) is True
    assert wo.events[-1] == DomainEvent("timed_out", "system", due + timedelta(minutes=5), {
        "due_at": "2026-11-03T08:00:00Z", "evidence_waived": True})
    assert (wo.timed_out_at, wo.escalated_at, wo.evidence_waived) == (
        due + timedelta(minutes=5), due + timedelta(minutes=5), True)


def test_the_confirmation_lapse_is_recorded_by_the_system() -> None:
    wo = new_work_order()
    wo.log_contact(contact("ct-1", ContactOutcome.REACHED, at(10), ("ev-1",)), AGENT, at(10))
    wo.give_reply(option=ReplyOption.RESOLVED_AGREED, statement=None,
                  agreement=Remedy(RemedyType.REPAIR), evidence_ids=(), actor=AGENT,
                  now=at(20), policy=Policy())
    lapse = at(20) + timedelta(hours=48)
    assert wo.lapse_confirmation(SYSTEM_ACTOR, lapse - timedelta(microseconds=1),
                                 Policy()) is False
    assert wo.lapse_confirmation(SYSTEM_ACTOR, lapse, Policy()) is True
    assert wo.events[-1] == DomainEvent("confirmation_lapsed", "system", lapse,
                                        {"state": "resolved"})
    assert (wo.state, wo.closed_at) == (State.RESOLVED, lapse)


# ---- the platform's moves --------------------------------------------------------------------


def unreachable_reply(wo: WorkOrder) -> None:
    wo.log_contact(contact("ct-1", ContactOutcome.UNREACHABLE, at(10), ("ev-1",)), AGENT,
                   at(10))
    wo.log_contact(contact("ct-2", ContactOutcome.UNREACHABLE, at(11), ("ev-2",)), AGENT,
                   at(11))
    wo.give_reply(option=ReplyOption.UNRESOLVED_UNREACHABLE, statement=None, agreement=None,
                  evidence_ids=(), actor=AGENT, now=at(20), policy=Policy())


def test_a_rejected_contact_claim_is_recorded_and_waives_the_evidence() -> None:
    wo = new_work_order()
    unreachable_reply(wo)
    assert wo.events[-1].data["state"] == "awaiting_verification"
    wo.verify(VerificationOutcome.CONTACT_REJECTED, "no such calls", VERIFIER, at(30))
    assert wo.events[-1] == DomainEvent("verified", "verifier-1", at(30), {
        "outcome": "contact_rejected", "rationale": "no such calls",
        "state": "in_adjudication", "evidence_waived": True})
    assert wo.verification == Verification(VerificationOutcome.CONTACT_REJECTED,
                                            "no such calls", at(30), "verifier-1")


def test_a_verified_contact_claim_is_recorded_without_waiving_the_evidence() -> None:
    wo = new_work_order()
    unreachable_reply(wo)
    wo.verify(VerificationOutcome.CONTACT_VERIFIED, "calls are real", VERIFIER, at(30))
    assert wo.events[-1] == DomainEvent("verified", "verifier-1", at(30), {
        "outcome": "contact_verified", "rationale": "calls are real",
        "state": "in_adjudication", "evidence_waived": False})
    assert (wo.state, wo.escalated_at, wo.evidence_waived) == (
        State.IN_ADJUDICATION, at(30), False)


def test_a_confirmed_unrelated_claim_dismisses_and_is_recorded() -> None:
    wo = new_work_order()
    wo.give_reply(option=ReplyOption.NOT_RELATED, statement="not our order", agreement=None,
                  evidence_ids=(), actor=AGENT, now=at(20), policy=Policy())
    wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, "wrong shop", VERIFIER, at(30))
    assert wo.events[-1] == DomainEvent("verified", "verifier-1", at(30), {
        "outcome": "unrelated_confirmed", "rationale": "wrong shop", "state": "dismissed",
        "evidence_waived": False})
    assert (wo.state, wo.closed_at) == (State.DISMISSED, at(30))


def test_a_ruling_an_appeal_and_its_decision_are_recorded_and_kept() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    refund = Remedy(RemedyType.REFUND, 7_000)
    wo.rule(Ruling.FOR_CONSUMER, "the parcel was damaged", refund, ADJUDICATOR, at(40))
    wo.file_appeal("the photos are of another parcel", ("ev-9",), OWNER, at(50), Policy())
    wo.decide_appeal(AppealDecision.OVERTURNED, "the photos are old", SUPERVISOR, at(60))
    assert wo.events[-3:] == [
        DomainEvent("judged", "adjudicator-1", at(40), {
            "ruling": "for_consumer", "rationale": "the parcel was damaged",
            "remedy": {"type": "refund", "amount_cents": 7_000, "note": None},
            "counts_as_dispute": True}),
        DomainEvent("appealed", "owner-1", at(50), {
            "statement": "the photos are of another parcel", "evidence_ids": ["ev-9"]}),
        DomainEvent("appeal_decided", "supervisor-1", at(60), {
            "decision": "overturned", "rationale": "the photos are old",
            "counts_as_dispute": False}),
    ]
    assert wo.judgment == Judgment(Ruling.FOR_CONSUMER, "the parcel was damaged", refund,
                                   at(40), "adjudicator-1")
    assert wo.appeal == Appeal("the photos are of another parcel", ("ev-9",), at(50),
                               "owner-1", AppealDecision.OVERTURNED, "the photos are old",
                               at(60), "supervisor-1")
    assert (wo.state, wo.closed_at) == (State.JUDGED, at(60))


def test_an_appeal_is_stored_with_its_statement_until_decided() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    wo.rule(Ruling.FOR_CONSUMER, "damaged", Remedy(RemedyType.REFUND, 100), ADJUDICATOR,
            at(40))
    assert (wo.state, wo.closed_at) == (State.JUDGED, at(40))
    wo.file_appeal("another parcel", (), OWNER, at(50), Policy())
    assert wo.appeal == Appeal("another parcel", (), at(50), "owner-1")
    assert (wo.appeal.decision, wo.appeal.rationale, wo.appeal.decided_at,
            wo.appeal.decided_by) == (None, None, None, None)
    assert (wo.state, wo.closed_at) == (State.UNDER_APPEAL, None)


def test_an_upheld_appeal_is_recorded_and_the_dispute_stays() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    wo.rule(Ruling.FOR_CONSUMER, "damaged", Remedy(RemedyType.REFUND, 100), ADJUDICATOR,
            at(40))
    wo.file_appeal("another parcel", (), OWNER, at(50), Policy())
    wo.decide_appeal(AppealDecision.UPHELD, "same parcel", SUPERVISOR, at(60))
    assert wo.events[-1] == DomainEvent("appeal_decided", "supervisor-1", at(60), {
        "decision": "upheld", "rationale": "same parcel", "counts_as_dispute": True})
    assert wo.appeal is not None
    assert (wo.appeal.statement, wo.appeal.rationale) == ("another parcel", "same parcel")


def test_a_ruling_for_the_merchant_is_recorded_without_a_remedy() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    wo.rule(Ruling.FOR_MERCHANT, "no damage shown", None, ADJUDICATOR, at(40))
    assert wo.events[-1] == DomainEvent("judged", "adjudicator-1", at(40), {
        "ruling": "for_merchant", "rationale": "no damage shown", "remedy": None,
        "counts_as_dispute": False})


def test_a_settlement_is_recorded_with_its_amount_and_rationale() -> None:
    wo = new_work_order(OrderKind.WORRY_FREE)
    wo.settle(1, "programme standard", TRIAGE, at(5))
    assert wo.events[-1] == DomainEvent("settled", "triage-1", at(5), {
        "amount_cents": 1, "rationale": "programme standard"})
    assert wo.settlement == Settlement(1, "programme standard", at(5), "triage-1")
    assert (wo.state, wo.closed_at) == (State.SETTLED, at(5))


def test_a_withdrawal_is_recorded() -> None:
    wo = new_work_order()
    wo.withdraw(CONSUMER, at(5))
    assert wo.events[-1] == DomainEvent("withdrawn", "c-1", at(5), {"state": "withdrawn"})
    assert (wo.state, wo.closed_at) == (State.WITHDRAWN, at(5))


def test_an_sla_breach_is_recorded_with_the_state_it_was_in() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    assert wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, at(90)) is True
    assert wo.events[-1] == DomainEvent("sla_overdue", "system", at(90),
                                        {"state": "in_adjudication"})


def test_a_violation_is_recorded_on_the_work_orders_chain() -> None:
    wo = new_work_order()
    wo.record_violation("v-1", "serious", 48, VERIFIER, at(5))
    assert wo.events[-1] == DomainEvent("violation_recorded", "verifier-1", at(5), {
        "violation_id": "v-1", "severity": "serious", "points": 48})


# ---- notes: which chain ----------------------------------------------------------------------


def test_a_note_for_all_goes_to_the_all_chain() -> None:
    wo = new_work_order()
    wo.record_note("n-1", "all", ("ev-1",), CONSUMER, at(5))
    assert wo.events[-1] == DomainEvent("note_added", "c-1", at(5), {
        "note_id": "n-1", "visibility": "all", "evidence_ids": ["ev-1"]}, "all")


def test_a_platform_only_note_goes_to_the_platform_chain() -> None:
    wo = new_work_order()
    wo.record_note("n-2", "platform", (), TRIAGE, at(5))
    assert wo.events[-1] == DomainEvent("note_added", "triage-1", at(5), {
        "note_id": "n-2", "visibility": "platform", "evidence_ids": []}, "platform")


def test_every_other_event_goes_to_the_all_chain() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    wo.rule(Ruling.FOR_MERCHANT, "no damage shown", None, ADJUDICATOR, at(40))
    assert [e.visibility for e in wo.events] == ["all", "all", "all", "all"]


def test_a_new_work_order_has_two_empty_chains() -> None:
    wo = new_work_order()
    assert set(wo.chains) == {"all", "platform"}
    assert (wo.chains["all"].length, wo.chains["all"].hash) == (0, None)
    assert (wo.chains["platform"].length, wo.chains["platform"].hash) == (0, None)


# ---- what the aggregate keeps, and its chains ------------------------------------------------


def test_opening_keeps_the_orders_facts_and_the_claim() -> None:
    wo = new_work_order()
    assert (wo.id, wo.order_id, wo.store_id, wo.consumer_id, wo.order_kind,
            wo.order_amount_cents, wo.category, wo.claim, wo.requested_remedy) == (
        "wo-1", "o-1", "s-1", "c-1", OrderKind.STANDARD, 10_000, Category.DAMAGED,
        "arrived broken", None)
    assert (wo.sla_overdue, wo.evidence_waived, wo.version, wo.contacts) == (
        False, False, 0, [])


def test_the_reply_window_is_open_until_just_before_due_at_and_until_the_reply() -> None:
    wo = new_work_order()
    due = T0 + timedelta(hours=24)
    assert wo.reply_window_open(T0) is True
    assert wo.reply_window_open(due - timedelta(microseconds=1)) is True
    assert wo.reply_window_open(due) is False
    no_agreement_reply(wo)
    assert wo.reply_window_open(at(21)) is False
    assert new_work_order(OrderKind.WORRY_FREE).reply_window_open(T0) is False


def test_a_move_clears_the_overdue_flag_to_false() -> None:
    wo = new_work_order()
    no_agreement_reply(wo)
    wo.mark_sla_overdue(State.IN_ADJUDICATION, SYSTEM_ACTOR, at(30))
    wo.rule(Ruling.FOR_MERCHANT, "no damage shown", None, ADJUDICATOR, at(40))
    assert wo.sla_overdue is False


def test_extending_the_platform_chain_marks_and_binds_its_links_to_it() -> None:
    event = DomainEvent("note_added", "triage-1", at(5), {"note_id": "n-1"}, "platform")
    links, head = extend("wo-1", "platform", ChainHead(), [event])
    [link] = links
    assert (link.work_order_id, link.seq, link.at, link.actor_id, link.type, link.data_json,
            link.prev_hash, link.visibility) == (
        "wo-1", 1, "2026-11-02T08:05:00Z", "triage-1", "note_added", '{"note_id":"n-1"}',
        None, "platform")
    assert link.hash == event_hash("wo-1#platform", 1, "2026-11-02T08:05:00Z", "triage-1",
                                   "note_added", '{"note_id":"n-1"}', None)
    assert head == ChainHead(1, link.hash)
    assert find_break(links, head) is None


def test_a_chain_whose_newest_hash_differs_from_the_anchor_is_broken() -> None:
    event = DomainEvent("opened", "c-1", T0, {})
    links, head = extend("wo-1", "all", ChainHead(), [event])
    assert find_break(links, ChainHead(1, "0" * 64)) == (
        "the chain's newest event (1) does not match the head the work order records "
        "(event 1)")
    assert find_break(links, ChainHead(2, head.hash)) == (
        "the chain ends at event 1 but the work order records 2 events: the newest were "
        "deleted")


def test_times_are_written_in_utc_whatever_the_machines_time_zone(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Shanghai")
    time.tzset()
    try:
        assert utc_iso(datetime(2026, 11, 2, 16, 0, tzinfo=timezone(timedelta(hours=8)))) == (
            "2026-11-02T08:00:00Z")
    finally:
        monkeypatch.undo()
        time.tzset()


class _NoOffset(tzinfo):
    """A time zone that does not know its offset."""

    def utcoffset(self, dt: datetime | None) -> timedelta | None:
        return None

    def dst(self, dt: datetime | None) -> timedelta | None:
        return None

    def tzname(self, dt: datetime | None) -> str | None:
        return None


def test_an_instant_whose_zone_gives_no_offset_needs_one() -> None:
    assert instant_problem(datetime(2026, 11, 2, tzinfo=_NoOffset())) == "needs a UTC offset"
