"""The delivery contract over HTTP, with real receivers on loopback: SMS through the HTTP
gateway, email through SMTP, signed webhooks with retries under the test clock, the
delivery log and the diagnostics. Both databases."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collabdesk.settings import Settings
from tests.e2e.http_world import HttpWorld as World
from tests.e2e.http_world import ok
from tests.receivers import (
    HttpReceiver,
    SmtpServer,
    http_receiver,
    smtp_server,
    verify_signature,
)

MINUTE = 60


@pytest.fixture
def sms() -> Iterator[HttpReceiver]:
    with http_receiver("/sms") as receiver:
        yield receiver


@pytest.fixture
def mail() -> Iterator[SmtpServer]:
    with smtp_server() as server:
        yield server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, sms: HttpReceiver,
             mail: SmtpServer) -> Settings:
    return Settings(database_url=database_url, data_dir=tmp_path / "data", sms_url=sms.url,
                    smtp_url=mail.url, delivery_timeout_seconds=2)


def test_a_webhook_receives_the_new_work_order_signed_with_its_secret(
        world: World, client: TestClient) -> None:
    with http_receiver("/hook") as hook:
        created = ok(world.post("owner", "/v1/stores/s-tmall/webhooks", {
            "url": hook.url, "events": ["work_order.created"]}), 201)
        assert set(created) >= {"id", "url", "events", "secret", "enabled"}
        assert created["enabled"] is True
        wo = world.open()
        world.advance(0)
        (got,) = hook.wait_for(1)
        body = got.json()
        assert body["type"] == "work_order.created"
        assert body["data"]["work_order"]["id"] == wo["id"]
        assert got.headers["collabdesk-event-id"] == body["id"]
        assert verify_signature(created["secret"], got.headers["collabdesk-signature"],
                                got.body)
        assert not verify_signature("wrong", got.headers["collabdesk-signature"], got.body)
