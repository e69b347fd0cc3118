"""Request-scoped helpers: the service context, the caller, If-Match, pagination."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from typing import Annotated, Any, TypeVar

from fastapi import Depends, Header, Query, Request

from collabdesk.domain.errors import ValidationFailed
from collabdesk.domain.values import Actor
from collabdesk.services.access import actor_of
from collabdesk.services.accounts import authenticate
from collabdesk.services.context import ServiceContext

T = TypeVar("T")


def get_ctx(request: Request) -> ServiceContext:
    ctx: ServiceContext = request.app.state.ctx
    return ctx


Ctx = Annotated[ServiceContext, Depends(get_ctx)]


def bearer_token(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


def current_actor(request: Request, ctx: Ctx) -> Actor:
    token = bearer_token(request.headers.get("authorization"))
    return actor_of(authenticate(ctx, token))


Caller = Annotated[Actor, Depends(current_actor)]


def expected_version(if_match: Annotated[str | None, Header()] = None) -> int | None:
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


def encode_cursor(value: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(value).encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> Any:
    try:
        return json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except ValueError:
        raise ValidationFailed("cursor is not one this server issued") from None


def page(items: Sequence[T], limit: int, cursor_of: Callable[[T], Any],
         render: Callable[[T], dict[str, Any]]) -> dict[str, Any]:
    """`items` holds up to limit + 1 rows; the extra one only says a next page exists."""
    shown = items[:limit]
    more = len(items) > limit and bool(shown)
    return {"items": [render(i) for i in shown],
            "next_cursor": encode_cursor(cursor_of(shown[-1])) if more else None}
