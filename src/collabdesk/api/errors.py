"""Errors to `application/problem+json` (api.md Conventions): domain errors, request
validation, the framework's own HTTP errors, and a catch-all 500 with an error id."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from collabdesk.domain.errors import CollabdeskError

log = logging.getLogger("collabdesk.api")

STATUS: dict[str, int] = {
    "validation_error": 422,
    "not_found": 404,
    "forbidden": 403,
    "unauthenticated": 401,
    "invalid_transition": 409,
    "reply_window_closed": 409,
    "contact_before_work_order": 422,
    "contact_in_future": 422,
    "reply_requirements_not_met": 422,
    "duplicate_open_work_order": 409,
    "appeal_window_closed": 409,
    "evidence_too_large": 413,
    "evidence_type_not_allowed": 415,
    "idempotency_key_reused": 409,
    "version_conflict": 412,
    # Additions to the contract's table:
    "already_exists": 409,
    "idempotency_key_in_use": 409,
    "payload_too_large": 413,
    "method_not_allowed": 405,
    "concurrent_update": 503,
    "internal_error": 500,
}

TITLES: dict[str, str] = {
    "validation_error": "Invalid request",
    "not_found": "Not found",
    "forbidden": "Forbidden",
    "unauthenticated": "Authentication required",
    "invalid_transition": "Action not allowed in the current state",
    "reply_window_closed": "The reply window has closed",
    "contact_before_work_order": "Contact predates the work order",
    "contact_in_future": "Contact time is in the future",
    "reply_requirements_not_met": "Reply requirements not met",
    "duplicate_open_work_order": "The order already has an open work order",
    "appeal_window_closed": "The appeal window has closed",
    "evidence_too_large": "Evidence file too large",
    "evidence_type_not_allowed": "Evidence type not allowed",
    "idempotency_key_reused": "Idempotency key reused",
    "version_conflict": "Version conflict",
    "already_exists": "Already exists",
    "idempotency_key_in_use": "Idempotency key in use",
    "payload_too_large": "Request body too large",
    "method_not_allowed": "Method not allowed",
    "concurrent_update": "Busy: concurrent updates",
    "internal_error": "Internal error",
}

PROBLEM = "application/problem+json"


def problem(code: str, detail: str, status: int | None = None,
            extra: dict[str, Any] | None = None,
            headers: Mapping[str, str] | None = None) -> JSONResponse:
    status = status or STATUS.get(code, 400)
    body: dict[str, Any] = {
        "type": f"https://collabdesk.dev/problems/{code.replace('_', '-')}",
        "title": TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status, "detail": detail, "code": code, **(extra or {}),
    }
    headers = dict(headers or {})
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def from_error(exc: CollabdeskError) -> JSONResponse:
    retry_after = getattr(exc, "retry_after", None)
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return problem(exc.code, exc.detail, headers=headers)


def internal_error(method: str, path: str) -> JSONResponse:
    """Log the exception being handled under a new error id, and the problem naming it."""
    error_id = "err_" + secrets.token_hex(8)
    log.exception("internal error %s on %s %s", error_id, method, path)
    return problem("internal_error",
                   f"an unexpected error occurred; quote error id {error_id} when reporting "
                   "it", extra={"error_id": error_id})


_MESSAGES = {
    "extra_forbidden": "unknown field: not part of this request",
    "json_invalid": "the body is not valid JSON",
    "missing": "this field is required",
}


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def _allowed_methods(request: Request) -> list[str]:
    """Every method some route answers on this path (the router's own 405 names only the
    first route whose path matched), found by asking the routes about each method."""
    return [method for method in ("GET", "POST", "PUT", "PATCH", "DELETE")
            if any(route.matches({**request.scope, "method": method})[0] is Match.FULL
                   for route in request.app.router.routes)]


def install(app: FastAPI) -> None:
    @app.exception_handler(CollabdeskError)
    async def _domain(_: Request, exc: CollabdeskError) -> JSONResponse:
        return from_error(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _where(tuple(e.get("loc", ()))),
                   "message": _MESSAGES.get(e.get("type", ""), e.get("msg", ""))}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem("validation_error", detail or "invalid request",
                       extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 405:
            allowed = _allowed_methods(request)
            return problem("method_not_allowed",
                           f"{request.method} is not allowed here; use {', '.join(allowed)}",
                           headers={"Allow": ", ".join(allowed)})
        # 400 is the framework failing to read a body (bad UTF-8, JSON nested too deep,
        # a malformed multipart part): to a client that is a validation error.
        status = 422 if exc.status_code == 400 else exc.status_code
        code = {401: "unauthenticated", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "payload_too_large",
                422: "validation_error"}.get(status, "http_error")
        detail = str(exc.detail)
        if exc.status_code == 400:
            detail = f"the request body could not be read: {detail}"
        return problem(code, detail, status=status, headers=exc.headers)
