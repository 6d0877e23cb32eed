"""Sync mode and the node set, end to end on a real RabbitMQ: a workflow built only through the
config API answers a real POST with what its nodes computed."""

import asyncio
import time
from pathlib import Path
from typing import Any

import orjson

from tests.support import System, seed_example, sqlite_write_lock, wait_for, webhook_url

JSON = {"Content-Type": "application/json"}


async def test_the_seed_example_answers_from_its_response_nodes(system: System) -> None:
    workflow = await system.create(seed_example())
    url = webhook_url(system, workflow)
    response, body = await system.post(
        url, json={"status": "paid", "amount": 12.5, "order": {"id": "A1"}}
    )
    assert response.status == 200
    assert response.headers["X-Order"] == "A1"
    assert orjson.loads(body) == {"received": "A1", "amount": 12.5}
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"
    assert [n["key"] for n in execution["nodes"]] == ["paid", "ok"], "nothing runs after a response"
    assert execution["response"] == {
        "statusCode": 200,
        "headers": {"X-Order": "A1"},
        "body": {"received": "A1", "amount": 12.5},
    }

    retry, text = await system.post(url, json={"status": "pending", "order": {"id": "A2"}})
    assert (retry.status, text) == (400, b"payment not completed")
    assert retry.content_type == "text/plain"


async def test_the_answer_does_not_wait_for_the_record(system: System, data_dir: Path) -> None:
    """A sync caller's answer leaves the executor once the run finished; its record is written
    meanwhile: here only once another writer lets go of the SQLite file, after the answer."""
    workflow = await system.create(seed_example())
    url = webhook_url(system, workflow)
    with sqlite_write_lock(data_dir / "hookflow.sqlite3") as release:
        response, body = await system.post(
            url, json={"status": "paid", "amount": 3, "order": {"id": "A7"}}
        )
        answered = time.monotonic()
        released = release()
    assert (response.status, orjson.loads(body)) == (200, {"received": "A7", "amount": 3})
    assert answered <= released
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"


async def test_without_a_response_node_success_is_200_and_failure_500(system: System) -> None:
    workflow = await system.create(
        {
            "title": "no response node",
            "sync": True,
            "nodes": [
                {
                    "key": "check",
                    "type": "condition",
                    "config": {"engine": "cel", "expression": "context.body.ok == true"},
                    "branches": {
                        "false": [{"key": "stop", "type": "end", "config": {"endStatus": "failed"}}]
                    },
                },
            ],
        }
    )
    url = webhook_url(system, workflow)
    good, body = await system.post(url, json={"ok": True})
    assert good.status == 200
    assert orjson.loads(body) == {
        "executionId": good.headers["X-Hookflow-Execution-Id"],
        "status": "succeeded",
    }
    bad, body = await system.post(url, json={"ok": False})
    assert bad.status == 500
    assert orjson.loads(body)["status"] == "failed"
    broken, _ = await system.post(url, json={"something": "else"})  # no such field: the node fails
    assert broken.status == 500
    execution = await system.execution(broken.headers["X-Hookflow-Execution-Id"])
    assert "no such field" in execution["error"]


async def test_calculation_and_templates_carry_values_between_nodes(system: System) -> None:
    workflow = await system.create(
        {
            "title": "calculate",
            "sync": True,
            "nodes": [
                {
                    "key": "total",
                    "type": "calculation",
                    "config": {
                        "expression": "context.body.items[0].price"
                        " * double(context.body.items[0].qty) + 1.5"
                    },
                },
                {
                    "key": "big",
                    "type": "condition",
                    "config": {
                        "calculation": {
                            "group": {
                                "calculations": [
                                    {
                                        "calculator": "gt",
                                        "operands": ["{{$jobsMapByNodeKey.total}}", 100],
                                    }
                                ]
                            }
                        }
                    },
                },
                {
                    "key": "answer",
                    "type": "response",
                    "config": {
                        "statusCode": "{{$context.query.code}}",
                        "body": {
                            "total": "{{$jobsMapByNodeKey.total}}",
                            "big": "{{$jobsMapByNodeKey.big}}",
                            "text": "total={{$jobsMapByNodeKey.total}} at {{$system.now}}",
                            "id": "{{$system.executionId}}",
                            "missing": "{{$context.body.nope}}",
                        },
                    },
                },
            ],
        }
    )
    response, body = await system.post(
        webhook_url(system, workflow) + "?code=201", json={"items": [{"price": 50.0, "qty": 3}]}
    )
    assert response.status == 201
    answer = orjson.loads(body)
    assert answer["total"] == 151.5
    assert answer["big"] is True
    assert answer["text"].startswith("total=151.5 at 20")
    assert answer["missing"] is None
    assert answer["id"] == response.headers["X-Hookflow-Execution-Id"]


