"""Evidence types by content: real byte layouts built by hand (MPEG audio frames, ID3 tags,
ISO base media box trees, image and document signatures), fed to the pure sniffer, and
through the upload service on the in-memory evidence store. No I/O."""

from __future__ import annotations

import io
import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collabdesk.adapters.clock import FixedClock
from collabdesk.domain.errors import EvidenceTypeNotAllowed
from collabdesk.domain.evidence import (
    ALLOWED_MEDIA_TYPES,
    HEAD_BYTES,
    MAX_BOXES,
    sniff_media_type,
)
from collabdesk.domain.states import Role
from collabdesk.domain.values import Actor
from collabdesk.services import evidence
from collabdesk.services.evidence_port import MAX_READ_AT
from tests.fakes import FakeEvidenceStore, fake_context


class CountingFile:
    """A file in memory that counts the reads the sniffer makes."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.reads = 0

    def read_at(self, offset: int, size: int) -> bytes:
        assert offset >= 0
        assert 0 <= size <= MAX_READ_AT  # the bound of EvidenceStore.read_at
        self.reads += 1
        return self.data[offset:offset + size]


def sniff(data: bytes) -> str | None:
    """What the upload service does: the head, plus reads anywhere in the file."""
    return sniff_media_type(data[:HEAD_BYTES], CountingFile(data).read_at, len(data))


# ---- the allowed list -----------------------------------------------------------------------

def test_the_allowed_types_are_those_of_the_api_contract_and_video_is_not_one() -> None:
    assert ALLOWED_MEDIA_TYPES == (
        "image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf",
        "audio/mpeg", "audio/mp4", "audio/amr", "audio/wav", "text/plain")
    assert "video/mp4" not in ALLOWED_MEDIA_TYPES


# ---- MP3 ------------------------------------------------------------------------------------

# MPEG-1 Layer III, no CRC (FF FB), 128 kbit/s, 44.1 kHz, no padding (90), no emphasis (00):
# 144 * 128000 // 44100 = 417 bytes a frame, header included.
MPEG1_128K = b"\xff\xfb\x90\x00"
MPEG1_128K_LENGTH = 417


def mpeg_frame(header: bytes, length: int) -> bytes:
    return header + b"\x55" * (length - len(header))


def test_a_pair_of_mpeg1_layer3_frames_is_mp3() -> None:
    data = mpeg_frame(MPEG1_128K, MPEG1_128K_LENGTH) * 2
    assert sniff(data) == "audio/mpeg"


def test_a_padded_frame_is_one_byte_longer() -> None:
    padded = b"\xff\xfb\x92\x00"  # padding bit set: 418 bytes
    data = mpeg_frame(padded, 418) + mpeg_frame(MPEG1_128K, MPEG1_128K_LENGTH)
    assert sniff(data) == "audio/mpeg"
    assert sniff(mpeg_frame(padded, 417) + mpeg_frame(MPEG1_128K, 417) + bytes(8)) is None


def test_mpeg2_and_mpeg25_layer3_frame_pairs_are_mp3() -> None:
    # MPEG-2 (F3), 32 kbit/s, 16 kHz (48): 72 * 32000 // 16000 = 144 bytes.
    assert sniff(mpeg_frame(b"\xff\xf3\x48\xc4", 144) * 3) == "audio/mpeg"
    # MPEG-2.5 (E3), 8 kbit/s, 8 kHz (18): 72 * 8000 // 8000 = 72 bytes.
    assert sniff(mpeg_frame(b"\xff\xe3\x18\xc4", 72) * 3) == "audio/mpeg"


def test_a_frame_header_not_followed_by_a_second_frame_is_not_mp3() -> None:
    data = mpeg_frame(MPEG1_128K, MPEG1_128K_LENGTH) + b"\x00" * 600
    assert sniff(data) is None


def test_the_second_frame_must_have_the_sample_rate_of_the_first() -> None:
    at_48k = b"\xff\xfb\x94\x00"  # same bitrate, 48 kHz
    assert sniff(mpeg_frame(MPEG1_128K, MPEG1_128K_LENGTH) + mpeg_frame(at_48k, 384)) is None


def test_a_file_too_short_for_a_second_frame_is_judged_by_its_first_header() -> None:
    assert sniff(MPEG1_128K + b"\x00" * 100) == "audio/mpeg"


@pytest.mark.parametrize("header", [
    pytest.param(b"\xff\xff\x90\x00", id="layer-1"),
    pytest.param(b"\xff\xfd\x90\x00", id="layer-2"),
    pytest.param(b"\xff\xf9\x90\x00", id="layer-bits-00-reserved"),
    pytest.param(b"\xff\xeb\x90\x00", id="version-bits-01-reserved"),
    pytest.param(b"\xff\xfb\x00\x00", id="bitrate-0000-free-format"),
    pytest.param(b"\xff\xfb\xf0\x00", id="bitrate-1111-bad"),
    pytest.param(b"\xff\xfb\x9c\x00", id="sample-rate-11-reserved"),
    pytest.param(b"\xff\xfb\x90\x02", id="emphasis-10-reserved"),
    pytest.param(b"\xff\xf1\x50\x80", id="aac-adts"),
])
def test_a_header_that_is_not_a_valid_layer3_frame_is_not_mp3(header: bytes) -> None:
    assert sniff(mpeg_frame(header, MPEG1_128K_LENGTH) * 2) is None
    assert sniff(header + bytes(16)) is None


TEXT = "通话记录：消费者同意部分退款。\nCall log: partial refund agreed.\n"


def test_utf16_little_endian_text_is_not_audio() -> None:
    data = b"\xff\xfe" + TEXT.encode("utf-16-le")
    assert data[:4] == b"\xff\xfe\x1a\x90"  # what the loose frame-sync test took for MP3
    assert sniff(data) is None


def test_utf16_big_endian_text_is_not_audio() -> None:
    data = b"\xfe\xff" + TEXT.encode("utf-16-be")
    assert sniff(data) is None


def id3_header(major: int = 4, revision: int = 0, flags: int = 0,
               size: bytes = b"\x00\x00\x02\x01") -> bytes:
    return b"ID3" + bytes([major, revision, flags]) + size


@pytest.mark.parametrize("major", [2, 3, 4])
def test_an_id3v2_tag_is_mp3(major: int) -> None:
    data = id3_header(major) + bytes(257) + mpeg_frame(MPEG1_128K, MPEG1_128K_LENGTH) * 2
    assert sniff(data) == "audio/mpeg"


@pytest.mark.parametrize("header", [
    pytest.param(id3_header(major=1), id="version-1"),
    pytest.param(id3_header(major=5), id="version-5"),
    pytest.param(id3_header(revision=0xFF), id="revision-ff"),
    pytest.param(id3_header(size=b"\x00\x00\x80\x00"), id="size-not-syncsafe"),
])
def test_an_invalid_id3_header_is_not_mp3(header: bytes) -> None:
    assert sniff(header + b"\x00" * 64) is None


def test_a_file_cut_inside_its_id3_header_is_not_mp3() -> None:
    assert sniff(b"ID3\x04\x00\x00\x00") is None


# ---- ISO base media: M4A, MP4, HEIF, AVIF, QuickTime -----------------------------------------

def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def large_box(kind: bytes, payload: bytes) -> bytes:
    """A box with size 1 and a 64-bit largesize after its type."""
    return struct.pack(">I", 1) + kind + struct.pack(">Q", 16 + len(payload)) + payload


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + struct.pack(">I", 0x200) + b"".join(compatible))


def hdlr(handler: bytes) -> bytes:
    # version and flags, pre_defined, handler_type, 3 reserved words, name
    return box(b"hdlr", bytes(4) + bytes(4) + handler + bytes(12) + b"Handler\x00")


def trak(handler: bytes) -> bytes:
    mdia = box(b"mdia", box(b"mdhd", bytes(24)) + hdlr(handler) + box(b"minf", bytes(16)))
    return box(b"trak", box(b"tkhd", bytes(84)) + mdia)


def moov(*handlers: bytes) -> bytes:
    return box(b"moov", box(b"mvhd", bytes(100)) + b"".join(trak(h) for h in handlers))


def mdat(size: int = 256) -> bytes:
    return box(b"mdat", b"\xaa" * size)


def test_an_m4a_file_is_mp4_audio() -> None:
    data = ftyp(b"M4A ", b"M4A ", b"mp42", b"isom") + moov(b"soun") + mdat()
    assert sniff(data) == "audio/mp4"


@pytest.mark.parametrize("brand", [b"M4A ", b"M4B ", b"F4A "])
def test_an_m4a_family_brand_is_mp4_audio_by_itself(brand: bytes) -> None:
    assert sniff(ftyp(brand, brand, b"isom") + mdat()) == "audio/mp4"


def test_an_isom_mp4_with_only_a_sound_track_is_mp4_audio() -> None:
    data = ftyp(b"isom", b"isom", b"iso2", b"mp41") + moov(b"soun") + mdat()
    assert sniff(data) == "audio/mp4"


@pytest.mark.parametrize("brand", [b"iso2", b"iso6", b"mp41", b"mp42", b"mp71", b"avc1",
                                   b"dash", b"M4V "])
def test_a_generic_mp4_brand_is_mp4_audio_when_it_holds_sound_only(brand: bytes) -> None:
    assert sniff(ftyp(brand, b"isom") + moov(b"soun") + mdat()) == "audio/mp4"
    assert sniff(ftyp(brand, b"isom") + moov(b"soun", b"vide") + mdat()) is None


def test_an_mp4_with_a_video_track_is_refused() -> None:
    assert sniff(ftyp(b"isom", b"isom", b"avc1") + moov(b"vide", b"soun") + mdat()) is None
    assert sniff(ftyp(b"mp42", b"isom") + moov(b"soun", b"vide") + mdat()) is None


def test_an_mp4_with_only_a_video_track_is_refused() -> None:
    assert sniff(ftyp(b"isom", b"isom") + moov(b"vide") + mdat()) is None


@pytest.mark.parametrize("handler", [b"auxv", b"pict"])
def test_other_picture_tracks_count_as_video(handler: bytes) -> None:
    assert sniff(ftyp(b"isom", b"isom") + moov(b"soun", handler) + mdat()) is None


def test_a_chapter_text_track_beside_the_sound_is_still_audio() -> None:
    assert sniff(ftyp(b"mp42", b"isom") + moov(b"soun", b"text") + mdat()) == "audio/mp4"


def test_an_mp4_without_a_sound_track_is_refused() -> None:
    assert sniff(ftyp(b"isom", b"isom") + mdat()) is None  # no moov at all
    assert sniff(ftyp(b"isom", b"isom") + moov() + mdat()) is None  # no track
    assert sniff(ftyp(b"isom", b"isom") + moov(b"meta") + mdat()) is None


def test_a_moov_box_after_the_media_data_is_found_when_audio_only() -> None:
    data = ftyp(b"isom", b"isom", b"mp41") + mdat(200_000) + moov(b"soun")
    assert data.find(b"moov") > HEAD_BYTES
    assert sniff(data) == "audio/mp4"
    assert sniff(ftyp(b"isom", b"isom") + mdat(200_000) + moov(b"soun", b"vide")) is None


def test_the_head_alone_does_not_see_a_moov_box_beyond_it() -> None:
    data = ftyp(b"isom", b"isom") + mdat(200_000) + moov(b"soun")
    assert sniff_media_type(data[:HEAD_BYTES]) is None


def test_a_64_bit_box_size_is_followed() -> None:
    data = ftyp(b"isom", b"isom") + large_box(b"mdat", b"\xaa" * 5000) + moov(b"soun")
    assert sniff(data) == "audio/mp4"


def test_a_last_box_of_size_0_runs_to_the_end_of_the_file() -> None:
    tail = moov(b"soun")
    assert sniff(ftyp(b"isom", b"isom") + mdat() + bytes(4) + tail[4:]) == "audio/mp4"
    media = b"\x00\x00\x00\x00mdat" + b"\xaa" * 300
    assert sniff(ftyp(b"isom", b"isom") + moov(b"soun") + media) == "audio/mp4"


def test_only_the_first_movie_box_counts() -> None:
    data = ftyp(b"isom", b"isom") + moov(b"soun") + mdat() + moov(b"vide")
    assert sniff(data) == "audio/mp4"


@pytest.mark.parametrize("brand", [b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm",
                                   b"hevs", b"mif1", b"msf1"])
def test_a_heic_or_heif_image_is_refused(brand: bytes) -> None:
    image = ftyp(brand, b"mif1", b"heic") + box(b"meta", bytes(4) + hdlr(b"pict")) + mdat()
    assert sniff(image) is None
    assert sniff(ftyp(brand, b"isom") + moov(b"soun") + mdat()) is None


@pytest.mark.parametrize("brand", [b"avif", b"avis"])
def test_an_avif_image_is_refused(brand: bytes) -> None:
    image = ftyp(brand, b"avif", b"mif1", b"miaf") + box(b"meta", bytes(4) + hdlr(b"pict"))
    assert sniff(image + mdat()) is None
    assert sniff(ftyp(brand, b"isom") + moov(b"soun") + mdat()) is None


def test_a_quicktime_movie_is_refused_even_with_sound_only() -> None:
    assert sniff(ftyp(b"qt  ", b"qt  ") + moov(b"soun", b"vide") + mdat()) is None
    assert sniff(ftyp(b"qt  ", b"qt  ") + moov(b"soun") + mdat()) is None


def test_a_quicktime_movie_without_ftyp_is_refused() -> None:
    assert sniff(box(b"wide") + mdat() + moov(b"soun")) is None
    assert sniff(moov(b"soun") + mdat()) is None


@pytest.mark.parametrize("brand", [b"avif", b"heic", b"mif1", b"qt  "])
def test_a_refused_brand_among_the_compatible_ones_is_refused(brand: bytes) -> None:
    assert sniff(ftyp(b"isom", b"isom", brand) + moov(b"soun") + mdat()) is None
    assert sniff(ftyp(b"M4A ", b"M4A ", brand) + moov(b"soun") + mdat()) is None


@pytest.mark.parametrize("brand", [b"3gp4", b"3g2a", b"M4P ", b"crx ", b"\x00\x00\x00\x00"])
def test_a_brand_outside_the_mp4_family_is_refused(brand: bytes) -> None:
    assert sniff(ftyp(brand, b"isom", b"mp42") + moov(b"soun") + mdat()) is None


# ---- hostile box trees: refused, never an exception, never a long walk ------------------------

GOOD = ftyp(b"isom", b"isom") + mdat(5000) + moov(b"soun")


MALFORMED = {
    "box-smaller-than-its-header": ftyp(b"isom") + b"\x00\x00\x00\x04mdat" + moov(b"soun"),
    "box-past-the-end-of-the-file": ftyp(b"isom") + b"\x00\x01\x00\x00mdat" + moov(b"soun"),
    "largesize-smaller-than-its-header": (ftyp(b"isom") + b"\x00\x00\x00\x01mdat"
                                          + struct.pack(">Q", 8) + moov(b"soun")),
    "largesize-beyond-any-file": (ftyp(b"isom") + b"\x00\x00\x00\x01mdat"
                                  + struct.pack(">Q", 2**64 - 1) + moov(b"soun")),
    "largesize-cut-off": ftyp(b"isom") + b"\x00\x00\x00\x01mdat\x00\x00",
    "trak-larger-than-its-moov": ftyp(b"isom") + box(
        b"moov", struct.pack(">I", 10_000) + trak(b"soun")[4:]) + mdat(),
    "stray-bytes-after-the-last-trak": ftyp(b"isom") + box(
        b"moov", trak(b"soun") + b"\x00\x00\x00") + mdat(),
    "hdlr-too-short": ftyp(b"isom") + box(b"moov", box(b"trak", box(b"mdia", box(
        b"hdlr", b"\x00" * 6)))) + mdat(),
    "file-cut-in-the-moov": GOOD[:-40],
    "file-cut-in-the-mdat": GOOD[:2000],
}

BAD_FTYP = {
    "ftyp-without-minor-version": b"\x00\x00\x00\x0cftypisom" + moov(b"soun"),
    "ftyp-size-not-whole-brands": b"\x00\x00\x00\x12ftypisom\x00\x00\x00\x00\x00\x00",
    "ftyp-size-0": b"\x00\x00\x00\x00ftypisom\x00\x00\x00\x00" + moov(b"soun"),
    "ftyp-size-1": b"\x00\x00\x00\x01ftypisom" + struct.pack(">Q", 24) + moov(b"soun"),
    "ftyp-larger-than-the-file": b"\x00\x00\x01\x00ftypisom\x00\x00\x00\x00" + bytes(8),
    "ftyp-of-two-thousand-brands": (struct.pack(">I", 16 + 4 * 2000) + b"ftypisom"
                                    + bytes(4) + b"isom" * 2000 + moov(b"soun")),
    "ftyp-header-only": b"\x00\x00\x00\x18ftyp",
}


@pytest.mark.parametrize("data", list(MALFORMED.values()), ids=list(MALFORMED))
def test_a_malformed_box_tree_is_refused(data: bytes) -> None:
    assert sniff(data) is None


@pytest.mark.parametrize("data", list(BAD_FTYP.values()), ids=list(BAD_FTYP))
def test_a_malformed_ftyp_box_is_refused(data: bytes) -> None:
    assert sniff(data) is None


def test_the_good_file_of_the_malformed_cases_is_accepted() -> None:
    assert sniff(GOOD) == "audio/mp4"


def test_a_file_of_countless_tiny_boxes_is_refused_after_a_bounded_walk() -> None:
    data = ftyp(b"isom", b"isom") + box(b"free") * 100_000 + moov(b"soun")
    file = CountingFile(data)
    assert sniff_media_type(data[:HEAD_BYTES], file.read_at, len(data)) is None
    assert file.reads <= MAX_BOXES + 2


def test_tracks_beyond_the_box_budget_are_not_read() -> None:
    data = ftyp(b"isom", b"isom") + box(b"moov", trak(b"soun") * 5000)
    file = CountingFile(data)
    assert sniff_media_type(data[:HEAD_BYTES], file.read_at, len(data)) is None
    assert file.reads < 2 * MAX_BOXES  # a box header each, and a hdlr per track


@settings(max_examples=300, deadline=None)
@given(tail=st.binary(max_size=600))
def test_any_bytes_after_an_ftyp_box_give_audio_mp4_or_nothing(tail: bytes) -> None:
    data = ftyp(b"isom", b"isom") + tail
    file = CountingFile(data)
    assert sniff_media_type(data[:HEAD_BYTES], file.read_at, len(data)) in (None, "audio/mp4")
    assert file.reads <= MAX_BOXES + 2


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_a_corrupted_mp4_never_raises_and_never_walks_far(data: st.DataObject) -> None:
    content = bytearray(ftyp(b"mp42", b"isom") + mdat(64) + moov(b"soun", b"vide"))
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(content) - 1))
        content[at] = data.draw(st.integers(0, 255))
    kept = bytes(content[:data.draw(st.integers(0, len(content)))])
    file = CountingFile(kept)
    found = sniff_media_type(kept[:HEAD_BYTES], file.read_at, len(kept))
    assert found is None or found in ALLOWED_MEDIA_TYPES
    assert file.reads <= MAX_BOXES + 2


# ---- images, documents, other audio ---------------------------------------------------------

SAMPLES = {
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06",
            "image/png"),
    "jpeg-jfif": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01", "image/jpeg"),
    "jpeg-exif": (b"\xff\xd8\xff\xe1\x00\x18Exif\x00\x00", "image/jpeg"),
    "gif87a": (b"GIF87a\x01\x00\x01\x00\x80\x00\x00", "image/gif"),
    "gif89a": (b"GIF89a\x01\x00\x01\x00\x80\x00\x00", "image/gif"),
    "webp-lossy": (b"RIFF\x24\x00\x00\x00WEBPVP8 \x18\x00\x00\x00", "image/webp"),
    "webp-lossless": (b"RIFF\x1a\x00\x00\x00WEBPVP8L\x0d\x00\x00\x00\x2f", "image/webp"),
    "webp-extended": (b"RIFF\x4a\x00\x00\x00WEBPVP8X\x0a\x00\x00\x00", "image/webp"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n", "application/pdf"),
    "amr-nb": (b"#!AMR\n\x3c\x48\xf5\x1f", "audio/amr"),
    "amr-wb": (b"#!AMR-WB\n\x04\x10\x20", "audio/amr"),
    "wav": (b"RIFF\x24\x08\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00", "audio/wav"),
}


@pytest.mark.parametrize(("head", "media_type"), list(SAMPLES.values()), ids=list(SAMPLES))
def test_each_allowed_image_document_and_audio_signature_is_recognised(
        head: bytes, media_type: str) -> None:
    assert sniff(head + bytes(64)) == media_type
    assert media_type in ALLOWED_MEDIA_TYPES


@pytest.mark.parametrize("data", [
    pytest.param(b"RIFF\x24\x00\x00\x00WEBPJUNK" + bytes(32), id="webp-without-vp8-chunk"),
    pytest.param(b"RIFF\x24\x00\x00\x00WEBP", id="webp-header-only"),
    pytest.param(b"RIFF\x24\x00\x00\x00AVI LIST" + bytes(32), id="avi"),
    pytest.param(b"\x1aE\xdf\xa3" + bytes(32), id="matroska-webm"),
    pytest.param(b"OggS\x00\x02" + bytes(32), id="ogg"),
    pytest.param(b"fLaC\x00\x00\x00\x22" + bytes(32), id="flac"),
])
def test_other_riff_and_media_containers_are_refused(data: bytes) -> None:
    assert sniff(data) is None


# ---- through the upload service, on the in-memory store -------------------------------------

AGENT = Actor(id="acc-agent", role=Role.MERCHANT_AGENT, store_id="s-tmall")


def test_the_upload_reads_past_the_head_for_a_moov_box_at_the_end(clock: FixedClock) -> None:
    ctx = fake_context(clock)
    store = ctx.evidence_store
    assert isinstance(store, FakeEvidenceStore)
    content = ftyp(b"isom", b"isom", b"mp41") + mdat(50_000) + moov(b"soun")
    record = evidence.upload(ctx, AGENT, io.BytesIO(content), "voice.mp4")
    assert record.media_type == "audio/mp4"
    assert store.reads > 0
    assert store.published == {record.sha256: content}


@pytest.mark.parametrize("content", [
    pytest.param(b"\xff\xfe" + TEXT.encode("utf-16-le"), id="utf16-le-text"),
    pytest.param(b"\xfe\xff" + TEXT.encode("utf-16-be"), id="utf16-be-text"),
    pytest.param(ftyp(b"isom", b"isom") + mdat(50_000) + moov(b"soun", b"vide"), id="video"),
    pytest.param(ftyp(b"heic", b"mif1", b"heic") + mdat(), id="heic"),
])
def test_a_refused_upload_leaves_nothing_behind(clock: FixedClock, content: bytes) -> None:
    ctx = fake_context(clock)
    store = ctx.evidence_store
    assert isinstance(store, FakeEvidenceStore)
    with pytest.raises(EvidenceTypeNotAllowed):
        evidence.upload(ctx, AGENT, io.BytesIO(content), "upload.bin")
    assert store.staged == {}
    assert store.published == {}


def test_utf8_text_with_a_byte_order_mark_is_plain_text(clock: FixedClock) -> None:
    ctx = fake_context(clock)
    content = b"\xef\xbb\xbf" + TEXT.encode()
    record = evidence.upload(ctx, AGENT, io.BytesIO(content), "chat.txt")
    assert record.media_type == "text/plain"
