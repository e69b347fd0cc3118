"""Evidence files: upload (multipart field `file`) and download."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, UploadFile, status
from fastapi.responses import StreamingResponse

from collabdesk.domain.errors import ValidationFailed
from collabdesk.services import evidence as svc

from .. import schemas as s
from ..deps import Caller, Ctx

router = APIRouter(prefix="/v1/evidence", tags=["evidence"])


@router.post("", status_code=status.HTTP_201_CREATED)
def upload(ctx: Ctx, caller: Caller, file: UploadFile | None = None) -> dict[str, Any]:
    if file is None:
        raise ValidationFailed("file: a multipart field named 'file' is required")
    record = svc.upload(ctx, caller, file.file, file.filename)
    return s.evidence_out(record)


@router.get("/{evidence_id}")
def download(evidence_id: str, ctx: Ctx, caller: Caller) -> StreamingResponse:
    record, chunks = svc.download(ctx, caller, evidence_id)
    headers = {"ETag": f'"{record.sha256}"', "X-Content-Type-Options": "nosniff",
               "Content-Length": str(record.size),
               "Cache-Control": "private, max-age=31536000, immutable",
               "Content-Disposition": "attachment"}
    return StreamingResponse(chunks, media_type=record.media_type, headers=headers)
