"""The admin CLI (`hookflow apply | workflows | executions | parse`), run as a user runs it: the
real `hookflow` entry point in a subprocess, against a running system over HTTP, embedded
(`hookflow run`, SQLite, the in-process bus) and distributed (config API, gateway and executor
as separate processes on RabbitMQ)."""

import json
import os
import signal
import subprocess
from collections.abc import AsyncIterator, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from hookflow_cli.client import AdminSettings
from hookflow_shared.settings import (
    ConfigApiSettings,
    ExecutorSettings,
    GatewaySettings,
    RunSettings,
)
from tests.admin_cli import HOOKFLOW, Admin, Result, hookflow
from tests.faults.processes import Installation, Sqlite
from tests.support import embedded_environment, free_port, wait_for

TOKEN = "cli-test-admin-token-0123456789"

pytestmark = pytest.mark.timeout(300)
"""Each test runs the command a dozen times or more, each a new Python process."""


def workflow(name: str | None = None, title: str = "Payment callback") -> dict[str, Any]:
    """A sync workflow: 200 with the order id when the body's status is "paid", else failed."""
    document: dict[str, Any] = {
        "title": title,
        "sync": True,
        "trigger": {"request": {"body": [{"key": "status"}, {"key": "order.id"}]}},
        "nodes": [
            {
                "key": "paid",
                "type": "condition",
                "config": {
                    "rejectOnFalse": True,
                    "calculation": {
                        "group": {
                            "type": "and",
                            "calculations": [
                                {
                                    "calculator": "equal",
                                    "operands": ["{{$context.body.status}}", "paid"],
                                }
                            ],
                        }
                    },
                },
            },
            {
                "key": "ok",
                "type": "response",
                "config": {"statusCode": 200, "body": {"received": "{{$context.body.order.id}}"}},
            },
        ],
    }
    if name is not None:
        document["name"] = name
    return document


