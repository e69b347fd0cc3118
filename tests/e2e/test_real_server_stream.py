"""`GET /v1/stream` on the real server (`collabdesk serve --test-clock`, SQLite and
PostgreSQL), read by a real HTTP client as it streams: who gets which items, resuming
with `Last-Event-ID`, the heartbeat, items committed by another process, and a server
that stops while streams are open. The hub's logic alone: tests/unit/test_stream.py."""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from sqlalchemy import Engine

from collabdesk.bootstrap import build
from collabdesk.domain.records import InboxItem, InboxKind
from collabdesk.services.context import new_id
from collabdesk.settings import Settings
from tests.conftest import _truncate
from tests.e2e.test_real_server import ADMIN, Server, serving

HEARTBEAT = 1  # seconds: the server's COLLABDESK_STREAM_HEARTBEAT_SECONDS here
ENV = {"COLLABDESK_STREAM_HEARTBEAT_SECONDS": str(HEARTBEAT),
       "COLLABDESK_STREAM_POLL_SECONDS": "0.2"}
INBOX_KEYS = {"id", "kind", "work_order_id", "created_at", "text", "read"}
JSON = dict[str, Any]


@dataclass
class Event:
    id: str | None = None
    data: str | None = None
    retry: int | None = None
    comments: list[str] = field(default_factory=list)

    def item(self) -> JSON:
        assert self.data is not None
        value: JSON = json.loads(self.data)
        return value


class Stream:
    """An open `GET /v1/stream`, parsed as it arrives. Reads return at least every
    heartbeat (the server's comment lines), so a deadline is never overshot by more."""

    def __init__(self, response: httpx2.Response) -> None:
        self.response = response
        self._lines = response.iter_lines()
        self.heartbeats = 0
        self.ended = False

    def _next_block(self, deadline: float) -> Event | None:
        event = Event()
        started = False  # a block is read whole (it arrives whole), past the deadline
        while started or time.monotonic() < deadline:
            try:
                line = next(self._lines)
            except StopIteration:
                self.ended = True
                return None
            if line == "":
                started = False
                if event.comments and event.data is None and event.retry is None:
                    self.heartbeats += 1
                    event = Event()
                    continue
                return event
            started = True
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "":
                event.comments.append(value)
            elif name == "id":
                event.id = value
            elif name == "data":
                event.data = value if event.data is None else f"{event.data}\n{value}"
            elif name == "retry":
                event.retry = int(value)
            else:
                raise AssertionError(f"unexpected field {line!r}")
        return None

    def next(self, within: float = 5.0) -> Event:
        event = self._next_block(time.monotonic() + within)
        assert event is not None, f"no event within {within} s (ended: {self.ended})"
        return event

    def items(self, count: int, within: float = 5.0) -> list[JSON]:
        deadline = time.monotonic() + within
        got: list[JSON] = []
        while len(got) < count:
            event = self._next_block(deadline)
            assert event is not None, f"{len(got)} of {count} items within {within} s"
            assert event.id is not None, event
            assert event.data is not None, event
            item = event.item()
            assert event.id == item["id"]
            got.append(item)
        return got

    def quiet_for(self, seconds: float) -> None:
        """Nothing but heartbeats for `seconds`."""
        event = self._next_block(time.monotonic() + seconds)
        assert event is None, f"unexpected event {event}"


