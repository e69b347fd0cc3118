"""Every refusal names what was refused and why (rules.md §3-5, §9; api.md Errors).

The `detail` of a refusal is what a client shows its user, so each one is written out here
in full, with the error class (whose `code` the API returns).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest

from collabdesk.domain.audit import chain_key
from collabdesk.domain.errors import (
    AppealWindowClosed,
    CollabdeskError,
    ContactBeforeWorkOrder,
    ContactInFuture,
    DuplicateOpenWorkOrder,
    Forbidden,
    IdempotencyKeyInUse,
    InvalidTransition,
    ReplyRequirementsNotMet,
    ReplyWindowClosed,
    ValidationFailed,
)
from collabdesk.domain.evidence import is_plain_text
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role
from collabdesk.domain.values import (
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
    utc_iso,
)
from collabdesk.domain.violations import Severity, Violation, ViolationDecision, ViolationKind
from tests.actors import (
    ADJUDICATOR,
    AGENT,
    CONSUMER,
    INTEGRATION,
    OWNER,
    SUPERVISOR,
    T0,
    TRIAGE,
    VERIFIER,
    at,
)

DUE = T0 + timedelta(hours=24)



def order(kind: OrderKind = OrderKind.STANDARD) -> Order:
    return Order("o-1", "s-1", "c-1", kind, 10_000, T0 - timedelta(days=1))


def opened(kind: OrderKind = OrderKind.STANDARD) -> WorkOrder:
    return WorkOrder.open(work_order_id="wo-1", order=order(kind), category=Category.QUALITY,
                          claim="broken", requested_remedy=None, actor=CONSUMER, now=T0,
                          policy=Policy(), order_has_open_work_order=False)


def contact(outcome: ContactOutcome, when: datetime, evidence: tuple[str, ...] = ("ev-1",),
            contact_id: str = "ct-1") -> Contact:
    return Contact(contact_id, "wo-1", ContactChannel.IM, when, outcome, None, evidence,
                   "agent-1", when)


def reply(wo: WorkOrder, option: ReplyOption, *, statement: str | None = "because",
          agreement: Remedy | None = None, now: datetime | None = None,
          actor: Actor = AGENT) -> None:
    wo.give_reply(option=option, statement=statement, agreement=agreement, evidence_ids=(),
                  actor=actor, now=now or at(20), policy=Policy())


def in_adjudication() -> WorkOrder:
    wo = opened()
    wo.log_contact(contact(ContactOutcome.REACHED, at(10)), AGENT, at(10))
    reply(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    return wo


def judged(ruling: Ruling = Ruling.FOR_CONSUMER) -> WorkOrder:
    wo = in_adjudication()
    wo.rule(ruling, "damaged", Remedy(RemedyType.REFUND, 100) if ruling == "for_consumer"
            else None, ADJUDICATOR, at(40))
    return wo


def withdrawn() -> WorkOrder:
    wo = opened()
    wo.withdraw(CONSUMER, at(5))
    return wo


def open_as(actor: Actor, *, claim: str = "broken", requested: Remedy | None = None,
            duplicate: bool = False) -> WorkOrder:
    return WorkOrder.open(work_order_id="wo-1", order=order(), category=Category.QUALITY,
                          claim=claim, requested_remedy=requested, actor=actor, now=T0,
                          policy=Policy(), order_has_open_work_order=duplicate)


def recorded() -> Violation:
    return Violation.record(violation_id="v-1", store_id="s-1", work_order_id="wo-1",
                            kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL,
                            rationale="edited", evidence_ids=(), actor=VERIFIER, now=T0,
                            policy=Policy())


def under_appeal_violation() -> Violation:
    v = recorded()
    v.appeal("genuine", OWNER, at(1), Policy())
    return v


def appealed() -> WorkOrder:
    wo = judged()
    wo.file_appeal("another parcel", (), OWNER, at(50), Policy())
    return wo


def appealed_twice() -> None:
    wo = appealed()
    wo.decide_appeal(AppealDecision.UPHELD, "stands", SUPERVISOR, at(60))
    wo.file_appeal("again", (), OWNER, at(70), Policy())


def unreachable_with_one_reached_contact_without_evidence() -> None:
    wo = opened()
    wo.log_contact(contact(ContactOutcome.REACHED, at(10), ()), AGENT, at(10))
    reply(wo, ReplyOption.UNRESOLVED_UNREACHABLE)


def agreement_above_the_order_amount() -> None:
    wo = opened()
    wo.log_contact(contact(ContactOutcome.REACHED, at(10)), AGENT, at(10))
    reply(wo, ReplyOption.RESOLVED_AGREED, agreement=Remedy(RemedyType.REFUND, 10_001))


def verification_without_rationale() -> None:
    wo = opened()
    reply(wo, ReplyOption.NOT_RELATED)
    wo.verify(VerificationOutcome.UNRELATED_CONFIRMED, " ", VERIFIER, at(30))


def not_related_then_verify(outcome: VerificationOutcome) -> None:
    wo = opened()
    reply(wo, ReplyOption.NOT_RELATED)
    wo.verify(outcome, "checked", VERIFIER, at(30))


REFUSALS: dict[str, tuple[Callable[[], object], type[CollabdeskError], str]] = {
    # opening
    "another consumer's order": (
        lambda: open_as(Actor("c-2", Role.CONSUMER)), Forbidden,
        "consumers open work orders on their own orders only"),
    "a merchant opening": (
        lambda: open_as(AGENT), Forbidden, "a merchant_agent may not open work orders"),
    "a second open work order": (
        lambda: open_as(CONSUMER, duplicate=True), DuplicateOpenWorkOrder,
        "order o-1 already has an open work order"),
    "a blank claim": (
        lambda: open_as(CONSUMER, claim=" "), ValidationFailed, "claim is required"),
    "a 0 cent requested refund": (
        lambda: open_as(CONSUMER, requested=Remedy(RemedyType.REFUND, 0)), ValidationFailed,
        "requested_remedy.amount_cents must be positive"),
    # the store's contacts, reply and notes
    "a consumer logging a contact": (
        lambda: opened().log_contact(contact(ContactOutcome.REACHED, at(10)), CONSUMER, at(10)),
        Forbidden, "only the store may log contacts"),
    "a contact at due_at": (
        lambda: opened().log_contact(contact(ContactOutcome.REACHED, at(10)), AGENT, DUE),
        ReplyWindowClosed,
        "the reply window closed at 2026-11-03T08:00:00Z; the store can no longer log "
        "contacts"),
    "a contact after the reply": (
        lambda: in_adjudication().log_contact(contact(ContactOutcome.REACHED, at(30)), AGENT,
                                              at(30)),
        InvalidTransition, "cannot log contacts in state in_adjudication"),
    "a contact before the work order": (
        lambda: opened().log_contact(contact(ContactOutcome.REACHED, T0 - timedelta(
            seconds=1)), AGENT, at(10)),
        ContactBeforeWorkOrder,
        "contacted_at 2026-11-02T07:59:59Z is before the work order was created at "
        "2026-11-02T08:00:00Z; such contacts do not count"),
    "a contact in the future": (
        lambda: opened().log_contact(contact(ContactOutcome.REACHED, at(11)), AGENT, at(10)),
        ContactInFuture, "contacted_at 2026-11-02T08:11:00Z is in the future"),
    "a consumer replying": (
        lambda: reply(opened(), ReplyOption.NOT_RELATED, actor=CONSUMER), Forbidden,
        "only the store may reply"),
    "a reply at due_at": (
        lambda: reply(opened(), ReplyOption.NOT_RELATED, now=DUE), ReplyWindowClosed,
        "the reply window closed at 2026-11-03T08:00:00Z; the store can no longer reply"),
    "a second reply": (
        lambda: reply(in_adjudication(), ReplyOption.NOT_RELATED, now=at(30)),
        InvalidTransition, "cannot reply in state in_adjudication"),
    "an agreed reply without contact or agreement": (
        lambda: reply(opened(), ReplyOption.RESOLVED_AGREED), ReplyRequirementsNotMet,
        "reply 'resolved_agreed' requires: agreement; at least 1 contact(s) with outcome "
        "'reached' (logged after the work order was created)"),
    "a no-agreement reply without statement or contact": (
        lambda: reply(opened(), ReplyOption.UNRESOLVED_NO_AGREEMENT, statement=" "),
        ReplyRequirementsNotMet,
        "reply 'unresolved_no_agreement' requires: statement; at least 1 contact(s) with "
        "outcome 'reached' (logged after the work order was created)"),
    "an unreachable reply after reaching the consumer once, without evidence": (
        unreachable_with_one_reached_contact_without_evidence, ReplyRequirementsNotMet,
        "reply 'unresolved_unreachable' requires: every contact must be 'unreachable' (a "
        "contact reached the consumer); at least 2 contact attempts (have 1); evidence on "
        "every contact attempt"),
    "an agreement above the order amount": (
        agreement_above_the_order_amount, ValidationFailed,
        "agreement.amount_cents 10001 exceeds the order's amount 10000"),
    "a store note at due_at": (
        lambda: opened().check_note_allowed(OWNER, DUE), ReplyWindowClosed,
        "the reply window closed at 2026-11-03T08:00:00Z; the store can no longer add notes"),
    "a store note after the reply": (
        lambda: in_adjudication().check_note_allowed(AGENT, at(30)), InvalidTransition,
        "cannot add notes in state in_adjudication"),
    "an integration's note": (
        lambda: opened().check_note_allowed(INTEGRATION, at(5)), Forbidden,
        "an integration may not add notes"),
    "a note on a closed work order": (
        lambda: withdrawn().check_note_allowed(CONSUMER, at(6)), InvalidTransition,
        "cannot add notes to a work order in state withdrawn"),
    # the state machine
    "a consumer processing the timeout": (
        lambda: opened().time_out(CONSUMER, DUE), Forbidden, "a consumer may not time out"),
    "a verifier ruling": (
        lambda: in_adjudication().rule(Ruling.FOR_MERCHANT, "x", None, VERIFIER, at(40)),
        Forbidden, "a verifier may not rule"),
    "an adjudicator deciding an appeal": (
        lambda: appealed().decide_appeal(AppealDecision.UPHELD, "x", ADJUDICATOR, at(60)),
        Forbidden, "an adjudicator may not decide appeal"),
    "a ruling before the store replied": (
        lambda: opened().rule(Ruling.FOR_MERCHANT, "x", None, ADJUDICATOR, at(40)),
        InvalidTransition, "cannot rule a work order in state awaiting_merchant"),
    "an appeal decision with no appeal": (
        lambda: judged().decide_appeal(AppealDecision.UPHELD, "x", SUPERVISOR, at(60)),
        InvalidTransition, "cannot decide appeal a work order in state judged"),
    "a second withdrawal": (
        lambda: withdrawn().withdraw(CONSUMER, at(6)), InvalidTransition,
        "cannot withdraw a work order in state withdrawn"),
    # the platform's decisions
    "a verification without rationale": (
        verification_without_rationale, ValidationFailed, "rationale is required"),
    "a contact outcome on a not-related reply": (
        lambda: not_related_then_verify(VerificationOutcome.CONTACT_VERIFIED),
        InvalidTransition,
        "outcome 'contact_verified' applies to a 'unresolved_unreachable' reply, not "
        "'not_related'"),
    "a ruling without rationale": (
        lambda: in_adjudication().rule(Ruling.FOR_MERCHANT, "", None, ADJUDICATOR, at(40)),
        ValidationFailed, "rationale is required"),
    "a ruling for the consumer without remedy": (
        lambda: in_adjudication().rule(Ruling.FOR_CONSUMER, "x", None, ADJUDICATOR, at(40)),
        ValidationFailed, "remedy is required when ruling for_consumer"),
    "a ruled remedy of 0 cents": (
        lambda: in_adjudication().rule(Ruling.FOR_CONSUMER, "x",
                                       Remedy(RemedyType.COMPENSATION, 0), ADJUDICATOR, at(40)),
        ValidationFailed, "remedy.amount_cents must be positive"),
    "an appeal of a ruling for the merchant": (
        lambda: judged(Ruling.FOR_MERCHANT).file_appeal("x", (), OWNER, at(50), Policy()),
        InvalidTransition, "only a ruling for the consumer can be appealed"),
    "a second appeal": (
        appealed_twice, InvalidTransition, "a ruling can be appealed once"),
    "an appeal without statement": (
        lambda: judged().file_appeal("\n", (), OWNER, at(50), Policy()), ValidationFailed,
        "statement is required"),
    "an appeal 7 days after the ruling": (
        lambda: judged().file_appeal("x", (), OWNER, at(40) + timedelta(days=7), Policy()),
        AppealWindowClosed, "the appeal window closed at 2026-11-09T08:40:00Z"),
    "an appeal decision without rationale": (
        lambda: appealed().decide_appeal(AppealDecision.UPHELD, "", SUPERVISOR, at(60)),
        ValidationFailed, "rationale is required"),
    "a settlement without rationale": (
        lambda: opened(OrderKind.WORRY_FREE).settle(100, " ", TRIAGE, at(5)),
        ValidationFailed, "rationale is required"),
    "a settlement of 0 cents": (
        lambda: opened(OrderKind.WORRY_FREE).settle(0, "standard", TRIAGE, at(5)),
        ValidationFailed, "amount_cents must be greater than 0"),
    "a settlement above the order amount": (
        lambda: opened(OrderKind.WORRY_FREE).settle(10_001, "standard", TRIAGE, at(5)),
        ValidationFailed, "amount_cents 10001 exceeds the order's amount 10000"),
    # violations
    "a consumer recording a violation": (
        lambda: Violation.record(violation_id="v-1", store_id="s-1", work_order_id="wo-1",
                                 kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL,
                                 rationale="x", evidence_ids=(), actor=CONSUMER, now=T0,
                                 policy=Policy()),
        Forbidden, "only verifiers and adjudicators record violations"),
    "an agent appealing a violation": (
        lambda: recorded().appeal("x", AGENT, at(1), Policy()), Forbidden,
        "only the store owner may appeal a violation"),
    "a violation appealed twice": (
        lambda: under_appeal_violation().appeal("x", OWNER, at(2), Policy()),
        InvalidTransition,
        "a violation can be appealed once, while in force (it is under_appeal)"),
    "an adjudicator deciding a violation appeal": (
        lambda: under_appeal_violation().decide(ViolationDecision.UPHELD, "x", ADJUDICATOR,
                                                at(2), "le-2"),
        Forbidden, "only a supervisor decides violation appeals"),
    "a decision on a violation not under appeal": (
        lambda: recorded().decide(ViolationDecision.UPHELD, "x", SUPERVISOR, at(2), "le-2"),
        InvalidTransition, "the violation is not under appeal (it is in_force)"),
}


@pytest.mark.parametrize("case", list(REFUSALS))
def test_a_refusal_says_what_was_refused(case: str) -> None:
    call, error, detail = REFUSALS[case]
    with pytest.raises(error) as info:
        call()
    assert info.value.detail == detail
    assert str(info.value) == detail


def test_a_naive_datetime_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match=r"^naive datetime: every instant in collabdesk is "
                                         r"timezone-aware$"):
        utc_iso(datetime(2026, 11, 28, 8, 0))


def test_a_key_still_in_use_asks_to_retry_after_1_second_unless_told() -> None:
    busy = IdempotencyKeyInUse("the first request is still running")
    assert (busy.code, busy.detail, busy.retry_after) == (
        "idempotency_key_in_use", "the first request is still running", 1)
    assert IdempotencyKeyInUse("later", retry_after=5).retry_after == 5


def test_the_all_chain_keeps_the_bare_id_and_the_platform_chain_a_suffixed_one() -> None:
    assert chain_key("wo-1", "all") == "wo-1"
    assert chain_key("wo-1", "platform") == "wo-1#platform"


def test_tab_line_feed_carriage_return_and_form_feed_are_plain_text() -> None:
    assert is_plain_text("a\tb\nc\rd\fe 中文") is True
    assert is_plain_text("a\x0bb") is False
    assert is_plain_text("a\x00b") is False
    assert is_plain_text("a\x7fb") is False
