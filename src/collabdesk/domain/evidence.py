"""Evidence types are decided by content (magic bytes), never by the file name."""

from __future__ import annotations

import unicodedata

ALLOWED_MEDIA_TYPES = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/mpeg",
    "audio/mp4", "video/mp4", "audio/amr", "audio/wav", "text/plain",
)

_MP4_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ")


def sniff_media_type(head: bytes) -> str | None:
    """The media type of a file from its first bytes (pass at least 64), or None."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "audio/amr"
    if head.startswith(b"ID3") or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0
                                    and head[1] & 0x06 != 0):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        return "audio/mp4" if head[8:12] in _MP4_AUDIO_BRANDS else "video/mp4"
    return None


def is_plain_text(text: str) -> bool:
    """No NULs or control characters other than tab, newline, CR and form feed."""
    return all(ch in "\t\n\r\f" or unicodedata.category(ch) != "Cc" for ch in text)
