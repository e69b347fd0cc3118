"""Value objects are immutable, and every name a client sees is the API contract's
(api.md): each enum's values written out."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pytest

from collabdesk.domain import (
    audit,
    errors,
    metrics,
    model,
    records,
    replies,
    states,
    timers,
    values,
)
from collabdesk.domain.policy import Policy
from collabdesk.domain.violations import LedgerEntry

AT = datetime(2026, 11, 28, tzinfo=UTC)

VALUES: list[object] = [
    Policy(),
    replies.ReplyRequirements(states.Action.REPLY_NOT_RELATED),
    states.Transition(None, states.Action.OPEN, frozenset(), states.State.AWAITING_MERCHANT),
    values.Remedy(values.RemedyType.REFUND, 1),
    values.Store("s-1", "shop", values.StorePlatform.TMALL),
    values.Order("o-1", "s-1", "c-1", values.OrderKind.STANDARD, 1, AT),
    values.Actor("c-1", states.Role.CONSUMER),
    values.Contact("ct-1", "wo-1", values.ContactChannel.SMS, AT,
                   values.ContactOutcome.REACHED, None, (), "a-1", AT),
    values.DomainEvent("opened", "c-1", AT),
    audit.ChainHead(),
    audit.ChainLink("wo-1", 1, "t", "c-1", "opened", "{}", None, "h"),
    timers.TimerSpec(timers.TimerKind.REMINDER, AT),
    metrics.Window.ending_after(date(2026, 11, 28), 30),
    metrics.WorkOrderFacts(states.State.RESOLVED, False, AT, None, None, False, False, None,
                           False),
    metrics.Counters(opened=1),
    metrics.compute(values.StorePlatform.TMALL, metrics.Counters(), {}),
    LedgerEntry("le-1", "s-1", 2026, "v-1", 12, "why", AT),
    model.Reply(replies.ReplyOption.NOT_RELATED, None, None, (), AT, "a-1"),
    model.Judgment(values.Ruling.FOR_MERCHANT, "why", None, AT, "j-1"),
    model.Appeal("why", (), AT, "o-1"),
    model.Verification(values.VerificationOutcome.CONTACT_VERIFIED, "why", AT, "v-1"),
    model.ConsumerResponse(True, None, AT),
    model.Settlement(1, "why", AT, "t-1"),
    records.Account("a-1", "n", states.Role.ADMIN, None, None, None, None, True, AT),
    records.Note("n-1", "wo-1", "c-1", states.Role.CONSUMER, "t", "all", (), AT),
    records.EvidenceRecord("ev-1", "h", "text/plain", 1, None, "c-1", AT),
    records.InboxItem("i-1", "c-1", records.InboxKind.REMINDER, None, "t", AT),
    records.Delivery("d-1", None, "c-1", None, "inbox", "reminder",
                     records.DeliveryStatus.PENDING, None, AT),
    records.Timer(1, "wo-1", "reminder", AT),
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_a_value_object_cannot_be_changed(value: object) -> None:
    field = dataclasses.fields(value)[0].name  # type: ignore[arg-type]
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)


def test_the_value_names_are_the_api_contracts() -> None:
    assert [str(v) for v in values.Category] == [
        "not_received", "not_as_described", "quality", "damaged", "refund", "logistics",
        "other"]
    assert [str(v) for v in values.RemedyType] == [
        "refund", "return_and_refund", "exchange", "reissue", "repair", "compensation",
        "other"]
    assert [str(v) for v in values.OrderKind] == ["standard", "worry_free"]
    assert [str(v) for v in values.StorePlatform] == ["taobao", "tmall"]
    assert [str(v) for v in values.ContactChannel] == ["im", "phone", "sms", "other"]
    assert [str(v) for v in values.ContactOutcome] == ["reached", "unreachable"]
    assert [str(v) for v in values.Ruling] == ["for_consumer", "for_merchant"]
    assert [str(v) for v in values.AppealDecision] == ["upheld", "overturned"]
    assert [str(v) for v in values.VerificationOutcome] == [
        "contact_verified", "contact_rejected", "unrelated_confirmed", "unrelated_rejected"]
    assert [str(v) for v in values.NoteVisibility] == ["all", "platform"]
    assert [str(v) for v in replies.ReplyOption] == [
        "resolved_agreed", "unresolved_no_agreement", "unresolved_unreachable",
        "not_related"]
    assert [str(v) for v in states.Action] == [
        "open", "open_worry_free", "reply_resolved_agreed", "reply_unresolved_no_agreement",
        "reply_unresolved_unreachable", "reply_not_related", "time_out", "consumer_accept",
        "consumer_reject", "confirmation_lapse", "contact_verified", "contact_rejected",
        "unrelated_confirmed", "unrelated_rejected", "rule", "appeal", "decide_appeal",
        "settle", "withdraw"]


def test_the_record_names_are_the_api_contracts() -> None:
    assert [str(v) for v in records.InboxKind] == [
        "work_order_created", "reminder", "timeout", "confirmation_requested",
        "verification_decided", "judged", "appeal_decided", "violation_recorded",
        "work_order_closed", "state_changed", "webhook_disabled"]
    assert [str(v) for v in records.DeliveryStatus] == [
        "pending", "delivered", "failed", "retrying", "skipped"]
    assert records.InboxItem("i-1", "c-1", records.InboxKind.REMINDER, None, "t",
                             AT).read is False


def test_the_system_actor_is_the_deadline_runner() -> None:
    assert values.Actor("system", states.Role.SYSTEM, None, True) == values.SYSTEM_ACTOR


def test_an_actor_handles_work_orders_unless_told_and_an_event_is_seen_by_all() -> None:
    assert values.Actor("a-1", states.Role.MERCHANT_AGENT).handles_work_orders is True
    event = values.DomainEvent("opened", "c-1", AT)
    assert (event.data, event.visibility) == ({}, "all")


def test_the_chain_names_are_all_and_platform() -> None:
    assert (audit.ALL, audit.PLATFORM, audit.VISIBILITIES) == ("all", "platform",
                                                              ("all", "platform"))
    link = audit.ChainLink("wo-1", 1, "t", "c-1", "opened", "{}", None, "h")
    assert link.visibility == "all"


def test_every_error_has_its_stable_code() -> None:
    codes = {cls.__name__: cls.code for cls in (
        errors.CollabdeskError, errors.ValidationFailed, errors.NotFound, errors.Forbidden,
        errors.Unauthenticated, errors.InvalidTransition, errors.ReplyWindowClosed,
        errors.ContactBeforeWorkOrder, errors.ContactInFuture, errors.ReplyRequirementsNotMet,
        errors.DuplicateOpenWorkOrder, errors.AppealWindowClosed, errors.EvidenceTooLarge,
        errors.EvidenceTypeNotAllowed, errors.IdempotencyKeyReused, errors.IdempotencyKeyInUse,
        errors.PayloadTooLarge, errors.VersionConflict, errors.AlreadyExists,
        errors.ConcurrentUpdate)}
    assert codes == {
        "CollabdeskError": "error", "ValidationFailed": "validation_error",
        "NotFound": "not_found", "Forbidden": "forbidden",
        "Unauthenticated": "unauthenticated", "InvalidTransition": "invalid_transition",
        "ReplyWindowClosed": "reply_window_closed",
        "ContactBeforeWorkOrder": "contact_before_work_order",
        "ContactInFuture": "contact_in_future",
        "ReplyRequirementsNotMet": "reply_requirements_not_met",
        "DuplicateOpenWorkOrder": "duplicate_open_work_order",
        "AppealWindowClosed": "appeal_window_closed",
        "EvidenceTooLarge": "evidence_too_large",
        "EvidenceTypeNotAllowed": "evidence_type_not_allowed",
        "IdempotencyKeyReused": "idempotency_key_reused",
        "IdempotencyKeyInUse": "idempotency_key_in_use",
        "PayloadTooLarge": "payload_too_large", "VersionConflict": "version_conflict",
        "AlreadyExists": "already_exists", "ConcurrentUpdate": "concurrent_update",
    }
    assert errors.ConcurrentUpdate.retry_after == 1


def test_a_work_orders_pending_events_are_not_part_of_its_value() -> None:
    order = values.Order("o-1", "s-1", "c-1", values.OrderKind.STANDARD, 100, AT)

    def open_one() -> model.WorkOrder:
        return model.WorkOrder.open(
            work_order_id="wo-1", order=order, category=values.Category.OTHER, claim="x",
            requested_remedy=None, actor=values.Actor("c-1", states.Role.CONSUMER), now=AT,
            policy=Policy(), order_has_open_work_order=False)
    one, other = open_one(), open_one()
    other.events.clear()
    assert one == other
    assert "events=" not in repr(one)
