"""Health, Prometheus metrics and the test clock."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from collabdesk.domain.errors import Forbidden, NotFound
from collabdesk.domain.states import Role
from collabdesk.domain.values import utc_iso
from collabdesk.services.timers import fire_due_timers

from .. import schemas as s
from ..deps import Caller, Ctx

router = APIRouter(tags=["service"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/metrics")
def prometheus() -> Response:
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)


def _test_clock(request: Request) -> Any:
    clock = request.app.state.test_clock
    if clock is None:
        raise NotFound("the test clock is off (start the server with --test-clock)")
    return clock


# Declared before the caller and the body, so a server without the test clock answers
# 404 whoever asks (api.md: "Without --test-clock both paths answer 404").
TestClockOn = Annotated[Any, Depends(_test_clock)]


@router.get("/v1/test-clock", tags=["test clock"])
def get_test_clock(clock: TestClockOn) -> dict[str, str]:
    return {"now": utc_iso(clock.now())}


@router.post("/v1/test-clock/advance", tags=["test clock"])
def advance(clock: TestClockOn, body: s.AdvanceIn, request: Request, ctx: Ctx,
            caller: Caller) -> dict[str, Any]:
    if caller.role is not Role.ADMIN:
        raise Forbidden("only an admin moves the test clock")
    runner = request.app.state.runner
    with runner.lock:
        now = clock.advance(body.seconds)
        fired = fire_due_timers(ctx, now)
    return {"now": utc_iso(now), "fired": fired}
