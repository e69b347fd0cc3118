"""API tests over HTTP: accounts, stores, orders and the staff permission (api.md)."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from httpx2 import Response

from tests.conftest import ADMIN_TOKEN
from tests.e2e.http_world import (
    JSON,
    PROBLEM_TYPE,
    ROLES,
    HttpWorld,
    assert_problem,
    bearer,
    ok,
)


def test_the_whole_world_can_be_built_over_http(client: TestClient) -> None:
    world = HttpWorld(client)
    world.store("s-tmall", "tmall")
    world.store("s-taobao", "taobao")
    for name, (role, store_id) in ROLES.items():
        created = world.account(name, role, store_id)
        assert (created["role"], created["store_id"]) == (role, store_id)
    wo = world.open()
    assert world.work_order(wo["id"], "agent")["store_id"] == "s-tmall"


# ---- accounts -----------------------------------------------------------------------------

def test_admin_creates_an_account_whose_token_authenticates(world: HttpWorld) -> None:
    created = ok(world.post("admin", "/v1/accounts", {
        "name": "Xiao Ming", "role": "merchant_agent", "store_id": "s-taobao",
        "phone": "+86 138 0000 0001", "email": "xm@example.com"}), 201)
    assert {"id", "name", "role", "store_id", "token"} <= created.keys()
    assert (created["name"], created["role"], created["store_id"]) == (
        "Xiao Ming", "merchant_agent", "s-taobao")
    me = ok(world.client.get("/v1/accounts/me", headers=bearer(created["token"])))
    assert me["id"] == created["id"]
    assert me["role"] == "merchant_agent"


def test_platform_account_has_no_store(world: HttpWorld) -> None:
    created = ok(world.post("admin", "/v1/accounts", {"name": "T2", "role": "triage"}), 201)
    assert created["store_id"] is None
    assert created["token"] not in (world.tokens["triage"], ADMIN_TOKEN)


def test_account_with_login_and_password_is_created(world: HttpWorld) -> None:
    created = ok(world.post("admin", "/v1/accounts", {
        "name": "Web owner", "role": "merchant_owner", "store_id": "s-tmall",
        "login": "web-owner", "password": "correct horse battery"}), 201)
    assert created["role"] == "merchant_owner"


def test_merchant_account_without_store_id_is_refused_with_validation_error(
        world: HttpWorld) -> None:
    for role in ("merchant_owner", "merchant_agent"):
        response = world.post("admin", "/v1/accounts", {"name": "No store", "role": role})
        assert_problem(response, 422, "validation_error", role)


def test_malformed_account_is_refused_with_validation_error(world: HttpWorld) -> None:
    for body in ({"role": "consumer"}, {"name": "X", "role": "emperor"}, {"name": "X"},
                 {"name": "", "role": "consumer"}):
        assert_problem(world.post("admin", "/v1/accounts", body), 422, "validation_error",
                       body)


def test_account_for_an_unknown_store_is_not_found(world: HttpWorld) -> None:
    response = world.post("admin", "/v1/accounts",
                          {"name": "Ghost", "role": "merchant_owner", "store_id": "s-none"})
    assert_problem(response, 404, "not_found")


def test_only_an_admin_creates_accounts(world: HttpWorld) -> None:
    for who in ("owner", "triage", "integration", "consumer"):
        response = world.post(who, "/v1/accounts", {"name": "Sneaky", "role": "admin"})
        assert_problem(response, 403, "forbidden", who)


# ---- stores -------------------------------------------------------------------------------

def test_admin_and_integration_register_stores(world: HttpWorld) -> None:
    for who in ("admin", "integration"):
        store_id = f"s-by-{who}"
        created = world.store(store_id, "taobao", who=who)
        assert created == {"id": store_id, "name": f"Store {store_id}", "platform": "taobao"}
        got = ok(world.get("triage", f"/v1/stores/{store_id}"))
        assert (got["id"], got["name"], got["platform"]) == (
            store_id, f"Store {store_id}", "taobao")


def test_other_roles_may_not_register_stores(world: HttpWorld) -> None:
    for who in ("owner", "consumer", "triage"):
        response = world.post(who, "/v1/stores",
                              {"id": "s-x", "name": "X", "platform": "tmall"})
        assert_problem(response, 403, "forbidden", who)


def test_malformed_store_is_refused_with_validation_error(world: HttpWorld) -> None:
    for body in ({"id": "s-x", "name": "X", "platform": "jd"}, {"id": "s-x", "name": "X"},
                 {"name": "X", "platform": "tmall"}):
        assert_problem(world.post("admin", "/v1/stores", body), 422, "validation_error",
                       body)


def test_registering_a_taken_store_or_order_id_is_a_conflict(world: HttpWorld) -> None:
    taken = world.post("admin", "/v1/stores",
                       {"id": "s-tmall", "name": "Impostor", "platform": "taobao"})
    assert taken.status_code == 409, taken.text
    assert taken.headers["content-type"].startswith(PROBLEM_TYPE)
    assert ok(world.get("triage", "/v1/stores/s-tmall"))["name"] != "Impostor"
    order_id = world.order()
    again = world.post("integration", "/v1/orders", _order_body(world, id=order_id))
    assert again.status_code == 409, again.text


def test_store_is_seen_by_its_merchants_and_the_platform(world: HttpWorld) -> None:
    for who in ("owner", "agent", "triage", "adjudicator", "admin"):
        assert ok(world.get(who, "/v1/stores/s-tmall"), where=who)["platform"] == "tmall"


def test_another_stores_merchant_gets_not_found_for_a_store(world: HttpWorld) -> None:
    assert_problem(world.get("other_owner", "/v1/stores/s-tmall"), 404, "not_found")
    assert_problem(world.get("owner", "/v1/stores/s-taobao"), 404, "not_found")


def test_unknown_store_is_not_found(world: HttpWorld) -> None:
    assert_problem(world.get("triage", "/v1/stores/s-missing"), 404, "not_found")


# ---- orders -------------------------------------------------------------------------------

def _order_body(world: HttpWorld, **changes: Any) -> JSON:
    body: JSON = {"id": "o-100", "store_id": "s-tmall", "consumer_id": world.ids["consumer"],
                  "kind": "worry_free", "amount_cents": 12_345,
                  "paid_at": "2026-11-01T10:00:00+08:00"}
    body.update(changes)
    return {k: v for k, v in body.items() if v is not None}


def test_admin_and_integration_register_orders_with_times_in_utc(world: HttpWorld) -> None:
    for who in ("admin", "integration"):
        order_id = f"o-by-{who}"
        created = ok(world.post(who, "/v1/orders", _order_body(world, id=order_id)), 201)
        assert created["id"] == order_id
        assert created["store_id"] == "s-tmall"
        assert created["consumer_id"] == world.ids["consumer"]
        assert created["kind"] == "worry_free"
        assert created["amount_cents"] == 12_345
        assert created["paid_at"] == "2026-11-01T02:00:00Z"


def test_other_roles_may_not_register_orders(world: HttpWorld) -> None:
    for who in ("owner", "consumer", "triage"):
        assert_problem(world.post(who, "/v1/orders", _order_body(world)), 403, "forbidden",
                       who)


def test_order_for_an_unknown_store_is_not_found(world: HttpWorld) -> None:
    response = world.post("integration", "/v1/orders", _order_body(world, store_id="s-nope"))
    assert_problem(response, 404, "not_found")


def test_malformed_order_is_refused_with_validation_error(world: HttpWorld) -> None:
    for changes in ({"amount_cents": None}, {"amount_cents": -1}, {"amount_cents": "100"},
                    {"amount_cents": 10.5}, {"paid_at": "2026-11-01T10:00:00"},
                    {"paid_at": "yesterday"}, {"kind": "premium"}, {"consumer_id": None}):
        response = world.post("integration", "/v1/orders", _order_body(world, **changes))
        assert_problem(response, 422, "validation_error", changes)


def test_malformed_json_body_is_refused_with_validation_error(world: HttpWorld) -> None:
    response = world.client.post("/v1/orders", content=b"{not json",
                                 headers=world.headers("integration",
                                                       {"Content-Type": "application/json"}))
    assert_problem(response, 422, "validation_error")


# ---- the staff permission (who receives the cards) ----------------------------------------

def _staff(world: HttpWorld, who: str, store_id: str, account: str, allowed: Any) -> Response:
    return world.post(who, f"/v1/stores/{store_id}/staff/{world.ids[account]}",
                      {"work_orders": allowed})


def _inbox_kinds(world: HttpWorld, who: str) -> list[str]:
    return [i["kind"] for i in ok(world.get(who, "/v1/inbox"))["items"]]


def test_agent_holds_the_work_order_permission_and_receives_the_card(world: HttpWorld) -> None:
    wo = world.open()
    assert world.work_order(wo["id"], "agent")["id"] == wo["id"]
    assert _inbox_kinds(world, "agent") == ["work_order_created"]
    assert _inbox_kinds(world, "owner") == []


def test_owner_withdrawing_the_permission_hides_work_orders_from_the_agent(
        world: HttpWorld) -> None:
    before = world.open()
    ok(_staff(world, "owner", "s-tmall", "agent", False))
    assert_problem(world.get("agent", f"/v1/work-orders/{before['id']}"), 404, "not_found")
    assert ok(world.get("agent", "/v1/work-orders"))["items"] == []
    world.open()
    # With no agent holding the permission, the owner receives the card (rules.md §7).
    assert _inbox_kinds(world, "owner") == ["work_order_created"]
    assert _inbox_kinds(world, "agent") == ["work_order_created"]  # only the first card

    granted = ok(_staff(world, "owner", "s-tmall", "agent", True))
    assert granted["id"] == world.ids["agent"]
    assert world.work_order(before["id"], "agent")["id"] == before["id"]


def test_only_the_store_owner_changes_the_permission(world: HttpWorld) -> None:
    for who in ("agent", "triage", "admin"):
        assert_problem(_staff(world, who, "s-tmall", "agent", False), 403, "forbidden", who)


def test_another_stores_owner_changing_the_permission_gets_not_found(
        world: HttpWorld) -> None:
    assert_problem(_staff(world, "other_owner", "s-tmall", "agent", False), 404, "not_found")


def test_permission_for_someone_not_on_the_staff_is_not_found(world: HttpWorld) -> None:
    assert_problem(_staff(world, "owner", "s-tmall", "consumer", False), 404, "not_found")


def test_permission_must_be_a_boolean(world: HttpWorld) -> None:
    for value in ("no", None, 0):
        assert_problem(_staff(world, "owner", "s-tmall", "agent", value), 422,
                       "validation_error", value)


# ---- where my notifications go ----------------------------------------------------------


def _patch_me(world: HttpWorld, who: str, body: Any) -> Response:
    return world.client.patch("/v1/accounts/me", json=body, headers=world.headers(who))


def test_an_account_sets_its_own_phone_email_and_language(world: HttpWorld) -> None:
    changed = ok(_patch_me(world, "agent", {"phone": "13800001111", "language": "en"}))
    assert (changed["id"], changed["phone"], changed["language"]) == (
        world.ids["agent"], "13800001111", "en")
    # Left out: kept; null: cleared.
    again = ok(_patch_me(world, "agent", {"email": "agent@shop.example"}))
    assert (again["phone"], again["email"], again["language"]) == (
        "13800001111", "agent@shop.example", "en")
    cleared = ok(_patch_me(world, "agent", {"phone": None}))
    assert (cleared["phone"], cleared["email"]) == (None, "agent@shop.example")


def test_contact_fields_are_validated(world: HttpWorld) -> None:
    for body in ({"language": "fr"}, {"language": None}, {"phone": ""}, {"phone": 13800001111},
                 {"email": "x" * 300}, {"unknown": 1}):
        assert_problem(_patch_me(world, "agent", body), 422, "validation_error", body)
    assert ok(_patch_me(world, "agent", {}))["language"] == "zh"  # nothing changed
