"""Migrating from several processes at once: one at a time.

`serve` and every `collabdesk worker` bring the schema to the newest migration when they
start. Started together on PostgreSQL (a deployment rolling out N API and M worker
processes), they queue on a session-level advisory lock, so one migrates and the others
find the schema current. SQLite needs no lock of its own: its writers queue on the
database lock.
"""

from __future__ import annotations

from sqlalchemy import Engine, text

from .engine import migrate

# An arbitrary constant, the same in every process: "coll" in ASCII.
MIGRATION_LOCK_KEY = 0x636F6C6C


def migrate_exclusively(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        migrate(engine)
        return
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        conn.commit()
        try:
            migrate(engine)
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            conn.commit()
