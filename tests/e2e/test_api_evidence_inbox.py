"""API tests over HTTP: evidence upload and download, the in-app inbox, the delivery log,
and the notification endpoints of api.md (webhooks, notification check)."""

from __future__ import annotations

import hashlib
import struct
import zlib
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from httpx2 import Response

from collabdesk.services.context import ServiceContext
from tests.conftest import START
from tests.e2e.http_world import (
    JSON,
    HttpWorld,
    assert_problem,
    build_world,
    iso,
    ok,
)

HOUR = 3600


@pytest.fixture
def world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    return build_world(client, ctx)


def png_bytes() -> bytes:
    """A real 1x1 RGBA PNG."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))
    header = struct.pack(">IIBBBBB", 1, 1, 8, 6, 0, 0, 0)
    pixels = zlib.compress(b"\x00\xff\x00\x00\xff")
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
            + chunk(b"IEND", b""))


def pdf_bytes() -> bytes:
    """A minimal one-page PDF."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>",
               b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
               b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] >>"]
    out = b"%PDF-1.4\n"
    offsets = []
    for n, obj in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % n + obj + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 4\n0000000000 65535 f \n"
    out += b"".join(b"%010d 00000 n \n" % o for o in offsets)
    out += b"trailer\n<< /Size 4 /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % xref
    return out


TEXT = "聊天记录：消费者同意部分退款 30 元。\nChat log: partial refund agreed.\n".encode()
ZIP = b"PK\x03\x04\x14\x00\x00\x00\x08\x00" + bytes(range(256)) * 2
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\x00" * 200


def upload(world: HttpWorld, who: str, content: bytes, filename: str = "f.bin") -> Response:
    return world.client.post("/v1/evidence", files={"file": (filename, content)},
                             headers=world.headers(who))


# ---- upload ---------------------------------------------------------------------------------

def test_upload_answers_the_evidence_record(world: HttpWorld) -> None:
    for content, filename, media_type in ((png_bytes(), "photo.png", "image/png"),
                                          (pdf_bytes(), "invoice.pdf", "application/pdf"),
                                          (TEXT, "chat.txt", "text/plain")):
        record = ok(upload(world, "agent", content, filename), 201)
        assert record["id"]
        assert record["sha256"] == hashlib.sha256(content).hexdigest()
        assert record["media_type"].split(";")[0] == media_type
        assert record["size"] == len(content)
        assert record["filename"] == filename


def test_every_allowed_kind_of_content_is_accepted(world: HttpWorld) -> None:
    samples = {
        "image/jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 64,
        "image/gif": b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 32,
        "image/webp": b"RIFF\x24\x00\x00\x00WEBPVP8 " + b"\x00" * 32,
        "audio/wav": b"RIFF\x24\x00\x00\x00WAVEfmt " + b"\x00" * 32,
        "audio/mpeg": b"ID3\x04\x00\x00\x00\x00\x00\x00" + b"\x00" * 32,
        "audio/mp4": b"\x00\x00\x00\x20ftypM4A \x00\x00\x00\x00" + b"\x00" * 32,
        "audio/amr": b"#!AMR\n" + b"\x3c" * 32,
    }
    for media_type, content in samples.items():
        record = ok(upload(world, "agent", content, "recording.bin"), 201)
        assert record["media_type"] == media_type


def test_type_is_taken_from_the_content_not_the_name(world: HttpWorld) -> None:
    assert ok(upload(world, "agent", png_bytes(), "notes.txt"), 201)["media_type"] == (
        "image/png")
    assert_problem(upload(world, "agent", ZIP, "photo.png"), 415, "evidence_type_not_allowed")


def test_content_of_another_type_is_refused_with_evidence_type_not_allowed(
        world: HttpWorld) -> None:
    for name, content in (("zip", ZIP), ("exe", EXE),
                          ("latin-1", b"latin-1 caf\xe9 cr\xe8me \x01\x02"),
                          ("empty", b"")):
        assert_problem(upload(world, "agent", content, "upload.bin"), 415,
                       "evidence_type_not_allowed", name)


def box(kind: bytes, payload: bytes = b"") -> bytes:
    """An ISO base media box (MP4, HEIF, QuickTime)."""
    return struct.pack(">I", 8 + len(payload)) + kind + payload


