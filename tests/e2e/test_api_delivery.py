"""The delivery contract over HTTP, with real receivers on loopback: SMS through the HTTP
gateway, email through SMTP, signed webhooks with retries under the test clock, the
delivery log and the diagnostics. Both databases."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from collabdesk.adapters.clock import FixedClock
from collabdesk.api.app import create_app
from collabdesk.bootstrap import build
from collabdesk.services.accounts import ensure_admin
from collabdesk.settings import Settings
from tests.conftest import ADMIN_TOKEN, START
from tests.e2e.http_world import JSON, assert_problem, build_world, ok
from tests.e2e.http_world import HttpWorld as World
from tests.receivers import (
    HttpReceiver,
    SmtpServer,
    http_receiver,
    verify_signature,
)

MINUTE = 60


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


# ---- helpers -----------------------------------------------------------------------------

HOUR = 60 * MINUTE
DAY = 24 * HOUR


def lines(world: World, wo_id: str, channel: str | None = None) -> list[JSON]:
    """The work order's delivery log as the platform sees it (every line), oldest first."""
    items: list[JSON] = ok(world.get("triage", f"/v1/work-orders/{wo_id}/deliveries",
                                     {"limit": 200}))["items"]
    return [d for d in items if channel is None or d["channel"] == channel]


def register(world: World, url: str, events: list[str], who: str = "owner",
             store_id: str = "s-tmall") -> JSON:
    return ok(world.post(who, f"/v1/stores/{store_id}/webhooks",
                         {"url": url, "events": events}), 201)


def hook_state(world: World, hook_id: str, who: str = "owner",
               store_id: str = "s-tmall") -> JSON:
    items = ok(world.get(who, f"/v1/stores/{store_id}/webhooks"))["items"]
    (found,) = [h for h in items if h["id"] == hook_id]
    assert isinstance(found, dict)
    return found


def codes(check: JSON) -> list[str]:
    return [p["code"] for p in check["problems"]]


# ---- SMS and email -------------------------------------------------------------------------

def test_the_card_goes_by_sms_in_each_agents_language(world: World, sms: HttpReceiver) -> None:
    world.store("s-sms")
    zh = world.account("zh_agent", "merchant_agent", "s-sms", phone="13800138000")
    en = world.account("en_agent", "merchant_agent", "s-sms", phone="+8613900139000",
                       language="en")
    wo = world.open(store_id="s-sms")
    # Opened at the test clock's start (2026-11-02 08:00 UTC) with 24 h to reply.
    assert (wo["created_at"], wo["due_at"]) == ("2026-11-02T08:00:00Z", "2026-11-03T08:00:00Z")
    assert sms.received == []  # nothing leaves before the dispatcher runs
    assert [d["status"] for d in lines(world, wo["id"], "sms")] == ["pending", "pending"]

    world.advance(0)
    texts = {r.json()["to"]: r.json()["text"] for r in sms.wait_for(2)}
    assert all(r.path == "/sms" for r in sms.received)
    ref_zh = f"协同工单 {wo['id']}（订单 {wo['order_id']}）"
    ref_en = f"work order {wo['id']} (order {wo['order_id']})"
    assert texts == {
        "13800138000": f"【工单卡片】消费者向平台求助：{ref_zh}。请在 2026-11-03 08:00 UTC 前"
                       "（剩余 1天0小时0分）联系消费者并回复工单。",
        "+8613900139000": f"[Work order] A consumer asked the platform for help: {ref_en}. "
                          "Contact them and reply by 2026-11-03 08:00 UTC (1 d 0 h 0 min left).",
    }
    sent = {d["recipient_id"]: d for d in lines(world, wo["id"], "sms")}
    assert {k: (d["status"], d["attempt"], d["destination"], d["kind"], d["reason"])
            for k, d in sent.items()} == {
        zh["id"]: ("delivered", 1, "138****8000", "work_order_created", None),
        en["id"]: ("delivered", 1, "+86*******9000", "work_order_created", None)}

    # 12 h before the deadline, the reminder: 12 h left; 23 h 59 min left is never said
    # of a deadline 24 h away (rounded down to the minute).
    world.advance(12 * HOUR)
    reminders = {r.json()["to"]: r.json()["text"] for r in sms.wait_for(4)[2:]}
    assert reminders == {
        "13800138000": f"【催促】{ref_zh} 尚未回复，剩余 12小时0分（截止 2026-11-03 08:00 UTC），"
                       "请尽快联系消费者并回复。",
        "+8613900139000": f"[Reminder] {ref_en} has no reply yet: 12 h 0 min left (due "
                          "2026-11-03 08:00 UTC). Contact the consumer and reply.",
    }


