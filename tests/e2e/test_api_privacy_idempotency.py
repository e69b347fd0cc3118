"""Each party sees only its own (platform-only notes and their evidence), secrets are never
kept or replayed, and `Idempotency-Key` keeps its promises through retries, crashes and
time."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db import tables
from collabdesk.bootstrap import Container
from collabdesk.services import idempotency
from collabdesk.worker.runner import DeadlineRunner
from tests.e2e.http_world import HttpWorld, assert_problem, bearer, ok

PARTIES = ("consumer", "agent", "owner")


def events_of(world: HttpWorld, who: str, wo_id: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = ok(world.get(who, f"/v1/work-orders/{wo_id}/events",
                                               {"limit": 500}))["items"]
    return items


# ---- platform-only notes and their evidence --------------------------------------------------

@pytest.fixture
def platform_note(world: HttpWorld) -> dict[str, Any]:
    """A verifier's platform-only note, with a file, on a case every party can see."""
    wo = world.awaiting_verification("not_related")
    before = world.work_order(wo["id"], "consumer")
    evidence_id = world.evidence("verifier", b"internal: the parcel went to another shop")
    note = ok(world.post("verifier", f"/v1/work-orders/{wo['id']}/notes", {
        "text": "checked the logistics records", "visibility": "platform",
        "evidence_ids": [evidence_id]}), 201)
    return {"wo": wo, "before": before, "evidence_id": evidence_id, "note": note}


def test_evidence_on_a_platform_only_note_cannot_be_read_by_the_parties(
        world: HttpWorld, platform_note: dict[str, Any]) -> None:
    evidence_id = platform_note["evidence_id"]
    for who in PARTIES:
        assert_problem(world.get(who, f"/v1/evidence/{evidence_id}"), 404, "not_found", who)
    for who in ("verifier", "adjudicator", "triage", "supervisor"):
        assert world.get(who, f"/v1/evidence/{evidence_id}").status_code == 200, who


def test_the_parties_see_no_trace_of_a_platform_only_note_in_the_events(
        world: HttpWorld, platform_note: dict[str, Any]) -> None:
    wo_id = platform_note["wo"]["id"]
    for who in PARTIES:
        events = events_of(world, who, wo_id)
        text = json.dumps(events)
        assert platform_note["evidence_id"] not in text, who
        assert platform_note["note"]["id"] not in text, who
        assert "platform" not in text, who
        # The chain they see is whole: no gap betrays that something is missing.
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        assert events[0]["prev_hash"] is None
        assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
    # ...nor in its version (the ETag a party would send back with If-Match).
    assert world.work_order(wo_id, "consumer")["version"] == platform_note["before"]["version"]


def test_the_platform_sees_the_note_in_the_events_on_its_own_chain(
        world: HttpWorld, platform_note: dict[str, Any]) -> None:
    events = events_of(world, "adjudicator", platform_note["wo"]["id"])
    private = [e for e in events if e["visibility"] == "platform"]
    assert [(e["type"], e["seq"], e["prev_hash"]) for e in private] == [
        ("note_added", 1, None)]
    assert private[0]["data"]["evidence_ids"] == [platform_note["evidence_id"]]
    assert private[0]["data"]["note_id"] == platform_note["note"]["id"]


def test_the_store_cannot_cite_the_platforms_private_evidence(
        world: HttpWorld, platform_note: dict[str, Any]) -> None:
    wo = world.open()
    for where, body in ((f"/v1/work-orders/{wo['id']}/notes",
                         {"text": "see this", "evidence_ids": [platform_note["evidence_id"]]}),
                        (f"/v1/work-orders/{platform_note['wo']['id']}/notes",
                         {"text": "see this", "evidence_ids": [platform_note["evidence_id"]]})):
        for who in ("agent", "consumer"):
            response = world.post(who, where, body)
            if response.status_code != 422:  # the case may be closed to notes for them
                assert response.status_code in (403, 409), response.text
                continue
            assert platform_note["evidence_id"] in response.json()["detail"]