async def test_the_request_node_calls_a_real_server(
    system: System, upstream: dict[str, Any]
) -> None:
    workflow = await system.create(
        {
            "title": "forward",
            "sync": True,
            "nodes": [
                {
                    "key": "call",
                    "type": "request",
                    "config": {
                        "method": "POST",
                        "url": upstream["url"] + "/echo",
                        "headers": [{"name": "X-Order", "value": "{{$context.body.order.id}}"}],
                        "params": [{"name": "sku", "value": "{{$context.body.items[0].sku}}"}],
                        "data": {
                            "order": "{{$context.body.order}}",
                            "note": "from {{$context.body.order.id}}",
                        },
                        "timeout": 2000,
                    },
                },
                {
                    "key": "form",
                    "type": "request",
                    "config": {
                        "url": upstream["url"] + "/echo",
                        "contentType": "application/x-www-form-urlencoded",
                        "data": {"a": "{{$jobsMapByNodeKey.call.status}}", "b": "x y"},
                    },
                },
                {
                    "key": "answer",
                    "type": "response",
                    "config": {
                        "body": {
                            "upstream": "{{$jobsMapByNodeKey.call.data}}",
                            "status": "{{$jobsMapByNodeKey.call.status}}",
                        }
                    },
                },
            ],
        }
    )
    response, body = await system.post(
        webhook_url(system, workflow), json={"order": {"id": "A1"}, "items": [{"sku": "S-9"}]}
    )
    assert response.status == 200, body
    answer = orjson.loads(body)
    assert answer["status"] == 200
    assert answer["upstream"]["sku"] == "S-9"
    first, second = upstream["seen"]
    assert first["headers"]["X-Order"] == "A1"
    assert first["query"] == {"sku": "S-9"}
    assert orjson.loads(first["body"]) == {"order": {"id": "A1"}, "note": "from A1"}
    assert first["headers"]["Content-Type"] == "application/json"
    assert second["body"] == "a=200&b=x+y"
    assert second["headers"]["Content-Type"] == "application/x-www-form-urlencoded"


async def test_request_failures_fail_the_run_unless_ignored(
    system: System, upstream: dict[str, Any]
) -> None:
    def flow(ignore: bool, path: str) -> dict[str, Any]:
        return {
            "title": "fragile",
            "sync": True,
            "nodes": [
                {
                    "key": "call",
                    "type": "request",
                    "config": {
                        "method": "GET",
                        "url": upstream["url"] + path,
                        "timeout": 300,
                        "ignoreFail": ignore,
                    },
                },
                {
                    "key": "answer",
                    "type": "response",
                    "config": {"statusCode": 202, "body": {"call": "{{$jobsMapByNodeKey.call}}"}},
                },
            ],
        }

    strict = await system.create(flow(False, "/fail"))
    response, _ = await system.post(webhook_url(system, strict), json={})
    assert response.status == 500
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["nodes"][0]["status"] == "failed"
    assert "503" in execution["error"]

    lenient = await system.create(flow(True, "/fail"))
    response, body = await system.post(webhook_url(system, lenient), json={})
    assert response.status == 202
    assert orjson.loads(body)["call"]["status"] == 503

    timeout = await system.create(flow(False, "/slow?s=2"))
    response, _ = await system.post(webhook_url(system, timeout), json={})
    assert response.status == 500
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert "within 300 ms" in execution["error"]


