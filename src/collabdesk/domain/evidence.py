"""Evidence types are decided by content (magic bytes and structure), never by the file name.

Pure: the caller hands over the first bytes of the file and, for formats whose decisive
part may lie anywhere in the file (the `moov` box of an MP4), a way to read at an offset.
"""

from __future__ import annotations

import struct
import unicodedata
from collections.abc import Callable, Iterator

ALLOWED_MEDIA_TYPES = (
    "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf", "audio/mpeg",
    "audio/mp4", "audio/amr", "audio/wav", "text/plain",
)

HEAD_BYTES = 4096
"""How many leading bytes the sniffer wants in `head`: enough to see a second MP3 frame."""

ReadAt = Callable[[int, int], bytes]
"""`read_at(offset, size)`: up to `size` bytes of the file from `offset`, fewer at its end."""


def sniff_media_type(head: bytes, read_at: ReadAt | None = None,
                     size: int | None = None) -> str | None:
    """The media type of a file from its content, or None when it is none we know.

    `head` is the start of the file (pass `HEAD_BYTES`, or all of a shorter file);
    `read_at` and `size` give the whole file. Without them, `head` is taken as the whole
    file, so an MP4 whose `moov` box lies beyond it is not recognised."""
    if read_at is None or size is None:
        read_at, size = (lambda offset, n: head[offset:offset + n]), len(head)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if head.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP" and head[12:16] in _WEBP_CHUNKS:
        return "image/webp"
    if head[:4] == b"RIFF" and head[8:12] == b"WAVE":
        return "audio/wav"
    if head.startswith(b"%PDF-"):
        return "application/pdf"
    if head.startswith((b"#!AMR\n", b"#!AMR-WB\n")):
        return "audio/amr"
    if _is_id3v2(head) or _is_mpeg_audio_layer3(head):
        return "audio/mpeg"
    if head[4:8] == b"ftyp":
        return _iso_media_type(read_at, size)
    return None


def is_plain_text(text: str) -> bool:
    """No NULs or control characters other than tab, newline, CR and form feed."""
    return all(ch in "\t\n\r\f" or unicodedata.category(ch) != "Cc" for ch in text)


# ---- WebP -----------------------------------------------------------------------------------

_WEBP_CHUNKS = (b"VP8 ", b"VP8L", b"VP8X")


# ---- MP3 ------------------------------------------------------------------------------------

def _is_id3v2(head: bytes) -> bool:
    """An ID3v2 tag header: "ID3", major version 2-4, a revision, flags, syncsafe size."""
    return (len(head) >= 10 and head[:3] == b"ID3" and 2 <= head[3] <= 4 and head[4] < 0xFF
            and all(b < 0x80 for b in head[6:10]))


