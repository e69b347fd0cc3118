"""The real command over real HTTP: `collabdesk serve --test-clock` and `serve --demo`.

Each server is a subprocess on a free port with its own data directory (SQLite); it is
always terminated (killed if it does not stop), whatever the test did.
"""

from __future__ import annotations

import itertools
import os
import re
import socket
import subprocess
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

ROOT = Path(__file__).resolve().parents[2]
COLLABDESK = ROOT / ".venv" / "bin" / "collabdesk"
ADMIN = "real-server-admin-token"
DAY = 24 * 3600


@dataclass
class Server:
    base_url: str
    stdout: Path
    stderr: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def port(self) -> int:
        return int(self.base_url.rsplit(":", 1)[1])

    def output(self) -> str:
        return self.stdout.read_text(encoding="utf-8")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@contextmanager
def serving(workdir: Path, *options: str, port: int | None = None,
            env: Mapping[str, str] | None = None) -> Iterator[Server]:
    """`collabdesk serve` with `options` (and `env` added to the environment), up and
    answering /healthz; stopped on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    port = port or _free_port()
    environ = {k: v for k, v in os.environ.items() if not k.startswith("COLLABDESK_")}
    environ["COLLABDESK_ADMIN_TOKEN"] = ADMIN
    environ.update(env or {})
    server = Server(f"http://127.0.0.1:{port}", workdir / "stdout.txt", workdir / "stderr.txt")
    with server.stdout.open("ab") as out, server.stderr.open("ab") as err:
        process = server.process = subprocess.Popen(
            [str(COLLABDESK), "serve", "--port", str(port), "--data-dir",
             str(workdir / "data"), *options],
            stdout=out, stderr=err, env=environ, cwd=workdir)
    try:
        deadline = time.monotonic() + 20
        while True:
            if process.poll() is not None:
                pytest.fail(f"collabdesk serve exited with {process.returncode}:\n"
                            f"{server.stderr.read_text(encoding='utf-8')}")
            try:
                if httpx2.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx2.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("collabdesk serve did not answer /healthz within 20 s")
            time.sleep(0.1)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with serving(tmp_path_factory.mktemp("serve"), "--test-clock") as running:
        yield running


@pytest.fixture
def http(server: Server) -> Iterator[httpx2.Client]:
    with httpx2.Client(base_url=server.base_url, timeout=10) as client:
        yield client


def _json(response: httpx2.Response, status: int = 200) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body: dict[str, Any] = response.json()
    return body


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_a_whole_work_order_life_over_real_http(http: httpx2.Client) -> None:
    admin = _auth(ADMIN)
    clock = datetime.fromisoformat(_json(http.get("/v1/test-clock"))["now"].replace("Z", "+00:00"))
    assert abs(clock - datetime.now(UTC)) < timedelta(minutes=1)  # starts at the real time
    _json(http.post("/v1/stores", headers=admin,
                    json={"id": "rs-tmall", "name": "Real store", "platform": "tmall"}), 201)
    tokens: dict[str, str] = {}
    ids: dict[str, str] = {}
    for name, role, store in (("consumer", "consumer", None),
                              ("owner", "merchant_owner", "rs-tmall"),
                              ("adjudicator", "adjudicator", None),
                              ("supervisor", "supervisor", None)):
        created = _json(http.post("/v1/accounts", headers=admin,
                                  json={"name": name, "role": role, "store_id": store}), 201)
        tokens[name], ids[name] = created["token"], created["id"]

    def as_(who: str) -> dict[str, str]:
        return _auth(tokens[who])

    paid_at = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    _json(http.post("/v1/orders", headers=admin, json={
        "id": "ro-1", "store_id": "rs-tmall", "consumer_id": ids["consumer"],
        "kind": "standard", "amount_cents": 8_800, "paid_at": paid_at}), 201)

    wo = _json(http.post("/v1/work-orders", headers=as_("consumer"), json={
        "order_id": "ro-1", "category": "not_received", "claim": "parcel never came"}), 201)
    assert wo["state"] == "awaiting_merchant"
    created_at = datetime.fromisoformat(wo["created_at"].replace("Z", "+00:00"))
    due_at = datetime.fromisoformat(wo["due_at"].replace("Z", "+00:00"))
    assert due_at - created_at == timedelta(hours=24)
    path = f"/v1/work-orders/{wo['id']}"
    card = _json(http.get("/v1/inbox", headers=as_("owner")))["items"]
    assert [(i["kind"], i["work_order_id"]) for i in card] == [
        ("work_order_created", wo["id"])]

    _json(http.post(f"{path}/contacts", headers=as_("owner"), json={
        "channel": "phone", "contacted_at": wo["created_at"], "outcome": "reached",
        "summary": "consumer wants a full refund"}), 201)

    advanced = _json(http.post("/v1/test-clock/advance", headers=admin,
                               json={"seconds": DAY + 60}))
    assert advanced["fired"] == 3  # two reminders and the timeout
    assert datetime.fromisoformat(advanced["now"].replace("Z", "+00:00")) > due_at
    timed_out = _json(http.get(path, headers=as_("owner")))
    assert timed_out["state"] == "in_adjudication"
    assert timed_out["evidence_waived"] is True
    late = http.post(f"{path}/reply", headers=as_("owner"),
                     json={"option": "unresolved_no_agreement", "statement": "too late"})
    assert late.status_code == 409
    assert late.json()["code"] == "reply_window_closed"

    judged = _json(http.post(f"{path}/judgment", headers=as_("adjudicator"), json={
        "ruling": "for_consumer", "rationale": "the store gave no evidence",
        "remedy": {"type": "refund", "amount_cents": 8_800}}))
    assert (judged["state"], judged["counts_as_dispute"]) == ("judged", True)

    appealed = _json(http.post(f"{path}/appeal", headers=as_("owner"),
                               json={"statement": "the courier confirms delivery"}))
    assert appealed["state"] == "under_appeal"

    decided = _json(http.post(f"{path}/appeal-decision", headers=as_("supervisor"),
                              json={"decision": "overturned", "rationale": "signed receipt"}))
    assert decided["state"] == "judged"
    assert decided["appeal"]["decision"] == "overturned"
    assert decided["counts_as_dispute"] is False

    events = _json(http.get(f"{path}/events", headers=as_("consumer")))["items"]
    assert [e["type"] for e in events] == ["opened", "contact_logged", "timed_out", "judged",
                                           "appealed", "appeal_decided"]
    assert events[0]["prev_hash"] is None
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(events))
    consumer_inbox = [i["kind"] for i in
                      _json(http.get("/v1/inbox", headers=as_("consumer")))["items"]]
    assert consumer_inbox == ["appeal_decided", "judged"]


def test_demo_server_prints_its_accounts_and_serves_their_work_orders(
        tmp_path: Path) -> None:
    with serving(tmp_path, "--demo") as demo, \
            httpx2.Client(base_url=demo.base_url, timeout=10) as http:
        output = demo.output()
        for token in ("demo-consumer", "demo-owner", "demo-agent", "demo-triage",
                      "demo-verifier", "demo-adjudicator", "demo-supervisor"):
            assert token in output
        printed = dict(re.findall(r"work order (\w+)\s+(wo_\w+)", output))
        assert {"awaiting_merchant", "awaiting_consumer", "awaiting_verification",
                "in_adjudication", "under_appeal", "worry_free", "resolved", "judged",
                "dismissed", "withdrawn", "settled"} <= printed.keys()

        listed = {w["id"]: w["state"] for w in _json(http.get(
            "/v1/work-orders", headers=_auth("demo-agent"), params={"limit": 500}))["items"]}
        for label, wo_id in printed.items():
            state = "judged" if label == "judged_overturned" else label
            assert listed.get(wo_id) == state, (label, wo_id)
            got = _json(http.get(f"/v1/work-orders/{wo_id}", headers=_auth("demo-triage")))
            assert got["state"] == state
        waived = _json(http.get(f"/v1/work-orders/{printed['in_adjudication']}",
                                headers=_auth("demo-owner")))
        assert waived["evidence_waived"] is True
        assert _json(http.get("/v1/inbox", headers=_auth("demo-consumer")))["items"]
