"""`/openapi.json` is the API's reference: every operation documented, secured, and
listing its errors as problems (the fuzz test, test_openapi_fuzz.py, checks the answers
against it)."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from collabdesk.api.app import create_app
from collabdesk.api.errors import PROBLEM, STATUS
from collabdesk.bootstrap import Container
from collabdesk.cli import main
from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES
from tests.e2e.http_world import ok

JSON = dict[str, Any]
METHODS = ("get", "post", "put", "patch", "delete")
PUBLIC = {("GET", "/"), ("GET", "/healthz"), ("GET", "/v1/test-clock")}
TEST_CLOCK = ("/v1/test-clock", "/v1/test-clock/advance")
PROBLEM_REF = "#/components/schemas/Problem"


def _document(container: Container) -> JSON:
    with TestClient(create_app(container, start_runner=False),
                    base_url="http://127.0.0.1") as client:
        document: JSON = ok(client.get("/openapi.json"))
    return document


@pytest.fixture
def document(container: Container) -> JSON:
    """The document of a server with the test clock (as the tests run it)."""
    return _document(container)


def operations(document: JSON) -> Iterator[tuple[str, str, JSON]]:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield method.upper(), path, operation


def problem_codes(response: JSON) -> list[str]:
    """The `code` enum of a problem response, checking its shape on the way."""
    schema = response["content"][PROBLEM]["schema"]
    base, narrowed = schema["allOf"]
    assert base == {"$ref": PROBLEM_REF}
    codes: list[str] = narrowed["properties"]["code"]["enum"]
    return codes


def test_every_operation_has_a_summary_a_description_and_tags(document: JSON) -> None:
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        assert operation.get("summary"), where
        assert len(operation.get("description", "")) > 40, where
        assert operation.get("tags"), where
    described = {tag["name"] for tag in document["tags"]}
    used = {t for _, _, operation in operations(document) for t in operation["tags"]}
    assert used <= described


def test_operations_that_need_a_token_say_so_and_public_ones_do_not(document: JSON) -> None:
    schemes = document["components"]["securitySchemes"]
    assert schemes == {"bearerAuth": {"type": "http", "scheme": "bearer",
                                      "description": schemes["bearerAuth"]["description"]}}
    for method, path, operation in operations(document):
        where = f"{method} {path}"
        if (method, path) in PUBLIC:
            assert "security" not in operation, where
            assert "401" not in operation["responses"], where
            continue
        assert path.startswith("/v1/") or path == "/metrics", where
        assert operation["security"] == [{"bearerAuth": []}], where
        assert problem_codes(operation["responses"]["401"]) == ["unauthenticated"], where
        assert "WWW-Authenticate" in operation["responses"]["401"]["headers"], where


def test_every_error_is_a_problem_with_its_codes(document: JSON) -> None:
    components = document["components"]["schemas"]
    assert {"type", "title", "status", "detail", "code"} <= set(
        components["Problem"]["required"])
    assert {"errors", "error_id"} <= set(components["Problem"]["properties"])
    for method, path, operation in operations(document):
        for status, response in operation["responses"].items():
            where = f"{method} {path} {status}"
            if int(status) < 400:
                assert PROBLEM not in response.get("content", {}), where
                continue
            assert list(response["content"]) == [PROBLEM], where
            codes = problem_codes(response)
            assert codes, where
            assert all(STATUS[code] == int(status) for code in codes), where
            # The description names every code.
            assert all(f"`{code}`" in response["description"] for code in codes), where
        assert "internal_error" in problem_codes(operation["responses"]["500"]), method + path


def test_fastapi_validation_schemas_are_gone(document: JSON) -> None:
    assert "HTTPValidationError" not in document["components"]["schemas"]
    assert "ValidationError" not in document["components"]["schemas"]
    for method, path, operation in operations(document):
        if operation.get("parameters") or "requestBody" in operation:
            assert "validation_error" in problem_codes(operation["responses"]["422"]), (
                method, path)


def test_posts_take_an_idempotency_key_and_may_be_replayed(document: JSON) -> None:
    key = document["components"]["parameters"]["IdempotencyKey"]
    assert (key["name"], key["in"], key["schema"]["maxLength"]) == ("Idempotency-Key",
                                                                    "header", 255)
    for method, path, operation in operations(document):
        refs = [p.get("$ref") for p in operation.get("parameters", [])]
        if method != "POST":
            assert "#/components/parameters/IdempotencyKey" not in refs, path
            continue
        assert "#/components/parameters/IdempotencyKey" in refs, path
        conflicts = problem_codes(operation["responses"]["409"])
        assert {"idempotency_key_reused", "idempotency_key_in_use"} <= set(conflicts), path
        assert "Retry-After" in operation["responses"]["409"]["headers"], path
        assert problem_codes(operation["responses"]["503"]) == ["concurrent_update"], path
        success = next(r for s, r in operation["responses"].items() if s.startswith("2"))
        assert "Idempotent-Replayed" in success["headers"], path
        if "requestBody" in operation:
            too_large = problem_codes(operation["responses"]["413"])
            expected = "evidence_too_large" if path == "/v1/evidence" else "payload_too_large"
            assert expected in too_large, path


def test_answers_are_typed_and_carry_their_headers(document: JSON) -> None:
    for method, path, operation in operations(document):
        status, success = next((s, r) for s, r in operation["responses"].items()
                               if s.startswith("2"))
        where = f"{method} {path} {status}"
        if status == "204":
            assert "content" not in success, where
            continue
        content = success["content"]
        if path == "/metrics":
            assert list(content) == ["text/plain"], where
        elif path == "/v1/stream":
            assert list(content) == ["text/event-stream"], where
        elif path == "/v1/evidence/{evidence_id}":
            assert set(content) == set(ALLOWED_MEDIA_TYPES), where
            assert all(c["schema"] == {"type": "string", "format": "binary"}
                       for c in content.values()), where
            assert success["headers"]["ETag"]["required"], where
        else:
            schema = content["application/json"]["schema"]
            assert schema.get("$ref", "").startswith("#/components/schemas/"), where
            if schema["$ref"].endswith("/WorkOrder"):
                assert success["headers"]["ETag"] == {"$ref": "#/components/headers/ETag"}
    opened = document["paths"]["/v1/work-orders"]["post"]["responses"]["201"]
    assert opened["headers"]["Location"] == {"$ref": "#/components/headers/Location"}


def test_response_models_describe_what_the_renderers_send(document: JSON) -> None:
    schemas = document["components"]["schemas"]
    work_order = schemas["WorkOrder"]
    # Always sent, possibly null: required and nullable.
    assert {"due_at", "reply", "judgment", "appeal", "closed_at"} <= set(
        work_order["required"])
    assert {"type": "null"} in work_order["properties"]["due_at"]["anyOf"]
    assert work_order["properties"]["created_at"] == {
        "type": "string", "format": "date-time", "title": "Created At",
        "description": work_order["properties"]["created_at"]["description"]}
    assert work_order["properties"]["state"] == {"$ref": "#/components/schemas/State"}
    # Left out when there is none: optional, never null.
    assert schemas["Remedy"]["required"] == ["type"]
    assert schemas["Remedy"]["properties"]["amount_cents"]["type"] == "integer"
    assert "token" not in schemas["NewAccount"]["required"]
    assert schemas["NewAccount"]["properties"]["token"]["type"] == "string"
    # Lists are envelopes.
    page = schemas["WorkOrderPage"]
    assert page["required"] == ["items", "next_cursor"]
    assert page["properties"]["items"]["items"] == {"$ref": "#/components/schemas/WorkOrder"}
    assert set(schemas["Event"]["required"]) == {
        "seq", "at", "actor_id", "type", "data", "prev_hash", "hash", "visibility"}


def test_test_clock_paths_are_documented_only_with_the_test_clock(
        container: Container, document: JSON) -> None:
    for path in TEST_CLOCK:
        assert path in document["paths"], path
    assert "test clock" in {tag["name"] for tag in document["tags"]}
    container.test_clock = None
    clockless = _document(container)
    for path in TEST_CLOCK:
        assert path not in clockless["paths"], path
    assert "test clock" not in {tag["name"] for tag in clockless["tags"]}
    assert set(clockless["paths"]) == set(document["paths"]) - set(TEST_CLOCK)


def test_the_reference_in_the_repository_is_the_one_the_code_renders() -> None:
    """docs/api-reference.md is generated (`collabdesk openapi --markdown --test-clock`);
    a change to the API that is not regenerated into it fails here."""
    committed = Path(__file__).resolve().parents[2] / "docs" / "api-reference.md"
    rendered = io.StringIO()
    with contextlib.redirect_stdout(rendered):
        assert main(["openapi", "--markdown", "--test-clock"]) == 0
    assert rendered.getvalue() == committed.read_text(encoding="utf-8"), (
        "docs/api-reference.md is stale: run "
        "`.venv/bin/collabdesk openapi --markdown --test-clock > docs/api-reference.md`")
