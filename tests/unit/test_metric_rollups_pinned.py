"""The daily metric rollups (rules.md §8, domain/metrics.py): what one work order adds to
its store's counters, how a change moves them, and the figures computed from summed
counters and reply minutes, with every expected value written out."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from dataclasses import fields
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from collabdesk.domain.metrics import (
    COUNTERS,
    Counters,
    Rollup,
    StoreMetrics,
    WorkOrderFacts,
    compute,
    contribution,
    delta,
    facts_of,
    median_reply_seconds,
    paid_order,
    reply_minute,
    utc_day,
)
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import State
from collabdesk.domain.values import AppealDecision, ContactOutcome, Ruling, StorePlatform
from tests.actors import ADJUDICATOR, CONSUMER, OWNER, SUPERVISOR, T0

from .test_transitions import NOW, POLICY, REFUND, log_contact, open_work_order, reply_with

OPENED = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
NOV_10, NOV_11, NOV_12 = date(2026, 11, 10), date(2026, 11, 11), date(2026, 11, 12)


def fact(state: State = State.IN_ADJUDICATION, *, created_at: datetime = OPENED,
         replied_after: timedelta | None = None, timed_out: bool = False,
         escalated: bool = False, judged_at: datetime | None = None,
         ruled_for_consumer: bool = False, overturned: bool = False,
         worry_free: bool = False) -> WorkOrderFacts:
    return WorkOrderFacts(
        state=state, worry_free=worry_free, created_at=created_at,
        due_at=None if worry_free else created_at + timedelta(hours=24),
        replied_at=None if replied_after is None else created_at + replied_after,
        timed_out=timed_out, escalated=escalated, judged_at=judged_at,
        ruled_for_consumer=ruled_for_consumer, overturned=overturned)


# ---- facts ---------------------------------------------------------------------------------


def test_the_facts_of_a_ruling_overturned_on_appeal() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    reply_with(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    wo.rule(Ruling.FOR_CONSUMER, "damaged", REFUND, ADJUDICATOR, NOW)
    wo.file_appeal("another parcel", (), OWNER, NOW, POLICY)
    wo.decide_appeal(AppealDecision.OVERTURNED, "agreed", SUPERVISOR, NOW)
    assert facts_of(wo) == WorkOrderFacts(
        state=State.JUDGED, worry_free=False, created_at=T0,
        due_at=datetime(2026, 11, 3, 8, 0, tzinfo=UTC),
        replied_at=T0 + timedelta(minutes=20), timed_out=False, escalated=True,
        judged_at=T0 + timedelta(hours=1), ruled_for_consumer=True, overturned=True)
    assert facts_of(wo).counts_as_dispute is False


def test_the_facts_of_an_upheld_ruling_and_of_a_ruling_for_the_merchant() -> None:
    upheld = open_work_order()
    log_contact(upheld, ContactOutcome.REACHED)
    reply_with(upheld, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    upheld.rule(Ruling.FOR_CONSUMER, "damaged", REFUND, ADJUDICATOR, NOW)
    upheld.file_appeal("another parcel", (), OWNER, NOW, POLICY)
    upheld.decide_appeal(AppealDecision.UPHELD, "photos match", SUPERVISOR, NOW)
    f = facts_of(upheld)
    assert (f.ruled_for_consumer, f.overturned, f.counts_as_dispute) == (True, False, True)
    merchant = open_work_order()
    log_contact(merchant, ContactOutcome.REACHED)
    reply_with(merchant, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    merchant.rule(Ruling.FOR_MERCHANT, "not damaged", None, ADJUDICATOR, NOW)
    f = facts_of(merchant)
    assert (f.ruled_for_consumer, f.overturned, f.counts_as_dispute) == (False, False, False)


def test_the_facts_of_a_new_work_order_and_of_a_withdrawn_one() -> None:
    wo = open_work_order()
    assert facts_of(wo) == WorkOrderFacts(
        state=State.AWAITING_MERCHANT, worry_free=False, created_at=T0,
        due_at=datetime(2026, 11, 3, 8, 0, tzinfo=UTC), replied_at=None, timed_out=False,
        escalated=False, judged_at=None, ruled_for_consumer=False, overturned=False)
    wo.withdraw(CONSUMER, NOW)
    assert facts_of(wo).state is State.WITHDRAWN


# ---- contributions -----------------------------------------------------------------------


def test_a_work_order_adds_to_its_opening_day_and_its_ruling_to_the_ruling_day() -> None:
    f = fact(State.UNDER_APPEAL, replied_after=timedelta(seconds=90), escalated=True,
             judged_at=datetime(2026, 11, 12, 23, 59, 59, tzinfo=UTC),
             ruled_for_consumer=True)
    assert contribution("s-1", f) == Rollup(
        {("s-1", NOV_10): Counters(opened=1, replied=1, replied_on_time=1, interventions=1),
         ("s-1", NOV_12): Counters(disputes=1)},
        {("s-1", NOV_10, 1): 1})


def test_an_overturned_ruling_adds_a_dispute_and_an_overturned_on_the_ruling_day() -> None:
    f = fact(State.JUDGED, escalated=True, timed_out=True,
             judged_at=datetime(2026, 11, 13, 0, 0, tzinfo=UTC), ruled_for_consumer=True,
             overturned=True)
    assert contribution("s-1", f) == Rollup(
        {("s-1", NOV_10): Counters(opened=1, timeouts=1, interventions=1),
         ("s-1", date(2026, 11, 13)): Counters(disputes=1, overturned=1)})


def test_a_ruling_on_the_opening_day_adds_to_the_same_row() -> None:
    f = fact(State.JUDGED, replied_after=timedelta(hours=2), escalated=True,
             judged_at=OPENED + timedelta(hours=5), ruled_for_consumer=True)
    assert contribution("s-1", f).daily == {("s-1", NOV_10): Counters(
        opened=1, replied=1, replied_on_time=1, interventions=1, disputes=1)}


def test_a_ruling_for_the_merchant_adds_no_dispute() -> None:
    f = fact(State.JUDGED, escalated=True, judged_at=OPENED + timedelta(days=1))
    assert contribution("s-1", f).daily == {
        ("s-1", NOV_10): Counters(opened=1, interventions=1)}


def test_a_resolved_work_order_is_an_agreement_and_a_reply_at_due_at_is_late() -> None:
    agreed = fact(State.RESOLVED, replied_after=timedelta(hours=24) - timedelta(seconds=1))
    late = fact(State.IN_ADJUDICATION, replied_after=timedelta(hours=24), escalated=True)
    assert contribution("s-1", agreed) == Rollup(
        {("s-1", NOV_10): Counters(opened=1, replied=1, replied_on_time=1, agreements=1)},
        {("s-1", NOV_10, 1439): 1})
    assert contribution("s-1", late) == Rollup(
        {("s-1", NOV_10): Counters(opened=1, replied=1, interventions=1)},
        {("s-1", NOV_10, 1440): 1})


@pytest.mark.parametrize(("seconds", "minute"), [
    (0, 0), (59.999999, 0), (60, 1), (119, 1), (120, 2), (3599, 59), (86399, 1439)])
def test_the_reply_minute_is_rounded_down(seconds: float, minute: int) -> None:
    assert reply_minute(OPENED, OPENED + timedelta(seconds=seconds)) == minute


def test_days_are_utc_days() -> None:
    beijing = timezone(timedelta(hours=8))
    last_second = datetime(2026, 11, 10, 23, 59, 59, tzinfo=UTC)
    assert set(contribution("s-1", fact(created_at=last_second)).daily) == {("s-1", NOV_10)}
    assert set(contribution("s-1", fact(created_at=last_second + timedelta(seconds=1))
                            ).daily) == {("s-1", NOV_11)}
    # 07:00 in Beijing on the 11th is 23:00 UTC on the 10th
    assert paid_order("s-1", datetime(2026, 11, 11, 7, 0, tzinfo=beijing)) == Rollup(
        {("s-1", NOV_10): Counters(paid_orders=1)})


@pytest.fixture
def shanghai_local_time() -> Iterator[None]:
    """The process's local time zone set to UTC+8, as on a server in China."""
    before = os.environ.get("TZ")
    os.environ["TZ"] = "Asia/Shanghai"
    time.tzset()
    try:
        yield
    finally:
        if before is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = before
        time.tzset()