def iso_media(major: bytes, compatible: tuple[bytes, ...], handlers: tuple[bytes, ...],
              media_bytes: int = 256, moov_last: bool = False) -> bytes:
    """ftyp, then a moov box with one moov/trak/mdia/hdlr track per handler, and an mdat."""
    ftyp = box(b"ftyp", major + b"\x00\x00\x02\x00" + b"".join(compatible))
    traks = b"".join(box(b"trak", box(b"tkhd", bytes(84)) + box(b"mdia", box(
        b"hdlr", bytes(8) + handler + bytes(12) + b"Handler\x00"))) for handler in handlers)
    moov = box(b"moov", box(b"mvhd", bytes(100)) + traks)
    mdat = box(b"mdat", b"\xaa" * media_bytes)
    return ftyp + mdat + moov if moov_last else ftyp + moov + mdat


HEIC = iso_media(b"heic", (b"mif1", b"heic"), ()) + box(b"meta", bytes(4))
AVIF = iso_media(b"avif", (b"avif", b"mif1", b"miaf"), ()) + box(b"meta", bytes(4))
QUICKTIME = iso_media(b"qt  ", (b"qt  ",), (b"vide", b"soun"))
VIDEO_MP4 = iso_media(b"isom", (b"isom", b"iso2", b"avc1", b"mp41"), (b"vide", b"soun"))
AUDIO_MP4 = iso_media(b"isom", (b"isom", b"iso2", b"mp41"), (b"soun",), media_bytes=100_000,
                      moov_last=True)
UTF16_TEXT = {"utf-16-le": b"\xff\xfe" + TEXT.decode().encode("utf-16-le"),
              "utf-16-be": b"\xfe\xff" + TEXT.decode().encode("utf-16-be")}


def test_images_movies_and_video_in_mp4_like_containers_are_refused(world: HttpWorld) -> None:
    for name, content, filename in (("heic", HEIC, "IMG_0001.heic"),
                                    ("avif", AVIF, "photo.avif"),
                                    ("quicktime", QUICKTIME, "clip.mov"),
                                    ("video-mp4", VIDEO_MP4, "clip.mp4"),
                                    ("heic-named-m4a", HEIC, "call.m4a")):
        assert_problem(upload(world, "agent", content, filename), 415,
                       "evidence_type_not_allowed", name)


def test_utf16_text_is_refused_not_taken_for_mp3(world: HttpWorld) -> None:
    for name, content in UTF16_TEXT.items():
        assert_problem(upload(world, "agent", content, "chat.txt"), 415,
                       "evidence_type_not_allowed", name)


def test_an_mp4_holding_only_sound_is_accepted_as_mp4_audio(world: HttpWorld) -> None:
    record = ok(upload(world, "agent", AUDIO_MP4, "call-recording.mp4"), 201)
    assert record["media_type"] == "audio/mp4"
    assert record["size"] == len(AUDIO_MP4)
    response = world.get("agent", f"/v1/evidence/{record['id']}")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("audio/mp4")
    assert response.content == AUDIO_MP4


def test_upload_with_an_idempotency_key_is_stored_once(world: HttpWorld) -> None:
    key = {"Idempotency-Key": "upload-1"}
    first = world.client.post("/v1/evidence", files={"file": ("a.png", png_bytes())},
                              headers=world.headers("agent", key))
    second = world.client.post("/v1/evidence", files={"file": ("a.png", png_bytes())},
                               headers=world.headers("agent", key))
    assert ok(first, 201)["id"] == ok(second, 201)["id"]  # a new multipart boundary each time
    other = world.client.post("/v1/evidence", files={"file": ("b.pdf", pdf_bytes())},
                              headers=world.headers("agent", key))
    assert_problem(other, 409, "idempotency_key_reused")
    third = ok(upload(world, "agent", png_bytes(), "a.png"), 201)
    assert third["id"] != ok(first, 201)["id"]
    assert third["sha256"] == ok(first, 201)["sha256"]


def test_file_over_the_limit_is_refused_with_evidence_too_large(
        world: HttpWorld, ctx: ServiceContext) -> None:
    ctx.evidence_max_bytes = 1024
    at_limit = TEXT + b"." * (1024 - len(TEXT))
    assert ok(upload(world, "agent", at_limit, "ok.txt"), 201)["size"] == 1024
    assert_problem(upload(world, "agent", at_limit + b".", "big.txt"), 413,
                   "evidence_too_large")


def test_upload_without_the_file_field_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    response = world.client.post("/v1/evidence", files={"document": ("a.txt", TEXT)},
                                 headers=world.headers("agent"))
    assert_problem(response, 422, "validation_error")


