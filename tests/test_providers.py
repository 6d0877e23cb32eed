"""Provider-shaped deliveries end to end on a real RabbitMQ: from the HTTP request to the
execution record with the right variables, and every bad case refused with nothing queued."""

import asyncio
import base64
import hashlib
import hmac
import sqlite3
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.samples import (
    ALIPAY_NOTIFY,
    BILLION_LAUGHS,
    EXTERNAL_ENTITY,
    GH_BODY,
    GH_SECRET,
    GH_SIGNATURE,
    WECHAT_NOTIFY,
    stripe_header,
)
from tests.support import System, wait_for, webhook_url

FORM = {"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"}


async def executions(system: System, workflow: dict[str, Any]) -> list[dict[str, Any]]:
    code, page = await system.api("GET", f"/api/workflows/{workflow['id']}/executions?limit=200")
    assert code == 200
    return list(page["items"])


async def settled(system: System, workflow: dict[str, Any], count: int) -> list[dict[str, Any]]:
    """Wait until `count` executions are recorded, then make sure no more arrive."""

    async def enough() -> bool:
        return len(await executions(system, workflow)) >= count

    await wait_for(enough, timeout=10)
    await asyncio.sleep(0.3)
    found = await executions(system, workflow)
    assert len(found) == count
    return found


async def test_an_alipay_form_notification_reaches_the_record(system: System) -> None:
    workflow = await system.create(
        {
            "title": "Alipay",
            "trigger": {
                "request": {
                    "body": [{"key": "trade_status"}, {"key": "out_trade_no", "alias": "Order"}]
                }
            },
            "nodes": [
                {
                    "key": "ok",
                    "type": "condition",
                    "config": {
                        "rejectOnFalse": True,
                        "calculation": {
                            "group": {
                                "calculations": [
                                    {
                                        "calculator": "equal",
                                        "operands": [
                                            "{{$context.body.trade_status}}",
                                            "TRADE_SUCCESS",
                                        ],
                                    }
                                ]
                            }
                        },
                    },
                }
            ],
        }
    )
    response, text = await system.post(
        webhook_url(system, workflow), data=ALIPAY_NOTIFY, headers=FORM
    )
    assert (response.status, text) == (
        200,
        b"ok",
    )  # Alipay wants "success" or it retries: configurable
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"
    assert execution["context"]["body"]["subject"] == "测试订单"
    assert execution["context"]["body"]["total_amount"] == "88.88"


async def test_a_wechat_pay_xml_notification_is_answered_in_xml(system: System) -> None:
    answer = (
        "<xml><return_code><![CDATA[SUCCESS]]></return_code>"
        "<return_msg><![CDATA[OK]]></return_msg></xml>"
    )
    workflow = await system.create(
        {
            "title": "WeChat Pay",
            "sync": True,
            "nodes": [
                {
                    "key": "paid",
                    "type": "condition",
                    "config": {
                        "engine": "cel",
                        "expression": 'context.body.xml.result_code == "SUCCESS"'
                        " && int(context.body.xml.total_fee) > 0",
                    },
                    "branches": {
                        "true": [
                            {
                                "key": "ack",
                                "type": "response",
                                "config": {
                                    "headers": [
                                        {"name": "Content-Type", "value": "application/xml"}
                                    ],
                                    "body": answer,
                                },
                            }
                        ]
                    },
                },
            ],
        }
    )
    response, text = await system.post(
        webhook_url(system, workflow), data=WECHAT_NOTIFY, headers={"Content-Type": "text/xml"}
    )
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/xml")
    assert text.decode() == answer
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["context"]["body"]["xml"]["transaction_id"] == "1004400740201409030005092168"


