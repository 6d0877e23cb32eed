"""The processes the benchmark starts (the three services and bench/bare.py) and their end."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aio_pika
from cryptography.fernet import Fernet

from bench.common import BENCH, ROOT, UNLIMITED, BenchError
from bench.cpu import cpu_seconds
from bench.memory import peak_rss_mb
from bench.storage import storage_env
from hookflow_shared.messaging.topology import Topology

BARE = BENCH / "bare.py"
HOOKFLOW = ROOT / ".venv" / "bin" / "hookflow"
STOP_GRACE = 10.0
SERVICES = ("config-api", "executor", "gateway")
"""Started in this order, each as `hookflow <name>`."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Service:
    name: str
    port: int
    proc: subprocess.Popen[bytes]
    log_dir: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def stderr_path(self) -> Path:
        return self.log_dir / f"{self.name}.stderr"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def cpu(self) -> float:
        return cpu_seconds(self.proc.pid)

    def stderr_tail(self, lines: int = 40) -> str:
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        tail = text.splitlines()[-lines:]
        return "\n".join(f"    | {line}" for line in tail) if tail else "    | (empty)"

    def check_alive(self) -> None:
        if not self.alive():
            raise BenchError(
                f"{self.name} exited with status {self.proc.returncode}; its stderr:\n"
                + self.stderr_tail()
            )


class Processes:
    """Every process the benchmark starts; stop_all() ends them (SIGTERM, then SIGKILL)."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.peak_mb: dict[str, float] = {}
        """Peak RSS by process name, the highest of every process that bore the name."""
        self.started: list[str] = []
        """Every name started, in order, those stopped since included (for their logs)."""

    def start(self, name: str, argv: list[str], env: dict[str, str], port: int) -> Service:
        # Appended to: an executor stopped and started again (the backlog) keeps one log.
        out = (self.log_dir / f"{name}.stdout").open("ab")
        err = (self.log_dir / f"{name}.stderr").open("ab")
        with out, err:
            # A session of its own: a Ctrl-C on the terminal reaches the benchmark only, which
            # then stops its processes in order.
            proc = subprocess.Popen(  # noqa: S603 (our own commands, no shell)
                argv,
                env=env,
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,
            )
        service = self.services[name] = Service(name, port, proc, self.log_dir)
        if name not in self.started:
            self.started.append(name)
        return service

    def start_all(self, env: dict[str, str], ports: dict[str, int]) -> None:
        """The three services, then the bare handler."""
        self.env = env
        for name in SERVICES:
            self.start(name, [str(HOOKFLOW), name], env, ports[name])
        bare_argv = [sys.executable, str(BARE), "--port", str(ports["bare"])]
        self.start("bare", bare_argv, env, ports["bare"])

    def start_executor(self, name: str) -> Service:
        """One more executor (or the first again), on a port of its own."""
        port = free_port()
        env = self.env | {"HOOKFLOW_EXECUTOR_PORT": str(port)}
        return self.start(name, [str(HOOKFLOW), "executor"], env, port)

    def note_memory(self) -> None:
        """Read the running processes' peak RSS (before any of them stops)."""
        for name, service in self.services.items():
            if service.alive():
                with contextlib.suppress(OSError, ValueError):
                    mb = peak_rss_mb(service.proc.pid)
                    self.peak_mb[name] = max(mb, self.peak_mb.get(name, 0.0))

    def stop(self, name: str) -> None:
        """Stop one process (SIGTERM: an executor finishes what it holds) and forget it."""
        self.note_memory()
        service = self.services.pop(name)
        service.proc.send_signal(signal.SIGTERM)
        try:
            service.proc.wait(timeout=STOP_GRACE)
        except subprocess.TimeoutExpired:
            print(f"  {service.name} did not stop within {STOP_GRACE:g} s: killing it")
            service.proc.kill()
            service.proc.wait()

    def stop_all(self) -> None:
        self.note_memory()
        running = [s for s in self.services.values() if s.alive()]
        for service in running:
            with contextlib.suppress(ProcessLookupError):
                service.proc.send_signal(signal.SIGCONT)  # an executor frozen by a backlog
                service.proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_GRACE
        for service in running:
            try:
                service.proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                print(f"  {service.name} did not stop within {STOP_GRACE:g} s: killing it")
                service.proc.kill()
                service.proc.wait()


def service_env(
    broker_url: str,
    namespace: str,
    token: str,
    data_dir: Path,
    ports: dict[str, int],
    *,
    lift_rate_limit: bool,
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOOKFLOW_")}
    env |= {
        "HOOKFLOW_BROKER_URL": broker_url,
        "HOOKFLOW_DATA_DIR": str(data_dir),
        "HOOKFLOW_NAMESPACE": namespace,
        "HOOKFLOW_ADMIN_TOKEN": token,
        "HOOKFLOW_SECRET_KEY": Fernet.generate_key().decode(),
        "HOOKFLOW_GATEWAY_PORT": str(ports["gateway"]),
        "HOOKFLOW_CONFIG_API_PORT": str(ports["config-api"]),
        "HOOKFLOW_EXECUTOR_PORT": str(ports["executor"]),
        "HOOKFLOW_PUBLIC_URL": f"http://127.0.0.1:{ports['gateway']}",
        "HOOKFLOW_LOG_LEVEL": "warning",
        "HOOKFLOW_LOG_FORMAT": "json",
    }
    if lift_rate_limit:
        env |= UNLIMITED
    return env | storage_env(namespace)


def log_summary(procs: Processes) -> dict[str, Any]:
    """What the services logged (warnings and errors only, at HOOKFLOW_LOG_LEVEL=warning)."""
    summary: dict[str, Any] = {}
    for name in procs.started:
        try:
            lines = (procs.log_dir / f"{name}.stderr").read_text(errors="replace").splitlines()
        except OSError:
            continue
        events: dict[str, int] = {}
        for line in lines:
            try:
                record = json.loads(line)
                key = f"{record.get('level', '?')}: {record.get('event', line)}"
            except ValueError:
                key = line[:160]
            events[key] = events.get(key, 0) + 1
        summary[name] = {"lines": len(lines), "events": events}
    return summary


async def delete_namespace(broker_url: str, namespace: str) -> None:
    """Every queue and exchange the services declare in the benchmark's own namespace, from the
    services' own list (hookflow_shared.messaging.topology)."""
    topology = Topology(namespace)
    connection = await aio_pika.connect(broker_url, timeout=10)
    async with connection:
        for queue in topology.queues():
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.queue_delete(queue.name)
        exchanges = [spec.name for spec in topology.exchanges()]
        for exchange in [*exchanges, topology.installation_exchange]:
            channel = await connection.channel()
            with contextlib.suppress(aio_pika.exceptions.AMQPError):
                await channel.exchange_delete(exchange)