def test_upload_needs_a_token(client: TestClient) -> None:
    response = client.post("/v1/evidence", files={"file": ("a.txt", TEXT)})
    assert response.status_code == 401


# ---- download -----------------------------------------------------------------------------

def test_uploader_downloads_the_exact_bytes(world: HttpWorld) -> None:
    content = png_bytes()
    evidence_id = ok(upload(world, "consumer", content, "photo.png"), 201)["id"]
    response = world.get("consumer", f"/v1/evidence/{evidence_id}")
    assert response.status_code == 200
    assert response.content == content
    assert response.headers["content-type"].startswith("image/png")


def test_unattached_evidence_is_not_found_for_everyone_but_the_uploader(
        world: HttpWorld) -> None:
    evidence_id = ok(upload(world, "agent", TEXT), 201)["id"]
    for who in ("consumer", "owner", "other_owner"):
        assert_problem(world.get(who, f"/v1/evidence/{evidence_id}"), 404, "not_found")


def test_attached_evidence_is_downloaded_by_the_parties_of_its_work_order(
        world: HttpWorld) -> None:
    wo = world.open()
    evidence_id = ok(upload(world, "agent", pdf_bytes(), "call.pdf"), 201)["id"]
    ok(world.contact(wo["id"], outcome="unreachable", evidence_ids=[evidence_id]), 201)
    for who in ("consumer", "owner", "agent", "verifier", "adjudicator"):
        response = world.get(who, f"/v1/evidence/{evidence_id}")
        assert response.status_code == 200, (who, response.text)
        assert response.content == pdf_bytes()
    for who in ("consumer2", "other_owner"):
        assert_problem(world.get(who, f"/v1/evidence/{evidence_id}"), 404, "not_found")
    # Attached evidence can never be deleted (rules.md §5).
    deleted = world.client.delete(f"/v1/evidence/{evidence_id}", headers=world.headers("agent"))
    assert deleted.status_code == 405
    assert world.get("agent", f"/v1/evidence/{evidence_id}").content == pdf_bytes()


def test_someone_elses_unattached_evidence_cannot_be_cited(world: HttpWorld) -> None:
    wo = world.open()
    foreign = ok(upload(world, "consumer2", TEXT), 201)["id"]
    response = world.contact(wo["id"], evidence_ids=[foreign])
    assert_problem(response, 422, "validation_error")


def test_unknown_evidence_is_not_found(world: HttpWorld) -> None:
    assert_problem(world.get("triage", "/v1/evidence/ev_missing"), 404, "not_found")


# ---- inbox --------------------------------------------------------------------------------

def inbox(world: HttpWorld, who: str) -> list[JSON]:
    items: list[JSON] = ok(world.get(who, "/v1/inbox"))["items"]
    return items


def kinds(world: HttpWorld, who: str) -> list[str]:
    return [i["kind"] for i in inbox(world, who)]


def test_work_order_card_reaches_the_store_inbox(world: HttpWorld) -> None:
    wo = world.open()
    items = inbox(world, "agent")
    assert len(items) == 1
    card = items[0]
    assert {"id", "kind", "work_order_id", "created_at", "text", "read"} <= card.keys()
    assert card["kind"] == "work_order_created"
    assert card["work_order_id"] == wo["id"]
    assert card["created_at"] == "2026-11-02T08:00:00Z"
    assert card["text"]
    assert card["read"] is False
    assert kinds(world, "other_owner") == []


def test_reminders_at_12h_and_2h_before_due_then_the_timeout_notice(
        world: HttpWorld) -> None:
    wo = world.open()
    assert world.advance(12 * HOUR - 1)["fired"] == 0
    assert world.advance(1)["fired"] == 1
    assert kinds(world, "agent") == ["reminder", "work_order_created"]
    assert world.advance(10 * HOUR)["fired"] == 1
    assert world.advance(2 * HOUR)["fired"] == 1
    items = inbox(world, "agent")
    assert [i["kind"] for i in items] == ["timeout", "reminder", "reminder",
                                          "work_order_created"]
    assert [i["created_at"] for i in items] == [
        iso(START + timedelta(hours=h)).replace("+00:00", "Z") for h in (24, 22, 12, 0)]
    assert all(i["work_order_id"] == wo["id"] for i in items)


