"""The edge every request passes (api/edge.py), tried as a careless user and an attacker:
authentication before the body, body limits while streaming, bounded input, protective
headers, and a problem+json 500 with an error id for whatever else goes wrong."""

from __future__ import annotations

import json
import logging
from collections.abc import MutableMapping
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from collabdesk.adapters.db import tables
from collabdesk.api.app import create_app
from collabdesk.bootstrap import Container
from collabdesk.services import work_orders
from tests.conftest import ADMIN_TOKEN
from tests.e2e.http_world import PROBLEM_TYPE, HttpWorld, assert_problem, bearer, ok

MIB = 1024 * 1024


# ---- a raw ASGI call, to see exactly how much of a body the server pulled ------------------

class Sent:
    def __init__(self) -> None:
        self.status = 0
        self.headers: dict[str, str] = {}
        self.body = b""

    def json(self) -> Any:
        return json.loads(self.body)


def call(app: FastAPI, method: str, path: str, headers: dict[str, str],
         chunks: list[bytes]) -> tuple[Sent, int]:
    """Send `chunks` as the body; returns the answer and how many chunks were pulled."""
    pulled = 0

    async def receive() -> dict[str, Any]:
        nonlocal pulled
        if pulled >= len(chunks):
            await anyio.sleep(3600)  # a client that waits for the answer
        pulled += 1
        return {"type": "http.request", "body": chunks[pulled - 1],
                "more_body": pulled < len(chunks)}

    sent = Sent()

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            sent.status = message["status"]
            sent.headers = {k.decode().lower(): v.decode() for k, v in message["headers"]}
        elif message["type"] == "http.response.body":
            sent.body += message.get("body", b"")

    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": method, "path": path, "raw_path": path.encode(), "root_path": "",
             "scheme": "http", "query_string": b"", "server": ("127.0.0.1", 80),
             "client": ("127.0.0.1", 5000),
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}

    async def main() -> None:
        with anyio.fail_after(30):
            await app(scope, receive, send)
    anyio.run(main)
    return sent, pulled


@pytest.fixture
def app(container: Container) -> FastAPI:
    return create_app(container, start_runner=False)


def idempotency_rows(container: Container) -> int:
    with container.engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(
            tables.idempotency_keys)).scalar_one())


# ---- authentication comes before the body --------------------------------------------------

def test_an_unauthenticated_request_is_refused_before_its_body_is_read(
        app: FastAPI, container: Container) -> None:
    chunks = [b"x" * MIB] * 50  # 50 MiB that would follow
    for token in (None, "not-a-token"):
        headers = {"content-type": "application/json", "idempotency-key": "k-1",
                   "content-length": str(50 * MIB)}
        if token:
            headers["authorization"] = f"Bearer {token}"
        sent, pulled = call(app, "POST", "/v1/work-orders", headers, chunks)
        assert sent.status == 401
        assert sent.json()["code"] == "unauthenticated"
        assert pulled == 0
    assert idempotency_rows(container) == 0  # nothing stored for who is not known


def test_an_unauthenticated_upload_is_refused_before_its_body_is_read(app: FastAPI) -> None:
    sent, pulled = call(app, "POST", "/v1/evidence",
                        {"content-type": "multipart/form-data; boundary=b",
                         "authorization": "Bearer nobody", "idempotency-key": "u-1"},
                        [b"--b\r\n" + b"y" * MIB] * 20)
    assert (sent.status, pulled) == (401, 0)


def test_a_malformed_body_without_a_token_is_401_not_422(client: TestClient) -> None:
    response = client.post("/v1/work-orders", content=b"{not json",
                           headers={"content-type": "application/json"})
    assert_problem(response, 401, "unauthenticated")


# ---- the body limit --------------------------------------------------------------------------

def test_a_declared_json_body_over_one_mib_is_refused_without_reading_it(
        app: FastAPI, container: Container) -> None:
    sent, pulled = call(app, "POST", "/v1/work-orders",
                        {"authorization": f"Bearer {ADMIN_TOKEN}", "idempotency-key": "big",
                         "content-type": "application/json",
                         "content-length": str(MIB + 1)}, [b" " * (MIB + 1)])
    assert sent.status == 413
    assert sent.headers["content-type"].startswith(PROBLEM_TYPE)
    assert sent.json()["code"] == "payload_too_large"
    assert pulled == 0
    assert idempotency_rows(container) == 0


def test_a_streamed_body_is_cut_off_as_soon_as_it_passes_the_limit(app: FastAPI) -> None:
    chunks = [b" " * (256 * 1024)] * 100  # 25 MiB, no Content-Length (chunked)
    sent, pulled = call(app, "POST", "/v1/work-orders",
                        {"authorization": f"Bearer {ADMIN_TOKEN}",
                         "content-type": "application/json", "transfer-encoding": "chunked"},
                        chunks)
    assert sent.status == 413
    assert sent.json()["code"] == "payload_too_large"
    assert pulled == 5  # 1 MiB is four chunks: the fifth crossed the limit, no more read


