"""The FastAPI application: the edge, routers, error handlers, docs, the deadline runner
and the outbox dispatcher.

`create_app` serves one container; `app_from_env` is the factory each API process of
`collabdesk serve --workers N` calls: it builds its container from the COLLABDESK_*
environment the parent resolved, runs no migration and no deadline runner (the parent
does both)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from anyio import to_thread
from fastapi import FastAPI

from collabdesk import __version__
from collabdesk.bootstrap import Container, build
from collabdesk.settings import Settings
from collabdesk.worker.dispatcher import OutboxDispatcher
from collabdesk.worker.runner import DeadlineRunner

from . import docs, errors, openapi
from .edge import Edge
from .routes import accounts, evidence, inbox, notifications, ops, stream, violations, work_orders
from .stream_hub import StreamHub


def create_app(container: Container, *, start_runner: bool = True) -> FastAPI:
    runner = DeadlineRunner.for_container(container)  # connects only when started
    dispatcher = OutboxDispatcher.for_container(container)
    hub = StreamHub(container.ctx, poll_seconds=container.settings.stream_poll_seconds,
                    heartbeat_seconds=container.settings.stream_heartbeat_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        # Sync routes run in AnyIO's thread pool: as many threads as database connections.
        to_thread.current_default_thread_limiter().total_tokens = container.settings.threads
        if start_runner:
            runner.start()
            dispatcher.start()
        try:
            yield
        finally:
            if start_runner:
                runner.stop()
                dispatcher.stop()
            await hub.aclose()  # GET /v1/stream's poller, if a stream started it

    test_clock = container.test_clock is not None
    app = FastAPI(title="collabdesk", version=__version__, lifespan=lifespan,
                  docs_url=None, redoc_url=None, openapi_url="/openapi.json",
                  description=docs.DESCRIPTION,
                  openapi_tags=[t for t in openapi.TAGS
                                if test_clock or t["name"] != "test clock"])
    app.state.ctx = container.ctx
    app.state.test_clock = container.test_clock
    app.state.runner = runner
    app.state.dispatcher = dispatcher
    app.state.engine = container.engine
    app.state.stream_hub = hub
    errors.install(app)
    for module in (accounts, work_orders, evidence, inbox, notifications, stream, violations,
                   ops):
        app.include_router(module.router)
    if test_clock:
        app.include_router(ops.test_clock_router)
    docs.install(app)
    settings = container.settings
    app.add_middleware(Edge, ctx=container.ctx, max_body_bytes=settings.max_body_bytes,
                       evidence_max_bytes=settings.evidence_max_bytes, test_clock=test_clock,
                       spool_dir=settings.data_dir / "spool")
    return app


def app_from_env() -> FastAPI:
    """The app of one API process of `serve --workers N` (uvicorn's factory)."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    settings = Settings()
    if settings.test_clock:  # the parent refuses this; the clock would be per process
        raise SystemExit("error: --test-clock needs a single API process")
    return create_app(build(settings, run_migrations=False), start_runner=False)