def test_the_card_goes_by_email(world: World, mail: SmtpServer) -> None:
    world.store("s-mail")
    agent = world.account("mail_agent", "merchant_agent", "s-mail",
                          email="li.agent@example.com")
    wo = world.open(store_id="s-mail")
    world.advance(0)
    (got,) = mail.wait_for(1)
    assert got["To"] == "li.agent@example.com"
    assert got["Subject"] == f"新协同工单 {wo['id']}：请在 1天0小时0分 内回复"
    assert got["X-Collabdesk-Work-Order"] == wo["id"]
    body = got.get_content()
    assert f"协同工单 {wo['id']}（订单 {wo['order_id']}）" in body
    assert "诉求：arrived broken" in body
    (line,) = lines(world, wo["id"], "email")
    assert (line["recipient_id"], line["status"], line["attempt"], line["destination"]) == (
        agent["id"], "delivered", 1, "l***@example.com")
    # Without a phone the SMS is logged as skipped, with why.
    (text,) = lines(world, wo["id"], "sms")
    assert (text["status"], text["reason"]) == ("skipped", "no phone number on the account")


# ---- webhooks: retries, switching off, redelivery ---------------------------------------

def test_a_failing_webhook_is_retried_with_the_same_event(world: World) -> None:
    with http_receiver("/hook") as hook:
        hook.status = 500
        created = register(world, hook.url, ["work_order.created"])
        wo = world.open()
        assert world.advance(0)["sent"] == 1
        (first,) = hook.wait_for(1)
        (line,) = lines(world, wo["id"], "webhook")
        assert (line["status"], line["attempt"], line["destination"]) == (
            "retrying", 1, hook.url)
        assert "HTTP 500" in line["reason"]
        assert "next attempt at 2026-11-02T08:01:00Z" in line["reason"]
        state = hook_state(world, created["id"])
        assert state["failing_since"] == "2026-11-02T08:00:00Z"
        assert "HTTP 500" in state["last_error"]

        assert world.advance(59)["sent"] == 0
        assert len(hook.received) == 1
        world.advance(1)
        second = hook.wait_for(2)[1]
        assert second.headers["collabdesk-event-id"] == first.headers["collabdesk-event-id"]
        assert second.body == first.body
        assert verify_signature(created["secret"], second.headers["collabdesk-signature"],
                                second.body)

        hook.status = 200
        world.advance(4 * MINUTE)  # 08:05: the third attempt is due at 08:06
        assert len(hook.received) == 2
        world.advance(MINUTE)
        third = hook.wait_for(3)[2]
        assert third.body == first.body
        assert third.headers["collabdesk-event-id"] == first.headers["collabdesk-event-id"]
        assert verify_signature(created["secret"], third.headers["collabdesk-signature"],
                                third.body)
        attempts = [(d["attempt"], d["status"], d["event_id"])
                    for d in lines(world, wo["id"], "webhook")]
        event = first.json()["id"]
        assert attempts == [(1, "retrying", event), (2, "retrying", event),
                            (3, "delivered", event)]
        state = hook_state(world, created["id"])
        assert state["failing_since"] is None
        assert state["last_error"] is None
        assert state["last_delivered_at"] == "2026-11-02T08:06:00Z"
        assert state["enabled"] is True


