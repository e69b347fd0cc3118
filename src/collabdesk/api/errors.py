"""Domain errors to `application/problem+json` (api.md Conventions)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from collabdesk.domain.errors import CollabdeskError

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
    "already_exists": 409,
    "concurrent_update": 409,
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
    "concurrent_update": "Concurrent update",
    "method_not_allowed": "Method not allowed",
}

PROBLEM = "application/problem+json"


def problem(code: str, detail: str, status: int | None = None,
            extra: dict[str, Any] | None = None) -> JSONResponse:
    status = status or STATUS.get(code, 400)
    body: dict[str, Any] = {
        "type": f"https://collabdesk.dev/problems/{code.replace('_', '-')}",
        "title": TITLES.get(code, code.replace("_", " ").capitalize()),
        "status": status, "detail": detail, "code": code, **(extra or {}),
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _where(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


def install(app: FastAPI) -> None:
    @app.exception_handler(CollabdeskError)
    async def _domain(_: Request, exc: CollabdeskError) -> JSONResponse:
        return problem(exc.code, exc.detail)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [{"field": _where(tuple(e.get("loc", ()))), "message": e.get("msg", "")}
                  for e in exc.errors()]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem("validation_error", detail, extra={"errors": errors})

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed", 401: "unauthenticated",
                403: "forbidden", 422: "validation_error"}.get(exc.status_code, "error")
        return problem(code, str(exc.detail), status=exc.status_code)