@dataclass
class Live:
    server: Server
    http: httpx2.Client
    database_url: str
    tokens: dict[str, str] = field(default_factory=dict)
    ids: dict[str, str] = field(default_factory=dict)
    _orders: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {ADMIN if who == 'admin' else self.tokens[who]}"}

    def post(self, who: str, path: str, body: JSON, status: int = 201) -> JSON:
        response = self.http.post(path, json=body, headers=self.auth(who))
        assert response.status_code == status, response.text
        answer: JSON = response.json()
        return answer

    def inbox(self, who: str) -> list[JSON]:
        response = self.http.get("/v1/inbox", headers=self.auth(who), params={"limit": 500})
        assert response.status_code == 200, response.text
        items: list[JSON] = response.json()["items"]
        return items

    @contextmanager
    def stream(self, who: str, headers: dict[str, str] | None = None,
               params: dict[str, str] | None = None) -> Iterator[Stream]:
        with httpx2.Client(base_url=self.server.base_url,
                           timeout=httpx2.Timeout(10, read=HEARTBEAT + 4)) as client, \
                client.stream("GET", "/v1/stream", headers={**self.auth(who), **(headers or {})},
                              params=params) as response:
            assert response.status_code == 200, response.read()
            assert response.headers["content-type"].startswith("text/event-stream")
            stream = Stream(response)
            assert stream.next().retry == 3000  # first, before anything else
            yield stream

    def open_work_order(self) -> JSON:
        order_id = f"ls-{next(self._orders)}"
        self.post("admin", "/v1/orders", {
            "id": order_id, "store_id": "ls-tmall", "consumer_id": self.ids["consumer"],
            "kind": "standard", "amount_cents": 8_800,
            "paid_at": (datetime.now(UTC) - timedelta(days=1)).isoformat()})
        return self.post("consumer", "/v1/work-orders", {
            "order_id": order_id, "category": "not_received", "claim": "never came"})


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql",
                                                                marks=pytest.mark.postgres)])
def live(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Live]:
    workdir = tmp_path_factory.mktemp("stream")
    if request.param == "sqlite":
        options: list[str] = []
        database_url = f"sqlite:///{workdir / 'data' / 'collabdesk.db'}"
    else:
        engine: Engine = request.getfixturevalue("_postgres_engine")
        _truncate(engine)
        database_url = engine.url.render_as_string(hide_password=False)
        options = ["--database-url", database_url]
    with serving(workdir, "--test-clock", *options, env=ENV) as server, \
            httpx2.Client(base_url=server.base_url, timeout=10) as http:
        yield _world(server, http, database_url)


def _world(server: Server, http: httpx2.Client, database_url: str) -> Live:
    """A store with its owner and two agents (who get its cards), and a consumer."""
    world = Live(server, http, database_url)
    world.post("admin", "/v1/stores",
               {"id": "ls-tmall", "name": "Live store", "platform": "tmall"})
    for name, role, store in (("consumer", "consumer", None),
                              ("owner", "merchant_owner", "ls-tmall"),
                              ("agent", "merchant_agent", "ls-tmall"),
                              ("agent2", "merchant_agent", "ls-tmall")):
        created = world.post("admin", "/v1/accounts",
                             {"name": name, "role": role, "store_id": store})
        world.tokens[name], world.ids[name] = created["token"], created["id"]
    return world


def test_the_stream_needs_a_token(live: Live) -> None:
    for headers in ({}, {"Authorization": "Bearer nobody-has-this"}):
        response = live.http.get("/v1/stream", headers=headers)
        assert response.status_code == 401
        assert response.headers["content-type"].startswith("application/problem+json")
        assert response.json()["code"] == "unauthenticated"
        assert response.headers["www-authenticate"] == "Bearer"


def test_an_over_long_last_event_id_is_refused(live: Live) -> None:
    long_id = "x" * 65
    for response in (live.http.get("/v1/stream", headers={**live.auth("agent"),
                                                           "Last-Event-ID": long_id}),
                     live.http.get("/v1/stream", headers=live.auth("agent"),
                                   params={"last_event_id": long_id})):
        assert response.status_code == 422, response.request.url
        assert response.json()["code"] == "validation_error"


def test_a_new_work_orders_card_reaches_the_stores_streams_and_nobody_elses(
        live: Live) -> None:
    with ExitStack() as stack:
        agent = stack.enter_context(live.stream("agent"))
        agent_again = stack.enter_context(live.stream("agent"))  # a second tab
        agent2 = stack.enter_context(live.stream("agent2"))
        owner = stack.enter_context(live.stream("owner"))
        consumer = stack.enter_context(live.stream("consumer"))
        wo = live.open_work_order()
        [card] = agent.items(1)
        assert set(card) == INBOX_KEYS
        assert (card["kind"], card["work_order_id"]) == ("work_order_created", wo["id"])
        # Exactly the item GET /v1/inbox shows.
        assert card == next(i for i in live.inbox("agent") if i["id"] == card["id"])
        assert agent_again.items(1) == [card]
        [card2] = agent2.items(1)
        assert card2["id"] != card["id"]
        assert card2["work_order_id"] == wo["id"]
        # Cards go to the agents (who hold the permission), not to the owner or consumer.
        owner.quiet_for(1.5)
        consumer.quiet_for(0.5)


