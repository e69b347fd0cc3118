"""`GET /v1/stream`: the caller's new inbox items as Server-Sent Events.

The events come from the process's hub (api/stream_hub.py); a resume first sends what
the caller missed, read from the database. sse-starlette writes the stream, its
heartbeat, and ends it when the server shuts down (so `serve` stops with streams open).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Annotated

import anyio
from fastapi import APIRouter, Header, Query, Request
from sse_starlette import EventSourceResponse, ServerSentEvent
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from collabdesk.domain.records import InboxItem
from collabdesk.services import stream as svc
from collabdesk.services.context import ServiceContext

from .. import schemas as s
from ..deps import Caller, Ctx
from ..openapi import problems
from ..stream_hub import StreamHub, Subscription

router = APIRouter(tags=["notifications"])

RETRY_MS = 3000
MAX_LAST_EVENT_ID = 64
SEP = "\n"

_EXAMPLE = ('retry: 3000\n\n'
            'id: ntf_0192f5c3a1b2c3d4e5f6a7\n'
            'data: {"id":"ntf_0192f5c3a1b2c3d4e5f6a7","kind":"work_order_created",'
            '"work_order_id":"wo_0192f5c3a0aabbccddeeff","created_at":"2026-11-02T08:00:00Z",'
            '"text":"New work order wo_0192f5c3a0aabbccddeeff","read":false}\n\n'
            ': heartbeat\n\n')

_STREAM = {
    "description": "`text/event-stream`, open until the client or the server closes it: "
                   "`retry: 3000` first, then one event per new inbox item (`id:` the "
                   "item's id, no `event:` field, `data:` the item as JSON, the shape of "
                   "`GET /v1/inbox`'s `InboxItem`), and a `: heartbeat` comment line when "
                   "nothing else was sent for the heartbeat interval.",
    "content": {"text/event-stream": {"schema": {"type": "string"}, "example": _EXAMPLE}},
}


@router.get("/v1/stream", response_class=EventSourceResponse,
            summary="Stream my new notifications",
            responses={200: _STREAM, **problems(
                validation_error="`Last-Event-ID` (or `last_event_id`) over 64 characters")})
async def stream(
    request: Request, ctx: Ctx, caller: Caller,
    last_event_id: Annotated[str | None, Header(
        alias="Last-Event-ID", max_length=MAX_LAST_EVENT_ID,
        description="The id of the last item received: first send the caller's items "
                    "stored after it. Browsers' `EventSource` sends it when it "
                    "reconnects. Over 64 characters: 422.")] = None,
    last_event_id_query: Annotated[str | None, Query(
        alias="last_event_id", max_length=MAX_LAST_EVENT_ID,
        description="The same as the `Last-Event-ID` header, for a first connection "
                    "from a client that cannot set headers; the header wins.")] = None,
) -> EventSourceResponse:
    """Server-Sent Events of the caller's **new** inbox items, as they are stored.
    **Any caller**, for their own inbox: each party sees only its own items.

    Without `Last-Event-ID`, only items committed after the stream opened are sent.
    With it (the header, or `?last_event_id=`), the caller's items stored after that
    item come first, then the live ones, none twice; an id that is not one of the
    caller's items sends nothing from the past. A resume sends at most 5000 past items,
    then ends the stream: reconnecting with the last id sent continues from there.

    A heartbeat comment (`: heartbeat`) keeps idle connections open (every
    `COLLABDESK_STREAM_HEARTBEAT_SECONDS`, 15 by default). A client that falls 1000 items
    behind is disconnected and resumes with `Last-Event-ID`; the stream also ends when
    the server shuts down. Consume it with `EventSource` (its `onmessage`), or
    `curl -N -H 'Authorization: Bearer <token>' .../v1/stream`.
    """
    hub: StreamHub = request.app.state.stream_hub
    resume_from = last_event_id or last_event_id_query or None
    subscription = await hub.subscribe(caller.id)
    shutdown = anyio.Event()

    async def end_on_shutdown() -> None:
        await shutdown.wait()
        subscription.close()  # the events end, and the response with them, cleanly

    return EventSourceResponse(
        _events(ctx, hub, subscription, resume_from),
        ping=hub.heartbeat_seconds, sep=SEP,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat", sep=SEP),
        send_timeout=30,  # a client that takes nothing for 30 s is gone
        # The server is stopping: end the stream (a client reconnects elsewhere, or to
        # the restarted server, with Last-Event-ID); cancelled if it takes over 2 s.
        shutdown_event=shutdown, shutdown_grace_period=2, data_sender_callable=end_on_shutdown,
        # Also when the stream never starts (HEAD): the subscription must not linger.
        background=BackgroundTask(_unsubscribe, hub, subscription))


async def _unsubscribe(hub: StreamHub, subscription: Subscription) -> None:
    """On the event loop, as the hub's other changes are (a sync background task would
    run in the thread pool, racing a reconnecting client's new subscription)."""
    hub.unsubscribe(subscription)


async def _events(ctx: ServiceContext, hub: StreamHub, subscription: Subscription,
                  resume_from: str | None) -> AsyncIterator[ServerSentEvent]:
    try:
        yield ServerSentEvent(retry=RETRY_MS, sep=SEP)
        sent: set[str] = set()
        if resume_from is not None:
            after = resume_from
            for _ in range(svc.BACKLOG_PAGES):
                page = await run_in_threadpool(svc.backlog, ctx, subscription.account_id,
                                               after, svc.BACKLOG_PAGE)
                for item in page or ():
                    sent.add(item.id)
                    yield _event(item)
                if page is None or len(page) < svc.BACKLOG_PAGE:
                    break
                after = page[-1].id
            else:
                return  # more to resume: the client reconnects from the last id sent
        while (batch := await subscription.next_batch()) is not None:
            for item in batch:
                if item.id not in sent:
                    yield _event(item)
    finally:
        hub.unsubscribe(subscription)


def _event(item: InboxItem) -> ServerSentEvent:
    data = json.dumps(s.inbox_out(item), ensure_ascii=False, separators=(",", ":"))
    return ServerSentEvent(data, id=item.id, sep=SEP)
