"""delivery: how long after a work order is committed its SMS reaches the gateway and its
webhook the store's receiver, against a `collabdesk serve` subprocess on loopback; the
baseline is a bare POST from the bench process to the same gateway."""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import re
import secrets
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from .core import Benchmark, Figure, Goal, Options, percentile, progress
from .db import place
from .http import HOST, _env, free_port, serving

DESCRIPTION = ("latency from a work order's commit to its SMS at the gateway and its "
               "webhook at the receiver, against a bare POST to the gateway")

WORK_ORDER_ID = re.compile(r"\bwo_[0-9a-f]{23}\b")
STORE = "s-dbench"
# A message not arrived after this long without any arrival (or DRAIN_MAX_S after the
# last work order was opened) counts as lost.
DRAIN_SECONDS = 30.0
DRAIN_MAX_S = 900.0


@dataclass
class Arrival:
    at: float  # time.time() when the body was read
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    """A loopback HTTP endpoint answering 200 to every POST and recording its arrival."""

    url: str
    path: str
    arrivals: list[Arrival] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def taken(self, path: str | None = None) -> list[Arrival]:
        with self.lock:
            return [a for a in self.arrivals if path is None or a.path == path]

    def clear(self) -> None:
        with self.lock:
            self.arrivals.clear()


@contextmanager
def receiver(path: str) -> Iterator[Receiver]:
    holder: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
            arrived = time.time()
            self.send_response(200)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")
            got = holder[0]
            with got.lock:
                got.arrivals.append(Arrival(arrived, self.path,
                                            {k.lower(): v for k, v in self.headers.items()},
                                            body))

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer((HOST, 0), Handler)
    server.daemon_threads = True
    holder.append(Receiver(f"http://{HOST}:{server.server_address[1]}{path}", path))
    thread = threading.Thread(target=server.serve_forever, daemon=True,
                              name=f"receiver{path}")
    thread.start()
    try:
        yield holder[0]
    finally:
        server.shutdown()
        server.server_close()


class Api:
    """JSON over one keep-alive connection to the server."""

    def __init__(self, port: int) -> None:
        self.conn = http.client.HTTPConnection(HOST, port, timeout=30)

    def call(self, method: str, path: str, token: str, body: Any = None,
             status: int = 200) -> tuple[Any, float]:
        """The answer's JSON and time.time() when its status line and headers arrived."""
        payload = None if body is None else json.dumps(body).encode()
        headers = {"Authorization": f"Bearer {token}", "Accept": "application/json"}
        if payload is not None:
            headers["Content-Type"] = "application/json"
        self.conn.request(method, path, body=payload, headers=headers)
        answer = self.conn.getresponse()
        at = time.time()
        data = answer.read()
        if answer.status != status:
            raise RuntimeError(f"{method} {path}: {answer.status} {data[:500]!r}")
        return json.loads(data) if data else None, at

    def close(self) -> None:
        self.conn.close()


@dataclass
class Setup:
    consumer: str  # token
    orders: list[str]
    secret: str  # the webhook's


def _set_up(port: int, admin: str, hook_url: str, orders: int) -> Setup:
    api = Api(port)
    try:
        api.call("POST", "/v1/stores", admin, {"id": STORE, "name": "Delivery bench store",
                                               "platform": "tmall"}, 201)

        def account(name: str, role: str, **extra: Any) -> dict[str, Any]:
            made: dict[str, Any] = api.call("POST", "/v1/accounts", admin,
                                            {"name": name, "role": role, **extra}, 201)[0]
            return made
        owner = account("Bench owner", "merchant_owner", store_id=STORE)
        account("Bench agent", "merchant_agent", store_id=STORE, phone="13800138000",
                language="en")
        consumer = account("Bench consumer", "consumer")
        integration = account("Bench ERP", "integration")
        hook_path = "/v1/stores/" + STORE + "/webhooks"
        hook: dict[str, Any] = api.call("POST", hook_path, owner["token"], {
            "url": hook_url, "events": ["work_order.created"]}, 201)[0]
        paid = (datetime.now(UTC) - timedelta(days=1)).isoformat()
        ids = []
        for i in range(orders):
            order_id = f"o-dbench-{i}"
            api.call("POST", "/v1/orders", integration["token"], {
                "id": order_id, "store_id": STORE, "consumer_id": consumer["id"],
                "kind": "standard", "amount_cents": 10_000, "paid_at": paid}, 201)
            ids.append(order_id)
        return Setup(consumer["token"], ids, hook["secret"])
    finally:
        api.close()


