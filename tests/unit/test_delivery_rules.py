"""Delivery rules as data: the retry schedules, the 3-day switch-off, the signature, and
the masks the delivery log shows."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

from collabdesk.domain.delivery import (
    MESSAGE_RETRIES,
    WEBHOOK_RETRIES,
    mask_email,
    mask_phone,
    should_disable,
    signature,
)
from collabdesk.services.messages import time_left

T0 = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
M = timedelta(minutes=1)
H = timedelta(hours=1)


def test_webhook_retries_follow_the_published_schedule_and_end_at_three_days() -> None:
    # api.md: about 1 min, 5 min, 30 min, 2 h, 6 h, then every 12 h up to 3 days.
    expected = [1 * M, 6 * M, 36 * M, 2 * H + 36 * M, 8 * H + 36 * M, 20 * H + 36 * M,
                32 * H + 36 * M, 44 * H + 36 * M, 56 * H + 36 * M, 68 * H + 36 * M, 72 * H]
    assert [WEBHOOK_RETRIES.next_due(T0, n) for n in range(1, 12)] == [
        T0 + d for d in expected]
    assert WEBHOOK_RETRIES.next_due(T0, 12) is None  # the 12th attempt failed: given up
    assert WEBHOOK_RETRIES.max_attempts == 12


def test_sms_and_email_are_given_up_after_a_day() -> None:
    assert [MESSAGE_RETRIES.next_due(T0, n) for n in range(1, 8)] == [
        T0 + d for d in (1 * M, 6 * M, 36 * M, 2 * H + 36 * M, 8 * H + 36 * M,
                         20 * H + 36 * M, 24 * H)]
    assert MESSAGE_RETRIES.next_due(T0, 8) is None


def test_the_schedule_counts_from_the_first_due_time_not_from_a_late_attempt() -> None:
    # However late attempt 3 ran, attempt 4 is due 36 min after the first due time.
    assert WEBHOOK_RETRIES.next_due(T0, 3) == T0 + 36 * M


def test_a_webhook_is_switched_off_after_three_days_of_failures_not_before() -> None:
    assert not should_disable(None, T0)
    assert not should_disable(T0, T0 + 72 * H - timedelta(seconds=1))
    assert should_disable(T0, T0 + 72 * H)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    body = b'{"id":"evt_1"}'
    expected = hmac.new(b"whsec_x", b'1764000000.{"id":"evt_1"}', hashlib.sha256).hexdigest()
    assert signature("whsec_x", 1764000000, body) == f"t=1764000000,v1={expected}"


def test_addresses_are_masked_in_the_delivery_log() -> None:
    assert mask_phone("13812345678") == "138****5678"
    assert mask_phone("12345") == "12***"
    assert mask_email("li.lei@shop.example") == "l***@shop.example"


def test_time_left_is_whole_minutes_rounded_down_in_both_languages() -> None:
    left = timedelta(hours=23, minutes=59, seconds=59)
    assert time_left(left, "zh") == "23小时59分"
    assert time_left(left, "en") == "23 h 59 min"
    assert time_left(timedelta(days=1, seconds=61), "en") == "1 d 0 h 1 min"
    assert time_left(timedelta(seconds=59), "zh") == "0分"
    assert time_left(-H, "en") == "0 min"


def test_smtp_credentials_are_percent_decoded_from_the_url() -> None:
    from collabdesk.adapters.channels import SmtpMailer

    mailer = SmtpMailer("smtp://ops%40shop:p%40ss%3Aw0rd@mail.example:587", "from@x.example")
    assert (mailer.host, mailer.port, mailer.username, mailer.password, mailer.tls) == (
        "mail.example", 587, "ops@shop", "p@ss:w0rd", False)
    assert SmtpMailer("smtps://mail.example", "f@x.example").port == 465
