"""http: real HTTP over loopback against a `collabdesk serve` subprocess, driven by a
load generator in processes of its own (bench/loadgen.py); the baseline is a bare
Starlette endpoint under the same uvicorn settings (bench/bare_app.py)."""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from collabdesk.adapters.clock import SystemClock
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.values import Category
from collabdesk.services import catalog
from collabdesk.services import work_orders as svc

from . import data
from .core import Benchmark, Figure, Goal, Options, Stopwatch, progress
from .db import analyze, place, raw_commits

DESCRIPTION = ("GET a work order and POST a contact over loopback HTTP against `collabdesk "
               "serve`, against a bare Starlette endpoint")

ROOT = Path(__file__).resolve().parent.parent
HOST = "127.0.0.1"


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        port: int = s.getsockname()[1]
        return port


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(
        os.pathsep)
    return {**env, **extra}


@contextmanager
def serving(name: str, command: list[str], port: int, log: Path,
            env: dict[str, str]) -> Iterator[None]:
    """Run a server subprocess (its output to `log`) until it answers on `port`."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=ROOT)
        try:
            deadline = time.monotonic() + 60
            while True:
                if proc.poll() is not None:
                    raise RuntimeError(f"{name} exited ({proc.returncode}):\n"
                                       + log.read_text(errors="replace")[-2000:])
                try:
                    with socket.create_connection((HOST, port), timeout=0.5):
                        break
                except OSError:
                    if time.monotonic() > deadline:
                        raise RuntimeError(f"{name} did not listen on {port}") from None
                    time.sleep(0.1)
            progress(f"http: {name} is listening on {port} (pid {proc.pid})")
            yield
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _request(method: str, port: int, path: str, token: str, body: bytes | None = None) -> str:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{port}",
             f"Authorization: Bearer {token}", "Accept: application/json"]
    if body is not None:
        lines += ["Content-Type: application/json", f"Content-Length: {len(body)}"]
    return "\r\n".join(lines) + "\r\n\r\n" + (body.decode("utf-8") if body else "")


def _get_json(port: int, path: str, token: str) -> Any:
    req = urllib.request.Request(f"http://{HOST}:{port}{path}",
                                 headers={"Authorization": f"Bearer {token}"})
    with urllib.request.urlopen(req, timeout=30) as answer:
        return json.loads(answer.read())


def drive(scratch: Path, port: int, requests: list[str], opts: Options,
          label: str) -> float:
    """Answers 200/201 a second, from `processes` load generators sharing the
    connections; the other answers are shown on stderr."""
    processes = opts.pick(smoke=1, quick=1, full=2)
    connections = opts.pick(smoke=8, quick=32, full=32)
    warmup = opts.pick(smoke=0.5, quick=2.0, full=3.0)
    duration = opts.pick(smoke=1.0, quick=5.0, full=15.0)
    procs = []
    for i in range(processes):
        spec = {"host": HOST, "port": port, "connections": connections // processes,
                "warmup_s": warmup, "duration_s": duration,
                "requests": requests[i::processes] or requests}
        path = scratch / f"load-{label}-{i}.json"
        path.write_text(json.dumps(spec), encoding="utf-8")
        procs.append(subprocess.Popen([sys.executable, "-m", "bench.loadgen", str(path)],
                                      stdout=subprocess.PIPE, env=_env(), cwd=ROOT))
    results = []
    for p in procs:
        out, _ = p.communicate(timeout=warmup + duration + 60)
        if p.returncode != 0:
            raise RuntimeError(f"the load generator failed ({p.returncode})")
        results.append(json.loads(out))
    ok: int = sum(r["ok"] for r in results)
    statuses: dict[str, int] = {}
    for r in results:
        for k, v in r["statuses"].items():
            statuses[k] = statuses.get(k, 0) + v
    errors = sum(r["errors"] for r in results)
    cpu = sum(r["cpu_s"] for r in results) / sum(r["wall_s"] for r in results)
    rps = float(ok) / duration
    others = {k: v for k, v in statuses.items() if k not in ("200", "201")}
    p50 = max(r["p50_ms"] for r in results)
    p99 = max(r["p99_ms"] for r in results)
    progress(f"http: {label}: {rps:,.0f} answers/s ({connections} connections, latency "
             f"p50 {p50:.1f} ms, p99 {p99:.1f} ms); load generator busy {cpu:.0%} of its time"
             + (f"; other statuses {others}" if others else "")
             + (f"; {errors} connection errors" if errors else ""))
    if ok == 0:
        raise RuntimeError(f"{label}: no successful answer ({statuses}, {errors} errors)")
    return rps


def _contact_targets(engine: Any, ctx: Any, cast: data.Cast, count: int,
                     now: datetime) -> tuple[list[str], datetime]:
    """`count` work orders awaiting the store, opened within the last hour, and a
    contact time after every one of their openings and before now."""
    spacing = timedelta(seconds=0.1)
    first_due = now - timedelta(hours=1) + ctx.policy.reply_window
    items = list(data.pending_timeouts(cast, ctx.policy, prefix="http", start=0, count=count,
                                       first_due=first_due, spacing=spacing))
    data.write_all(engine, ctx.policy, items)
    analyze(engine)
    ids = [i.id for i in items if isinstance(i, WorkOrder)]
    contacted_at = first_due - ctx.policy.reply_window + count * spacing + timedelta(seconds=5)
    assert contacted_at < now, "the contact targets were opened too recently"
    return ids, contacted_at


def run(opts: Options) -> list[Figure]:
    rounds = opts.pick(smoke=1, quick=1, full=2)
    targets = opts.pick(smoke=200, quick=2_000, full=5_000)
    collabdesk = Path(sys.executable).with_name("collabdesk")
    if not collabdesk.exists():
        raise SystemExit(f"no `collabdesk` beside {sys.executable}: run `uv sync` first")
    with place(opts) as where:
        container = where.container(SystemClock())
        ctx, engine = container.ctx, container.engine
        try:
            now = datetime.now(UTC).replace(microsecond=0)
            cast = data.make_cast(ctx, data.make_platform(ctx), "bench-http")
            order = data.order(cast, "http-get-order", 0, now - timedelta(days=1))
            catalog.create_order(ctx, None, order)
            consumer = cast.consumers[0].actor
            wo = svc.open_work_order(ctx, consumer, order_id=order.id,
                                     category=Category.DAMAGED, claim=data.CLAIM,
                                     requested_remedy=data.REQUESTED)
            progress(f"http: writing {targets:,} work orders to log contacts on")
            ids, contacted_at = _contact_targets(engine, ctx, cast, targets, now)
            raw = Stopwatch()
            app_port, bare_port = free_port(), free_port()
            scratch = where.scratch
            token = cast.agent.token
            server_env = _env(COLLABDESK_ADMIN_TOKEN=secrets.token_urlsafe(24))
            serve = [str(collabdesk), "serve", "--host", HOST, "--port", str(app_port),
                     "--database-url", where.url, "--data-dir", str(scratch / "server")]
            get_path = f"/v1/work-orders/{wo.id}"
            with serving("collabdesk serve", serve, app_port, scratch / "serve.log",
                         server_env):
                payload = _get_json(app_port, get_path, token)
                payload_file = scratch / "payload.json"
                payload_file.write_text(json.dumps(payload), encoding="utf-8")
                bare = [sys.executable, "-m", "bench.bare_app", "--port", str(bare_port),
                        "--payload", str(payload_file)]
                with serving("bare Starlette", bare, bare_port, scratch / "bare.log", _env()):
                    gets: list[float] = []
                    bares: list[float] = []
                    for r in range(rounds):
                        progress(f"http: round {r + 1}/{rounds}")
                        gets.append(drive(scratch, app_port,
                                          [_request("GET", app_port, get_path, token)],
                                          opts, "GET work order"))
                        bares.append(drive(scratch, bare_port,
                                           [_request("GET", bare_port, get_path, token)],
                                           opts, "bare Starlette"))
                body = {"channel": "phone", "contacted_at":
                        contacted_at.isoformat().replace("+00:00", "Z"),
                        "outcome": "unreachable", "summary": "No answer"}
                posts = [_request("POST", app_port, f"/v1/work-orders/{i}/contacts", token,
                                  json.dumps(body).encode("utf-8")) for i in ids]
                # Commit latency on a shared machine drifts: half of the baseline just
                # before the POST run, half just after.
                raw_s = opts.pick(smoke=0.25, quick=1.5, full=5.0)
                raw_commits(engine, raw, raw_s)
                post_rps = drive(scratch, app_port, posts, opts, "POST contact")
                raw_commits(engine, raw, raw_s)
        finally:
            engine.dispose()
    get_rps, bare_rps = sum(gets) / len(gets), sum(bares) / len(bares)
    return [Figure("get_work_order_rps", get_rps, "/s", "bare_starlette_rps", bare_rps,
                   Goal(">=", 0.3, aim=0.5)),
            Figure("post_contact_rps", post_rps, "/s", "raw_commits_per_s", raw.rate)]


BENCHMARK = Benchmark("http", DESCRIPTION, run)

