"""The HTTP toolkit of the API tests: `HttpWorld` (two stores and one account per role,
from `tests.builders.make_world` for speed, then everything under test over HTTP),
`build_world`, `assert_problem`, `ok`."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from collabdesk.services.context import ServiceContext
from tests.builders import make_world
from tests.conftest import ADMIN_TOKEN, START

JSON = dict[str, Any]
PROBLEM_TYPE = "application/problem+json"

# name -> (role, store)
ROLES: dict[str, tuple[str, str | None]] = {
    "consumer": ("consumer", None),
    "consumer2": ("consumer", None),
    "owner": ("merchant_owner", "s-tmall"),
    "agent": ("merchant_agent", "s-tmall"),
    "other_owner": ("merchant_owner", "s-taobao"),
    "triage": ("triage", None),
    "verifier": ("verifier", None),
    "adjudicator": ("adjudicator", None),
    "supervisor": ("supervisor", None),
    "integration": ("integration", None),
}
PLATFORM_STAFF = ("triage", "verifier", "adjudicator", "supervisor")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def iso(moment: datetime) -> str:
    return moment.isoformat()


def parse_time(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def assert_problem(response: Response, status: int, code: str, where: object = "") -> JSON:
    """A problem+json answer with the given status and stable `code` (api.md).

    `where` names the case when a test checks several in a loop."""
    assert response.status_code == status, (where, response.text)
    assert response.headers["content-type"].startswith(PROBLEM_TYPE), (where, response.headers)
    body: JSON = response.json()
    assert {"type", "title", "status", "detail", "code"} <= body.keys(), (where, body)
    assert body["status"] == status, (where, body)
    assert body["code"] == code, (where, body)
    assert isinstance(body["detail"], str), (where, body)
    assert body["detail"], (where, body)
    return body


def ok(response: Response, status: int = 200, where: object = "") -> JSON:
    assert response.status_code == status, (where, response.text)
    body: JSON = response.json()
    return body


@dataclass
class HttpWorld:
    """Stores `s-tmall` (tmall) and `s-taobao` (taobao), an account per role, and helpers
    that drive the API as those accounts."""

    client: TestClient
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    _orders: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    # ---- raw calls -----------------------------------------------------------------------

    def headers(self, who: str, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        token = ADMIN_TOKEN if who == "admin" else self.tokens[who]
        return {**bearer(token), **(extra or {})}

    def get(self, who: str, path: str, params: Mapping[str, Any] | None = None,
            headers: Mapping[str, str] | None = None) -> Response:
        return self.client.get(path, params=params, headers=self.headers(who, headers))

    def post(self, who: str, path: str, body: Any = None,
             headers: Mapping[str, str] | None = None) -> Response:
        return self.client.post(path, json={} if body is None else body,
                                headers=self.headers(who, headers))

    # ---- setup ---------------------------------------------------------------------------

    def account(self, name: str, role: str, store_id: str | None = None,
                **extra: Any) -> JSON:
        body = {"name": name, "role": role, **extra}
        if store_id is not None:
            body["store_id"] = store_id
        created = ok(self.post("admin", "/v1/accounts", body), 201)
        self.tokens[name] = created["token"]
        self.ids[name] = created["id"]
        return created

    def store(self, store_id: str, platform: str = "tmall", who: str = "admin") -> JSON:
        return ok(self.post(who, "/v1/stores",
                            {"id": store_id, "name": f"Store {store_id}",
                             "platform": platform}), 201)

    def order(self, *, consumer: str = "consumer", store_id: str = "s-tmall",
              kind: str = "standard", amount_cents: int = 10_000,
              paid_at: datetime | None = None) -> str:
        order_id = f"o-{next(self._orders)}"
        ok(self.post("integration", "/v1/orders", {
            "id": order_id, "store_id": store_id, "consumer_id": self.ids[consumer],
            "kind": kind, "amount_cents": amount_cents,
            "paid_at": iso(paid_at or START - timedelta(days=1))}), 201)
        return order_id

    # ---- work orders ---------------------------------------------------------------------

    def open(self, *, who: str | None = None, consumer: str = "consumer",
             store_id: str = "s-tmall", kind: str = "standard",
             amount_cents: int = 10_000) -> JSON:
        order_id = self.order(consumer=consumer, store_id=store_id, kind=kind,
                              amount_cents=amount_cents)
        return ok(self.post(who or consumer, "/v1/work-orders", {
            "order_id": order_id, "category": "damaged", "claim": "arrived broken",
            "requested_remedy": {"type": "refund", "amount_cents": 5_000}}), 201)

    def work_order(self, wo_id: str, who: str = "triage") -> JSON:
        return ok(self.get(who, f"/v1/work-orders/{wo_id}"))

    def now(self) -> datetime:
        return parse_time(ok(self.client.get("/v1/test-clock"))["now"])

    def advance(self, seconds: int) -> JSON:
        return ok(self.post("admin", "/v1/test-clock/advance", {"seconds": seconds}))

    def evidence(self, who: str, content: bytes = b"call log: rang twice",
                 filename: str = "log.txt") -> str:
        response = self.client.post("/v1/evidence", files={"file": (filename, content)},
                                    headers=self.headers(who))
        evidence_id: str = ok(response, 201)["id"]
        return evidence_id

    def contact(self, wo_id: str, *, outcome: str = "reached", who: str = "agent",
                contacted_at: datetime | None = None,
                evidence_ids: list[str] | None = None) -> Response:
        body: JSON = {"channel": "phone", "contacted_at": iso(contacted_at or self.now()),
                      "outcome": outcome, "summary": "called the consumer"}
        if evidence_ids is not None:
            body["evidence_ids"] = evidence_ids
        return self.post(who, f"/v1/work-orders/{wo_id}/contacts", body)

    def reply(self, wo_id: str, option: str, who: str = "agent", **fields: Any) -> Response:
        return self.post(who, f"/v1/work-orders/{wo_id}/reply", {"option": option, **fields})

    def in_adjudication(self, **open_kw: Any) -> JSON:
        """Opened, contact reached, replied 'no agreement'."""
        wo = self.open(**open_kw)
        ok(self.contact(wo["id"]), 201)
        return ok(self.reply(wo["id"], "unresolved_no_agreement",
                             statement="consumer wants more than we offer"))

    def awaiting_consumer(self) -> JSON:
        wo = self.open()
        ok(self.contact(wo["id"]), 201)
        return ok(self.reply(wo["id"], "resolved_agreed",
                             agreement={"type": "refund", "amount_cents": 3_000}))

    def awaiting_verification(self, option: str) -> JSON:
        wo = self.open()
        if option == "not_related":
            return ok(self.reply(wo["id"], "not_related", statement="not our parcel"))
        for _ in range(2):
            ok(self.contact(wo["id"], outcome="unreachable",
                            evidence_ids=[self.evidence("agent")]), 201)
        return ok(self.reply(wo["id"], "unresolved_unreachable"))

    def judged(self, ruling: str = "for_consumer") -> JSON:
        wo = self.in_adjudication()
        body: JSON = {"ruling": ruling, "rationale": "photos show the damage"}
        if ruling == "for_consumer":
            body["remedy"] = {"type": "refund", "amount_cents": 5_000}
        return ok(self.post("adjudicator", f"/v1/work-orders/{wo['id']}/judgment", body))


def build_world(client: TestClient, ctx: ServiceContext) -> HttpWorld:
    """Stores and accounts come from `tests.builders.make_world` (through the services,
    which is several times faster than over HTTP); this module's tests create them over
    HTTP where that is what they test."""
    made = make_world(ctx)
    world = HttpWorld(client)
    for name in ROLES:
        world.tokens[name] = made.tokens[name]
        world.ids[name] = made.accounts[name].id
    return world
