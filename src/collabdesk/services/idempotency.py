"""`Idempotency-Key`: the same key and body replays the first response; another body is
refused. Keys are scoped to the caller (by token hash), so callers cannot collide."""

from __future__ import annotations

import hashlib

from collabdesk.domain.errors import IdempotencyKeyReused

from .context import ServiceContext
from .ports import StoredResponse, UnitOfWork


def request_fingerprint(method: str, path: str, body: bytes) -> str:
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def begin(ctx: ServiceContext, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
    """None: go ahead (the key is now reserved). Otherwise the response to replay."""
    now = ctx.clock.now()

    def reserve(uow: UnitOfWork) -> StoredResponse | None:
        if uow.idempotency.reserve(scope, key, fingerprint, now):
            return None
        return uow.idempotency.get(scope, key)

    stored = ctx.write(reserve)
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request")
    if stored.status_code is None:
        raise IdempotencyKeyReused("a request with this Idempotency-Key is still in progress")
    return stored


def finish(ctx: ServiceContext, scope: str, key: str, status_code: int, body: str) -> None:
    ctx.write(lambda uow: uow.idempotency.complete(scope, key, status_code, body))


def abandon(ctx: ServiceContext, scope: str, key: str) -> None:
    """The first attempt failed unexpectedly: free the key so a retry runs for real."""
    ctx.write(lambda uow: uow.idempotency.release(scope, key))
