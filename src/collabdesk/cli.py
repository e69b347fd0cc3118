"""The `collabdesk` command: serve, worker, timers status, metrics rebuild, audit verify,
accounts create, orders import."""

from __future__ import annotations

import argparse
import csv
import errno
import json
import logging
import os
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy.exc import ArgumentError, OperationalError

from collabdesk import __version__
from collabdesk.bootstrap import Container, build
from collabdesk.domain.errors import CollabdeskError
from collabdesk.domain.states import ACCOUNT_ROLES, Role
from collabdesk.settings import Settings


def _settings(args: argparse.Namespace, **extra: Any) -> Settings:
    overrides: dict[str, Any] = {k: v for k, v in extra.items() if v is not None}
    if args.database_url:
        overrides["database_url"] = args.database_url
    if args.data_dir:
        overrides["data_dir"] = Path(args.data_dir)
    return Settings(**overrides)


def _db_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--database-url", help="SQLAlchemy URL (default: SQLite in the data dir; "
                   "env COLLABDESK_DATABASE_URL)")
    p.add_argument("--data-dir", help="data directory (default ./collabdesk-data; "
                   "env COLLABDESK_DATA_DIR)")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="collabdesk", description=__doc__)
    parser.add_argument("--version", action="version", version=f"collabdesk {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="migrate the database and serve the API")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--test-clock", action="store_true",
                       help="keep a movable clock (POST /v1/test-clock/advance)")
    serve.add_argument("--demo", action="store_true",
                       help="fill an empty database with demo data and print how to use it")
    serve.add_argument("--workers", type=int, default=1, metavar="N",
                       help="API processes (default 1); with N > 1 this process migrates, "
                       "runs the deadline runner and supervises N API processes")
    serve.add_argument("--no-worker", action="store_true",
                       help="serve the API only: no deadline runner in this process (run "
                       "`collabdesk worker` for it)")
    _db_options(serve)

    worker = sub.add_parser("worker", help="run the deadline runner and the outbox "
                                           "dispatcher without the web server")
    worker.add_argument("--concurrency", type=int, default=1, metavar="N",
                        help="runner threads (PostgreSQL; SQLite runs one)")
    worker.add_argument("--metrics-port", type=int,
                        help="serve this process's Prometheus metrics on GET /metrics "
                        "(admin token) at this port")
    worker.add_argument("--metrics-host", default="127.0.0.1")
    _db_options(worker)

    timers = sub.add_parser("timers", help="the deadline timers")
    timers_sub = timers.add_subparsers(dest="timers_command", required=True)
    status = timers_sub.add_parser("status", help="pending and overdue timers, what fired "
                                   "lately and how late")
    _db_options(status)

    audit = sub.add_parser("audit", help="audit trail tools")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    verify = audit_sub.add_parser("verify", help="recompute every work order's hash chain")
    _db_options(verify)

    metrics = sub.add_parser("metrics", help="store metric tools")
    metrics_sub = metrics.add_subparsers(dest="metrics_command", required=True)
    rebuild = metrics_sub.add_parser(
        "rebuild", help="recompute the daily metric rollups from the work orders and orders")
    _db_options(rebuild)

    acc = sub.add_parser("accounts", help="manage accounts")
    acc_sub = acc.add_subparsers(dest="accounts_command", required=True)
    create = acc_sub.add_parser("create", help="create an account and print its token")
    create.add_argument("--name", required=True)
    create.add_argument("--role", required=True, choices=sorted(str(r) for r in ACCOUNT_ROLES))
    create.add_argument("--store-id")
    create.add_argument("--phone")
    create.add_argument("--email")
    create.add_argument("--login")
    create.add_argument("--password", help="with --login: enables web sign-in "
                        "(or set COLLABDESK_NEW_PASSWORD)")
    _db_options(create)

    spec = sub.add_parser("openapi", help="print the API's OpenAPI document (JSON) or its "
                          "Markdown reference; needs no database")
    spec.add_argument("--markdown", action="store_true",
                      help="the reference as Markdown (docs/api-reference.md)")
    spec.add_argument("--test-clock", action="store_true",
                      help="include the test-clock paths (a server with --test-clock)")

    orders = sub.add_parser("orders", help="manage orders")
    orders_sub = orders.add_subparsers(dest="orders_command", required=True)
    imp = orders_sub.add_parser("import", help="import orders from CSV or JSON lines")
    imp.add_argument("file", type=Path)
    imp.add_argument("--format", choices=["csv", "jsonl"],
                     help="default: from the extension (.csv, otherwise JSON lines)")
    imp.add_argument("--batch-size", type=int, default=500)
    _db_options(imp)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "serve":
            return _serve(args)
        if args.command == "worker":
            return _worker(args)
        if args.command == "timers":
            return _timers_status(args)
        if args.command == "audit":
            return _audit_verify(args)
        if args.command == "metrics":
            return _metrics_rebuild(args)
        if args.command == "accounts":
            return _accounts_create(args)
        if args.command == "openapi":
            return _openapi(args)
        return _orders_import(args)
    except CollabdeskError as exc:
        print(f"error: {exc.detail} ({exc.code})", file=sys.stderr)
        return 2
    except (ArgumentError, OperationalError) as exc:  # a bad URL, an unreachable database
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        print(f"error: cannot use the database: {reason}", file=sys.stderr)
        return 2


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound before anything else happens, so a port that is taken
    is reported at once (and nothing claims to be serving)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP named, not 0: asyncio sets TCP_NODELAY only on sockets that say they are
    # TCP, and without it each keep-alive answer waits for the client's delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # not past a live listener
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        reason = ("the address is already in use: another server listens there; choose "
                  "another --port" if exc.errno == errno.EADDRINUSE else exc.strerror)
        raise ServeError(f"cannot listen on {host}:{port}: {reason}") from exc
    return sock


