"""Evidence upload and download: content-addressed, typed by content, immutable."""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from collabdesk.domain.errors import EvidenceTooLarge, EvidenceTypeNotAllowed, NotFound
from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES, sniff_media_type
from collabdesk.domain.records import EvidenceRecord
from collabdesk.domain.values import Actor

from .access import can_see
from .context import ServiceContext, new_id
from .ports import UnitOfWork


def upload(ctx: ServiceContext, actor: Actor, source: BinaryIO,
           filename: str | None) -> EvidenceRecord:
    staged = ctx.evidence_store.stage(source, ctx.evidence_max_bytes)
    if staged is None:
        raise EvidenceTooLarge(f"evidence is limited to {ctx.evidence_max_bytes} bytes")
    media_type = sniff_media_type(staged.head)
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
    """To the uploader, and to the parties of any work order it is attached to."""
    def run(uow: UnitOfWork) -> EvidenceRecord:
        record = uow.evidence.get(evidence_id)
        if record is None:
            raise NotFound(f"evidence {evidence_id} not found")
        if record.uploaded_by == actor.id:
            return record
        for wo_id in uow.evidence.attached_to(evidence_id):
            wo = uow.work_orders.get(wo_id)
            if wo is not None and can_see(actor, wo):
                return record
        raise NotFound(f"evidence {evidence_id} not found")
    record = ctx.read(run)
    return record, ctx.evidence_store.open(record.sha256)