def _open(api: Api, token: str, order_id: str) -> tuple[str, float]:
    """Open a work order; its id and time.time() when the 201 arrived."""
    body, at = api.call("POST", "/v1/work-orders", token, {
        "order_id": order_id, "category": "damaged", "claim": "arrived broken",
        "requested_remedy": {"type": "refund", "amount_cents": 5_000}}, 201)
    wo_id: str = body["id"]
    return wo_id, at


def _steady(port: int, token: str, orders: Sequence[str], rate: float) -> dict[str, float]:
    """One work order every 1/rate s (on a fixed schedule, not after each answer)."""
    api = Api(port)
    committed: dict[str, float] = {}
    try:
        start = time.monotonic()
        for n, order_id in enumerate(orders):
            wait = start + n / rate - time.monotonic()
            if wait > 0:
                time.sleep(wait)
            wo_id, at = _open(api, token, order_id)
            committed[wo_id] = at
    finally:
        api.close()
    return committed


def _burst(port: int, token: str, orders: Sequence[str],
           threads: int) -> tuple[dict[str, float], float, float]:
    """As fast as `threads` clients can: the commits, when the burst started, and when
    its last answer arrived."""
    committed: dict[str, float] = {}
    lock = threading.Lock()
    errors: list[BaseException] = []
    ready = threading.Barrier(threads + 1)

    def client(share: Sequence[str]) -> None:
        api = Api(port)
        try:
            api.call("GET", "/v1/accounts/me", token)  # connected before the burst starts
            ready.wait()
            for order_id in share:
                wo_id, at = _open(api, token, order_id)
                with lock:
                    committed[wo_id] = at
        except BaseException as exc:
            errors.append(exc)
        finally:
            api.close()

    workers = [threading.Thread(target=client, args=(orders[i::threads],), daemon=True)
               for i in range(threads)]
    for w in workers:
        w.start()
    ready.wait()
    started = time.time()
    for w in workers:
        w.join()
    if errors:
        raise RuntimeError(f"a burst client failed: {errors[0]!r}")
    return committed, started, max(committed.values())


def _bare_posts(url: str, count: int) -> list[float]:
    """Round trips of a bare POST {"to", "text"} to the gateway, a new connection each
    (as the SMS sender makes one per message), in milliseconds."""
    host, _, rest = url.removeprefix("http://").partition("/")
    name, _, port = host.partition(":")
    body = json.dumps({"to": "13800138000", "text": "baseline " + "x" * 120}).encode()
    laps = []
    for _ in range(count):
        t0 = time.perf_counter()
        conn = http.client.HTTPConnection(name, int(port), timeout=10)
        conn.request("POST", "/" + rest, body=body,
                     headers={"Content-Type": "application/json"})
        conn.getresponse().read()
        conn.close()
        laps.append((time.perf_counter() - t0) * 1000)
        time.sleep(0.005)
    return laps


def _verified(secret: str, arrival: Arrival) -> bool:
    parts = dict(p.split("=", 1) for p in arrival.headers.get("collabdesk-signature", "")
                 .split(",") if "=" in p)
    expected = hmac.new(secret.encode(), parts.get("t", "").encode() + b"." + arrival.body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, parts.get("v1", ""))


@dataclass
class Matched:
    latencies_ms: list[float]  # one per work order that arrived (its first arrival)
    last_at: float  # when the last one arrived
    lost: int
    repeats: int  # arrivals beyond the first for a work order (at least once)