def test_a_stream_opened_later_gets_only_what_is_stored_after_it_opened(live: Live) -> None:
    live.open_work_order()  # before: never sent
    with live.stream("agent") as agent:
        agent.quiet_for(1.5)
        wo = live.open_work_order()
        [card] = agent.items(1)
        assert (card["kind"], card["work_order_id"]) == ("work_order_created", wo["id"])


def test_resume_with_last_event_id_sends_exactly_the_items_after_it(live: Live) -> None:
    with live.stream("agent") as agent:
        opened = [live.open_work_order() for _ in range(3)]
        cards = agent.items(3)
    assert [c["work_order_id"] for c in cards] == [wo["id"] for wo in opened]
    first, *after = (c["id"] for c in cards)
    for how in ({"headers": {"Last-Event-ID": first}}, {"params": {"last_event_id": first}},
                # The header wins: it is what EventSource sends when it reconnects.
                {"headers": {"Last-Event-ID": first},
                 "params": {"last_event_id": after[-1]}}):
        with live.stream("agent", **how) as resumed:
            assert [c["id"] for c in resumed.items(len(after))] == after, how
            wo = live.open_work_order()  # then live ones, none twice
            [card] = resumed.items(1)
            assert card["work_order_id"] == wo["id"]
            resumed.quiet_for(1.2)
        after.append(card["id"])
    with live.stream("agent", headers={"Last-Event-ID": after[-1]}) as nothing_missed:
        nothing_missed.quiet_for(1.2)


def test_resume_from_someone_elses_or_an_unknown_id_sends_nothing_from_the_past(
        live: Live) -> None:
    with live.stream("agent2") as agent2:
        live.open_work_order()
        [theirs] = agent2.items(1)
    for last_id in (theirs["id"], "ntf_unknown"):
        with live.stream("agent", headers={"Last-Event-ID": last_id}) as agent:
            agent.quiet_for(1.2)
            wo = live.open_work_order()  # and live items still come
            [card] = agent.items(1)
            assert card["work_order_id"] == wo["id"]


def test_the_heartbeat_is_a_comment_line(live: Live) -> None:
    with live.stream("consumer") as consumer:
        consumer.quiet_for(HEARTBEAT * 2.5)
        assert consumer.heartbeats >= 2


def test_an_item_committed_by_another_process_arrives_through_the_poll(live: Live) -> None:
    """Written through a container of its own (as `collabdesk worker` or another API
    process would): this server hears no signal, only its poll finds it."""
    other = build(Settings(database_url=live.database_url,
                           data_dir=live.server.stdout.parent / "other"), run_migrations=False)
    try:
        with live.stream("agent") as agent:
            item = InboxItem(new_id("ntf"), live.ids["agent"], InboxKind.REMINDER, None,
                             "from another process", datetime.now(UTC))
            other.ctx.write(lambda uow: uow.inbox.add(item))
            [got] = agent.items(1, within=3)
            assert (got["id"], got["text"]) == (item.id, "from another process")
    finally:
        other.engine.dispose()


def test_a_timer_fired_in_process_arrives_and_the_server_stops_promptly_with_streams_open(
        tmp_path: Path) -> None:
    """A server of its own: moving its test clock fires reminders of every open work
    order, which the other tests' streams need not see."""
    with serving(tmp_path, "--test-clock", env=ENV) as server, \
            httpx2.Client(base_url=server.base_url, timeout=10) as http:
        live = _world(server, http, "")
        wo = live.open_work_order()
        with live.stream("agent") as agent:
            live.post("admin", "/v1/test-clock/advance", {"seconds": 13 * 3600}, status=200)
            [reminder] = agent.items(1)
            assert (reminder["kind"], reminder["work_order_id"]) == ("reminder", wo["id"])

            assert server.process is not None
            started = time.monotonic()
            server.process.terminate()  # SIGTERM, as an operator's stop
            server.process.wait(timeout=10)
            assert time.monotonic() - started < 5
            agent.quiet_for(3)
            assert agent.ended  # the stream was ended, not left hanging
        log = server.stderr.read_text(encoding="utf-8")
        assert "Application shutdown complete" in log
        assert "without completing response" not in log  # ended cleanly, not cancelled