def test_a_webhook_failing_for_three_days_is_switched_off(world: World,
                                                          mail: SmtpServer) -> None:
    world.store("s-hook")
    world.account("boss", "merchant_owner", "s-hook", email="boss@example.com")
    with http_receiver("/hook") as hook:
        hook.status = 500
        created = register(world, hook.url, ["work_order.created"], who="boss",
                           store_id="s-hook")
        wo = world.open(store_id="s-hook")
        world.advance(0)
        world.advance(3 * DAY)  # one step runs the whole schedule
        got = hook.wait_for(12)
        assert len(got) == 12  # the first attempt and 11 retries, the last at +3 days
        assert len({r.headers["collabdesk-event-id"] for r in got}) == 1
        attempts = lines(world, wo["id"], "webhook")
        assert [d["attempt"] for d in attempts] == list(range(1, 13))
        assert [d["status"] for d in attempts] == ["retrying"] * 11 + ["failed"]
        assert attempts[-1]["at"] == "2026-11-05T08:00:00Z"

        state = hook_state(world, created["id"], "boss", "s-hook")
        assert state["enabled"] is False
        assert state["disabled_at"] == "2026-11-05T08:00:00Z"
        inbox = ok(world.get("boss", "/v1/inbox"))["items"]
        disabled = [i for i in inbox if i["kind"] == "webhook_disabled"]
        assert len(disabled) == 1
        assert created["id"] in disabled[0]["text"]
        assert hook.url in disabled[0]["text"]
        mails = [m for m in mail.wait_for(1) if m["Subject"] == f"Webhook 已停用：{hook.url}"]
        assert [m["To"] for m in mails] == ["boss@example.com"]
        check = ok(world.get("boss", "/v1/stores/s-hook/notification-check"))
        (problem,) = [p for p in check["problems"] if p["code"] == "webhook_disabled"]
        assert problem["webhook_id"] == created["id"]
        assert check["ok"] is False

        # Switched off: new events do not reach it, and it cannot be redelivered to.
        world.open(store_id="s-hook")
        world.advance(0)
        assert len(hook.received) == 12
        path = f"/v1/stores/s-hook/webhooks/{created['id']}"
        event = got[0].headers["collabdesk-event-id"]
        assert_problem(world.post("boss", path + "/redeliver", {"event_id": event}), 409,
                       "invalid_transition")

        hook.status = 200
        enabled = ok(world.post("boss", path + "/enable"))
        assert (enabled["enabled"], enabled["disabled_at"], enabled["failing_since"]) == (
            True, None, None)
        queued = ok(world.post("boss", path + "/redeliver", {"event_id": event}), 202)
        assert queued["event_id"] == event
        world.advance(0)
        again = hook.wait_for(13)[12]
        assert again.headers["collabdesk-event-id"] == event
        assert again.body == got[0].body
        assert verify_signature(created["secret"], again.headers["collabdesk-signature"],
                                again.body)
        assert hook_state(world, created["id"], "boss", "s-hook")["last_delivered_at"]


def test_only_the_stores_owner_redelivers(world: World) -> None:
    with http_receiver("/hook") as hook:
        created = register(world, hook.url, ["work_order.created"])
        world.open()
        world.advance(0)
        event = hook.wait_for(1)[0].headers["collabdesk-event-id"]
        path = f"/v1/stores/s-tmall/webhooks/{created['id']}/redeliver"
        assert_problem(world.post("agent", path, {"event_id": event}), 403, "forbidden")
        assert_problem(world.post("consumer", path, {"event_id": event}), 403, "forbidden")
        assert_problem(world.post("other_owner", path, {"event_id": event}), 404,
                       "not_found")
        assert_problem(world.post("owner", path, {"event_id": "evt_unknown"}), 404,
                       "not_found")
        assert_problem(world.post("owner", "/v1/stores/s-tmall/webhooks/whk_nope/redeliver",
                                  {"event_id": event}), 404, "not_found")
        assert len(hook.received) == 1
        ok(world.post("owner", path, {"event_id": event}), 202)
        world.advance(0)
        assert hook.wait_for(2)[1].body == hook.received[0].body


