"""Penalty points (rules.md §9), metrics (§8, api.md Metrics), the audit chain (§10) and
evidence typing by content (§5)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from collabdesk.domain.audit import ChainLink, canonical_json, event_hash, find_break
from collabdesk.domain.errors import (
    AppealWindowClosed,
    Forbidden,
    InvalidTransition,
    ValidationFailed,
)
from collabdesk.domain.evidence import ALLOWED_MEDIA_TYPES, is_plain_text, sniff_media_type
from collabdesk.domain.metrics import Window, WorkOrderFacts, metric_name
from collabdesk.domain.model import WorkOrder
from collabdesk.domain.policy import Policy
from collabdesk.domain.replies import ReplyOption
from collabdesk.domain.states import Role, State
from collabdesk.domain.values import (
    AppealDecision,
    ContactOutcome,
    Ruling,
    StorePlatform,
    utc_iso,
)
from collabdesk.domain.violations import (
    RECORDERS,
    LedgerEntry,
    Severity,
    Violation,
    ViolationDecision,
    ViolationKind,
    ViolationState,
)
from tests.actors import ADJUDICATOR, CONSUMER, OWNER, STORE_ID, SUPERVISOR, T0, VERIFIER
from tests.builders import figures

from .test_transitions import (
    ACTOR_OF,
    NOW,
    POLICY,
    REFUND,
    log_contact,
    open_work_order,
    reply_with,
)

# ---- penalty points (§9) ---------------------------------------------------------------------

RECORDED_AT = datetime(2026, 6, 1, 9, 0, tzinfo=UTC)


def record(severity: Severity = Severity.GENERAL, *, now: datetime = RECORDED_AT,
           policy: Policy = POLICY, violation_id: str = "v-1") -> Violation:
    return Violation.record(
        violation_id=violation_id, store_id=STORE_ID, work_order_id="wo-1",
        kind=ViolationKind.FALSE_EVIDENCE, severity=severity,
        rationale="the chat screenshot is edited", evidence_ids=("ev-1",), actor=VERIFIER,
        now=now, policy=policy)


def state_of(violation: Violation) -> ViolationState:
    """Read the state afresh (keeps mypy from narrowing across calls that change it)."""
    return violation.state


@pytest.mark.parametrize(("severity", "points"), [(Severity.GENERAL, 12),
                                                  (Severity.SERIOUS, 48)])
def test_a_general_violation_costs_12_points_and_a_serious_one_48(severity: Severity,
                                                                  points: int) -> None:
    violation = record(severity)
    assert violation.points == points
    assert violation.state is ViolationState.IN_FORCE
    entry = violation.ledger_entry("le-1")
    assert entry == LedgerEntry("le-1", STORE_ID, 2026, "v-1", points,
                                f"{severity} violation: false_evidence", RECORDED_AT)


def test_points_per_severity_come_from_the_policy() -> None:
    policy = Policy(points={"general": 6, "serious": 24})
    assert record(Severity.GENERAL, policy=policy).points == 6
    assert record(Severity.SERIOUS, policy=policy).points == 24


@pytest.mark.parametrize("role", sorted(frozenset(Role) - RECORDERS))
def test_only_verifiers_and_adjudicators_record_violations(role: Role) -> None:
    assert {Role.VERIFIER, Role.ADJUDICATOR} == RECORDERS
    with pytest.raises(Forbidden):
        Violation.record(violation_id="v-1", store_id=STORE_ID, work_order_id="wo-1",
                         kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL,
                         rationale="forged", evidence_ids=(), actor=ACTOR_OF[role],
                         now=RECORDED_AT, policy=POLICY)


def test_an_adjudicator_records_a_violation_with_the_work_order_and_evidence() -> None:
    violation = Violation.record(
        violation_id="v-9", store_id=STORE_ID, work_order_id="wo-7",
        kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.SERIOUS, rationale="forged",
        evidence_ids=("ev-a", "ev-b"), actor=ADJUDICATOR, now=RECORDED_AT, policy=POLICY)
    assert (violation.work_order_id, violation.evidence_ids, violation.recorded_by) == (
        "wo-7", ("ev-a", "ev-b"), ADJUDICATOR.id)


def test_a_violation_needs_a_rationale() -> None:
    with pytest.raises(ValidationFailed):
        Violation.record(violation_id="v-1", store_id=STORE_ID, work_order_id="wo-1",
                         kind=ViolationKind.FALSE_EVIDENCE, severity=Severity.GENERAL,
                         rationale="  ", evidence_ids=(), actor=VERIFIER, now=RECORDED_AT,
                         policy=POLICY)


def test_the_ledger_year_is_the_utc_calendar_year_of_the_recording() -> None:
    # 07:00 on 1 January 2027 in Beijing is still 2026 in UTC.
    beijing = timezone(timedelta(hours=8))
    violation = record(now=datetime(2027, 1, 1, 7, 0, tzinfo=beijing))
    assert violation.ledger_entry("le-1").year == 2026
    violation.appeal("not forged", OWNER, datetime(2027, 1, 2, tzinfo=UTC), POLICY)
    refund = violation.decide(ViolationDecision.REVOKED, "genuine after all", SUPERVISOR,
                              datetime(2027, 1, 3, tzinfo=UTC), "le-2")
    assert refund is not None
    assert refund.year == 2026


def test_a_violation_appeal_only_by_the_owner_within_the_window_and_once() -> None:
    violation = record()
    closes = RECORDED_AT + timedelta(days=7)
    with pytest.raises(Forbidden):
        violation.appeal("not forged", ACTOR_OF[Role.MERCHANT_AGENT], RECORDED_AT, POLICY)
    with pytest.raises(AppealWindowClosed):
        violation.appeal("not forged", OWNER, closes, POLICY)
    assert state_of(violation) is ViolationState.IN_FORCE
    assert violation.appealed_at is None
    violation.appeal("not forged", OWNER, closes - timedelta(microseconds=1), POLICY)
    assert state_of(violation) is ViolationState.UNDER_APPEAL
    with pytest.raises(InvalidTransition):
        violation.appeal("again", OWNER, RECORDED_AT, POLICY)
    violation.decide(ViolationDecision.UPHELD, "it is forged", SUPERVISOR, closes, "le-2")
    with pytest.raises(InvalidTransition):
        violation.appeal("once more", OWNER, RECORDED_AT, POLICY)
    assert violation.state is ViolationState.IN_FORCE


def test_the_violation_appeal_window_comes_from_the_policy() -> None:
    violation = record()
    with pytest.raises(AppealWindowClosed):
        violation.appeal("late", OWNER, RECORDED_AT + timedelta(days=2),
                         Policy(appeal_window=timedelta(days=2)))


def test_a_violation_appeal_needs_a_statement() -> None:
    violation = record()
    with pytest.raises(ValidationFailed):
        violation.appeal(" ", OWNER, RECORDED_AT, POLICY)
    assert violation.state is ViolationState.IN_FORCE


def test_only_a_supervisor_decides_and_only_a_violation_under_appeal() -> None:
    violation = record()
    with pytest.raises(InvalidTransition):
        violation.decide(ViolationDecision.REVOKED, "x", SUPERVISOR, RECORDED_AT, "le-2")
    violation.appeal("not forged", OWNER, RECORDED_AT, POLICY)
    for role in frozenset(Role) - {Role.SUPERVISOR}:
        with pytest.raises(Forbidden):
            violation.decide(ViolationDecision.REVOKED, "x", ACTOR_OF[role], RECORDED_AT,
                             "le-2")
    with pytest.raises(ValidationFailed):
        violation.decide(ViolationDecision.REVOKED, "", SUPERVISOR, RECORDED_AT, "le-2")
    assert violation.state is ViolationState.UNDER_APPEAL
    assert violation.decision is None


def test_an_upheld_violation_stays_in_force_and_adds_no_ledger_line() -> None:
    violation = record()
    violation.appeal("not forged", OWNER, RECORDED_AT, POLICY)
    assert violation.decide(ViolationDecision.UPHELD, "forged", SUPERVISOR, NOW,
                            "le-2") is None
    assert violation.state is ViolationState.IN_FORCE
    assert (violation.decision, violation.decided_by) == (ViolationDecision.UPHELD,
                                                          SUPERVISOR.id)


def test_a_revoked_violation_gives_the_points_back_as_a_new_ledger_line() -> None:
    serious = record(Severity.SERIOUS, violation_id="v-1")
    general = record(Severity.GENERAL, violation_id="v-2")
    ledger = [serious.ledger_entry("le-1"), general.ledger_entry("le-2")]
    assert sum(e.points for e in ledger) == 60
    serious.appeal("not forged", OWNER, RECORDED_AT + timedelta(days=1), POLICY)
    decided_at = RECORDED_AT + timedelta(days=2)
    refund = serious.decide(ViolationDecision.REVOKED, "genuine after all", SUPERVISOR,
                            decided_at, "le-3")
    assert refund == LedgerEntry("le-3", STORE_ID, 2026, "v-1", -48,
                                 "violation v-1 revoked on appeal", decided_at)
    assert serious.state is ViolationState.REVOKED
    ledger.append(refund)
    # Append-only: the original lines are untouched and the total is their sum.
    assert [e.points for e in ledger] == [48, 12, -48]
    assert sum(e.points for e in ledger) == 12
    with pytest.raises(InvalidTransition):
        serious.appeal("again", OWNER, decided_at, POLICY)


def test_ledger_entries_cannot_be_edited() -> None:
    entry = record().ledger_entry("le-1")
    with pytest.raises(dataclasses.FrozenInstanceError):
        entry.points = 0  # type: ignore[misc]


# ---- metrics (§8, api.md Metrics) ------------------------------------------------------------

AS_OF = date(2026, 11, 26)
WINDOW = Window.ending_after(AS_OF, 30)
IN_WINDOW = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)


def facts(*, state: State = State.AWAITING_MERCHANT, worry_free: bool = False,
          created_at: datetime = IN_WINDOW, replied_after: timedelta | None = None,
          timed_out: bool = False, escalated: bool = False,
          judged_at: datetime | None = None, ruled_for_consumer: bool = False,
          overturned: bool = False) -> WorkOrderFacts:
    due_at = None if worry_free else created_at + timedelta(hours=24)
    replied_at = None if replied_after is None else created_at + replied_after
    return WorkOrderFacts(state, worry_free, created_at, due_at, replied_at, timed_out,
                          escalated, judged_at, ruled_for_consumer, overturned)


def dispute(judged_at: datetime = IN_WINDOW, *, for_consumer: bool = True,
            overturned: bool = False, state: State = State.JUDGED) -> WorkOrderFacts:
    return facts(state=state, created_at=judged_at - timedelta(days=2), escalated=True,
                 judged_at=judged_at, ruled_for_consumer=for_consumer, overturned=overturned)


def test_the_window_ends_at_the_start_of_the_day_after_as_of_in_utc() -> None:
    assert WINDOW.end == datetime(2026, 11, 27, 0, 0, tzinfo=UTC)
    assert WINDOW.start == datetime(2026, 10, 28, 0, 0, tzinfo=UTC)
    assert WINDOW.contains(WINDOW.start)
    assert WINDOW.contains(WINDOW.end - timedelta(microseconds=1))
    assert not WINDOW.contains(WINDOW.end)
    assert not WINDOW.contains(WINDOW.start - timedelta(microseconds=1))
    assert Window.ending_after(AS_OF, 7).start == datetime(2026, 11, 20, tzinfo=UTC)


def test_the_metric_is_named_by_the_stores_platform() -> None:
    assert metric_name(StorePlatform.TAOBAO) == "dispute_refund_rate"
    assert metric_name(StorePlatform.TMALL) == "platform_dispute_rate"
    assert figures(StorePlatform.TAOBAO, WINDOW, 1, []).metric == "dispute_refund_rate"
    assert figures(StorePlatform.TMALL, WINDOW, 1, []).metric == "platform_dispute_rate"


def test_dispute_rate_is_disputes_in_the_window_by_ruling_time_over_paid_orders() -> None:
    judged = [
        dispute(WINDOW.start),  # counts: first instant of the window
        dispute(WINDOW.end - timedelta(seconds=1)),  # counts
        dispute(WINDOW.end),  # after the window
        dispute(WINDOW.start - timedelta(seconds=1)),  # before the window
        dispute(overturned=True),  # overturned on appeal
        dispute(for_consumer=False),  # ruled for the merchant
        dispute(state=State.UNDER_APPEAL),  # still counts while the appeal is pending
    ]
    m = figures(StorePlatform.TAOBAO, WINDOW, 40, judged)
    assert m.dispute_count == 3
    assert m.paid_orders == 40
    assert m.dispute_rate == pytest.approx(3 / 40)


def test_dispute_rate_is_none_with_no_paid_orders() -> None:
    m = figures(StorePlatform.TMALL, WINDOW, 0, [dispute()])
    assert m.dispute_count == 1
    assert m.dispute_rate is None


@pytest.mark.parametrize("state", [State.WORRY_FREE, State.SETTLED, State.DISMISSED,
                                   State.WITHDRAWN])
def test_worry_free_dismissed_and_withdrawn_work_orders_never_count(state: State) -> None:
    never = [
        dispute(state=state),
        facts(state=state, replied_after=timedelta(hours=1), escalated=True, timed_out=True),
    ]
    m = figures(StorePlatform.TAOBAO, WINDOW, 10, never)
    assert (m.dispute_count, m.work_orders, m.timeouts, m.replied_on_time) == (0, 0, 0, 0)
    assert m.dispute_rate == 0.0
    assert m.on_time_reply_rate is None


def test_a_worry_free_order_never_counts_whatever_its_state() -> None:
    flagged = dataclasses.replace(dispute(), worry_free=True)
    m = figures(StorePlatform.TAOBAO, WINDOW, 10, [flagged])
    assert (m.dispute_count, m.work_orders) == (0, 0)


def test_work_order_figures_cover_those_opened_in_the_window() -> None:
    opened = [
        facts(state=State.RESOLVED, replied_after=timedelta(hours=1)),
        facts(state=State.RESOLVED, replied_after=timedelta(hours=3)),
        facts(state=State.IN_ADJUDICATION, replied_after=timedelta(hours=24),  # at due_at
              escalated=True),
        facts(state=State.IN_ADJUDICATION, timed_out=True, escalated=True),
        # Opened before the window: not part of these figures.
        facts(state=State.RESOLVED, created_at=WINDOW.start - timedelta(seconds=1),
              replied_after=timedelta(hours=1)),
    ]
    m = figures(StorePlatform.TMALL, WINDOW, 100, opened)
    assert m.work_orders == 4
    assert m.replied_on_time == 2
    assert m.on_time_reply_rate == pytest.approx(2 / 4)
    assert m.timeouts == 1
    assert m.median_reply_seconds == pytest.approx(3 * 3600.0)  # median of 1 h, 3 h, 24 h
    assert m.agreement_rate == pytest.approx(2 / 4)
    assert m.intervention_rate == pytest.approx(2 / 4)


def test_rates_are_none_when_no_work_order_was_opened() -> None:
    m = figures(StorePlatform.TMALL, WINDOW, 5, [])
    assert (m.work_orders, m.dispute_count, m.dispute_rate) == (0, 0, 0.0)
    assert m.on_time_reply_rate is None
    assert m.median_reply_seconds is None
    assert m.agreement_rate is None
    assert m.intervention_rate is None


def test_the_work_order_aggregate_gives_the_dispute_fact() -> None:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    reply_with(wo, ReplyOption.UNRESOLVED_NO_AGREEMENT)
    assert not wo.counts_as_dispute
    wo.rule(Ruling.FOR_CONSUMER, "damaged", REFUND, ADJUDICATOR, NOW)
    assert wo.counts_as_dispute
    wo.file_appeal("photos are of another parcel", (), OWNER, NOW, POLICY)
    wo.decide_appeal(AppealDecision.OVERTURNED, "agreed", SUPERVISOR, NOW)
    assert not wo.counts_as_dispute


# ---- the audit chain (§10) -------------------------------------------------------------------


def chain_of(wo: WorkOrder) -> list[ChainLink]:
    """The links a repository would store for the aggregate's events."""
    links: list[ChainLink] = []
    prev: str | None = None
    for seq, event in enumerate(wo.events, start=1):
        at, data_json = utc_iso(event.at), canonical_json(event.data)
        digest = event_hash(wo.id, seq, at, event.actor_id, event.type, data_json, prev)
        links.append(ChainLink(wo.id, seq, at, event.actor_id, event.type, data_json, prev,
                               digest))
        prev = digest
    return links


