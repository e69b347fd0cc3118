"""The FastAPI application: the edge, routers, error handlers, docs, the deadline runner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from collabdesk import __version__
from collabdesk.bootstrap import Container
from collabdesk.worker.runner import DeadlineRunner

from . import docs, errors, openapi
from .edge import Edge
from .routes import accounts, evidence, inbox, ops, violations, work_orders


def create_app(container: Container, *, start_runner: bool = True) -> FastAPI:
    runner = DeadlineRunner(container.ctx, container.settings.timer_poll_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in AnyIO's thread pool: as many threads as database connections.
        to_thread.current_default_thread_limiter().total_tokens = container.settings.threads
        if start_runner:
            runner.start()
        try:
            yield
        finally:
            if start_runner:
                runner.stop()

    test_clock = container.test_clock is not None
    app = FastAPI(title="collabdesk", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description=docs.DESCRIPTION,
                  openapi_tags=[t for t in openapi.TAGS
                                if test_clock or t["name"] != "test clock"])
    app.state.ctx = container.ctx
    app.state.test_clock = container.test_clock
    app.state.runner = runner
    errors.install(app)
    for module in (accounts, work_orders, evidence, inbox, violations, ops):
        app.include_router(module.router)
    if test_clock:
        app.include_router(ops.test_clock_router)
    docs.install(app)
    settings = container.settings
    app.add_middleware(Edge, ctx=container.ctx, max_body_bytes=settings.max_body_bytes,
                       evidence_max_bytes=settings.evidence_max_bytes, test_clock=test_clock,
                       spool_dir=settings.data_dir / "spool")
    return app