class ServeError(Exception):
    pass


def _serve(args: argparse.Namespace) -> int:
    if args.workers < 1:
        print("error: --workers must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args, test_clock=True if args.test_clock else None)
    if settings.test_clock and args.workers > 1:
        print("error: --test-clock needs a single API process (the test clock lives in "
              "one process): drop --workers", file=sys.stderr)
        return 2
    metrics_dir = _shared_metrics_dir() if args.workers > 1 else None
    try:
        return _serve_with(args, settings)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)


def _shared_metrics_dir() -> Path | None:
    """prometheus_client's multiprocess mode, so /metrics (served by any of the API
    processes) adds up the counters of every process, the runner's included. It must be
    set before prometheus_client is imported; returns the directory to remove at exit."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR") or "prometheus_client" in sys.modules:
        return None  # the operator's own directory (they clean it), or too late
    path = tempfile.mkdtemp(prefix="collabdesk-metrics-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    return Path(path)


def _serve_with(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from collabdesk.adapters.db.schema_lock import migrate_exclusively
    from collabdesk.api.app import create_app
    from collabdesk.services.accounts import ensure_admin
    from collabdesk.worker.dispatcher import OutboxDispatcher
    from collabdesk.worker.runner import DeadlineRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        sock = _listen(args.host, args.port)
    except ServeError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    container = build(settings, run_migrations=False)
    migrate_exclusively(container.engine)
    admin_token = settings.admin_token.get_secret_value() if settings.admin_token else None
    generated = ensure_admin(container.ctx, admin_token)
    if generated:
        print("\nA bootstrap admin was created. Its token is shown only this once:\n"
              f"  COLLABDESK_ADMIN_TOKEN={generated}\n", flush=True)
    if args.demo:
        _demo(container, args)
    url = container.engine.url
    processes = f", {args.workers} API processes" if args.workers > 1 else ""
    runner_note = ", no deadline runner" if args.no_worker else ""
    print(f"collabdesk serving on http://{args.host}:{args.port}  (docs: /docs, "
          f"database: {url.render_as_string(hide_password=True)}{processes}{runner_note})",
          flush=True)
    from uvicorn.supervisors import Multiprocess

    if args.workers == 1:
        app = create_app(container, start_runner=not args.no_worker)
        server = uvicorn.Server(uvicorn.Config(app, log_level="info"))
        server.run(sockets=[sock])
        return 0
    # N API processes: each builds its container from the environment (the resolved
    # options), without migrations and without a runner; this process runs the runner.
    os.environ["COLLABDESK_DATABASE_URL"] = url.render_as_string(hide_password=False)
    os.environ["COLLABDESK_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ.pop("COLLABDESK_TEST_CLOCK", None)
    # The API processes never create the admin: they need no admin token in their
    # environment (where anyone who may read /proc/<pid>/environ would find it).
    os.environ.pop("COLLABDESK_ADMIN_TOKEN", None)
    runner = None if args.no_worker else DeadlineRunner.for_container(container)
    dispatcher = None if args.no_worker else OutboxDispatcher.for_container(container)
    if runner is not None and dispatcher is not None:
        runner.start()
        dispatcher.start()
    try:
        # The bound socket itself goes to the API processes (pickled with its family and
        # protocol): `uvicorn.run(fd=...)` would rebuild it as a protocol-0 socket, and
        # asyncio would not set TCP_NODELAY on its connections (~40 ms a keep-alive answer).
        config = uvicorn.Config("collabdesk.api.app:app_from_env", factory=True,
                                workers=args.workers, log_level="info")
        Multiprocess(config, sockets=[sock]).run()
    finally:
        if runner is not None:
            runner.stop()
        if dispatcher is not None:
            dispatcher.stop()
        sock.close()
        container.engine.dispose()
    return 0


def _worker(args: argparse.Namespace) -> int:
    from collabdesk.worker.process import StopSignals, run_until_signalled

    signals = StopSignals()  # before the slow start: a stop asked meanwhile is clean too
    from collabdesk.adapters.db.schema_lock import migrate_exclusively
    from collabdesk.worker.dispatcher import OutboxDispatcher
    from collabdesk.worker.runner import DeadlineRunner

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.concurrency < 1:
        print("error: --concurrency must be at least 1", file=sys.stderr)
        return 2
    settings = _settings(args)
    container = build(settings, run_migrations=False)
    migrate_exclusively(container.engine)
    postgres = container.engine.dialect.name == "postgresql"
    if args.concurrency > 1 and not postgres:
        print(f"note: --concurrency {args.concurrency} makes no sense on SQLite (one writer "
              "at a time, one runner per database): running 1 runner thread",
              file=sys.stderr, flush=True)
    runner = DeadlineRunner.for_container(container, concurrency=args.concurrency)
    dispatcher = OutboxDispatcher.for_container(container)
    metrics_server = None
    if args.metrics_port is not None:
        from collabdesk.worker.metrics_http import serve_metrics

        try:
            metrics_server = serve_metrics(container.ctx, args.metrics_host, args.metrics_port)
        except OSError as exc:
            print(f"error: cannot serve metrics on {args.metrics_host}:{args.metrics_port}: "
                  f"{exc.strerror}", file=sys.stderr)
            return 2
    wakeups = ("woken by NOTIFY collabdesk_timers, polling every "
               f"{settings.timer_poll_seconds:g} s" if postgres else
               f"polling every {settings.timer_poll_seconds:g} s")
    metrics_note = (f"; metrics on http://{args.metrics_host}:{args.metrics_port}/metrics"
                    if metrics_server else "")
    print(f"collabdesk worker: {runner.concurrency} deadline runner thread(s) on "
          f"{container.engine.url.render_as_string(hide_password=True)} with the outbox "
          f"dispatcher, {wakeups}{metrics_note}", flush=True)
    try:
        code = run_until_signalled([runner, dispatcher], signals=signals)
    finally:
        if metrics_server is not None:
            metrics_server.shutdown()
        container.engine.dispose()
    print("collabdesk worker stopped", flush=True)
    return code


def _timers_status(args: argparse.Namespace) -> int:
    from collabdesk.adapters.db.timer_stats import read_status

    container = build(_settings(args))
    now = container.ctx.clock.now()
    try:
        status = read_status(container.engine, now)
    finally:
        container.engine.dispose()
    pending = sum(status.pending.values())
    due = sum(status.due.values())
    kinds = sorted(set(status.pending) | set(status.due))
    print(f"timers in {container.engine.url.render_as_string(hide_password=True)} "
          f"at {now.isoformat(timespec='seconds')}")
    print(f"  pending          {pending}")
    for kind in kinds:
        print(f"    {kind:<22} {status.pending.get(kind, 0):>10}  "
              f"(due now: {status.due.get(kind, 0)})")
    overdue = (f"{_duration(status.oldest_overdue_seconds)} (the oldest of {due} due, "
               "unfired)" if due else "none: nothing due is waiting")
    print(f"  oldest overdue   {overdue}")
    print(f"  fired            {status.fired_last_hour} in the last hour, "
          f"{status.fired_last_day} in the last day")
    if status.lateness_last_hour:
        p50, p99, worst = (status.lateness_quantile(q) for q in (0.5, 0.99, 1.0))
        print(f"  lateness (hour)  p50 {_duration(p50)}, p99 {_duration(p99)}, "
              f"max {_duration(worst)}  (fired_at - due_at)")
    else:
        print("  lateness (hour)  none fired")
    return 0


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.0f} ms"
    if seconds < 120:
        return f"{seconds:.1f} s"
    if seconds < 7200:
        return f"{seconds / 60:.1f} min"
    return f"{seconds / 3600:.1f} h"


def _demo(container: Container, args: argparse.Namespace) -> None:
    from collabdesk.adapters.clock import FixedClock
    from collabdesk.services import demo

    summary = demo.seed(container.ctx, FixedClock(container.ctx.clock.now()))
    base = f"http://{args.host}:{args.port}"
    if not summary.created:
        print("--demo: the demo data is already there (tokens as before).", flush=True)
    lines = ["", "Demo data ready. Accounts (bearer token / web login, password "
             f"'{demo.PASSWORD}'):"]
    for account_id, name, role, store in demo.DEMO_ACCOUNTS:
        login = account_id.removeprefix("acc_demo_")
        where = f" of {store}" if store else ""
        lines.append(f"  {role:<15} {demo.demo_token(account_id):<22} {login:<16} "
                     f"{name}{where}")
    for state, wo_id in summary.work_orders.items():
        lines.append(f"  work order {state:<22} {wo_id}")
    lines += ["", "Try:",
              f"  curl -s -H 'Authorization: Bearer demo-agent' {base}/v1/work-orders",
              f"  curl -s -H 'Authorization: Bearer demo-consumer' {base}/v1/inbox",
              f"  curl -s -H 'Authorization: Bearer demo-owner' "
              f"{base}/v1/stores/demo-tmall/metrics", ""]
    print("\n".join(lines), flush=True)


def _audit_verify(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from collabdesk.services.audit import verify_chains

    container = build(_settings(args))
    with tqdm(desc="verifying chains", unit="work order", file=sys.stderr,
              disable=None) as bar:
        report = verify_chains(container.ctx, progress=bar.update)
    for wo_id, problem in report.broken:
        print(f"BROKEN {wo_id}: {problem}")
    print(f"checked {report.checked} work orders, {report.events} events: "
          f"{len(report.broken)} broken chain(s)")
    return 1 if report.broken else 0


def _metrics_rebuild(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from collabdesk.services.rollups import rebuild

    container = build(_settings(args))
    with tqdm(desc="rebuilding metric rollups", unit="work order", file=sys.stderr,
              disable=None) as bar:
        read = rebuild(container.ctx, progress=bar.update)
    print(f"rebuilt the metric rollups from {read} work order(s) and the orders")
    return 0


def _accounts_create(args: argparse.Namespace) -> int:
    from collabdesk.services.accounts import create_account

    container = build(_settings(args))
    password = args.password or os.environ.get("COLLABDESK_NEW_PASSWORD")
    account, token = create_account(
        container.ctx, None, name=args.name, role=Role(args.role), store_id=args.store_id,
        phone=args.phone, email=args.email, login=args.login,
        password=password if args.login else None)
    print(f"created {account.role} account {account.id} ({account.name})", file=sys.stderr)
    print(token)
    return 0


def _openapi(args: argparse.Namespace) -> int:
    from collabdesk.api.app import create_app
    from collabdesk.api.reference import render_json, render_markdown

    with tempfile.TemporaryDirectory() as scratch:  # no database is opened
        settings = Settings(database_url="sqlite://", data_dir=Path(scratch),
                            test_clock=args.test_clock)
        container = build(settings, run_migrations=False)
        spec = create_app(container, start_runner=False).openapi()
        container.engine.dispose()
    sys.stdout.write(render_markdown(spec) if args.markdown else render_json(spec))
    return 0


def _rows(path: Path, fmt: str) -> Iterator[tuple[int, dict[str, Any]]]:
    with path.open(encoding="utf-8-sig", newline="") as f:
        if fmt == "csv":
            reader = csv.DictReader(f)
            while True:  # rows numbered by the file's lines, blank ones included
                try:
                    row = next(reader)
                except StopIteration:
                    return
                except csv.Error as exc:  # one unreadable line, not the whole file
                    yield reader.line_num, {"__error__": f"not CSV: {exc}"}
                    continue
                yield reader.line_num, dict(row)
        for n, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except json.JSONDecodeError as exc:
                yield n, {"__error__": f"not JSON: {exc.msg}"}
                continue
            yield n, value if isinstance(value, dict) else {"__error__": "not a JSON object"}


def _orders_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from collabdesk.services.catalog import import_orders

    path: Path = args.file
    if not path.is_file():
        print(f"error: no such file: {path}", file=sys.stderr)
        return 2
    fmt = args.format or ("csv" if path.suffix.lower() == ".csv" else "jsonl")
    try:
        with path.open(encoding="utf-8-sig") as f:
            total = sum(1 for line in f if line.strip()) - (1 if fmt == "csv" else 0)
    except UnicodeDecodeError as exc:
        print(f"error: {path} is not UTF-8 text (byte {exc.start}): nothing imported",
              file=sys.stderr)
        return 2
    container = build(_settings(args))
    with tqdm(total=max(total, 0), desc="importing orders", unit="row", file=sys.stderr,
              disable=None) as bar:
        result = import_orders(container.ctx, _rows(path, fmt), batch_size=args.batch_size,
                               progress=bar.update)
    print(f"imported {result.imported} order(s); refused {len(result.refused)}")
    for line, why in result.refused[:200]:
        print(f"  line {line}: {why}")
    if len(result.refused) > 200:
        print(f"  ... and {len(result.refused) - 200} more")
    return 1 if result.refused and not result.imported else 0
