"""A publisher confirm that never comes back: the broker took the run, the gateway cannot know.
What the broker crash test meets now and then (a kill between the broker's write and its
confirm), made certain with the fault proxy between the gateway and RabbitMQ."""

import asyncio
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.faults.conftest import MakeInstallation
from tests.faults.load import LoadDriver
from tests.faults.processes import Sqlite
from tests.faults.proxy import FaultProxy, Mode
from tests.faults.witness import Witness

pytestmark = [pytest.mark.faults, pytest.mark.rabbitmq]


async def test_a_lost_confirm_is_a_503_that_says_the_run_may_still_run(
    rabbitmq: str,
    proxy: Callable[..., FaultProxy],  # before `installation`: it outlives the processes
    installation: MakeInstallation,
    witness: Witness,
    tmp_path: Path,
) -> None:
    """Publisher confirms cannot tell "not taken" from "taken, confirm lost": the 503 says
    which it may be, and the run (taken) runs once."""
    broker = proxy(rabbitmq, 5672)
    system = installation(rabbitmq, Sqlite(tmp_path / "data"))
    through_proxy = {"HOOKFLOW_BROKER_URL": broker.url(rabbitmq), "HOOKFLOW_PUBLISH_TIMEOUT": "1"}
    system.add("gateway", through_proxy)
    await system.start_all([system.add("config-api"), *system.gateways, system.add("executor")])
    workflow = await system.create_workflow({"title": "lost confirm", "nodes": [witness.node()]})
    urls = system.webhook_urls(workflow)

    answers = await LoadDriver(urls).run(count=1)
    assert answers[0].status == 200
    broker.set_mode(Mode.ONE_WAY)  # publishes reach RabbitMQ; its confirms are held
    began = time.monotonic()
    refused = await LoadDriver(urls).run(count=1)
    waited = time.monotonic() - began
    broker.set_mode(Mode.PASS)
    assert refused[0].status == 503 and refused[0].retry_after, refused
    assert "it may still run" in refused[0].text, refused[0].text
    assert "idempotency key" in refused[0].text, refused[0].text
    await asyncio.sleep(1)  # the executor, on its own connection, gets the run meanwhile
    counts = witness.counts()
    assert sorted(counts.values()) == [1, 1], f"each run once: {counts}"
    print(f"\nlost confirm: 503 after {waited:.1f}s; the run it refused ran once anyway")


async def test_with_an_event_id_a_retry_after_a_lost_confirm_runs_once(
    rabbitmq: str,
    proxy: Callable[..., FaultProxy],
    installation: MakeInstallation,
    witness: Witness,
    tmp_path: Path,
) -> None:
    broker = proxy(rabbitmq, 5672)
    system = installation(rabbitmq, Sqlite(tmp_path / "data"))
    through_proxy = {"HOOKFLOW_BROKER_URL": broker.url(rabbitmq), "HOOKFLOW_PUBLISH_TIMEOUT": "1"}
    system.add("gateway", through_proxy)
    await system.start_all([system.add("config-api"), *system.gateways, system.add("executor")])
    workflow = await system.create_workflow(
        {
            "title": "lost confirm, idempotent",
            "trigger": {"idempotency": {"body": "id"}},
            "nodes": [witness.node()],
        }
    )
    urls = system.webhook_urls(workflow)
    broker.set_mode(Mode.ONE_WAY)
    refused = await LoadDriver(urls, concurrency=1, body=lambda n: {"id": "evt-1"}).run(count=1)
    broker.set_mode(Mode.PASS)
    assert refused[0].status == 503 and refused[0].retry_after, refused
    assert "same event id" in refused[0].text, refused[0].text
    await asyncio.sleep(1)  # Retry-After: 1
    retried = await LoadDriver(urls, concurrency=1, body=lambda n: {"id": "evt-1"}).run(count=3)
    assert [answer.status for answer in retried] == [200, 200, 200], retried
    ids = {answer.execution_id for answer in retried}
    assert len(ids) == 1
    counts = witness.counts()
    assert list(counts.values()) == [1], f"the event ran {counts}"
    assert set(counts) == ids, "the retries answer with the run that ran"