@pytest.mark.usefixtures("shanghai_local_time")
def test_days_are_utc_days_whatever_the_servers_time_zone() -> None:
    assert utc_day(datetime(2026, 11, 10, 20, 0, tzinfo=UTC)) == NOV_10
    assert utc_day(datetime(2026, 11, 11, 3, 0, tzinfo=timezone(timedelta(hours=8)))) == NOV_10


@pytest.mark.parametrize("state", [State.WITHDRAWN, State.DISMISSED, State.SETTLED,
                                   State.WORRY_FREE])
def test_withdrawn_dismissed_settled_and_worry_free_work_orders_add_nothing(
        state: State) -> None:
    f = fact(state, replied_after=timedelta(hours=1), escalated=True,
             judged_at=OPENED, ruled_for_consumer=True)
    assert contribution("s-1", f) == Rollup()
    assert not contribution("s-1", f)


def test_a_work_order_on_a_worry_free_order_adds_nothing_whatever_its_state() -> None:
    f = fact(State.RESOLVED, replied_after=timedelta(hours=1), worry_free=True)
    assert contribution("s-1", f) == Rollup()


# ---- deltas --------------------------------------------------------------------------------


def test_a_new_work_order_adds_its_whole_contribution() -> None:
    assert delta("s-1", None, fact(State.AWAITING_MERCHANT)) == Rollup(
        {("s-1", NOV_10): Counters(opened=1)})


