"""The executor's metrics: executions by workflow and status, how long runs and their nodes
take, what is running, what came back (redeliveries), what was given up, and the store.

Labels stay bounded: a workflow id, a status (succeeded, failed) and a node type (the node
types this executor knows)."""

from collections import Counter as TallyCounter
from collections.abc import Callable, Iterable

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hookflow_shared.metrics import LATENCY_BUCKETS, Children
from hookflow_shared.models import ExecutionRecord


class ExecutorMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self._executions = Children(
            Counter(
                "hookflow_executions",
                "Executions recorded, by workflow and status.",
                ["workflow", "status"],
                registry=registry,
            )
        )
        self._duration = Histogram(
            "hookflow_execution_duration_seconds",
            "Seconds an execution ran, from its start to its end (its record not included).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._nodes = Children(
            Histogram(
                "hookflow_node_duration_seconds",
                "Seconds one node ran, by node type.",
                ["type"],
                buckets=LATENCY_BUCKETS,
                registry=registry,
            )
        )
        self.in_flight = Gauge(
            "hookflow_runs_in_flight",
            "Runs this executor is running or recording now.",
            registry=registry,
        )
        self.redeliveries = Counter(
            "hookflow_redeliveries",
            "Messages of runs delivered again (their executor stopped, or a run failed).",
            registry=registry,
        )
        self.given_up = Counter(
            "hookflow_runs_given_up",
            "Runs recorded as failed after failing on their last delivery.",
            registry=registry,
        )
        self.dead_lettered = Counter(
            "hookflow_runs_dead_lettered",
            "Runs of dead-lettered messages recorded as failed (their executor never finished "
            "them).",
            registry=registry,
        )
        self.record_writes = Histogram(
            "hookflow_record_write_seconds",
            "Seconds one write of execution records took (several records to a write).",
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self._storage_up = Gauge(
            "hookflow_storage_up",
            "1 while the store answers this executor, 0 while its calls are failing.",
            registry=registry,
        )

    def watch_storage(self, answering: Callable[[], bool]) -> None:
        self._storage_up.set_function(lambda: 1.0 if answering() else 0.0)

    def recorded(self, records: Iterable[ExecutionRecord]) -> None:
        """Executions recorded: their counts (one increment per workflow and status), their
        durations, their nodes' durations."""
        counts: TallyCounter[tuple[str, str]] = TallyCounter()
        for record in records:
            counts[record.workflow_id, record.status] += 1
            self._duration.observe((record.finished_at - record.started_at).total_seconds())
            for node in record.nodes:
                self._nodes(node.type).observe((node.finished_at - node.started_at).total_seconds())
        for (workflow, status), count in counts.items():
            self._executions(workflow, status).inc(count)