def test_webhook_registration_is_validated_and_owner_only(world: World) -> None:
    path = "/v1/stores/s-tmall/webhooks"
    for body in ({"url": "ftp://example.com/hook", "events": ["work_order.created"]},
                 {"url": "not a url", "events": ["work_order.created"]},
                 {"url": "http://user:pw@example.com/", "events": ["work_order.created"]},
                 {"url": "https://example.com/hook", "events": ["work_order.deleted"]},
                 {"url": "https://example.com/hook", "events": []}):
        assert_problem(world.post("owner", path, body), 422, "validation_error", body)
    good = {"url": "https://example.com/hook", "events": ["work_order.created"]}
    assert_problem(world.post("agent", path, good), 403, "forbidden")
    assert_problem(world.post("consumer", path, good), 403, "forbidden")
    assert_problem(world.post("other_owner", path, good), 404, "not_found")
    assert ok(world.get("owner", path))["items"] == []

    with http_receiver("/hook") as hook:
        created = register(world, hook.url, ["work_order.created", "work_order.updated"])
        assert created["secret"].startswith("whsec_")
        assert created["events"] == ["work_order.created", "work_order.updated"]
        for who in ("owner", "agent", "triage"):
            (listed,) = ok(world.get(who, path))["items"]
            assert "secret" not in listed
            assert created["secret"] not in str(listed)
            assert listed["id"] == created["id"]
        assert_problem(world.get("consumer", path), 403, "forbidden")
        assert_problem(world.get("other_owner", path), 404, "not_found")

        hook_path = f"{path}/{created['id']}"
        assert world.client.delete(hook_path, headers=world.headers("agent")).status_code == 403
        response = world.client.delete(hook_path, headers=world.headers("owner"))
        assert response.status_code == 204, response.text
        assert ok(world.get("owner", path))["items"] == []
        world.open()
        world.advance(0)
        assert hook.received == []
        assert world.client.delete(hook_path, headers=world.headers("owner")).status_code == 404


# ---- notification-check ------------------------------------------------------------------

def test_notification_check_names_recipients_and_problems(world: World) -> None:
    path = "/v1/stores/s-tmall/notification-check"
    check = ok(world.get("owner", path))
    assert [r["account_id"] for r in check["recipients"]] == [world.ids["agent"]]
    assert "sms_not_configured" not in codes(check)
    assert "smtp_not_configured" not in codes(check)
    (no_phone,) = [p for p in check["problems"] if p["code"] == "no_phone"]
    assert no_phone["account_id"] == world.ids["agent"]
    assert "agent" in no_phone["detail"]
    assert "no_permission_holder" not in codes(check)
    assert check["ok"] is False
    channels = {c["channel"]: c for c in check["recipients"][0]["channels"]}
    assert channels["inbox"]["ok"] is True
    assert (channels["sms"]["ok"], channels["sms"]["problem"]) == (False, "no_phone")

    ok(world.post("owner", f"/v1/stores/s-tmall/staff/{world.ids['agent']}",
                  {"work_orders": False}))
    check = ok(world.get("agent", path))
    assert [r["account_id"] for r in check["recipients"]] == [world.ids["owner"]]
    assert "no_permission_holder" in codes(check)
    (no_phone,) = [p for p in check["problems"] if p["code"] == "no_phone"]
    assert no_phone["account_id"] == world.ids["owner"]
    ok(world.get("triage", path))
    assert_problem(world.get("consumer", path), 403, "forbidden")
    assert_problem(world.get("other_owner", path), 404, "not_found")
    assert_problem(world.get("owner", "/v1/stores/s-nope/notification-check"), 404,
                   "not_found")


def test_a_recipient_with_phone_and_email_is_fine(world: World) -> None:
    world.store("s-good")
    world.account("good_agent", "merchant_agent", "s-good", phone="13800138000",
                  email="good@example.com")
    check = ok(world.get("admin", "/v1/stores/s-good/notification-check"))
    assert check["problems"] == []
    assert check["ok"] is True
    (recipient,) = check["recipients"]
    assert [(c["channel"], c["address"], c["ok"]) for c in recipient["channels"]] == [
        ("inbox", None, True), ("sms", "138****8000", True),
        ("email", "g***@example.com", True)]


def test_unconfigured_channels_are_skipped_and_reported(database_url: str,
                                                        tmp_path: Path) -> None:
    clock = FixedClock(START)
    built = build(Settings(database_url=database_url, data_dir=tmp_path / "bare"),
                  clock=clock, run_migrations=False)
    built.test_clock = clock
    ensure_admin(built.ctx, ADMIN_TOKEN)
    try:
        with TestClient(create_app(built, start_runner=False),
                        base_url="http://127.0.0.1") as client:
            world = build_world(client, built.ctx)
            world.store("s-bare")
            world.account("bare_agent", "merchant_agent", "s-bare", phone="13800138000",
                          email="bare@example.com")
            check = ok(world.get("admin", "/v1/stores/s-bare/notification-check"))
            assert {"sms_not_configured", "smtp_not_configured"} <= set(codes(check))
            channels = {c["channel"]: c["problem"]
                        for c in check["recipients"][0]["channels"]}
            assert channels == {"inbox": None, "sms": "sms_not_configured",
                                "email": "smtp_not_configured"}
            wo = world.open(store_id="s-bare")
            world.advance(0)
            (text,) = lines(world, wo["id"], "sms")
            assert text["status"] == "skipped"
            assert "COLLABDESK_SMS_URL" in text["reason"]
            (mailed,) = lines(world, wo["id"], "email")
            assert mailed["status"] == "skipped"
            assert "COLLABDESK_SMTP_URL" in mailed["reason"]
    finally:
        built.engine.dispose()


