"""Evidence on the local disk: <data dir>/evidence/ab/cd/<sha256>, read-only once written."""

from __future__ import annotations

import codecs
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from collabdesk.domain.evidence import HEAD_BYTES, is_plain_text
from collabdesk.services.evidence_port import MAX_READ_AT, StagedFile

CHUNK = 1024 * 1024
HEAD = HEAD_BYTES


class LocalEvidenceStore:
    def __init__(self, root: Path) -> None:
        self.root = root
        self._staging = root / "staging"
        self._staging.mkdir(parents=True, exist_ok=True)

    def path(self, sha256: str) -> Path:
        return self.root / sha256[:2] / sha256[2:4] / sha256

    def stage(self, source: BinaryIO, max_bytes: int) -> StagedFile | None:
        digest = hashlib.sha256()
        decoder = codecs.getincrementaldecoder("utf-8")()
        size, head, text = 0, b"", True
        fd, name = tempfile.mkstemp(dir=self._staging)
        path = Path(name)
        with os.fdopen(fd, "wb") as out:
            while chunk := source.read(CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    out.close()
                    path.unlink(missing_ok=True)
                    return None
                if len(head) < HEAD:
                    head += chunk[: HEAD - len(head)]
                digest.update(chunk)
                if text:
                    try:
                        text = is_plain_text(decoder.decode(chunk))
                    except UnicodeDecodeError:
                        text = False
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())
        if text:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                text = False
        return StagedFile(path, digest.hexdigest(), size, head, text)

    def publish(self, staged: StagedFile) -> None:
        target = self.path(staged.sha256)
        if target.exists():  # same content already stored: keep the original
            staged.path.unlink(missing_ok=True)
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        staged.path.chmod(0o444)
        os.replace(staged.path, target)

    def read_at(self, staged: StagedFile, offset: int, size: int) -> bytes:
        if offset < 0 or not 0 <= size <= MAX_READ_AT:
            raise ValueError(f"read_at({offset}, {size}) is out of bounds")
        if offset >= staged.size:
            return b""
        with staged.path.open("rb") as f:
            f.seek(offset)
            return f.read(min(size, staged.size - offset))

    def discard(self, staged: StagedFile) -> None:
        staged.path.unlink(missing_ok=True)

    def open(self, sha256: str) -> Iterator[bytes]:
        with self.path(sha256).open("rb") as f:
            while chunk := f.read(CHUNK):
                yield chunk
