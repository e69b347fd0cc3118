"""`Idempotency-Key` on POST (api.md Conventions), run by the edge (api/edge.py) once the
caller is known and the body is spooled.

The first answer (a success or a 4xx refusal) is stored *before* it is sent, so a client
that retries the moment it has an answer always gets the replay. A 5xx or a crash frees
the key so a retry runs for real. Fields a route marks with `omit_from_replays` (a new
account's token) are never stored: a replay leaves them out.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Iterator
from typing import Any

from fastapi import Request
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from collabdesk.domain.errors import CollabdeskError
from collabdesk.services import idempotency as svc
from collabdesk.services.context import ServiceContext

from .errors import from_error, problem
from .spool import Spool

log = logging.getLogger("collabdesk.api")

REPLAYED = (b"idempotent-replayed", b"true")
KEPT_HEADERS = (b"content-type", b"etag", b"location")
MAX_STORED_BODY = 1024 * 1024
OMIT = "collabdesk.replay_omits"


def omit_from_replays(request: Request, *fields: str) -> None:
    """Keep these top-level fields of this response out of the stored replay (secrets)."""
    request.scope.setdefault(OMIT, set()).update(fields)


async def run_idempotently(app: ASGIApp, ctx: ServiceContext, scope: Scope, receive: Receive,
                           send: Send, *, account_id: str, token: str, key: str,
                           body: Spool, content_type: str | None) -> None:
    if (why := svc.check_key(key)) is not None:
        await problem("validation_error", f"Idempotency-Key: {why}")(scope, receive, send)
        return
    target = scope["path"] + ("?" + scope["query_string"].decode("latin-1")
                              if scope.get("query_string") else "")
    fingerprint = await run_in_threadpool(
        svc.request_fingerprint, token, scope["method"], target,
        _canonical(body.chunks(), content_type))
    try:
        stored = await run_in_threadpool(svc.begin, ctx, account_id, key, fingerprint)
    except CollabdeskError as exc:
        await from_error(exc)(scope, receive, send)
        return
    if stored is not None:
        await _send_stored(stored.status_code or 200, stored.body or "{}", send)
        return

    held: list[Message] = []
    size = 0
    passing_through = False  # too big to keep: sent as it comes, key released

    async def hold(message: Message) -> None:
        nonlocal size, passing_through
        if passing_through:
            await send(message)
            return
        held.append(message)
        size += len(message.get("body", b""))
        if size > MAX_STORED_BODY:
            passing_through = True
            for m in held:
                await send(m)
            held.clear()

    try:
        await app(scope, receive, hold)
    except BaseException:
        await run_in_threadpool(svc.abandon, ctx, account_id, key)
        raise
    start = next((m for m in held if m["type"] == "http.response.start"), None)
    if passing_through or start is None or start["status"] >= 500:
        await run_in_threadpool(svc.abandon, ctx, account_id, key)
    else:
        record = _record(start, b"".join(m.get("body", b"") for m in held), scope.get(OMIT))
        try:
            await run_in_threadpool(svc.finish, ctx, account_id, key, start["status"], record)
        except Exception:  # the answer is still the truth; the lease frees the key later
            log.exception("could not store the answer for an idempotency key")
    for message in held:
        await send(message)


def _record(start: Message, body: bytes, omit: set[str] | None) -> str:
    kept = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in start.get("headers", [])
            if k.lower() in KEPT_HEADERS]
    text = body.decode("utf-8", "replace")
    if omit:
        document = json.loads(text)
        if isinstance(document, dict):
            text = json.dumps({k: v for k, v in document.items() if k not in omit},
                              ensure_ascii=False)
    return json.dumps({"headers": kept, "body": text})


def _canonical(chunks: Iterable[bytes], content_type: str | None) -> Iterator[bytes]:
    """A multipart body differs from one send to the next only by its random boundary;
    with the boundary blanked out, a retried upload is recognised as the same request."""
    found = (re.search(r'boundary="?([^";]+)"?', content_type, re.IGNORECASE)
             if content_type and content_type.lower().startswith("multipart/") else None)
    if found is None:
        yield from chunks
        return
    needle = found.group(1).encode("latin-1")
    tail = b""
    for chunk in chunks:
        parts = (tail + chunk).split(needle)
        last = parts.pop()
        yield from parts
        # The end of the last part may be the start of a boundary cut by the chunk edge.
        keep = min(len(last), len(needle) - 1)
        yield last[:len(last) - keep]
        tail = last[len(last) - keep:]
    yield tail


async def _send_stored(status: int, record: str, send: Send) -> None:
    stored: dict[str, Any] = json.loads(record)
    body = stored["body"].encode("utf-8")
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in stored["headers"]]
    headers += [(b"content-length", str(len(body)).encode()), REPLAYED]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
