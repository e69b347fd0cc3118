"""docs/integrations.md shows a merchant's developer how to verify a webhook signature:
its Python block is run here against signatures made as the server makes them
(`collabdesk.domain.delivery.signature`), so the page cannot drift from the code."""

from __future__ import annotations

import http.client
import re
import threading
import time
from collections.abc import Callable, Iterator
from http.server import ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from collabdesk.domain.delivery import signature

DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
SECRET = "whsec_test-secret"
BODY = ('{"id":"evt_1a22230918386ec40a6877d","type":"work_order.created",'
        '"created_at":"2026-11-28T09:15:02.417388Z","data":{"work_order":'
        '{"id":"wo_1a2223091836970c396aeca","claim":"到货破损"}}}').encode()

Verify = Callable[..., bool]


@pytest.fixture(scope="module")
def snippet() -> dict[str, Any]:
    blocks = re.findall(r"^```python\n(.*?)^```$", DOC.read_text(encoding="utf-8"),
                        flags=re.S | re.M)
    assert len(blocks) == 1, "docs/integrations.md should have one Python block"
    namespace: dict[str, Any] = {"__name__": "integrations_doc"}
    exec(compile(blocks[0], str(DOC), "exec"), namespace)  # our own doc
    return namespace


@pytest.fixture
def verify(snippet: dict[str, Any]) -> Verify:
    fn: Verify = snippet["verify"]
    return fn


def test_it_accepts_a_signature_made_as_the_server_makes_it(verify: Verify) -> None:
    now = int(time.time())
    assert verify(SECRET, signature(SECRET, now, BODY), BODY)
    assert verify(SECRET, signature(SECRET, now - 299, BODY), BODY, now=now)


def test_it_rejects_a_tampered_body_or_another_secret(verify: Verify) -> None:
    header = signature(SECRET, int(time.time()), BODY)
    assert not verify(SECRET, header, BODY.replace(b"created", b"updated"))
    assert not verify(SECRET, header, BODY + b" ")
    assert not verify("whsec_another", header, BODY)


def test_it_rejects_a_stale_or_future_timestamp(verify: Verify) -> None:
    now = int(time.time())
    assert not verify(SECRET, signature(SECRET, now - 301, BODY), BODY, now=now)
    assert not verify(SECRET, signature(SECRET, now - 3600, BODY), BODY)
    assert not verify(SECRET, signature(SECRET, now + 301, BODY), BODY, now=now)


@pytest.mark.parametrize("header", [
    "", "t=abc,v1=00", "v1=00", "t=1", "nonsense", "t=1,v1=ünïcode", "t=1,v1"])
def test_a_malformed_header_is_refused_without_raising(verify: Verify, header: str) -> None:
    assert not verify(SECRET, header, BODY, now=1)


@pytest.fixture
def receiver(snippet: dict[str, Any]) -> Iterator[tuple[int, Any]]:
    snippet["SECRET"] = SECRET
    server = ThreadingHTTPServer(("127.0.0.1", 0), snippet["Handler"])
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], snippet["received"]
    finally:
        server.shutdown()
        server.server_close()


def _post(port: int, body: bytes, headers: dict[str, str]) -> int:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    try:
        conn.request("POST", "/", body=body, headers=headers)
        return conn.getresponse().status
    finally:
        conn.close()


def test_the_receiver_answers_204_to_a_signed_event_and_401_otherwise(
        receiver: tuple[int, Any]) -> None:
    port, received = receiver
    headers = {"Content-Type": "application/json",
               "Collabdesk-Event-Id": "evt_1a22230918386ec40a6877d",
               "Collabdesk-Signature": signature(SECRET, int(time.time()), BODY)}
    assert _post(port, BODY, headers) == 204
    assert received.get(timeout=1)["data"]["work_order"]["claim"] == "到货破损"
    assert _post(port, BODY + b" ", headers) == 401
    assert _post(port, BODY, {"Content-Type": "application/json"}) == 401
    assert received.empty()
