"""Real receivers on loopback for the delivery tests: an HTTP SMS gateway stub, a webhook
receiver that checks signatures, and an SMTP server (aiosmtpd). Each records what it
received, with the real time it arrived, and can be told to fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    at: float  # time.time() on arrival
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class HttpReceiver:
    """Answers `status` (200 unless told otherwise) to every POST, after `delay` s.
    `received` holds the requests answered; `arrivals` counts them as they come in."""

    url: str
    received: list[Received] = field(default_factory=list)
    arrivals: int = 0
    status: int = 200
    delay: float = 0.0
    cond: threading.Condition = field(default_factory=threading.Condition)

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Received]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.received) >= count, timeout):
                raise AssertionError(f"{len(self.received)} of {count} requests arrived at "
                                     f"{self.url} within {timeout} s")
            return list(self.received)

    def wait_for_arrivals(self, count: int, timeout: float = 10.0) -> None:
        """Until `count` requests have come in (answered or not yet)."""
        with self.cond:
            if not self.cond.wait_for(lambda: self.arrivals >= count, timeout):
                raise AssertionError(f"{self.arrivals} of {count} requests came in to "
                                     f"{self.url} within {timeout} s")


@contextmanager
def http_receiver(path: str = "/") -> Iterator[HttpReceiver]:
    holder: list[HttpReceiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            receiver = holder[0]
            length = int(self.headers.get("Content-Length", "0"))
            body = self.rfile.read(length)
            arrived = time.time()
            with receiver.cond:
                receiver.arrivals += 1
                receiver.cond.notify_all()
            if receiver.delay:
                time.sleep(receiver.delay)
            status = receiver.status
            try:
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok" if status < 300 else b"no")
            except OSError:
                pass  # the sender went away (killed): the message still came in
            with receiver.cond:
                receiver.received.append(Received(arrived, self.path,
                                                  {k.lower(): v for k, v in self.headers.items()},
                                                  body))
                receiver.cond.notify_all()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    holder.append(HttpReceiver(f"http://127.0.0.1:{server.server_address[1]}{path}"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


def verify_signature(secret: str, header: str, body: bytes, *, now: float | None = None,
                     tolerance: float = 300.0) -> bool:
    """What a merchant's ERP does (docs/integrations.md): recompute the HMAC and compare
    in constant time; refuse a stale timestamp."""
    parts = dict(p.split("=", 1) for p in header.split(",") if "=" in p)
    stamp = int(parts["t"])
    if abs((now if now is not None else time.time()) - stamp) > tolerance:
        return False
    expected = hmac.new(secret.encode(), f"{stamp}.".encode() + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class SmtpServer:
    url: str
    messages: list[tuple[float, EmailMessage]] = field(default_factory=list)
    cond: threading.Condition = field(default_factory=threading.Condition)
    refuse: bool = False

    def wait_for(self, count: int, timeout: float = 10.0) -> list[EmailMessage]:
        with self.cond:
            if not self.cond.wait_for(lambda: len(self.messages) >= count, timeout):
                raise AssertionError(f"{len(self.messages)} of {count} mails arrived")
            return [m for _, m in self.messages]


@contextmanager
def smtp_server() -> Iterator[SmtpServer]:
    holder: list[SmtpServer] = []

    class Handler:
        async def handle_DATA(self, server: SMTP, session: Session,
                              envelope: Envelope) -> str:
            box = holder[0]
            if box.refuse:
                return "451 try again later"
            content = envelope.original_content or b""
            mail = message_from_bytes(content, policy=policy.default)
            assert isinstance(mail, EmailMessage)
            with box.cond:
                box.messages.append((time.time(), mail))
                box.cond.notify_all()
            return "250 OK"

    with socket.socket() as probe:  # aiosmtpd checks its port itself, so no port 0
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    holder.append(SmtpServer(f"smtp://127.0.0.1:{port}"))
    try:
        yield holder[0]
    finally:
        controller.stop()
