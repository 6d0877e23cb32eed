"""The services as real processes: `hookflow config-api`, `gateway` and `executor`, each
`python -m hookflow_cli <service>` with its own environment, port and log file.

An `Installation` is one namespace on one broker with one storage: a config API, N gateways and
M executors, started with `start()`, each answering /healthz before it returns. A `Service` can
be sent a signal, killed, waited for and restarted; its JSON log lines are in its log file
(tmp_path/logs/<name>.log), printed by the fixture when the test fails.
"""

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import aiohttp
import orjson

from hookflow_shared.crypto import new_key
from tests.faults.rabbitnode import free_port

Kind = Literal["config-api", "gateway", "executor"]

PORT_VARIABLE: dict[Kind, str] = {
    "config-api": "HOOKFLOW_CONFIG_API_PORT",
    "gateway": "HOOKFLOW_GATEWAY_PORT",
    "executor": "HOOKFLOW_EXECUTOR_PORT",
}
NO_RATE_LIMIT = {"HOOKFLOW_RATE_LIMIT": "1000000", "HOOKFLOW_RATE_BURST": "10000000"}


@dataclass(frozen=True)
class Sqlite:
    """SQLite in `data_dir`, shared by the processes of one installation."""

    data_dir: Path

    def env(self) -> dict[str, str]:
        return {"HOOKFLOW_DATA_DIR": str(self.data_dir)}


@dataclass(frozen=True)
class Mongo:
    """A MongoDB database (the `mongodb` fixture gives one per test)."""

    url: str
    database: str

    def env(self) -> dict[str, str]:
        return {"HOOKFLOW_MONGODB_URL": self.url, "HOOKFLOW_MONGODB_DATABASE": self.database}


class ServiceExited(AssertionError):
    pass


