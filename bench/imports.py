"""import: registering orders through the services' import, against an executemany of
the same rows into `orders`, as many per commit as the import's batch."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, insert

from collabdesk.adapters.clock import SystemClock
from collabdesk.adapters.db import tables as t
from collabdesk.services.catalog import import_orders

from . import data
from .core import Benchmark, Figure, Goal, Options, Stopwatch, progress
from .db import place, writing

DESCRIPTION = ("orders imported through the services (catalog.import_orders), against "
               "executemany of the same rows, 500 per commit")

BATCH = 500  # import_orders' default batch, and the CLI's


def _rows(cast: data.Cast, prefix: str, start: int, count: int,
          paid: datetime) -> list[dict[str, Any]]:
    """Rows as `collabdesk orders import` reads them from a CSV file: all text."""
    return [{"id": f"{prefix}-{i:08d}", "store_id": cast.store_id,
             "consumer_id": cast.consumers[i % len(cast.consumers)].actor.id,
             "kind": "standard", "amount_cents": str(10_000 + i % 5_000),
             "paid_at": (paid + timedelta(seconds=i)).isoformat().replace("+00:00", "Z")}
            for i in range(start, start + count)]


def _numbered(rows: list[dict[str, Any]]) -> Iterator[tuple[int, dict[str, Any]]]:
    return ((n, row) for n, row in enumerate(rows, start=2))  # line 1 is the CSV header


def _service(ctx: Any, rows: list[dict[str, Any]], watch: Stopwatch) -> None:
    with watch.timing():
        result = import_orders(ctx, _numbered(rows), batch_size=BATCH)
    if result.refused or result.imported != len(rows):
        raise RuntimeError(f"the import refused rows: {result.refused[:3]}")
    watch.add(result.imported)


def _baseline(engine: Engine, rows: list[dict[str, Any]], watch: Stopwatch) -> None:
    """The same rows, converted just enough to insert (an int, an instant) and written
    with one executemany per `BATCH` rows, each batch committed."""
    stmt = insert(t.orders)
    with watch.timing():
        now = datetime.now(UTC)
        for i in range(0, len(rows), BATCH):
            with writing(engine) as conn:
                conn.execute(stmt, [
                    {"id": r["id"], "store_id": r["store_id"], "consumer_id": r["consumer_id"],
                     "kind": r["kind"], "amount_cents": int(r["amount_cents"]),
                     "paid_at": datetime.fromisoformat(r["paid_at"]), "created_at": now}
                    for r in rows[i:i + BATCH]])
    watch.add(len(rows))


def run(opts: Options) -> list[Figure]:
    most_rounds = opts.pick(smoke=1, quick=6, full=10)
    per_round = opts.pick(smoke=1_000, quick=2_000, full=20_000)
    budget = opts.pick(smoke=0.0, quick=12.0, full=90.0)  # seconds of service time
    with place(opts) as where:
        container = where.container(SystemClock())
        ctx, engine = container.ctx, container.engine
        try:
            cast = data.make_cast(ctx, data.make_platform(ctx), "bench-import", consumers=50)
            paid = datetime.now(UTC).replace(microsecond=0) - timedelta(days=20)
            service, raw = Stopwatch(), Stopwatch()
            _service(ctx, _rows(cast, "warm-s", 0, BATCH, paid), Stopwatch())
            _baseline(engine, _rows(cast, "warm-b", 0, BATCH, paid), Stopwatch())
            for r in range(most_rounds):
                if r and service.seconds >= budget:
                    break
                progress(f"import: round {r + 1}: {per_round:,} rows each way")
                start = r * per_round
                _service(ctx, _rows(cast, "svc", start, per_round, paid), service)
                _baseline(engine, _rows(cast, "raw", start, per_round, paid), raw)
            progress(f"import: {service.count:,} rows in {service.seconds:.1f} s through the "
                     f"services, {raw.count:,} in {raw.seconds:.1f} s by executemany")
        finally:
            engine.dispose()
    return [Figure("import_rows_per_s", service.rate, "/s", "executemany_rows_per_s", raw.rate,
                   Goal(">=", 0.3))]


BENCHMARK = Benchmark("import", DESCRIPTION, run)