def a_history() -> list[ChainLink]:
    wo = open_work_order()
    log_contact(wo, ContactOutcome.REACHED)
    reply_with(wo, ReplyOption.RESOLVED_AGREED)
    wo.respond_as_consumer(True, None, CONSUMER, NOW)
    links = chain_of(wo)
    assert [link.type for link in links] == ["opened", "contact_logged", "contact_logged",
                                             "replied", "consumer_responded"]
    return links


def test_an_intact_chain_has_no_break() -> None:
    links = a_history()
    assert len(links) >= 4
    assert links[0].prev_hash is None
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(links))
    assert find_break(links) is None
    assert find_break([]) is None


def test_edited_data_is_detected_and_names_the_event() -> None:
    links = a_history()
    links[1] = dataclasses.replace(links[1], data_json=links[1].data_json.replace(
        "reached", "unreachable"))
    assert find_break(links) == "event 2 (contact_logged): content does not match its hash"


@pytest.mark.parametrize("field", ["at", "actor_id", "type", "work_order_id"])
def test_any_edited_field_is_detected(field: str) -> None:
    links = a_history()
    changes: dict[str, Any] = {field: "2020-01-01T00:00:00Z"}
    links[2] = dataclasses.replace(links[2], **changes)
    message = find_break(links)
    assert message is not None
    assert message.startswith("event 3")