def test_an_upload_over_the_evidence_limit_is_413_evidence_too_large(
        app: FastAPI, container: Container) -> None:
    limit = container.settings.evidence_max_bytes
    sent, pulled = call(app, "POST", "/v1/evidence",
                        {"authorization": f"Bearer {ADMIN_TOKEN}",
                         "content-type": "multipart/form-data; boundary=b",
                         "transfer-encoding": "chunked"},
                        [b"z" * MIB] * (limit // MIB + 5))
    assert sent.status == 413
    assert sent.json()["code"] == "evidence_too_large"
    assert pulled == limit // MIB + 1


def test_an_ordinary_body_under_the_limit_goes_through(world: HttpWorld) -> None:
    order_id = world.order()
    body = {"order_id": order_id, "category": "damaged", "claim": "x" * 5000}
    ok(world.post("consumer", "/v1/work-orders", body), 201)


# ---- bounded input: 422 naming the field, never a 500 -----------------------------------------

def test_amounts_past_what_the_database_holds_are_refused(world: HttpWorld) -> None:
    consumer_id = world.ids["consumer"]
    for n, amount in enumerate((2**63, 10**30, -1)):
        response = world.post("integration", "/v1/orders", {
            "id": f"o-big-{n}", "store_id": "s-tmall", "consumer_id": consumer_id,
            "amount_cents": amount, "paid_at": "2026-11-01T00:00:00Z"})
        problem = assert_problem(response, 422, "validation_error", amount)
        assert "amount_cents" in problem["detail"]
    wo = world.in_adjudication()
    response = world.post("adjudicator", f"/v1/work-orders/{wo['id']}/judgment", {
        "ruling": "for_consumer", "rationale": "r",
        "remedy": {"type": "refund", "amount_cents": 2**63}})
    assert "remedy.amount_cents" in assert_problem(response, 422, "validation_error")["detail"]


def test_dates_outside_the_calendar_are_refused(world: HttpWorld) -> None:
    for as_of in ("9999-12-31", "0001-01-01", "1969-12-31"):
        response = world.get("owner", "/v1/stores/s-tmall/metrics", {"as_of": as_of})
        assert "as_of" in assert_problem(response, 422, "validation_error", as_of)["detail"]
    for year in (10**23, 0, 99999):
        response = world.get("owner", "/v1/stores/s-tmall/points", {"year": year})
        assert "year" in assert_problem(response, 422, "validation_error", year)["detail"]
    for moment in ("9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"):
        response = world.get("triage", "/v1/work-orders", {"due_before": moment})
        assert_problem(response, 422, "validation_error", moment)
        wo = world.open()
        response = world.post("agent", f"/v1/work-orders/{wo['id']}/contacts", {
            "channel": "phone", "contacted_at": moment, "outcome": "reached"})
        assert "contacted_at" in assert_problem(response, 422, "validation_error")["detail"]


def test_the_test_clock_moves_at_most_ten_years_at_a_time(world: HttpWorld) -> None:
    for seconds in (10**14, 2**63, 11 * 366 * 24 * 3600):
        response = world.post("admin", "/v1/test-clock/advance", {"seconds": seconds})
        assert "seconds" in assert_problem(response, 422, "validation_error")["detail"]
    ok(world.post("admin", "/v1/test-clock/advance", {"seconds": 3600}))


@pytest.mark.parametrize("bad", ["\x00", "a\x00b", "\x07bell", "\x1b[31m", "\x7f", "\x85"])
def test_control_characters_in_text_are_refused(world: HttpWorld, bad: str) -> None:
    wo = world.open()
    wo_id = wo["id"]
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("consumer", "/v1/work-orders", {"order_id": world.order(), "category": "damaged",
                                         "claim": bad}, "claim"),
        ("agent", f"/v1/work-orders/{wo_id}/notes", {"text": bad}, "text"),
        ("agent", f"/v1/work-orders/{wo_id}/contacts",
         {"channel": "phone", "contacted_at": "2026-11-02T08:00:00Z", "outcome": "reached",
          "summary": bad}, "summary"),
        ("admin", "/v1/stores", {"id": "s-new", "name": bad, "platform": "tmall"}, "name"),
        ("admin", "/v1/accounts", {"name": bad, "role": "consumer"}, "name"),
        ("admin", "/v1/stores", {"id": f"s{bad}", "name": "n", "platform": "tmall"}, "id"),
    ]
    for who, path, body, field in cases:
        problem = assert_problem(world.post(who, path, body), 422, "validation_error", path)
        assert field in problem["detail"], (path, problem)


def test_line_breaks_and_tabs_are_fine_in_free_text(world: HttpWorld) -> None:
    wo = world.open()
    note = ok(world.post("agent", f"/v1/work-orders/{wo['id']}/notes",
                         {"text": "line one\r\n\tline two"}), 201)
    assert note["text"] == "line one\r\n\tline two"


@pytest.mark.parametrize("path", ["/v1/work-orders/wo%00x", "/v1/stores/s%00", "/v1/evidence/"
                                  + "e" * 65, "/v1/violations/a%20b", "/v1/work-orders/%E4%B8"])
def test_a_path_id_that_cannot_be_an_id_is_refused(world: HttpWorld, path: str) -> None:
    response = world.get("triage", path)
    assert_problem(response, 422, "validation_error", path)


def test_an_idempotency_key_is_at_most_255_visible_characters(world: HttpWorld) -> None:
    order_id = world.order()
    body = {"order_id": order_id, "category": "damaged", "claim": "c"}
    for key in ("k" * 256, "two words", "tab\there"):
        response = world.post("consumer", "/v1/work-orders", body,
                              headers={"Idempotency-Key": key})
        assert "Idempotency-Key" in assert_problem(response, 422, "validation_error",
                                                   key)["detail"]
    ok(world.post("consumer", "/v1/work-orders", body,
                  headers={"Idempotency-Key": "k" * 255}), 201)


def test_unreadable_bodies_are_validation_errors(world: HttpWorld) -> None:
    headers = {**world.headers("consumer"), "content-type": "application/json"}
    for content in (b'{"claim": "\xff\xfe"}', b"[" * 100_000 + b"]" * 100_000,
                    b'{"order_id": 1' + b"0" * 5000 + b"}", b"{"):
        response = world.client.post("/v1/work-orders", content=content, headers=headers)
        assert_problem(response, 422, "validation_error", content[:20])


def test_a_line_break_in_an_upload_filename_is_a_validation_error(world: HttpWorld) -> None:
    body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="a\r\nb.txt"\r\n'
            b"Content-Type: text/plain\r\n\r\nhello\r\n--b--\r\n")
    response = world.client.post("/v1/evidence", content=body, headers={
        **world.headers("agent"), "content-type": "multipart/form-data; boundary=b"})
    assert_problem(response, 422, "validation_error")