@dataclass
class Service:
    """One `hookflow <kind>` process (restartable on the same port and environment)."""

    name: str
    kind: Kind
    port: int
    env: dict[str, str]
    log_path: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        assert not self.running, f"{self.name} is running"
        self.starts += 1
        with self.log_path.open("ab") as log:
            if self.starts > 1:
                log.write(f"=== {self.name}: start {self.starts} ===\n".encode())
                log.flush()
            self.process = subprocess.Popen(
                [sys.executable, "-m", "hookflow_cli", self.kind],
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a Ctrl-C on the terminal reaches pytest only
            )

    async def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until GET /healthz answers 200 (broker connected, storage answering, triggers
        loaded); fails at once if the process exits."""
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with aiohttp.ClientSession() as session:
            while True:
                if not self.running:
                    raise ServiceExited(f"{self.name} exited ({self.returncode}):\n{self.tail()}")
                try:
                    async with session.get(
                        self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=2)
                    ) as response:
                        if response.status == 200:
                            return
                        last = f"{response.status} {await response.text()}"
                except (aiohttp.ClientError, TimeoutError) as error:
                    last = repr(error)
                if time.monotonic() > deadline:
                    raise AssertionError(
                        f"{self.name} not healthy in {timeout:g} s ({last}):\n{self.tail()}"
                    )
                await asyncio.sleep(0.05)

    async def health(self) -> dict[str, Any]:
        async with (
            aiohttp.ClientSession() as session,
            session.get(self.url + "/healthz", timeout=aiohttp.ClientTimeout(total=5)) as r,
        ):
            body: dict[str, Any] = await r.json()
            return body

    def send(self, signum: signal.Signals) -> None:
        assert self.process is not None, f"{self.name} was never started"
        self.process.send_signal(signum)

    def kill(self) -> None:
        """SIGKILL, and reap it."""
        self.send(signal.SIGKILL)
        assert self.process is not None
        self.process.wait(10)

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit status (negative: the signal that ended it)."""
        assert self.process is not None
        return await asyncio.to_thread(self.process.wait, timeout)

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    async def restart(self, timeout: float = 30.0) -> None:
        """Start it again (same port, same environment) once it has exited, and wait until
        it is healthy."""
        if self.running:
            raise AssertionError(f"{self.name} still runs; stop it first")
        self.start()
        await self.wait_healthy(timeout)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; reaps it."""
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(grace)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)

    def log_lines(self) -> list[str]:
        try:
            return self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return []

    def events(self) -> list[dict[str, Any]]:
        """The JSON log lines (HOOKFLOW_LOG_FORMAT=json), parsed; other lines are left out."""
        events = []
        for line in self.log_lines():
            if line.startswith("{"):
                with contextlib.suppress(orjson.JSONDecodeError):
                    events.append(orjson.loads(line))
        return events

    def tail(self, lines: int = 40) -> str:
        return "\n".join(f"  {self.name} | {line}" for line in self.log_lines()[-lines:])


@dataclass
class Installation:
    """One Hookflow installation on real processes: a namespace on a broker, a storage, a
    config API, gateways and executors. `extra_env` goes to every service (e.g.
    HOOKFLOW_SHUTDOWN_GRACE); `env` of add_* to that service alone."""

    broker_url: str
    namespace: str
    storage: Sqlite | Mongo
    logs: Path
    extra_env: dict[str, str] = field(default_factory=dict)
    token: str = "fault-test-admin-token"
    secret_key: str = field(default_factory=new_key)
    services: list[Service] = field(default_factory=list)
    _enabled_workflows: int = 0

    def _base_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
        return (
            env
            | {
                "HOOKFLOW_BROKER_URL": self.broker_url,
                "HOOKFLOW_NAMESPACE": self.namespace,
                "HOOKFLOW_ADMIN_TOKEN": self.token,
                "HOOKFLOW_SECRET_KEY": self.secret_key,
                "HOOKFLOW_LOG_FORMAT": "json",
                "HOOKFLOW_RETRY_BACKOFF": "0.05",
            }
            | NO_RATE_LIMIT
            | self.storage.env()
            | self.extra_env
        )

    def add(self, kind: Kind, env: dict[str, str] | None = None) -> Service:
        """A service, not started yet (start() or start_all())."""
        number = sum(1 for s in self.services if s.kind == kind) + 1
        name = f"{kind}-{number}"
        port = free_port()
        service_env = self._base_env() | {PORT_VARIABLE[kind]: str(port)} | (env or {})
        if kind == "config-api":
            gateway = next((s for s in self.services if s.kind == "gateway"), None)
            public = gateway.url if gateway else "http://127.0.0.1:8080"
            service_env.setdefault("HOOKFLOW_PUBLIC_URL", public)
        self.logs.mkdir(parents=True, exist_ok=True)
        service = Service(name, kind, port, service_env, self.logs / f"{name}.log")
        self.services.append(service)
        return service

    async def start(self, *, gateways: int = 1, executors: int = 1) -> "Installation":
        """A config API, `gateways` gateways and `executors` executors; returns once each
        answers /healthz 200. On SQLite the config API starts first and alone: it makes the
        file (schema, WAL) before the others open it (concurrent first opens of a new file
        have failed, rarely, with "database is locked")."""
        new = [self.add("gateway") for _ in range(gateways)]
        new += [self.add("executor") for _ in range(executors)]
        await self.start_all([self.add("config-api"), *new])
        return self

    async def start_all(self, services: list[Service]) -> None:
        """Start these services together (on SQLite, the config API first, alone) and wait
        until each is healthy."""
        first = [s for s in services if s.kind == "config-api"]
        if isinstance(self.storage, Sqlite) and first:
            await self.start_all_at_once(first)
            services = [s for s in services if s not in first]
        await self.start_all_at_once(services)

    async def start_all_at_once(self, services: list[Service]) -> None:
        for service in services:
            service.start()
        await asyncio.gather(*(service.wait_healthy() for service in services))

    def of(self, kind: Kind) -> list[Service]:
        return [s for s in self.services if s.kind == kind]

    @property
    def config_api(self) -> Service:
        return self.of("config-api")[0]

    @property
    def gateways(self) -> list[Service]:
        return self.of("gateway")

    @property
    def executors(self) -> list[Service]:
        return self.of("executor")

    # --- the config API ---

    async def api(self, method: str, path: str, json: Any = None) -> tuple[int, Any]:
        headers = {"Authorization": f"Bearer {self.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.config_api.url + path, json=json, headers=headers) as r,
        ):
            body = await r.json() if r.content_type == "application/json" else await r.text()
            return r.status, body

    async def create_workflow(self, document: dict[str, Any]) -> dict[str, Any]:
        """Create a workflow and wait until every running gateway has loaded its trigger."""
        status, body = await self.api("POST", "/api/workflows", document)
        assert status == 201, body
        if body["enabled"]:
            self._enabled_workflows += 1
            await self.wait_triggers_loaded()
        return dict(body)

    async def wait_triggers_loaded(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        for gateway in self.gateways:
            if not gateway.running:
                continue
            while (await gateway.health())["triggers"]["count"] < self._enabled_workflows:
                if time.monotonic() > deadline:
                    raise AssertionError(f"{gateway.name} did not load the triggers")
                await asyncio.sleep(0.05)

    def webhook_urls(self, workflow: dict[str, Any]) -> list[str]:
        """The workflow's webhook on each gateway (running or not)."""
        key = workflow["trigger"]["key"]
        return [f"{g.url}/api/webhook:trigger/{key}" for g in self.gateways]

    def refused_runs(self) -> set[str]:
        """Execution ids the gateways answered 503 for after trying to queue them (their log's
        "webhook refused" for the reason broker_unavailable): a lost confirm may still have
        queued them."""
        return {
            event["execution_id"]
            for gateway in self.gateways
            for event in gateway.events()
            if event.get("event") == "webhook refused"
            and event.get("reason") == "broker_unavailable"
            and "execution_id" in event
        }

    async def execution(self, execution_id: str) -> dict[str, Any] | None:
        status, body = await self.api("GET", f"/api/executions/{execution_id}")
        return dict(body) if status == 200 else None

    async def recorded(self, workflow_id: str) -> dict[str, str]:
        """Every recorded execution of the workflow, through the config API: id -> status."""
        found: dict[str, str] = {}
        cursor = ""
        while True:
            query = f"?limit=200&cursor={cursor}" if cursor else "?limit=200"
            status, page = await self.api("GET", f"/api/workflows/{workflow_id}/executions{query}")
            assert status == 200, page
            for item in page["items"]:
                found[item["id"]] = item["status"]
            cursor = page["nextCursor"]
            if not cursor:
                return found

    # --- the end ---

    def stop_all(self, grace: float = 15.0) -> list[str]:
        """SIGTERM every service (gateways first, then executors, then the config API), then
        SIGKILL what is left after `grace` seconds; returns the names of those killed."""
        order = [*self.gateways, *self.executors, *self.of("config-api")]
        for service in order:
            if service.running:
                service.send(signal.SIGTERM)
        deadline = time.monotonic() + grace
        killed = []
        for service in order:
            if service.process is None:
                continue
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                killed.append(service.name)
                service.process.kill()
                service.process.wait(10)
        return killed

    def logs_report(self, lines: int = 60) -> str:
        return "\n".join(service.tail(lines) for service in self.services)
