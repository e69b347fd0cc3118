"""The caller's in-app notifications."""

from __future__ import annotations

from datetime import datetime

from collabdesk.domain.errors import NotFound
from collabdesk.domain.records import InboxItem
from collabdesk.domain.values import Actor

from .context import ServiceContext


def list_inbox(ctx: ServiceContext, actor: Actor, before: tuple[datetime, str] | None,
               limit: int) -> list[InboxItem]:
    return ctx.read(lambda uow: uow.inbox.page(actor.id, before, limit))


def mark_read(ctx: ServiceContext, actor: Actor, item_id: str) -> None:
    if not ctx.write(lambda uow: uow.inbox.mark_read(actor.id, item_id)):
        raise NotFound(f"notification {item_id} not found")
