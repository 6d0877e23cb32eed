"""Where request nodes may connect (HOOKFLOW_REQUEST_DENIED_NETWORKS and
HOOKFLOW_REQUEST_ALLOWED_NETWORKS): real calls over sockets to a local server on 127.0.0.1,
through the engine with the executor's own HTTP client, and end to end through the executor
app."""

import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from ipaddress import ip_network
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp import web

from hookflow_executor.egress import AddressRefused, NetworkPolicy, request_session
from hookflow_executor.engine import Engine, compile_plan, execute
from hookflow_shared.messaging import Topology, open_broker
from hookflow_shared.models import ExecutionRecord, execution_json
from hookflow_shared.settings import ExecutorSettings
from hookflow_shared.storage.sqlite import SqliteStorage
from tests.support import run_of, running_system, settings_for, stored, webhook_url

DENIED = "HOOKFLOW_REQUEST_DENIED_NETWORKS decides"
NOT_ALLOWED = "HOOKFLOW_REQUEST_ALLOWED_NETWORKS decides"
METADATA = (
    "169.254.169.254 is in a denied network (169.254.0.0/16, link-local: cloud metadata); "
    "HOOKFLOW_REQUEST_DENIED_NETWORKS decides"
)

ENGINE = Engine.standard()


@pytest.fixture
async def local() -> AsyncIterator[dict[str, Any]]:
    """A real HTTP server on 127.0.0.1 that answers, or redirects to `?to=`; it counts calls."""
    calls: list[str] = []

    async def hello(request: web.Request) -> web.Response:
        calls.append(request.path)
        return web.json_response({"hello": "world"})

    async def redirect(request: web.Request) -> web.Response:
        calls.append(request.path)
        raise web.HTTPFound(request.query["to"])

    app = web.Application()
    app.router.add_get("/hello", hello)
    app.router.add_get("/redirect", redirect)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    yield {"url": f"http://127.0.0.1:{port}", "port": port, "calls": calls}
    await runner.cleanup()


async def call(
    url: str,
    *,
    timeout: int = 10_000,
    ignore_fail: bool = False,
    headers: dict[str, str] | None = None,
    **networks: str,
) -> ExecutionRecord:
    """One request node (then an end node), run by the engine on the executor's HTTP client
    made from these settings."""
    workflow = stored(
        {
            "title": "call",
            "nodes": [
                {
                    "key": "call",
                    "type": "request",
                    "config": {
                        "method": "GET",
                        "url": url,
                        "headers": [{"name": k, "value": v} for k, v in (headers or {}).items()],
                        "timeout": timeout,
                        "ignoreFail": ignore_fail,
                    },
                },
                {"key": "after", "type": "end", "config": {"endStatus": "succeeded"}},
            ],
        }
    )
    async with request_session(ExecutorSettings(**networks)) as http:
        return await execute(compile_plan(workflow, ENGINE), run_of(workflow, {}), http=http)


def refused(record: ExecutionRecord, message: str) -> None:
    """The request node failed with `message`, and so did the execution."""
    assert record.status == "failed"
    assert record.nodes[0].status == "failed"
    assert record.nodes[0].error == f"RequestFailed: {message}"
    assert record.error == f"node call failed: RequestFailed: {message}"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://169.254.169.254/latest/meta-data/", METADATA),
        (
            "http://100.100.100.200/latest/meta-data/",
            "100.100.100.200 is in a denied network (100.100.100.200/32, Alibaba Cloud "
            f"metadata); {DENIED}",
        ),
        (
            "http://[fd00:ec2::254]/latest/meta-data/",
            f"fd00:ec2::254 is in a denied network (fd00:ec2::254/128, AWS metadata over IPv6); "
            f"{DENIED}",
        ),
        (
            "http://[fe80::a9fe:a9fe]:8080/",
            f"fe80::a9fe:a9fe is in a denied network (fe80::/10, IPv6 link-local); {DENIED}",
        ),
        (
            "http://[fd00:ec2::23]/v1/credentials",
            "fd00:ec2::23 is in a denied network (fd00:ec2::23/128, AWS EKS Pod Identity over "
            f"IPv6); {DENIED}",
        ),
        (  # a name the system resolves to the metadata address: the resolver's check
            "http://0xa9.0xfe.0xa9.0xfe/latest/meta-data/",
            f"0xa9.0xfe.0xa9.0xfe resolves to 169.254.169.254, which {METADATA.split(' ', 1)[1]}",
        ),
        (
            "http://169.254.170.2/v2/credentials",  # ECS task credentials, in the same /16
            "169.254.170.2 is in a denied network (169.254.0.0/16, link-local: cloud metadata); "
            f"{DENIED}",
        ),
    ],
)
async def test_metadata_addresses_are_refused_at_once(url: str, message: str) -> None:
    started = time.monotonic()
    record = await call(url, timeout=10_000)
    assert time.monotonic() - started < 1, "refused before connecting, not by a timeout"
    refused(record, message)
    assert [node.key for node in record.nodes] == ["call"]


