"""Chaos: thousands of reply deadlines fall due while `collabdesk worker` processes are
killed with SIGKILL at random and started again. Every timeout must fire exactly once.

PostgreSQL only (SQLite runs one runner by design). About 95 s, much of it waiting:

1. Setup (~20-35 s): WORK_ORDERS work orders awaiting the store's reply are opened
   through the services in a few threads, then WORKERS worker processes start
   (--concurrency 2 each). Each work order is opened as of a planned instant so that its
   reply timer falls due at a planned time: the deadlines are spread evenly over SPREAD
   seconds starting LEAD seconds after the test began, whatever the setup's speed (a
   setup slower than LEAD - 10 s fails the test rather than running no chaos).
2. Chaos (from the first deadline, for CHAOS_SECONDS or until all fired): every 2-5 s a
   worker is killed with SIGKILL (and started again, at once or a round later).
3. Settle: all workers up until nothing is due, then SIGTERM: each exits 0.

Then the database must show each reply timer fired once, each work order in adjudication
with one `timed_out` event, one timeout card in the store's inbox per work order, and
intact audit chains. Set COLLABDESK_CHAOS_SEED to replay a run's kill schedule.
"""

from __future__ import annotations

import logging
import os
import random
import signal
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from collabdesk.adapters.clock import FixedClock
from collabdesk.bootstrap import Container, build
from collabdesk.domain.states import Role
from collabdesk.domain.values import Category, Store, StorePlatform
from collabdesk.services import accounts, catalog
from collabdesk.services import work_orders as wos
from collabdesk.services.access import actor_of
from collabdesk.settings import Settings
from tests.integration.test_cli import COLLABDESK

pytestmark = [pytest.mark.postgres, pytest.mark.chaos]

log = logging.getLogger(__name__)

WORK_ORDERS = int(os.environ.get("COLLABDESK_CHAOS_WORK_ORDERS") or 3000)
SETUP_THREADS = 6
WORKERS = 3
LEAD = timedelta(seconds=60)  # the first deadline, after the test began (setup ~20-35 s)
SPREAD = timedelta(seconds=20)  # the deadlines are spread over this much time
REPLY_WINDOW = LEAD + SPREAD  # so every work order is opened at or before the start
KILL_EVERY = (2.0, 5.0)  # seconds between kills (a restart costs ~3 s of CPU: imports)
CHAOS_SECONDS = 25  # killing goes on this long (or until all fired) from the first deadline
SETTLE_SECONDS = 150  # at most, once the chaos ends, for the rest to fire


@dataclass
class WorkerProcess:
    index: int
    workdir: Path
    url: str
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
        with self.log().open("wb") as out:
            self.process = subprocess.Popen(
                [str(COLLABDESK), "worker", "--concurrency", "2", "--database-url", self.url,
                 "--data-dir", str(self.workdir / "data")],
                stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.workdir)

    def log(self) -> Path:
        return self.workdir / f"worker-{self.index}-{self.starts}.log"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        if self.process is not None:
            if self.process.poll() is None:
                self.process.kill()
            self.process.wait()

    def terminate(self) -> int:
        """SIGTERM once the worker is up (a process still importing Python dies of the
        signal, having done nothing: not what this test is about); its exit status."""
        assert self.process is not None
        began = time.monotonic()
        while (self.process.poll() is None and time.monotonic() - began < 60
               and b"collabdesk worker:" not in self.log().read_bytes()):
            time.sleep(0.1)
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


@pytest.fixture
def workers(postgres_database_url: str, tmp_path: Path) -> Iterator[list[WorkerProcess]]:
    procs = [WorkerProcess(i, tmp_path, postgres_database_url) for i in range(WORKERS)]
    yield procs
    for proc in procs:
        proc.kill()


def open_awaiting_reply(container: Container, began: datetime) -> tuple[list[str], str]:
    """WORK_ORDERS work orders awaiting the store's reply, their reply deadlines spread
    over [began + LEAD, began + LEAD + SPREAD]; returns their ids and the owner's id
    (the store's only staff account, so it receives every card)."""
    ctx = container.ctx
    catalog.create_store(ctx, None, Store("s-chaos", "Chaos store", StorePlatform.TMALL))
    owner, _ = accounts.create_account(ctx, None, name="owner", role=Role.MERCHANT_OWNER,
                                       store_id="s-chaos")
    consumer, _ = accounts.create_account(ctx, None, name="buyer", role=Role.CONSUMER)
    paid = (began - timedelta(days=1)).isoformat()
    imported = catalog.import_orders(ctx, ((i, {
        "id": f"o-chaos-{i}", "store_id": "s-chaos", "consumer_id": consumer.id,
        "kind": "standard", "amount_cents": 10_000, "paid_at": paid})
        for i in range(WORK_ORDERS)))
    assert imported.imported == WORK_ORDERS, imported.refused[:3]
    actor = actor_of(consumer)
    step = SPREAD / WORK_ORDERS

    def open_one(i: int) -> str:
        # Opened as of a planned instant (in the past: the window is LEAD + SPREAD long),
        # so its deadline is planned too.
        opened = began + LEAD + step * i - REPLY_WINDOW
        at = replace(ctx, clock=FixedClock(opened))
        return wos.open_work_order(at, actor, order_id=f"o-chaos-{i}",
                                   category=Category.DAMAGED, claim="arrived broken",
                                   requested_remedy=None).id

    with ThreadPoolExecutor(SETUP_THREADS) as pool:
        ids = list(pool.map(open_one, range(WORK_ORDERS)))
    return ids, owner.id


