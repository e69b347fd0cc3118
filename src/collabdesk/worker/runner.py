"""The deadline runner: threads that fire due timers, and now and then purge
`Idempotency-Key` rows past their 24 hours.

Each thread calls `fire_due_timers` (which fires each timer exactly once however many
runners race, in this process or others) and then waits for the earliest of: the next
pending timer's due time, a poll interval (`COLLABDESK_TIMER_POLL_SECONDS`), a wake-up.
On PostgreSQL one listening connection per runner (`adapters/db/wakeup.py`) turns
`NOTIFY collabdesk_timers` into a wake-up, so a timer scheduled to fall due soon is not
left for the next poll; a lost connection is replaced, and meanwhile the poll is the
backstop. On SQLite the runner first takes the database's runner lock
(`adapters/runner_lock.py`): one runner fires, any other waits its turn.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager, nullcontext
from datetime import datetime
from pathlib import Path

from sqlalchemy import Engine

from collabdesk.adapters.db.timer_stats import FiredTimer
from collabdesk.adapters.db.wakeup import TimerListener, next_pending_due
from collabdesk.adapters.runner_lock import RunnerFileLock, lock_path_for
from collabdesk.bootstrap import Container
from collabdesk.domain.records import Timer
from collabdesk.services.context import ServiceContext
from collabdesk.services.idempotency import purge_expired
from collabdesk.services.timers import fire_due_timers

from . import metrics

log = logging.getLogger("collabdesk.runner")

PURGE_EVERY_SECONDS = 300.0
# Woken for a timer's due time, wait this much past it, so the clock has surely reached it.
DUE_MARGIN_SECONDS = 0.002
RECONNECT_MAX_SECONDS = 30.0


class Doorbell:
    """Wakes waiting runner threads: a counter of rings under a condition. A thread
    notes the count before its tick and waits for a higher one, so a ring during the
    tick is not lost."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._rings = 0

    @property
    def rings(self) -> int:
        with self._cond:
            return self._rings

    def ring(self) -> None:
        with self._cond:
            self._rings += 1
            self._cond.notify_all()

    def wait(self, seen: int, timeout: float) -> bool:
        """Until rung past `seen`, or `timeout` seconds; True when rung."""
        with self._cond:
            return self._cond.wait_for(lambda: self._rings > seen, timeout=max(timeout, 0.0))