def test_a_consumers_own_platform_only_note_is_theirs_and_the_platforms(
        world: HttpWorld) -> None:
    wo = world.open()
    mine = world.evidence("consumer", b"my bank statement")
    note = ok(world.post("consumer", f"/v1/work-orders/{wo['id']}/notes", {
        "text": "for the platform only", "visibility": "platform",
        "evidence_ids": [mine]}), 201)
    assert note["id"] in json.dumps(events_of(world, "consumer", wo["id"]))
    assert note["id"] in json.dumps(events_of(world, "triage", wo["id"]))
    assert note["id"] not in json.dumps(events_of(world, "agent", wo["id"]))
    assert_problem(world.get("agent", f"/v1/evidence/{mine}"), 404, "not_found")
    listed = ok(world.get("agent", f"/v1/work-orders/{wo['id']}/notes"))["items"]
    assert note["id"] not in json.dumps(listed)


def test_evidence_cited_for_everyone_later_becomes_readable_by_the_parties(
        world: HttpWorld) -> None:
    wo = world.in_adjudication()
    shared = world.evidence("adjudicator", b"courier statement")
    path = f"/v1/work-orders/{wo['id']}/notes"
    ok(world.post("adjudicator", path, {"text": "private", "visibility": "platform",
                                        "evidence_ids": [shared]}), 201)
    assert_problem(world.get("consumer", f"/v1/evidence/{shared}"), 404, "not_found")
    ok(world.post("adjudicator", path, {"text": "for all", "evidence_ids": [shared]}), 201)
    assert world.get("consumer", f"/v1/evidence/{shared}").status_code == 200


