"""API tests over HTTP: violations for forged evidence, their appeal and decision, the
points ledger by year, and the store metrics (api.md, rules.md §8-9)."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from collabdesk.adapters.clock import FixedClock
from collabdesk.services.context import ServiceContext
from tests.e2e.http_world import (
    JSON,
    HttpWorld,
    assert_problem,
    build_world,
    ok,
)

HOUR = 3600
DAY = 24 * HOUR
METRICS_FIELDS = {
    "store_id", "platform", "metric", "window_days", "window_start", "window_end",
    "dispute_count", "paid_orders", "dispute_rate", "work_orders", "replied_on_time",
    "on_time_reply_rate", "timeouts", "median_reply_seconds", "agreement_rate",
    "intervention_rate",
}


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)


def record(world: HttpWorld, wo_id: str, who: str = "adjudicator", **changes: Any) -> Response:
    body: JSON = {"store_id": "s-tmall", "work_order_id": wo_id, "kind": "false_evidence",
                  "severity": "general", "rationale": "the chat screenshot was edited"}
    body.update(changes)
    return world.post(who, "/v1/violations", {k: v for k, v in body.items() if v is not None})


def appeal(world: HttpWorld, violation_id: str, who: str = "owner") -> Response:
    return world.post(who, f"/v1/violations/{violation_id}/appeal",
                      {"statement": "the original chat export is attached"})


def decide(world: HttpWorld, violation_id: str, decision: str,
           who: str = "supervisor") -> Response:
    return world.post(who, f"/v1/violations/{violation_id}/decision",
                      {"decision": decision, "rationale": "compared with the export"})


def points(world: HttpWorld, who: str = "owner", store_id: str = "s-tmall",
           **params: Any) -> Response:
    return world.get(who, f"/v1/stores/{store_id}/points", params=params)


# ---- violations ---------------------------------------------------------------------------

def test_verifier_or_adjudicator_records_a_violation_worth_its_points(
        world: HttpWorld) -> None:
    wo = world.open()
    proof = world.evidence("agent", b"suspicious screenshot")
    ok(world.contact(wo["id"], evidence_ids=[proof]), 201)  # the store cites it
    ok(world.reply(wo["id"], "unresolved_no_agreement", statement="no deal"))
    for who, severity, expected in (("adjudicator", "general", 12),
                                    ("verifier", "serious", 48)):
        violation = ok(record(world, wo["id"], who, severity=severity,
                              evidence_ids=[proof]), 201)
        assert violation["id"]
        assert violation["store_id"] == "s-tmall"
        assert violation["work_order_id"] == wo["id"]
        assert violation["severity"] == severity
        assert violation["points"] == expected
        assert violation["state"] == "in_force"
        assert violation["recorded_at"] == "2026-11-02T08:00:00Z"
        events = ok(world.get("owner", f"/v1/work-orders/{wo['id']}/events"))["items"]
        assert events[-1]["type"] == "violation_recorded"
        got = ok(world.get("owner", f"/v1/violations/{violation['id']}"))
        assert (got["id"], got["state"]) == (violation["id"], "in_force")


def test_only_verifiers_and_adjudicators_record_violations(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    for who in ("supervisor", "triage", "owner", "consumer"):
        assert_problem(record(world, wo["id"], who), 403, "forbidden", who)


def test_violation_on_an_unknown_work_order_is_not_found(world: HttpWorld) -> None:
    assert_problem(record(world, "wo_missing"), 404, "not_found")


def test_malformed_violation_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    for changes in ({"store_id": "s-taobao"}, {"kind": "late_shipping"},
                    {"severity": "minor"}, {"rationale": None},
                    {"evidence_ids": ["ev_missing"]}):
        assert_problem(record(world, wo["id"], **changes), 422, "validation_error", changes)
    assert ok(points(world, year=2026))["total"] == 0


def test_store_owner_appeals_a_violation(world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    got = ok(appeal(world, violation["id"]))
    assert got["state"] == "under_appeal"
    assert got["id"] == violation["id"]


def test_violation_appeal_after_seven_days_is_refused_with_appeal_window_closed(
        world: HttpWorld, clock: FixedClock) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    clock.advance(7 * DAY)
    assert_problem(appeal(world, violation["id"]), 409, "appeal_window_closed")


def test_violation_appeal_just_before_seven_days_is_accepted(
        world: HttpWorld, clock: FixedClock) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    clock.advance(7 * DAY - 1)
    assert ok(appeal(world, violation["id"]))["state"] == "under_appeal"


def test_a_violation_is_appealed_once(world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    ok(appeal(world, violation["id"]))
    assert_problem(appeal(world, violation["id"]), 409, "invalid_transition")


def test_only_the_store_owner_appeals_a_violation(world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    assert_problem(appeal(world, violation["id"], "agent"), 403, "forbidden")
    assert_problem(appeal(world, violation["id"], "other_owner"), 404, "not_found")


def test_violation_appeal_without_a_statement_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    response = world.post("owner", f"/v1/violations/{violation['id']}/appeal", {})
    assert_problem(response, 422, "validation_error")


def test_supervisor_decides_a_violation_appeal(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    for decision, state in (("upheld", "in_force"), ("revoked", "revoked")):
        violation = ok(record(world, wo["id"]), 201)
        ok(appeal(world, violation["id"]))
        got = ok(decide(world, violation["id"], decision))
        assert (got["id"], got["state"]) == (violation["id"], state)


def test_only_a_supervisor_decides_a_violation_appeal(world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    ok(appeal(world, violation["id"]))
    assert_problem(decide(world, violation["id"], "revoked", "adjudicator"), 403,
                   "forbidden")


def test_deciding_a_violation_not_under_appeal_is_an_invalid_transition(
        world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    assert_problem(decide(world, violation["id"], "upheld"), 409, "invalid_transition")


def test_malformed_violation_decision_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    ok(appeal(world, violation["id"]))
    assert_problem(decide(world, violation["id"], "overturned"), 422, "validation_error")


def test_unknown_violation_is_not_found(world: HttpWorld) -> None:
    assert_problem(appeal(world, "vio_missing"), 404, "not_found")
    assert_problem(decide(world, "vio_missing", "upheld"), 404, "not_found")


# ---- points ledger ------------------------------------------------------------------------

def test_points_ledger_is_append_only_and_a_revocation_gives_points_back(
        world: HttpWorld) -> None:
    wo = world.in_adjudication()
    general = ok(record(world, wo["id"]), 201)
    ok(record(world, wo["id"], severity="serious"), 201)
    statement = ok(points(world, year=2026))
    assert (statement["store_id"], statement["year"], statement["total"]) == (
        "s-tmall", 2026, 60)
    assert sorted(e["points"] for e in statement["entries"]) == [12, 48]

    ok(appeal(world, general["id"]))
    ok(decide(world, general["id"], "revoked"))
    statement = ok(points(world, year=2026))
    assert statement["total"] == 48
    assert sorted(e["points"] for e in statement["entries"]) == [-12, 12, 48]
    assert ok(points(world, "triage", year=2026))["total"] == 48


def test_upheld_violation_keeps_its_points(world: HttpWorld) -> None:
    violation = ok(record(world, world.in_adjudication()["id"]), 201)
    ok(appeal(world, violation["id"]))
    ok(decide(world, violation["id"], "upheld"))
    assert ok(points(world, year=2026))["total"] == 12


def test_points_are_counted_per_calendar_year(world: HttpWorld, clock: FixedClock) -> None:
    ok(record(world, world.in_adjudication()["id"]), 201)
    clock.advance(60 * DAY)  # 2027-01-01
    ok(record(world, world.in_adjudication()["id"], severity="serious"), 201)
    assert ok(points(world, year=2026))["total"] == 12
    this_year = ok(points(world, year=2027))
    assert (this_year["year"], this_year["total"]) == (2027, 48)
    assert ok(points(world))["year"] == 2027  # the year defaults to the current one
    empty = ok(points(world, year=2025))
    assert (empty["total"], empty["entries"]) == (0, [])


def test_points_are_shown_to_the_store_and_the_platform_only(world: HttpWorld) -> None:
    assert ok(points(world, "agent", year=2026))["total"] == 0
    assert_problem(points(world, "other_owner"), 404, "not_found")
    assert_problem(points(world, "consumer"), 403, "forbidden")
    assert_problem(points(world, "triage", store_id="s-missing"), 404, "not_found")
    assert_problem(points(world, year="last"), 422, "validation_error")


# ---- metrics ------------------------------------------------------------------------------

def metrics(world: HttpWorld, who: str = "other_owner", store_id: str = "s-taobao",
            **params: Any) -> Response:
    return world.get(who, f"/v1/stores/{store_id}/metrics", params=params)


def test_metrics_window_is_the_30_days_before_the_day_after_as_of(world: HttpWorld) -> None:
    got = ok(metrics(world, as_of="2026-11-26"))
    assert got.keys() >= METRICS_FIELDS
    assert (got["store_id"], got["platform"]) == ("s-taobao", "taobao")
    assert got["metric"] == "dispute_refund_rate"
    assert got["window_days"] == 30
    assert got["window_end"] == "2026-11-27T00:00:00Z"
    assert got["window_start"] == "2026-10-28T00:00:00Z"


def test_metrics_as_of_defaults_to_today(world: HttpWorld) -> None:
    got = ok(metrics(world))
    assert got["window_end"] == "2026-11-03T00:00:00Z"
    assert got["window_start"] == "2026-10-04T00:00:00Z"


def test_tmall_store_reports_the_platform_dispute_rate(world: HttpWorld) -> None:
    got = ok(metrics(world, "owner", "s-tmall"))
    assert (got["platform"], got["metric"]) == ("tmall", "platform_dispute_rate")


def test_store_without_orders_has_no_dispute_rate(world: HttpWorld) -> None:
    got = ok(metrics(world))
    assert (got["paid_orders"], got["dispute_count"], got["dispute_rate"]) == (0, 0, None)
    assert got["work_orders"] == 0
    assert got["on_time_reply_rate"] is None


def test_metrics_count_rulings_replies_timeouts_and_agreements(world: HttpWorld) -> None:
    ruled = world.open(store_id="s-taobao")
    timed_out = world.open(store_id="s-taobao")
    world.open(kind="worry_free", store_id="s-taobao")  # never counted
    world.advance(HOUR)
    ok(world.contact(ruled["id"], who="other_owner"), 201)
    ok(world.reply(ruled["id"], "unresolved_no_agreement", who="other_owner",
                   statement="no deal"))
    ok(world.post("adjudicator", f"/v1/work-orders/{ruled['id']}/judgment", {
        "ruling": "for_consumer", "rationale": "r",
        "remedy": {"type": "refund", "amount_cents": 1_000}}))
    agreed = world.open(store_id="s-taobao")
    world.advance(HOUR)
    ok(world.contact(agreed["id"], who="other_owner"), 201)
    ok(world.reply(agreed["id"], "resolved_agreed", who="other_owner",
                   agreement={"type": "exchange"}))
    ok(world.post("consumer", f"/v1/work-orders/{agreed['id']}/consumer-response",
                  {"accept": True}))
    world.advance(DAY)
    assert world.work_order(timed_out["id"])["state"] == "in_adjudication"

    got = ok(metrics(world, as_of="2026-11-03"))
    assert got["paid_orders"] == 4
    assert got["dispute_count"] == 1
    assert got["dispute_rate"] == pytest.approx(0.25)
    assert got["work_orders"] == 3
    assert got["replied_on_time"] == 2
    assert got["on_time_reply_rate"] == pytest.approx(2 / 3)
    assert got["timeouts"] == 1
    assert got["median_reply_seconds"] == pytest.approx(3600)
    assert got["agreement_rate"] == pytest.approx(1 / 3)
    assert got["intervention_rate"] == pytest.approx(2 / 3)

    earlier = ok(metrics(world, as_of="2026-10-31"))
    assert (earlier["paid_orders"], earlier["dispute_count"], earlier["work_orders"]) == (
        0, 0, 0)

    ok(world.post("other_owner", f"/v1/work-orders/{ruled['id']}/appeal",
                  {"statement": "s"}))
    ok(world.post("supervisor", f"/v1/work-orders/{ruled['id']}/appeal-decision",
                  {"decision": "overturned", "rationale": "r"}))
    after = ok(metrics(world, "triage", as_of="2026-11-03"))
    assert (after["dispute_count"], after["dispute_rate"]) == (0, 0.0)


def test_metrics_are_shown_to_the_store_and_the_platform_only(world: HttpWorld) -> None:
    for who in ("owner", "agent", "triage", "adjudicator", "supervisor"):
        ok(metrics(world, who, "s-tmall"))
    assert_problem(metrics(world, "other_owner", "s-tmall"), 404, "not_found")
    assert_problem(metrics(world, "consumer", "s-tmall"), 403, "forbidden")
    assert_problem(metrics(world, "triage", "s-missing"), 404, "not_found")


def test_malformed_as_of_is_refused_with_validation_error(world: HttpWorld) -> None:
    assert_problem(metrics(world, as_of="26/11/2026"), 422, "validation_error")


# ---- metrics by day -------------------------------------------------------------------------

DAY_FIELDS = {
    "day", "work_orders", "replied_on_time", "on_time_reply_rate", "timeouts",
    "median_reply_seconds", "agreement_rate", "intervention_rate", "dispute_count",
    "paid_orders", "dispute_rate",
}
NOTHING = {"work_orders": 0, "replied_on_time": 0, "on_time_reply_rate": None, "timeouts": 0,
           "median_reply_seconds": None, "agreement_rate": None, "intervention_rate": None,
           "dispute_count": 0, "paid_orders": 0, "dispute_rate": None}


def daily(world: HttpWorld, who: str = "other_owner", store_id: str = "s-taobao",
          **params: Any) -> Response:
    return world.get(who, f"/v1/stores/{store_id}/metrics/daily", params=params)


def by_day(answer: JSON) -> dict[str, JSON]:
    return {d["day"]: {k: v for k, v in d.items() if k != "day"} for d in answer["days"]}


def test_daily_metrics_default_to_the_30_days_up_to_today_each_listed(
        world: HttpWorld) -> None:
    got = ok(daily(world))
    assert got.keys() == {"store_id", "platform", "metric", "from", "to", "days"}
    assert (got["store_id"], got["platform"], got["metric"]) == (
        "s-taobao", "taobao", "dispute_refund_rate")
    assert (got["from"], got["to"]) == ("2026-10-04", "2026-11-02")
    assert len(got["days"]) == 30
    assert [d["day"] for d in got["days"][:2]] == ["2026-10-04", "2026-10-05"]
    assert got["days"][-1]["day"] == "2026-11-02"
    assert all(d.keys() == DAY_FIELDS for d in got["days"])
    assert all({k: v for k, v in d.items() if k != "day"} == NOTHING for d in got["days"])
    only_to = ok(daily(world, "owner", "s-tmall", to="2026-03-01"))
    assert (only_to["from"], only_to["to"], only_to["metric"]) == (
        "2026-01-31", "2026-03-01", "platform_dispute_rate")
    assert len(only_to["days"]) == 30
    only_from = ok(daily(world, **{"from": "2026-11-01"}))
    assert [d["day"] for d in only_from["days"]] == ["2026-11-01", "2026-11-02"]


def test_daily_metrics_count_each_day_what_happened_that_day(world: HttpWorld) -> None:
    ruled = world.open(store_id="s-taobao")  # orders are paid on 2026-11-01
    timed_out = world.open(store_id="s-taobao")
    world.open(kind="worry_free", store_id="s-taobao")  # never counted
    world.advance(HOUR)
    ok(world.contact(ruled["id"], who="other_owner"), 201)
    ok(world.reply(ruled["id"], "unresolved_no_agreement", who="other_owner",
                   statement="no deal"))
    ok(world.post("adjudicator", f"/v1/work-orders/{ruled['id']}/judgment", {
        "ruling": "for_consumer", "rationale": "r",
        "remedy": {"type": "refund", "amount_cents": 1_000}}))
    agreed = world.open(store_id="s-taobao")
    world.advance(HOUR)
    ok(world.contact(agreed["id"], who="other_owner"), 201)
    ok(world.reply(agreed["id"], "resolved_agreed", who="other_owner",
                   agreement={"type": "exchange"}))
    ok(world.post("consumer", f"/v1/work-orders/{agreed['id']}/consumer-response",
                  {"accept": True}))
    world.advance(2 * DAY)  # the timeout fired on 2026-11-03; now 2026-11-04T10:00Z
    ok(world.post("adjudicator", f"/v1/work-orders/{timed_out['id']}/judgment", {
        "ruling": "for_consumer", "rationale": "r",
        "remedy": {"type": "refund", "amount_cents": 1_000}}))

    got = by_day(ok(daily(world, **{"from": "2026-11-01", "to": "2026-11-04"})))
    assert got == {
        "2026-11-01": {**NOTHING, "paid_orders": 4, "dispute_rate": 0.0},
        "2026-11-02": {**NOTHING, "work_orders": 3, "replied_on_time": 2,
                       "on_time_reply_rate": pytest.approx(2 / 3), "timeouts": 1,
                       "median_reply_seconds": 3600.0,
                       "agreement_rate": pytest.approx(1 / 3),
                       "intervention_rate": pytest.approx(2 / 3), "dispute_count": 1},
        "2026-11-03": NOTHING,
        "2026-11-04": {**NOTHING, "dispute_count": 1},
    }

    # Overturned on 2026-11-04: the ruling of 2026-11-02 no longer counts, on its day.
    ok(world.post("other_owner", f"/v1/work-orders/{ruled['id']}/appeal",
                  {"statement": "s"}))
    ok(world.post("supervisor", f"/v1/work-orders/{ruled['id']}/appeal-decision",
                  {"decision": "overturned", "rationale": "r"}))
    again = by_day(ok(daily(world, "triage", **{"from": "2026-11-02", "to": "2026-11-04"})))
    assert [d["dispute_count"] for d in again.values()] == [0, 0, 1]
    # Appealed, then withdrawn: the work order no longer counts at all.
    ok(world.post("other_owner", f"/v1/work-orders/{timed_out['id']}/appeal",
                  {"statement": "s"}))
    ok(world.post("consumer", f"/v1/work-orders/{timed_out['id']}/withdraw"))
    gone = by_day(ok(daily(world, "triage", **{"from": "2026-11-02", "to": "2026-11-04"})))
    assert gone["2026-11-02"]["work_orders"] == 2
    assert gone["2026-11-02"]["timeouts"] == 0
    assert gone["2026-11-04"]["dispute_count"] == 0


def test_daily_metrics_show_up_to_366_days_within_the_calendar(world: HttpWorld) -> None:
    year = ok(daily(world, **{"from": "2024-01-01", "to": "2024-12-31"}))  # a leap year
    assert len(year["days"]) == 366
    last = ok(daily(world, **{"from": "9998-12-31", "to": "9998-12-31"}))
    assert [d["day"] for d in last["days"]] == ["9998-12-31"]
    first = ok(daily(world, **{"from": "1970-01-01", "to": "1970-01-01"}))
    assert [d["day"] for d in first["days"]] == ["1970-01-01"]
    early = ok(daily(world, to="1970-01-10"))  # the default start stays in the calendar
    assert (early["from"], len(early["days"])) == ("1970-01-01", 10)


@pytest.mark.parametrize("params", [
    {"from": "2026-11-03", "to": "2026-11-02"},  # from after to
    {"from": "2026-11-03"},  # after today, the default `to`
    {"from": "2025-01-01", "to": "2026-01-02"},  # 367 days
    {"from": "1969-12-31", "to": "1970-01-01"},
    {"from": "9998-12-31", "to": "9999-01-01"},
    {"to": "2026/11/02"},
    {"from": "yesterday"},
])
def test_a_bad_daily_range_is_refused_with_validation_error(
        world: HttpWorld, params: dict[str, str]) -> None:
    assert_problem(daily(world, **params), 422, "validation_error", params)
    # The range is checked before the store: the same for a store one may not see.
    assert_problem(daily(world, "other_owner", "s-tmall", **params), 422,
                   "validation_error", params)


def test_daily_metrics_are_shown_to_the_store_and_the_platform_only(world: HttpWorld) -> None:
    for who in ("owner", "agent", "triage", "adjudicator", "supervisor", "admin"):
        ok(daily(world, who, "s-tmall"))
    assert_problem(daily(world, "other_owner", "s-tmall"), 404, "not_found")
    assert_problem(daily(world, "consumer", "s-tmall"), 403, "forbidden")
    assert_problem(daily(world, "triage", "s-missing"), 404, "not_found")
