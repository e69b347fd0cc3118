"""The `collabdesk` command, run as the operator runs it: a subprocess of the installed
entry point, on SQLite in a data directory and on PostgreSQL by URL."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import text

from collabdesk.adapters.clock import FixedClock
from collabdesk.bootstrap import Container, build
from collabdesk.domain.records import Account
from collabdesk.domain.states import Role
from collabdesk.domain.values import Actor, OrderKind, Store, StorePlatform
from collabdesk.services import accounts, catalog, metrics
from collabdesk.settings import Settings
from tests.builders import make_world
from tests.conftest import START

COLLABDESK = Path(sys.executable).with_name("collabdesk")


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def collabdesk(*args: str | Path, cwd: Path) -> Run:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    done = subprocess.run([COLLABDESK, *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    return Run(done.returncode, done.stdout, done.stderr)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def container_for(settings: Settings) -> Iterator[Container]:
    container = build(settings, clock=FixedClock(START))
    try:
        yield container
    finally:
        container.engine.dispose()


@pytest.fixture
def sqlite_app(data_dir: Path) -> Iterator[Container]:
    """The same database the CLI opens with `--data-dir`, opened in this process."""
    yield from container_for(Settings(data_dir=data_dir))


@pytest.fixture
def pg_app(postgres_database_url: str, tmp_path: Path) -> Iterator[Container]:
    yield from container_for(Settings(database_url=postgres_database_url,
                                      data_dir=tmp_path / "pg-data"))


# ---- accounts create -------------------------------------------------------------------------


def authenticated(app: Container, token: str) -> Account:
    return accounts.authenticate(app.ctx, token)


def test_accounts_create_prints_a_token_that_authenticates(
        tmp_path: Path, data_dir: Path) -> None:
    run = collabdesk("accounts", "create", "--name", "Zhang San", "--role", "triage",
                     "--data-dir", data_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    token = run.out.strip()
    assert token.startswith("cdk_")
    assert "\n" not in token  # stdout is the token alone, ready for a script
    assert "created triage account" in run.err
    for app in container_for(Settings(data_dir=data_dir)):
        account = authenticated(app, token)
        assert account.name == "Zhang San"
        assert account.role is Role.TRIAGE


def test_accounts_create_on_postgresql_by_url(tmp_path: Path, pg_app: Container) -> None:
    catalog.create_store(pg_app.ctx, None, Store("s-pg", "PG store", StorePlatform.TAOBAO))
    run = collabdesk("accounts", "create", "--name", "Owner", "--role", "merchant_owner",
                     "--store-id", "s-pg", "--database-url", pg_app.settings.database_url or "",
                     "--data-dir", tmp_path / "unused", cwd=tmp_path)
    assert run.code == 0, run.err
    account = authenticated(pg_app, run.out.strip())
    assert account.store_id == "s-pg"
    assert account.role is Role.MERCHANT_OWNER


@pytest.mark.parametrize(("args", "message"), [
    (("--role", "merchant_agent"), "error: store_id is required for merchant_agent"),
    (("--role", "merchant_owner", "--store-id", "s-none"), "error: store s-none not found"),
    (("--role", "consumer", "--login", "ann", "--password", "short"),
     "error: password must be at least 8 characters"),
], ids=["merchant-without-store", "unknown-store", "short-password"])
def test_accounts_create_refuses_bad_input_with_a_clear_message(
        tmp_path: Path, data_dir: Path, args: tuple[str, ...], message: str) -> None:
    run = collabdesk("accounts", "create", "--name", "Ann", *args, "--data-dir", data_dir,
                     cwd=tmp_path)
    assert run.code != 0
    assert message in run.err
    assert "Traceback" not in run.err
    assert run.out == ""


def test_an_unreachable_database_is_reported_in_one_line_not_a_traceback(
        tmp_path: Path) -> None:
    run = collabdesk("audit", "verify", "--database-url",
                     "postgresql+psycopg://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert run.code != 0
    assert "Traceback" not in run.err
    assert run.err.startswith("error: ")
    assert "Connection refused" in run.err or "connection failed" in run.err


# ---- orders import -------------------------------------------------------------------------


CSV_HEADER = "id,store_id,consumer_id,kind,amount_cents,paid_at\n"


def consumers(app: Container, *ids: str) -> None:
    """Orders belong to consumer accounts; these get the given ids."""
    for account_id in ids:
        accounts.create_account(app.ctx, None, name=account_id, role=Role.CONSUMER,
                                account_id=account_id)


def test_orders_import_from_csv_names_every_refused_line_and_loses_nothing(
        tmp_path: Path, data_dir: Path, sqlite_app: Container) -> None:
    catalog.create_store(sqlite_app.ctx, None, Store("s1", "Shop", StorePlatform.TMALL))
    consumers(sqlite_app, "c0", "c1", "c2")
    catalog.create_order(sqlite_app.ctx, None, catalog.parse_order_row({
        "id": "o-old", "store_id": "s1", "consumer_id": "c0", "amount_cents": "1",
        "paid_at": "2026-10-01T00:00:00Z"}))
    source = tmp_path / "orders.csv"
    source.write_text(
        CSV_HEADER
        + "o1,s1,c1,standard,12900,2026-11-01T10:00:00+08:00\n"     # line 2: good
        + "o2,s-none,c1,standard,100,2026-11-01T10:00:00Z\n"         # 3: unknown store
        + "o1,s1,c2,standard,100,2026-11-01T10:00:00Z\n"             # 4: duplicate in file
        + "o-old,s1,c2,standard,100,2026-11-01T10:00:00Z\n"          # 5: already stored
        + "\n"                                                       # 6: blank
        + "o3,s1,,standard,100,2026-11-01T10:00:00Z\n"               # 7: missing consumer
        + "o4,s1,c1,standard,12.50,2026-11-01T10:00:00Z\n"           # 8: cents, not yuan
        + "o5,s1,c1,standard,100,2026-11-01T10:00:00\n"              # 9: naive paid_at
        + "o6,s1,c1,worry_free,0,2026-11-02T00:00:00Z\n"             # 10: good
        + "o7,s1,c1,gift,100,2026-11-02T00:00:00Z\n"                 # 11: unknown kind
        + "o8,s1,c1,standard,-5,2026-11-02T00:00:00Z\n",             # 12: negative
        encoding="utf-8")
    run = collabdesk("orders", "import", source, "--batch-size", "2", "--data-dir", data_dir,
                     cwd=tmp_path)
    assert run.code == 0, run.err
    refused = refused_lines(run.out)
    assert run.out.splitlines()[0] == "imported 2 order(s); refused 8"
    assert sorted(refused) == [3, 4, 5, 7, 8, 9, 11, 12]
    assert "unknown store s-none" in refused[3]
    assert "o1 already exists" in refused[4]
    assert "o-old already exists" in refused[5]
    assert "missing consumer_id" in refused[7]
    assert "amount_cents" in refused[8]
    assert "12.50" in refused[8]
    assert "UTC offset" in refused[9]
    assert "kind" in refused[11]
    assert "amount_cents" in refused[12]
    stored = sqlite_app.ctx.read(lambda uow: [uow.orders.get(i) for i in
                                              ("o1", "o6", "o2", "o3", "o4", "o5", "o7")])
    assert [o.id if o else None for o in stored] == ["o1", "o6", None, None, None, None,
                                                     None]
    first, worry_free = stored[0], stored[1]
    assert first is not None
    assert worry_free is not None
    assert first.consumer_id == "c1"  # the first o1 won, the duplicate did not replace it
    assert first.amount_cents == 12900
    assert first.paid_at.isoformat() == "2026-11-01T02:00:00+00:00"
    assert worry_free.kind is OrderKind.WORRY_FREE


def test_orders_import_from_json_lines_names_every_refused_line(
        tmp_path: Path, data_dir: Path, sqlite_app: Container) -> None:
    catalog.create_store(sqlite_app.ctx, None, Store("s1", "Shop", StorePlatform.TAOBAO))
    consumers(sqlite_app, "c1", "c9")
    good = {"id": "j1", "store_id": "s1", "consumer_id": "c1", "amount_cents": 500,
            "paid_at": "2026-11-01T00:00:00Z"}
    lines = [
        json.dumps(good),                                              # 1: good
        "{not json",                                                   # 2: not JSON
        json.dumps([1, 2]),                                            # 3: not an object
        json.dumps({**good, "id": "j2", "amount_cents": 12.5}),        # 4: a float
        json.dumps({**good, "id": "j3", "amount_cents": True}),        # 5: a boolean
        json.dumps({**good, "id": "j4", "store_id": "s-none"}),        # 6: unknown store
        json.dumps({**good, "consumer_id": "c9"}),                     # 7: duplicate id
        "",                                                            # 8: blank, skipped
        json.dumps({k: v for k, v in good.items() if k != "paid_at"} | {"id": "j5"}),  # 9
        json.dumps({**good, "id": "j6", "paid_at": "2026-11-01 08:00"}),   # 10: naive
        json.dumps({**good, "id": "j7", "amount_cents": "700"}),       # 11: good (string)
    ]
    source = tmp_path / "orders.jsonl"
    source.write_text("\n".join(lines) + "\n", encoding="utf-8")
    run = collabdesk("orders", "import", source, "--data-dir", data_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    refused = refused_lines(run.out)
    assert run.out.splitlines()[0] == "imported 2 order(s); refused 8"
    assert sorted(refused) == [2, 3, 4, 5, 6, 7, 9, 10]
    assert "not JSON" in refused[2]
    assert "not a JSON object" in refused[3]
    assert "amount_cents" in refused[4]
    assert "amount_cents" in refused[5]
    assert "unknown store s-none" in refused[6]
    assert "j1 already exists" in refused[7]
    assert "missing paid_at" in refused[9]
    assert "UTC offset" in refused[10]
    stored = sqlite_app.ctx.read(lambda uow: uow.orders.existing_ids(
        ["j1", "j2", "j3", "j4", "j5", "j6", "j7"]))
    assert stored == {"j1", "j7"}


@pytest.mark.parametrize("database", ["sqlite", "postgresql"])
def test_orders_import_reports_out_of_range_rows_and_imports_the_rest(
        tmp_path: Path, database: str, request: pytest.FixtureRequest) -> None:
    app: Container = request.getfixturevalue("sqlite_app" if database == "sqlite"
                                             else "pg_app")
    catalog.create_store(app.ctx, None, Store("s1", "Shop", StorePlatform.TMALL))
    consumers(app, "c1")
    accounts.create_account(app.ctx, None, name="Agent", role=Role.MERCHANT_AGENT,
                            store_id="s1", account_id="a1")
    source = tmp_path / "orders.csv"
    source.write_text(
        CSV_HEADER
        + "r1,s1,c1,standard,100,2026-11-01T10:00:00Z\n"                # 2: good
        + f"r2,s1,c1,standard,{2**63},2026-11-01T10:00:00Z\n"           # 3: past int64
        + f"r3,s1,c1,standard,{10**30},2026-11-01T10:00:00Z\n"          # 4: far past it
        + "r4,s1,c1,standard,-1,2026-11-01T10:00:00Z\n"                 # 5: negative
        + "r\x005,s1,c1,standard,100,2026-11-01T10:00:00Z\n"            # 6: NUL in the id
        + f"{'r' * 65},s1,c1,standard,100,2026-11-01T10:00:00Z\n"       # 7: id too long
        + "r7,s1,c-nobody,standard,100,2026-11-01T10:00:00Z\n"          # 8: unknown consumer
        + "r8,s1,a1,standard,100,2026-11-01T10:00:00Z\n"                # 9: not a consumer
        + "r9,s1,c1,standard,100,9999-12-31T23:00:00-05:00\n"           # 10: past the calendar
        + "r10,s1,c1,standard,100,2026-11-01T10:00:00Z\n",              # 11: good
        encoding="utf-8")
    url_or_dir: list[str | Path] = (["--data-dir", app.settings.data_dir]
                                    if database == "sqlite"
                                    else ["--database-url", app.settings.database_url or ""])
    run = collabdesk("orders", "import", source, *url_or_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "Traceback" not in run.err
    refused = refused_lines(run.out)
    assert run.out.splitlines()[0] == "imported 2 order(s); refused 8"
    assert sorted(refused) == [3, 4, 5, 6, 7, 8, 9, 10]
    for line in (3, 4, 5):
        assert "amount_cents must be between 0 and 9223372036854775807" in refused[line]
    assert "id must be" in refused[6]
    assert "id must be" in refused[7]
    assert "consumer c-nobody not found" in refused[8]
    assert "not a consumer" in refused[9]
    assert "paid_at" in refused[10]
    stored = app.ctx.read(lambda uow: uow.orders.existing_ids(["r1", "r10", "r2", "r9"]))
    assert stored == {"r1", "r10"}


def test_orders_import_refuses_a_file_that_is_not_utf8_text(
        tmp_path: Path, data_dir: Path) -> None:
    source = tmp_path / "orders.csv"
    source.write_bytes(CSV_HEADER.encode() + b"o1,s1,c1,standard,1,\xff\xfe\n")
    run = collabdesk("orders", "import", source, "--data-dir", data_dir, cwd=tmp_path)
    assert run.code != 0
    assert "Traceback" not in run.err
    assert run.err.startswith("error: ")
    assert "UTF-8" in run.err


def test_orders_import_of_a_missing_file_says_so(tmp_path: Path, data_dir: Path) -> None:
    run = collabdesk("orders", "import", tmp_path / "nope.csv", "--data-dir", data_dir,
                     cwd=tmp_path)
    assert run.code != 0
    assert "error: no such file" in run.err


def refused_lines(out: str) -> dict[int, str]:
    found: dict[int, str] = {}
    for line in out.splitlines()[1:]:
        head, _, why = line.strip().partition(": ")
        assert head.startswith("line "), line
        found[int(head.removeprefix("line "))] = why
    return found


# ---- audit verify ----------------------------------------------------------------------------


def seeded_work_orders(app: Container) -> list[str]:
    world = make_world(app.ctx)
    first, second = world.open(), world.open()
    world.contact(first)
    return [first, second]


def tamper(app: Container, work_order_id: str, seq: int) -> None:
    with app.engine.begin() as conn:
        changed = conn.execute(text(
            "UPDATE events SET data = replace(data, 'called', 'never called') "
            "WHERE work_order_id = :w AND seq = :s"), {"w": work_order_id, "s": seq})
        assert changed.rowcount == 1


def test_audit_verify_passes_an_intact_database_and_names_a_tampered_work_order(
        tmp_path: Path, data_dir: Path, sqlite_app: Container) -> None:
    first, second = seeded_work_orders(sqlite_app)
    run = collabdesk("audit", "verify", "--data-dir", data_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "checked 2 work orders, 3 events: 0 broken chain(s)" in run.out
    tamper(sqlite_app, first, seq=2)
    run = collabdesk("audit", "verify", "--data-dir", data_dir, cwd=tmp_path)
    assert run.code != 0
    assert f"BROKEN {first}: event 2 (contact_logged)" in run.out
    assert second not in run.out
    assert "1 broken chain(s)" in run.out


def test_audit_verify_on_postgresql_by_url(tmp_path: Path, pg_app: Container) -> None:
    first, second = seeded_work_orders(pg_app)
    url = pg_app.settings.database_url or ""
    run = collabdesk("audit", "verify", "--database-url", url, cwd=tmp_path)
    assert run.code == 0, run.err
    assert "0 broken chain(s)" in run.out
    tamper(pg_app, first, seq=2)
    run = collabdesk("audit", "verify", "--database-url", url, cwd=tmp_path)
    assert run.code != 0
    assert f"BROKEN {first}" in run.out
    assert second not in run.out


# ---- serve, --version ------------------------------------------------------------------------


def test_serve_on_a_taken_port_says_so_in_one_line_before_anything_else(
        tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        run = collabdesk("serve", "--port", str(port), "--data-dir", tmp_path / "data",
                         cwd=tmp_path)
    assert run.code == 2
    assert run.err.strip() == (f"error: cannot listen on 127.0.0.1:{port}: the address is "
                               "already in use: another server listens there; choose another "
                               "--port")
    assert "serving on" not in run.out
    assert not (tmp_path / "data").exists()  # it stopped before touching the database


def test_version_names_the_release(tmp_path: Path) -> None:
    run = collabdesk("--version", cwd=tmp_path)
    assert run.code == 0
    assert run.out.strip() == "collabdesk 0.1.0"


# ---- metrics rebuild -------------------------------------------------------------------------


def break_the_rollups(app: Container) -> None:
    with app.engine.begin() as conn:
        conn.execute(text("DELETE FROM store_reply_minutes"))
        conn.execute(text("UPDATE store_daily SET opened = opened + 40 WHERE opened > 0"))
        conn.execute(text("UPDATE store_daily SET paid_orders = 0"))


def figures(app: Container) -> tuple[int, int, int]:
    f = metrics.store_metrics(app.ctx, Actor("admin", Role.ADMIN), "s-tmall",
                              START.date()).figures
    return f.work_orders, f.paid_orders, f.replied_on_time


def test_metrics_rebuild_recomputes_the_rollups_from_the_work_orders(
        tmp_path: Path, data_dir: Path, sqlite_app: Container) -> None:
    seeded_work_orders(sqlite_app)
    assert figures(sqlite_app) == (2, 2, 0)
    break_the_rollups(sqlite_app)
    assert figures(sqlite_app) == (42, 0, 0)
    run = collabdesk("metrics", "rebuild", "--data-dir", data_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    assert run.out.strip() == "rebuilt the metric rollups from 2 work order(s) and the orders"
    assert figures(sqlite_app) == (2, 2, 0)


def test_metrics_rebuild_on_postgresql_by_url(tmp_path: Path, pg_app: Container) -> None:
    seeded_work_orders(pg_app)
    break_the_rollups(pg_app)
    run = collabdesk("metrics", "rebuild", "--database-url", pg_app.settings.database_url or "",
                     cwd=tmp_path)
    assert run.code == 0, run.err
    assert "from 2 work order(s)" in run.out
    assert figures(pg_app) == (2, 2, 0)


def test_metrics_rebuild_of_an_unreachable_database_says_so(tmp_path: Path) -> None:
    run = collabdesk("metrics", "rebuild", "--database-url",
                     "postgresql+psycopg://nobody@127.0.0.1:1/none", cwd=tmp_path)
    assert run.code == 2
    assert run.err.startswith("error: cannot use the database: ")
    assert len(run.err.strip().splitlines()) == 1


def test_serve_answers_each_request_without_waiting_for_a_delayed_ack() -> None:
    """The socket `serve` listens on says it is TCP, so asyncio sets TCP_NODELAY on every
    connection it accepts (a keep-alive answer would otherwise wait ~40 ms for the
    client's delayed ACK)."""
    import asyncio
    import socket

    from collabdesk.cli import _listen

    async def accepted_nodelay() -> int:
        sock = _listen("127.0.0.1", 0)
        flags: list[int] = []

        def on_connect(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            flags.append(writer.get_extra_info("socket").getsockopt(
                socket.IPPROTO_TCP, socket.TCP_NODELAY))
            writer.close()

        server = await asyncio.start_server(on_connect, sock=sock)
        port = sock.getsockname()[1]
        _, writer = await asyncio.open_connection("127.0.0.1", port)
        while not flags:
            await asyncio.sleep(0.01)
        writer.close()
        server.close()
        await server.wait_closed()
        return flags[0]

    assert asyncio.run(accepted_nodelay()) != 0
