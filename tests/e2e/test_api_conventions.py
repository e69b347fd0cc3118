"""API tests over HTTP: the conventions of api.md that every endpoint shares.

Authentication, problem+json, 404-versus-403, Idempotency-Key, ETag/If-Match, cursor
pagination, the service endpoints and the test clock.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collabdesk.adapters.clock import FixedClock
from collabdesk.api.app import create_app
from collabdesk.bootstrap import Container
from collabdesk.services.context import ServiceContext
from tests.conftest import ADMIN_TOKEN, START
from tests.e2e.http_world import (
    JSON,
    PROBLEM_TYPE,
    HttpWorld,
    assert_problem,
    bearer,
    build_world,
    iso,
    ok,
)

HOUR = 3600
DAY = 24 * HOUR


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)


# ---- authentication -----------------------------------------------------------------------

def test_missing_or_unknown_token_is_refused_with_401_problem(client: TestClient) -> None:
    for headers, (method, path) in itertools.product(
        ({}, {"Authorization": "Bearer not-a-token-anyone-has"},
         {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": "Bearer "}),
        (("GET", "/v1/work-orders"), ("POST", "/v1/work-orders"), ("POST", "/v1/stores"),
         ("GET", "/v1/inbox"), ("POST", "/v1/evidence"), ("GET", "/v1/stores/s-any/metrics")),
    ):
        response = client.request(method, path, headers=headers, json={})
        assert response.status_code == 401, (headers, method, path, response.text)
        assert response.headers["content-type"].startswith(PROBLEM_TYPE)
        body = response.json()
        assert {"type", "title", "status", "detail", "code"} <= body.keys()
        assert body["status"] == 401
        assert isinstance(body["code"], str)


def test_a_valid_token_is_accepted(client: TestClient) -> None:
    assert ok(client.get("/v1/accounts/me", headers=bearer(ADMIN_TOKEN)))["role"] == "admin"


# ---- problem+json -------------------------------------------------------------------------

def test_errors_are_problem_json_with_type_title_status_detail_and_code(
        world: HttpWorld) -> None:
    response = world.post("consumer", "/v1/work-orders", {"category": "damaged"})
    body = assert_problem(response, 422, "validation_error")
    assert isinstance(body["type"], str)
    assert isinstance(body["title"], str)
    assert body["title"]
    assert "order_id" in body["detail"]
    assert "claim" in body["detail"]


def test_unknown_path_is_a_not_found_problem(world: HttpWorld) -> None:
    assert_problem(world.get("triage", "/v1/no-such-thing"), 404, "not_found")


def test_successful_answers_are_json(world: HttpWorld) -> None:
    response = world.get("triage", "/v1/work-orders")
    assert response.headers["content-type"].startswith("application/json")


# ---- not found versus forbidden -----------------------------------------------------------

def test_invisible_work_order_is_not_found_but_a_visible_one_is_forbidden_to_a_wrong_role(
        world: HttpWorld) -> None:
    wo = world.in_adjudication()
    body = {"ruling": "for_merchant", "rationale": "r"}
    # Another store's merchant and another consumer may not even see it: 404.
    assert_problem(world.post("other_owner", f"/v1/work-orders/{wo['id']}/judgment", body),
                   404, "not_found")
    assert_problem(world.post("consumer2", f"/v1/work-orders/{wo['id']}/judgment", body),
                   404, "not_found")
    # The store and the consumer see it, but may not rule: 403.
    assert_problem(world.post("owner", f"/v1/work-orders/{wo['id']}/judgment", body),
                   403, "forbidden")
    assert_problem(world.post("consumer", f"/v1/work-orders/{wo['id']}/judgment", body),
                   403, "forbidden")
    assert world.work_order(wo["id"])["state"] == "in_adjudication"


# ---- Idempotency-Key ----------------------------------------------------------------------

def _contacts(world: HttpWorld, wo_id: str) -> list[JSON]:
    items: list[JSON] = ok(world.get("agent", f"/v1/work-orders/{wo_id}/contacts"))["items"]
    return items


def _contact_body(note: str = "called") -> JSON:
    return {"channel": "phone", "contacted_at": iso(START), "outcome": "reached",
            "summary": note}


def test_same_idempotency_key_and_body_replays_the_first_response_without_a_second_effect(
        world: HttpWorld) -> None:
    wo = world.open()
    path = f"/v1/work-orders/{wo['id']}/contacts"
    key = {"Idempotency-Key": "contact-1"}
    first = world.post("agent", path, _contact_body(), headers=key)
    second = world.post("agent", path, _contact_body(), headers=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert len(_contacts(world, wo["id"])) == 1


def test_without_an_idempotency_key_each_post_has_its_effect(world: HttpWorld) -> None:
    wo = world.open()
    path = f"/v1/work-orders/{wo['id']}/contacts"
    ok(world.post("agent", path, _contact_body()), 201)
    ok(world.post("agent", path, _contact_body()), 201)
    assert len(_contacts(world, wo["id"])) == 2


def test_replayed_open_answers_the_same_work_order(world: HttpWorld) -> None:
    order_id = world.order()
    body = {"order_id": order_id, "category": "damaged", "claim": "broken"}
    key = {"Idempotency-Key": "open-1"}
    first = ok(world.post("consumer", "/v1/work-orders", body, headers=key), 201)
    again = world.post("consumer", "/v1/work-orders", body, headers=key)
    assert again.status_code == 201
    assert again.json() == first
    listed = ok(world.get("consumer", "/v1/work-orders"))["items"]
    assert [w["id"] for w in listed] == [first["id"]]


def test_same_idempotency_key_with_another_body_is_refused_with_idempotency_key_reused(
        world: HttpWorld) -> None:
    wo = world.open()
    path = f"/v1/work-orders/{wo['id']}/contacts"
    key = {"Idempotency-Key": "contact-2"}
    ok(world.post("agent", path, _contact_body("first"), headers=key), 201)
    response = world.post("agent", path, _contact_body("second"), headers=key)
    assert_problem(response, 409, "idempotency_key_reused")
    assert [c["summary"] for c in _contacts(world, wo["id"])] == ["first"]


def test_idempotency_keys_belong_to_their_caller(world: HttpWorld) -> None:
    key = {"Idempotency-Key": "shared-key"}
    mine = world.order(consumer="consumer")
    theirs = world.order(consumer="consumer2")
    first = ok(world.post("consumer", "/v1/work-orders",
                          {"order_id": mine, "category": "other", "claim": "x"},
                          headers=key), 201)
    second = ok(world.post("consumer2", "/v1/work-orders",
                           {"order_id": theirs, "category": "other", "claim": "x"},
                           headers=key), 201)
    assert first["id"] != second["id"]


def test_a_replayed_refusal_is_the_same_refusal(world: HttpWorld) -> None:
    wo = world.open()
    key = {"Idempotency-Key": "reply-1"}
    body = {"option": "unresolved_no_agreement", "statement": "no deal"}
    first = world.post("agent", f"/v1/work-orders/{wo['id']}/reply", body, headers=key)
    assert_problem(first, 422, "reply_requirements_not_met")
    again = world.post("agent", f"/v1/work-orders/{wo['id']}/reply", body, headers=key)
    assert_problem(again, 422, "reply_requirements_not_met")
    assert again.json() == first.json()


# ---- ETag and If-Match --------------------------------------------------------------------

def _etag(world: HttpWorld, wo_id: str) -> str:
    return world.get("triage", f"/v1/work-orders/{wo_id}").headers["ETag"]


def _version_of(etag: str) -> int:
    return int(etag.removeprefix("W/").strip('"'))


def test_etag_of_a_work_order_is_its_version_and_moves_with_each_change(
        world: HttpWorld) -> None:
    wo = world.open()
    first = _etag(world, wo["id"])
    assert _version_of(first) == wo["version"]
    ok(world.contact(wo["id"]), 201)
    second = _etag(world, wo["id"])
    assert _version_of(second) == world.work_order(wo["id"])["version"]
    assert second != first


def test_matching_if_match_lets_the_change_through(world: HttpWorld) -> None:
    wo = world.open()
    etag = _etag(world, wo["id"])
    ok(world.post("agent", f"/v1/work-orders/{wo['id']}/contacts", _contact_body(),
                  headers={"If-Match": etag}), 201)
    current = world.work_order(wo["id"])["version"]
    got = ok(world.post("agent", f"/v1/work-orders/{wo['id']}/reply",
                        {"option": "unresolved_no_agreement", "statement": "no deal"},
                        headers={"If-Match": str(current)}))
    assert got["state"] == "in_adjudication"


def test_stale_if_match_is_refused_with_version_conflict_and_nothing_changes(
        world: HttpWorld) -> None:
    wo = world.open()
    stale = _etag(world, wo["id"])
    ok(world.contact(wo["id"]), 201)
    response = world.post("agent", f"/v1/work-orders/{wo['id']}/reply",
                          {"option": "unresolved_no_agreement", "statement": "no deal"},
                          headers={"If-Match": stale})
    assert_problem(response, 412, "version_conflict")
    assert world.work_order(wo["id"])["state"] == "awaiting_merchant"


def test_every_state_changing_post_checks_if_match(world: HttpWorld) -> None:
    wo = world.open()
    stale = {"If-Match": f'"{wo["version"] + 7}"'}
    for who, action, body in (
        ("agent", "contacts", _contact_body()),
        ("agent", "reply", {"option": "not_related", "statement": "s"}),
        ("consumer", "notes", {"text": "t"}),
        ("consumer", "consumer-response", {"accept": True}),
        ("verifier", "verification", {"outcome": "contact_verified", "rationale": "r"}),
        ("adjudicator", "judgment", {"ruling": "for_merchant", "rationale": "r"}),
        ("owner", "appeal", {"statement": "s"}),
        ("supervisor", "appeal-decision", {"decision": "upheld", "rationale": "r"}),
        ("triage", "settlement", {"amount_cents": 1, "rationale": "r"}),
        ("consumer", "withdraw", {}),
    ):
        response = world.post(who, f"/v1/work-orders/{wo['id']}/{action}", body,
                              headers=stale)
        assert_problem(response, 412, "version_conflict", action)
    assert world.work_order(wo["id"]) == wo


def test_if_match_that_is_not_a_version_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    wo = world.open()
    response = world.post("consumer", f"/v1/work-orders/{wo['id']}/withdraw", {},
                          headers={"If-Match": "yesterday"})
    assert_problem(response, 422, "validation_error")


# ---- lists and pagination -----------------------------------------------------------------

def _walk(world: HttpWorld, who: str, limit: int | None = None,
          **filters: Any) -> Iterator[JSON]:
    """Every page of GET /v1/work-orders, checking each page's shape."""
    cursor: str | None = None
    while True:
        params: dict[str, Any] = dict(filters)
        if limit is not None:
            params["limit"] = limit
        if cursor is not None:
            params["cursor"] = cursor
        page = ok(world.get(who, "/v1/work-orders", params=params))
        assert set(page) >= {"items", "next_cursor"}
        if limit is not None:
            assert len(page["items"]) <= limit
        yield page
        cursor = page["next_cursor"]
        if cursor is None:
            return


