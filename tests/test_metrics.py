"""Metrics: the counters and histograms of each service move as real webhooks go through the
gateway over HTTP, run on the executor and are recorded; each port serves its registry in the
Prometheus text format, without the admin token, with bounded labels (a workflow id, never a
trigger key)."""

from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from hookflow_shared.resources import BROKER
from tests.support import TOKEN, System, payment_workflow, wait_for, webhook_url

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(session: aiohttp.ClientSession, base: str) -> tuple[str, Samples]:
    """The /metrics text of a service (asked without a token) and its samples, parsed."""
    async with session.get(base + "/metrics") as response:
        assert response.status == 200, await response.text()
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        assert family.name.startswith("hookflow_"), family.name
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


async def test_metrics_move_with_webhooks_executions_and_api_calls(
    rabbit_system: System,
) -> None:
    system = rabbit_system
    workflow = await system.create(
        payment_workflow(trigger={"basicAuth": {"username": "pay", "password": "s3cret"}})
    )
    wid, key, url = workflow["id"], workflow["trigger"]["key"], webhook_url(system, workflow)
    auth = {"Authorization": aiohttp.encode_basic_auth("pay", "s3cret")}
    for status in ("paid", "paid", "pending"):
        response, _ = await system.post(url, json={"status": status}, headers=auth)
        assert response.status == 200
    response, _ = await system.post(url, json={"status": "paid"})  # no credentials
    assert response.status == 401
    response, _ = await system.post(
        url,
        json={"status": "paid"},
        headers={"Authorization": aiohttp.encode_basic_auth("pay", "wrong")},
    )
    assert response.status == 401
    response, _ = await system.post(system.gateway_url + "/api/webhook:trigger/nope-" + key[:8])
    assert response.status == 404
    async with system.session.get(url) as answer:
        assert answer.status == 405

    text, gateway = await scrape(system.session, system.gateway_url)
    webhooks = "hookflow_webhooks_total"
    assert value(gateway, webhooks, workflow=wid, outcome="accepted", mode="async") == 3
    assert value(gateway, webhooks, workflow=wid, outcome="unauthorized", mode="async") == 2
    # The method is checked before the key: a 405 is not told which workflow it was for.
    assert value(gateway, webhooks, workflow="", outcome="method_not_allowed", mode="unknown") == 1
    assert value(gateway, webhooks, workflow="", outcome="unknown_key", mode="unknown") == 1
    assert key not in text and key[:8] not in text and "s3cret" not in text
    assert value(gateway, "hookflow_webhook_duration_seconds_count", mode="async") == 5
    assert value(gateway, "hookflow_webhook_duration_seconds_count", mode="unknown") == 2
    assert value(gateway, "hookflow_publish_batch_size_count") >= 1
    assert value(gateway, "hookflow_publish_batch_size_sum") == 3
    assert value(gateway, "hookflow_publish_confirm_seconds_count") >= 1
    assert value(gateway, "hookflow_trigger_cache_triggers") == 1
    assert 0 <= value(gateway, "hookflow_trigger_cache_age_seconds") < 60

    async def executed() -> Samples | None:
        _, samples = await scrape(system.session, system.executor_url)
        done = value(samples, "hookflow_executions_total", workflow=wid, status="succeeded")
        return samples if done == 2 else None

    executor = await wait_for(executed, timeout=10)
    assert value(executor, "hookflow_executions_total", workflow=wid, status="failed") == 1
    assert value(executor, "hookflow_execution_duration_seconds_count") == 3
    # Each run ran its condition; the failing one its end node as well.
    assert value(executor, "hookflow_node_duration_seconds_count", type="condition") == 3
    assert value(executor, "hookflow_node_duration_seconds_count", type="end") == 1
    assert value(executor, "hookflow_record_write_seconds_count") >= 1
    assert value(executor, "hookflow_storage_up") == 1
    assert value(executor, "hookflow_runs_in_flight") == 0
    assert value(executor, "hookflow_runs_given_up_total") == 0
    assert ("hookflow_redeliveries_total", frozenset()) in executor
    assert ("hookflow_runs_dead_lettered_total", frozenset()) in executor

    code, _ = await system.api("GET", f"/api/workflows/{wid}")
    assert code == 200
    code, _ = await system.api("GET", "/api/no-such-thing")
    assert code == 404
    async with system.session.get(system.config_url + "/api/workflows") as answer:
        assert answer.status == 401  # no token
    _, api = await scrape(system.session, system.config_url)
    requests = "hookflow_api_requests_total"
    assert value(api, requests, route="/api/workflows", method="POST", status="201") == 1
    assert value(api, requests, route="/api/workflows/{id}", method="GET", status="200") == 1
    assert value(api, requests, route="unmatched", method="GET", status="404") == 1
    assert value(api, requests, route="/api/workflows", method="GET", status="401") == 1
    assert not any(wid in dict(labels).get("route", "") for _, labels in api)


