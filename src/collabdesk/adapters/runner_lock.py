"""One deadline runner per SQLite database: an OS file lock next to the database.

SQLite has one writer at a time, so several runners would only queue on its lock. The
runner that holds `<database>.runner.lock` (fcntl.flock, exclusive) fires the timers; any
other waits, says so once, and takes over when the holder exits: the kernel releases the
lock with the process, however it ends (kill -9 included). PostgreSQL needs no such lock:
its runners share the timers.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from pathlib import Path

from sqlalchemy.engine import make_url

log = logging.getLogger("collabdesk.runner")


def lock_path_for(database_url: str) -> Path | None:
    """`<database>.runner.lock` for a SQLite file; None for PostgreSQL or in-memory."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database).resolve().with_name(Path(url.database).name + ".runner.lock")


class RunnerFileLock:
    def __init__(self, path: Path, what: str = "deadline runner") -> None:
        self.path = path
        self.what = what  # who waits, in the log lines
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def try_acquire(self) -> bool:
        if self._fd is not None:
            return True
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        except BaseException:
            os.close(fd)
            raise
        os.ftruncate(fd, 0)  # who holds it, for an operator who looks
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return True

    def acquire(self, stop: threading.Event, retry_seconds: float = 0.5) -> bool:
        """Hold the lock, waiting (and saying so once) while another runner has it.
        False when `stop` was set first."""
        if self.try_acquire():
            return True
        log.warning("another %s holds %s; waiting", self.what, self.path)
        while not stop.wait(retry_seconds):
            if self.try_acquire():
                log.warning("the other %s is gone: this one runs now (%s)", self.what,
                            self.path)
                return True
        return False

    def release(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)
