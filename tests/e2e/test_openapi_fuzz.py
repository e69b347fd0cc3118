"""The API fuzzed from its own OpenAPI document (schemathesis), on SQLite and PostgreSQL.

Every operation of `/openapi.json` gets schemathesis' coverage cases (boundaries, and
values just outside them) and a bounded number of generated ones, valid and invalid, sent
as the roles of a small world (`build_world`: two stores, an account per role) with work
orders in most states, evidence, notes, inbox items and a violation. Ids in a case are
often swapped for real ones, so requests get past "not found" into the rules. Each
answer must be no server error, and conform to the document: its status, content type,
body schema and headers; a request the document rules out must be refused.

Run it alone with `pytest -m fuzz`. It is deterministic (derandomized, no example
database), so a failure reproduces; `FUZZ_EXAMPLES` sets the examples per operation.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from schemathesis import BaseSchema
from schemathesis import Case as GenericCase
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from collabdesk.api.app import create_app
from collabdesk.bootstrap import Container
from collabdesk.domain import bounds
from collabdesk.services.context import ServiceContext
from collabdesk.settings import Settings
from tests.conftest import ADMIN_TOKEN
from tests.e2e.http_world import HttpWorld, build_world, ok

pytestmark = pytest.mark.fuzz
Case = GenericCase[Any]

MAX_EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "10"))  # 150 for a deep run
CONFIG = schemathesis.Config.from_dict({
    "suppress-health-check": ["all"],
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "database": "none", "with-security-parameters": False},
    "phases": {"examples": {"enabled": False}, "coverage": {"enabled": True},
               "fuzzing": {"enabled": True}, "stateful": {"enabled": False}},
})
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance,
          response_schema_conformance, response_headers_conformance,
          negative_data_rejection]

# The callers: at least one of each kind of party.
CALLERS = ("admin", "consumer", "consumer2", "owner", "agent", "other_owner", "triage",
           "verifier", "adjudicator", "supervisor", "integration")
ID = re.compile(bounds.ID_PATTERN)
KEY = re.compile(r"[!-~]{1,255}")


@dataclass
class FuzzWorld:
    """Tokens by caller, and real ids by the name of the parameter or field they fill."""

    tokens: dict[str, str]
    ids: dict[str, list[str]] = field(default_factory=dict)

    def add(self, name: str, *values: str) -> None:
        self.ids.setdefault(name, []).extend(values)


def _populate(world: HttpWorld) -> FuzzWorld:
    """Work orders in most states (and what hangs off them), through the API itself."""
    fuzz = FuzzWorld({"admin": ADMIN_TOKEN, **world.tokens})
    opened = world.open()
    worry_free = world.open(kind="worry_free")
    adjudication = world.in_adjudication()
    awaiting_consumer = world.awaiting_consumer()
    not_related = world.awaiting_verification("not_related")
    unreachable = world.awaiting_verification("unreachable")
    judged = world.judged()
    appealed = world.judged()
    ok(world.post("owner", f"/v1/work-orders/{appealed['id']}/appeal",
                  {"statement": "the photos are of another parcel"}))
    other_store = world.open(store_id="s-taobao", consumer="consumer2")
    work_orders = [opened, worry_free, adjudication, awaiting_consumer, not_related,
                   unreachable, judged, appealed, other_store]
    fuzz.add("work_order_id", *(wo["id"] for wo in work_orders))
    fuzz.add("order_id", *(wo["order_id"] for wo in work_orders),
             world.order(), world.order(kind="worry_free"),
             world.order(consumer="consumer2", store_id="s-taobao"))
    evidence = [world.evidence(who) for who in ("agent", "consumer", "verifier")]
    fuzz.add("evidence_id", *evidence)
    fuzz.add("evidence_ids", *evidence)
    ok(world.post("agent", f"/v1/work-orders/{opened['id']}/notes",
                  {"text": "we called", "evidence_ids": [evidence[0]]}), 201)
    ok(world.post("adjudicator", f"/v1/work-orders/{adjudication['id']}/notes",
                  {"text": "internal", "visibility": "platform"}), 201)
    violation = ok(world.post("verifier", "/v1/violations", {
        "store_id": "s-tmall", "work_order_id": judged["id"], "kind": "false_evidence",
        "severity": "general", "rationale": "the call log is forged"}), 201)
    fuzz.add("violation_id", violation["id"])
    for who in ("consumer", "owner", "agent"):
        items = ok(world.get(who, "/v1/inbox", params={"limit": 3}))["items"]
        fuzz.add("item_id", *(i["id"] for i in items))
    fuzz.add("store_id", "s-tmall", "s-taobao")
    fuzz.add("consumer_id", world.ids["consumer"], world.ids["consumer2"])
    fuzz.add("account_id", world.ids["agent"], world.ids["owner"], world.ids["consumer"])
    return fuzz


@pytest.fixture
def settings(database_url: str, tmp_path: Path) -> Settings:
    # Fuzzed webhook URLs may name addresses that never answer (no route out of this
    # machine): each delivery attempt a test-clock step makes waits out this timeout.
    return Settings(database_url=database_url, data_dir=tmp_path / "data",
                    delivery_timeout_seconds=0.25, outbox_lease_seconds=2)


@pytest.fixture
def fuzz_app(container: Container) -> FastAPI:
    return create_app(container, start_runner=False)


@pytest.fixture
def fuzz_world(fuzz_app: FastAPI, ctx: ServiceContext) -> Iterator[FuzzWorld]:
    with TestClient(fuzz_app, base_url="http://127.0.0.1") as client:
        yield _populate(build_world(client, ctx))


@pytest.fixture
def api_schema(fuzz_app: FastAPI, fuzz_world: FuzzWorld) -> BaseSchema:
    # GET /v1/stream never ends (an in-process client would wait for its whole body):
    # tests/e2e/test_real_server_stream.py reads it from a real server instead.
    return schemathesis.openapi.from_asgi("/openapi.json", fuzz_app, config=CONFIG
                                          ).exclude(path="/v1/stream")


schema = schemathesis.pytest.from_fixture("api_schema")


@pytest.fixture(autouse=True)
def _node_id_for_schemathesis(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32's fixture-loaded schemas read and rename `Function._nodeid`, an
    attribute pytest 9.2 no longer has: give it one (pytest reports by `nodeid`; the
    subtests still say which operation failed). A no-op where the attribute exists."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


def _pick(case: Case, salt: str, options: Sequence[Any]) -> Any:
    """A choice that depends only on the case's content, so a case is always sent the
    same way (also while Hypothesis shrinks it)."""
    content = json.dumps([case.method, case.path, case.path_parameters, dict(case.query),
                          repr(case.body), salt], sort_keys=True, default=repr)
    return options[zlib.crc32(content.encode()) % len(options)]


def _real(case: Case, world: FuzzWorld, name: str, value: Any) -> Any:
    """Most of the time, a real id in place of a generated one (that fits the schema)."""
    options = world.ids.get(name)
    if not options:
        return value
    if isinstance(value, list) and all(isinstance(v, str) and ID.match(v) for v in value):
        return [_pick(case, f"{name}{i}", [*options, v]) for i, v in enumerate(value)]
    if isinstance(value, str) and ID.match(value):
        return _pick(case, name, [*options, value])
    return value


def _idempotency_key(case: Case) -> None:
    """One POST in four keeps its `Idempotency-Key`: sent with every POST, the few keys the
    generator spells would make nearly every POST a 409 `idempotency_key_reused`."""
    key = case.headers.get("Idempotency-Key") if case.headers else None
    if (isinstance(key, str) and KEY.fullmatch(key)
            and _pick(case, "key", (False, False, False, True)) is False):
        del case.headers["Idempotency-Key"]


def _with_real_ids(case: Case, world: FuzzWorld) -> None:
    for name, value in list(case.path_parameters.items()):
        case.path_parameters[name] = _real(case, world, name, value)
    for name, value in list(case.query.items()):
        case.query[name] = _real(case, world, name, value)
    if isinstance(case.body, dict):
        for name, value in list(case.body.items()):
            case.body[name] = _real(case, world, name, value)


@schema.parametrize()
def test_the_api_conforms_to_its_openapi_document(case: Case, fuzz_world: FuzzWorld) -> None:
    _with_real_ids(case, fuzz_world)
    _idempotency_key(case)
    caller = _pick(case, "caller", CALLERS)
    # A multipart file part is bytes whatever the generator meant by it (`false` is a
    # 5-byte text file), so an upload has no schema-violating file to refuse.
    multipart = (case.media_type or "").startswith("multipart/")
    case.call_and_validate(headers={"Authorization": f"Bearer {fuzz_world.tokens[caller]}"},
                           checks=[c for c in CHECKS
                                   if not (multipart and c is negative_data_rejection)])