def test_events_page_through_both_chains_without_gaps(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    path = f"/v1/work-orders/{wo['id']}/notes"
    for n in range(3):
        ok(world.post("adjudicator", path, {"text": f"private {n}", "visibility": "platform"}),
           201)
        ok(world.post("adjudicator", path, {"text": f"public {n}"}), 201)
    every = events_of(world, "adjudicator", wo["id"])
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(world.get("adjudicator", f"/v1/work-orders/{wo['id']}/events", params))
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == every
    assert sum(e["visibility"] == "platform" for e in every) == 3


# ---- secrets -------------------------------------------------------------------------------

def test_a_replayed_account_creation_does_not_show_the_token_again(
        world: HttpWorld, container: Container) -> None:
    body = {"name": "New agent", "role": "merchant_agent", "store_id": "s-tmall",
            "login": "new-agent", "password": "correct horse battery"}
    key = {"Idempotency-Key": "create-agent-1"}
    first = ok(world.post("admin", "/v1/accounts", body, headers=key), 201)
    token = first["token"]
    again = world.post("admin", "/v1/accounts", body, headers=key)
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert "token" not in again.json()
    assert {k: v for k, v in first.items() if k != "token"} == again.json()
    with container.engine.connect() as conn:
        stored = conn.execute(select(tables.idempotency_keys)).all()
    dump = json.dumps([list(map(str, row)) for row in stored])
    assert token not in dump
    assert "correct horse battery" not in dump
    assert ok(world.client.get("/v1/accounts/me", headers=bearer(token)))["id"] == first["id"]


# ---- idempotency through time and crashes ----------------------------------------------------

def _open_body(world: HttpWorld) -> dict[str, Any]:
    return {"order_id": world.order(), "category": "damaged", "claim": "broken"}


def test_a_key_whose_first_request_is_still_running_is_in_use_with_retry_after(
        world: HttpWorld, container: Container) -> None:
    raw = json.dumps(_open_body(world)).encode()
    # The first request with this body reserved the key and is still running.
    fingerprint = idempotency.request_fingerprint(
        world.tokens["consumer"], "POST", "/v1/work-orders", [raw])
    assert idempotency.begin(container.ctx, world.ids["consumer"], "slow-1",
                             fingerprint) is None
    response = world.client.post("/v1/work-orders", content=raw, headers={
        **world.headers("consumer"), "content-type": "application/json",
        "Idempotency-Key": "slow-1"})
    assert_problem(response, 409, "idempotency_key_in_use")
    assert 1 <= int(response.headers["retry-after"]) <= 60


def test_a_reservation_left_by_a_crash_lapses_and_the_retry_runs(
        world: HttpWorld, container: Container, clock: FixedClock) -> None:
    body = _open_body(world)
    scope = world.ids["consumer"]
    idempotency.begin(container.ctx, scope, "crashed-1", "whatever-was-sent")  # then kill -9
    assert_problem(world.post("consumer", "/v1/work-orders", body,
                              headers={"Idempotency-Key": "crashed-1"}),
                   409, "idempotency_key_reused")
    clock.advance(61)
    retried = world.post("consumer", "/v1/work-orders", body,
                         headers={"Idempotency-Key": "crashed-1"})
    assert retried.status_code == 201
    again = world.post("consumer", "/v1/work-orders", body,
                       headers={"Idempotency-Key": "crashed-1"})
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == retried.json()


def test_a_key_is_kept_for_24_hours_then_free_again(
        world: HttpWorld, clock: FixedClock) -> None:
    headers = {"Idempotency-Key": "daily"}
    ok(world.post("consumer", "/v1/work-orders", _open_body(world), headers=headers), 201)
    clock.advance(23 * 3600)
    assert_problem(world.post("consumer", "/v1/work-orders", _open_body(world),
                              headers=headers), 409, "idempotency_key_reused")
    clock.advance(3601)
    fresh = world.post("consumer", "/v1/work-orders", _open_body(world), headers=headers)
    assert fresh.status_code == 201
    assert "idempotent-replayed" not in fresh.headers


def test_the_deadline_runner_purges_expired_keys(world: HttpWorld, container: Container,
                                                 clock: FixedClock) -> None:
    for n in range(3):
        ok(world.post("consumer", "/v1/work-orders", _open_body(world),
                      headers={"Idempotency-Key": f"old-{n}"}), 201)
    clock.advance(25 * 3600)
    ok(world.post("consumer", "/v1/work-orders", _open_body(world),
                  headers={"Idempotency-Key": "new"}), 201)
    assert DeadlineRunner(container.ctx, 1.0).purge_once() == 3
    with container.engine.connect() as conn:
        keys = [r.key for r in conn.execute(select(tables.idempotency_keys.c.key))]
    assert keys == ["new"]


def test_a_server_error_frees_the_key_for_a_real_retry(
        world: HttpWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    from collabdesk.services import work_orders

    real = work_orders.open_work_order
    body = _open_body(world)
    headers = {"Idempotency-Key": "flaky"}

    def failing(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("database fell over")
    monkeypatch.setattr(work_orders, "open_work_order", failing)
    assert_problem(world.post("consumer", "/v1/work-orders", body, headers=headers),
                   500, "internal_error")
    monkeypatch.setattr(work_orders, "open_work_order", real)
    retried = world.post("consumer", "/v1/work-orders", body, headers=headers)
    assert retried.status_code == 201
    assert "idempotent-replayed" not in retried.headers


# ---- references in bodies ------------------------------------------------------------------

def test_an_order_for_an_unknown_consumer_is_refused(world: HttpWorld) -> None:
    body = {"id": "o-ghost", "store_id": "s-tmall", "consumer_id": "acc_nobody",
            "amount_cents": 100, "paid_at": "2026-11-01T00:00:00Z"}
    assert_problem(world.post("integration", "/v1/orders", body), 404, "not_found")


def test_an_order_for_an_account_that_is_no_consumer_is_refused(world: HttpWorld) -> None:
    body = {"id": "o-staff", "store_id": "s-tmall", "consumer_id": world.ids["agent"],
            "amount_cents": 100, "paid_at": "2026-11-01T00:00:00Z"}
    problem = assert_problem(world.post("integration", "/v1/orders", body), 422,
                             "validation_error")
    assert "consumer" in problem["detail"]


def test_the_consumer_is_told_when_the_confirmation_window_closes_the_case(
        world: HttpWorld, client: TestClient) -> None:
    wo = world.awaiting_consumer()
    world.advance(48 * 3600)
    assert world.work_order(wo["id"], "consumer")["state"] == "resolved"
    inbox = ok(world.get("consumer", "/v1/inbox"))["items"]
    closing = [i for i in inbox if i["work_order_id"] == wo["id"]
               and i["kind"] == "work_order_closed"]
    assert len(closing) == 1
    assert wo["id"] in closing[0]["text"]
