"""The one typed settings object (style.md habit 6). Every default of rules.md §6 is here,
overridable by a `COLLABDESK_*` environment variable (durations as seconds or ISO 8601,
e.g. `COLLABDESK_REPLY_WINDOW=PT24H`). Built once at start-up and passed in.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .domain.policy import Policy

MIB = 1024 * 1024


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="COLLABDESK_", extra="ignore")

    database_url: str | None = None
    data_dir: Path = Path("collabdesk-data")
    admin_token: SecretStr | None = None
    test_clock: bool = False

    evidence_max_bytes: int = Field(default=20 * MIB, gt=0)
    # Any other request body (JSON); larger ones are refused with 413 while streaming.
    max_body_bytes: int = Field(default=1 * MIB, gt=0)
    # Threads serving requests (the thread pool of sync routes), and so the size of the
    # database pool; N API processes on PostgreSQL need N * (threads + 4) connections.
    threads: int = Field(default=32, ge=1, le=1024)
    # How long a bearer token's account is remembered without a database read: the most
    # a token revoked (or a permission withdrawn) by another process outlives its change.
    token_cache_seconds: float = Field(default=5.0, ge=0, le=60)
    timer_poll_seconds: float = Field(default=1.0, gt=0)
    # GET /v1/stream: a heartbeat comment this often keeps proxies from closing an idle
    # stream; each API process reads new inbox items once per poll (and at once when this
    # process committed some), whatever the number of open streams.
    stream_heartbeat_seconds: float = Field(default=15.0, ge=1, le=300)
    stream_poll_seconds: float = Field(default=1.0, ge=0.05, le=60)
    timer_batch_size: int = Field(default=200, gt=0)

    # Notifications. SMS: `POST {"to", "text"}` to this URL; email: smtp://host:port
    # (smtps:// for TLS, user:password@ to log in). Unset: written to the log only.
    sms_url: str | None = None
    smtp_url: str | None = None
    smtp_from: str = "collabdesk <noreply@collabdesk.invalid>"
    # How long an SMS gateway, mail server or webhook may take to answer.
    delivery_timeout_seconds: float = Field(default=10.0, gt=0, le=60)
    outbox_batch_size: int = Field(default=100, gt=0, le=1000)
    # How long a dispatcher holds the messages it is sending: a dispatcher that dies
    # mid-send delays them this long (PostgreSQL). At least twice the delivery timeout.
    outbox_lease_seconds: float = Field(default=60.0, ge=2, le=3600)
    # The key webhook signing secrets derive from (keep it secret, the same on every
    # process, and stable: a new key changes every webhook's secret). Unset: generated
    # once into <data_dir>/secret.key.
    secret_key: SecretStr | None = None

    reply_window: timedelta = timedelta(hours=24)
    reminders_before_due: list[timedelta] = [timedelta(hours=12), timedelta(hours=2)]
    confirmation_window: timedelta = timedelta(hours=48)
    verification_sla: timedelta = timedelta(hours=24)
    adjudication_sla: timedelta = timedelta(hours=48)
    appeal_window: timedelta = timedelta(days=7)
    min_contact_attempts: int = Field(default=2, ge=1)
    metric_window_days: int = Field(default=30, ge=1)
    points_general: int = Field(default=12, ge=0)
    points_serious: int = Field(default=48, ge=0)

    @model_validator(mode="after")
    def _lease_outlasts_a_send(self) -> Settings:
        if self.outbox_lease_seconds < 2 * self.delivery_timeout_seconds:
            raise ValueError("COLLABDESK_OUTBOX_LEASE_SECONDS must be at least twice "
                             "COLLABDESK_DELIVERY_TIMEOUT_SECONDS")
        return self

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'collabdesk.db').resolve()}"

    def policy(self) -> Policy:
        return Policy(
            reply_window=self.reply_window,
            reminders_before_due=tuple(self.reminders_before_due),
            confirmation_window=self.confirmation_window,
            verification_sla=self.verification_sla,
            adjudication_sla=self.adjudication_sla,
            appeal_window=self.appeal_window,
            min_contact_attempts=self.min_contact_attempts,
            metric_window_days=self.metric_window_days,
            points={"general": self.points_general, "serious": self.points_serious},
        )