def test_an_edited_seq_is_detected() -> None:
    links = a_history()
    links[2] = dataclasses.replace(links[2], seq=7)
    assert find_break(links) == "event seq 7 found where 3 was expected"


def test_a_deleted_event_is_detected() -> None:
    links = a_history()
    del links[1]
    assert find_break(links) == "event seq 3 found where 2 was expected"


def test_an_edited_prev_hash_is_detected() -> None:
    links = a_history()
    links[3] = dataclasses.replace(links[3], prev_hash="0" * 64)
    message = find_break(links)
    assert message is not None
    assert message.startswith("event 4: prev_hash")


def test_a_rehashed_edit_breaks_the_next_link() -> None:
    links = a_history()
    edited = dataclasses.replace(links[1], data_json=canonical_json({"forged": True}))
    edited = dataclasses.replace(edited, hash=event_hash(
        edited.work_order_id, edited.seq, edited.at, edited.actor_id, edited.type,
        edited.data_json, edited.prev_hash))
    links[1] = edited
    assert find_break(links) == (
        "event 3: prev_hash does not match the hash of event 2")


def test_the_event_hash_covers_every_field_and_the_previous_hash() -> None:
    base = ("wo-1", 1, "2026-11-02T08:00:00Z", "c-1", "opened", '{"a":1}', None)
    digest = event_hash(*base)
    assert len(digest) == 64
    assert digest == event_hash(*base)
    variants = [
        ("wo-2", 1, "2026-11-02T08:00:00Z", "c-1", "opened", '{"a":1}', None),
        ("wo-1", 2, "2026-11-02T08:00:00Z", "c-1", "opened", '{"a":1}', None),
        ("wo-1", 1, "2026-11-02T08:00:01Z", "c-1", "opened", '{"a":1}', None),
        ("wo-1", 1, "2026-11-02T08:00:00Z", "c-2", "opened", '{"a":1}', None),
        ("wo-1", 1, "2026-11-02T08:00:00Z", "c-1", "closed", '{"a":1}', None),
        ("wo-1", 1, "2026-11-02T08:00:00Z", "c-1", "opened", '{"a":2}', None),
        ("wo-1", 1, "2026-11-02T08:00:00Z", "c-1", "opened", '{"a":1}', "0" * 64),
    ]
    assert len({event_hash(*v) for v in variants} | {digest}) == len(variants) + 1