def reply_timers(engine: Engine) -> tuple[int, int]:
    """(fired, pending) reply timers."""
    with engine.connect() as conn:
        fired, pending = conn.execute(text(
            "SELECT count(fired_at), count(*) FILTER (WHERE fired_at IS NULL "
            "AND cancelled_at IS NULL) FROM timers WHERE kind = 'reply_timeout'")).one()
    return int(fired), int(pending)


def test_killed_and_restarted_workers_fire_every_deadline_exactly_once(
        postgres_database_url: str, tmp_path: Path, workers: list[WorkerProcess]) -> None:
    seed = int(os.environ.get("COLLABDESK_CHAOS_SEED") or time.time_ns() % 1_000_000)
    rng = random.Random(seed)
    began = datetime.now(UTC)
    container = build(Settings(database_url=postgres_database_url, data_dir=tmp_path / "data",
                               reply_window=REPLY_WINDOW, reminders_before_due=[]))
    engine = container.engine
    try:
        setup = time.monotonic()
        ids, owner_id = open_awaiting_reply(container, began)
        setup_seconds = time.monotonic() - setup
        # The workers start once the work orders are there (not beside the setup, whose
        # CPU they would take on a 2-core machine): they boot before the first deadline.
        for proc in workers:
            proc.start()
        assert setup_seconds < LEAD.total_seconds() - 10, (
            f"the setup took {setup_seconds:.1f} s: the first deadlines passed before "
            "the chaos began")

        # ---- chaos: from the first deadline on, kill -9 a worker every 2-5 s
        while datetime.now(UTC) < began + LEAD:
            time.sleep(0.1)
        kills: list[int] = []  # reply timers fired when a worker was killed
        down: list[WorkerProcess] = []
        chaos = time.monotonic()
        while time.monotonic() - chaos < CHAOS_SECONDS:
            if not reply_timers(engine)[1]:
                break
            time.sleep(rng.uniform(*KILL_EVERY))
            for proc in down:
                proc.start()
            down.clear()
            victim = workers[rng.randrange(WORKERS)]
            if victim.running:
                victim.kill()
                kills.append(reply_timers(engine)[0])
                if rng.random() < 0.75:
                    victim.start()
                else:
                    down.append(victim)  # stays down a round
        for proc in down:
            proc.start()
        chaos_seconds = time.monotonic() - chaos

        # ---- settle: everyone up until nothing is due, then a clean stop
        settle = time.monotonic()
        while reply_timers(engine)[1]:
            if time.monotonic() - settle > SETTLE_SECONDS:
                pytest.fail(f"still pending after {SETTLE_SECONDS} s: {reply_timers(engine)}")
            for proc in workers:
                if not proc.running:  # a worker that died by itself is a failure
                    pytest.fail(f"worker {proc.index} exited:\n{proc.log().read_text()}")
            time.sleep(0.2)
        settle_seconds = time.monotonic() - settle
        codes = [proc.terminate() for proc in workers]
        assert codes == [0] * WORKERS, codes
        log.info("seed %s: setup %.1f s; chaos %.1f s, %d kills (reply timers fired at each: "
                 "%s); settled in %.1f s; %d worker starts", seed, setup_seconds, chaos_seconds,
                 len(kills), kills, settle_seconds, sum(p.starts for p in workers))
        # At least one worker died while the timers were firing (most runs: several).
        assert any(0 < fired < WORK_ORDERS for fired in kills), f"no kill mid-way: {kills}"

        # ---- every deadline fired exactly once, none missed
        with engine.connect() as conn:
            timers = conn.execute(text(
                "SELECT count(*), count(fired_at), count(cancelled_at), "
                "count(DISTINCT work_order_id) FROM timers "
                "WHERE kind = 'reply_timeout'")).one()
            assert tuple(timers) == (WORK_ORDERS, WORK_ORDERS, 0, WORK_ORDERS)
            late = conn.execute(text(
                "SELECT count(*) FROM timers WHERE kind = 'reply_timeout' "
                "AND fired_at < due_at")).scalar()
            assert late == 0  # none fired before its time
            states: dict[str, int] = dict(conn.execute(text(
                "SELECT state, count(*) FROM work_orders GROUP BY state")).all())
            assert states == {"in_adjudication": WORK_ORDERS}
            timed_out = conn.execute(text(
                "SELECT work_order_id, count(*) FROM events WHERE type = 'timed_out' "
                "GROUP BY work_order_id")).all()
            assert sorted(w for w, _ in timed_out) == sorted(ids)
            assert {n for _, n in timed_out} == {1}
            cards = conn.execute(text(
                "SELECT work_order_id, count(*) FROM inbox WHERE kind = 'timeout' "
                "AND recipient_id = :owner GROUP BY work_order_id"), {"owner": owner_id}).all()
            assert sorted(w for w, _ in cards) == sorted(ids)
            assert {n for _, n in cards} == {1}
            assert conn.execute(text(
                "SELECT count(*) FROM inbox WHERE kind = 'timeout'")).scalar() == WORK_ORDERS
            slas = conn.execute(text(
                "SELECT count(*), count(DISTINCT work_order_id) FROM timers "
                "WHERE kind = 'adjudication_sla' AND fired_at IS NULL "
                "AND cancelled_at IS NULL")).one()
            assert tuple(slas) == (WORK_ORDERS, WORK_ORDERS)
    finally:
        engine.dispose()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    verify = subprocess.run([str(COLLABDESK), "audit", "verify", "--database-url",
                             postgres_database_url], env=env, cwd=tmp_path, capture_output=True,
                            text=True, timeout=120, check=False)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert f"checked {WORK_ORDERS} work orders" in verify.stdout