def test_pages_walk_every_work_order_once_soonest_due_first(world: HttpWorld,
                                                            clock: FixedClock) -> None:
    worry_free = world.open(kind="worry_free")  # no due_at: after every dated one
    opened = []
    for i in range(7):
        clock.advance(60)
        opened.append(world.open(consumer="consumer" if i % 2 else "consumer2"))
    pages = list(_walk(world, "triage", limit=3))
    assert [len(p["items"]) for p in pages] == [3, 3, 2]
    items = [w for p in pages for w in p["items"]]
    assert [w["id"] for w in items] == [w["id"] for w in opened] + [worry_free["id"]]
    dues = [w["due_at"] for w in items[:-1]]
    assert dues == sorted(dues)


def test_default_page_is_50_items(world: HttpWorld, clock: FixedClock) -> None:
    for _ in range(51):
        world.open()
    pages = list(_walk(world, "consumer"))
    assert [len(p["items"]) for p in pages] == [50, 1]
    assert len({w["id"] for p in pages for w in p["items"]}) == 51


def test_limit_is_between_1_and_500(world: HttpWorld) -> None:
    world.open()
    assert len(ok(world.get("triage", "/v1/work-orders", params={"limit": 500}))["items"]) == 1
    assert len(ok(world.get("triage", "/v1/work-orders", params={"limit": 1}))["items"]) == 1
    for limit in (501, 0, -1, "many"):
        for path in ("/v1/work-orders", "/v1/inbox"):
            response = world.get("triage", path, params={"limit": limit})
            assert_problem(response, 422, "validation_error", (path, limit))


