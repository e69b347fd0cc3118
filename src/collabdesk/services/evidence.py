"""Evidence upload and download: content-addressed, typed by content, immutable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from collabdesk.domain.bounds import control_character_problem
from collabdesk.domain.errors import (
    EvidenceTooLarge,
    EvidenceTypeNotAllowed,
    NotFound,
    ValidationFailed,
)
from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES, sniff_media_type
from collabdesk.domain.records import EvidenceRecord
from collabdesk.domain.values import Actor

from .access import can_see, may_see_attachment
from .context import ServiceContext, new_id
from .ports import UnitOfWork


def upload(ctx: ServiceContext, actor: Actor, source: BinaryIO,
           filename: str | None) -> EvidenceRecord:
    if filename and (problem := control_character_problem(filename, multiline=False)):
        raise ValidationFailed(f"file.filename: {problem}")
    staged = ctx.evidence_store.stage(source, ctx.evidence_max_bytes)
    if staged is None:
        raise EvidenceTooLarge(f"evidence is limited to {ctx.evidence_max_bytes} bytes")
    try:  # an MP4 is typed by its `moov` box, which may lie anywhere in the file
        media_type = sniff_media_type(
            staged.head, lambda offset, size: ctx.evidence_store.read_at(staged, offset, size),
            staged.size)
    except Exception:
        ctx.evidence_store.discard(staged)
        raise
    if media_type is None and staged.is_utf8_text and staged.size > 0:
        media_type = "text/plain"
    if media_type not in ALLOWED_MEDIA_TYPES:
        ctx.evidence_store.discard(staged)
        raise EvidenceTypeNotAllowed(
            "evidence must be an image (PNG, JPEG, GIF, WebP), a PDF, audio (MP3, M4A/MP4, "
            "AMR, WAV) or plain UTF-8 text; the content of this file is none of these")
    ctx.evidence_store.publish(staged)
    record = EvidenceRecord(new_id("ev"), staged.sha256, media_type, staged.size,
                            (filename or None) and filename[:255], actor.id, ctx.clock.now())

    def run(uow: UnitOfWork) -> EvidenceRecord:
        uow.evidence.add(record)
        return record
    return ctx.write(run)


def download(ctx: ServiceContext, actor: Actor,
             evidence_id: str) -> tuple[EvidenceRecord, Iterator[bytes]]:
    """To the uploader, and to the parties of any work order it is attached to (only the
    platform's, when it is attached platform-only)."""
    def run(uow: UnitOfWork) -> EvidenceRecord:
        record = uow.evidence.get(evidence_id)
        if record is None:
            raise NotFound(f"evidence {evidence_id} not found")
        if record.uploaded_by == actor.id:
            return record
        for wo_id, visibility in uow.evidence.attached_to(evidence_id):
            if not may_see_attachment(actor, visibility):
                continue
            wo = uow.work_orders.get(wo_id)
            if wo is not None and can_see(actor, wo):
                return record
        raise NotFound(f"evidence {evidence_id} not found")
    record = ctx.read(run)
    return record, ctx.evidence_store.open(record.sha256)
