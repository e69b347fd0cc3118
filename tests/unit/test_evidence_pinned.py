"""Evidence typing at its edges (rules.md §5): each byte boundary of the MP3 and ISO base
media checks, and each brand of the MP4 family, stated with hand-built files."""

from __future__ import annotations

import struct

import pytest

from collabdesk.domain.evidence import HEAD_BYTES, MAX_BOXES, MAX_FTYP_BYTES, sniff_media_type


def sniff(data: bytes) -> str | None:
    return sniff_media_type(data[:HEAD_BYTES], lambda offset, n: data[offset:offset + n],
                            len(data))


def box(kind: bytes, payload: bytes = b"") -> bytes:
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def ftyp(major: bytes, *compatible: bytes) -> bytes:
    return box(b"ftyp", major + bytes(4) + b"".join(compatible))


HDLR_SOUN = box(b"hdlr", bytes(8) + b"soun")  # the shortest hdlr: exactly 12 bytes of payload


def moov_with(hdlr_box: bytes = HDLR_SOUN, *, after_hdlr: bytes = b"") -> bytes:
    return box(b"moov", box(b"trak", box(b"mdia", hdlr_box + after_hdlr)))


def test_the_limits_are_1024_boxes_and_a_4096_byte_ftyp() -> None:
    assert (MAX_BOXES, MAX_FTYP_BYTES, HEAD_BYTES) == (1024, 4096, 4096)


# ---- MP3 ------------------------------------------------------------------------------------


def test_a_bare_10_byte_id3v2_header_is_mp3() -> None:
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00") == "audio/mpeg"


def test_an_id3_size_byte_with_its_high_bit_set_is_not_mp3() -> None:
    assert sniff(b"ID3\x04\x00\x00\x80\x00\x00\x00") is None
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x80") is None


def test_the_byte_after_the_id3_header_is_not_part_of_it() -> None:
    assert sniff(b"ID3\x04\x00\x00\x00\x00\x00\x00\x80") == "audio/mpeg"


def test_a_frame_without_the_ff_sync_byte_is_not_mp3() -> None:
    frame = b"\xfe\xfb\x90\x00" + b"\x55" * 413
    assert sniff(frame * 2) is None


def test_an_mpeg2_64k_22050_frame_is_208_bytes() -> None:
    # MPEG-2 Layer III (F3), 64 kbit/s at 22.05 kHz (80): 72 * 64000 // 22050 = 208 bytes.
    frame = b"\xff\xf3\x80\x00" + b"\x55" * 204
    assert sniff(frame * 2) == "audio/mpeg"
    assert sniff(frame + b"\x55" + frame) is None


def test_a_frame_followed_by_four_bytes_that_are_no_header_is_not_mp3() -> None:
    frame = b"\xff\xfb\x90\x00" + b"\x55" * 413  # MPEG-1 128 kbit/s 44.1 kHz: 417 bytes
    assert sniff(frame + bytes(4)) is None
    assert sniff(frame + bytes(3)) == "audio/mpeg"  # too short to hold a second header


def test_without_a_size_the_head_is_the_whole_file() -> None:
    data = ftyp(b"isom", b"isom") + moov_with()
    assert sniff_media_type(data, lambda offset, n: b"", None) == "audio/mp4"
    assert sniff_media_type(data, None, 10_000) == "audio/mp4"


# ---- the ftyp box ---------------------------------------------------------------------------


def test_a_16_byte_ftyp_that_is_the_whole_file_is_read() -> None:
    assert sniff(b"\x00\x00\x00\x10ftypM4A \x00\x00\x00\x00") == "audio/mp4"