@pytest.fixture
def embedded(tmp_path: Path) -> Iterator[Admin]:
    """`hookflow run` on free ports, SQLite in tmp_path, a chosen admin token."""
    env, ports = embedded_environment(tmp_path / "data")
    env["HOOKFLOW_ADMIN_TOKEN"] = TOKEN
    process = subprocess.Popen(
        [str(HOOKFLOW), "run"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert process.stdout is not None
    banner = ""
    while "Stop with Ctrl-C." not in banner:
        line = process.stdout.readline()
        if not line:
            process.kill()
            pytest.fail(f"hookflow run did not start: {banner}")
        banner += line
    try:
        yield Admin(
            f"http://127.0.0.1:{ports['config']}", TOKEN, f"http://127.0.0.1:{ports['gateway']}"
        )
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(10)
        process.stdout.close()


@pytest.fixture
async def distributed(rabbitmq: str, namespace: str, tmp_path: Path) -> AsyncIterator[Admin]:
    """A config API, a gateway and an executor, each its own process, on real RabbitMQ."""
    installation = Installation(rabbitmq, namespace, Sqlite(tmp_path / "data"), tmp_path / "logs")
    installation.token = TOKEN
    try:
        await installation.start()
        yield Admin(installation.config_api.url, TOKEN, installation.gateways[0].url)
    finally:
        installation.stop_all()


@pytest.fixture(params=["embedded", "distributed"])
def system(request: pytest.FixtureRequest) -> Admin:
    admin: Admin = request.getfixturevalue(request.param)
    return admin


def write(path: Path, content: Any) -> Path:
    path.write_text(yaml.safe_dump(content, sort_keys=False))
    return path


async def post(url: str, body: Any) -> int:
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        await response.read()
        return response.status


async def executions(admin: Admin, *filters: str, count: int) -> list[dict[str, Any]]:
    """`executions list --json`, once the config API has `count` of them (records are
    written as runs end, and a webhook's answer may come first)."""
    params = dict(zip(filters[::2], filters[1::2], strict=True))
    query = {"limit": "200"} | {k.removeprefix("--"): v for k, v in params.items()}
    headers = {"Authorization": f"Bearer {admin.token}"}

    async def listed() -> int | None:
        async with (
            aiohttp.ClientSession() as session,
            session.get(admin.api_url + "/api/executions", params=query, headers=headers) as r,
        ):
            found = len((await r.json())["items"])
            return found if found >= count else None

    await wait_for(listed, timeout=20)
    found: list[dict[str, Any]] = admin.json("executions", "list", *filters)
    assert len(found) == count, found
    return found


def no_traceback(result: Result) -> None:
    assert "Traceback" not in result.stderr + result.stdout
    assert TOKEN not in result.stderr + result.stdout


async def test_apply_creates_updates_and_reports_unchanged(system: Admin, tmp_path: Path) -> None:
    files = [
        write(tmp_path / "payments.yaml", workflow("payments")),
        write(tmp_path / "more.yml", [workflow("refunds", "Refunds"), workflow(title="Anon")]),
    ]
    (tmp_path / "orders.json").write_text(json.dumps(workflow("orders", "Orders")))
    created = system.json("apply", *map(str, files), str(tmp_path / "orders.json"))
    assert [(a["file"], a["action"], a["name"], a["version"]) for a in created] == [
        (str(files[0]), "created", "payments", 1),
        (f"{files[1]}[0]", "created", "refunds", 1),
        (f"{files[1]}[1]", "created", None, 1),
        (str(tmp_path / "orders.json"), "created", "orders", 1),
    ]

    unchanged = system.json("apply", str(files[0]))
    assert [(a["action"], a["id"], a["version"]) for a in unchanged] == [
        ("unchanged", created[0]["id"], 1)
    ]
    write(files[0], workflow("payments", "Payment callback, v2"))
    people = system.ok("apply", str(files[0]))
    assert "updated" in people.stdout and created[0]["id"] in people.stdout
    shown = system.json("workflows", "show", "payments")
    assert (shown["id"], shown["title"], shown["version"]) == (
        created[0]["id"],
        "Payment callback, v2",
        2,
    )
    assert system.json("workflows", "show", created[0]["id"])["name"] == "payments"

    listed = system.json("workflows", "list")
    assert sorted(w.get("name") or "" for w in listed) == ["", "orders", "payments", "refunds"]
    table = system.ok("workflows", "list").stdout
    assert all(w["id"] in table for w in listed)


async def test_invalid_files_are_told_with_their_paths(system: Admin, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("title: x\n  nodes: [\n")
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"title": "x",\n "nodes": [}')
    not_a_doc = write(tmp_path / "list.yaml", [workflow("fine"), "just a string"])
    result = system.run("apply", str(broken), str(bad_json), str(not_a_doc))
    assert result.code == 6
    no_traceback(result)
    assert f"{broken}: line 2 column 8: not valid YAML" in result.stderr
    assert f"{bad_json}: line 2 column 12: not valid JSON" in result.stderr
    assert f"{not_a_doc}[1]: a workflow document must be a mapping" in result.stderr
    assert "nothing was applied" in result.stderr
    assert system.json("workflows", "list") == []

    wrong = workflow("wrong")
    wrong["nodes"][0]["type"] = "nosuch"
    wrong["nodes"][1]["config"]["statusCode"] = "abc"
    good = write(tmp_path / "good.yaml", workflow("good"))
    rejected = system.run("apply", str(good), str(write(tmp_path / "wrong.yaml", wrong)))
    assert rejected.code == 6
    no_traceback(rejected)
    assert f"{tmp_path / 'wrong.yaml'}: nodes[0].type: unknown node type 'nosuch'" in (
        rejected.stderr
    )
    assert f"{tmp_path / 'wrong.yaml'}: nodes[1].config.statusCode:" in rejected.stderr
    assert "1 applied" in rejected.stderr and "created" in rejected.stdout
    assert [w["name"] for w in system.json("workflows", "list")] == ["good"]

    missing = system.run("apply", str(tmp_path / "nowhere.yaml"))
    assert missing.code == 6 and f"{tmp_path / 'nowhere.yaml'}: cannot be read" in missing.stderr


async def test_disable_enable_and_delete(system: Admin, tmp_path: Path) -> None:
    applied = system.json("apply", str(write(tmp_path / "w.yaml", workflow("payments"))))
    url = system.json("workflows", "show", "payments")["webhookUrl"]
    paid = {"status": "paid", "order": {"id": "A1"}}
    assert await post(url, paid) == 200

    disabled = system.ok("workflows", "disable", "payments")
    assert "disabled" in disabled.stdout
    assert system.json("workflows", "show", "payments")["enabled"] is False
    assert await post(url, paid) == 404
    assert system.json("workflows", "enable", applied[0]["id"])["enabled"] is True
    assert await post(url, paid) == 200

    kept = system.run("workflows", "delete", "payments", stdin="n\n")
    assert kept.code != 0 and "Delete workflow" in kept.stderr
    assert system.json("workflows", "show", "payments")["id"] == applied[0]["id"]
    system.ok("workflows", "delete", "payments", "--yes")
    gone = system.run("workflows", "show", "payments")
    assert gone.code == 3 and "no workflow is named 'payments'" in gone.stderr
    by_id = system.run("workflows", "show", applied[0]["id"])
    assert by_id.code == 3 and f"workflow {applied[0]['id']} not found" in by_id.stderr
    assert await post(url, paid) == 404


async def test_executions_list_show_and_replay(system: Admin, tmp_path: Path) -> None:
    documents = [workflow("pay"), workflow()]
    pay, other = system.json("apply", str(write(tmp_path / "w.yaml", documents)))
    url, other_url = pay["webhookUrl"], other["webhookUrl"]
    assert await post(url, {"status": "paid", "order": {"id": "A1"}}) == 200
    for order in ("B1", "B2"):
        assert await post(url, {"status": "declined", "order": {"id": order}}) == 500
    assert await post(other_url, {"status": "paid", "order": {"id": "C1"}}) == 200

    everything = await executions(system, count=4)
    mine = await executions(system, "--workflow", pay["id"], count=3)
    assert {e["workflowId"] for e in mine} == {pay["id"]}
    failed = await executions(system, "--workflow", pay["id"], "--status", "failed", count=2)
    assert {e["status"] for e in failed} == {"failed"}
    assert await executions(system, "--limit", "1", count=1) == everything[:1]
    table = system.ok("executions", "list", "--status", "failed").stdout
    assert all(e["id"] in table for e in failed)

    succeeded = next(e for e in mine if e["status"] == "succeeded")
    record = system.json("executions", "show", succeeded["id"])
    assert record["context"]["body"] == {"status": "paid", "order": {"id": "A1"}}
    assert [n["key"] for n in record["nodes"]] == ["paid", "ok"]
    assert record["response"]["body"] == {"received": "A1"}
    shown = system.ok("executions", "show", succeeded["id"]).stdout
    assert succeeded["id"] in shown and "condition" in shown and '"received": "A1"' in shown

    again = system.json("executions", "replay", succeeded["id"])
    assert [r["execution"] for r in again] == [succeeded["id"]] and len(again[0]["id"]) == 32
    replayed = system.json("executions", "show", again[0]["id"])
    assert replayed["replayOf"] == succeeded["id"]

    bulk = system.run("executions", "replay", "--workflow", "pay", "--status", "failed")
    assert bulk.code == 0, bulk.stderr
    assert "replaying" in bulk.stderr and "2/2" in bulk.stderr
    assert "2 of 2 replayed, 0 failed." in bulk.stdout
    replays = await executions(system, "--workflow", pay["id"], "--status", "failed", count=4)
    assert sorted(e["replayOf"] for e in replays if e["replayOf"]) == sorted(
        e["id"] for e in failed
    )

    unknown = system.run("executions", "show", "0" * 32)
    assert unknown.code == 3 and f"execution {'0' * 32} not found" in unknown.stderr
    partly = system.run("executions", "replay", succeeded["id"], "0" * 32)
    assert partly.code == 1 and "1 of 2 replays failed" in partly.stderr


async def test_parse_a_url_and_a_body(embedded: Admin, tmp_path: Path) -> None:
    query = embedded.json("parse", "https://shop.example/callback?order=A1&items[0][sku]=X")
    assert [(p["key"], p["value"], p["type"]) for p in query["query"]] == [
        ("order", "A1", "string"),
        ("items", [{"sku": "X"}], "array"),
        ("items[0]", {"sku": "X"}, "object"),
        ("items[0].sku", "X", "string"),
    ]
    sample = tmp_path / "sample.json"
    sample.write_text('{"order": {"id": 7, "paid": true}}')
    table = embedded.ok("parse", "--body", str(sample)).stdout
    assert "body paths" in table
    for row in (("order.id", "number", "7"), ("order.paid", "boolean", "true")):
        assert any(all(part in line for part in row) for line in table.splitlines()), row

    sample.write_text("{not json")
    bad = embedded.run("parse", "--body", str(sample))
    assert bad.code == 6 and f"{sample}: not a JSON sample" in bad.stderr
    neither = embedded.run("parse")
    assert neither.code == 2 and "give a URL or --body FILE" in neither.stderr


async def test_token_and_reachability_errors_say_what_to_do(embedded: Admin) -> None:
    wrong = embedded.run("workflows", "list", "--token", "not-the-token")
    assert wrong.code == 4 and wrong.stdout == ""
    assert "refused the admin token" in wrong.stderr and "set HOOKFLOW_ADMIN_TOKEN" in wrong.stderr
    assert "not-the-token" not in wrong.stderr
    assert len(wrong.stderr.strip().splitlines()) == 1
    no_traceback(wrong)

    missing = embedded.run("executions", "list", HOOKFLOW_ADMIN_TOKEN="")
    assert missing.code == 4 and "no admin token: set HOOKFLOW_ADMIN_TOKEN" in missing.stderr

    closed = f"http://127.0.0.1:{free_port()}"
    unreachable = embedded.run("workflows", "list", HOOKFLOW_API_URL=closed)
    assert unreachable.code == 5 and unreachable.stdout == ""
    assert f"cannot reach the config API at {closed}" in unreachable.stderr
    assert "is it running? set HOOKFLOW_API_URL" in unreachable.stderr
    assert len(unreachable.stderr.strip().splitlines()) == 1
    no_traceback(unreachable)
    flag = embedded.run("parse", "a=1", "--api-url", closed)
    assert flag.code == 5 and closed in flag.stderr

    assert embedded.json("workflows", "list", "--token", TOKEN, "--api-url", embedded.api_url) == []


def test_version_and_the_environment_in_each_help() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
    env["COLUMNS"] = "250"
    shown = hookflow("--version", env=env)
    assert (shown.code, shown.stdout) == (0, f"hookflow {version('hookflow')}\n")

    commands: list[tuple[list[str], type[Any]]] = [
        (["run"], RunSettings),
        (["gateway"], GatewaySettings),
        (["executor"], ExecutorSettings),
        (["config-api"], ConfigApiSettings),
        (["apply"], AdminSettings),
        (["parse"], AdminSettings),
        (["workflows", "list"], AdminSettings),
        (["executions", "replay"], AdminSettings),
    ]
    for command, settings in commands:
        help_text = hookflow(*command, "--help", env=env)
        assert help_text.code == 0, help_text.stderr
        for name in settings.model_fields:
            assert f"HOOKFLOW_{name.upper()} (" in help_text.stdout, (command, name)
    gateway_help = hookflow("gateway", "--help", env=env).stdout
    assert "HOOKFLOW_GATEWAY_PORT (8080)" in gateway_help
    assert "HOOKFLOW_ADMIN_TOKEN" not in gateway_help
    assert "HOOKFLOW_MAX_BATCH (256): Most webhook runs carried by one broker message." in (
        gateway_help
    )
    admin_help = hookflow("workflows", "show", "--help", env=env).stdout
    assert "HOOKFLOW_API_URL (http://127.0.0.1:8081)" in admin_help
    assert "HOOKFLOW_ADMIN_TOKEN (unset)" in admin_help
