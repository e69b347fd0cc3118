"""Delivery by a real `collabdesk serve` (its own dispatcher, the real clock): a new work
order's SMS reaches the gateway at once, and a server killed mid-delivery loses no
message and duplicates no card when it comes back on the same database. SQLite and
PostgreSQL."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.test_real_server import ADMIN, serving
from tests.receivers import HttpReceiver, http_receiver

PHONE = "13800138000"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> list[str]:
    """Extra `serve` options: SQLite in the data directory, or the test PostgreSQL."""
    if request.param == "sqlite":
        return []
    return ["--database-url", request.getfixturevalue("postgres_database_url")]


@pytest.fixture
def gateway() -> Iterator[HttpReceiver]:
    with http_receiver("/sms") as receiver:
        yield receiver


def _json(response: httpx2.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json()


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


class Store:
    """A store with one agent (with a phone) and a consumer, set up over HTTP."""

    def __init__(self, http: httpx2.Client) -> None:
        self.http = http
        admin = _auth(ADMIN)
        _json(http.post("/v1/stores", headers=admin,
                        json={"id": "d-store", "name": "Delivery store", "platform": "tmall"}),
              201)
        self.tokens: dict[str, str] = {}
        self.ids: dict[str, str] = {}
        for name, role, store, phone in (("consumer", "consumer", None, None),
                                         ("agent", "merchant_agent", "d-store", PHONE)):
            made = _json(http.post("/v1/accounts", headers=admin, json={
                "name": name, "role": role, "store_id": store, "phone": phone}), 201)
            self.tokens[name], self.ids[name] = made["token"], made["id"]
        self.orders = 0

    def open(self) -> str:
        self.orders += 1
        order_id = f"do-{self.orders}"
        _json(self.http.post("/v1/orders", headers=_auth(ADMIN), json={
            "id": order_id, "store_id": "d-store", "consumer_id": self.ids["consumer"],
            "kind": "standard", "amount_cents": 5_000,
            "paid_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()}), 201)
        wo = _json(self.http.post("/v1/work-orders", headers=_auth(self.tokens["consumer"]),
                                  json={"order_id": order_id, "category": "damaged",
                                        "claim": "arrived broken"}), 201)
        wo_id: str = wo["id"]
        return wo_id


def _texts_naming(gateway: HttpReceiver, ids: list[str], timeout: float) -> Counter[str]:
    """How many texts named each work order, once every one of them was named."""
    deadline = time.monotonic() + timeout
    while True:
        with gateway.cond:
            got = [r.json() for r in gateway.received]
        named = Counter(i for r in got for i in ids if i in r["text"])
        if set(named) == set(ids) or time.monotonic() > deadline:
            return named
        time.sleep(0.05)


def test_a_new_work_orders_sms_goes_out_at_once(tmp_path: Path, database: list[str],
                                                 gateway: HttpReceiver) -> None:
    with serving(tmp_path, *database, env={"COLLABDESK_SMS_URL": gateway.url}) as server, \
            httpx2.Client(base_url=server.base_url, timeout=10) as http:
        store = Store(http)
        wo_id = store.open()
        opened = time.time()
        (got,) = gateway.wait_for(1, timeout=5)
        assert got.at - opened < 2.0  # woken by the commit, not by a poll or the clock
        assert got.json()["to"] == PHONE
        assert wo_id in got.json()["text"]
        deadline = time.monotonic() + 5
        while True:  # the attempt is recorded just after the gateway answered
            lines = _json(http.get(f"/v1/work-orders/{wo_id}/deliveries",
                                   headers=_auth(store.tokens["agent"])))["items"]
            sms = [d for d in lines if d["channel"] == "sms"]
            if (sms and sms[0]["status"] != "pending") or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert [(d["status"], d["attempt"], d["destination"]) for d in sms] == [
            ("delivered", 1, "138****8000")]


def test_a_server_killed_mid_delivery_loses_and_duplicates_nothing(
        tmp_path: Path, database: list[str], gateway: HttpReceiver) -> None:
    # A short lease (8 s, twice the 4 s send timeout, above the gateway's 3 s): on
    # PostgreSQL the dead dispatcher's messages wait for it to run out.
    env = {"COLLABDESK_SMS_URL": gateway.url, "COLLABDESK_DELIVERY_TIMEOUT_SECONDS": "4",
           "COLLABDESK_OUTBOX_LEASE_SECONDS": "8"}
    gateway.delay = 3.0
    with serving(tmp_path, *database, env=env) as first, \
            httpx2.Client(base_url=first.base_url, timeout=10) as http:
        store = Store(http)
        opened = [store.open() for _ in range(5)]
        gateway.wait_for_arrivals(1)
        assert first.process is not None
        first.process.kill()  # SIGKILL, mid-send: the attempt is never recorded
        first.process.wait()
    gateway.delay = 0.0
    with serving(tmp_path, *database, env=env) as second, \
            httpx2.Client(base_url=second.base_url, timeout=10) as http:
        named = _texts_naming(gateway, opened, timeout=25)
        assert set(named) == set(opened), named  # every card's SMS, at least once
        assert all(n <= 2 for n in named.values()), named  # only the one in flight twice
        inbox = _json(http.get("/v1/inbox", headers=_auth(store.tokens["agent"]),
                               params={"limit": 50}))["items"]
        cards = Counter(i["work_order_id"] for i in inbox
                        if i["kind"] == "work_order_created")
        assert cards == Counter(opened)  # exactly one card per work order
        deadline = time.monotonic() + 20  # past the dead dispatcher's 8 s lease
        while True:
            statuses = {wo_id: [(d["status"], d["attempt"]) for d in _json(http.get(
                f"/v1/work-orders/{wo_id}/deliveries", headers=_auth(store.tokens["agent"])))[
                    "items"] if d["channel"] == "sms"] for wo_id in opened}
            if all(s == [("delivered", 1)] for s in statuses.values()) \
                    or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert statuses == {wo_id: [("delivered", 1)] for wo_id in opened}
