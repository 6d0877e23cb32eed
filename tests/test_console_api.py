"""What the console needs of the config API: its page (without the token, with a CSP), the
workflows' last execution in the list, and live capture across gateways."""

import base64
from pathlib import Path
from typing import Any

import aiohttp

from hookflow_config_api.app import WORKFLOWS
from tests.support import (
    System,
    payment_workflow,
    second_gateway,
    settings_for,
    wait_for,
    webhook_url,
)

BASIC = "Basic " + base64.b64encode(b"pay:s3cret").decode()


async def test_the_page_and_its_files_are_served_without_the_token(system: System) -> None:
    async with system.session.get(system.config_url + "/") as response:
        page = await response.text()
        assert response.status == 200
        assert response.content_type == "text/html"
        csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "default-src 'none'" in csp
    assert '<script type="module" src="/console/app.js">' in page
    for name, kind in (("app.js", "text/javascript"), ("console.css", "text/css")):
        async with system.session.get(f"{system.config_url}/console/{name}") as response:
            assert response.status == 200, name
            assert response.content_type == kind
    async with system.session.get(system.config_url + "/console/..%2Fapp.py") as response:
        assert response.status == 404
    # The API itself still wants the token.
    async with system.session.get(system.config_url + "/api/workflows") as response:
        assert response.status == 401


async def test_the_list_gives_each_workflow_its_last_execution(system: System) -> None:
    ran = await system.create(payment_workflow(title="ran"))
    never = await system.create(payment_workflow(title="never"))
    ids = []
    for status in ("pending", "paid"):
        response, _ = await system.post(webhook_url(system, ran), json={"status": status})
        ids.append(response.headers["X-Hookflow-Execution-Id"])
    last = await system.execution(ids[-1])
    await system.execution(ids[0])
    status, listing = await system.api("GET", "/api/workflows")
    assert status == 200
    by_title = {item["title"]: item for item in listing["items"]}
    assert by_title["never"]["lastExecution"] is None
    assert by_title["ran"]["lastExecution"] == {
        "id": ids[-1],
        "status": "succeeded",
        "startedAt": last["startedAt"],
        "finishedAt": last["finishedAt"],
    }
    assert never["id"] != ran["id"]


def signed_payment() -> dict[str, Any]:
    return payment_workflow(
        title="captured",
        trigger={"basicAuth": {"username": "pay", "password": "s3cret"}},
    )


async def test_a_capture_samples_a_webhook_without_its_credentials(system: System) -> None:
    workflow = await system.create(signed_payment())
    path = f"/api/workflows/{workflow['id']}/captures"
    url = webhook_url(system, workflow)
    headers = {"Authorization": BASIC, "Cookie": "session=abc", "X-Request-Id": "demo-1"}

    # Not listening: nothing is kept.
    response, before = await system.post(
        url + "?order=A1", json={"status": "paid"}, headers=headers
    )
    assert response.status == 200
    status, window = await system.api("POST", path, {"seconds": 60, "limit": 2})
    assert status == 201, window
    assert window["active"] is True and window["limit"] == 2

    response, during = await system.post(
        url + "?order=A1&items[0][sku]=X",
        json={"status": "paid", "order": {"id": "A1"}},
        headers=headers,
    )
    assert (response.status, during) == (200, before), "capturing changed the answer"

    async def samples() -> dict[str, Any] | None:
        _, answer = await system.api("GET", f"{path}?capture={window['captureId']}")
        return answer if answer["items"] else None

    answer = await wait_for(samples)
    (sample,) = answer["items"]
    assert sample["method"] == "POST"
    assert sample["queryString"] == "order=A1&items[0][sku]=X"
    assert sample["query"] == {"order": "A1", "items": [{"sku": "X"}]}
    assert sample["body"] == {"status": "paid", "order": {"id": "A1"}}
    assert sample["headers"]["x-request-id"] == "demo-1"
    assert "authorization" not in sample["headers"] and "cookie" not in sample["headers"]
    assert "s3cret" not in str(answer) and BASIC not in str(answer)
    assert answer["active"] is True

    # A wrong password is not sampled; the second good one fills the window, which ends.
    wrong = {"Authorization": "Basic " + base64.b64encode(b"pay:nope").decode()}
    assert (await system.post(url, json={"n": 0}, headers=wrong))[0].status == 401
    assert (await system.post(url, json={"n": 2}, headers=headers))[0].status == 200
    assert (await system.post(url, json={"n": 3}, headers=headers))[0].status == 200

    async def full() -> dict[str, Any] | None:
        _, answer = await system.api("GET", f"{path}?capture={window['captureId']}")
        return answer if len(answer["items"]) == 2 else None

    answer = await wait_for(full)
    assert [s["body"] for s in answer["items"]][1] == {"n": 2}
    assert answer["active"] is False