def test_a_withdrawal_takes_back_everything_the_work_order_added() -> None:
    before = fact(State.UNDER_APPEAL, replied_after=timedelta(minutes=30), escalated=True,
                  judged_at=OPENED + timedelta(days=2), ruled_for_consumer=True)
    after = fact(State.WITHDRAWN, replied_after=timedelta(minutes=30), escalated=True,
                 judged_at=OPENED + timedelta(days=2), ruled_for_consumer=True)
    assert delta("s-1", before, after) == Rollup(
        {("s-1", NOV_10): Counters(opened=-1, replied=-1, replied_on_time=-1,
                                   interventions=-1),
         ("s-1", NOV_12): Counters(disputes=-1)},
        {("s-1", NOV_10, 30): -1})


def test_an_acceptance_adds_one_agreement_on_the_opening_day() -> None:
    before = fact(State.AWAITING_CONSUMER, replied_after=timedelta(minutes=5))
    after = fact(State.RESOLVED, replied_after=timedelta(minutes=5))
    assert delta("s-1", before, after) == Rollup({("s-1", NOV_10): Counters(agreements=1)})


def test_a_reply_adds_the_reply_and_its_minute() -> None:
    before = fact(State.AWAITING_MERCHANT)
    after = fact(State.AWAITING_VERIFICATION, replied_after=timedelta(minutes=61, seconds=59))
    assert delta("s-1", before, after) == Rollup(
        {("s-1", NOV_10): Counters(replied=1, replied_on_time=1)}, {("s-1", NOV_10, 61): 1})


def test_an_overturn_adds_one_overturned_on_the_ruling_day() -> None:
    judged = OPENED + timedelta(days=1)
    before = fact(State.UNDER_APPEAL, escalated=True, judged_at=judged,
                  ruled_for_consumer=True)
    after = fact(State.JUDGED, escalated=True, judged_at=judged, ruled_for_consumer=True,
                 overturned=True)
    assert delta("s-1", before, after) == Rollup({("s-1", NOV_11): Counters(overturned=1)})


def test_a_change_the_metrics_do_not_see_changes_nothing() -> None:
    f = fact(State.IN_ADJUDICATION, escalated=True)
    assert delta("s-1", f, f) == Rollup()
    assert not delta("s-1", f, f)
    assert not delta("s-1", fact(State.WITHDRAWN), fact(State.WITHDRAWN, escalated=True))


def test_rollups_add_up_and_drop_what_comes_to_zero() -> None:
    total = Rollup()
    total.add(Rollup({("s-1", NOV_10): Counters(opened=2, paid_orders=1)},
                     {("s-1", NOV_10, 3): 2}))
    total.add(Rollup({("s-1", NOV_10): Counters(opened=1), ("s-2", NOV_10): Counters(
        paid_orders=1)}, {("s-1", NOV_10, 3): -1}))
    assert total == Rollup({("s-1", NOV_10): Counters(opened=3, paid_orders=1),
                            ("s-2", NOV_10): Counters(paid_orders=1)},
                           {("s-1", NOV_10, 3): 1})
    total.add(Rollup({("s-1", NOV_10): Counters(opened=3, paid_orders=1)},
                     {("s-1", NOV_10, 3): 1}), sign=-1)
    assert total == Rollup({("s-2", NOV_10): Counters(paid_orders=1)})


