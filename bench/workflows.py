"""The two workflows measured, loaded from the repository's examples, and their set-up: created
through the config API, known to the gateway, and one request each answered as expected."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

from bench.common import HEALTH_TIMEOUT, HOOKFLOW_TARGETS, IDEMPOTENT, PAYLOAD, ROOT, BenchError
from bench.correctness import drain
from bench.nodered import HOOK_PATH
from bench.session import Bench

EXAMPLES = ROOT / "examples"
ASYNC_EXAMPLE = EXAMPLES / "payment-callback.json"
SYNC_EXAMPLE = EXAMPLES / "payment-callback-sync.json"
EXPECTED_ANSWERS = (
    ("bare", "ok"),
    ("async", "ok"),
    ("idem", "ok"),
    ("sync", '{"received":"A1"}'),
    ("nodered", '{"received":"A1"}'),
)
"""What each path answers PAYLOAD with, checked once before measuring."""


def read_example(path: Path) -> dict[str, Any]:
    try:
        document: dict[str, Any] = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise BenchError(f"cannot read the workflow {path.relative_to(ROOT)}: {error}") from error
    return document


def load_workflows() -> dict[str, dict[str, Any]]:
    """The documents to create, by target: "async", "idem" then "sync"."""
    async_workflow = read_example(ASYNC_EXAMPLE)
    # wrk sends no credentials: with the example's Basic auth every request would answer 401.
    async_workflow["trigger"].pop("basicAuth", None)
    idempotent = json.loads(json.dumps(async_workflow))
    idempotent["title"] += " (idempotent)"
    idempotent["trigger"]["idempotency"] = IDEMPOTENT
    return {"async": async_workflow, "idem": idempotent, "sync": read_example(SYNC_EXAMPLE)}


async def create_workflow(b: Bench, document: dict[str, Any]) -> dict[str, Any]:
    async with b.http.post(
        f"{b.svc('config-api').base}/api/workflows",
        json=document,
        headers={"Authorization": f"Bearer {b.token}"},
    ) as response:
        body = await response.text()
        if response.status != 201:
            raise BenchError(f"creating {document['title']!r} answered {response.status}: {body}")
        created: dict[str, Any] = json.loads(body)
        return created


async def register(b: Bench, target: str, document: dict[str, Any]) -> None:
    """Create the workflow of `target` and note its id and webhook URL."""
    created = await create_workflow(b, document)
    b.workflow_ids[target] = created["id"]
    b.urls[target] = f"{b.svc('gateway').base}/api/webhook:trigger/{created['trigger']['key']}"
    if created.get("webhookUrl") != b.urls[target]:
        raise BenchError(
            f"the config API hands out {created.get('webhookUrl')}, expected {b.urls[target]}"
        )
    b.expected_records[target] = 0


async def wait_for_triggers(b: Bench, count: int) -> None:
    """Wait until the gateway's /healthz counts `count` triggers."""
    deadline = time.monotonic() + HEALTH_TIMEOUT
    while True:
        health = await b.wait_healthy(b.svc("gateway"))
        if int(health.get("triggers", {}).get("count", 0)) >= count:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"the gateway never knew both workflows: {health}")
        await asyncio.sleep(0.2)


async def try_each_path(b: Bench) -> None:
    """One request each, to see that every path answers as the README says."""
    for target, expected in EXPECTED_ANSWERS:
        if target not in b.urls:
            continue  # Node-RED, when it is not measured
        headers = {IDEMPOTENT["header"]: "bench-set-up"} if target == "idem" else {}
        async with b.http.post(b.urls[target], json=PAYLOAD, headers=headers) as response:
            text = await response.text()
            if response.status != 200 or text != expected:
                raise BenchError(
                    f"{target}: one request answered {response.status} {text!r}, expected "
                    f"200 {expected!r}; the gateway's stderr:\n{b.svc('gateway').stderr_tail()}"
                )
        if target in HOOKFLOW_TARGETS:
            b.expected_records[target] += 1


async def set_up_workflows(b: Bench) -> None:
    for target, document in load_workflows().items():
        await register(b, target, document)
    b.urls["bare"] = f"{b.svc('bare').base}/api/webhook:trigger/bare"
    if "nodered" in b.procs.services:
        b.urls["nodered"] = f"{b.svc('nodered').base}{HOOK_PATH}"
    await wait_for_triggers(b, 3)
    await try_each_path(b)
    first = await drain(b, 0, 3, 0, await b.snapshot(with_executed=False))
    if first.recorded != 3:
        raise BenchError(f"the executor recorded {first.recorded} of the 3 first runs")