async def test_a_slow_workflow_gives_504_and_still_finishes(
    system: System, upstream: dict[str, Any]
) -> None:
    workflow = await system.create(
        {
            "title": "slow",
            "sync": True,
            "syncTimeout": 0.3,
            "nodes": [
                {
                    "key": "wait",
                    "type": "request",
                    "config": {"method": "GET", "url": upstream["url"] + "/slow?s=1"},
                },
                {"key": "answer", "type": "response", "config": {"body": "late"}},
            ],
        }
    )
    started = time.monotonic()
    response, body = await system.post(webhook_url(system, workflow), json={})
    assert response.status == 504
    assert time.monotonic() - started < 0.9
    execution_id = response.headers["X-Hookflow-Execution-Id"]
    assert orjson.loads(body)["details"] == {"executionId": execution_id}
    execution = await system.execution(execution_id)
    assert execution["status"] == "succeeded"
    assert execution["response"]["body"] == "late"
    # The late reply found no caller and was dropped; the gateway goes on answering.
    response, _ = await system.post(webhook_url(system, workflow), json={})
    assert response.status == 504


async def test_many_concurrent_sync_calls_each_get_their_own_answer(system: System) -> None:
    workflow = await system.create(
        {
            "title": "echo",
            "sync": True,
            "nodes": [
                {
                    "key": "echo",
                    "type": "response",
                    "config": {"body": {"n": "{{$context.body.n}}"}},
                }
            ],
        }
    )
    url = webhook_url(system, workflow)
    answers = await asyncio.gather(*(system.post(url, json={"n": n}) for n in range(100)))
    assert [orjson.loads(body)["n"] for _, body in answers] == list(range(100))
    assert {response.status for response, _ in answers} == {200}


async def test_a_stopping_gateway_fails_pending_calls_cleanly(
    system: System, upstream: dict[str, Any]
) -> None:
    workflow = await system.create(
        {
            "title": "pending",
            "sync": True,
            "nodes": [
                {
                    "key": "wait",
                    "type": "request",
                    "config": {"method": "GET", "url": upstream["url"] + "/slow?s=2"},
                }
            ],
        }
    )
    call = asyncio.create_task(system.post(webhook_url(system, workflow), json={}))
    await wait_for(lambda: _true(upstream["slow_calls"]))  # the run is under way
    started = time.monotonic()
    await system.stop("gateway")
    response, body = await call
    assert response.status == 504
    assert b"shutting down" in body
    assert time.monotonic() - started < 1.5
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"


async def test_the_config_api_rejects_what_cannot_run(system: System) -> None:
    async def faults(document: dict[str, Any]) -> list[tuple[str, str]]:
        code, body = await system.api("POST", "/api/workflows", document)
        assert code == 422, body
        return [(d["path"], d["message"]) for d in body["details"]]

    respond = {"key": "r", "type": "response", "config": {"body": "x"}}
    assert await faults({"title": "async", "nodes": [respond]}) == [
        ("nodes[0].type", "a response node is only valid in a sync workflow")
    ]
    dupes = await faults({"title": "d", "sync": True, "nodes": [respond, {**respond}]})
    assert dupes[0][0] == "nodes[1].key"
    unknown = await faults({"title": "u", "nodes": [{"key": "x", "type": "sendSMS"}]})
    assert unknown[0][0] == "nodes[0].type" and "unknown node type" in unknown[0][1]
    later = await faults(
        {
            "title": "l",
            "sync": True,
            "nodes": [
                {"key": "r", "type": "response", "config": {"body": "{{$jobsMapByNodeKey.calc}}"}},
                {"key": "calc", "type": "calculation", "config": {"expression": "1 + 1"}},
            ],
        }
    )
    assert later == [("nodes[0].config.body", "node 'calc' cannot have run before this node")]
    broken = await faults(
        {
            "title": "c",
            "nodes": [{"key": "c", "type": "calculation", "config": {"expression": "1 +"}}],
        }
    )
    assert broken[0][0] == "nodes[0].config.expression"
    assert "does not compile" in broken[0][1]
    stranger = await faults(
        {
            "title": "c",
            "nodes": [
                {
                    "key": "c",
                    "type": "condition",
                    "config": {"engine": "cel", "expression": "secrets.key == 1"},
                }
            ],
        }
    )
    assert "unknown variable(s) secrets" in stranger[0][1]
    status = await faults(
        {
            "title": "s",
            "sync": True,
            "nodes": [{"key": "r", "type": "response", "config": {"statusCode": 700}}],
        }
    )
    assert status[0][0] == "nodes[0].config.statusCode"


async def _true(value: object) -> bool:
    return bool(value)