async def test_github_deliveries_are_verified(system: System) -> None:
    created = await system.create(
        {
            "title": "GitHub",
            "trigger": {
                "signature": {"scheme": "github", "secret": GH_SECRET},
                "request": {"headers": [{"key": "X-GitHub-Event"}, {"key": "X-Hub-Signature-256"}]},
            },
        }
    )
    assert created["trigger"]["signature"] == {
        "scheme": "github",
        "secretSet": True,
        "tolerance": 300,
        "algorithm": "sha256",
        "encoding": "hex",
        "prefix": "",
    }
    url = webhook_url(system, created)
    github = {
        "Content-Type": "text/plain",
        "X-GitHub-Event": "ping",
        "X-Hub-Signature-256": GH_SIGNATURE,
    }
    response, _ = await system.post(url, data=GH_BODY, headers=github)
    assert response.status == 200
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["context"]["headers"] == {"x-github-event": "ping"}  # the signature stays out
    assert execution["context"]["body"] == "Hello, World!"

    for body, headers, reason in [
        (GH_BODY + b"!", github, b"does not match"),
        (GH_BODY, {"Content-Type": "text/plain"}, b"missing X-Hub-Signature-256"),
        (GH_BODY, {**github, "X-Hub-Signature-256": "md5=abc"}, b"sha256=<hex>"),
    ]:
        refused, text = await system.post(url, data=body, headers=headers)
        assert refused.status == 401
        assert reason in text
    await settled(system, created, 1)


async def test_stripe_events_are_verified_with_the_secret_stripe_issued(system: System) -> None:
    code, body = await system.api(
        "POST",
        "/api/workflows",
        {"title": "Stripe", "trigger": {"signature": {"scheme": "stripe"}}},
    )
    assert code == 422 and body["details"][0]["path"] == "trigger.signature.secret"
    secret = "whsec_stripe_issued_secret"
    workflow = await system.create(
        {"title": "Stripe", "trigger": {"signature": {"scheme": "stripe", "secret": secret}}}
    )
    assert "secret" not in workflow["trigger"]["signature"]  # given, not generated: never answered
    url = webhook_url(system, workflow)
    event = orjson.dumps(
        {"id": "evt_1", "type": "payment_intent.succeeded", "data": {"object": {"amount": 2000}}}
    )
    now = int(time.time())
    response, _ = await system.post(
        url,
        data=event,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_header(secret, now, event),
        },
    )
    assert response.status == 200
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["context"]["body"]["data"]["object"]["amount"] == 2000
    stale, text = await system.post(
        url,
        data=event,
        headers={
            "Content-Type": "application/json",
            "Stripe-Signature": stripe_header(secret, now - 3600, event),
        },
    )
    assert stale.status == 401 and b"replay" in text
    await settled(system, workflow, 1)


def standard_webhooks_headers(secret: str, message_id: str, body: bytes) -> dict[str, str]:
    timestamp = str(int(time.time()))
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.digest(key, f"{message_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": message_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(digest).decode(),
        "Content-Type": "application/json",
    }


