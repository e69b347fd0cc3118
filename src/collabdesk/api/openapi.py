"""`/openapi.json`, complete enough to be the API's reference.

FastAPI documents the routes: parameters, bodies, answers (api/models.py), summaries and
descriptions. What every route shares is added here, after the fact, from the same
rules the edge (api/edge.py) and the error handlers (api/errors.py) follow:

- the bearer scheme, and `security` plus a 401 on every operation that needs a token;
- the `Problem` schema, and each error status an operation can answer as
  `application/problem+json`, with its possible `code`s as an enum: those a route names
  with `problems(...)` (from its services' rules), plus 422 `validation_error` wherever
  there are parameters or a body, 413 wherever there is a body, the `Idempotency-Key`
  header and its 409s on every POST, 503 `concurrent_update` on writes, and 500
  `internal_error` everywhere;
- response headers: `ETag` on every work-order answer, `Idempotent-Replayed` on POST
  answers, `Retry-After` and `WWW-Authenticate` where errors carry them.

FastAPI's own 422 schemas (`HTTPValidationError`) are removed: our 422s are problems.
"""

from __future__ import annotations

import copy
from typing import Any

from fastapi import FastAPI

from collabdesk.services.idempotency import MAX_KEY_LENGTH

from .edge import EVIDENCE_UPLOAD, requires_token
from .errors import PROBLEM, STATUS, TITLES
from .models import Problem

BEARER = "bearerAuth"
REF = "#/components/schemas/"
WORK_ORDER_REF = REF + "WorkOrder"
DEFAULT_DESCRIPTION = "Successful Response"  # FastAPI's, for every success

TAGS: list[dict[str, str]] = [
    {"name": "work orders",
     "description": "Opening a work order, the store's contacts, notes and reply, the "
                    "consumer's answer, verification, judgment, appeal, settlement, and "
                    "the history (events, deliveries)."},
    {"name": "evidence",
     "description": "Evidence files: uploaded once, cited by id on contacts, replies, notes, "
                    "appeals and violations."},
    {"name": "notifications", "description": "The caller's in-app inbox."},
    {"name": "violations, points, metrics",
     "description": "Violations for false evidence, their appeals, the points ledger and "
                    "store metrics."},
    {"name": "accounts, stores, orders",
     "description": "Accounts and tokens, stores, orders and the store's staff permission."},
    {"name": "service", "description": "What this server is, health and metrics."},
    {"name": "test clock",
     "description": "Only on a server started with `--test-clock`."},
]

HEADERS: dict[str, dict[str, Any]] = {
    "ETag": {"description": 'The work order\'s `version` in quotes (`"3"`); send it back as '
                            "`If-Match` to act only on that version.",
             "required": True, "schema": {"type": "string", "pattern": '^"[0-9]+"$'}},
    "Location": {"description": "The new resource's path.", "required": True,
                 "schema": {"type": "string"}},
    "Idempotent-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with "
                       "the same `Idempotency-Key`.",
        "schema": {"type": "string", "enum": ["true"]}},
    "Retry-After": {"description": "Seconds to wait before retrying.",
                    "schema": {"type": "integer", "minimum": 0}},
    "WWW-Authenticate": {"description": "`Bearer`", "required": True,
                         "schema": {"type": "string"}},
}


def header(name: str) -> dict[str, str]:
    """A reference to one of `HEADERS` (kept once, in `components.headers`)."""
    return {"$ref": f"#/components/headers/{name}"}


LOCATION = header("Location")

IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "description": "Makes the POST safe to retry: the first answer (a success or a 4xx) is "
                   "stored for 24 hours under this key, scoped to the calling account, and "
                   "replayed to a retry of the same request (`Idempotent-Replayed: true`). "
                   "Another request under the key is 409 `idempotency_key_reused`; a retry "
                   "while the first still runs is 409 `idempotency_key_in_use`. A 5xx is "
                   "not kept. 1-255 visible ASCII characters.",
    "schema": {"type": "string", "minLength": 1, "maxLength": MAX_KEY_LENGTH,
               "pattern": "^[!-~]+$"},
}

_GENERIC_DETAIL: dict[str, str] = {
    "unauthenticated": "no bearer token, or one nobody has",
    "validation_error": "a parameter or the body is malformed or out of bounds",
    "payload_too_large": "the body is over the server's limit",
    "evidence_too_large": "the file is over the evidence limit",
    "idempotency_key_reused": "the Idempotency-Key was used for another request",
    "idempotency_key_in_use": "the first request with this Idempotency-Key still runs",
    "concurrent_update": "concurrent writes kept this one from completing; retry",
    "internal_error": "an unexpected error; quote the `error_id`",
}


