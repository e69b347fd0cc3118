"""`collabdesk serve --workers N` and `--no-worker`, over real HTTP, with `collabdesk
worker` beside them: who runs the deadlines, and what /metrics adds up."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx2
import pytest
from sqlalchemy import text

from collabdesk.adapters.clock import FixedClock
from collabdesk.bootstrap import build
from collabdesk.domain.states import Role
from collabdesk.domain.values import Category, Order, OrderKind, Store, StorePlatform
from collabdesk.services import accounts, catalog
from collabdesk.services import work_orders as wos
from collabdesk.services.access import actor_of
from collabdesk.settings import Settings

from .test_real_server import ADMIN, COLLABDESK, Server, _free_port

# Several API processes each import the whole application: on a busy 2-core machine that
# takes a while.
STARTUP_SECONDS = 90


@contextmanager
def serving(workdir: Path, *options: str) -> Iterator[Server]:
    """`collabdesk serve` with `options`, up and answering /healthz; stopped on exit
    (test_real_server.serving, with room for several processes to start)."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    env["COLLABDESK_ADMIN_TOKEN"] = ADMIN
    server = Server(f"http://127.0.0.1:{port}", workdir / "stdout.txt", workdir / "stderr.txt")
    with server.stdout.open("ab") as out, server.stderr.open("ab") as err:
        process = server.process = subprocess.Popen(
            [str(COLLABDESK), "serve", "--port", str(port), "--data-dir",
             str(workdir / "data"), *options], stdout=out, stderr=err, env=env, cwd=workdir)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                pytest.fail(f"collabdesk serve exited with {process.returncode}:\n"
                            f"{server.stderr.read_text(encoding='utf-8')}")
            try:
                if httpx2.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"collabdesk serve did not answer /healthz within "
                            f"{STARTUP_SECONDS} s")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def overdue_work_order(data_dir: Path) -> str:
    """A work order opened two days ago: its two reminders and its timeout are overdue."""
    opened = datetime.now(UTC) - timedelta(days=2)
    container = build(Settings(data_dir=data_dir), clock=FixedClock(opened))
    ctx = container.ctx
    try:
        if ctx.read(lambda uow: uow.stores.get("s-late")) is None:
            catalog.create_store(ctx, None, Store("s-late", "Late store", StorePlatform.TMALL))
            accounts.create_account(ctx, None, name="owner", role=Role.MERCHANT_OWNER,
                                    store_id="s-late")
        consumer, _ = accounts.create_account(ctx, None, name="buyer", role=Role.CONSUMER)
        order = catalog.create_order(ctx, None, Order(
            f"o-{consumer.id}", "s-late", consumer.id, OrderKind.STANDARD, 10_000,
            opened - timedelta(days=1)))
        return wos.open_work_order(ctx, actor_of(consumer), order_id=order.id,
                                   category=Category.DAMAGED, claim="arrived broken",
                                   requested_remedy=None).id
    finally:
        container.engine.dispose()


def pending_timers(data_dir: Path) -> dict[str, int]:
    container = build(Settings(data_dir=data_dir), run_migrations=False)
    try:
        with container.engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT kind, count(*) FROM timers WHERE fired_at IS NULL "
                "AND cancelled_at IS NULL GROUP BY kind")).all()
        return {kind: n for kind, n in rows}
    finally:
        container.engine.dispose()


def eventually(check: Callable[[], bool], within: float, what: str) -> None:
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > within:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.1)


def fired(data_dir: Path) -> Callable[[], bool]:
    return lambda: pending_timers(data_dir) == {"adjudication_sla": 1}


@contextmanager
def worker(workdir: Path, data_dir: Path) -> Iterator[Path]:
    """`collabdesk worker` on `data_dir`; yields its stderr file; stopped with SIGTERM."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    err = workdir / "worker-stderr.txt"
    with (workdir / "worker-stdout.txt").open("w") as out_file, err.open("w") as err_file:
        process = subprocess.Popen([str(COLLABDESK), "worker", "--data-dir", str(data_dir)],
                                   stdout=out_file, stderr=err_file, env=env, cwd=workdir)
    try:
        yield err
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0, err.read_text()
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


def stopped_cleanly(server: Server) -> None:
    """The supervisor of several API processes exits 0 on SIGTERM. (A single process
    exits by the signal, as uvicorn re-raises it once it has shut down.)"""
    assert server.process is not None
    assert server.process.returncode == 0, server.stderr.read_text(encoding="utf-8")


def test_test_clock_with_several_api_processes_is_refused_in_one_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    done = subprocess.run([str(COLLABDESK), "serve", "--test-clock", "--workers", "2",
                           "--data-dir", str(tmp_path / "data")], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 2
    assert done.stderr == ("error: --test-clock needs a single API process (the test clock "
                           "lives in one process): drop --workers\n")
    assert done.stdout == ""
    assert not (tmp_path / "data").exists()  # refused before anything was touched


def test_several_api_processes_serve_while_the_parent_fires_the_timers(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    overdue_work_order(data_dir)
    with serving(tmp_path, "--workers", "2") as server:
        assert "2 API processes" in server.output()
        eventually(fired(data_dir), within=20, what="the parent's runner fired the timers")
        admin = {"Authorization": f"Bearer {ADMIN}"}
        with httpx2.Client(base_url=server.base_url, timeout=10) as http:
            for _ in range(6):  # whichever API process answers adds up every process
                metrics = http.get("/metrics", headers=admin)
                assert metrics.status_code == 200, metrics.text
                lines = metrics.text.splitlines()
                assert 'collabdesk_timers_fired_total{kind="reminder"} 2.0' in lines
                assert 'collabdesk_timers_fired_total{kind="reply_timeout"} 1.0' in lines
                assert 'collabdesk_timers_pending{kind="adjudication_sla"} 1.0' in lines
                assert "collabdesk_timer_lateness_seconds_count 3.0" in lines
            assert http.get("/metrics").status_code == 401
    stopped_cleanly(server)


def test_serve_without_its_runner_leaves_the_timers_to_a_worker(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    overdue_work_order(data_dir)
    with serving(tmp_path, "--no-worker") as server:
        assert ", no deadline runner)" in server.output()
        time.sleep(3)
        assert pending_timers(data_dir) == {"reminder": 2, "reply_timeout": 1}
        with worker(tmp_path / "worker", data_dir):
            eventually(fired(data_dir), within=20, what="the worker fired the timers")


def test_serves_runner_waits_while_a_worker_holds_the_sqlite_database(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    overdue_work_order(data_dir)
    lock = data_dir.resolve() / "collabdesk.db.runner.lock"
    running = worker(tmp_path / "worker", data_dir)
    running.__enter__()
    try:
        eventually(fired(data_dir), within=20, what="the worker fired the timers")
        with serving(tmp_path) as server:
            eventually(lambda: f"another deadline runner holds {lock}; waiting" in
                       server.stderr.read_text(encoding="utf-8"), within=20,
                       what="serve's runner says it waits")
            running.__exit__(None, None, None)  # the worker stops: serve's runner takes over
            eventually(lambda: "the other deadline runner is gone: this one runs now" in
                       server.stderr.read_text(encoding="utf-8"), within=20,
                       what="serve's runner took over")
            overdue_work_order(data_dir)
            eventually(lambda: pending_timers(data_dir) == {"adjudication_sla": 2}, within=20,
                       what="serve's runner fired the new timers")
    finally:
        running.__exit__(None, None, None)
