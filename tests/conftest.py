"""Shared fixtures: databases (SQLite and PostgreSQL), a movable clock, services, HTTP.

PostgreSQL tests read their URL from COLLABDESK_TEST_POSTGRES_URL (e.g.
postgresql+psycopg://postgres@127.0.0.1:5432/collabdesk_test; the suite empties that
database when it ends). Without it they are skipped locally; under CI=true a missing URL
is an error, so CI can never silently skip them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db.engine import make_engine, migrate
from collabdesk.adapters.db.tables import metadata
from collabdesk.api.app import create_app
from collabdesk.bootstrap import Container, build
from collabdesk.services.accounts import ensure_admin
from collabdesk.services.context import ServiceContext
from collabdesk.settings import Settings
from tests.receivers import HttpReceiver, SmtpServer, http_receiver, smtp_server

PG_ENV = "COLLABDESK_TEST_POSTGRES_URL"
START = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
ADMIN_TOKEN = "test-admin-token"


def postgres_url() -> str | None:
    """The test database; under pytest-xdist each worker gets a database of its own
    (`<name>_gw0`, `<name>_gw1`...), created on first use, since every test empties it."""
    url = os.environ.get(PG_ENV)
    if not url and os.environ.get("CI") == "true":
        raise RuntimeError(f"CI must set {PG_ENV}: PostgreSQL tests may not be skipped")
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    base = make_url(url)
    own = base.set(database=f"{base.database}_{worker}")
    admin = create_engine(base, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            exists = conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :d"),
                                  {"d": own.database}).first()
            if exists is None:
                conn.execute(text(f'CREATE DATABASE "{own.database}"'))
    finally:
        admin.dispose()
    return own.render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def _sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Migrate once; every test gets a copy of this file."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    engine = make_engine(f"sqlite:///{path}")
    migrate(engine)
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()
    return path


@pytest.fixture(scope="session")
def _postgres_engine() -> Iterator[Engine]:
    url = postgres_url()
    if not url:
        pytest.skip(f"{PG_ENV} is not set")
    engine = make_engine(url)
    with engine.begin() as conn:  # start from an empty schema, whatever ran before
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    migrate(engine)
    yield engine
    with engine.begin() as conn:  # leave the database as empty as we found it
        conn.execute(text("DROP SCHEMA public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


def _truncate(engine: Engine) -> None:
    names = ", ".join(t.name for t in metadata.sorted_tables)
    with engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """Each test using it runs once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "collabdesk.db"
        shutil.copy(request.getfixturevalue("_sqlite_template"), path)
        return f"sqlite:///{path}"
    engine: Engine = request.getfixturevalue("_postgres_engine")
    _truncate(engine)
    return engine.url.render_as_string(hide_password=False)


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """A database with nothing in it: a new SQLite file, or a new PostgreSQL schema."""
    if request.param == "sqlite":
        path = tmp_path / "empty.db"
        engine = make_engine(f"sqlite:///{path}")
        yield engine
        engine.dispose()
        return
    pg: Engine = request.getfixturevalue("_postgres_engine")
    schema = "collabdesk_empty_schema"
    with pg.begin() as conn:
        conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        conn.execute(text(f"CREATE SCHEMA {schema}"))
    url = pg.url.update_query_dict({"options": f"-csearch_path={schema}"})
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        yield engine
    finally:
        engine.dispose()
        with pg.begin() as conn:
            conn.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))


@pytest.fixture
def postgres_database_url(_postgres_engine: Engine) -> str:
    _truncate(_postgres_engine)
    return _postgres_engine.url.render_as_string(hide_password=False)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data")


@pytest.fixture
def container(settings: Settings, clock: FixedClock) -> Iterator[Container]:
    built = build(settings, clock=clock, run_migrations=False)
    built.test_clock = clock
    ensure_admin(built.ctx, ADMIN_TOKEN)
    yield built
    built.engine.dispose()


@pytest.fixture
def ctx(container: Container) -> ServiceContext:
    return container.ctx


@pytest.fixture
def client(container: Container) -> Iterator[TestClient]:
    app = create_app(container, start_runner=False)
    with TestClient(app, base_url="http://127.0.0.1") as c:
        yield c


@pytest.fixture
def sms() -> Iterator[HttpReceiver]:
    """A real HTTP SMS gateway stub on loopback (tests/receivers.py)."""
    with http_receiver("/sms") as receiver:
        yield receiver


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    """A real SMTP server (aiosmtpd) on loopback."""
    with smtp_server() as server:
        yield server