async def test_a_refusal_leaks_no_secret_of_the_call() -> None:
    in_url = await call("http://user:url-secret@169.254.169.254/?token=query-secret")
    refused(in_url, METADATA)
    in_header = await call(
        "http://169.254.169.254/", headers={"Authorization": "Bearer header-secret"}
    )
    refused(in_header, METADATA)
    assert b"secret" not in execution_json(in_url) + execution_json(in_header)


async def test_ignore_fail_goes_on_after_a_refused_call() -> None:
    record = await call("http://169.254.169.254/", ignore_fail=True)
    assert record.status == "succeeded"
    node, after = record.nodes
    assert (node.status, node.error, node.result) == ("failed", METADATA, {"error": METADATA})
    assert after.key == "after"


async def test_ipv4_mapped_ipv6_addresses_are_checked_as_ipv4(local: dict[str, Any]) -> None:
    refused(
        await call("http://[::ffff:169.254.169.254]/"),
        "::ffff:169.254.169.254 is in a denied network (169.254.0.0/16, link-local: cloud "
        f"metadata); {DENIED}",
    )
    refused(
        await call(f"http://[::ffff:127.0.0.1]:{local['port']}/hello", **only("10.0.0.0/8")),
        f"::ffff:127.0.0.1 is not in an allowed network (10.0.0.0/8); {NOT_ALLOWED}",
    )
    assert local["calls"] == []


async def test_a_redirect_to_the_metadata_address_is_refused(local: dict[str, Any]) -> None:
    refused(await call(f"{local['url']}/redirect?to=http://169.254.169.254/"), METADATA)
    refused(
        await call(f"{local['url']}/redirect?to=http://[::ffff:a9fe:a9fe]/"),
        f"::ffff:{METADATA}",
    )
    assert local["calls"] == ["/redirect", "/redirect"], "the first hop was made, not the second"


def only(networks: str) -> dict[str, str]:
    return {"request_allowed_networks": networks}


async def test_an_allow_list_restricts_the_networks(local: dict[str, Any]) -> None:
    url = f"{local['url']}/hello"
    refused(
        await call(url, **only("10.0.0.0/8, fd00::/8")),
        f"127.0.0.1 is not in an allowed network (10.0.0.0/8, fd00::/8); {NOT_ALLOWED}",
    )
    refused(
        await call(url, **only("")),
        f"127.0.0.1 is not in an allowed network (it is empty); {NOT_ALLOWED}",
    )
    assert local["calls"] == []
    allowed = await call(url, **only("10.0.0.0/8,127.0.0.0/8"))
    assert allowed.status == "succeeded", allowed.error
    assert allowed.nodes[0].result["data"] == {"hello": "world"}
    assert local["calls"] == ["/hello"]
    # The denied networks are refused even inside the allowed ones.
    refused(await call("http://169.254.169.254/", **only("169.254.0.0/16")), METADATA)


async def test_hostnames_are_checked_on_what_they_resolve_to(local: dict[str, Any]) -> None:
    url = f"http://localhost:{local['port']}/hello"
    # localhost is 127.0.0.1, and ::1 too where the machine has IPv6: as the system answers.
    infos = socket.getaddrinfo("localhost", 80, type=socket.SOCK_STREAM, flags=socket.AI_ADDRCONFIG)
    answers = [str(info[4][0]) for info in infos]
    first = answers[0]
    resolved = f"localhost resolves to {first}" + (
        f" (of {len(answers)} addresses, none permitted)" if len(answers) > 1 else ""
    )
    refused(
        await call(url, **only("10.0.0.0/8")),
        f"{resolved}, which is not in an allowed network (10.0.0.0/8); {NOT_ALLOWED}",
    )
    loopback = "127.0.0.0/8" if first == "127.0.0.1" else "::1/128"
    refused(
        await call(url, request_denied_networks="default,127.0.0.0/8,::1/128"),
        f"{resolved}, which is in a denied network ({loopback}); {DENIED}",
    )
    assert local["calls"] == []
    # Only the permitted addresses of a name are connected to: here its IPv4 loopback.
    record = await call(url, **only("127.0.0.0/8"))
    assert record.status == "succeeded", record.error
    assert local["calls"] == ["/hello"]


async def test_an_empty_deny_list_lets_a_link_local_call_through() -> None:
    record = await call("http://169.254.0.9:9/", timeout=300, request_denied_networks="")
    error = record.nodes[0].error or ""
    # The call was attempted: it then failed to connect, found no answer in time, or (on a
    # network that intercepts such calls) was answered.
    attempted = ("within 300 ms", "Cannot connect to host 169.254.0.9:9", "GET answered")
    assert record.nodes[0].status == "succeeded" or any(a in error for a in attempted), error
    assert "HOOKFLOW_REQUEST" not in error


