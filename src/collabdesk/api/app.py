"""The FastAPI application: routers, error handlers, middleware, the deadline runner."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response
from prometheus_client import Counter, Histogram

from collabdesk import __version__
from collabdesk.bootstrap import Container
from collabdesk.worker.runner import DeadlineRunner

from . import errors
from .idempotency import IdempotencyMiddleware
from .routes import accounts, evidence, inbox, ops, violations, work_orders

REQUESTS = Counter("collabdesk_http_requests_total", "HTTP requests",
                   ["method", "route", "status"])
LATENCY = Histogram("collabdesk_http_request_seconds", "HTTP request latency",
                    ["method", "route"])


def create_app(container: Container, *, start_runner: bool = True) -> FastAPI:
    runner = DeadlineRunner(container.ctx, container.settings.timer_poll_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if start_runner:
            runner.start()
        try:
            yield
        finally:
            if start_runner:
                runner.stop()

    app = FastAPI(title="collabdesk", version=__version__, lifespan=lifespan,
                  description="Collaborative work orders for marketplace after-sales "
                              "disputes. Contract: api.md.")
    app.state.ctx = container.ctx
    app.state.test_clock = container.test_clock
    app.state.runner = runner
    errors.install(app)
    for module in (accounts, work_orders, evidence, inbox, violations, ops):
        app.include_router(module.router)

    @app.middleware("http")
    async def observe(request: Request,
                      call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        LATENCY.labels(request.method, path).observe(time.perf_counter() - started)
        REQUESTS.labels(request.method, path, str(response.status_code)).inc()
        return response

    app.add_middleware(IdempotencyMiddleware)
    return app
