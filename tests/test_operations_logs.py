"""What an operator reads: one log line per refused webhook (its reason, workflow and request
id; of the key only a prefix, never a credential), where each service listens and what it uses,
and a startup failure as one clear line on stderr with a non-zero exit."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from structlog.testing import capture_logs

from hookflow_shared.crypto import new_key
from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.resources import BROKER
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import (
    System,
    free_port,
    payment_workflow,
    running_system,
    settings_for,
    webhook_url,
)

PASSWORD = "s3cret-Pw-42"


def refusals(events: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == "webhook refused"]


async def test_each_refused_webhook_is_logged_once_without_its_key_or_credentials(
    local: System,
) -> None:
    guarded = await local.create(
        payment_workflow(
            trigger={
                "basicAuth": {"username": "pay", "password": PASSWORD},
                "maxBodyBytes": 64,
            }
        )
    )
    limited = await local.create(payment_workflow(trigger={"rateLimit": {"rate": 1, "burst": 1}}))
    url, key = webhook_url(local, guarded), guarded["trigger"]["key"]
    good = {"Authorization": aiohttp.encode_basic_auth("pay", PASSWORD)}
    wrong = {"Authorization": aiohttp.encode_basic_auth("pay", "not-" + PASSWORD)}
    json_type = {"Content-Type": "application/json"}
    requests: list[tuple[str, str, dict[str, str], bytes, int, str]] = [
        (
            "POST",
            local.gateway_url + "/api/webhook:trigger/" + key[:-1] + "x",
            {},
            b"",
            404,
            "unknown_key",
        ),
        ("GET", url, {}, b"", 405, "method_not_allowed"),
        ("POST", url, {**wrong, "X-Request-Id": "req-401"}, b"{}", 401, "unauthorized"),
        ("POST", url, {**good, **json_type}, b"{" + b" " * 100 + b"}", 413, "too_large"),
        ("POST", url, {**good, "Content-Type": "text/csv"}, b"a,b", 415, "unsupported_type"),
        ("POST", url, {**good, **json_type}, b"{", 400, "bad_body"),
    ]
    with capture_logs() as events:
        for method, target, headers, body, status, _ in requests:
            async with local.session.request(method, target, headers=headers, data=body) as r:
                assert r.status == status, await r.text()
        limited_url = webhook_url(local, limited)
        statuses = []
        for _ in range(3):
            response, _ = await local.post(limited_url, json={"status": "paid"})
            statuses.append(response.status)
        assert statuses.count(429) >= 1
        accepted = statuses.count(200)
    logged = refusals(events)
    assert [e["reason"] for e in logged] == [r[5] for r in requests] + ["rate_limited"] * (
        3 - accepted
    )
    for entry, (_, _, _, _, status, _) in zip(logged, requests, strict=False):
        assert entry["status"] == status
        assert entry["log_level"] == "info"
        assert entry["logger_name"] == "hookflow.gateway.refused"
        assert entry["request_id"]
    assert logged[0]["workflow_id"] is None  # an unknown key names no workflow
    assert {e["workflow_id"] for e in logged[2:6]} == {guarded["id"]}
    assert logged[-1]["workflow_id"] == limited["id"]
    assert logged[2]["request_id"] == "req-401"
    assert all(e["key_prefix"] == key[:6] for e in logged[:6])
    everything = repr(events)
    assert key not in everything and key[:-1] not in everything
    assert PASSWORD not in everything and "Authorization" not in everything
    assert "Basic " not in everything


async def test_a_broker_refusing_runs_is_a_warning(local: System) -> None:
    workflow = await local.create(payment_workflow())
    await local.runners["gateway"].app[BROKER].close()
    with capture_logs() as events:
        response, _ = await local.post(webhook_url(local, workflow), json={"status": "paid"})
    assert response.status == 503
    [entry] = refusals(events)
    assert entry["log_level"] == "warning"
    assert entry["reason"] in ("broker_unavailable", "not_ready")


async def test_the_refusals_level_can_be_turned_down(
    local_store: SqliteStorage, data_dir: Path, namespace: str
) -> None:
    settings = settings_for(
        broker_url=None,
        mongodb=None,
        data_dir=data_dir,
        namespace=namespace,
        refused_log_level="debug",
    )
    bus = MemoryBroker()
    await bus.connect()
    async with running_system(settings, storage=local_store, broker=bus) as system:
        with capture_logs() as events:
            response, _ = await system.post(system.gateway_url + "/api/webhook:trigger/nope")
        assert response.status == 404
        [entry] = refusals(events)
        assert entry["log_level"] == "debug"


# --- start-up ---


@pytest.fixture
def environment(tmp_path: Path) -> dict[str, str]:
    """A clean environment for a service process: no HOOKFLOW_* but the test's own."""
    return {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")} | {
        "HOOKFLOW_DATA_DIR": str(tmp_path / "data"),
        "HOOKFLOW_LOG_FORMAT": "json",
        "HOOKFLOW_GATEWAY_PORT": "0",
        "HOOKFLOW_EXECUTOR_PORT": "0",
        "HOOKFLOW_CONFIG_API_PORT": "0",
    }


