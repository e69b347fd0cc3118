"""A process of loops (the deadline runner today; the outbox dispatcher later), run until
SIGTERM or SIGINT.

The first signal asks every loop to stop after what it is doing (a runner thread finishes
its current `fire_due_timers` call, whose transactions commit batch by batch); a second
signal exits at once, which is safe too: the transaction in flight rolls back and its
timers stay due for the next runner.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
import time
from collections.abc import Sequence
from types import FrameType
from typing import Protocol

log = logging.getLogger("collabdesk.worker")


class Loop(Protocol):
    """What the worker process runs: threads started, asked to stop, joined."""

    def start(self) -> None: ...

    def request_stop(self) -> None: ...

    def join(self, timeout: float | None = None) -> bool: ...


def run_until_signalled(loops: Sequence[Loop], *, stop: threading.Event | None = None) -> int:
    """Start `loops`, wait for SIGTERM/SIGINT (or `stop`), stop them; the exit status."""
    stop = stop or threading.Event()
    received: list[int] = []

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        # No locks here (the main thread may hold one): note it, the main loop acts.
        received.append(signum)
        if len(received) > 1:
            os.write(2, f"{signal.Signals(signum).name} again: stopping now (the batch in "
                        "flight rolls back)\n".encode())
            os._exit(128 + signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        for loop in loops:
            loop.start()
        while not received and not stop.is_set():
            time.sleep(0.2)  # a signal cuts the sleep short
        if received:
            name = signal.Signals(received[0]).name
            log.info("%s: finishing the current batch, then stopping (%s again stops at "
                     "once)", name, name)
        for loop in loops:
            loop.request_stop()
        for loop in loops:
            while not loop.join(timeout=1.0):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
