"""API tests over HTTP: the consumer's answer, second-line verification, the ruling, the
appeal and its decision, worry-free settlement and withdrawal (api.md, rules.md §4)."""

from __future__ import annotations

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


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)


def _act(world: HttpWorld, who: str, wo_id: str, action: str,
         body: JSON | None = None) -> Response:
    return world.post(who, f"/v1/work-orders/{wo_id}/{action}", body)


# ---- consumer-response --------------------------------------------------------------------

def test_consumer_accepting_the_agreement_resolves_the_work_order(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    got = ok(_act(world, "consumer", wo["id"], "consumer-response",
                  {"accept": True, "statement": "thanks"}))
    assert got["state"] == "resolved"
    assert got["counts_as_dispute"] is False
    assert got["version"] > wo["version"]


def test_consumer_rejecting_the_agreement_sends_it_to_adjudication(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    got = ok(_act(world, "consumer", wo["id"], "consumer-response", {"accept": False}))
    assert got["state"] == "in_adjudication"


def test_unanswered_confirmation_resolves_the_work_order_after_48_hours(
        world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    world.advance(48 * HOUR - 1)
    assert world.work_order(wo["id"])["state"] == "awaiting_consumer"
    world.advance(1)
    assert world.work_order(wo["id"])["state"] == "resolved"


def test_only_the_consumer_answers_the_agreement(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    for who in ("agent", "triage"):
        assert_problem(_act(world, who, wo["id"], "consumer-response", {"accept": True}),
                       403, "forbidden", who)


def test_another_consumers_answer_is_not_found(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    assert_problem(_act(world, "consumer2", wo["id"], "consumer-response", {"accept": True}),
                   404, "not_found")


def test_consumer_response_while_the_store_has_not_replied_is_an_invalid_transition(
        world: HttpWorld) -> None:
    wo = world.open()
    assert_problem(_act(world, "consumer", wo["id"], "consumer-response", {"accept": True}),
                   409, "invalid_transition")


def test_consumer_response_needs_a_boolean_accept(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    for body in ({}, {"accept": "yes"}, {"accept": None}):
        assert_problem(_act(world, "consumer", wo["id"], "consumer-response", body), 422,
                       "validation_error", body)


# ---- verification -------------------------------------------------------------------------

@pytest.mark.parametrize(("option", "outcome", "state", "waived"), [
    ("unresolved_unreachable", "contact_verified", "in_adjudication", False),
    ("unresolved_unreachable", "contact_rejected", "in_adjudication", True),
    ("not_related", "unrelated_confirmed", "dismissed", False),
    ("not_related", "unrelated_rejected", "in_adjudication", False),
])
def test_verifier_outcome_moves_the_work_order(world: HttpWorld, option: str, outcome: str,
                                              state: str, waived: bool) -> None:
    wo = world.awaiting_verification(option)
    got = ok(_act(world, "verifier", wo["id"], "verification",
                  {"outcome": outcome, "rationale": "checked the call records"}))
    assert got["state"] == state
    assert got["evidence_waived"] is waived


@pytest.mark.parametrize(("option", "outcome"), [
    ("unresolved_unreachable", "unrelated_confirmed"),
    ("not_related", "contact_verified"),
])
def test_outcome_for_the_other_kind_of_reply_is_an_invalid_transition(
        world: HttpWorld, option: str, outcome: str) -> None:
    wo = world.awaiting_verification(option)
    response = _act(world, "verifier", wo["id"], "verification",
                    {"outcome": outcome, "rationale": "r"})
    assert_problem(response, 409, "invalid_transition")
    assert world.work_order(wo["id"])["state"] == "awaiting_verification"


def test_verification_outside_awaiting_verification_is_an_invalid_transition(
        world: HttpWorld) -> None:
    wo = world.in_adjudication()
    response = _act(world, "verifier", wo["id"], "verification",
                    {"outcome": "contact_verified", "rationale": "r"})
    assert_problem(response, 409, "invalid_transition")


def test_only_a_verifier_verifies(world: HttpWorld) -> None:
    wo = world.awaiting_verification("not_related")
    for who in ("adjudicator", "triage", "owner"):
        response = _act(world, who, wo["id"], "verification",
                        {"outcome": "unrelated_confirmed", "rationale": "r"})
        assert_problem(response, 403, "forbidden", who)


def test_malformed_verification_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.awaiting_verification("not_related")
    for body in ({"outcome": "unrelated_confirmed"},
                 {"outcome": "unrelated_confirmed", "rationale": ""},
                 {"outcome": "looks_fine", "rationale": "r"}):
        assert_problem(_act(world, "verifier", wo["id"], "verification", body), 422,
                       "validation_error", body)
    assert world.work_order(wo["id"])["state"] == "awaiting_verification"


# ---- judgment -----------------------------------------------------------------------------

def test_ruling_for_the_consumer_judges_and_counts_as_a_dispute(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.in_adjudication()
    clock.advance(HOUR)
    got = ok(_act(world, "adjudicator", wo["id"], "judgment", {
        "ruling": "for_consumer", "rationale": "photos show the damage",
        "remedy": {"type": "compensation", "amount_cents": 2_000, "note": "for the hassle"}}))
    assert got["state"] == "judged"
    assert got["counts_as_dispute"] is True
    judgment = got["judgment"]
    assert judgment["ruling"] == "for_consumer"
    assert judgment["rationale"] == "photos show the damage"
    assert judgment["remedy"]["type"] == "compensation"
    assert judgment["remedy"]["amount_cents"] == 2_000
    assert judgment["judged_at"] == "2026-11-02T09:00:00Z"
    assert judgment["judged_by"] == world.ids["adjudicator"]


def test_ruling_for_the_merchant_does_not_count_as_a_dispute(world: HttpWorld) -> None:
    got = world.judged("for_merchant")
    assert got["state"] == "judged"
    assert got["judgment"]["ruling"] == "for_merchant"
    assert got["counts_as_dispute"] is False


def test_timed_out_work_order_is_ruled_with_evidence_waived(world: HttpWorld) -> None:
    wo = world.open()
    world.advance(DAY)
    got = ok(_act(world, "adjudicator", wo["id"], "judgment", {
        "ruling": "for_consumer", "rationale": "the store gave no evidence",
        "remedy": {"type": "refund", "amount_cents": 10_000}}))
    assert (got["state"], got["evidence_waived"]) == ("judged", True)


def test_malformed_judgment_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.in_adjudication(amount_cents=10_000)
    for body in (
        {"ruling": "for_consumer", "rationale": "r"},  # for the consumer needs a remedy
        {"ruling": "for_consumer", "rationale": "r",
         "remedy": {"type": "refund", "amount_cents": 10_001}},
        {"ruling": "for_consumer", "rationale": "r", "remedy": {"type": "refund"}},
        {"ruling": "for_nobody", "rationale": "r"},
        {"ruling": "for_merchant"},
    ):
        assert_problem(_act(world, "adjudicator", wo["id"], "judgment", body), 422,
                       "validation_error", body)
    assert world.work_order(wo["id"])["state"] == "in_adjudication"


def test_only_an_adjudicator_rules(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    for who in ("verifier", "supervisor", "triage", "owner", "consumer"):
        response = _act(world, who, wo["id"], "judgment",
                        {"ruling": "for_merchant", "rationale": "r"})
        assert_problem(response, 403, "forbidden", who)


def test_ruling_before_adjudication_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.open()
    response = _act(world, "adjudicator", wo["id"], "judgment",
                    {"ruling": "for_merchant", "rationale": "r"})
    assert_problem(response, 409, "invalid_transition")


def test_ruling_twice_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.judged("for_merchant")
    response = _act(world, "adjudicator", wo["id"], "judgment",
                    {"ruling": "for_merchant", "rationale": "again"})
    assert_problem(response, 409, "invalid_transition")


# ---- appeal -------------------------------------------------------------------------------

def _appeal(world: HttpWorld, wo_id: str, who: str = "owner") -> Response:
    return _act(world, who, wo_id, "appeal", {"statement": "the packing video shows it"})


def test_store_owner_appeals_a_ruling_for_the_consumer(world: HttpWorld,
                                                       clock: FixedClock) -> None:
    wo = world.judged()
    clock.advance(HOUR)
    proof = world.evidence("owner", b"packing video transcript")
    got = ok(_act(world, "owner", wo["id"], "appeal",
                  {"statement": "the packing video shows it", "evidence_ids": [proof]}))
    assert got["state"] == "under_appeal"
    appeal = got["appeal"]
    assert appeal["statement"] == "the packing video shows it"
    assert appeal["appealed_at"] == "2026-11-02T09:00:00Z"
    assert appeal["decision"] is None
    assert appeal["decided_at"] is None
    assert got["counts_as_dispute"] is True


def test_appeal_just_before_seven_days_is_accepted(world: HttpWorld,
                                                   clock: FixedClock) -> None:
    wo = world.judged()
    clock.advance(7 * DAY - 1)
    assert ok(_appeal(world, wo["id"]))["state"] == "under_appeal"


def test_appeal_seven_days_after_the_ruling_is_refused_with_appeal_window_closed(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.judged()
    clock.advance(7 * DAY)
    assert_problem(_appeal(world, wo["id"]), 409, "appeal_window_closed")
    assert world.work_order(wo["id"])["state"] == "judged"


def test_only_the_store_owner_appeals(world: HttpWorld) -> None:
    wo = world.judged()
    for who in ("agent", "consumer", "supervisor"):
        assert_problem(_appeal(world, wo["id"], who), 403, "forbidden", who)


def test_another_stores_owner_appealing_gets_not_found(world: HttpWorld) -> None:
    wo = world.judged()
    assert_problem(_appeal(world, wo["id"], "other_owner"), 404, "not_found")


def test_ruling_for_the_merchant_cannot_be_appealed(world: HttpWorld) -> None:
    wo = world.judged("for_merchant")
    assert_problem(_appeal(world, wo["id"]), 409, "invalid_transition")


def test_appeal_before_any_ruling_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    assert_problem(_appeal(world, wo["id"]), 409, "invalid_transition")


def test_a_ruling_is_appealed_once(world: HttpWorld) -> None:
    wo = world.judged()
    ok(_appeal(world, wo["id"]))
    ok(_act(world, "supervisor", wo["id"], "appeal-decision",
            {"decision": "upheld", "rationale": "no new facts"}))
    assert_problem(_appeal(world, wo["id"]), 409, "invalid_transition")


def test_appeal_without_a_statement_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    wo = world.judged()
    assert_problem(_act(world, "owner", wo["id"], "appeal", {}), 422, "validation_error")


# ---- appeal-decision ----------------------------------------------------------------------

@pytest.mark.parametrize(("decision", "counts"), [("upheld", True), ("overturned", False)])
def test_supervisor_decides_the_appeal(world: HttpWorld, clock: FixedClock, decision: str,
                                       counts: bool) -> None:
    wo = world.judged()
    ok(_appeal(world, wo["id"]))
    clock.advance(2 * HOUR)
    got = ok(_act(world, "supervisor", wo["id"], "appeal-decision",
                  {"decision": decision, "rationale": "reviewed the video"}))
    assert got["state"] == "judged"
    assert got["appeal"]["decision"] == decision
    assert got["appeal"]["decided_at"] == "2026-11-02T10:00:00Z"
    assert got["counts_as_dispute"] is counts
    assert world.work_order(wo["id"], "consumer")["counts_as_dispute"] is counts


def test_only_a_supervisor_decides_appeals(world: HttpWorld) -> None:
    wo = world.judged()
    ok(_appeal(world, wo["id"]))
    for who in ("adjudicator", "owner", "consumer"):
        response = _act(world, who, wo["id"], "appeal-decision",
                        {"decision": "overturned", "rationale": "r"})
        assert_problem(response, 403, "forbidden", who)


def test_deciding_without_an_appeal_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.judged()
    response = _act(world, "supervisor", wo["id"], "appeal-decision",
                    {"decision": "upheld", "rationale": "r"})
    assert_problem(response, 409, "invalid_transition")


def test_malformed_appeal_decision_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    wo = world.judged()
    ok(_appeal(world, wo["id"]))
    for body in ({"decision": "revoked", "rationale": "r"}, {"decision": "upheld"}):
        assert_problem(_act(world, "supervisor", wo["id"], "appeal-decision", body), 422,
                       "validation_error", body)


# ---- settlement (worry-free) --------------------------------------------------------------

def test_triage_settles_a_worry_free_work_order(world: HttpWorld) -> None:
    wo = world.open(kind="worry_free", amount_cents=12_900)
    got = ok(_act(world, "triage", wo["id"], "settlement",
                  {"amount_cents": 12_900, "rationale": "worry-free standard"}))
    assert got["state"] == "settled"
    assert got["counts_as_dispute"] is False
    assert got["judgment"] is None


def test_malformed_settlement_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.open(kind="worry_free", amount_cents=12_900)
    for body in ({"amount_cents": 0, "rationale": "r"}, {"amount_cents": -5, "rationale": "r"},
                 {"amount_cents": 12_901, "rationale": "r"},
                 {"amount_cents": "100", "rationale": "r"}, {"amount_cents": 100}):
        assert_problem(_act(world, "triage", wo["id"], "settlement", body), 422,
                       "validation_error", body)
    assert world.work_order(wo["id"])["state"] == "worry_free"


def test_settling_a_standard_work_order_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.open()
    response = _act(world, "triage", wo["id"], "settlement",
                    {"amount_cents": 100, "rationale": "r"})
    assert_problem(response, 409, "invalid_transition")


def test_only_triage_settles(world: HttpWorld) -> None:
    wo = world.open(kind="worry_free")
    for who in ("adjudicator", "owner", "consumer"):
        response = _act(world, who, wo["id"], "settlement",
                        {"amount_cents": 100, "rationale": "r"})
        assert_problem(response, 403, "forbidden", who)


# ---- withdraw -----------------------------------------------------------------------------

def test_consumer_withdraws_a_work_order_in_any_open_state(world: HttpWorld) -> None:
    open_ones = [world.open(), world.awaiting_consumer(),
                 world.awaiting_verification("not_related"), world.in_adjudication(),
                 ok(_appeal(world, world.judged()["id"])), world.open(kind="worry_free")]
    assert [w["state"] for w in open_ones] == [
        "awaiting_merchant", "awaiting_consumer", "awaiting_verification", "in_adjudication",
        "under_appeal", "worry_free"]
    for wo in open_ones:
        got = ok(_act(world, "consumer", wo["id"], "withdraw", {}), where=wo["state"])
        assert got["state"] == "withdrawn", wo["state"]
        assert got["counts_as_dispute"] is False, wo["state"]


def test_withdrawing_a_closed_work_order_is_an_invalid_transition(world: HttpWorld) -> None:
    wo = world.judged("for_merchant")
    assert_problem(_act(world, "consumer", wo["id"], "withdraw", {}), 409,
                   "invalid_transition")
    withdrawn = world.open()
    ok(_act(world, "consumer", withdrawn["id"], "withdraw", {}))
    assert_problem(_act(world, "consumer", withdrawn["id"], "withdraw", {}), 409,
                   "invalid_transition")


def test_only_the_consumer_withdraws(world: HttpWorld) -> None:
    wo = world.open()
    for who in ("triage", "owner", "adjudicator"):
        assert_problem(_act(world, who, wo["id"], "withdraw", {}), 403, "forbidden", who)


def test_another_consumer_withdrawing_gets_not_found(world: HttpWorld) -> None:
    wo = world.open()
    assert_problem(_act(world, "consumer2", wo["id"], "withdraw", {}), 404, "not_found")
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"