def _match(committed: dict[str, float], arrivals: list[Arrival], key: str,
           secret: str | None = None) -> Matched:
    first: dict[str, float] = {}
    repeats = 0
    for a in arrivals:
        if key == "sms":
            found = WORK_ORDER_ID.search(json.loads(a.body)["text"])
            wo_id = found.group(0) if found else None
        else:
            if secret is not None and not _verified(secret, a):
                raise RuntimeError(f"a webhook with a bad signature: {a.headers}")
            wo_id = json.loads(a.body)["data"]["work_order"]["id"]
        if wo_id not in committed:
            continue
        if wo_id in first:
            repeats += 1
            first[wo_id] = min(first[wo_id], a.at)
        else:
            first[wo_id] = a.at
    latencies = [(first[w] - committed[w]) * 1000 for w in committed if w in first]
    return Matched(latencies, max(first.values(), default=0.0), len(committed) - len(first),
                   repeats)


def _drain(committed: dict[str, float], *receivers: Receiver) -> None:
    """Wait until every receiver has an arrival per work order, as long as arrivals keep
    coming: what has not arrived after DRAIN_SECONDS without any arrival (or DRAIN_MAX_S
    in all) counts as lost."""
    started = last_change = time.monotonic()
    counts: list[int] = []
    while True:
        now = time.monotonic()
        seen = [len(r.taken(r.path)) for r in receivers]
        if all(n >= len(committed) for n in seen):
            time.sleep(0.2)  # a repeat arriving just after would still be counted
            return
        if seen != counts:
            counts, last_change = seen, now
        if now - last_change > DRAIN_SECONDS or now - started > DRAIN_MAX_S:
            progress(f"delivery: gave up waiting after {now - started:.0f} s: {counts} of "
                     f"{len(committed)} arrived")
            return
        time.sleep(0.05)


def _summary(label: str, m: Matched) -> str:
    if not m.latencies_ms:
        return f"{label}: none arrived ({m.lost} lost)"
    ms = m.latencies_ms
    return (f"{label}: {len(ms)} arrived, p50 {percentile(ms, 50):.1f} ms, "
            f"p90 {percentile(ms, 90):.1f} ms, p99 {percentile(ms, 99):.1f} ms, "
            f"max {max(ms):.1f} ms, min {min(ms):.1f} ms; {m.lost} lost, "
            f"{m.repeats} repeats")


def _latency_figures(prefix: str, m: Matched, base: float,
                     quantiles: Sequence[int]) -> list[Figure]:
    return [Figure(f"{prefix}_p{q}_ms", percentile(m.latencies_ms, q) if m.latencies_ms
                   else 0.0, "ms", "bare_post_p50_ms", base) for q in quantiles]


