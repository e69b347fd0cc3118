"""Migrating from several processes at once: one at a time.

`serve` and every `collabdesk worker` bring the schema to the newest migration when they
start. Started together on PostgreSQL (a deployment rolling out N API and M worker
processes), they queue on a session-level advisory lock, so one migrates and the others
find the schema current. On SQLite they take turns on an exclusive `flock` of
`<database>.migrate.lock`: the migration's first statements read under a deferred BEGIN,
so two processes migrating at once could both read, then one fail to write ("database is
locked").
"""

from __future__ import annotations

import fcntl
import os

from sqlalchemy import Engine, text

from .engine import migrate

# An arbitrary constant, the same in every process: "coll" in ASCII.
MIGRATION_LOCK_KEY = 0x636F6C6C


def migrate_exclusively(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        database = engine.url.database
        if not database or database == ":memory:":
            migrate(engine)
            return
        fd = os.open(f"{database}.migrate.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)  # released by the kernel if the process dies
            migrate(engine)
        finally:
            os.close(fd)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            migrate(engine)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
