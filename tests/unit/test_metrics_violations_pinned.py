"""Store metrics (rules.md §8) on a hand-built set of facts, and what a violation keeps
through its appeal (§9), with every expected figure written out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from collabdesk.domain.errors import AppealWindowClosed, Forbidden, ValidationFailed
from collabdesk.domain.metrics import (
    StoreMetrics,
    Window,
    WorkOrderFacts,
    counts,
)
from collabdesk.domain.policy import Policy
from collabdesk.domain.states import Role, State
from collabdesk.domain.values import Actor, StorePlatform
from collabdesk.domain.violations import (
    LedgerEntry,
    Severity,
    Violation,
    ViolationDecision,
    ViolationKind,
    ViolationState,
)
from tests.actors import OWNER, SUPERVISOR, VERIFIER
from tests.builders import figures

# ---- metrics ---------------------------------------------------------------------------------

WINDOW = Window.ending_after(date(2026, 11, 26), 30)  # [2026-10-28, 2026-11-27) UTC
OPENED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def fact(state: State, *, replied_after: timedelta | None, escalated: bool = False,
         timed_out: bool = False, judged_at: datetime | None = None,
         ruled_for_consumer: bool = False, worry_free: bool = False,
         created_at: datetime = OPENED) -> WorkOrderFacts:
    return WorkOrderFacts(
        state=state, worry_free=worry_free, created_at=created_at,
        due_at=created_at + timedelta(hours=24),
        replied_at=None if replied_after is None else created_at + replied_after,
        timed_out=timed_out, escalated=escalated, judged_at=judged_at,
        ruled_for_consumer=ruled_for_consumer)


# Four work orders opened in the window, one agreed (resolved):
FOUR = [
    fact(State.RESOLVED, replied_after=timedelta(hours=1)),
    fact(State.IN_ADJUDICATION, replied_after=timedelta(hours=2), escalated=True),
    fact(State.JUDGED, replied_after=timedelta(hours=23, minutes=59), escalated=True,
         judged_at=OPENED + timedelta(days=3), ruled_for_consumer=True),
    fact(State.IN_ADJUDICATION, replied_after=None, escalated=True, timed_out=True),
]


def test_the_figures_of_four_work_orders_one_agreed() -> None:
    assert figures(StorePlatform.TMALL, WINDOW, 8, FOUR) == StoreMetrics(
        metric="platform_dispute_rate",
        dispute_count=1,
        paid_orders=8,
        dispute_rate=0.125,
        work_orders=4,
        replied_on_time=3,
        on_time_reply_rate=0.75,
        timeouts=1,
        median_reply_seconds=7200.0,
        agreement_rate=0.25,
        intervention_rate=0.75,
    )


def test_the_agreement_rate_is_the_share_of_resolved_work_orders() -> None:
    assert figures(StorePlatform.TAOBAO, WINDOW, 8, FOUR).agreement_rate == 0.25


def test_withdrawn_dismissed_settled_and_worry_free_work_orders_add_nothing() -> None:
    never = [
        fact(State.WITHDRAWN, replied_after=timedelta(hours=1), escalated=True,
             judged_at=OPENED, ruled_for_consumer=True),
        fact(State.DISMISSED, replied_after=timedelta(hours=1)),
        fact(State.SETTLED, replied_after=None),
        fact(State.WORRY_FREE, replied_after=None),
        fact(State.RESOLVED, replied_after=timedelta(hours=1), worry_free=True),
    ]
    assert figures(StorePlatform.TMALL, WINDOW, 8, FOUR + never) == figures(
        StorePlatform.TMALL, WINDOW, 8, FOUR)
    assert [counts(f) for f in never] == [False, False, False, False, False]


@pytest.mark.parametrize("state", [State.AWAITING_MERCHANT, State.AWAITING_CONSUMER,
                                   State.AWAITING_VERIFICATION, State.IN_ADJUDICATION,
                                   State.UNDER_APPEAL, State.RESOLVED, State.JUDGED])
def test_a_standard_work_order_in_any_other_state_counts(state: State) -> None:
    assert counts(fact(state, replied_after=None)) is True


def test_a_reply_exactly_at_due_at_is_not_on_time_a_second_before_is() -> None:
    late = fact(State.IN_ADJUDICATION, replied_after=timedelta(hours=24))
    in_time = fact(State.IN_ADJUDICATION, replied_after=timedelta(hours=24) - timedelta(
        seconds=1))
    m = figures(StorePlatform.TMALL, WINDOW, 1, [late, in_time])
    assert (m.replied_on_time, m.on_time_reply_rate) == (1, 0.5)


def test_a_work_order_opened_before_the_window_adds_only_its_ruling() -> None:
    before = fact(State.JUDGED, replied_after=timedelta(hours=1), escalated=True,
                  judged_at=OPENED, ruled_for_consumer=True,
                  created_at=datetime(2026, 10, 27, 23, 59, 59, tzinfo=UTC))
    m = figures(StorePlatform.TAOBAO, WINDOW, 4, [before])
    assert (m.dispute_count, m.dispute_rate, m.work_orders, m.median_reply_seconds) == (
        1, 0.25, 0, None)


def test_a_work_order_opened_at_the_first_instant_of_the_window_counts() -> None:
    first = fact(State.RESOLVED, replied_after=timedelta(minutes=30),
                 created_at=datetime(2026, 10, 28, 0, 0, tzinfo=UTC))
    m = figures(StorePlatform.TAOBAO, WINDOW, 4, [first])
    assert (m.work_orders, m.median_reply_seconds, m.agreement_rate) == (1, 1800.0, 1.0)


def test_a_30_day_window_for_26_november_is_28_october_to_27_november() -> None:
    assert Window(datetime(2026, 10, 28, tzinfo=UTC),
                  datetime(2026, 11, 27, tzinfo=UTC)) == WINDOW


# ---- violations ------------------------------------------------------------------------------

RECORDED = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def recorded(severity: Severity = Severity.GENERAL) -> Violation:
    return Violation.record(
        violation_id="v-1", store_id="s-1", work_order_id="wo-1",
        kind=ViolationKind.FALSE_EVIDENCE, severity=severity, rationale="edited screenshot",
        evidence_ids=("ev-1",), actor=VERIFIER, now=RECORDED, policy=Policy())


def test_a_recorded_violation_keeps_what_was_found_and_by_whom() -> None:
    v = recorded(Severity.SERIOUS)
    assert (v.id, v.store_id, v.work_order_id, v.kind, v.severity, v.points, v.rationale,
            v.evidence_ids, v.state, v.recorded_at, v.recorded_by) == (
        "v-1", "s-1", "wo-1", ViolationKind.FALSE_EVIDENCE, Severity.SERIOUS, 48,
        "edited screenshot", ("ev-1",), ViolationState.IN_FORCE, RECORDED, "verifier-1")
    assert (v.appeal_statement, v.appealed_at, v.decision, v.decision_rationale,
            v.decided_at, v.decided_by, v.version) == (None, None, None, None, None, None, 0)
    assert v.ledger_entry("le-1") == LedgerEntry(
        "le-1", "s-1", 2026, "v-1", 48, "serious violation: false_evidence", RECORDED)


def test_the_appeal_statement_is_stored_on_the_violation() -> None:
    v = recorded()
    v.appeal("the screenshot is genuine", OWNER, RECORDED + timedelta(days=1), Policy())
    assert (v.state, v.appeal_statement, v.appealed_at) == (
        ViolationState.UNDER_APPEAL, "the screenshot is genuine", RECORDED + timedelta(days=1))


def test_an_upheld_decision_stores_its_rationale_who_and_when() -> None:
    v = recorded()
    v.appeal("genuine", OWNER, RECORDED + timedelta(days=1), Policy())
    assert v.decide(ViolationDecision.UPHELD, "the pixels were edited", SUPERVISOR,
                    RECORDED + timedelta(days=2), "le-2") is None
    assert (v.state, v.decision, v.decision_rationale, v.decided_at, v.decided_by) == (
        ViolationState.IN_FORCE, ViolationDecision.UPHELD, "the pixels were edited",
        RECORDED + timedelta(days=2), "supervisor-1")
    assert v.appeal_statement == "genuine"


def test_a_revoked_decision_stores_its_rationale_and_refunds_the_points() -> None:
    v = recorded()
    v.appeal("genuine", OWNER, RECORDED + timedelta(days=1), Policy())
    refund = v.decide(ViolationDecision.REVOKED, "the original file matches", SUPERVISOR,
                      RECORDED + timedelta(days=2), "le-2")
    assert refund == LedgerEntry("le-2", "s-1", 2026, "v-1", -12,
                                 "violation v-1 revoked on appeal", RECORDED + timedelta(days=2))
    assert (v.state, v.decision, v.decision_rationale, v.decided_by) == (
        ViolationState.REVOKED, ViolationDecision.REVOKED, "the original file matches",
        "supervisor-1")


def test_a_violation_appeal_is_refused_from_exactly_7_days_after_recording() -> None:
    v = recorded()
    with pytest.raises(AppealWindowClosed) as info:
        v.appeal("genuine", OWNER, RECORDED + timedelta(days=7), Policy())
    assert info.value.detail == "the appeal window closed at 2026-06-08T09:00:00Z"
    v.appeal("genuine", OWNER, RECORDED + timedelta(days=7) - timedelta(microseconds=1),
             Policy())
    assert v.state is ViolationState.UNDER_APPEAL


@pytest.mark.parametrize("role", [Role.MERCHANT_AGENT, Role.CONSUMER, Role.SUPERVISOR])
def test_only_the_store_owner_appeals_a_violation(role: Role) -> None:
    with pytest.raises(Forbidden):
        recorded().appeal("genuine", Actor("x-1", role, store_id="s-1"), RECORDED, Policy())


def test_the_violation_texts_are_required() -> None:
    with pytest.raises(ValidationFailed) as info:
        Violation.record(
            violation_id="v-1", store_id="s-1", work_order_id="wo-1",
            kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL, rationale=" ",
            evidence_ids=(), actor=VERIFIER, now=RECORDED, policy=Policy())
    assert info.value.detail == "rationale is required"
    v = recorded()
    with pytest.raises(ValidationFailed) as info:
        v.appeal("\t", OWNER, RECORDED, Policy())
    assert info.value.detail == "statement is required"
    v.appeal("genuine", OWNER, RECORDED, Policy())
    with pytest.raises(ValidationFailed) as info:
        v.decide(ViolationDecision.UPHELD, "", SUPERVISOR, RECORDED, "le-2")
    assert info.value.detail == "rationale is required"


def test_the_violation_names_are_the_api_contracts() -> None:
    assert [str(s) for s in Severity] == ["general", "serious"]
    assert [str(k) for k in ViolationKind] == ["false_evidence"]
    assert [str(s) for s in ViolationState] == ["in_force", "under_appeal", "revoked"]
    assert [str(d) for d in ViolationDecision] == ["upheld", "revoked"]


def test_a_7_day_window_for_26_november_starts_on_20_november() -> None:
    assert Window.ending_after(date(2026, 11, 26), 7) == Window(
        datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 11, 27, tzinfo=UTC))
