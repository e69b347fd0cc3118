"""The deadline runner as `serve` and `collabdesk worker` run it: on time, woken by
NOTIFY on PostgreSQL, alone on SQLite; its metrics, and `collabdesk timers status`.

Timers here fall due in real time (a second or two after a work order opens), so these
tests use the system clock, not the fixed one of the service tests.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from sqlalchemy import text

from collabdesk.adapters.clock import FixedClock
from collabdesk.adapters.db.wakeup import (
    DUE_SOON,
    TimerListener,
    next_pending_due,
    notify_if_due_soon,
    notify_timers,
)
from collabdesk.adapters.runner_lock import RunnerFileLock, lock_path_for
from collabdesk.bootstrap import Container, build
from collabdesk.domain.states import State
from collabdesk.services import work_orders as wos
from collabdesk.services.timers import fire_due_timers
from collabdesk.settings import Settings
from collabdesk.worker.runner import DeadlineRunner
from tests.builders import make_world
from tests.conftest import ADMIN_TOKEN, START
from tests.integration.test_cli import COLLABDESK, collabdesk

LONG_POLL = 30.0  # far longer than any test waits: what happens sooner is not the poll


def live(database_url: str, data_dir: Path, **settings: object) -> Container:
    """A container on the system clock whose reply window is two seconds, no reminders."""
    base: dict[str, object] = {"reply_window": timedelta(seconds=2),
                               "reminders_before_due": [], "timer_poll_seconds": LONG_POLL}
    return build(Settings(database_url=database_url, data_dir=data_dir,
                          **(base | settings)))  # type: ignore[arg-type]


@pytest.fixture
def app(database_url: str, tmp_path: Path) -> Iterator[Container]:
    container = live(database_url, tmp_path / "data")
    yield container
    container.engine.dispose()


@pytest.fixture
def pg_live(postgres_database_url: str, tmp_path: Path) -> Iterator[Container]:
    container = live(postgres_database_url, tmp_path / "data")
    yield container
    container.engine.dispose()


@pytest.fixture
def runners() -> Iterator[list[DeadlineRunner]]:
    started: list[DeadlineRunner] = []
    yield started
    for runner in started:
        assert runner.stop(timeout=15), "a runner thread did not stop"


def eventually(check: Callable[[], bool], within: float, what: str) -> float:
    """Seconds until `check()` held; fails after `within` seconds."""
    began = time.monotonic()
    while not check():
        if time.monotonic() - began > within:
            pytest.fail(f"not within {within} s: {what}")
        time.sleep(0.02)
    return time.monotonic() - began


def timer_rows(container: Container, kind: str = "reply_timeout"
               ) -> list[tuple[datetime, datetime | None]]:
    with container.engine.connect() as conn:
        rows = conn.execute(text("SELECT due_at, fired_at FROM timers WHERE kind = :k"),
                            {"k": kind}).all()
    return [(_utc(r[0]), _utc(r[1]) if r[1] is not None else None) for r in rows]


def _utc(value: object) -> datetime:
    if isinstance(value, str):  # SQLite keeps naive UTC text
        value = datetime.fromisoformat(value)
    assert isinstance(value, datetime)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def all_fired(container: Container, count: int) -> Callable[[], bool]:
    def check() -> bool:
        rows = timer_rows(container)
        return len(rows) == count and all(fired is not None for _, fired in rows)
    return check


# ---- on time ----------------------------------------------------------------------------------


def test_the_runner_wakes_for_the_next_due_timer_not_the_poll_interval(
        app: Container, runners: list[DeadlineRunner]) -> None:
    world = make_world(app.ctx)
    wo_id = world.open()  # its timeout falls due within 2 s; the poll interval is 30 s
    runner = DeadlineRunner.for_container(app)
    runners.append(runner)
    runner.start()
    eventually(all_fired(app, 1), within=10, what="the timeout fired")
    ((due, fired),) = timer_rows(app)
    assert fired is not None
    assert timedelta(0) <= fired - due < timedelta(seconds=1)
    assert wos.get_work_order(app.ctx, world.triage, wo_id).state is State.IN_ADJUDICATION


def test_next_pending_due_is_the_first_pending_timer_due_after_a_time(app: Container) -> None:
    world = make_world(app.ctx)
    world.open()
    ((due, _),) = timer_rows(app)
    assert next_pending_due(app.engine, due - timedelta(seconds=1)) == due
    assert next_pending_due(app.engine, due) is None  # due, not after: the tick fires it
    assert fire_due_timers(app.ctx, due) == 1  # fired; the adjudication SLA is pending
    sla = due + app.ctx.policy.adjudication_sla
    assert next_pending_due(app.engine, due - timedelta(seconds=1)) == sla


# ---- PostgreSQL: NOTIFY, many runners ---------------------------------------------------------


@pytest.mark.postgres
def test_a_notification_wakes_a_waiting_runner_at_once(
        pg_live: Container, runners: list[DeadlineRunner]) -> None:
    runner = DeadlineRunner.for_container(pg_live)
    runners.append(runner)
    runner.start()
    listener = runner.listener
    assert listener is not None
    eventually(lambda: listener.connected and runner.ticks >= 1, within=10,
               what="the runner listens and has looked once")
    time.sleep(0.3)  # now it waits out its 30 s poll: nothing is pending
    ticks = runner.ticks
    with pg_live.engine.begin() as conn:
        notify_timers(conn)
    assert eventually(lambda: runner.ticks > ticks, within=5, what="woken") < 2


@pytest.mark.postgres
def test_a_runner_woken_by_a_notification_fires_a_timer_scheduled_while_it_waited(
        pg_live: Container, runners: list[DeadlineRunner]) -> None:
    world = make_world(pg_live.ctx)
    runner = DeadlineRunner.for_container(pg_live)
    runners.append(runner)
    runner.start()
    listener = runner.listener
    assert listener is not None
    eventually(lambda: listener.connected and runner.ticks >= 1, within=10, what="listening")
    time.sleep(0.3)
    world.open()  # its timeout, due in 2 s, notifies the runner as the opening commits
    eventually(all_fired(pg_live, 1), within=10, what="the timeout fired")
    ((due, fired),) = timer_rows(pg_live)
    assert fired is not None
    assert fired - due < timedelta(seconds=1)


@pytest.mark.postgres
def test_the_runner_listens_again_after_its_connection_is_killed(
        pg_live: Container, runners: list[DeadlineRunner], caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level(logging.WARNING, logger="collabdesk.runner")
    runner = DeadlineRunner.for_container(pg_live)
    runners.append(runner)
    runner.start()
    listener = runner.listener
    assert listener is not None
    eventually(lambda: listener.connected, within=10, what="listening")
    first = listener.backend_pid()
    with pg_live.engine.begin() as conn:
        assert conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first}).scalar()
    eventually(lambda: listener.backend_pid() not in (None, first), within=15,
               what="a new listening connection")
    time.sleep(0.3)
    ticks = runner.ticks
    with pg_live.engine.begin() as conn:
        notify_timers(conn)
    eventually(lambda: runner.ticks > ticks, within=5, what="woken on the new connection")
    said = [r.getMessage() for r in caplog.records if r.name == "collabdesk.runner"]
    assert any(m.startswith("lost the connection listening for timer wake-ups") for m in said)
    assert "listening for timer wake-ups again" in said


@pytest.mark.postgres
def test_notify_if_due_soon_notifies_only_for_timers_due_soon(pg_live: Container) -> None:
    listener = TimerListener(pg_live.engine)
    try:
        listener.connect()
        now = datetime.now(UTC)
        with pg_live.engine.begin() as conn:
            assert not notify_if_due_soon(conn, [now + DUE_SOON + timedelta(seconds=1)], now)
        assert not listener.wait(0.3)
        with pg_live.engine.begin() as conn:
            assert notify_if_due_soon(conn, [now + timedelta(hours=24),
                                             now + timedelta(seconds=5)], now)
        assert listener.wait(5)
        with pg_live.engine.connect() as conn:  # rolled back: nothing is sent
            notify_timers(conn)
            conn.rollback()
        assert not listener.wait(0.3)
    finally:
        listener.close()


@pytest.mark.postgres
def test_scheduling_a_timer_due_soon_notifies_and_one_due_later_does_not(
        pg_live: Container, tmp_path: Path) -> None:
    later = live(pg_live.engine.url.render_as_string(hide_password=False),
                 tmp_path / "later", reply_window=timedelta(hours=24))
    listener = TimerListener(pg_live.engine)
    try:
        listener.connect()
        world = make_world(later.ctx)
        world.open()  # due in 24 h: the runners need not wake
        assert not listener.wait(0.3)
        soon = replace(world, ctx=pg_live.ctx)  # the same people, a 2 s reply window
        soon.open()  # due in 2 s: sent when the opening commits
        assert listener.wait(5)
    finally:
        listener.close()
        later.engine.dispose()


@pytest.mark.postgres
def test_runner_threads_share_the_timers_and_count_each_once(
        pg_live: Container, runners: list[DeadlineRunner]) -> None:
    world = make_world(pg_live.ctx)
    for _ in range(30):
        world.open()
    before = _fired_total("reply_timeout")
    lateness_before = _sample("collabdesk_timer_lateness_seconds_count")
    runner = DeadlineRunner.for_container(pg_live, concurrency=3)
    assert runner.concurrency == 3
    runners.append(runner)
    runner.start()
    eventually(all_fired(pg_live, 30), within=30, what="30 timeouts fired")
    eventually(lambda: _fired_total("reply_timeout") - before >= 30, within=5,
               what="the fired counter caught up")
    assert _fired_total("reply_timeout") - before == 30
    assert _sample("collabdesk_timer_lateness_seconds_count") - lateness_before == 30
    with pg_live.engine.connect() as conn:
        timed_out = conn.execute(text(
            "SELECT count(*), count(DISTINCT work_order_id) FROM events "
            "WHERE type = 'timed_out'")).one()
    assert tuple(timed_out) == (30, 30)


def test_sqlite_runs_one_runner_thread_whatever_the_concurrency(tmp_path: Path) -> None:
    container = live(f"sqlite:///{tmp_path / 'one.db'}", tmp_path / "data")
    try:
        assert DeadlineRunner.for_container(container, concurrency=4).concurrency == 1
        assert DeadlineRunner.for_container(container).listener is None
    finally:
        container.engine.dispose()


def said(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "collabdesk.runner"]


# ---- SQLite: one runner per database ---------------------------------------------------------


def test_the_runner_lock_file_sits_next_to_the_sqlite_database(tmp_path: Path) -> None:
    assert lock_path_for(f"sqlite:///{tmp_path}/x/app.db") == tmp_path / "x" / "app.db.runner.lock"
    assert lock_path_for("sqlite://") is None
    assert lock_path_for("postgresql+psycopg://u@h/db") is None


def test_a_second_sqlite_runner_waits_says_so_once_and_takes_over(
        tmp_path: Path, runners: list[DeadlineRunner], caplog: pytest.LogCaptureFixture
        ) -> None:
    caplog.set_level(logging.WARNING, logger="collabdesk.runner")
    container = live(f"sqlite:///{tmp_path / 'one.db'}", tmp_path / "data",
                     timer_poll_seconds=0.2)
    lock = lock_path_for(str(container.engine.url))
    assert lock is not None
    try:
        first = DeadlineRunner.for_container(container)
        second = DeadlineRunner.for_container(container)
        runners.extend((first, second))
        first.start()
        eventually(lambda: first.ticks >= 1, within=10, what="the first runner ticks")
        second.start()
        time.sleep(1.5)  # the second retries the lock every half second
        assert second.ticks == 0
        assert said(caplog) == [f"another deadline runner holds {lock}; waiting"]
        assert first.stop(timeout=10)
        eventually(lambda: second.ticks >= 1, within=10, what="the second took over")
        assert said(caplog)[1:] == [
            f"the other deadline runner is gone: this one runs now ({lock})"]
    finally:
        container.engine.dispose()


def test_the_file_lock_is_exclusive_and_released(tmp_path: Path) -> None:
    path = tmp_path / "db.runner.lock"
    one, two = RunnerFileLock(path), RunnerFileLock(path)
    assert one.try_acquire()
    assert not two.try_acquire()
    one.release()
    assert two.try_acquire()
    assert path.read_text() == f"{os.getpid()}\n"
    two.release()


# ---- metrics ---------------------------------------------------------------------------------


def _sample(name: str, labels: dict[str, str] | None = None) -> float:
    value = REGISTRY.get_sample_value(name, labels or {})
    return float(value or 0.0)


def _fired_total(kind: str) -> float:
    return _sample("collabdesk_timers_fired_total", {"kind": kind})


def _scrape(client: TestClient) -> dict[str, float]:
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert answer.status_code == 200, answer.text
    samples: dict[str, float] = {}
    for line in answer.text.splitlines():
        if line.startswith("collabdesk_timer"):
            name, value = line.rsplit(" ", 1)
            samples[name] = float(value)
    return samples


def test_metrics_show_pending_due_and_overdue_timers_and_what_fired(
        container: Container, client: TestClient, clock: FixedClock) -> None:
    world = make_world(container.ctx)
    world.open()  # at START: reminders at +12 h and +22 h, the timeout at +24 h
    seen = _scrape(client)
    assert seen['collabdesk_timers_pending{kind="reminder"}'] == 2
    assert seen['collabdesk_timers_pending{kind="reply_timeout"}'] == 1
    assert seen['collabdesk_timers_pending{kind="adjudication_sla"}'] == 0
    assert seen['collabdesk_timers_due{kind="reminder"}'] == 0
    assert seen["collabdesk_timers_oldest_overdue_seconds"] == 0
    clock.set(START + timedelta(hours=13))
    seen = _scrape(client)
    assert seen['collabdesk_timers_due{kind="reminder"}'] == 1
    assert seen["collabdesk_timers_oldest_overdue_seconds"] == 3600
    fired, late = _fired_total("reminder"), _sample("collabdesk_timer_lateness_seconds_sum")
    assert DeadlineRunner(container.ctx, 1.0, engine=container.engine).run_once() == 1
    assert _fired_total("reminder") - fired == 1
    assert _sample("collabdesk_timer_lateness_seconds_sum") - late == pytest.approx(3600)
    seen = _scrape(client)
    assert seen['collabdesk_timers_pending{kind="reminder"}'] == 1
    assert seen['collabdesk_timers_due{kind="reminder"}'] == 0
    assert seen["collabdesk_timers_oldest_overdue_seconds"] == 0
    assert seen['collabdesk_timers_fired_total{kind="reminder"}'] >= 1
    assert seen['collabdesk_timer_lateness_seconds_bucket{le="3600.0"}'] >= 1


def test_metrics_are_for_the_admin_only(container: Container, client: TestClient) -> None:
    world = make_world(container.ctx)
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {world.tokens['owner']}"})
    assert answer.status_code == 403


# ---- the commands ----------------------------------------------------------------------------


class Worker:
    """`collabdesk worker` as a subprocess, its output in files."""

    def __init__(self, data_dir: Path, workdir: Path, *options: str) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        self.out, self.err = workdir / "stdout.txt", workdir / "stderr.txt"
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
        with self.out.open("w") as out, self.err.open("w") as err:
            self.process = subprocess.Popen(
                [str(COLLABDESK), "worker", "--data-dir", str(data_dir), *options],
                cwd=workdir, env=env, stdout=out, stderr=err)

    def said(self, text: str, within: float = 30) -> None:
        """Wait until `text` is in the worker's output."""
        began = time.monotonic()
        while text not in self.output():
            if self.process.poll() is not None or time.monotonic() - began > within:
                pytest.fail(f"the worker did not say {text!r}:\n{self.output()}")
            time.sleep(0.05)

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        try:
            return self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()


