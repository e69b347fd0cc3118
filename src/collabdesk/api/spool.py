"""A request body, received under a size limit before any route sees it.

The body is spooled: kept in memory up to `IN_MEMORY` bytes and in a temporary file
beyond, so a 20 MiB upload never sits in memory whole, and a body over the limit is cut
off as soon as it crosses it (or before a byte is read, when Content-Length says so).
The route then reads it back in chunks, as if from the client.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

from starlette.types import Message, Receive

IN_MEMORY = 1024 * 1024
CHUNK = 64 * 1024


class BodyTooLarge(Exception):
    """The body is over the limit; nothing of it is kept."""


class ClientGone(Exception):
    """The client disconnected before it finished sending the body."""


class Spool:
    def __init__(self, directory: Path | None) -> None:
        self._file = tempfile.SpooledTemporaryFile(  # noqa: SIM115 (closed by close())
            max_size=IN_MEMORY, dir=None if directory is None else str(directory))
        self.size = 0

    @classmethod
    async def receive_all(cls, receive: Receive, limit: int,
                          directory: Path | None) -> Spool:
        spool = cls(directory)
        try:
            while True:
                message = await receive()
                if message["type"] == "http.disconnect":
                    raise ClientGone
                chunk = message.get("body", b"")
                spool.size += len(chunk)
                if spool.size > limit:
                    raise BodyTooLarge
                spool._file.write(chunk)
                if not message.get("more_body", False):
                    return spool
        except BaseException:
            spool.close()
            raise

    def chunks(self) -> Iterator[bytes]:
        self._file.seek(0)
        while chunk := self._file.read(CHUNK):
            yield chunk

    def replay(self, receive: Receive) -> Receive:
        """A `receive` that hands the body over again, then defers to the real one (which
        reports the client's disconnect)."""
        chunks = self.chunks()
        pending = next(chunks, b"")
        done = False

        async def replayed() -> Message:
            nonlocal pending, done
            if done:
                return await receive()
            following = next(chunks, None)
            message = {"type": "http.request", "body": pending,
                       "more_body": following is not None}
            if following is None:
                done = True
            else:
                pending = following
            return message
        return replayed

    def close(self) -> None:
        self._file.close()
