"""The external channels: an HTTP SMS gateway, SMTP, and store webhooks (httpx2 and
aiosmtplib, both async, so a batch of messages goes out at once), and the log, which
stands in for a channel that is not configured.

Each sender turns any failure into a `SendResult` with a short reason (what the
delivery log and the diagnostics show); none raises. Secrets never reach the log.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import ssl
import time
from email.message import EmailMessage
from typing import Any
from urllib.parse import unquote, urlsplit

import aiosmtplib
import httpx2

from collabdesk.domain.delivery import mask_email, mask_phone, masked, signature
from collabdesk.domain.records import OutboxMessage
from collabdesk.services.ports import SendResult

log = logging.getLogger("collabdesk.delivery")

USER_AGENT = "collabdesk-webhooks/1"


@functools.cache
def _tls() -> ssl.SSLContext:
    """One TLS context for every client: building one (reading the CA bundle) costs
    50-75 ms, which a client per message paid each time (measured by bench/delivery.py)."""
    return ssl.create_default_context()


def _client(timeout: float) -> httpx2.AsyncClient:
    return httpx2.AsyncClient(timeout=timeout, trust_env=False, follow_redirects=False,
                              verify=_tls())
# What a failed answer's body may add to the reason (the rest is not read).
REASON_BODY_CHARS = 200


_EMAIL = re.compile(r"[^\s<>@,;:\"']+@[^\s<>@,;:\"']+")
_DIGITS = re.compile(r"\+?\d[\d\s-]{5,}\d")


def scrub(text: str) -> str:
    """A reason as the delivery log may show it to the store's staff and the platform:
    email addresses and phone-like numbers masked (an answer may repeat them back)."""
    text = _EMAIL.sub(lambda m: mask_email(m.group(0)), text)
    return _DIGITS.sub(lambda m: mask_phone(m.group(0)), text)


async def _post(client: httpx2.AsyncClient, url: str, **kwargs: Any) -> tuple[int, str]:
    """POST, and read at most REASON_BODY_CHARS of the answer (a hostile receiver's huge
    body costs no memory): its status and the start of its text."""
    async with client.stream("POST", url, **kwargs) as response:
        head = b""
        if not 200 <= response.status_code < 300:
            async for chunk in response.aiter_bytes():
                head += chunk
                if len(head) >= REASON_BODY_CHARS:
                    break
        return response.status_code, head[:REASON_BODY_CHARS].decode("utf-8", "replace")


def _http_reason(status: int, text: str) -> str:
    text = scrub(" ".join(text.split()))
    return f"HTTP {status}" + (f": {text}" if text else "")


def _error_reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, httpx2.TimeoutException | TimeoutError):
        return f"no answer within {timeout:g} s"
    if isinstance(exc, httpx2.ConnectError):
        return scrub(f"could not connect: {exc}".strip())
    return scrub(f"{type(exc).__name__}: {exc}".strip())


class LogOnly:
    """A channel that is not configured: the text goes to the log, and the delivery is
    recorded as skipped with that reason (not as sent)."""

    def __init__(self, channel: str, setting: str) -> None:
        self.reason = f"{channel} is not configured ({setting}); written to the log only"
        self._channel = channel

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult:
        # The address masked, as in the delivery log: the log is read by more people.
        to = masked(message.channel, message.destination)
        log.info("%s to %s (%s, work order %s): %s", self._channel, to, message.kind,
                 message.work_order_id, json.loads(message.payload)["text"])
        return SendResult(False, self.reason, final=True)


class HttpSmsGateway:
    """`POST {"to", "text"}` to the gateway; any 2xx is delivered."""

    def __init__(self, url: str, timeout: float = 10.0) -> None:
        self.url = url
        self.timeout = timeout

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult:
        body = {"to": message.destination, "text": json.loads(message.payload)["text"]}
        try:
            async with _client(self.timeout) as client:
                status, text = await _post(client, self.url, json=body)
        except Exception as exc:  # any failure is a reason, never a crash
            return SendResult(False, _error_reason(exc, self.timeout))
        if 200 <= status < 300:
            return SendResult(True)
        return SendResult(False, _http_reason(status, text))


class SmtpMailer:
    """Plain-text mail through `smtp://host:port` (or `smtps://` for TLS from the start;
    `smtp://user:password@host` logs in)."""

    def __init__(self, url: str, sender: str, timeout: float = 10.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"COLLABDESK_SMTP_URL must be smtp://host:port, not {url!r}")
        self.host = parts.hostname
        self.tls = parts.scheme == "smtps"
        self.port = parts.port or (465 if self.tls else 25)
        # Percent-encoded in the URL (a password may hold @ : / ? #).
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender = sender
        self.timeout = timeout

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult:
        content = json.loads(message.payload)
        mail = EmailMessage()
        mail["From"] = self.sender
        mail["To"] = message.destination
        mail["Subject"] = content["subject"]
        if message.work_order_id:
            mail["X-Collabdesk-Work-Order"] = message.work_order_id
        mail.set_content(content["text"])
        try:
            await aiosmtplib.send(mail, hostname=self.host, port=self.port,
                                  username=self.username, password=self.password,
                                  use_tls=self.tls, start_tls=None if not self.tls else False,
                                  timeout=self.timeout)
        except aiosmtplib.SMTPRecipientsRefused as exc:
            codes = ", ".join(f"{r.code} {r.message.split()[0] if r.message else ''}".strip()
                              for r in exc.recipients)
            return SendResult(False, f"refused by the mail server: {codes}")
        except Exception as exc:
            return SendResult(False, _error_reason(exc, self.timeout))
        return SendResult(True)


class WebhookSender:
    """The store's URL gets the stored body, byte for byte, on every attempt, with the
    event id and a fresh signature over the attempt's time and the body."""

    def __init__(self, timeout: float = 10.0) -> None:
        self.timeout = timeout

    async def send(self, message: OutboxMessage, secret: str | None) -> SendResult:
        if secret is None:
            return SendResult(False, "the webhook no longer exists", final=True)
        body = message.payload.encode()
        # The transport's real time (not a test clock): receivers check it for freshness.
        stamp = int(time.time())
        headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT,
                   "Collabdesk-Event-Id": message.event_id or "",
                   "Collabdesk-Signature": signature(secret, stamp, body)}
        try:
            async with _client(self.timeout) as client:
                status, text = await _post(client, message.destination, content=body,
                                           headers=headers)
        except Exception as exc:
            return SendResult(False, _error_reason(exc, self.timeout))
        if 200 <= status < 300:
            return SendResult(True)
        return SendResult(False, _http_reason(status, text))