def run(opts: Options) -> list[Figure]:
    steady_n = opts.pick(smoke=10, quick=200, full=2_000)
    # A light load too: the wake-up and sending alone, with no queue behind them.
    light_n = opts.pick(smoke=4, quick=40, full=200)
    light_rate = 2.0
    burst_n = opts.pick(smoke=10, quick=100, full=500)
    rate = opts.pick(smoke=20.0, quick=20.0, full=20.0)
    bare_n = opts.pick(smoke=10, quick=100, full=200)
    threads = 4
    collabdesk = Path(sys.executable).with_name("collabdesk")
    if not collabdesk.exists():
        raise SystemExit(f"no `collabdesk` beside {sys.executable}: run `uv sync` first")
    with place(opts) as where, receiver("/sms") as sms, receiver("/hook") as hook:
        port = free_port()
        admin = secrets.token_urlsafe(24)
        scratch = where.scratch
        server_env = _env(COLLABDESK_ADMIN_TOKEN=admin, COLLABDESK_SMS_URL=sms.url)
        serve = [str(collabdesk), "serve", "--host", HOST, "--port", str(port),
                 "--database-url", where.url, "--data-dir", str(scratch / "server")]
        with serving("collabdesk serve", serve, port, scratch / "serve.log", server_env):
            progress(f"delivery: a store, its accounts, a webhook, "
                     f"{light_n + steady_n + burst_n + 1:,} orders")
            setup = _set_up(port, admin, hook.url, light_n + steady_n + burst_n + 1)
            warm, orders = setup.orders[0], setup.orders[1:]
            light_orders, orders = orders[:light_n], orders[light_n:]
            steady_orders, burst_orders = orders[:steady_n], orders[steady_n:]
            warmed = _steady(port, setup.consumer, [warm], rate)
            _drain(warmed, sms, hook)
            sms.clear()
            hook.clear()

            progress(f"delivery: {light_n:,} work orders at {light_rate:g}/s")
            light = _steady(port, setup.consumer, light_orders, light_rate)
            _drain(light, sms, hook)
            light_sms = _match(light, sms.taken("/sms"), "sms")
            light_hook = _match(light, hook.taken("/hook"), "webhook", setup.secret)
            progress("delivery: light " + _summary("sms", light_sms))
            progress("delivery: light " + _summary("webhook", light_hook))
            sms.clear()
            hook.clear()

            bare = _bare_posts(sms.url + "-bare", bare_n // 2)
            progress(f"delivery: {steady_n:,} work orders at {rate:g}/s")
            committed = _steady(port, setup.consumer, steady_orders, rate)
            _drain(committed, sms, hook)
            bare += _bare_posts(sms.url + "-bare", bare_n - bare_n // 2)
            base = percentile(bare, 50)
            steady_sms = _match(committed, sms.taken("/sms"),
                                "sms")
            steady_hook = _match(committed, hook.taken("/hook"), "webhook", setup.secret)
            progress(f"delivery: bare POST to the gateway: p50 {base:.2f} ms, "
                     f"p99 {percentile(bare, 99):.2f} ms ({len(bare)} POSTs)")
            progress(f"delivery: steady: the last SMS arrived "
                     f"{steady_sms.last_at - max(committed.values()):.2f} s after the last "
                     f"201, the last webhook {steady_hook.last_at - max(committed.values()):.2f} s")
            progress("delivery: steady " + _summary("sms", steady_sms))
            progress("delivery: steady " + _summary("webhook", steady_hook))
            sms.clear()
            hook.clear()

            progress(f"delivery: a burst of {burst_n:,} work orders from {threads} clients")
            burst, started, last_answer = _burst(port, setup.consumer, burst_orders, threads)
            _drain(burst, sms, hook)
            burst_sms = _match(burst, sms.taken("/sms"), "sms")
            burst_hook = _match(burst, hook.taken("/hook"), "webhook", setup.secret)
            progress(f"delivery: burst: last 201 {last_answer - started:.2f} s after the "
                     f"start, last SMS {burst_sms.last_at - started:.2f} s, last webhook "
                     f"{burst_hook.last_at - started:.2f} s")
            progress("delivery: burst " + _summary("sms", burst_sms))
            progress("delivery: burst " + _summary("webhook", burst_hook))
    lost = (light_sms.lost + light_hook.lost + steady_sms.lost + steady_hook.lost
            + burst_sms.lost + burst_hook.lost)
    expected = 2 * (len(light) + len(committed) + len(burst))
    if lost:
        progress(f"delivery: {lost} deliveries LOST (of {expected})")
    progress("delivery: t_commit is when the 201 arrived; the commit was a little earlier, "
             "so every latency is understated by up to the answer's own trip (~1 ms)")
    base_name = "bare_post_p50_ms"
    return [
        *_latency_figures("sms", steady_sms, base, (50, 90, 99)),
        Figure("sms_max_ms", max(steady_sms.latencies_ms, default=0.0), "ms", base_name, base),
        *_latency_figures("webhook", steady_hook, base, (50, 90, 99)),
        Figure("webhook_max_ms", max(steady_hook.latencies_ms, default=0.0), "ms", base_name,
               base),
        *_latency_figures("light_sms", light_sms, base, (50, 99)),
        *_latency_figures("light_webhook", light_hook, base, (50, 99)),
        *_latency_figures("burst_sms", burst_sms, base, (50, 99)),
        *_latency_figures("burst_webhook", burst_hook, base, (50, 99)),
        Figure("burst_last_sms_s", burst_sms.last_at - started, "s", "burst_last_answer_s",
               last_answer - started),
        Figure("delivered", float(expected - lost), "msgs", "expected", float(expected),
               Goal(">=", 1.0)),
    ]


BENCHMARK = Benchmark("delivery", DESCRIPTION, run)