def test_a_control_character_in_an_upload_filename_is_a_validation_error(
        world: HttpWorld) -> None:
    for name in (b"call\x00log.txt", b"call\x1blog.txt"):
        body = (b'--b\r\nContent-Disposition: form-data; name="file"; filename="' + name
                + b'"\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b--\r\n')
        response = world.client.post("/v1/evidence", content=body, headers={
            **world.headers("agent"), "content-type": "multipart/form-data; boundary=b"})
        assert "filename" in assert_problem(response, 422, "validation_error")["detail"]


def test_unknown_body_fields_are_refused_naming_them(world: HttpWorld) -> None:
    order_id = world.order()
    response = world.post("consumer", "/v1/work-orders", {
        "order_id": order_id, "category": "damaged", "claim": "c",
        "requested_remdy": {"type": "refund", "amount_cents": 100}})
    problem = assert_problem(response, 422, "validation_error")
    assert "requested_remdy" in problem["detail"]
    assert ok(world.get("consumer", "/v1/work-orders"))["items"] == []  # nothing opened
    wo = world.open()
    response = world.post("consumer", f"/v1/work-orders/{wo['id']}/withdraw", {"why": "x"})
    assert "why" in assert_problem(response, 422, "validation_error")["detail"]


# ---- the catch-all ------------------------------------------------------------------------------

def test_an_unexpected_error_is_a_problem_500_whose_id_is_in_the_log(
        world: HttpWorld, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("disk on fire")
    monkeypatch.setattr(work_orders, "get_work_order", broken)
    with caplog.at_level(logging.ERROR, logger="collabdesk.api"):
        response = world.get("triage", "/v1/work-orders/wo_anything")
    problem = assert_problem(response, 500, "internal_error")
    assert problem["error_id"].startswith("err_")
    assert problem["error_id"] in problem["detail"]
    assert "disk on fire" not in response.text  # no internals to the client
    logged = [r for r in caplog.records if problem["error_id"] in r.getMessage()]
    assert logged
    assert logged[0].exc_info is not None  # with the traceback


# ---- protective headers ----------------------------------------------------------------------

def test_every_answer_says_nosniff_and_api_answers_cannot_be_framed(world: HttpWorld) -> None:
    evidence_id = world.evidence("agent")
    answers = [world.client.get("/healthz"), world.client.get("/"),
               world.client.get("/v1/work-orders"), world.get("agent", "/v1/nowhere"),
               world.get("agent", "/v1/work-orders"),
               world.get("agent", f"/v1/evidence/{evidence_id}"),
               world.client.get("/openapi.json"), world.client.get("/docs")]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.url
        assert response.headers["x-frame-options"] == "DENY", response.url
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_metrics_are_for_the_operator_only(world: HttpWorld) -> None:
    assert_problem(world.client.get("/metrics"), 401, "unauthenticated")
    assert_problem(world.get("supervisor", "/metrics"), 403, "forbidden")
    assert world.get("admin", "/metrics").status_code == 200


def test_a_wrong_method_is_405_with_allow(world: HttpWorld) -> None:
    response = world.client.delete("/v1/work-orders", headers=bearer(ADMIN_TOKEN))
    assert_problem(response, 405, "method_not_allowed")
    assert set(response.headers["allow"].replace(" ", "").split(",")) == {"GET", "POST"}


def test_the_root_describes_the_service(client: TestClient) -> None:
    body = ok(client.get("/"))
    assert body["name"] == "collabdesk"
    assert body["docs"] == "/docs"
    assert body["openapi"] == "/openapi.json"
    assert body["version"]