def test_cursor_that_the_server_did_not_issue_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    wo = world.open()
    paths = ["/v1/work-orders", "/v1/inbox", f"/v1/work-orders/{wo['id']}/contacts",
             f"/v1/work-orders/{wo['id']}/events", f"/v1/work-orders/{wo['id']}/deliveries"]
    # not base64; and base64 of JSON ["x"], {"a": 1}, "\u0000", ["2026-11-02", "id"], -3
    cursors = ["%%%", "WyJ4Il0", "eyJhIjogMX0", "Ilx1MDAwMCI", "WyIyMDI2LTExLTAyIiwgImlkIl0",
               "LTM"]
    for path in paths:
        for cursor in cursors:
            response = world.get("agent", path, params={"cursor": cursor})
            assert response.status_code == 422, (path, cursor, response.text)
            assert_problem(response, 422, "validation_error")


def test_contacts_and_events_page_without_gaps(world: HttpWorld) -> None:
    wo = world.open()
    for _ in range(3):
        ok(world.contact(wo["id"]), 201)
    for path, limit, total in ((f"/v1/work-orders/{wo['id']}/contacts", 1, 3),
                               (f"/v1/work-orders/{wo['id']}/events", 2, 4)):
        seen: list[JSON] = []
        cursor: str | None = None
        while True:
            params: dict[str, Any] = {"limit": limit}
            if cursor:
                params["cursor"] = cursor
            page = ok(world.get("owner", path, params=params))
            assert len(page["items"]) <= limit
            seen += page["items"]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert len(seen) == total, path
        key = "id" if "contacts" in path else "seq"
        assert len({item[key] for item in seen}) == total, path
    events = ok(world.get("owner", f"/v1/work-orders/{wo['id']}/events"))["items"]
    assert [e["seq"] for e in events] == [1, 2, 3, 4]


