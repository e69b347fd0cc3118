"""The service itself: what it is, health, Prometheus metrics, and the test clock."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST

from collabdesk import __version__
from collabdesk.domain.errors import Forbidden
from collabdesk.domain.states import Role
from collabdesk.domain.values import utc_iso
from collabdesk.services.outbox import dispatch_due
from collabdesk.services.timers import fire_due_timers
from collabdesk.worker import delivery_metrics, metrics
from collabdesk.worker.delivery_metrics import OutboxGauges

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx
from ..openapi import problems

router = APIRouter(tags=["service"], route_class=m.RenderedRoute)


@router.get("/", response_model=m.ServiceInfo, summary="About this server")
def service() -> dict[str, Any]:
    """What this server is, and where its documentation lives. No token needed."""
    return {"name": "collabdesk", "version": __version__,
            "description": "Collaborative work orders for marketplace after-sales disputes",
            "docs": "/docs", "openapi": "/openapi.json", "health": "/healthz"}


@router.get("/healthz", response_model=m.Health, summary="Liveness")
def healthz() -> dict[str, str]:
    """Liveness: the process answers. No token needed."""
    return {"status": "ok"}


@router.get("/metrics", response_class=PlainTextResponse, summary="Prometheus metrics",
            responses={200: {"description": "The Prometheus text exposition format."},
                       **problems(forbidden="the caller is not an admin")})
def prometheus(request: Request, ctx: Ctx, caller: Caller) -> Response:
    """Request counts and latencies by route, timers fired and how late, and the timers
    pending and overdue, in Prometheus' text format. **Admin only** (operators scrape it
    with the admin token), never the public."""
    if caller.role is not Role.ADMIN:
        raise Forbidden("metrics are for operators: use the admin token")
    body = metrics.exposition(getattr(request.app.state, "engine", None), ctx.clock,
                              OutboxGauges(ctx))
    return Response(body, media_type=CONTENT_TYPE_LATEST)


# Mounted only by a server started with --test-clock; without it both paths answer 404.
test_clock_router = APIRouter(tags=["test clock"], route_class=m.RenderedRoute)


@test_clock_router.get("/v1/test-clock", response_model=m.ClockReading,
                       summary="Read the test clock")
def get_test_clock(request: Request) -> dict[str, str]:
    """The test clock's time. No token needed. Only on a server started with
    `--test-clock`."""
    return {"now": utc_iso(request.app.state.test_clock.now())}


@test_clock_router.post(
    "/v1/test-clock/advance", response_model=m.ClockAdvanced, summary="Advance the test clock",
    responses=problems(forbidden="the caller is not an admin",
                       validation_error="the step would take the clock past the end of "
                                        "year 9998"))
def advance(body: s.AdvanceIn, request: Request, ctx: Ctx, caller: Caller) -> dict[str, Any]:
    """Move the test clock forward by `seconds` and fire, in due order, every timer due by
    the new time (deadlines, reminders, lapses, SLAs). **Admin only.** Only on a server
    started with `--test-clock`."""
    if caller.role is not Role.ADMIN:
        raise Forbidden("only an admin moves the test clock")
    runner = request.app.state.runner
    dispatcher = request.app.state.dispatcher
    with runner.lock, dispatcher.lock:
        now = request.app.state.test_clock.advance(body.seconds)
        fired = fire_due_timers(ctx, now)
        # What falls due by the new time goes out before the answer, in due order: new
        # messages, and retries whose time came (their schedule counts from their first
        # due time, so a long step runs through it).
        sent = dispatch_due(ctx, dispatcher.channels, now=now,
                            observe=delivery_metrics.observe)
    return {"now": utc_iso(now), "fired": fired, "sent": sent}