# kbit/s by bitrate index for Layer III; index 0 (free format) and 15 are refused.
_MPEG1_L3_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MPEG2_L3_KBPS = (0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_SAMPLE_RATES = {3: (44100, 48000, 32000), 2: (22050, 24000, 16000), 0: (11025, 12000, 8000)}


def _mpeg_frame(header: bytes) -> tuple[int, int, int] | None:
    """(version bits, sample-rate index, frame length) of a valid MPEG Layer III frame header.

    Version bits: 3 = MPEG-1, 2 = MPEG-2, 0 = MPEG-2.5 (1 is reserved)."""
    if len(header) < 4 or header[0] != 0xFF or header[1] & 0xE0 != 0xE0:
        return None
    version, layer = (header[1] >> 3) & 3, (header[1] >> 1) & 3
    bitrate_index, rate_index = header[2] >> 4, (header[2] >> 2) & 3
    padding, emphasis = (header[2] >> 1) & 1, header[3] & 3
    if (version not in _SAMPLE_RATES or layer != 1 or bitrate_index in (0, 15)
            or rate_index == 3 or emphasis == 2):
        return None
    if version == 3:
        bitrate, factor = _MPEG1_L3_KBPS[bitrate_index] * 1000, 144
    else:
        bitrate, factor = _MPEG2_L3_KBPS[bitrate_index] * 1000, 72
    length = factor * bitrate // _SAMPLE_RATES[version][rate_index] + padding
    return version, rate_index, length


def _is_mpeg_audio_layer3(head: bytes) -> bool:
    """A Layer III frame header at the start and, when `head` reaches that far, the next
    frame header of the same stream (same version and sample rate) right after it."""
    first = _mpeg_frame(head[:4])
    if first is None:
        return False
    version, rate_index, length = first
    if len(head) < length + 4:
        return True  # a file (or head) too short to hold a second frame
    second = _mpeg_frame(head[length:length + 4])
    return second is not None and second[:2] == (version, rate_index)


# ---- ISO base media (MP4, M4A, HEIF, AVIF, QuickTime) ---------------------------------------

_M4A_BRANDS = frozenset({b"M4A ", b"M4B ", b"F4A "})
"""Audio-only by definition: an M4B audiobook may even carry a `vide` track of chapter
pictures, so these brands are not walked."""
_GENERIC_MP4_BRANDS = frozenset({
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"M4V ",
})
"""Audio or video: audio only when the track handlers say so."""
_REFUSED_BRANDS = frozenset({
    b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",  # HEIF
    b"avif", b"avis",  # AVIF
    b"qt  ",  # QuickTime
})
"""Refused wherever they appear, as the major brand or among the compatible ones."""
_VISUAL_HANDLERS = frozenset({b"vide", b"auxv", b"pict"})

MAX_FTYP_BYTES = 4096
MAX_BOXES = 1024
"""Boxes read at most in one file, so a file of tiny boxes cannot keep the walk busy."""


class _Malformed(Exception):
    """A box that does not fit its parent or the file."""


class _Budget:
    def __init__(self, boxes: int) -> None:
        self.left = boxes

    def spend(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise _Malformed("too many boxes")


def _boxes(read_at: ReadAt, start: int, end: int,
           budget: _Budget) -> Iterator[tuple[bytes, int, int]]:
    """(type, payload start, box end) of each box from `start` to `end`.

    Size 1 means a 64-bit size follows the type; size 0 means "to the end of the parent".
    Every box must fit in [start, end): anything else raises `_Malformed`."""
    offset = start
    while offset < end:
        budget.spend()
        header = read_at(offset, min(16, end - offset))
        if len(header) < 8:
            raise _Malformed("truncated box header")
        size32, kind = struct.unpack(">I4s", header[:8])
        header_len = 8
        if size32 == 1:
            if len(header) < 16:
                raise _Malformed("truncated largesize")
            box_size, header_len = struct.unpack(">Q", header[8:16])[0], 16
        elif size32 == 0:
            box_size = end - offset
        else:
            box_size = size32
        if box_size < header_len or box_size > end - offset:
            raise _Malformed("box size outside its parent")
        yield kind, offset + header_len, offset + box_size
        offset += box_size


def _children(read_at: ReadAt, start: int, end: int, budget: _Budget,
              kind: bytes) -> Iterator[tuple[int, int]]:
    for child, child_start, child_end in _boxes(read_at, start, end, budget):
        if child == kind:
            yield child_start, child_end


def _brands(read_at: ReadAt, size: int) -> list[bytes] | None:
    """Major brand then compatible brands of the leading `ftyp` box (minor version left out)."""
    head = read_at(0, 8)
    if len(head) < 8 or head[4:8] != b"ftyp":
        return None
    box_size = struct.unpack(">I", head[:4])[0]
    if not 16 <= box_size <= min(size, MAX_FTYP_BYTES) or box_size % 4:
        return None
    body = read_at(8, box_size - 8)
    if len(body) != box_size - 8:
        return None
    return [body[:4]] + [body[i:i + 4] for i in range(8, len(body), 4)]


def _handler_types(read_at: ReadAt, size: int) -> set[bytes]:
    """The handler types of the tracks of the first `moov` box (moov/trak/mdia/hdlr)."""
    budget = _Budget(MAX_BOXES)
    handlers: set[bytes] = set()
    for moov_start, moov_end in _children(read_at, 0, size, budget, b"moov"):
        for trak_start, trak_end in _children(read_at, moov_start, moov_end, budget, b"trak"):
            for mdia_start, mdia_end in _children(read_at, trak_start, trak_end, budget,
                                                  b"mdia"):
                for hdlr_start, hdlr_end in _children(read_at, mdia_start, mdia_end, budget,
                                                      b"hdlr"):
                    # version and flags (4), pre_defined (4), handler_type (4)
                    payload = read_at(hdlr_start, 12)
                    if hdlr_end - hdlr_start < 12 or len(payload) < 12:
                        raise _Malformed("truncated hdlr")
                    handlers.add(payload[8:12])
        break  # a file has one movie box; what follows it is not read
    return handlers


def _iso_media_type(read_at: ReadAt, size: int) -> str | None:
    """audio/mp4 for an M4A-family file, or an MP4 that has sound and no pictures."""
    brands = _brands(read_at, size)
    if brands is None or any(b in _REFUSED_BRANDS for b in brands):
        return None
    major = brands[0]
    if major in _M4A_BRANDS:
        return "audio/mp4"
    if major not in _GENERIC_MP4_BRANDS:
        return None
    try:
        handlers = _handler_types(read_at, size)
    except _Malformed:
        return None
    if b"soun" in handlers and not handlers & _VISUAL_HANDLERS:
        return "audio/mp4"
    return None
