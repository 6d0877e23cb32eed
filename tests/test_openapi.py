"""The config API's OpenAPI document and its documentation page, and schemathesis's stateless
checks of the live API against the document: no 5xx, and every answer (status, media type,
headers, body) is one the document gives."""

import asyncio
import os
import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
import hypothesis
import jsonschema
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from hookflow_config_api.app import create_app
from hookflow_config_api.docs import ASSETS
from hookflow_config_api.openapi import routes
from hookflow_shared.messaging.memory import MemoryBroker
from hookflow_shared.settings import RunSettings
from tests.support import TOKEN, System, payment_workflow, settings_for, start_app

AUTH = {"Authorization": f"Bearer {TOKEN}"}
EXAMPLES = int(os.environ.get("HOOKFLOW_SCHEMATHESIS_EXAMPLES", "20"))
"""Examples per operation: by default the run stays under a minute on a CI machine; set
HOOKFLOW_SCHEMATHESIS_EXAMPLES for a deeper search."""


async def document(system: System) -> dict[str, Any]:
    async with system.session.get(system.config_url + "/openapi.json") as response:
        assert response.status == 200 and response.content_type == "application/json"
        body: dict[str, Any] = await response.json()
        return body


async def test_every_route_of_the_app_is_in_the_document(local: System, data_dir: Path) -> None:
    doc = await document(local)  # without the admin token
    assert doc["openapi"] == "3.1.0"
    app = create_app(settings_for(broker_url=None, mongodb=None, data_dir=data_dir, namespace="x"))
    served = routes(app)
    assert ("POST", "/api/workflows/{id}/trigger:rotate-key") in served
    for method, path in served:
        assert method.lower() in doc["paths"][path], (method, path)
    documented = {(m.upper(), p) for p, ops in doc["paths"].items() for m in ops}
    assert documented == set(served)


async def test_the_document_is_valid_openapi_3_1(local: System) -> None:
    doc = await document(local)
    schema = doc["components"]["schemas"]
    assert doc["components"]["securitySchemes"]["bearer"] == {
        "type": "http",
        "scheme": "bearer",
        "description": "The admin token (HOOKFLOW_ADMIN_TOKEN).",
    }
    assert doc["security"] == [{"bearer": []}]
    assert doc["paths"]["/healthz"]["get"]["security"] == []
    create = doc["paths"]["/api/workflows"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/WorkflowInput"
    }
    assert set(create["responses"]) == {"201", "400", "401", "409", "422", "500", "503"}
    error = create["responses"]["422"]["content"]["application/json"]["schema"]
    assert error == {"$ref": "#/components/schemas/ErrorBody"}
    # The secrets: written in clear, answered only as whether one is set.
    assert set(schema["BasicAuthInput"]["properties"]) == {"username", "password"}
    assert set(schema["BasicAuthView"]["properties"]) == {"username", "passwordSet"}
    assert "encryptedSecret" not in schema["SignatureView"]["properties"]
    assert schema["WorkflowInput"]["properties"]["name"]["anyOf"][0]["pattern"]
    listing = doc["paths"]["/api/workflows"]["get"]["parameters"]
    assert {p["name"] for p in listing} == {"name", "limit", "cursor"}
    # Every schema is a valid JSON Schema 2020-12 (OpenAPI 3.1's dialect), $refs resolved.
    registry_doc = {"components": {"schemas": schema}}
    for name in schema:
        jsonschema.Draft202012Validator.check_schema(schema[name])
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{name}", **registry_doc}
        )
        list(validator.iter_errors({}))  # resolves every reference it meets


async def test_the_answers_fit_the_document(local: System) -> None:
    """A created workflow, its list, versions and a version, validated against their schemas."""
    doc = await document(local)
    created = await local.create(payment_workflow(name="fits", trigger={"basicAuth": {
        "username": "u", "password": "p"}, "signature": {"scheme": "github"}}))  # fmt: skip
    workflow_id = created["id"]
    await local.api("PATCH", f"/api/workflows/{workflow_id}", {"title": "Fits"})
    for path, schema_name, answer in [
        (
            "/api/workflows/{id}",
            "Workflow",
            await local.api("GET", f"/api/workflows/{workflow_id}"),
        ),
        ("/api/workflows", "WorkflowPage", await local.api("GET", "/api/workflows?name=fits")),
        (
            "/api/workflows/{id}/versions",
            "VersionPage",
            await local.api("GET", f"/api/workflows/{workflow_id}/versions"),
        ),
    ]:
        status, body = answer
        assert status == 200 and path in doc["paths"]
        validator = jsonschema.Draft202012Validator(
            {"$ref": f"#/components/schemas/{schema_name}", **doc},
            format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER,
        )
        assert list(validator.iter_errors(body)) == [], schema_name
    assert created["trigger"]["signature"]["secret"]  # the generated secret, this once


