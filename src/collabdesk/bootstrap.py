"""The one place where settings become engines, adapters and services."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine

from .adapters.clock import SystemClock, TestClock
from .adapters.db.engine import make_engine, migrate
from .adapters.db.uow import SqlUnitOfWorkFactory
from .adapters.evidence_files import LocalEvidenceStore
from .services.context import ServiceContext, Signals, TokenCache
from .services.ports import Clock, MovableClock
from .settings import Settings


@dataclass
class Container:
    settings: Settings
    engine: Engine
    ctx: ServiceContext
    test_clock: MovableClock | None


def build(settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True
          ) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "spool").mkdir(exist_ok=True)  # request bodies over 1 MiB
    engine = make_engine(settings.resolved_database_url, threads=settings.threads)
    if run_migrations:
        migrate(engine)
    test_clock: MovableClock | None = None
    if clock is None:
        if settings.test_clock:
            test_clock = TestClock()
            clock = test_clock
        else:
            clock = SystemClock()
    signals = Signals()  # what a commit raised ("inbox", "outbox") rings in this process
    ctx = ServiceContext(
        uow=SqlUnitOfWorkFactory(engine, on_commit=signals.fire), clock=clock,
        policy=settings.policy(),
        evidence_store=LocalEvidenceStore(settings.data_dir / "evidence"),
        evidence_max_bytes=settings.evidence_max_bytes,
        timer_batch_size=settings.timer_batch_size,
        tokens=TokenCache(settings.token_cache_seconds), signals=signals)
    return Container(settings, engine, ctx, test_clock)
