"""Where evidence bytes live: a port, so local files can become an object store."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StagedFile:
    """An upload written aside and hashed, not yet published under its digest."""

    path: Path
    sha256: str
    size: int
    head: bytes  # first bytes, for type sniffing
    is_utf8_text: bool


class EvidenceStore(Protocol):
    def stage(self, source: BinaryIO, max_bytes: int) -> StagedFile | None:
        """Copy `source` aside; None when it exceeds `max_bytes` (nothing is kept)."""
    def publish(self, staged: StagedFile) -> None:
        """Make the staged file readable under its digest; never overwrites."""
    def discard(self, staged: StagedFile) -> None: ...
    def open(self, sha256: str) -> Iterator[bytes]: ...
    def path(self, sha256: str) -> Path: ...
