"""The benchmark's session: what every step needs (the processes, the HTTP client, the broker
channel, the workflows created) and the small queries on it (health, counters, snapshots)."""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import aiohttp

from bench.common import HEALTH_TIMEOUT, BenchError
from bench.cpu import Snapshot, children_cpu, host_cpu, processes_cpu
from bench.processes import Processes, Service


@dataclass
class Failure:
    where: str
    message: str


@dataclass
class Bench:
    args: argparse.Namespace
    wrk: str
    broker_url: str
    namespace: str
    token: str
    procs: Processes
    http: aiohttp.ClientSession
    channel: aio_pika.abc.AbstractChannel
    broker_pids: list[int]
    urls: dict[str, str] = field(default_factory=dict)
    workflow_ids: dict[str, str] = field(default_factory=dict)
    expected_records: dict[str, int] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)

    def svc(self, name: str) -> Service:
        return self.procs.services[name]

    def check_services(self) -> None:
        for service in self.procs.services.values():
            service.check_alive()

    def broker_cpu(self) -> float | None:
        return processes_cpu(self.broker_pids)

    def executors(self) -> list[Service]:
        """The executors running: "executor", and "executor-2"... while a backlog drains."""
        return [s for n, s in self.procs.services.items() if n.split("-")[0] == "executor"]

    def executors_cpu(self, cpu: dict[str, float] | None = None) -> float:
        """CPU seconds of the executors running, now or in a snapshot's `cpu`."""
        names = [s.name for s in self.executors()]
        return (
            sum(cpu.get(n, 0.0) for n in names)
            if cpu is not None
            else sum(map(Service.cpu, self.executors()))
        )

    async def executed(self) -> int:
        """The runs the executors running have recorded (the counters of their /healthz)."""
        total = 0
        for executor in self.executors():
            async with self.http.get(f"{executor.base}/healthz") as response:
                body = await response.json()
            total += int(body["executed"])
        return total

    async def queue_depth(self) -> int:
        queue = await self.channel.declare_queue(f"{self.namespace}.runs", passive=True)
        result = queue.declaration_result
        return int(result.message_count or 0)

    async def snapshot(self, *, with_executed: bool) -> Snapshot:
        return Snapshot(
            at=time.monotonic(),
            cpu={name: s.cpu() for name, s in self.procs.services.items()},
            broker_cpu=self.broker_cpu(),
            children_cpu=children_cpu(),
            host=host_cpu(),
            executed=await self.executed() if with_executed else None,
        )

    def fail(self, where: str, message: str) -> None:
        self.failures.append(Failure(where, message))
        bar = "!" * 78
        print(f"\n{bar}\n!!! {where}: {message}\n{bar}\n", flush=True)

    async def wait_healthy(self, service: Service) -> dict[str, Any]:
        deadline = time.monotonic() + HEALTH_TIMEOUT
        last = "no answer"
        while time.monotonic() < deadline:
            service.check_alive()
            try:
                async with self.http.get(f"{service.base}/healthz") as response:
                    text = await response.text()
                    if response.status == 200:
                        return json.loads(text) if text.startswith("{") else {}
                    last = f"{response.status} {text}"
            except aiohttp.ClientError as error:
                last = repr(error)
            await asyncio.sleep(0.2)
        raise BenchError(
            f"{service.name}'s /healthz did not answer 200 within {HEALTH_TIMEOUT:g} s "
            f"(last: {last}); its stderr:\n{service.stderr_tail()}"
        )