def test_no_reminder_once_the_store_replied(world: HttpWorld) -> None:
    world.in_adjudication()
    world.advance(24 * HOUR)
    assert "reminder" not in kinds(world, "agent")
    assert "timeout" not in kinds(world, "agent")


def test_consumer_is_asked_to_confirm_an_agreement(world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    items = inbox(world, "consumer")
    assert [i["kind"] for i in items] == ["confirmation_requested"]
    assert items[0]["work_order_id"] == wo["id"]


def test_both_sides_are_told_of_the_verification_the_ruling_and_the_appeal_decision(
        world: HttpWorld) -> None:
    wo = world.awaiting_verification("not_related")
    ok(world.post("verifier", f"/v1/work-orders/{wo['id']}/verification",
                  {"outcome": "unrelated_rejected", "rationale": "it is theirs"}))
    ok(world.post("adjudicator", f"/v1/work-orders/{wo['id']}/judgment",
                  {"ruling": "for_consumer", "rationale": "r",
                   "remedy": {"type": "reissue"}}))
    ok(world.post("owner", f"/v1/work-orders/{wo['id']}/appeal", {"statement": "s"}))
    ok(world.post("supervisor", f"/v1/work-orders/{wo['id']}/appeal-decision",
                  {"decision": "upheld", "rationale": "r"}))
    decided = ["appeal_decided", "judged", "verification_decided"]
    assert kinds(world, "consumer") == decided
    assert kinds(world, "agent") == [*decided, "work_order_created"]


def test_violation_is_announced_to_the_store(world: HttpWorld) -> None:
    wo = world.in_adjudication()
    ok(world.post("adjudicator", "/v1/violations", {
        "store_id": "s-tmall", "work_order_id": wo["id"], "kind": "false_evidence",
        "severity": "general", "rationale": "edited screenshot"}), 201)
    assert kinds(world, "agent")[0] == "violation_recorded"


def test_inbox_pages_newest_first_without_gaps(world: HttpWorld) -> None:
    for _ in range(5):
        world.open()
        world.advance(60)
    seen: list[JSON] = []
    cursor = None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = ok(world.get("agent", "/v1/inbox", params=params))
        assert len(page["items"]) <= 2
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == 5 == len({i["id"] for i in seen})
    assert [i["created_at"] for i in seen] == sorted((i["created_at"] for i in seen),
                                                     reverse=True)


def test_reading_a_notification_marks_it_read(world: HttpWorld) -> None:
    world.open()
    item = inbox(world, "agent")[0]
    response = world.post("agent", f"/v1/inbox/{item['id']}/read")
    assert response.status_code == 204
    assert inbox(world, "agent")[0]["read"] is True
    assert_problem(world.post("owner", f"/v1/inbox/{item['id']}/read"), 404, "not_found")


# ---- deliveries ---------------------------------------------------------------------------

def deliveries(world: HttpWorld, who: str, wo_id: str) -> list[JSON]:
    items: list[JSON] = ok(world.get(who, f"/v1/work-orders/{wo_id}/deliveries"))["items"]
    return items


def test_every_delivery_is_logged_with_recipient_channel_kind_and_status(
        world: HttpWorld) -> None:
    wo = world.awaiting_consumer()
    lines = deliveries(world, "triage", wo["id"])
    for line in lines:
        assert {"recipient_id", "channel", "kind", "status", "at"} <= line.keys()
        assert line["channel"] in {"inbox", "sms", "email", "webhook"}
        assert line["status"] in {"pending", "delivered", "failed", "retrying", "skipped"}
    inbox_lines = {(d["recipient_id"], d["kind"], d["status"]) for d in lines
                   if d["channel"] == "inbox"}
    assert inbox_lines == {
        (world.ids["agent"], "work_order_created", "delivered"),
        (world.ids["consumer"], "confirmation_requested", "delivered"),
    }
    store_side = {d["recipient_id"] for d in deliveries(world, "owner", wo["id"])}
    assert store_side == {world.ids["agent"]}
    consumer_side = {d["recipient_id"] for d in deliveries(world, "consumer", wo["id"])}
    assert consumer_side == {world.ids["consumer"]}


def test_delivery_log_says_why_a_store_without_staff_got_nothing(world: HttpWorld) -> None:
    world.store("s-lonely", "taobao")
    wo = world.open(store_id="s-lonely")
    lines = deliveries(world, "triage", wo["id"])
    card = [d for d in lines if d["kind"] == "work_order_created"]
    assert card
    assert all(d["status"] == "skipped" and d["reason"] for d in card)
