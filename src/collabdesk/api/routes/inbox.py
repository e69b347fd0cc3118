"""The caller's in-app inbox (the IM card channel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from collabdesk.services import inbox as svc

from .. import schemas as s
from ..deps import Caller, Ctx, Limit, keyset_cursor, page

router = APIRouter(prefix="/v1/inbox", tags=["notifications"])


@router.get("")
def list_inbox(ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: str | None = None) -> dict[str, Any]:
    before = keyset_cursor(cursor)
    items = svc.list_inbox(ctx, caller, before, limit + 1)
    return page(items, limit, lambda i: [s.iso_or_none(i.created_at), i.id], s.inbox_out)


@router.post("/{item_id}/read", status_code=status.HTTP_204_NO_CONTENT)
def mark_read(item_id: str, ctx: Ctx, caller: Caller) -> Response:
    svc.mark_read(ctx, caller, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