# ---- the store's delivery log ----------------------------------------------------------------

def test_store_deliveries_newest_first_in_pages(world: World, sms: HttpReceiver) -> None:
    world.store("s-log")
    world.account("log_agent", "merchant_agent", "s-log", phone="13800138000")
    opened = []
    for _ in range(3):
        opened.append(world.open(store_id="s-log")["id"])
        world.advance(MINUTE)
    sms.wait_for(3)
    path = "/v1/stores/s-log/deliveries"
    everything = ok(world.get("admin", path, {"limit": 100}))["items"]
    assert len(everything) == 6  # per work order: the inbox line and the SMS line
    assert [d["at"] for d in everything] == sorted((d["at"] for d in everything),
                                                   reverse=True)
    assert [d["work_order_id"] for d in everything[::2]] == opened[::-1]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, object] = {"limit": 4}
        if cursor:
            params["cursor"] = cursor
        got = ok(world.get("log_agent", path, params))
        seen += [d["id"] for d in got["items"]]
        cursor = got["next_cursor"]
        if not cursor:
            break
    assert seen == [d["id"] for d in everything]
    assert_problem(world.get("consumer", path), 403, "forbidden")
    assert_problem(world.get("owner", path), 404, "not_found")  # another store's owner
    assert_problem(world.get("admin", path, {"cursor": "garbage"}), 422, "validation_error")


# ---- operations ----------------------------------------------------------------------------


def _metric(text: str, name: str, labels: str) -> float:
    """The value of one sample of the Prometheus text, 0 when absent."""
    for line in text.splitlines():
        if line.startswith(f"{name}{{{labels}}} "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_metrics_show_deliveries_by_channel_and_status_and_the_backlog(world: World) -> None:
    def scrape() -> str:
        answer = world.get("admin", "/metrics")
        assert answer.status_code == 200
        return answer.text

    with http_receiver("/hook") as hook:
        hook.status = 500
        register(world, hook.url, ["work_order.created"])
        before = scrape()
        world.open()
        queued = scrape()
        # Written with the work order, not yet sent: one webhook message waits.
        assert _metric(queued, "collabdesk_outbox_backlog", 'channel="webhook"') == 1
        world.advance(0)
        after = scrape()
    labels = 'channel="webhook",status="retrying"'
    assert (_metric(after, "collabdesk_deliveries_total", labels)
            - _metric(before, "collabdesk_deliveries_total", labels)) == 1
    # Still waiting for its retry, a minute from now: in the backlog, not yet overdue.
    assert _metric(after, "collabdesk_outbox_backlog", 'channel="webhook"') == 1
    assert "collabdesk_outbox_oldest_due_seconds 0.0" in after
    assert "collabdesk_delivery_latency_seconds_bucket" in after


def test_an_agent_without_the_permission_sees_no_delivery_log(world: World,
                                                              sms: HttpReceiver) -> None:
    """The log names the store's work orders, which such an agent no longer sees; the
    check still answers them why nothing reaches them, without the failed deliveries."""
    with http_receiver("/hook") as hook:
        hook.status = 500
        register(world, hook.url, ["work_order.created"])
        world.open()
        world.advance(0)
    ok(world.post("owner", f"/v1/stores/s-tmall/staff/{world.ids['agent']}",
                  {"work_orders": False}))
    assert len(ok(world.get("owner", "/v1/stores/s-tmall/notification-check"))[
        "last_failures"]) == 1
    check = ok(world.get("agent", "/v1/stores/s-tmall/notification-check"))
    assert "no_permission_holder" in codes(check)
    assert check["last_failures"] == []
    for path in ("/v1/stores/s-tmall/deliveries", "/v1/stores/s-tmall/webhooks"):
        assert_problem(world.get("agent", path), 403, "forbidden", path)