def test_canonical_json_is_key_order_independent_and_keeps_chinese() -> None:
    assert canonical_json({"b": 1, "a": "协商"}) == '{"a":"协商","b":1}'
    assert canonical_json({"a": "协商", "b": 1}) == canonical_json({"b": 1, "a": "协商"})


def test_utc_iso_is_z_suffixed_utc_and_refuses_naive_datetimes() -> None:
    beijing = timezone(timedelta(hours=8))
    assert utc_iso(datetime(2026, 11, 26, 16, 0, tzinfo=beijing)) == "2026-11-26T08:00:00Z"
    with pytest.raises(ValueError, match="naive"):
        utc_iso(T0.replace(tzinfo=None))


# ---- evidence typed by content (§5) ----------------------------------------------------------

PAD = bytes(64)
SAMPLES = {
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "image/png"),
    "jpeg-jfif": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "image/jpeg"),
    "jpeg-exif": (b"\xff\xd8\xff\xe1\x00\x18Exif\x00\x00", "image/jpeg"),
    "gif87a": (b"GIF87a\x01\x00\x01\x00", "image/gif"),
    "gif89a": (b"GIF89a\x01\x00\x01\x00", "image/gif"),
    "webp": (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    "pdf": (b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n", "application/pdf"),
    "mp3-id3": (b"ID3\x04\x00\x00\x00\x00\x00\x00", "audio/mpeg"),
    "mp3-frame-mpeg1-layer3": (b"\xff\xfb\x90\x64\x00", "audio/mpeg"),
    "mp3-frame-mpeg2-layer3": (b"\xff\xf3\x48\xc4\x00", "audio/mpeg"),
    "mp3-frame-mpeg25-layer3": (b"\xff\xe3\x18\xc4\x00", "audio/mpeg"),
    "m4a": (b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00", "audio/mp4"),
    "m4b": (b"\x00\x00\x00\x20ftypM4B \x00\x00\x02\x00", "audio/mp4"),
    "amr-nb": (b"#!AMR\n\x3c\x48", "audio/amr"),
    "amr-wb": (b"#!AMR-WB\n\x04", "audio/amr"),
    "wav": (b"RIFF\x24\x08\x00\x00WAVEfmt ", "audio/wav"),
}


@pytest.mark.parametrize(("head", "media_type"), list(SAMPLES.values()), ids=list(SAMPLES))
def test_evidence_type_is_taken_from_the_content(head: bytes, media_type: str) -> None:
    assert sniff_media_type(head + PAD) == media_type
    assert media_type in ALLOWED_MEDIA_TYPES


NOT_EVIDENCE = {
    "windows-exe": b"MZ\x90\x00\x03\x00\x00\x00",
    "elf": b"\x7fELF\x02\x01\x01\x00",
    "zip": b"PK\x03\x04\x14\x00\x00\x00",
    "gzip": b"\x1f\x8b\x08\x00\x00\x00",
    "rar": b"Rar!\x1a\x07\x00",
    "shell-script": b"#!/bin/sh\nrm -rf /\n",
    "html": b"<!DOCTYPE html><html>",
    "avi": b"RIFF\x24\x00\x00\x00AVI LIST",
    "aac-adts-layer-bits-zero": b"\xff\xf1\x50\x80",
    "truncated-jpeg": b"\xff\xd8",
    "mp4-isom-without-sound-track": b"\x00\x00\x00\x18ftypisom\x00\x00\x02\x00",
    "empty": b"",
}


@pytest.mark.parametrize("head", list(NOT_EVIDENCE.values()), ids=list(NOT_EVIDENCE))
def test_other_content_is_not_recognised(head: bytes) -> None:
    assert sniff_media_type(head) is None
    if head:
        assert sniff_media_type(head + PAD) is None


def test_a_file_name_plays_no_part_in_the_type() -> None:
    # The sniffer sees bytes only: a PNG header wins whatever follows.
    assert sniff_media_type(b"\x89PNG\r\n\x1a\n" + b"MZ" + PAD) == "image/png"
    assert sniff_media_type(b"MZ" + b"\x89PNG\r\n\x1a\n" + PAD) is None


@pytest.mark.parametrize("text", ["", "hello", "协商记录：已同意退款 50 元\n",
                                  "col\tcol\r\nnext\fpage", "emoji 👍 and nbsp\u00a0"])
def test_plain_text_allows_printable_text_tab_newline_cr_and_form_feed(text: str) -> None:
    assert is_plain_text(text)


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x08", "\x1b", "\x0b", "\x7f", "\x85",
                                  "\x9f"])
def test_plain_text_refuses_nul_and_other_control_characters(char: str) -> None:
    assert not is_plain_text(f"call log{char}more")
