"""The database a benchmark runs on, and the baseline every write figure is compared with:
durable single-row commits through the same engine (same driver, same durability)."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Column, Connection, Engine, Integer, MetaData, String, Table, insert, text
from sqlalchemy.engine import make_url

from collabdesk.adapters.db.engine import WRITE, make_engine
from collabdesk.bootstrap import Container, build
from collabdesk.services.ports import Clock
from collabdesk.settings import Settings

from .core import Options, Stopwatch, progress


@dataclass(frozen=True)
class Place:
    """Where one benchmark keeps its data: the database URL and a scratch directory."""

    url: str
    scratch: Path

    @property
    def is_sqlite(self) -> bool:
        return make_url(self.url).get_backend_name() == "sqlite"

    def settings(self, name: str = "data") -> Settings:
        return Settings(database_url=self.url, data_dir=self.scratch / name)

    def container(self, clock: Clock | None = None) -> Container:
        """The app's own wiring (bootstrap.build): its engine, migrations and services."""
        return build(self.settings(), clock=clock)


@contextmanager
def place(opts: Options) -> Iterator[Place]:
    """A fresh database: SQLite in a new temporary directory, or the given PostgreSQL
    database with its `public` schema dropped and recreated."""
    with tempfile.TemporaryDirectory(prefix="collabdesk-bench-") as tmp:
        scratch = Path(tmp)
        if opts.database_url is None:
            yield Place(f"sqlite:///{scratch / 'bench.db'}", scratch)
            return
        reset_schema(opts.database_url)
        yield Place(opts.database_url, scratch)


def reset_schema(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() != "postgresql":
        raise SystemExit(f"--database-url: only PostgreSQL URLs are supported, not {url!r}")
    progress(f"dropping and recreating the public schema of {parsed.database}")
    engine = make_engine(url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    finally:
        engine.dispose()


@contextmanager
def writing(engine: Engine) -> Iterator[Connection]:
    """One write transaction as the app opens them (on SQLite: BEGIN IMMEDIATE)."""
    with engine.connect() as conn:
        conn = conn.execution_options(**{WRITE: True})
        with conn.begin():
            yield conn


_scratch = MetaData()
RAW_COMMITS = Table(
    "bench_raw_commits", _scratch,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("payload", String(64), nullable=False),
)


def raw_commits(engine: Engine, watch: Stopwatch, seconds: float) -> None:
    """For `seconds`: one single-row INSERT per transaction, each committed durably, the
    way a unit of work commits (a connection from the pool, BEGIN, INSERT, COMMIT)."""
    RAW_COMMITS.create(engine, checkfirst=True)
    stmt = insert(RAW_COMMITS)
    deadline = time.perf_counter() + seconds
    n = 0
    with watch.timing():
        while time.perf_counter() < deadline:
            with writing(engine) as conn:
                conn.execute(stmt, {"payload": "a durable single-row commit"})
            n += 1
    watch.add(n)


def analyze(engine: Engine) -> None:
    """After a bulk load, give PostgreSQL the statistics autovacuum would soon gather
    (without them its planner guesses, and some guesses are very wrong). SQLite is left
    as the app leaves it: the app never runs ANALYZE there."""
    if engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("ANALYZE"))
            conn.commit()