def problems(*codes: str, **explained: str) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route: the problem codes its rules can answer with, beyond
    the ones every route of its kind shares (added by `complete`). A code given by name
    says when it happens on this route: `problems(not_found="no such store")`."""
    responses: dict[int | str, dict[str, Any]] = {}
    for code, text in [*((c, TITLES[c]) for c in codes), *explained.items()]:
        status = STATUS[code]
        _add_code(responses.setdefault(status, _problem_response(status)), code, text)
    return responses


def _problem_response(status: int) -> dict[str, Any]:
    return {"description": "", "content": {PROBLEM: {"schema": {
        "allOf": [{"$ref": REF + "Problem"},
                  {"type": "object",
                   "properties": {"status": {"enum": [status]}, "code": {"enum": []}}}]}}}}


def _codes_of(response: dict[str, Any]) -> list[str]:
    """The code enum of a problem response (a live list: appending adds a code)."""
    schema = response["content"][PROBLEM]["schema"]
    codes: list[str] = schema["allOf"][1]["properties"]["code"]["enum"]
    return codes


def _add_code(response: dict[str, Any], code: str, text: str) -> None:
    """Add `code` to a problem response: to its enum, and a line to its description."""
    codes = _codes_of(response)
    start = f"- `{code}`: "
    lines = [line for line in response["description"].split("\n") if line]
    if code not in codes:
        codes.append(code)
        lines.append(start + text)
    else:  # a route's reason and the generic one: both
        lines = [f"{line}; {text}" if line.startswith(start) and text not in line else line
                 for line in lines]
    response["description"] = "\n".join(lines)


def _is_problem(response: dict[str, Any]) -> bool:
    return PROBLEM in response.get("content", {})


def complete(schema: dict[str, Any]) -> dict[str, Any]:
    """Add what every operation shares to FastAPI's document (in place; returned)."""
    components = schema.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    for name in ("HTTPValidationError", "ValidationError"):
        schemas.pop(name, None)
    problem = Problem.model_json_schema(ref_template=REF + "{model}")
    schemas.update(problem.pop("$defs", {}))
    schemas["Problem"] = problem
    components["headers"] = copy.deepcopy(HEADERS)
    components["parameters"] = {"IdempotencyKey": copy.deepcopy(IDEMPOTENCY_KEY)}
    components["securitySchemes"] = {BEARER: {
        "type": "http", "scheme": "bearer",
        "description": "`Authorization: Bearer <token>`: the token an admin got when "
                       "creating the account (`POST /v1/accounts`)."}}
    for path, item in schema.get("paths", {}).items():
        for method, operation in item.items():
            _complete_operation(path, method.upper(), operation, schemas)
    return schema


def _complete_operation(path: str, method: str, operation: dict[str, Any],
                        schemas: dict[str, Any]) -> None:
    responses: dict[str, dict[str, Any]] = operation.setdefault("responses", {})
    fastapi_422 = responses.get("422")
    if fastapi_422 is not None and not _is_problem(fastapi_422):
        del responses["422"]
    post = method == "POST"
    if post:
        operation.setdefault("parameters", []).append(
            {"$ref": "#/components/parameters/IdempotencyKey"})
    body = "requestBody" in operation
    generic: list[str] = []
    if requires_token(path, method):
        operation["security"] = [{BEARER: []}]
        generic.append("unauthenticated")
    if operation.get("parameters") or body:
        generic.append("validation_error")
    if body:
        generic.append("evidence_too_large" if path == EVIDENCE_UPLOAD and post
                       else "payload_too_large")
    if post:
        generic += ["idempotency_key_reused", "idempotency_key_in_use", "concurrent_update"]
    generic.append("internal_error")
    for code in generic:
        entry = responses.setdefault(str(STATUS[code]), _problem_response(STATUS[code]))
        _add_code(entry, code, _GENERIC_DETAIL[code])
    for status, entry in responses.items():
        _add_headers(status, entry, post)
        if entry.get("description") == DEFAULT_DESCRIPTION:
            entry["description"] = _describe_success(status, entry, schemas)
    operation["responses"] = dict(sorted(responses.items()))


def _describe_success(status: str, response: dict[str, Any],
                      schemas: dict[str, Any]) -> str:
    """What a success answer is, from its model's docstring, instead of FastAPI's
    "Successful Response"."""
    if status == "204":
        return "Done (no content)."
    content = response.get("content", {})
    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
    model = schemas.get(ref.removeprefix(REF), {})
    if not model:
        return "The answer."
    text = str(model.get("description") or f"The {model.get('title', 'answer')}.")
    return text.split("\n\n")[0].replace("\n", " ")


def _add_headers(status: str, response: dict[str, Any], post: bool) -> None:
    headers: dict[str, Any] = response.setdefault("headers", {})
    codes = _codes_of(response) if _is_problem(response) else []
    schema = response.get("content", {}).get("application/json", {}).get("schema", {})
    if status.startswith("2") and schema.get("$ref") == WORK_ORDER_REF:
        headers.setdefault("ETag", header("ETag"))
    if status == "401":
        headers["WWW-Authenticate"] = header("WWW-Authenticate")
    if "idempotency_key_in_use" in codes or "concurrent_update" in codes:
        headers["Retry-After"] = header("Retry-After")
    # Replays: every stored answer (a success or a refusal by the route) can come back.
    if post and (status.startswith("2") or (status.startswith("4")
                                            and status not in ("401", "413"))):
        headers["Idempotent-Replayed"] = header("Idempotent-Replayed")
    if not headers:
        del response["headers"]


def install(app: FastAPI) -> None:
    """Serve the completed document at `app.openapi_url`."""
    plain = app.openapi  # FastAPI's: builds the document once and keeps it

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = complete(plain())
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