def test_list_filters_by_state_store_and_due_before(world: HttpWorld,
                                                    clock: FixedClock) -> None:
    early = world.open()
    clock.advance(HOUR)
    adjudicating = world.in_adjudication()
    clock.advance(HOUR)
    taobao = world.open(store_id="s-taobao")

    def ids(**filters: Any) -> list[str]:
        return [w["id"] for p in _walk(world, "triage", limit=2, **filters)
                for w in p["items"]]

    assert ids(state="awaiting_merchant") == [early["id"], taobao["id"]]
    assert ids(state="in_adjudication") == [adjudicating["id"]]
    assert ids(store_id="s-taobao") == [taobao["id"]]
    assert ids(store_id="s-tmall") == [early["id"], adjudicating["id"]]
    assert ids(due_before=iso(START + timedelta(hours=24, minutes=30))) == [early["id"]]
    assert ids(due_before=iso(START + timedelta(hours=25, minutes=30))) == [
        early["id"], adjudicating["id"]]
    assert ids(state="awaiting_merchant", store_id="s-tmall",
               due_before=iso(START + timedelta(days=2))) == [early["id"]]
    assert ids(state="judged") == []


def test_overdue_filter_finds_cases_past_the_adjudication_sla(world: HttpWorld) -> None:
    late = world.in_adjudication()  # replied "no agreement": the 48 h SLA starts now
    fresh = world.open()  # times out after 24 h: its SLA ends 24 h after "late"s
    world.advance(48 * 3600)
    overdue = [w["id"] for w in ok(world.get("supervisor", "/v1/work-orders",
                                             params={"overdue": "true"}))["items"]]
    assert overdue == [late["id"]]
    assert ok(world.get("supervisor", f"/v1/work-orders/{late['id']}"))["sla_overdue"] is True
    on_time = [w["id"] for w in ok(world.get("supervisor", "/v1/work-orders",
                                             params={"overdue": "false"}))["items"]]
    assert late["id"] not in on_time
    assert fresh["id"] in on_time


def test_malformed_list_filter_is_refused_with_validation_error(world: HttpWorld) -> None:
    for params in ({"state": "sleeping"}, {"due_before": "tomorrow"},
                   {"due_before": "2026-11-03T08:00:00"}):
        assert_problem(world.get("triage", "/v1/work-orders", params=params), 422,
                       "validation_error", params)


# ---- service endpoints --------------------------------------------------------------------

