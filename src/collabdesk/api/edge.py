"""The edge every HTTP request passes before a route, and every answer after it
(style.md habit 15: edges refuse early). In order:

1. A catch-all: an unexpected error becomes a problem+json 500 whose error id is logged
   with the traceback; nothing leaves as a bare text 500.
2. Protective headers on every answer, and the request metrics.
3. Authentication from the `Authorization` header, before a byte of the body is read: an
   unknown caller costs one lookup, never memory, and nothing of theirs is stored.
4. The body limit: refused from `Content-Length` before reading, and again while the body
   streams in; the body is spooled (api/spool.py), never held whole in memory.
5. `Idempotency-Key` on POST (api/idempotency.py), for the authenticated caller.
"""

from __future__ import annotations

import time
from pathlib import Path

from fastapi.responses import JSONResponse
from prometheus_client import Counter, Histogram
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabdesk.domain.errors import Unauthenticated
from collabdesk.services.access import actor_of
from collabdesk.services.accounts import authenticate, cached_caller
from collabdesk.services.context import ServiceContext

from .errors import from_error, internal_error, problem
from .idempotency import run_idempotently
from .spool import BodyTooLarge, ClientGone, Spool

REQUESTS = Counter("collabdesk_http_requests_total", "HTTP requests",
                   ["method", "route", "status"])
LATENCY = Histogram("collabdesk_http_request_seconds", "HTTP request latency",
                    ["method", "route"])

# Room for a multipart envelope around an evidence file (boundaries, part headers).
MULTIPART_OVERHEAD = 64 * 1024
EVIDENCE_UPLOAD = "/v1/evidence"
DOCS_PATHS = ("/docs", "/static/")

_API_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
_DOCS_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy",
     b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
     b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class Edge:
    def __init__(self, app: ASGIApp, *, ctx: ServiceContext, max_body_bytes: int,
                 evidence_max_bytes: int, test_clock: bool, spool_dir: Path | None) -> None:
        self.app = app
        self.ctx = ctx
        self.max_body_bytes = max_body_bytes
        self.max_upload_bytes = evidence_max_bytes + MULTIPART_OVERHEAD
        self.test_clock = test_clock
        self.spool_dir = spool_dir

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status: int | None = None
        headers = _DOCS_HEADERS if scope["path"].startswith(DOCS_PATHS) else _API_HEADERS

        async def guarded(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message = _with_headers(message, headers, scope["path"])
            await send(message)

        try:
            await self._handle(scope, receive, guarded)
        except Exception:
            if status is not None:
                raise  # the answer already started: nothing sensible can follow it
            await internal_error(scope["method"], scope["path"])(scope, receive, guarded)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            LATENCY.labels(scope["method"], route).observe(time.perf_counter() - started)
            REQUESTS.labels(scope["method"], route, str(status or "disconnected")).inc()

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_headers = Headers(scope=scope)
        token = bearer_token(request_headers.get("authorization"))
        account_id: str | None = None
        has_body = _has_body(request_headers)
        if self._needs_caller(scope["path"], scope["method"]):
            account = cached_caller(self.ctx, token)  # a hit costs no thread hop
            if account is None:
                try:
                    account = await run_in_threadpool(authenticate, self.ctx, token)
                except Unauthenticated as exc:
                    await _unread(from_error(exc), has_body)(scope, receive, send)
                    return
            scope.setdefault("state", {})["actor"] = actor_of(account)
            account_id = account.id
        if not has_body:
            await self._route(scope, receive, send, request_headers, account_id, token, None)
            return
        upload = scope["method"] == "POST" and scope["path"] == EVIDENCE_UPLOAD
        limit = self.max_upload_bytes if upload else self.max_body_bytes
        declared = request_headers.get("content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _unread(_too_large(upload, limit), True)(scope, receive, send)
            return
        try:
            body = await Spool.receive_all(receive, limit, self.spool_dir)
        except BodyTooLarge:
            await _unread(_too_large(upload, limit), True)(scope, receive, send)
            return
        except ClientGone:
            return
        try:
            await self._route(scope, body.replay(receive), send, request_headers, account_id,
                              token, body)
        finally:
            body.close()

    async def _route(self, scope: Scope, receive: Receive, send: Send, headers: Headers,
                     account_id: str | None, token: str | None, body: Spool | None) -> None:
        key = headers.get("idempotency-key")
        if scope["method"] != "POST" or key is None or account_id is None or token is None:
            await self.app(scope, receive, send)
            return
        spooled = body if body is not None else Spool(self.spool_dir)  # no body: empty
        try:
            await run_idempotently(self.app, self.ctx, scope, receive, send,
                                   account_id=account_id, token=token, key=key, body=spooled,
                                   content_type=headers.get("content-type"))
        finally:
            if body is None:
                spooled.close()

    def _needs_caller(self, path: str, method: str) -> bool:
        """`requires_token`, except that both test-clock paths answer 404 to anyone when
        the server runs without the test clock."""
        if path.startswith("/v1/test-clock") and not self.test_clock:
            return False
        return requires_token(path, method)


def requires_token(path: str, method: str) -> bool:
    """Everything under /v1 and /metrics needs a bearer token, except the test clock's
    reading. (The OpenAPI document's `security` follows this too: api/openapi.py.)"""
    if path == "/metrics":
        return True
    if not path.startswith("/v1/"):
        return False
    return not (path == "/v1/test-clock" and method == "GET")


def _has_body(headers: Headers) -> bool:
    length = headers.get("content-length")
    if length is not None:
        return length.strip() != "0"
    return "transfer-encoding" in headers


def _unread(response: JSONResponse, body_left: bool) -> JSONResponse:
    """An answer given before the body was read closes the connection, so the server
    does not go on receiving (and discarding) what the client still sends."""
    if body_left:
        response.headers["connection"] = "close"
    return response


def _too_large(upload: bool, limit: int) -> JSONResponse:
    if upload:
        return problem("evidence_too_large",
                       f"an upload is limited to {limit} bytes (the evidence limit plus "
                       "the multipart envelope)")
    return problem("payload_too_large", f"a request body is limited to {limit} bytes")


def _with_headers(message: Message, extra: list[tuple[bytes, bytes]], path: str) -> Message:
    present = {k.lower() for k, _ in message.get("headers", [])}
    added = [(k, v) for k, v in extra if k not in present]
    if path.startswith("/v1/") and b"cache-control" not in present:
        added.append((b"cache-control", b"no-store"))
    return {**message, "headers": [*message.get("headers", []), *added]}
