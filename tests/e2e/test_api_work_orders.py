"""API tests over HTTP: opening work orders, reading them, contacts, replies, notes,
the audit events and the reply deadline (api.md "Work orders", rules.md §4-5)."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collabdesk.adapters.clock import FixedClock
from collabdesk.services.context import ServiceContext
from tests.conftest import START
from tests.e2e.http_world import (
    JSON,
    PLATFORM_STAFF,
    HttpWorld,
    assert_problem,
    build_world,
    iso,
    ok,
    parse_time,
)

DAY = 24 * 3600
WORK_ORDER_FIELDS = {
    "id", "order_id", "store_id", "consumer_id", "category", "claim", "requested_remedy",
    "state", "created_at", "due_at", "evidence_waived", "reply", "judgment", "appeal",
    "counts_as_dispute", "version",
}


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)


# ---- opening ------------------------------------------------------------------------------

def test_consumer_opens_a_work_order_on_own_order_with_a_24h_reply_window(
        world: HttpWorld) -> None:
    order_id = world.order(amount_cents=20_000)
    response = world.post("consumer", "/v1/work-orders", {
        "order_id": order_id, "category": "not_as_described", "claim": "wrong colour",
        "requested_remedy": {"type": "return_and_refund", "amount_cents": 20_000,
                             "note": "full refund"}})
    wo = ok(response, 201)
    assert wo.keys() >= WORK_ORDER_FIELDS
    assert wo["order_id"] == order_id
    assert wo["store_id"] == "s-tmall"
    assert wo["consumer_id"] == world.ids["consumer"]
    assert (wo["category"], wo["claim"]) == ("not_as_described", "wrong colour")
    assert wo["requested_remedy"] == {"type": "return_and_refund", "amount_cents": 20_000,
                                      "note": "full refund"}
    assert wo["state"] == "awaiting_merchant"
    assert wo["created_at"] == "2026-11-02T08:00:00Z"
    assert wo["due_at"] == "2026-11-03T08:00:00Z"
    assert wo["evidence_waived"] is False
    assert (wo["reply"], wo["judgment"], wo["appeal"]) == (None, None, None)
    assert wo["counts_as_dispute"] is False
    assert isinstance(wo["version"], int)


def test_triage_opens_a_work_order_for_a_consumer(world: HttpWorld) -> None:
    wo = world.open(who="triage")
    assert wo["state"] == "awaiting_merchant"
    assert wo["consumer_id"] == world.ids["consumer"]
    assert world.work_order(wo["id"], "consumer")["id"] == wo["id"]


def test_worry_free_order_opens_in_worry_free_with_no_deadline(world: HttpWorld) -> None:
    wo = world.open(kind="worry_free")
    assert wo["state"] == "worry_free"
    assert wo["due_at"] is None
    assert wo["counts_as_dispute"] is False


def test_opening_on_another_consumers_order_is_not_found(world: HttpWorld) -> None:
    order_id = world.order(consumer="consumer2")
    response = world.post("consumer", "/v1/work-orders",
                          {"order_id": order_id, "category": "other", "claim": "x"})
    assert_problem(response, 404, "not_found")


def test_opening_on_an_unknown_order_is_not_found(world: HttpWorld) -> None:
    response = world.post("triage", "/v1/work-orders",
                          {"order_id": "o-nope", "category": "other", "claim": "x"})
    assert_problem(response, 404, "not_found")


def test_roles_other_than_consumer_and_triage_may_not_open(world: HttpWorld) -> None:
    order_id = world.order()
    for who in ("owner", "agent", "adjudicator"):
        response = world.post(who, "/v1/work-orders",
                              {"order_id": order_id, "category": "other", "claim": "x"})
        assert_problem(response, 403, "forbidden", who)


def test_second_open_work_order_on_an_order_is_refused_with_duplicate_open_work_order(
        world: HttpWorld) -> None:
    first = world.open()
    body = {"order_id": first["order_id"], "category": "quality", "claim": "again"}
    assert_problem(world.post("consumer", "/v1/work-orders", body), 409,
                   "duplicate_open_work_order")
    assert_problem(world.post("triage", "/v1/work-orders", body), 409,
                   "duplicate_open_work_order")
    # Once the first is closed, the order may get a new one.
    ok(world.post("consumer", f"/v1/work-orders/{first['id']}/withdraw"))
    again = ok(world.post("consumer", "/v1/work-orders", body), 201)
    assert again["id"] != first["id"]


def test_malformed_work_order_is_refused_with_validation_error(world: HttpWorld) -> None:
    order_id = world.order(amount_cents=10_000)
    for changes in (
        {"category": "broken_heart"}, {"category": None}, {"claim": None}, {"claim": ""},
        {"order_id": None}, {"requested_remedy": {"type": "refund"}},
        {"requested_remedy": {"type": "teleport"}},
        {"requested_remedy": {"type": "compensation", "amount_cents": 10_001}},
    ):
        body: JSON = {"order_id": order_id, "category": "damaged", "claim": "broken",
                      **changes}
        body = {k: v for k, v in body.items() if v is not None}
        assert_problem(world.post("consumer", "/v1/work-orders", body), 422,
                       "validation_error", changes)
    assert ok(world.get("consumer", "/v1/work-orders"))["items"] == []


# ---- reading ------------------------------------------------------------------------------

def test_get_work_order_answers_the_work_order_with_etag_equal_to_version(
        world: HttpWorld) -> None:
    wo = world.open()
    response = world.get("consumer", f"/v1/work-orders/{wo['id']}")
    got = ok(response)
    assert got == wo
    assert response.headers["ETag"].removeprefix("W/").strip('"') == str(got["version"])


def test_work_order_is_visible_to_its_parties_and_the_platform(world: HttpWorld) -> None:
    wo = world.open()
    for who in ("consumer", "owner", "agent", *PLATFORM_STAFF, "admin"):
        assert ok(world.get(who, f"/v1/work-orders/{wo['id']}"), where=who)["id"] == wo["id"]


def test_work_order_of_another_party_is_not_found(world: HttpWorld) -> None:
    wo = world.open()
    for who in ("consumer2", "other_owner"):
        for path in ("", "/contacts", "/events", "/deliveries"):
            assert_problem(world.get(who, f"/v1/work-orders/{wo['id']}{path}"), 404,
                           "not_found", (who, path))


def test_unknown_work_order_is_not_found(world: HttpWorld) -> None:
    assert_problem(world.get("triage", "/v1/work-orders/wo_missing"), 404, "not_found")
    assert_problem(world.post("consumer", "/v1/work-orders/wo_missing/withdraw"), 404,
                   "not_found")


def test_list_shows_only_what_the_caller_may_see(world: HttpWorld) -> None:
    mine = world.open()
    theirs = world.open(consumer="consumer2")
    taobao = world.open(store_id="s-taobao")

    def ids(who: str) -> set[str]:
        return {w["id"] for w in ok(world.get(who, "/v1/work-orders"))["items"]}

    assert ids("consumer") == {mine["id"], taobao["id"]}
    assert ids("consumer2") == {theirs["id"]}
    assert ids("owner") == ids("agent") == {mine["id"], theirs["id"]}
    assert ids("other_owner") == {taobao["id"]}
    assert ids("triage") == {mine["id"], theirs["id"], taobao["id"]}


# ---- contacts -----------------------------------------------------------------------------

def test_merchant_logs_a_contact_and_the_parties_list_it(world: HttpWorld,
                                                         clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(600)
    response = world.post("agent", f"/v1/work-orders/{wo['id']}/contacts", {
        "channel": "im", "contacted_at": "2026-11-02T16:05:00+08:00", "outcome": "reached",
        "summary": "agreed on a partial refund"})
    contact = ok(response, 201)
    assert contact["id"]
    assert contact["channel"] == "im"
    assert contact["outcome"] == "reached"
    assert contact["contacted_at"] == "2026-11-02T08:05:00Z"
    assert contact["summary"] == "agreed on a partial refund"
    for who in ("consumer", "owner", "agent", "verifier"):
        listed = ok(world.get(who, f"/v1/work-orders/{wo['id']}/contacts"))
        assert [c["id"] for c in listed["items"]] == [contact["id"]]
        assert listed["next_cursor"] is None


def test_owner_logs_contacts_too(world: HttpWorld) -> None:
    wo = world.open()
    ok(world.contact(wo["id"], who="owner"), 201)


def test_contact_before_the_work_order_is_refused_with_contact_before_work_order(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(3600)
    response = world.contact(wo["id"], contacted_at=START - timedelta(seconds=1))
    assert_problem(response, 422, "contact_before_work_order")
    assert ok(world.get("agent", f"/v1/work-orders/{wo['id']}/contacts"))["items"] == []


def test_contact_at_the_creation_time_counts(world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(60)
    ok(world.contact(wo["id"], contacted_at=START), 201)


def test_contact_in_the_future_is_refused_with_contact_in_future(world: HttpWorld) -> None:
    wo = world.open()
    response = world.contact(wo["id"], contacted_at=START + timedelta(seconds=1))
    assert_problem(response, 422, "contact_in_future")


def test_contact_at_or_after_due_at_is_refused_with_reply_window_closed(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(DAY)  # exactly due_at; the timeout has not been processed yet
    assert_problem(world.contact(wo["id"], contacted_at=START + timedelta(hours=1)), 409,
                   "reply_window_closed")


def test_only_the_store_logs_contacts(world: HttpWorld) -> None:
    wo = world.open()
    for who in ("consumer", "triage", "adjudicator"):
        assert_problem(world.contact(wo["id"], who=who), 403, "forbidden", who)


def test_another_stores_merchant_logging_a_contact_gets_not_found(world: HttpWorld) -> None:
    wo = world.open()
    assert_problem(world.contact(wo["id"], who="other_owner"), 404, "not_found")


def test_malformed_contact_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.open()
    for changes in ({"channel": "pigeon"}, {"outcome": "maybe"},
                    {"contacted_at": "2026-11-02T08:00:00"}, {"contacted_at": None},
                    {"evidence_ids": ["ev_does_not_exist"]}):
        body: JSON = {"channel": "phone", "contacted_at": iso(START), "outcome": "reached",
                      **changes}
        body = {k: v for k, v in body.items() if v is not None}
        response = world.post("agent", f"/v1/work-orders/{wo['id']}/contacts", body)
        assert_problem(response, 422, "validation_error", changes)
    assert ok(world.get("agent", f"/v1/work-orders/{wo['id']}/contacts"))["items"] == []


def test_contact_on_a_closed_work_order_is_refused_with_invalid_transition(
        world: HttpWorld) -> None:
    wo = world.in_adjudication()
    assert_problem(world.contact(wo["id"]), 409, "invalid_transition")


# ---- replies ------------------------------------------------------------------------------

def test_agreed_reply_with_a_reached_contact_asks_the_consumer_to_confirm(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(3600)
    ok(world.contact(wo["id"]), 201)
    proof = world.evidence("agent")
    got = ok(world.reply(wo["id"], "resolved_agreed", statement="refund agreed",
                         agreement={"type": "refund", "amount_cents": 3_000},
                         evidence_ids=[proof]))
    assert got["state"] == "awaiting_consumer"
    assert got["version"] > wo["version"]
    reply = got["reply"]
    assert reply["option"] == "resolved_agreed"
    assert reply["statement"] == "refund agreed"
    assert reply["agreement"]["type"] == "refund"
    assert reply["agreement"]["amount_cents"] == 3_000
    assert reply["evidence_ids"] == [proof]
    assert reply["replied_at"] == "2026-11-02T09:00:00Z"
    assert reply["replied_by"] == world.ids["agent"]
    assert world.work_order(wo["id"]) == got


def test_no_agreement_reply_sends_the_work_order_to_adjudication(world: HttpWorld) -> None:
    got = world.in_adjudication()
    assert got["state"] == "in_adjudication"
    assert got["reply"]["option"] == "unresolved_no_agreement"
    assert got["evidence_waived"] is False


@pytest.mark.parametrize("option", ["unresolved_unreachable", "not_related"])
def test_unreachable_and_not_related_replies_go_to_second_line_verification(
        world: HttpWorld, option: str) -> None:
    got = world.awaiting_verification(option)
    assert got["state"] == "awaiting_verification"
    assert got["reply"]["option"] == option


def test_reply_one_second_before_due_at_is_accepted(world: HttpWorld,
                                                    clock: FixedClock) -> None:
    wo = world.open()
    ok(world.contact(wo["id"]), 201)
    clock.advance(DAY - 1)
    got = ok(world.reply(wo["id"], "unresolved_no_agreement", statement="no deal"))
    assert got["state"] == "in_adjudication"


def test_reply_at_or_after_due_at_is_refused_with_reply_window_closed(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    ok(world.contact(wo["id"]), 201)
    clock.advance(DAY)  # at due_at, before any timer ran: the deadline is a fact of time
    assert_problem(world.reply(wo["id"], "unresolved_no_agreement", statement="late"), 409,
                   "reply_window_closed")
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"
    clock.advance(3600)
    assert_problem(world.reply(wo["id"], "unresolved_no_agreement", statement="later"), 409,
                   "reply_window_closed")


def test_reply_after_the_timeout_ran_is_refused_with_reply_window_closed(
        world: HttpWorld) -> None:
    wo = world.open()
    ok(world.contact(wo["id"]), 201)
    world.advance(DAY)
    assert_problem(world.reply(wo["id"], "unresolved_no_agreement", statement="late"), 409,
                   "reply_window_closed")


def test_reply_missing_what_its_option_requires_is_refused_saying_what_is_missing(
        world: HttpWorld) -> None:
    wo = world.open()
    for option, fields, missing in (
        ("resolved_agreed", {"agreement": {"type": "exchange"}}, "reached"),
        ("unresolved_no_agreement", {"statement": "no deal"}, "reached"),
        ("not_related", {}, "statement"),
        ("unresolved_unreachable", {}, "2 contact attempts"),
    ):
        body = assert_problem(world.reply(wo["id"], option, **fields), 422,
                              "reply_requirements_not_met", option)
        assert missing in body["detail"], (option, body)
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"


def test_agreed_reply_without_an_agreement_is_refused_with_reply_requirements_not_met(
        world: HttpWorld) -> None:
    wo = world.open()
    ok(world.contact(wo["id"]), 201)
    body = assert_problem(world.reply(wo["id"], "resolved_agreed", statement="ok"), 422,
                          "reply_requirements_not_met")
    assert "agreement" in body["detail"]


def test_unreachable_reply_needs_evidence_on_every_unreachable_contact(
        world: HttpWorld) -> None:
    wo = world.open()
    ok(world.contact(wo["id"], outcome="unreachable",
                     evidence_ids=[world.evidence("agent")]), 201)
    ok(world.contact(wo["id"], outcome="unreachable"), 201)
    body = assert_problem(world.reply(wo["id"], "unresolved_unreachable"), 422,
                          "reply_requirements_not_met")
    assert "evidence" in body["detail"]


def test_unreachable_reply_is_refused_when_a_contact_reached_the_consumer(
        world: HttpWorld) -> None:
    wo = world.open()
    for outcome in ("unreachable", "unreachable", "reached"):
        ok(world.contact(wo["id"], outcome=outcome,
                         evidence_ids=[world.evidence("agent")]), 201)
    body = assert_problem(world.reply(wo["id"], "unresolved_unreachable"), 422,
                          "reply_requirements_not_met")
    assert "unreachable" in body["detail"]


def test_contact_logged_before_the_work_order_cannot_qualify_a_reply(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(60)
    assert_problem(world.contact(wo["id"], contacted_at=START - timedelta(hours=2)), 422,
                   "contact_before_work_order")
    assert_problem(world.reply(wo["id"], "unresolved_no_agreement", statement="no deal"),
                   422, "reply_requirements_not_met")


def test_malformed_reply_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.open(amount_cents=10_000)
    ok(world.contact(wo["id"]), 201)
    for fields in ({"option": "resolved_maybe"}, {},
                   {"agreement": {"type": "refund", "amount_cents": 10_001}},
                   {"agreement": {"type": "refund"}},
                   {"agreement": {"type": "refund", "amount_cents": "3000"}}):
        body: JSON = {"option": "resolved_agreed", **fields} if fields else {}
        response = world.post("agent", f"/v1/work-orders/{wo['id']}/reply", body)
        assert_problem(response, 422, "validation_error", fields)
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"


def test_reply_is_given_once_then_refused_with_invalid_transition(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    assert_problem(world.reply(wo["id"], "unresolved_no_agreement", statement="changed mind"),
                   409, "invalid_transition")


def test_reply_on_a_worry_free_work_order_is_refused_with_invalid_transition(
        world: HttpWorld) -> None:
    wo = world.open(kind="worry_free")
    assert_problem(world.reply(wo["id"], "not_related", statement="x"), 409,
                   "invalid_transition")


def test_only_the_store_replies(world: HttpWorld) -> None:
    wo = world.open()
    for who in ("consumer", "triage", "adjudicator"):
        assert_problem(world.reply(wo["id"], "not_related", who=who, statement="x"), 403,
                       "forbidden", who)


def test_another_stores_reply_is_not_found(world: HttpWorld) -> None:
    wo = world.open()
    assert_problem(world.reply(wo["id"], "not_related", who="other_owner", statement="x"),
                   404, "not_found")


# ---- the deadline -------------------------------------------------------------------------

def test_unanswered_work_order_times_out_into_adjudication_with_evidence_waived(
        world: HttpWorld) -> None:
    wo = world.open()
    world.advance(DAY - 1)
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"
    world.advance(1)
    got = world.work_order(wo["id"])
    assert got["state"] == "in_adjudication"
    assert got["evidence_waived"] is True
    assert got["reply"] is None
    assert got["version"] > wo["version"]


def test_reply_before_the_deadline_makes_the_timeout_a_no_op(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    world.advance(DAY)
    got = world.work_order(wo["id"])
    assert got["state"] == "in_adjudication"
    assert got["evidence_waived"] is False
    assert got["version"] == wo["version"]


# ---- notes --------------------------------------------------------------------------------

def _note(world: HttpWorld, who: str, wo_id: str, **body: Any) -> JSON:
    return ok(world.post(who, f"/v1/work-orders/{wo_id}/notes",
                         {"text": f"note by {who}", **body}), 201)


def test_parties_add_notes_and_platform_only_notes_stay_with_the_platform(
        world: HttpWorld) -> None:
    wo = world.open()
    proof = world.evidence("consumer")
    by_consumer = _note(world, "consumer", wo["id"], evidence_ids=[proof])
    assert by_consumer["id"]
    assert by_consumer["text"] == "note by consumer"
    assert by_consumer["evidence_ids"] == [proof]
    by_agent = _note(world, "agent", wo["id"], visibility="all")
    internal = _note(world, "adjudicator", wo["id"], visibility="platform")
    assert internal["visibility"] == "platform"

    def seen(who: str) -> set[str]:
        items = ok(world.get(who, f"/v1/work-orders/{wo['id']}/notes"))["items"]
        return {n["id"] for n in items}

    assert seen("consumer") == seen("owner") == {by_consumer["id"], by_agent["id"]}
    assert seen("triage") == {by_consumer["id"], by_agent["id"], internal["id"]}


def test_store_notes_after_the_reply_window_are_refused_with_reply_window_closed(
        world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(DAY)
    response = world.post("agent", f"/v1/work-orders/{wo['id']}/notes", {"text": "late"})
    assert_problem(response, 409, "reply_window_closed")
    # Consumers and the platform may still add notes while the case is open.
    _note(world, "consumer", wo["id"])
    _note(world, "triage", wo["id"])


def test_notes_on_a_closed_work_order_are_refused_with_invalid_transition(
        world: HttpWorld) -> None:
    wo = world.judged("for_merchant")
    response = world.post("consumer", f"/v1/work-orders/{wo['id']}/notes", {"text": "late"})
    assert_problem(response, 409, "invalid_transition")


def test_malformed_note_is_refused_with_validation_error(world: HttpWorld) -> None:
    wo = world.open()
    for body in ({"text": ""}, {}, {"text": "x", "visibility": "secret"}):
        response = world.post("consumer", f"/v1/work-orders/{wo['id']}/notes", body)
        assert_problem(response, 422, "validation_error", body)


def test_another_consumers_note_is_not_found(world: HttpWorld) -> None:
    wo = world.open()
    response = world.post("consumer2", f"/v1/work-orders/{wo['id']}/notes", {"text": "hi"})
    assert_problem(response, 404, "not_found")


# ---- events -------------------------------------------------------------------------------

def test_events_are_a_hash_chain_oldest_first(world: HttpWorld, clock: FixedClock) -> None:
    wo = world.open()
    clock.advance(60)
    ok(world.contact(wo["id"]), 201)
    clock.advance(60)
    ok(world.reply(wo["id"], "unresolved_no_agreement", statement="no deal"))
    for who in ("consumer", "agent", "adjudicator"):
        events = ok(world.get(who, f"/v1/work-orders/{wo['id']}/events"))
        items = events["items"]
        assert [e["type"] for e in items] == ["opened", "contact_logged", "replied"]
        assert [e["seq"] for e in items] == [1, 2, 3]
        assert [parse_time(e["at"]) for e in items] == [
            START, START + timedelta(seconds=60), START + timedelta(seconds=120)]
        assert items[0]["actor_id"] == world.ids["consumer"]
        assert items[1]["actor_id"] == items[2]["actor_id"] == world.ids["agent"]
        assert items[0]["prev_hash"] is None
        for before, after in itertools.pairwise(items):
            assert after["prev_hash"] == before["hash"]
        assert len({e["hash"] for e in items}) == 3
        assert items[2]["data"]["option"] == "unresolved_no_agreement"


def test_events_of_a_timeout_are_by_the_system(world: HttpWorld) -> None:
    wo = world.open()
    world.advance(DAY)
    items = ok(world.get("owner", f"/v1/work-orders/{wo['id']}/events"))["items"]
    assert items[-1]["type"] == "timed_out"
    assert items[-1]["at"] == wo["due_at"]
    assert items[-1]["prev_hash"] == items[-2]["hash"]