def test_an_ftyp_of_exactly_4096_bytes_is_read_and_of_4100_is_not() -> None:
    def big_ftyp(size: int) -> bytes:
        return struct.pack(">I", size) + b"ftypM4A " + bytes(4) + b"mp42" * ((size - 16) // 4)
    assert sniff(big_ftyp(4096) + bytes(64)) == "audio/mp4"
    assert sniff(big_ftyp(4100) + bytes(64)) is None


def test_a_refused_brand_is_found_among_later_compatible_brands() -> None:
    assert sniff(ftyp(b"isom", b"qt  ", b"mp42") + moov_with()) is None
    assert sniff(ftyp(b"isom", b"mp42", b"avif", b"isom") + moov_with()) is None


def test_brands_are_read_four_bytes_at_a_time_not_across_their_edges() -> None:
    assert sniff(ftyp(b"isom", b"xhei", b"cabc") + moov_with()) == "audio/mp4"


@pytest.mark.parametrize("brand", [b"M4A ", b"M4B ", b"F4A "])
def test_an_audio_brand_is_audio_without_a_walk(brand: bytes) -> None:
    assert sniff(ftyp(brand) + box(b"mdat", bytes(8))) == "audio/mp4"


@pytest.mark.parametrize("brand", [
    b"isom", b"iso2", b"iso3", b"iso4", b"iso5", b"iso6", b"iso7", b"iso8", b"iso9",
    b"mp41", b"mp42", b"mp71", b"avc1", b"dash", b"M4V "])
def test_each_generic_mp4_brand_is_audio_when_its_tracks_are_sound_only(brand: bytes) -> None:
    assert sniff(ftyp(brand) + moov_with()) == "audio/mp4"
    assert sniff(ftyp(brand) + moov_with(box(b"hdlr", bytes(8) + b"vide"))) is None


@pytest.mark.parametrize("brand", [
    b"heic", b"heix", b"hevc", b"heim", b"heis", b"hevm", b"hevs", b"mif1", b"msf1",
    b"avif", b"avis", b"qt  "])
def test_each_heif_avif_and_quicktime_brand_is_refused(brand: bytes) -> None:
    assert sniff(ftyp(brand) + moov_with()) is None
    assert sniff(ftyp(b"M4A ", brand)) is None


@pytest.mark.parametrize("handler", [b"vide", b"auxv", b"pict"])
def test_each_picture_handler_makes_it_video(handler: bytes) -> None:
    data = ftyp(b"isom") + box(b"moov", box(b"trak", box(b"mdia", HDLR_SOUN))
                               + box(b"trak", box(b"mdia", box(b"hdlr", bytes(8) + handler))))
    assert sniff(data) is None


# ---- the box walk ---------------------------------------------------------------------------


def test_a_hdlr_of_exactly_12_bytes_is_read() -> None:
    assert sniff(ftyp(b"isom") + moov_with()) == "audio/mp4"


def test_a_hdlr_shorter_than_12_bytes_is_refused_whatever_follows_it() -> None:
    data = ftyp(b"isom") + moov_with(box(b"hdlr", bytes(8))) + b"soun" + bytes(8)
    assert sniff(data) is None


def test_an_empty_box_is_a_box() -> None:
    assert sniff(ftyp(b"isom") + box(b"free") + moov_with()) == "audio/mp4"
    assert sniff(ftyp(b"isom") + moov_with(after_hdlr=box(b"free"))) == "audio/mp4"


def test_a_box_smaller_than_its_header_breaks_the_walk() -> None:
    assert sniff(ftyp(b"isom") + struct.pack(">I", 4) + moov_with()) is None


def test_a_64_bit_size_box_has_a_16_byte_header() -> None:
    payload = box(b"trak", box(b"mdia", HDLR_SOUN))
    data = ftyp(b"isom") + struct.pack(">I", 1) + b"moov" + struct.pack(
        ">Q", 16 + len(payload)) + payload
    assert sniff(data) == "audio/mp4"


def test_a_child_box_may_not_reach_past_its_parent() -> None:
    trak = box(b"trak", box(b"mdia", HDLR_SOUN))
    too_long = struct.pack(">I", len(trak) + 8) + trak[4:]
    assert sniff(ftyp(b"isom") + box(b"moov", too_long) + box(b"free")) is None


def test_1024_boxes_are_walked_and_a_1025th_is_refused() -> None:
    # ftyp, the free boxes, then moov, trak, mdia and hdlr: 5 boxes and the free ones.
    def with_free(n: int) -> bytes:
        return ftyp(b"isom") + box(b"free") * n + moov_with()
    assert sniff(with_free(1019)) == "audio/mp4"  # 1024 boxes
    assert sniff(with_free(1020)) is None  # 1025 boxes


# ---- MP3 frame lengths: every bitrate and sample rate of Layer III --------------------------

# (second header byte, bitrate index, sample-rate index, frame length in bytes)
FRAMES = [
    # MPEG-1 (FB) at 44.1 kHz: 144 * kbit/s * 1000 // 44100, for 32 ... 320 kbit/s
    *[(0xFB, i, 0, n) for i, n in enumerate(
        [104, 130, 156, 182, 208, 261, 313, 365, 417, 522, 626, 731, 835, 1044], start=1)],
    # MPEG-2 (F3) at 22.05 kHz: 72 * kbit/s * 1000 // 22050, for 8 ... 160 kbit/s
    *[(0xF3, i, 0, n) for i, n in enumerate(
        [26, 52, 78, 104, 130, 156, 182, 208, 261, 313, 365, 417, 470, 522], start=1)],
    # 128 kbit/s MPEG-1 at 48 and 32 kHz; 64 kbit/s MPEG-2 at 24 and 16 kHz
    (0xFB, 9, 1, 384), (0xFB, 9, 2, 576), (0xF3, 8, 1, 192), (0xF3, 8, 2, 288),
    # MPEG-2.5 (E3), 32 kbit/s at 11.025, 12 and 8 kHz
    (0xE3, 4, 0, 208), (0xE3, 4, 1, 192), (0xE3, 4, 2, 288),
]


@pytest.mark.parametrize(("second", "bitrate", "rate", "length"), FRAMES)
def test_each_layer3_frame_has_the_standard_length(second: int, bitrate: int, rate: int,
                                                   length: int) -> None:
    frame = bytes([0xFF, second, bitrate << 4 | rate << 2, 0]) + b"\x55" * (length - 4)
    tail = b"\x55" * 1900
    assert sniff(frame * 2 + tail) == "audio/mpeg"
    assert sniff(frame + b"\x55" + frame + tail) is None
