"""Back-pressure: a broker that stops taking messages (a memory alarm blocks every publisher)
makes the gateway answer 503 at once, instead of queueing callers without bound in its memory;
when the alarm clears it takes webhooks again, and every 2xx ran once."""

import asyncio
import time
from pathlib import Path

import pytest

from tests.faults.accounting import account
from tests.faults.conftest import MakeInstallation
from tests.faults.load import LoadDriver
from tests.faults.processes import Sqlite
from tests.faults.rabbitnode import RabbitNode
from tests.faults.witness import Witness

pytestmark = [pytest.mark.faults, pytest.mark.rabbitmq]


async def test_a_blocked_broker_gets_callers_a_quick_503(
    private_rabbitmq: RabbitNode,
    installation: MakeInstallation,
    witness: Witness,
    tmp_path: Path,
) -> None:
    node = private_rabbitmq
    system = await installation(
        node.url, Sqlite(tmp_path / "data"), HOOKFLOW_PUBLISH_STALL="1"
    ).start(gateways=1, executors=1)
    workflow = await system.create_workflow({"title": "blocked", "nodes": [witness.node()]})
    urls = system.webhook_urls(workflow)
    before = await LoadDriver(urls, concurrency=4).run(count=20)
    assert all(a.accepted for a in before)

    # A memory alarm: RabbitMQ blocks every connection that publishes.
    await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.000001")
    blocked_at = time.monotonic()
    during = await LoadDriver(urls, concurrency=16, backoff=0.0).run(duration=6)
    await asyncio.to_thread(node.ctl, "set_vm_memory_high_watermark", "0.4")
    refused = [a for a in during if not a.accepted]
    late = [a for a in refused if a.started > blocked_at + 2]
    assert refused, "the gateway took webhooks from a blocked broker?"
    assert {a.status for a in refused} == {503}, {(a.status, a.error) for a in refused}
    assert all(a.retry_after == "1" for a in refused)
    # Once the stall is seen (HOOKFLOW_PUBLISH_STALL: 1 s), refusals are immediate, but for
    # the callers of the one publish at a time that probes whether the broker is back.
    waits = sorted(a.ended - a.started for a in late)
    quick = waits[int(len(waits) * 0.9)]
    assert quick < 0.5, f"callers waited {quick:.2f} s for their 503 (90th percentile)"
    assert len(during) > 200, "callers were held instead of refused"

    probes = []
    for _ in range(100):  # until it takes webhooks again
        probes += await LoadDriver(urls, concurrency=1).run(count=1)
        if probes[-1].accepted:
            break
        await asyncio.sleep(0.2)
    after = await LoadDriver(urls, concurrency=4).run(count=20)
    assert all(a.accepted for a in after), [(a.status, a.text) for a in after]
    result = await account(
        "blocked broker",
        before + during + probes + after,
        recorded=lambda: system.recorded(workflow["id"]),
        witness=witness.counts,
    )
    print(
        f"\n{result.line()} refused-during-block={len(refused)} "
        f"refusal-p90-after-stall={quick * 1000:.0f}ms"
    )
    result.assert_promise(allow_reruns=False, excused=system.refused_runs())