async def test_the_docs_page_works_without_a_network(local: System) -> None:
    async with aiohttp.ClientSession() as session:  # no token
        async with session.get(local.config_url + "/docs") as response:
            assert response.status == 200 and response.content_type == "text/html"
            page = await response.text()
        for asset, media_type in ASSETS.items():
            assert f'src="docs/{asset}"' in page or f'href="docs/{asset}"' in page
            async with session.get(f"{local.config_url}/docs/{asset}") as response:
                assert (response.status, response.content_type) == (200, media_type)
                assert len(await response.read()) > 10_000
        assert "http://" not in page and "https://" not in page  # nothing from elsewhere
        for path in (  # the API itself still needs the token, however the path is spelt
            "/api/workflows",
            "/docs/nothing.js",
            "/docs/../api/workflows",
            "/docs/%2E%2E/api/workflows",
            "/docs%2F..%2Fapi%2Fworkflows",
        ):
            async with session.get(local.config_url + path) as response:
                assert response.status in (401, 404), path
                assert "items" not in await response.text(), path
    status, body = await local.api("GET", "/docs/nothing.js")
    assert status == 404 and "swagger-ui.css" in body["error"]


# --- schemathesis --------------------------------------------------------------------------


@contextmanager
def live_config_api(settings: RunSettings) -> Iterator[str]:
    """The config API on its own event loop in a thread (schemathesis calls it with blocking
    HTTP), on the in-process bus and SQLite; yields its URL."""
    urls: queue.Queue[str | BaseException] = queue.Queue()
    loop = asyncio.new_event_loop()
    stop = asyncio.Event()

    async def serve() -> None:
        bus = MemoryBroker()
        await bus.connect()
        runner = None
        try:
            runner, url = await start_app(create_app(settings, broker=bus))
            urls.put(url)
            await stop.wait()
        except BaseException as error:
            urls.put(error)
            raise
        finally:
            if runner is not None:
                await runner.cleanup()
            await bus.close()

    thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
    thread.start()
    try:
        url = urls.get(timeout=30)
        if isinstance(url, BaseException):
            raise url
        yield url
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(30)
        loop.close()


CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


@pytest.mark.timeout(60 + EXAMPLES * 4)  # about 2 s per example of all operations, loaded
def test_schemathesis_finds_no_fault(data_dir: Path, namespace: str) -> None:
    settings = settings_for(broker_url=None, mongodb=None, data_dir=data_dir, namespace=namespace)
    with live_config_api(settings) as url, requests.Session() as session:
        schema = schemathesis.openapi.from_url(url + "/openapi.json")
        operations = [result.ok() for result in schema.get_all_operations()]
        assert len(operations) >= 18  # every route (schemathesis leaves out /openapi.json)
        # Random ids only ever meet 404s: half the calls on a workflow go to stored ones
        # (never a DELETE: they stay for the calls after it).
        stored = [seed(session, url, document) for document in SEEDS]
        answered: dict[str, set[int]] = {}
        calls = 0

        def check(case: schemathesis.Case, workflow: str | None) -> None:
            nonlocal calls
            calls += 1
            on_workflow = case.path.startswith("/api/workflows/{id}") and case.method != "DELETE"
            if workflow is not None and on_workflow:
                case.path_parameters = {**(case.path_parameters or {}), "id": workflow}
            response = case.call_and_validate(
                base_url=url, session=session, headers=AUTH, checks=CHECKS
            )
            answered.setdefault(case.operation.label, set()).add(response.status_code)

        # Each operation its own examples: drawn from all of them at once, which ones came up
        # depended on the schema's every detail, and an operation could go untried.
        examples = hypothesis.settings(
            max_examples=EXAMPLES,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(HealthCheck),
        )
        started = time.monotonic()
        for operation in operations:
            workflows = st.sampled_from([None, *stored])
            examples(given(case=operation.as_strategy(), workflow=workflows)(check))()
        took = time.monotonic() - started
        print(f"schemathesis: {len(operations)} operations, {calls} calls in {took:.1f} s")
        assert len(answered) == len(operations), sorted(answered)
        for label in [
            "GET /api/workflows/{id}",
            "GET /api/workflows/{id}/versions",
            "POST /api/workflows/{id}/trigger:rotate-key",
        ]:
            assert 200 in answered[label], (label, answered[label])


SEEDS = [
    payment_workflow(name="seeded"),
    payment_workflow(
        trigger={
            "basicAuth": {"username": "u", "password": "p"},
            "signature": {"scheme": "github"},
        }
    ),
]


def seed(session: requests.Session, url: str, document: dict[str, Any]) -> str:
    response = session.post(url + "/api/workflows", json=document, headers=AUTH, timeout=30)
    assert response.status_code == 201, response.text
    workflow_id: str = response.json()["id"]
    return workflow_id
