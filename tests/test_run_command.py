"""`hookflow run`: the whole system in one process on the embedded defaults (the in-process
bus and SQLite), started as a user starts it, and driven over HTTP."""

import asyncio
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from tests.support import embedded_environment, payment_workflow, seed_example, wait_for


@pytest.fixture
def hookflow_run(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    env, ports = embedded_environment(tmp_path / "data")
    process = subprocess.Popen(
        [sys.executable, "-m", "hookflow_cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    banner = ""
    while "Stop with Ctrl-C." not in banner:
        line = process.stdout.readline()
        if not line:
            process.kill()
            errors = process.stderr.read() if process.stderr else ""
            pytest.fail(f"hookflow run did not start: {banner}{errors}")
        banner += line
    urls = {name: f"http://127.0.0.1:{port}" for name, port in ports.items()}
    urls["token"] = banner.split("export HOOKFLOW_ADMIN_TOKEN=")[1].split()[0]
    urls["banner"] = banner
    try:
        yield process, urls
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        for stream in (process.stdout, process.stderr):
            if stream:
                stream.close()


async def test_the_walkthrough_on_the_embedded_defaults(
    hookflow_run: tuple[subprocess.Popen[str], dict[str, str]], tmp_path: Path
) -> None:
    process, urls = hookflow_run
    assert "in-process bus" in urls["banner"] and "SQLite" in urls["banner"]
    assert (tmp_path / "data" / "admin-token").read_text().strip() == urls["token"]
    assert f"console     {urls['config']}/#token={urls['token']}" in urls["banner"]
    admin = {"Authorization": f"Bearer {urls['token']}"}
    async with aiohttp.ClientSession() as session:
        async with session.post(
            urls["config"] + "/api/workflows", json=payment_workflow(), headers=admin
        ) as response:
            assert response.status == 201
            workflow = await response.json()
        assert workflow["webhookUrl"].startswith(urls["gateway"] + "/api/webhook:trigger/")

        async with session.post(
            workflow["webhookUrl"] + "?order=A1", json={"status": "paid"}
        ) as response:
            assert response.status == 200
            assert await response.text() == "ok"
            execution_id = response.headers["X-Hookflow-Execution-Id"]

        async def recorded() -> dict[str, object] | None:
            async with session.get(
                f"{urls['config']}/api/executions/{execution_id}", headers=admin
            ) as r:
                return await r.json() if r.status == 200 else None

        execution = await wait_for(recorded)
        assert execution["status"] == "succeeded"
        assert execution["context"] == {
            "headers": {},
            "query": {"order": "A1"},
            "body": {"status": "paid"},
        }
        async with session.post(
            urls["config"] + "/api/workflows", json=seed_example(), headers=admin
        ) as response:
            sync_workflow = await response.json()
        paid = {"status": "paid", "order": {"id": "A1"}}
        async with session.post(sync_workflow["webhookUrl"], json=paid) as response:
            assert response.status == 200
            assert (await response.json())["received"] == "A1"
        async with session.post(sync_workflow["webhookUrl"], json={"status": "no"}) as response:
            assert response.status == 400
        for url in (urls["gateway"], urls["config"], urls["executor"]):
            async with session.get(url + "/healthz") as response:
                assert response.status == 200
        # One process, one registry: each port shows every service's metrics, the same counts.
        scraped = []
        for url in (urls["gateway"], urls["config"], urls["executor"]):
            async with session.get(url + "/metrics") as response:
                assert response.status == 200
                text = await response.text()
            for name in (
                "hookflow_webhooks_total",
                "hookflow_executions_total",
                "hookflow_api_requests_total",
            ):
                assert name in text, (url, name)
            scraped.append(
                [line for line in text.splitlines() if line.startswith("hookflow_webhooks_total")]
            )
        assert scraped[0] == scraped[1] == scraped[2] != []

    process.send_signal(signal.SIGTERM)
    assert await asyncio.to_thread(process.wait, 15) == 0
