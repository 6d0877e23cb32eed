"""Queues accepted webhooks on the broker, several to a message when they arrive together
(shared.batching): one confirmed publish then answers many callers, which is what lets a
gateway take more webhooks per second than it could publish messages.

When the broker stops confirming (blocked by an alarm, overloaded, unreachable), webhooks are
refused at once (BrokerUnavailable, a 503) instead of queueing without bound in memory."""

import time

import structlog

from hookflow_gateway.metrics import GatewayMetrics
from hookflow_shared.batching import Batcher, Overloaded
from hookflow_shared.errors import BrokerUnavailable
from hookflow_shared.messaging import Broker
from hookflow_shared.models import RunRequest

log = structlog.get_logger("hookflow.gateway")


class RunSubmitter:
    def __init__(
        self,
        broker: Broker,
        *,
        max_batch: int = 256,
        max_in_flight: int = 2,
        max_waiting: int = 4096,
        stalled_after: float = 2.0,
        metrics: GatewayMetrics | None = None,
    ) -> None:
        self._broker = broker
        self._metrics = metrics
        self._batcher: Batcher[RunRequest, None] = Batcher(
            self._publish if metrics is not None else broker.publish_runs,
            max_batch=max_batch,
            max_in_flight=max_in_flight,
            max_waiting=max_waiting,
            stalled_after=stalled_after,
        )

    def __len__(self) -> int:
        return len(self._batcher)

    async def submit(self, run: RunRequest) -> None:
        """Returns once the broker has durably taken the run; raises BrokerUnavailable if not."""
        try:
            await self._batcher.submit(run)
        except BrokerUnavailable:
            raise
        except Overloaded as error:
            raise BrokerUnavailable(f"the message broker is not keeping up ({error})") from error
        except Exception as error:
            log.exception("publish failed")
            raise BrokerUnavailable() from error

    async def _publish(self, runs: list[RunRequest]) -> None:
        """One confirmed publish, measured (its size and the wait for the confirm)."""
        started = time.perf_counter()
        await self._broker.publish_runs(runs)
        if self._metrics is not None:
            self._metrics.published(len(runs), time.perf_counter() - started)

    async def close(self) -> None:
        await self._batcher.close()