def refused_start(command: list[str], env: dict[str, str]) -> str:
    """Start a service that must fail: its exit status is not 0 and its stderr one line."""
    done = subprocess.run(
        [sys.executable, "-m", *command], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("hookflow: "), lines[0]
    return lines[0]


def test_a_service_without_a_broker_url_says_what_to_set(environment: dict[str, str]) -> None:
    line = refused_start(["hookflow_gateway"], environment)
    assert "HOOKFLOW_BROKER_URL is not set" in line


def test_an_unreachable_broker_is_one_line_without_the_password(
    environment: dict[str, str],
) -> None:
    port = free_port()
    environment["HOOKFLOW_BROKER_URL"] = f"amqp://guest:{PASSWORD}@127.0.0.1:{port}/"
    line = refused_start(["hookflow_cli", "executor"], environment)
    assert f"cannot reach RabbitMQ at amqp://guest:***@127.0.0.1:{port}/" in line
    assert PASSWORD not in line


@pytest.mark.rabbitmq
def test_a_wrong_broker_password_says_so(rabbitmq_url: str, environment: dict[str, str]) -> None:
    url = rabbitmq_url.replace("guest:guest@", f"guest:{PASSWORD}@")
    assert PASSWORD in url, "the test broker's URL is not the default guest:guest"
    environment["HOOKFLOW_BROKER_URL"] = url
    line = refused_start(["hookflow_gateway"], environment)
    assert "refused the user name or password" in line
    assert "HOOKFLOW_BROKER_URL" in line
    assert PASSWORD not in line


def test_a_bad_secret_key_is_one_line(environment: dict[str, str]) -> None:
    environment |= {
        "HOOKFLOW_ADMIN_TOKEN": "t",
        "HOOKFLOW_SECRET_KEY": "not-a-fernet-key",
        "HOOKFLOW_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
    }
    line = refused_start(["hookflow_config_api"], environment)
    assert "HOOKFLOW_SECRET_KEY must be" in line
    assert "not-a-fernet-key" not in line


def test_a_bad_secret_key_after_the_broker_is_one_line(
    rabbitmq: str, environment: dict[str, str], namespace: str
) -> None:
    """The gateway reads the key once its storage and broker are open: they are closed
    quietly, and only the error is left to tell. (`rabbitmq`: the queues it declared are
    deleted afterwards.)"""
    environment |= {
        "HOOKFLOW_SECRET_KEY": "not-a-fernet-key",
        "HOOKFLOW_BROKER_URL": rabbitmq,
        "HOOKFLOW_NAMESPACE": namespace,
    }
    line = refused_start(["hookflow_gateway"], environment)
    assert "HOOKFLOW_SECRET_KEY must be" in line


def test_an_unreachable_mongodb_is_one_line_without_the_password(
    environment: dict[str, str],
) -> None:
    port = free_port()
    environment |= {
        "HOOKFLOW_MONGODB_URL": f"mongodb://hook:{PASSWORD}@127.0.0.1:{port}/",
        "HOOKFLOW_STORAGE_TIMEOUT": "1",
        "HOOKFLOW_BROKER_URL": f"amqp://guest:guest@127.0.0.1:{free_port()}/",
    }
    line = refused_start(["hookflow_executor"], environment)
    assert f"cannot open the storage, MongoDB at mongodb://hook:***@127.0.0.1:{port}/" in line
    assert PASSWORD not in line


def test_a_bad_retention_is_one_line(environment: dict[str, str]) -> None:
    environment["HOOKFLOW_EXECUTION_RETENTION"] = "soon"
    line = refused_start(["hookflow_executor"], environment)
    assert "HOOKFLOW_EXECUTION_RETENTION" in line and "30d" in line


@pytest.fixture
def executor_process(
    rabbitmq: str, environment: dict[str, str], namespace: str
) -> Iterator[subprocess.Popen[str]]:
    environment |= {
        "HOOKFLOW_BROKER_URL": rabbitmq,
        "HOOKFLOW_NAMESPACE": namespace,
        "HOOKFLOW_SECRET_KEY": new_key(),
    }
    process = subprocess.Popen(
        [sys.executable, "-m", "hookflow_executor"],
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process
    finally:
        process.terminate()
        process.communicate(timeout=30)


def test_a_service_logs_where_it_listens_and_what_it_uses(
    executor_process: subprocess.Popen[str], tmp_path: Path
) -> None:
    assert executor_process.stderr is not None
    for line in executor_process.stderr:
        entry = json.loads(line)
        if entry["event"] == "listening":
            break
    else:
        pytest.fail("the executor never said where it listens")
    assert entry["service"] == "executor"
    assert entry["address"].startswith("127.0.0.1:")
    assert entry["broker"].startswith("amqp://") and "guest:***@" in entry["broker"]
    assert entry["storage"] == f"SQLite in {tmp_path / 'data' / 'hookflow.sqlite3'}"