async def test_a_generated_standard_webhooks_secret_is_shown_once_and_rotates(
    system: System, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    created = await system.create(
        {"title": "SW", "trigger": {"signature": {"scheme": "standardWebhooks"}}}
    )
    secret = created["trigger"]["signature"]["secret"]
    assert secret.startswith("whsec_")
    code, shown = await system.api("GET", f"/api/workflows/{created['id']}")
    assert shown["trigger"]["signature"]["secretSet"] is True
    assert secret not in str(shown)
    url = webhook_url(system, created)
    body = b'{"type": "invoice.paid"}'
    assert (
        await system.post(url, data=body, headers=standard_webhooks_headers(secret, "msg_1", body))
    )[0].status == 200

    code, rotated = await system.api("POST", f"/api/workflows/{created['id']}/signature:rotate")
    assert code == 200 and rotated["version"] == 2
    new_secret = rotated["trigger"]["signature"]["secret"]
    assert new_secret != secret

    accepted = 1

    async def old_secret_refused() -> bool:
        nonlocal accepted
        headers = standard_webhooks_headers(secret, "msg_2", body)
        response, _ = await system.post(url, data=body, headers=headers)
        accepted += response.status == 200  # until the gateway hears of the rotation
        return response.status == 401

    await wait_for(old_secret_refused, timeout=2)
    assert (
        await system.post(
            url, data=body, headers=standard_webhooks_headers(new_secret, "msg_3", body)
        )
    )[0].status == 200
    await settled(system, created, accepted + 1)

    # At rest: neither secret nor any password is in the database file in clear.
    raw = b"".join(path.read_bytes() for path in data_dir.glob("hookflow.sqlite3*"))
    logged = capsys.readouterr()
    for clear in (secret, new_secret, secret.removeprefix("whsec_")):
        assert clear.encode() not in raw
        assert clear not in logged.out + logged.err


async def test_basic_auth_passwords_are_kept_only_as_hashes(
    system: System, data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    workflow = await system.create(
        {
            "title": "basic",
            "trigger": {"basicAuth": {"username": "pay", "password": "correct horse"}},
        }
    )
    code, changed = await system.api(
        "PATCH",
        f"/api/workflows/{workflow['id']}",
        {"trigger": {"basicAuth": {"username": "pay2"}}},
    )
    assert code == 200 and changed["trigger"]["basicAuth"] == {
        "username": "pay2",
        "passwordSet": True,
    }
    url = webhook_url(system, workflow)
    auth = {"Authorization": "Basic " + base64.b64encode(b"pay2:correct horse").decode()}

    async def new_username_works() -> bool:
        return (await system.post(url, json={}, headers=auth))[0].status == 200

    await wait_for(new_username_works, timeout=2)
    for _ in range(5):  # the verified credential is remembered: no slow hash each time
        assert (await system.post(url, json={}, headers=auth))[0].status == 200
    with closing(sqlite3.connect(data_dir / "hookflow.sqlite3")) as db:
        stored = " ".join(row[0] for row in db.execute("SELECT doc FROM workflow_versions"))
    assert "correct horse" not in stored
    assert "scrypt$" in stored
    logged = ""

    async def the_runs_were_logged() -> bool:  # async: the runs finish after the answers
        nonlocal logged
        captured = capsys.readouterr()
        logged += captured.out + captured.err
        return "execution finished" in logged

    await wait_for(the_runs_were_logged, timeout=5)  # the services did log
    assert "correct horse" not in logged
    assert auth["Authorization"] not in logged


async def test_rate_limits_answer_429_and_queue_nothing(system: System) -> None:
    workflow = await system.create(
        {"title": "limited", "trigger": {"rateLimit": {"rate": 0.5, "burst": 3}}}
    )
    url = webhook_url(system, workflow)
    answers = [await system.post(url, json={"n": n}) for n in range(6)]
    statuses = [response.status for response, _ in answers]
    assert statuses[:3] == [200, 200, 200]
    assert set(statuses[3:]) == {429}
    assert int(answers[-1][0].headers["Retry-After"]) >= 1
    await asyncio.sleep(2.1)  # one token comes back every 2 s
    assert (await system.post(url, json={}))[0].status == 200
    await settled(system, workflow, 4)


async def test_bad_requests_queue_nothing(system: System) -> None:
    workflow = await system.create(
        {
            "title": "strict",
            "trigger": {"maxBodyBytes": 100, "basicAuth": {"username": "u", "password": "p"}},
        }
    )
    url = webhook_url(system, workflow)
    auth = {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}
    cases = [
        ({"data": "{}", "headers": {"Content-Type": "application/json"}}, 401),
        ({"data": "x" * 101, "headers": {**auth, "Content-Type": "text/plain"}}, 413),
        ({"data": "a,b", "headers": {**auth, "Content-Type": "text/csv"}}, 415),
        ({"data": "{", "headers": {**auth, "Content-Type": "application/json"}}, 400),
        ({"data": "<a>", "headers": {**auth, "Content-Type": "application/xml"}}, 400),
    ]
    for request, status in cases:
        response, text = await system.post(url, **request)
        assert response.status == status, text
    response, _ = await system.post(url, data="a=1&b[]=2", headers={**auth, **FORM})
    assert response.status == 200
    [only] = await settled(system, workflow, 1)
    assert only["id"] == response.headers["X-Hookflow-Execution-Id"]


async def test_the_parse_button(system: System) -> None:
    code, body = await system.api(
        "POST",
        "/api/webhook:parse",
        {"url": "http://localhost:13000/api/webhook:trigger/1hfmkioou0d?query[0][a]=1&b=2#x"},
    )
    assert code == 200
    assert [(p["key"], p["value"], p["type"]) for p in body["query"]] == [
        ("query", [{"a": "1"}], "array"),
        ("query[0]", {"a": "1"}, "object"),
        ("query[0].a", "1", "string"),
        ("b", "2", "string"),
    ]
    code, body = await system.api("POST", "/api/webhook:parse", {"url": "a=1&a=2"})
    assert body["query"][0] == {"key": "a", "value": ["1", "2"], "type": "array"}
    code, body = await system.api("POST", "/api/webhook:parse", {"body": {"a": 1, "b": {"c": 2}}})
    assert [p["key"] for p in body["body"]] == ["a", "b", "b.c"]
    code, body = await system.api(
        "POST", "/api/webhook:parse", {"sample": WECHAT_NOTIFY.decode(), "contentType": "text/xml"}
    )
    assert {"key": "xml.return_code", "value": "SUCCESS", "type": "string"} in body["body"]
    code, body = await system.api(
        "POST", "/api/webhook:parse", {"sample": '{"a": [1,}', "contentType": "application/json"}
    )
    assert code == 400 and "line 1 column 10" in body["error"]
    code, body = await system.api("POST", "/api/webhook:parse", {"nothing": 1})
    assert code == 400 and "url" in body["error"]


async def test_hostile_xml_is_refused_fast_and_queues_nothing(system: System) -> None:
    workflow = await system.create({"title": "xml"})
    url = webhook_url(system, workflow)
    for document in (BILLION_LAUGHS, EXTERNAL_ENTITY):
        started = time.monotonic()
        headers = {"Content-Type": "application/xml"}
        response, text = await system.post(url, data=document, headers=headers)
        assert response.status == 400
        assert b"XML refused" in text
        assert time.monotonic() - started < 0.5
    await asyncio.sleep(0.3)
    assert await executions(system, workflow) == []


async def test_a_generic_hmac_with_a_timestamp(system: System) -> None:
    signature = {
        "scheme": "hmac",
        "secret": "shared-secret",
        "header": "X-Signature",
        "algorithm": "sha512",
        "encoding": "base64",
        "timestampHeader": "X-Timestamp",
        "tolerance": 60,
    }
    workflow = await system.create({"title": "hmac", "trigger": {"signature": signature}})
    url = webhook_url(system, workflow)
    body = b'{"event": "refund.created", "amount": 5}'

    def signed(timestamp: int, payload: bytes = body) -> dict[str, str]:
        digest = hmac.digest(b"shared-secret", f"{timestamp}.".encode() + payload, "sha512")
        return {
            "Content-Type": "application/json",
            "X-Timestamp": str(timestamp),
            "X-Signature": base64.b64encode(digest).decode(),
        }

    now = int(time.time())
    response, _ = await system.post(url, data=body, headers=signed(now))
    assert response.status == 200
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["context"]["body"] == {"event": "refund.created", "amount": 5}
    for headers, reason in [
        (signed(now - 120), b"tolerance 60 s"),
        ({**signed(now), "X-Timestamp": str(now + 1)}, b"does not match"),
        ({k: v for k, v in signed(now).items() if k != "X-Signature"}, b"missing X-Signature"),
    ]:
        refused, text = await system.post(url, data=body, headers=headers)
        assert refused.status == 401
        assert reason in text
    await settled(system, workflow, 1)


async def test_changing_the_signature_scheme_makes_a_new_secret(system: System) -> None:
    created = await system.create({"title": "s", "trigger": {"signature": {"scheme": "github"}}})
    patch = {"trigger": {"signature": {"scheme": "standardWebhooks"}}}
    code, changed = await system.api("PATCH", f"/api/workflows/{created['id']}", patch)
    assert code == 200
    assert changed["trigger"]["signature"]["secret"].startswith("whsec_")
    stripe = {"trigger": {"signature": {"scheme": "stripe"}}}
    code, body = await system.api("PATCH", f"/api/workflows/{created['id']}", stripe)
    assert code == 422 and body["details"][0]["path"] == "trigger.signature.secret"
    code, same = await system.api("PATCH", f"/api/workflows/{created['id']}", {"title": "t"})
    assert code == 200 and "secret" not in same["trigger"]["signature"]