async def test_a_stopped_capture_samples_nothing_more(system: System) -> None:
    workflow = await system.create(signed_payment())
    path = f"/api/workflows/{workflow['id']}/captures"
    _, window = await system.api("POST", path, {})
    assert window["limit"] == 5
    assert (await system.api("DELETE", path))[0] == 204
    response, _ = await system.post(
        webhook_url(system, workflow), json={"status": "paid"}, headers={"Authorization": BASIC}
    )
    assert response.status == 200
    execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
    assert execution["status"] == "succeeded"
    status, answer = await system.api("GET", f"{path}?capture={window['captureId']}")
    assert (status, answer["items"], answer["active"]) == (200, [], False)
    status, answer = await system.api("GET", path)
    assert (status, answer["active"], answer["captureId"]) == (200, False, None)


async def test_capture_requests_are_checked(system: System) -> None:
    workflow = await system.create(payment_workflow())
    path = f"/api/workflows/{workflow['id']}/captures"
    status, body = await system.api("POST", path, {"seconds": 0, "limit": 100, "x": 1})
    assert status == 422
    assert {d["path"] for d in body["details"]} == {"seconds", "limit", "x"}
    status, body = await system.api("POST", path, data=b"{", headers={})
    assert status == 400
    status, body = await system.api("POST", "/api/workflows/" + "0" * 32 + "/captures", {})
    assert status == 404
    status, body = await system.api("GET", f"{path}?capture=nope")
    assert status == 400
    async with aiohttp.ClientSession() as bare, bare.post(system.config_url + path) as response:
        assert response.status == 401


async def test_a_capture_hears_every_gateway(
    rabbit_system: System, rabbitmq: str, data_dir: Path, namespace: str
) -> None:
    """Distributed mode: the config API and two gateways, each on its own connections; the
    webhook reaches the gateway the config API never talks to directly."""
    system = rabbit_system
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with second_gateway(settings) as other:
        await wait_for(lambda: _gateways_known(system, 2), timeout=10)
        workflow = await system.create(payment_workflow(title="two gateways"))
        path = f"/api/workflows/{workflow['id']}/captures"
        _, window = await system.api("POST", path, {"limit": 3})
        key = workflow["trigger"]["key"]
        for base, n in ((other, 1), (system.gateway_url, 2)):
            response, _ = await system.post(f"{base}/api/webhook:trigger/{key}", json={"n": n})
            assert response.status == 200

        async def both() -> list[Any] | None:
            _, answer = await system.api("GET", f"{path}?capture={window['captureId']}")
            items = answer["items"]
            return items if len(items) == 2 else None

        assert sorted(s["body"]["n"] for s in await wait_for(both)) == [1, 2]


async def _gateways_known(system: System, count: int) -> bool:
    return len(system.runners["config"].app[WORKFLOWS]._propagation.gateways()) == count


async def test_a_gateway_started_while_an_admin_listens_listens_too(
    rabbit_system: System, rabbitmq: str, data_dir: Path, namespace: str
) -> None:
    system = rabbit_system
    workflow = await system.create(payment_workflow(title="late gateway"))
    path = f"/api/workflows/{workflow['id']}/captures"
    _, window = await system.api("POST", path, {})
    settings = settings_for(
        broker_url=rabbitmq, mongodb=None, data_dir=data_dir, namespace=namespace
    )
    async with second_gateway(settings) as late:
        url = f"{late}/api/webhook:trigger/{workflow['trigger']['key']}"
        assert (await system.post(url, json={"late": True}))[0].status == 200

        async def sampled() -> list[Any] | None:
            _, answer = await system.api("GET", f"{path}?capture={window['captureId']}")
            return answer["items"] or None

        (sample,) = await wait_for(sampled)
        assert sample["body"] == {"late": True}
