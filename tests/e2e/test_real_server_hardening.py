"""The real server, attacked and crashed: huge bodies cost it no memory, a retry right after
an answer is always the replay, and a kill -9 in the middle of writes loses nothing that
was acknowledged and leaves no key stuck. Run as the operator runs it: `collabdesk serve`
on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.test_real_server import ADMIN, COLLABDESK, serving

MIB = 1024 * 1024


def _auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> list[str]:
    """Extra `serve` options: SQLite in the data directory, or the test PostgreSQL."""
    if request.param == "sqlite":
        return []
    return ["--database-url", request.getfixturevalue("postgres_database_url")]


# ---- memory -----------------------------------------------------------------------------------

def _kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} for {pid}")


def _reset_peak(pid: int) -> None:
    Path(f"/proc/{pid}/clear_refs").write_text("5")  # VmHWM := VmRSS (Linux >= 4.0)


def send_raw(port: int, method: str, path: str, headers: dict[str, str], size: int,
             chunked: bool = False) -> int | None:
    """Send `size` bytes of body the way a hostile client would (all of it, unless the
    server hangs up); the status the server answered, or None if it was cut off."""
    head = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {size}")
    block = b"\0" * MIB
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        try:
            sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
            sent = 0
            while sent < size:
                if chunked:
                    sock.sendall(b"%x\r\n" % len(block) + block + b"\r\n")
                else:
                    sock.sendall(block)
                sent += len(block)
            if chunked:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused early and hung up: what we want
        try:
            answer = sock.recv(4096)
        except (ConnectionResetError, TimeoutError):
            return None
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else None


def test_huge_bodies_cost_the_server_no_memory(tmp_path: Path) -> None:
    with serving(tmp_path) as server, httpx2.Client(base_url=server.base_url) as http:
        assert server.process is not None
        pid = server.process.pid
        for _ in range(20):  # warm up every path once
            http.get("/v1/work-orders", headers=_auth(ADMIN))
            http.post("/v1/work-orders", headers=_auth(ADMIN), json={"order_id": "x"})
        before = _kib(pid, "VmRSS")
        _reset_peak(pid)
        statuses = [
            send_raw(server.port, "POST", "/v1/evidence",
                     {"Authorization": "Bearer bogus", "Idempotency-Key": "k1",
                      "Content-Type": "multipart/form-data; boundary=x"}, 200 * MIB),
            send_raw(server.port, "POST", "/v1/work-orders",
                     {"Content-Type": "application/json"}, 100 * MIB),
            send_raw(server.port, "POST", "/v1/evidence",
                     {**_auth(ADMIN), "Idempotency-Key": "k2",
                      "Content-Type": "multipart/form-data; boundary=x"}, 200 * MIB,
                     chunked=True),
            send_raw(server.port, "POST", "/v1/work-orders",
                     {**_auth(ADMIN), "Content-Type": "application/json"}, 100 * MIB),
            send_raw(server.port, "POST", "/v1/work-orders",
                     {**_auth(ADMIN), "Content-Type": "application/json"}, 100 * MIB,
                     chunked=True),
        ]
        peak = _kib(pid, "VmHWM")
        assert http.get("/healthz").status_code == 200
    grew_mib = (peak - before) / 1024
    assert grew_mib < 40, f"the server grew by {grew_mib:.0f} MiB"
    answered = [s for s in statuses if s is not None]
    assert set(answered) <= {401, 413}, statuses


# ---- an immediate retry is always the replay ----------------------------------------------

def _setup(http: httpx2.Client) -> tuple[str, str]:
    admin = _auth(ADMIN)
    http.post("/v1/stores", headers=admin,
              json={"id": "h-store", "name": "Store", "platform": "tmall"})
    consumer = http.post("/v1/accounts", headers=admin,
                         json={"name": "c", "role": "consumer"}).json()
    http.post("/v1/orders", headers=admin, json={
        "id": "h-order", "store_id": "h-store", "consumer_id": consumer["id"],
        "amount_cents": 100, "paid_at": "2026-11-01T00:00:00Z"})
    wo = http.post("/v1/work-orders", headers=_auth(consumer["token"]),
                   json={"order_id": "h-order", "category": "other", "claim": "c"}).json()
    return consumer["token"], wo["id"]


def test_a_retry_the_moment_an_answer_arrives_is_always_the_replay(
        tmp_path: Path, database: list[str]) -> None:
    with serving(tmp_path, *database) as server, \
            httpx2.Client(base_url=server.base_url, timeout=10) as http:
        token, wo_id = _setup(http)
        path = f"/v1/work-orders/{wo_id}/notes"
        for n in range(25):
            headers = {**_auth(token), "Idempotency-Key": f"note-{n}"}
            first = http.post(path, headers=headers, json={"text": f"note {n}"})
            assert first.status_code == 201, first.text
            again = http.post(path, headers=headers, json={"text": f"note {n}"})
            assert again.status_code == 201, (n, again.text)
            assert again.headers["idempotent-replayed"] == "true"
            assert again.json() == first.json()
        notes = http.get(path, headers=_auth(token), params={"limit": 500}).json()["items"]
        assert len(notes) == 25


# ---- kill -9 in the middle of writes ------------------------------------------------------

def _writer(base_url: str, token: str, wo_id: str, acknowledged: list[dict[str, Any]],
            stop: threading.Event) -> None:
    with httpx2.Client(base_url=base_url, timeout=5) as http:
        n = 0
        while not stop.is_set():
            n += 1
            key = f"{threading.get_ident()}-{n}"
            try:
                answer = http.post(f"/v1/work-orders/{wo_id}/notes",
                                   headers={**_auth(token), "Idempotency-Key": key},
                                   json={"text": f"note {key}"})
            except httpx2.TransportError:
                return  # the server died under us
            if answer.status_code == 201:
                acknowledged.append({"key": key, "id": answer.json()["id"]})


def test_a_kill_9_mid_write_loses_nothing_acknowledged_and_leaves_no_key_stuck(
        tmp_path: Path, database: list[str]) -> None:
    acknowledged: list[dict[str, Any]] = []
    with serving(tmp_path, "--test-clock", *database) as server:
        with httpx2.Client(base_url=server.base_url, timeout=10) as http:
            token, wo_id = _setup(http)
        stop = threading.Event()
        writers = [threading.Thread(target=_writer, args=(server.base_url, token, wo_id,
                                                          acknowledged, stop))
                   for _ in range(4)]
        for writer in writers:
            writer.start()
        time.sleep(2.0)
        assert server.process is not None
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait()
        stop.set()
        for writer in writers:
            writer.join(timeout=10)
    assert len(acknowledged) > 10
    with serving(tmp_path, "--test-clock", *database, port=server.port) as again, \
            httpx2.Client(base_url=again.base_url, timeout=10) as http:
        stored = {n["id"] for n in http.get(
            f"/v1/work-orders/{wo_id}/notes", headers=_auth(token),
            params={"limit": 500}).json()["items"]}
        assert {a["id"] for a in acknowledged} <= stored  # every 201 was stored
        # A reservation the crash left behind lapses: move past its lease, then the
        # last keys each writer used answer again (replay, or a fresh run).
        http.post("/v1/test-clock/advance", headers=_auth(ADMIN), json={"seconds": 61})
        for entry in acknowledged[-5:]:
            replay = http.post(f"/v1/work-orders/{wo_id}/notes",
                               headers={**_auth(token), "Idempotency-Key": entry["key"]},
                               json={"text": f"note {entry['key']}"})
            assert replay.status_code == 201
            assert replay.json()["id"] == entry["id"]
    verify = subprocess.run([str(COLLABDESK), "audit", "verify", "--data-dir",
                             str(tmp_path / "data"), *database], capture_output=True,
                            text=True, timeout=60, check=False,
                            env={k: v for k, v in os.environ.items()
                                 if not k.startswith("COLLABDESK_")})
    assert verify.returncode == 0, verify.stdout + verify.stderr

