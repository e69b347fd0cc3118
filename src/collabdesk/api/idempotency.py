"""ASGI middleware for `Idempotency-Key` on POST (api.md Conventions).

It sits outside the routes so every POST gets the same behaviour: the first response
(success or a 4xx refusal) is stored under the caller's key and replayed for the same
request; a 5xx or a crash frees the key so the client's retry really runs.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabdesk.domain.errors import CollabdeskError
from collabdesk.services import idempotency as svc
from collabdesk.services.context import ServiceContext

from .deps import bearer_token
from .errors import problem

REPLAYED = (b"idempotent-replayed", b"true")


class IdempotencyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1")
                   for k, v in scope["headers"]}
        key = headers.get("idempotency-key")
        token = bearer_token(headers.get("authorization"))
        if not key or not token:
            await self.app(scope, receive, send)
            return
        ctx: ServiceContext = scope["app"].state.ctx
        body = await _read_body(receive)
        scope_id = hashlib.sha256(token.encode()).hexdigest()
        fingerprint = svc.request_fingerprint(
            "POST", scope["path"], _canonical(body, headers.get("content-type")))

        try:
            stored = await run_in_threadpool(svc.begin, ctx, scope_id, key, fingerprint)
        except CollabdeskError as exc:
            await problem(exc.code, exc.detail)(scope, _replay(body), send)
            return
        if stored is not None:
            await _send_stored(stored.status_code or 200, stored.body or "{}", send)
            return
        captured: dict[str, Any] = {"status": 500, "headers": [], "body": b""}

        async def capture(message: Message) -> None:
            if message["type"] == "http.response.start":
                captured["status"] = message["status"]
                captured["headers"] = message.get("headers", [])
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")
            await send(message)

        try:
            await self.app(scope, _replay(body), capture)
        except Exception:
            await run_in_threadpool(svc.abandon, ctx, scope_id, key)
            raise
        if captured["status"] >= 500:
            await run_in_threadpool(svc.abandon, ctx, scope_id, key)
            return
        kept = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in captured["headers"]
                if k.lower() in (b"content-type", b"etag", b"location")]
        record = json.dumps({"headers": kept,
                             "body": captured["body"].decode("utf-8", "replace")})
        await run_in_threadpool(svc.finish, ctx, scope_id, key, captured["status"], record)


def _canonical(body: bytes, content_type: str | None) -> bytes:
    """A multipart body differs from one send to the next only by its random boundary;
    with the boundary blanked out, a retried upload is recognised as the same request."""
    if content_type and content_type.lower().startswith("multipart/"):
        found = re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
        if found:
            return body.replace(found.group(1).encode("latin-1"), b"")
    return body


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replay(body: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}
    return receive


async def _send_stored(status: int, record: str, send: Send) -> None:
    stored = json.loads(record)
    body = stored["body"].encode("utf-8")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored["headers"]]
    headers += [(b"content-length", str(len(body)).encode()), REPLAYED]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
