"""Request-scoped helpers: the service context, the caller, If-Match, pagination.

The dependencies are `async def` though they do no I/O: FastAPI runs a plain `def`
dependency in the thread pool, a hop per dependency per request.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request

from collabdesk.domain import bounds
from collabdesk.domain.errors import Unauthenticated, ValidationFailed
from collabdesk.domain.values import Actor
from collabdesk.services.context import ServiceContext

T = TypeVar("T")


async def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


async def current_actor(request: Request) -> Actor:
    """The caller the edge authenticated (api/edge.py) before the body was read."""
    actor: Actor | None = getattr(request.state, "actor", None)
    if actor is None:
        raise Unauthenticated("missing bearer token")
    return actor


Caller = Annotated[Actor, Depends(current_actor)]


async def expected_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
    """`If-Match: "3"` (or W/"3", or 3) -> 3; `*` or absent -> no check."""
    if if_match is None or if_match.strip() == "*":
        return None
    raw = if_match.strip().removeprefix("W/").strip('"')
    try:
        return int(raw)
    except ValueError:
        raise ValidationFailed(f"If-Match must be a work order version, not {if_match!r}") from None


IfMatch = Annotated[int | None, Depends(expected_version)]
Limit = Annotated[int, Query(ge=1, le=500)]
Cursor = Annotated[str | None, Query(max_length=512, pattern=r"^[A-Za-z0-9_-]*$")]


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (ValueError, RecursionError):
        raise ValidationFailed("cursor is not one this server issued") from None


def offset_cursor(cursor: str | None) -> int:
    """A position cursor (`0` when absent); anything but a non-negative int is refused."""
    if not cursor:
        return 0
    value = decode_cursor(cursor)
    if type(value) is not int or not 0 <= value < 2**31:
        raise ValidationFailed("cursor is not one this server issued")
    return value


def seq_pair_cursor(cursor: str | None) -> tuple[int, int]:
    """The events cursor: the last seq seen of the `all` and of the `platform` chain."""
    if not cursor:
        return 0, 0
    value = decode_cursor(cursor)
    if (not isinstance(value, list) or len(value) != 2
            or not all(type(v) is int and 0 <= v < 2**31 for v in value)):
        raise ValidationFailed("cursor is not one this server issued")
    return value[0], value[1]


def _keyset(cursor: str, nullable_time: bool) -> tuple[datetime | None, str]:
    raw = decode_cursor(cursor)
    try:
        at, key = raw
        moment = None if at is None and nullable_time else datetime.fromisoformat(at)
    except (TypeError, ValueError):
        raise ValidationFailed("cursor is not one this server issued") from None
    if (not isinstance(key, str) or not bounds.is_valid_id(key)
            or (moment is not None and bounds.instant_problem(moment) is not None)):
        raise ValidationFailed("cursor is not one this server issued")
    return moment, key


def keyset_cursor(cursor: str | None) -> tuple[datetime, str] | None:
    """A `[time, id]` cursor; a malformed one is a validation error, never a crash."""
    if not cursor:
        return None
    at, key = _keyset(cursor, nullable_time=False)
    assert at is not None
    return at, key


def due_cursor(cursor: str | None) -> tuple[datetime | None, str] | None:
    """A `[due_at or null, id]` cursor of the work-order list."""
    return _keyset(cursor, nullable_time=True) if cursor else None


def offset_page(items: Sequence[T], limit: int, cursor: str | None,
                render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """A page of a short list held in memory (one work order's contacts, notes...)."""
    start = offset_cursor(cursor)
    return page(items[start:start + limit + 1], limit, lambda _: start + limit, render)


def page(items: Sequence[T], limit: int, cursor_of: Callable[[T], Any],
         render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """`items` holds up to limit + 1 rows; the extra one only says a next page exists."""
    shown = items[:limit]
    more = len(items) > limit and bool(shown)
    return {"items": [render(i) for i in shown],
            "next_cursor": encode_cursor(cursor_of(shown[-1])) if more else None}
