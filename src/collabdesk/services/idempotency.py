"""`Idempotency-Key`: the same key and request replays the first answer; another request
under the key is refused; a key whose first request still runs is "in use".

Keys are scoped to the calling account. The request is kept only as a fingerprint, an
HMAC keyed with the caller's own token, so the table reveals nothing of a body (a
password, say) even to someone who can read the database. A reservation is a lease:
when a crash leaves one unfinished, it lapses and the next attempt runs. Keys live for
`TTL`; older ones are free again and are purged by the deadline runner.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable
from datetime import datetime, timedelta

from collabdesk.domain.errors import ConcurrentUpdate, IdempotencyKeyInUse, IdempotencyKeyReused

from .context import ServiceContext
from .ports import StoredResponse, UnitOfWork

TTL = timedelta(hours=24)
LEASE = timedelta(seconds=60)
MAX_KEY_LENGTH = 255


def request_fingerprint(secret: str, method: str, target: str,
                        body_chunks: Iterable[bytes]) -> str:
    mac = hmac.new(secret.encode("utf-8"), digestmod=hashlib.sha256)
    mac.update(method.encode("ascii") + b" " + target.encode("utf-8") + b"\n")
    for chunk in body_chunks:
        mac.update(chunk)
    return mac.hexdigest()


def check_key(key: str) -> str | None:
    """Why `key` cannot be an idempotency key, or None: 1-255 visible ASCII characters."""
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        return f"must be 1-{MAX_KEY_LENGTH} characters long"
    if not all("!" <= ch <= "~" for ch in key):
        return "may only contain visible ASCII characters"
    return None


def begin(ctx: ServiceContext, scope: str, key: str, fingerprint: str) -> StoredResponse | None:
    """None: go ahead, the key is now reserved for this request. Otherwise the stored
    answer to replay. Raises when the key names another request or is still running."""
    def reserve(uow: UnitOfWork) -> StoredResponse | None:
        now = ctx.clock.now()
        if uow.idempotency.reserve(scope, key, fingerprint, now, now + LEASE):
            return None
        if uow.idempotency.take_over(scope, key, fingerprint, now, now + LEASE, now - TTL):
            return None
        stored = uow.idempotency.get(scope, key)
        if stored is None:  # released or purged between the statements: reserve again
            raise ConcurrentUpdate(f"idempotency key {key!r} changed concurrently")
        return stored

    stored = ctx.write(reserve)
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused(
            "this Idempotency-Key was already used with a different request")
    if stored.status_code is None:
        raise IdempotencyKeyInUse(
            "the first request with this Idempotency-Key is still being processed",
            retry_after=_seconds_until(stored.locked_until, ctx.clock.now()))
    return stored


def _seconds_until(moment: datetime | None, now: datetime) -> int:
    if moment is None:
        return 1
    return max(1, min(int(LEASE.total_seconds()), int((moment - now).total_seconds()) + 1))


def finish(ctx: ServiceContext, scope: str, key: str, status_code: int, body: str) -> None:
    ctx.write(lambda uow: uow.idempotency.complete(scope, key, status_code, body))


def abandon(ctx: ServiceContext, scope: str, key: str) -> None:
    """The first attempt failed unexpectedly: free the key so a retry runs for real."""
    ctx.write(lambda uow: uow.idempotency.release(scope, key))


def purge_expired(ctx: ServiceContext, batch: int = 1000) -> int:
    """Delete keys older than TTL, a batch at a time; how many went."""
    cutoff = ctx.clock.now() - TTL
    return ctx.write(lambda uow: uow.idempotency.purge(cutoff, batch))
