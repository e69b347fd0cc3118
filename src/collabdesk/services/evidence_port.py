"""Where evidence bytes live: a port, so local files can become an object store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

MAX_READ_AT = 64 * 1024
"""The most `EvidenceStore.read_at` answers in one call (a sniffer reads a few bytes)."""


@dataclass(frozen=True)
class StagedFile:
    """An upload written aside and hashed, not yet published under its digest."""

    path: Path
    sha256: str
    size: int
    head: bytes  # first bytes (domain.evidence.HEAD_BYTES), for type sniffing
    is_utf8_text: bool


class EvidenceStore(Protocol):
    def stage(self, source: BinaryIO, max_bytes: int) -> StagedFile | None:
        """Copy `source` aside; None when it exceeds `max_bytes` (nothing is kept)."""
    def publish(self, staged: StagedFile) -> None:
        """Make the staged file readable under its digest; never overwrites."""
    def read_at(self, staged: StagedFile, offset: int, size: int) -> bytes:
        """Up to `size` bytes of the staged file from `offset`; fewer at its end, none past
        it. For sniffing types whose structure lies beyond the head (an MP4's `moov`).
        ValueError for a negative offset or a size outside 0..MAX_READ_AT."""
    def discard(self, staged: StagedFile) -> None: ...
    def open(self, sha256: str) -> Iterator[bytes]: ...
    def path(self, sha256: str) -> Path: ...
