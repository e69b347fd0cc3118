"""The deadline runner: a background thread that fires due timers every poll interval,
and now and then purges `Idempotency-Key` rows past their 24 hours."""

from __future__ import annotations

import logging
import threading
import time

from collabdesk.services.context import ServiceContext
from collabdesk.services.idempotency import purge_expired
from collabdesk.services.timers import fire_due_timers

log = logging.getLogger("collabdesk.runner")

PURGE_EVERY_SECONDS = 300.0


class DeadlineRunner:
    def __init__(self, ctx: ServiceContext, poll_seconds: float) -> None:
        self._ctx = ctx
        self._poll = poll_seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="deadline-runner", daemon=True)
        self._last_purge = float("-inf")
        # Serialises firing with `POST /v1/test-clock/advance`, which fires inline.
        self.lock = threading.Lock()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def run_once(self) -> int:
        with self.lock:
            return fire_due_timers(self._ctx)

    def purge_once(self) -> int:
        """Delete expired idempotency keys, a batch at a time, until none is left."""
        purged = 0
        while (batch := purge_expired(self._ctx)) > 0:
            purged += batch
        return purged

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                fired = self.run_once()
                if fired:
                    log.info("fired %d timer(s)", fired)
                if time.monotonic() - self._last_purge >= PURGE_EVERY_SECONDS:
                    self._last_purge = time.monotonic()
                    if purged := self.purge_once():
                        log.info("purged %d expired idempotency key(s)", purged)
            except Exception:  # keep the runner alive; the next tick retries
                log.exception("deadline runner tick failed")
            self._stop.wait(self._poll)