def test_healthz_answers_ok(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_metrics_endpoint_speaks_prometheus_text_to_the_operator(client: TestClient) -> None:
    client.get("/healthz")
    response = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "# TYPE collabdesk_http_requests_total counter" in response.text
    assert 'route="/healthz"' in response.text


def test_openapi_describes_the_api(client: TestClient) -> None:
    spec = ok(client.get("/openapi.json"))
    assert spec["openapi"].startswith("3.")
    for path in ("/v1/work-orders", "/v1/work-orders/{work_order_id}/reply",
                 "/v1/evidence", "/v1/inbox", "/v1/violations", "/v1/test-clock/advance"):
        assert path in spec["paths"], path


def test_interactive_docs_are_served_with_their_assets_from_this_server(
        client: TestClient) -> None:
    response = client.get("/docs")
    assert response.status_code == 200
    assert "text/html" in response.headers["content-type"]
    scripts = re.findall(r'<script src="([^"]+)"', response.text)
    styles = re.findall(r'<link rel="stylesheet" href="([^"]+)"', response.text)
    assert scripts
    assert styles
    for asset in scripts + styles:
        assert asset.startswith("/static/"), asset  # nothing from a CDN
        assert client.get(asset).status_code == 200, asset
    assert "/openapi.json" in client.get(scripts[-1]).text
    assert "script-src 'self'" in response.headers["content-security-policy"]


# ---- the test clock -----------------------------------------------------------------------

def test_test_clock_tells_the_time(client: TestClient) -> None:
    assert ok(client.get("/v1/test-clock")) == {"now": "2026-11-02T08:00:00Z"}


def test_admin_advances_the_test_clock(world: HttpWorld) -> None:
    got = world.advance(90)
    assert got == {"now": "2026-11-02T08:01:30Z", "fired": 0, "sent": 0}
    assert ok(world.client.get("/v1/test-clock"))["now"] == "2026-11-02T08:01:30Z"


def test_only_an_admin_advances_the_test_clock(world: HttpWorld) -> None:
    for who in ("triage", "supervisor", "owner", "consumer"):
        response = world.post(who, "/v1/test-clock/advance", {"seconds": 60})
        assert_problem(response, 403, "forbidden", who)
    assert ok(world.client.get("/v1/test-clock"))["now"] == "2026-11-02T08:00:00Z"


def test_malformed_advance_is_refused_with_validation_error(world: HttpWorld) -> None:
    for body in ({}, {"seconds": -1}, {"seconds": "60"}, {"seconds": 1.5}):
        assert_problem(world.post("admin", "/v1/test-clock/advance", body), 422,
                       "validation_error", body)
    assert ok(world.client.get("/v1/test-clock"))["now"] == "2026-11-02T08:00:00Z"


def test_advance_fires_every_due_timer_in_due_order_and_counts_them(
        world: HttpWorld, clock: FixedClock) -> None:
    first = world.open()
    clock.advance(HOUR)
    second = world.open()
    # One jump over both deadlines: reminders (12 h and 2 h before) then timeouts. Were a
    # timeout fired before its reminders, the reminders would find the window closed.
    got = world.advance(DAY)
    assert got["fired"] == 6
    items = ok(world.get("agent", "/v1/inbox"))["items"]
    assert [(i["kind"], i["work_order_id"]) for i in items] == [
        ("timeout", second["id"]), ("timeout", first["id"]),
        ("reminder", second["id"]), ("reminder", first["id"]),
        ("reminder", second["id"]), ("reminder", first["id"]),
        ("work_order_created", second["id"]), ("work_order_created", first["id"])]
    for wo in (first, second):
        got_wo = world.work_order(wo["id"])
        assert (got_wo["state"], got_wo["evidence_waived"]) == ("in_adjudication", True)
    assert world.advance(DAY)["fired"] == 0


def test_advance_fires_timers_scheduled_by_earlier_timers(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    world.advance(3 * DAY)  # confirmation lapses at 48 h
    assert world.work_order(wo["id"])["state"] == "resolved"


@pytest.fixture
def clockless_client(container: Container) -> Iterator[TestClient]:
    container.test_clock = None
    with TestClient(create_app(container, start_runner=False),
                    base_url="http://127.0.0.1") as c:
        yield c


def test_test_clock_paths_are_not_found_when_the_test_clock_is_off(
        clockless_client: TestClient) -> None:
    for headers in (bearer(ADMIN_TOKEN), {}):
        assert_problem(clockless_client.get("/v1/test-clock", headers=headers), 404,
                       "not_found", headers)
        response = clockless_client.post("/v1/test-clock/advance", json={"seconds": 60},
                                         headers=headers)
        assert_problem(response, 404, "not_found", headers)
    assert clockless_client.get("/healthz").status_code == 200