def test_sqlite_workers_take_turns_and_stop_cleanly_on_sigterm(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    build(Settings(data_dir=data_dir)).engine.dispose()  # migrated, like a served database
    lock = data_dir.resolve() / "collabdesk.db.runner.lock"
    first = Worker(data_dir, tmp_path / "first", "--concurrency", "3")
    second: Worker | None = None
    try:
        first.said("collabdesk worker: 1 deadline runner thread(s) on sqlite:///")
        second = Worker(data_dir, tmp_path / "second")
        second.said(f"another deadline runner holds {lock}; waiting")
        assert first.stop(signal.SIGTERM) == 0
        said = first.output()
        assert first.out.read_text().splitlines()[-1] == "collabdesk worker stopped"
        assert ("note: --concurrency 3 makes no sense on SQLite (one writer at a time, one "
                "runner per database): running 1 runner thread") in said
        assert "SIGTERM: finishing the current batch, then stopping" in said
        second.said(f"the other deadline runner is gone: this one runs now ({lock})")
        assert second.stop(signal.SIGINT) == 0
        said = second.output()
        assert said.count("another deadline runner holds") == 1
        assert "SIGINT: finishing the current batch, then stopping" in said
        assert second.out.read_text().splitlines()[-1] == "collabdesk worker stopped"
    finally:
        first.kill()
        if second is not None:
            second.kill()


def test_worker_refuses_a_concurrency_below_one(tmp_path: Path) -> None:
    run = collabdesk("worker", "--concurrency", "0", "--data-dir", tmp_path / "d", cwd=tmp_path)
    assert run.code == 2
    assert run.err.strip() == "error: --concurrency must be at least 1"


def test_timers_status_prints_pending_overdue_fired_and_lateness(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    now = datetime.now(UTC).replace(microsecond=0)
    clock = FixedClock(now - timedelta(minutes=30))
    container = build(Settings(data_dir=data_dir, reply_window=timedelta(minutes=10),
                               reminders_before_due=[timedelta(minutes=5)]), clock=clock)
    try:
        world = make_world(container.ctx)
        world.open()  # reminder due at now - 25 min, timeout at now - 20 min
        # fired 10 min late, as of now - 15 min (lateness: 600 s and 300 s)
        assert fire_due_timers(container.ctx, now - timedelta(minutes=15)) == 2
        world.open()  # overdue and unfired: its reminder is 25 min late
    finally:
        container.engine.dispose()
    run = collabdesk("timers", "status", "--data-dir", data_dir, cwd=tmp_path)
    assert run.code == 0, run.err
    lines = run.out.splitlines()
    assert lines[0].startswith(f"timers in sqlite:///{data_dir.resolve()}/collabdesk.db at ")
    assert lines[1:] == [
        "  pending          3",
        "    adjudication_sla                1  (due now: 0)",
        "    reminder                        1  (due now: 1)",
        "    reply_timeout                   1  (due now: 1)",
        lines[5],
        "  fired            2 in the last hour, 2 in the last day",
        "  lateness (hour)  p50 5.0 min, p99 10.0 min, max 10.0 min  (fired_at - due_at)",
    ]
    assert lines[5].startswith("  oldest overdue   25.")  # minutes, and the seconds it ran
    assert lines[5].endswith(" min (the oldest of 2 due, unfired)")


def test_the_runner_counts_by_kind_what_it_fired_chained_timers_included(
        container: Container, clock: FixedClock) -> None:
    world = make_world(container.ctx)
    world.open()
    clock.set(START + timedelta(hours=100))  # past the timeout and its adjudication SLA
    kinds = ("reminder", "reply_timeout", "adjudication_sla", "unknown")
    before = {kind: _fired_total(kind) for kind in kinds}
    lateness = _sample("collabdesk_timer_lateness_seconds_sum")
    assert DeadlineRunner(container.ctx, 1.0, engine=container.engine).run_once() == 4
    counted = {kind: _fired_total(kind) - before[kind] for kind in kinds}
    # the SLA was scheduled by the timeout, during the tick, due at START + 72 h
    assert counted == {"reminder": 2, "reply_timeout": 1, "adjudication_sla": 1, "unknown": 0}
    late_by = [100 - 12, 100 - 22, 100 - 24, 100 - 72]  # hours
    assert _sample("collabdesk_timer_lateness_seconds_sum") - lateness == pytest.approx(
        sum(late_by) * 3600)
