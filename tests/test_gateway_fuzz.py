"""Whatever a caller sends, the gateway answers with a 2xx or a 4xx that says why: never a
500. Property-based, through the real app on a socket (in-process bus, SQLite)."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hookflow_shared.messaging import Topology, open_broker
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import System, running_system, settings_for, webhook_url

CONTENT_TYPES = [
    "application/json", "application/json; charset=gbk", "application/json; charset=nope",
    "application/vnd.x+json", "application/x-www-form-urlencoded",
    "application/x-www-form-urlencoded; charset=gbk", "application/xml",
    "text/xml; charset=latin-1",
    "text/plain", "text/plain; charset=utf-16", "text/csv", "", "multipart/form-data; boundary=x",
    "application/json;;;", "text/plain; charset=",
]  # fmt: skip

bodies = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=200).map(str.encode),
    st.sampled_from(
        [b'{"a": [1, {"b": null}]}', b"<a><b>1</b></a>", b"a[0][b]=1&c=%ZZ", b"\xff\xfe\x00"]
    ),
)


@pytest.fixture
async def embedded(tmp_path: Path) -> AsyncIterator[tuple[System, dict[str, object]]]:
    storage = SqliteStorage(tmp_path / "db.sqlite3")
    await storage.open()
    bus = open_broker(None, Topology("fuzz"))
    await bus.connect()
    settings = settings_for(broker_url=None, mongodb=None, data_dir=tmp_path, namespace="fuzz")
    try:
        async with running_system(settings, storage=storage, broker=bus) as system:
            workflow = await system.create(
                {
                    "title": "fuzz",
                    "trigger": {"maxBodyBytes": 256, "signature": {"scheme": "github"}},
                }
            )
            plain = await system.create({"title": "plain"})
            yield (
                system,
                {"signed": webhook_url(system, workflow), "plain": webhook_url(system, plain)},
            )
    finally:
        await bus.close()
        await storage.close()


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    body=bodies,
    content_type=st.sampled_from(CONTENT_TYPES),
    query=st.text(alphabet="ab[]=&%+.019", max_size=30),
    authorization=st.one_of(st.none(), st.text(max_size=40)),
    signature=st.one_of(
        st.none(), st.sampled_from(["sha256=", "sha256=zz", "md5=1"]), st.text(max_size=20)
    ),
    target=st.sampled_from(["signed", "plain"]),
)
def test_no_request_makes_the_gateway_fail(
    embedded: tuple[System, dict[str, object]],
    body: bytes, content_type: str, query: str, authorization: str | None,
    signature: str | None, target: str,
) -> None:  # fmt: skip
    system, urls = embedded
    headers = {"Content-Type": content_type}
    if authorization is not None and authorization.isprintable():
        headers["Authorization"] = authorization
    if signature is not None and signature.isprintable():
        headers["X-Hub-Signature-256"] = signature
    url = f"{urls[target]}?{query}"

    async def call() -> int:
        response, _ = await system.post(
            url, data=body, headers=headers, skip_auto_headers=["Content-Type"]
        )
        return response.status

    status = asyncio.get_event_loop().run_until_complete(call())
    assert status in (200, 400, 401, 413, 415), (status, content_type, body[:50])


WORDS = [
    "paid", "{{$context.body.x}}", "{{$jobsMapByNodeKey.a}}", "{{$nope}}", "1 +",
    "context.body.a == 1", "equal", "and", "response", "condition", "end", "{{",
]  # fmt: skip
KEYS = [
    "key", "type", "config", "branches", "true", "false", "calculation", "group",
    "calculations", "calculator", "operands", "expression", "engine", "statusCode", "body",
    "headers", "url", "trigger", "nodes", "title", "x",
]  # fmt: skip
json_leaf = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-10, 1000),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from(WORDS),
)
json_values = st.recursive(
    json_leaf,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.sampled_from(KEYS), children, max_size=4)
    ),
    max_leaves=25,
)
node_types = st.sampled_from(["condition", "calculation", "request", "response", "end", "nope"])
nodes = st.lists(
    st.fixed_dictionaries(
        {"key": st.sampled_from(["a", "b", "c"]), "type": node_types},
        optional={"config": json_values, "branches": json_values},
    ),
    max_size=3,
)
documents = st.fixed_dictionaries(
    {"title": st.sampled_from(["t", ""])},
    optional={"sync": st.booleans(), "nodes": nodes, "trigger": json_values},
)


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(document=st.one_of(documents, json_values))
def test_no_document_makes_the_config_api_fail(
    embedded: tuple[System, dict[str, object]], document: object
) -> None:
    system, _ = embedded

    async def call() -> int:
        status, _ = await system.api("POST", "/api/workflows", document)
        return status

    status = asyncio.get_event_loop().run_until_complete(call())
    assert status in (201, 400, 422), (status, document)