async def test_a_repeated_event_and_a_bad_body_count_as_such(system: System) -> None:
    workflow = await system.create(
        payment_workflow(trigger={"idempotency": {"header": "Idempotency-Key"}})
    )
    wid, url = workflow["id"], webhook_url(system, workflow)
    for _ in range(2):
        response, _ = await system.post(
            url, json={"status": "paid"}, headers={"Idempotency-Key": "evt-1"}
        )
        assert response.status == 200
    response, _ = await system.post(url, data=b"{", headers={"Content-Type": "application/json"})
    assert response.status == 400
    response, _ = await system.post(url, data=b"a,b", headers={"Content-Type": "text/csv"})
    assert response.status == 415
    _, gateway = await scrape(system.session, system.gateway_url)
    webhooks = "hookflow_webhooks_total"
    assert value(gateway, webhooks, workflow=wid, outcome="accepted", mode="async") == 1
    assert value(gateway, webhooks, workflow=wid, outcome="repeated", mode="async") == 1
    assert value(gateway, webhooks, workflow=wid, outcome="bad_body", mode="async") == 1
    assert value(gateway, webhooks, workflow=wid, outcome="unsupported_type", mode="async") == 1


async def health(session: aiohttp.ClientSession, base: str) -> tuple[int, dict[str, Any]]:
    async with session.get(base + "/healthz") as response:
        return response.status, await response.json()


async def test_every_healthz_names_each_dependency(system: System) -> None:
    await system.create(payment_workflow())
    code, gateway = await health(system.session, system.gateway_url)
    assert code == 200
    assert gateway == {
        "status": "ok",
        "broker": {"ok": True},
        "storage": {"ok": True},
        "triggers": {"ok": True, "count": 1},
    }
    code, executor = await health(system.session, system.executor_url)
    assert code == 200
    assert executor["status"] == "ok"
    assert executor["broker"] == {"ok": True} and executor["storage"] == {"ok": True}
    code, api = await health(system.session, system.config_url)
    assert code == 200
    assert api == {"status": "ok", "broker": {"ok": True}, "storage": {"ok": True}}


async def test_healthz_says_503_and_why_when_the_broker_is_gone(local: System) -> None:
    """On the in-process bus: closed, every service loses its broker and says so."""
    broker = local.runners["gateway"].app[BROKER]
    await broker.close()
    for base in (local.gateway_url, local.executor_url, local.config_url):
        code, body = await health(local.session, base)
        assert code == 503, base
        assert body["status"] == "unavailable"
        assert body["broker"] == {"ok": False}
        assert body["storage"]["ok"] is True


async def test_metrics_and_healthz_need_no_token_but_the_api_does(system: System) -> None:
    for path in ("/metrics", "/healthz"):
        async with system.session.get(system.config_url + path) as response:
            assert response.status == 200, path
    async with system.session.get(
        system.config_url + "/api/workflows", headers={"Authorization": f"Bearer {TOKEN}x"}
    ) as response:
        assert response.status == 401