def test_the_settings_read_comma_separated_networks(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = ExecutorSettings()
    assert [str(n) for n in defaults.request_denied_networks] == [
        "169.254.0.0/16", "fe80::/10", "fd00:ec2::254/128", "fd00:ec2::23/128",
        "100.100.100.200/32",
    ]  # fmt: skip
    assert defaults.request_allowed_networks is None
    monkeypatch.setenv("HOOKFLOW_REQUEST_DENIED_NETWORKS", " default, 10.0.0.0/8,")
    monkeypatch.setenv("HOOKFLOW_REQUEST_ALLOWED_NETWORKS", "::ffff:192.168.0.0/112, 192.0.2.7")
    settings = ExecutorSettings()
    assert settings.request_denied_networks == (
        *defaults.request_denied_networks,
        ip_network("10.0.0.0/8"),
    )
    # A mapped network is its IPv4 network, as mapped addresses are checked as IPv4.
    assert settings.request_allowed_networks == (
        ip_network("192.168.0.0/16"),
        ip_network("192.0.2.7/32"),
    )
    monkeypatch.setenv("HOOKFLOW_REQUEST_DENIED_NETWORKS", "")
    monkeypatch.setenv("HOOKFLOW_REQUEST_ALLOWED_NETWORKS", "")
    assert ExecutorSettings().request_denied_networks == ()
    assert ExecutorSettings().request_allowed_networks == ()


@pytest.mark.parametrize(
    ("variable", "value", "message"),
    [
        (
            "HOOKFLOW_REQUEST_DENIED_NETWORKS",
            "default,169.254.0.1/16",
            "'169.254.0.1/16' is not a network in CIDR notation, such as 10.0.0.0/8 "
            "(169.254.0.1/16 has host bits set)",
        ),
        (
            "HOOKFLOW_REQUEST_ALLOWED_NETWORKS",
            "10.0.0.0/8,intranet",
            "'intranet' is not a network in CIDR notation",
        ),
    ],
)
def test_a_bad_network_stops_the_executor_at_startup(
    variable: str, value: str, message: str
) -> None:
    env = {variable: value}
    process = subprocess.run(
        [sys.executable, "-m", "hookflow_cli", "executor"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert process.returncode == 1
    assert f"hookflow: bad configuration: {variable}: " in process.stderr
    assert message in process.stderr


def test_a_literal_the_system_would_read_otherwise_is_refused() -> None:
    """aiohttp refuses such URLs itself (3.14); the socket factory refuses them regardless."""
    policy = NetworkPolicy(denied=())
    tcp = (socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP, "")
    for host in ("0251.0376.0251.0376", "2852039166", "169.254.169.254.", "localhost"):
        with pytest.raises(AddressRefused, match="is not an IP address in canonical form"):
            policy.open_socket((*tcp, (host, 80)))
    policy.open_socket((*tcp, ("169.254.169.254", 80))).close()  # denied=(): permitted


async def test_end_to_end_the_executor_refuses_what_its_settings_deny(
    local: dict[str, Any], tmp_path: Path
) -> None:
    """Through the executor app (in-process bus, SQLite): a sync workflow calls the local
    server, which loopback's place in the allow list permits, is redirected to the metadata
    address, which is refused, and calls the metadata address itself, refused too."""
    storage = SqliteStorage(tmp_path / "db.sqlite3")
    await storage.open()
    bus = open_broker(None, Topology("egress"))
    await bus.connect()
    settings = settings_for(
        broker_url=None,
        mongodb=None,
        data_dir=tmp_path,
        namespace="egress",
        request_allowed_networks="127.0.0.0/8,::1/128",
    )

    def request(key: str, url: str) -> dict[str, Any]:
        config = {"method": "GET", "url": url, "ignoreFail": True}
        return {"key": key, "type": "request", "config": config}

    answer = {key: f"{{{{$jobsMapByNodeKey.{key}}}}}" for key in ("local", "hop", "direct")}
    try:
        async with running_system(settings, storage=storage, broker=bus) as system:
            workflow = await system.create(
                {
                    "title": "egress",
                    "sync": True,
                    "nodes": [
                        request("local", local["url"] + "/hello"),
                        request("hop", local["url"] + "/redirect?to=http://169.254.169.254/"),
                        request("direct", "http://169.254.169.254/latest/meta-data/"),
                        {"key": "answer", "type": "response", "config": {"body": answer}},
                    ],
                }
            )
            response, body = await system.post(webhook_url(system, workflow), json={})
            assert response.status == 200, body
            assert orjson.loads(body) == {
                "local": {
                    "status": 200,
                    "headers": orjson.loads(body)["local"]["headers"],
                    "data": {"hello": "world"},
                },
                "hop": {"error": METADATA},
                "direct": {"error": METADATA},
            }
            execution = await system.execution(response.headers["X-Hookflow-Execution-Id"])
            assert [(n["key"], n["status"]) for n in execution["nodes"]] == [
                ("local", "succeeded"),
                ("hop", "failed"),
                ("direct", "failed"),
                ("answer", "succeeded"),
            ]
            assert local["calls"] == ["/hello", "/redirect"]
    finally:
        await bus.close()
        await storage.close()