def test_adding_zeros_to_nothing_leaves_nothing() -> None:
    nothing = Rollup().add(Rollup({("s-1", NOV_10): Counters()}, {("s-1", NOV_10, 3): 0}))
    assert nothing == Rollup()
    assert nothing.add(Rollup({("s-1", NOV_10): Counters()}), sign=-1) == Rollup()


def test_the_counters_are_the_columns_of_store_daily_in_order() -> None:
    assert COUNTERS == ("opened", "replied", "replied_on_time", "timeouts", "agreements",
                        "interventions", "disputes", "overturned", "paid_orders")
    assert tuple(f.name for f in fields(Counters)) == COUNTERS
    assert Counters(*range(1, 10)).values() == (1, 2, 3, 4, 5, 6, 7, 8, 9)
    assert Counters() == Counters(0, 0, 0, 0, 0, 0, 0, 0, 0)
    assert Counters(*range(1, 10)) + Counters(*range(10, 100, 10)) == Counters(
        11, 22, 33, 44, 55, 66, 77, 88, 99)
    assert -Counters(1, 0, 2) == Counters(-1, 0, -2)
    assert Counters(disputes=5, overturned=2).dispute_count == 3


def test_a_window_sums_the_days_from_first_to_before_end() -> None:
    rollup = Rollup({("s-1", NOV_10): Counters(opened=1), ("s-1", NOV_11): Counters(opened=2),
                     ("s-1", NOV_12): Counters(opened=4), ("s-2", NOV_11): Counters(opened=8)},
                    {("s-1", NOV_10, 5): 1, ("s-1", NOV_11, 5): 2, ("s-1", NOV_11, 7): 1,
                     ("s-1", NOV_12, 9): 1})
    assert rollup.window("s-1", NOV_10, NOV_12) == (Counters(opened=3), {5: 3, 7: 1})


# ---- figures from rollups ----------------------------------------------------------------


def test_the_figures_of_summed_counters() -> None:
    totals = Counters(opened=8, replied=6, replied_on_time=5, timeouts=2, agreements=2,
                      interventions=4, disputes=3, overturned=1, paid_orders=40)
    assert compute(StorePlatform.TAOBAO, totals, {10: 3, 20: 2, 600: 1}) == StoreMetrics(
        metric="dispute_refund_rate", dispute_count=2, paid_orders=40, dispute_rate=0.05,
        work_orders=8, replied_on_time=5, on_time_reply_rate=0.625, timeouts=2,
        median_reply_seconds=900.0, agreement_rate=0.25, intervention_rate=0.5)


def test_nothing_opened_and_nothing_paid_gives_null_rates() -> None:
    assert compute(StorePlatform.TMALL, Counters(disputes=1), {}) == StoreMetrics(
        metric="platform_dispute_rate", dispute_count=1, paid_orders=0, dispute_rate=None,
        work_orders=0, replied_on_time=0, on_time_reply_rate=None, timeouts=0,
        median_reply_seconds=None, agreement_rate=None, intervention_rate=None)


@pytest.mark.parametrize(("minutes", "median"), [
    ({}, None),
    ({0: 1}, 0.0),
    ({7: 1}, 420.0),
    ({5: 3}, 300.0),
    ({1: 1, 2: 1}, 90.0),  # even count: the mean of the two middle values
    ({1: 1, 3: 1, 4: 1, 100: 1}, 210.0),
    ({0: 1, 10: 2}, 600.0),
    ({0: 2, 10: 2}, 300.0),
    ({0: 2, 10: 1}, 0.0),
    ({100: 1, 1: 2, 50: 1}, 1530.0),  # in minute order, not insertion order
    ({3: 0, 4: 1}, 240.0),  # an emptied minute is no value
])
def test_the_median_reply_time_is_exact_to_the_minute(minutes: dict[int, int],
                                                       median: float | None) -> None:
    assert median_reply_seconds(minutes) == median
