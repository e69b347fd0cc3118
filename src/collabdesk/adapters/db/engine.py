"""Engines for SQLite (embedded default) and PostgreSQL (production), and migrations."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

MIGRATIONS = Path(__file__).with_name("migrations")

# Execution option that marks a connection as a writer: on SQLite it begins with
# BEGIN IMMEDIATE, so writers queue on the database lock instead of failing later on a
# stale snapshot; readers stay on deferred BEGIN and never block anyone in WAL mode.
WRITE = "collabdesk_write"


# Connections beyond the request threads: the deadline runner, the edge's lookups.
POOL_HEADROOM = 4


def make_engine(url: str, *, echo: bool = False, threads: int = 32) -> Engine:
    """A pool as large as the threads that use it (`threads` request threads plus
    headroom), so connections are opened once and kept: under load a smaller pool opens
    and closes connections (and re-runs SQLite's PRAGMAs) on every overflow.

    No pre-ping (a round trip per checkout): a connection found dead raises, SQLAlchemy
    then discards the whole pool, and only that request fails.
    """
    parsed = make_url(url)
    size = threads + POOL_HEADROOM
    if parsed.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo, size)
    return create_engine(url, echo=echo, pool_size=size, max_overflow=size // 2,
                         pool_recycle=3600)


def _sqlite_engine(url: str, echo: bool, size: int) -> Engine:
    parsed = make_url(url)
    database = parsed.database
    memory = not database or database == ":memory:"
    if database and not memory:
        Path(database).parent.mkdir(parents=True, exist_ok=True)
    # A file database gets a pool of `size` kept connections; in-memory ones keep
    # SQLAlchemy's default (one connection per thread, or the database is not shared).
    pool = {} if memory else {"pool_size": size, "max_overflow": size // 2}
    engine = create_engine(url, echo=echo, connect_args={"timeout": 30,
                                                          "check_same_thread": False},
                           **pool)

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA journal_mode=WAL")
        cur.execute("PRAGMA synchronous=FULL")  # a commit survives power loss
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")

    return engine


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest migration; safe to call on every start."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with engine.connect() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