class DeadlineRunner:
    """`concurrency` threads firing due timers. With `engine`, each waits for the next
    due time (not a whole poll interval) and observes the timer metrics; with `listen`,
    a thread LISTENs for wake-ups (PostgreSQL); with `lock_path`, the runner first holds
    that file lock (SQLite)."""

    def __init__(self, ctx: ServiceContext, poll_seconds: float, *,
                 engine: Engine | None = None, concurrency: int = 1, listen: bool = False,
                 lock_path: Path | None = None, name: str = "deadline-runner") -> None:
        if concurrency < 1:
            raise ValueError("concurrency must be at least 1")
        self._ctx = ctx
        self._poll = poll_seconds
        self._engine = engine
        self._stop = threading.Event()
        self._bell = Doorbell()
        self._last_purge = float("-inf")
        self._file_lock = RunnerFileLock(lock_path) if lock_path else None
        self._listener = TimerListener(engine) if listen and engine is not None else None
        self._threads = [threading.Thread(target=self._loop, args=(i,), daemon=True,
                                          name=f"{name}-{i}" if concurrency > 1 else name)
                         for i in range(concurrency)]
        if self._listener is not None:
            self._threads.append(threading.Thread(target=self._listen, daemon=True,
                                                  name=f"{name}-listener"))
        self._holding = threading.Event()  # the file lock is held (or none is needed)
        # Serialises firing with `POST /v1/test-clock/advance`, which fires inline. Only a
        # single-threaded runner (serve's) takes it: the test clock refuses concurrency.
        self.lock = threading.Lock()
        self._serial = concurrency == 1
        self.ticks = 0  # ticks run by the threads, for the curious (and the tests)

    @classmethod
    def for_container(cls, container: Container, *, concurrency: int = 1
                      ) -> DeadlineRunner:
        """The runner `serve` and `worker` run: PostgreSQL listens for wake-ups, SQLite
        takes the database's runner lock (and runs one thread)."""
        engine = container.engine
        postgres = engine.dialect.name == "postgresql"
        lock = lock_path_for(engine.url.render_as_string(hide_password=False))
        return cls(container.ctx, container.settings.timer_poll_seconds, engine=engine,
                   concurrency=concurrency if postgres else 1, listen=postgres,
                   lock_path=lock)

    @property
    def concurrency(self) -> int:
        return sum(1 for t in self._threads if not t.name.endswith("-listener"))

    @property
    def listener(self) -> TimerListener | None:
        return self._listener

    # ---- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def request_stop(self) -> None:
        """Ask every thread to stop after its current tick; returns at once."""
        self._stop.set()
        self._bell.ring()

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the threads; True when all have ended."""
        done = join_all(self._threads, timeout)
        if done:
            self._release()
        return done

    def stop(self, timeout: float = 10.0) -> bool:
        self.request_stop()
        return self.join(timeout)

    def wake(self) -> None:
        """Have the threads look for due timers now."""
        self._bell.ring()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # ---- one tick ----------------------------------------------------------------------------

    def run_once(self) -> int:
        """Fire what is due now, batch after batch; stops between batches when asked."""
        guard: AbstractContextManager[object] = self.lock if self._serial else nullcontext()
        heard: list[FiredTimer] = []

        def observe(timers: list[Timer], at: datetime) -> None:
            batch = [FiredTimer(t.kind, t.due_at, at) for t in timers]
            metrics.observe(batch)
            heard.extend(batch)

        with guard:
            fired = fire_due_timers(self._ctx, observe=observe, should_stop=self._stop.is_set)
        if heard:
            kinds = Counter(t.kind for t in heard)
            worst = max(t.lateness_seconds for t in heard)
            log.info("fired %d timer(s): %s; latest by %.3f s", fired,
                     ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())), worst)
        return fired

    def purge_once(self) -> int:
        """Delete expired idempotency keys, a batch at a time, until none is left."""
        purged = 0
        while (batch := purge_expired(self._ctx)) > 0:
            purged += batch
        return purged

    # ---- the threads -------------------------------------------------------------------------

    def _loop(self, index: int) -> None:
        if index == 0:
            if self._file_lock is not None and not self._file_lock.acquire(self._stop):
                self._holding.set()
                return
            self._holding.set()
        elif not self._wait_holding():
            return
        while not self._stop.is_set():
            seen = self._bell.rings
            try:
                fired = self.run_once()
                self.ticks += 1
                if index == 0:
                    self._maybe_purge()
                timeout = self._next_wait(fired)
            except Exception:  # keep the runner alive; the next tick retries
                log.exception("deadline runner tick failed")
                timeout = self._poll
            if timeout > 0:
                self._bell.wait(seen, timeout)

    def _wait_holding(self) -> bool:
        while not self._holding.wait(0.5):
            if self._stop.is_set():
                return False
        return not self._stop.is_set()

    def _maybe_purge(self) -> None:
        if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
            self._last_purge = time.monotonic()
            if purged := self.purge_once():
                log.info("purged %d expired idempotency key(s)", purged)

    def _next_wait(self, fired: int) -> float:
        """Seconds until the next tick: at once after a tick that fired (more may have
        fallen due meanwhile), else until the next pending timer is due, at most a poll
        interval. Due timers another runner holds (or whose effect fails) are retried after
        a poll interval."""
        if fired:
            return 0.0
        if self._engine is None:
            return self._poll
        now = self._ctx.clock.now()
        due = next_pending_due(self._engine, now)
        if due is None:
            return self._poll
        return min(self._poll, (due - now).total_seconds() + DUE_MARGIN_SECONDS)

    def _listen(self) -> None:
        assert self._listener is not None
        relay_wakeups(self._listener, self._stop, self._bell, "timer", self._poll)

    def _release(self) -> None:
        if self._file_lock is not None:
            self._file_lock.release()
        if self._listener is not None:
            self._listener.close()


def join_all(threads: list[threading.Thread], timeout: float | None) -> bool:
    """Join the started threads within `timeout` in all; True when all have ended."""
    deadline = None if timeout is None else time.monotonic() + timeout
    for thread in threads:
        if thread.ident is not None:
            thread.join(None if deadline is None else max(deadline - time.monotonic(), 0.0))
    return not any(t.is_alive() for t in threads)


def relay_wakeups(listener: TimerListener, stop: threading.Event, bell: Doorbell, what: str,
                  poll: float) -> None:
    """Ring `bell` for each notification `listener` hears, until `stop`. A lost connection
    is replaced (backing off up to RECONNECT_MAX_SECONDS) and, once back, rings once: a
    wake-up may have been missed meanwhile, so the threads look again."""
    backoff = 1.0
    lost = False
    while not stop.is_set():
        try:
            heard = listener.wait(1.0)
            if lost:
                log.warning("listening for %s wake-ups again", what)
                lost = False
                heard = True
            backoff = 1.0
            if heard:
                bell.ring()
        except Exception as exc:
            listener.close()
            if not lost:
                log.warning("lost the connection listening for %s wake-ups (%s); polling "
                            "every %s s until it is back", what,
                            str(exc).strip().splitlines()[0] if str(exc).strip()
                            else type(exc).__name__, poll)
            lost = True
            stop.wait(backoff)
            backoff = min(backoff * 2, RECONNECT_MAX_SECONDS)
    listener.close()
