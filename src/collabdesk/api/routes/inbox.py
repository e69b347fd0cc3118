"""The caller's in-app inbox (the IM card channel)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response, status

from collabdesk.services import inbox as svc

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx, Cursor, Limit, keyset_cursor, page
from ..fields import PathId
from ..openapi import problems

router = APIRouter(prefix="/v1/inbox", tags=["notifications"], route_class=m.RenderedRoute)


@router.get("", response_model=m.InboxPage, summary="List my notifications",
            responses=problems(validation_error="a `cursor` this server did not issue"))
def list_inbox(ctx: Ctx, caller: Caller, limit: Limit = 50,
               cursor: Cursor = None) -> dict[str, Any]:
    """The caller's own notifications (work-order cards, reminders, rulings...), newest
    first. **Any caller.**"""
    before = keyset_cursor(cursor)
    items = svc.list_inbox(ctx, caller, before, limit + 1)
    return page(items, limit, lambda i: [s.iso_or_none(i.created_at), i.id], s.inbox_out)


@router.post("/{item_id}/read", status_code=status.HTTP_204_NO_CONTENT,
             response_class=Response, summary="Mark a notification read",
             responses=problems(not_found="no such notification in the caller's inbox"))
def mark_read(item_id: PathId, ctx: Ctx, caller: Caller) -> Response:
    """Mark one of the caller's own notifications read (an addition to api.md). **Any
    caller**, for their own inbox."""
    svc.mark_read(ctx, caller, item_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
