"""The one place where settings become engines, adapters and services."""

from __future__ import annotations

import logging
import os
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine

from .adapters.channels import HttpSmsGateway, LogOnly, SmtpMailer, WebhookSender
from .adapters.clock import SystemClock, TestClock
from .adapters.db.engine import make_engine, migrate
from .adapters.db.uow import SqlUnitOfWorkFactory
from .adapters.evidence_files import LocalEvidenceStore
from .domain.records import Channel
from .services.context import DeliverySetup, ServiceContext, Signals, TokenCache
from .services.ports import Clock, MovableClock, Sender
from .settings import Settings

log = logging.getLogger("collabdesk")


@dataclass
class Container:
    settings: Settings
    engine: Engine
    ctx: ServiceContext
    test_clock: MovableClock | None


def build(settings: Settings, *, clock: Clock | None = None, run_migrations: bool = True
          ) -> Container:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "spool").mkdir(exist_ok=True)  # request bodies over 1 MiB
    engine = make_engine(settings.resolved_database_url, threads=settings.threads)
    if run_migrations:
        migrate(engine)
    test_clock: MovableClock | None = None
    if clock is None:
        if settings.test_clock:
            test_clock = TestClock()
            clock = test_clock
        else:
            clock = SystemClock()
    signals = Signals()  # what a commit raised ("inbox", "outbox") rings in this process
    ctx = ServiceContext(
        uow=SqlUnitOfWorkFactory(engine, on_commit=signals.fire), clock=clock,
        policy=settings.policy(),
        evidence_store=LocalEvidenceStore(settings.data_dir / "evidence"),
        evidence_max_bytes=settings.evidence_max_bytes,
        timer_batch_size=settings.timer_batch_size,
        tokens=TokenCache(settings.token_cache_seconds), signals=signals,
        delivery=DeliverySetup(sms_configured=bool(settings.sms_url),
                               smtp_configured=bool(settings.smtp_url),
                               webhook_key=secret_key(settings)))
    return Container(settings, engine, ctx, test_clock)


def senders(settings: Settings) -> dict[Channel, Sender]:
    """The external channels as configured; an unconfigured one writes to the log."""
    timeout = settings.delivery_timeout_seconds
    return {
        Channel.SMS: HttpSmsGateway(settings.sms_url, timeout) if settings.sms_url
        else LogOnly("sms", "COLLABDESK_SMS_URL"),
        Channel.EMAIL: SmtpMailer(settings.smtp_url, settings.smtp_from, timeout)
        if settings.smtp_url else LogOnly("email", "COLLABDESK_SMTP_URL"),
        Channel.WEBHOOK: WebhookSender(timeout),
    }


def secret_key(settings: Settings) -> bytes:
    """COLLABDESK_SECRET_KEY, or the key kept in the data directory (made on first use,
    readable by its owner only)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value().encode()
    path = settings.data_dir / "secret.key"
    if not settings.resolved_database_url.startswith("sqlite"):
        # Processes on other machines (or with another data directory) would sign with
        # another key, and no receiver could verify their webhooks.
        log.warning("COLLABDESK_SECRET_KEY is not set: webhook secrets derive from %s, "
                    "which every process on this database must share", path.resolve())
    if not path.exists():
        # Written aside, then linked into place: processes starting together agree on
        # one key, and none reads a half-written file.
        tmp = path.with_name(f".secret.key.{os.getpid()}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secrets.token_hex(32) + "\n")
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text(encoding="ascii").strip().encode()
