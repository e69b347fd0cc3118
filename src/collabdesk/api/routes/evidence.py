"""Evidence files: upload (multipart field `file`) and download."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, File, UploadFile, status
from fastapi.responses import StreamingResponse

from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES
from collabdesk.services import evidence as svc

from .. import models as m
from .. import schemas as s
from ..deps import Caller, Ctx
from ..fields import PathId
from ..openapi import problems

router = APIRouter(prefix="/v1/evidence", tags=["evidence"], route_class=m.RenderedRoute)

_CONTENT = {"description": "The file, as uploaded, typed by its content.",
            "content": {media_type: {"schema": {"type": "string", "format": "binary"}}
                        for media_type in ALLOWED_MEDIA_TYPES},
            "headers": {
                "ETag": {"description": "The file's SHA-256 in quotes.", "required": True,
                         "schema": {"type": "string", "pattern": '^"[0-9a-f]{64}"$'}},
                "Content-Disposition": {"description": "`attachment`: never shown inline.",
                                        "required": True, "schema": {"type": "string"}}}}


@router.post("", status_code=status.HTTP_201_CREATED, response_model=m.Evidence,
             summary="Upload an evidence file",
             responses=problems(
                 validation_error="no multipart field `file`",
                 evidence_too_large="the file is over the evidence limit (20 MiB by default)",
                 evidence_type_not_allowed="the content is not an image (PNG, JPEG, GIF, "
                                           "WebP), a PDF, audio (MP3, M4A/MP4, AMR, WAV) or "
                                           "UTF-8 text"))
def upload(ctx: Ctx, caller: Caller,
           file: Annotated[UploadFile, File(description="the evidence file")]
           ) -> dict[str, Any]:
    """Upload a file (multipart/form-data, field `file`) to cite as evidence by its `id`.
    **Any caller.**

    The type is read from the content, never from the file name or the part's
    `Content-Type`; the file is stored once by its SHA-256 and never changes. Evidence can
    be cited by its uploader, or by others once it is on a work order they may see.
    """
    record = svc.upload(ctx, caller, file.file, file.filename)
    return s.evidence_out(record)


@router.get("/{evidence_id}", response_class=StreamingResponse,
            summary="Download an evidence file",
            responses={200: _CONTENT, **problems(
                not_found="no such evidence, or the caller may not see it")})
def download(evidence_id: PathId, ctx: Ctx, caller: Caller) -> StreamingResponse:
    """The file's bytes, with its media type. **Its uploader, and the parties of any work
    order it is attached to** (only the platform staff and admin when it was attached
    platform-only); anyone else gets 404."""
    record, chunks = svc.download(ctx, caller, evidence_id)
    headers = {"ETag": f'"{record.sha256}"', "X-Content-Type-Options": "nosniff",
               "Content-Length": str(record.size),
               "Cache-Control": "private, max-age=31536000, immutable",
               "Content-Disposition": "attachment"}
    return StreamingResponse(chunks, media_type=record.media_type, headers=headers)
