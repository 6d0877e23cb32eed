"""The Kubernetes manifests (deploy/kubernetes): they build with kustomize, every resource passes
the Kubernetes schemas (kubernetes-validate) or KEDA's CRD (cloudcoil's models of it), and they
agree with the services: ports, probes, grace periods, queue names, Secret keys. The alert rules
parse as PromQL and use only the metrics the services export."""

import copy
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import promql_parser
import pydantic
import pytest
import yaml
from cloudcoil.models.keda import v1alpha1 as keda
from cloudcoil.models.prometheus_operator import v1 as monitoring

from hookflow_shared.messaging.topology import Topology
from hookflow_shared.serve import DRAIN_SECONDS
from hookflow_shared.settings import ConfigApiSettings, ExecutorSettings, GatewaySettings

ROOT = Path(__file__).resolve().parents[1]
KUBERNETES = ROOT / "deploy" / "kubernetes"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
ALERTS = KUBERNETES / "alerts.yaml"
SECRET_COMPONENT = KUBERNETES / "components" / "secret-from-env"
SECRET_KEYS = {
    "HOOKFLOW_BROKER_URL",
    "HOOKFLOW_MONGODB_URL",
    "HOOKFLOW_ADMIN_TOKEN",
    "HOOKFLOW_SECRET_KEY",
}
KUBERNETES_VERSION = "1.30.0"
"""The oldest Kubernetes the manifests target (PodDisruptionBudget, HPA v2, seccompProfile)."""

# Service -> (Dockerfile target, its port setting and default).
SERVICES = {
    "hookflow-gateway": ("gateway", "HOOKFLOW_GATEWAY_PORT", GatewaySettings().gateway_port),
    "hookflow-executor": ("executor", "HOOKFLOW_EXECUTOR_PORT", ExecutorSettings().executor_port),
    "hookflow-config-api": (
        "config-api",
        "HOOKFLOW_CONFIG_API_PORT",
        ConfigApiSettings().config_api_port,
    ),
}
CRD_MODELS: dict[tuple[str, str], type[pydantic.BaseModel]] = {
    ("keda.sh/v1alpha1", "ScaledObject"): keda.ScaledObject,
    ("keda.sh/v1alpha1", "TriggerAuthentication"): keda.TriggerAuthentication,
    ("monitoring.coreos.com/v1", "PodMonitor"): monitoring.PodMonitor,
    ("monitoring.coreos.com/v1", "PrometheusRule"): monitoring.PrometheusRule,
}
"""Custom resources, checked against their CRDs' schemas as cloudcoil models them."""

# The metrics the services export (README, "Metrics and health"), with their labels.
COUNTERS = {
    "hookflow_webhooks": {"workflow", "outcome", "mode"},
    "hookflow_executions": {"workflow", "status"},
    "hookflow_redeliveries": set(),
    "hookflow_runs_given_up": set(),
    "hookflow_runs_dead_lettered": set(),
    "hookflow_api_requests": {"route", "method", "status"},
}
HISTOGRAMS = {
    "hookflow_webhook_duration_seconds": {"mode"},
    "hookflow_publish_confirm_seconds": set(),
    "hookflow_publish_batch_size": set(),
    "hookflow_execution_duration_seconds": set(),
    "hookflow_node_duration_seconds": {"type"},
    "hookflow_record_write_seconds": set(),
}
GAUGES = {
    "hookflow_trigger_cache_triggers": set(),
    "hookflow_trigger_cache_age_seconds": set(),
    "hookflow_runs_in_flight": set(),
    "hookflow_storage_up": set(),
}
# RabbitMQ's own exporter (rabbitmq_prometheus), per-object metrics.
RABBITMQ = {
    "rabbitmq_queue_messages_ready": {"queue", "vhost"},
    "rabbitmq_queue_messages_unacked": {"queue", "vhost"},
    "rabbitmq_queue_consumers": {"queue", "vhost"},
}
TARGET_LABELS = {"job", "instance", "namespace", "pod", "container", "service"}
"""Labels Prometheus attaches to every series of a scraped target."""
LABEL_VALUES = {
    "outcome": {
        *("accepted", "repeated", "unknown_key", "method_not_allowed", "unauthorized"),
        *("bad_signature", "too_large", "body_timeout", "unsupported_type", "bad_body"),
        *("rate_limited", "credential_flood", "not_ready", "broker_unavailable"),
        "sync_timeout",
    },
    "mode": {"async", "sync", "unknown"},
    "status": {"succeeded", "failed"},
}
"""Values the services give these labels; an equality matcher on another value matches nothing."""


def exported_series() -> dict[str, set[str]]:
    """Every series name Prometheus scrapes from the services, with the labels it may carry."""
    series: dict[str, set[str]] = {}
    for name, labels in COUNTERS.items():
        series[f"{name}_total"] = labels
    for name, labels in HISTOGRAMS.items():
        series[f"{name}_bucket"] = labels | {"le"}
        series[f"{name}_sum"] = labels
        series[f"{name}_count"] = labels
    series.update(GAUGES)
    return series


def kustomize_command() -> list[str]:
    """`kubectl kustomize`, else a standalone `kustomize build`; skip when neither is here."""
    if kubectl := shutil.which("kubectl"):
        return [kubectl, "kustomize"]
    if kustomize := shutil.which("kustomize"):
        return [kustomize, "build"]
    pytest.skip(
        "neither kubectl nor kustomize is on PATH (no PyPI or npm package ships kustomize): "
        "install kubectl >= 1.27 to build the kustomization"
    )


def kustomize(directory: Path) -> list[dict[str, Any]]:
    result = subprocess.run(
        [*kustomize_command(), str(directory)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """What a platform team applies: the base, the Secret from secret.env (filled in from the
    example, in a copy, so no secret.env is ever written into the repository) and the
    monitoring component, through an overlay."""
    root = tmp_path_factory.mktemp("kubernetes")
    shutil.copytree(KUBERNETES, root / "kubernetes", ignore=shutil.ignore_patterns("secret.env"))
    shutil.copy(
        SECRET_COMPONENT / "secret.env.example",
        root / "kubernetes" / "components" / "secret-from-env" / "secret.env",
    )
    overlay = root / "overlay"
    overlay.mkdir()
    (overlay / "kustomization.yaml").write_text(
        yaml.safe_dump(
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "namespace": "hookflow",
                "resources": ["../kubernetes"],
                "components": [
                    "../kubernetes/components/secret-from-env",
                    "../kubernetes/components/monitoring",
                ],
            }
        )
    )
    return kustomize(overlay)


def only(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    found = [d for d in docs if d["kind"] == kind and d["metadata"]["name"].startswith(name)]
    assert len(found) == 1, f"{kind} {name}: {len(found)} found"
    return found[0]


def containers(docs: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any]]]:
    for deployment in (d for d in docs if d["kind"] == "Deployment"):
        for container in deployment["spec"]["template"]["spec"]["containers"]:
            yield deployment["metadata"]["name"], container


def schema_errors(doc: dict[str, Any]) -> list[str]:
    """Why Kubernetes (or the resource's CRD) would refuse or silently change this resource:
    schema errors, and fields the schema does not know (which the API server would prune)."""
    if model := CRD_MODELS.get((doc["apiVersion"], doc["kind"])):
        try:
            parsed = model.model_validate(doc)
        except pydantic.ValidationError as error:
            return [str(error)]
        kept = parsed.model_dump(by_alias=True, exclude_unset=True, mode="json")
        return [] if kept == doc else [f"fields unknown to the CRD: {doc} became {kept}"]
    try:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    except kubernetes_validate.ValidationError as error:
        return [f"{'/'.join(map(str, error.path))}: {error.message}"]
    return []


def readme_overlay() -> str:
    """The overlay the README's "Operations" guide shows."""
    readme = (ROOT / "README.md").read_text()
    found = re.search(r"```yaml\n(# overlays/production/kustomization.yaml\n.*?)```", readme, re.S)
    assert found, "README: the overlay example is gone"
    return found[1]


def test_the_readme_overlay_builds(tmp_path: Path) -> None:
    kubernetes = tmp_path / "deploy" / "kubernetes"
    shutil.copytree(KUBERNETES, kubernetes, ignore=shutil.ignore_patterns("secret.env"))
    component = kubernetes / "components" / "secret-from-env"
    shutil.copy(component / "secret.env.example", component / "secret.env")
    overlay = tmp_path / "overlays" / "production"
    overlay.mkdir(parents=True)
    (overlay / "kustomization.yaml").write_text(readme_overlay())
    docs = kustomize(overlay)
    assert {d["metadata"].get("namespace") for d in docs} == {"hookflow"}
    for name, container in containers(docs):
        assert container["image"].startswith(f"registry.example.com/{name}:"), name
    config = only(docs, "ConfigMap", "hookflow")["data"]
    assert config["HOOKFLOW_PUBLIC_URL"] == "https://hooks.example.com"
    assert config["HOOKFLOW_BIND"] == "0.0.0.0"  # merged, not replaced
    config_api = only(docs, "Deployment", "hookflow-config-api")
    [source] = config_api["spec"]["template"]["spec"]["containers"][0]["envFrom"]
    assert source["configMapRef"]["name"] == only(docs, "ConfigMap", "hookflow")["metadata"]["name"]
    assert {d["kind"] for d in docs} >= {"Secret", "PodMonitor"}


def test_base_builds_alone_with_the_three_services() -> None:
    docs = kustomize(KUBERNETES)
    kinds = sorted((d["kind"], d["metadata"]["name"]) for d in docs)
    assert {name for kind, name in kinds if kind == "Deployment"} == set(SERVICES)
    assert {name for kind, name in kinds if kind == "Service"} == {
        "hookflow-gateway",
        "hookflow-config-api",
    }
    assert {kind for kind, _ in kinds} >= {
        "ConfigMap",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "ScaledObject",
        "TriggerAuthentication",
    }
    # The base creates no Secret: the platform team provides `hookflow` (README, "Operations").
    assert not [d for d in docs if d["kind"] == "Secret"]


def test_every_resource_passes_its_schema(deployed: list[dict[str, Any]]) -> None:
    kinds = {d["kind"] for d in deployed}
    assert kinds >= {"Deployment", "ScaledObject", "TriggerAuthentication", "PodMonitor"}
    for doc in [*deployed, yaml.safe_load(ALERTS.read_text())]:
        assert schema_errors(doc) == [], f"{doc['kind']} {doc['metadata']['name']}"


@pytest.mark.parametrize(
    ("kind", "breakage"),
    [
        ("Deployment", lambda d: d["spec"]["template"]["spec"]["containers"][0].update(ports=80)),
        ("Deployment", lambda d: d["spec"].update(replica=3)),
        ("HorizontalPodAutoscaler", lambda d: d["spec"].pop("maxReplicas")),
        ("ScaledObject", lambda d: d["spec"].update(minReplicaCount="one")),
        ("ScaledObject", lambda d: d["spec"]["triggers"][0].update(queue="hookflow.runs")),
        ("ScaledObject", lambda d: d["spec"].pop("scaleTargetRef")),
        ("TriggerAuthentication", lambda d: d["spec"]["secretTargetRef"][0].pop("key")),
        ("PodMonitor", lambda d: d["spec"].update(podMetricsEndpoints={"port": "http"})),
    ],
)
def test_a_broken_resource_is_rejected(
    deployed: list[dict[str, Any]], kind: str, breakage: Any
) -> None:
    doc = copy.deepcopy(next(d for d in deployed if d["kind"] == kind))
    breakage(doc)
    assert schema_errors(doc)


def test_ports_and_probes_match_each_service(deployed: list[dict[str, Any]]) -> None:
    dockerfile = DOCKERFILE.read_text()
    for name, container in containers(deployed):
        target, setting, default = SERVICES[name]
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = int(env[setting])
        assert port == default
        exposed = re.search(rf"AS {target}\n(?:(?!\nFROM ).)*?EXPOSE (\d+)", dockerfile, re.S)
        assert exposed and int(exposed[1]) == port, name
        assert container["image"].startswith(f"hookflow-{target}:")
        assert container["ports"] == [{"name": "http", "containerPort": port}]
        for probe in ("readinessProbe", "livenessProbe"):
            assert container[probe]["httpGet"] == {"path": "/healthz", "port": "http"}, name


def test_services_and_budgets_select_their_pods(deployed: list[dict[str, Any]]) -> None:
    pods = {
        d["metadata"]["name"]: d["spec"]["template"]["metadata"]["labels"]
        for d in deployed
        if d["kind"] == "Deployment"
    }
    for doc in deployed:
        if doc["kind"] == "Service":
            selector = doc["spec"]["selector"]
        elif doc["kind"] == "PodDisruptionBudget":
            selector = doc["spec"]["selector"]["matchLabels"]
        else:
            continue
        labels = pods[doc["metadata"]["name"]]
        assert selector.items() <= labels.items(), doc["metadata"]["name"]
        chosen = [name for name, pod in pods.items() if selector.items() <= pod.items()]
        assert chosen == [doc["metadata"]["name"]]
    budgets = {d["metadata"]["name"] for d in deployed if d["kind"] == "PodDisruptionBudget"}
    assert budgets == set(SERVICES)


def test_rollouts_never_lower_capacity_and_pods_run_locked_down(
    deployed: list[dict[str, Any]],
) -> None:
    for deployment in (d for d in deployed if d["kind"] == "Deployment"):
        assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
        pod = deployment["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert pod["securityContext"]["runAsUser"] == 10001  # the Dockerfile's user
        for container in pod["containers"]:
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True
            assert security["allowPrivilegeEscalation"] is False
            assert security["capabilities"]["drop"] == ["ALL"]
            assert set(container["resources"]["requests"]) == {"cpu", "memory"}
            assert set(container["resources"]["limits"]) == {"cpu", "memory"}


def pre_stop_seconds(container: dict[str, Any]) -> float:
    command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command")
    if command is None:
        return 0.0
    assert command[0] == "sleep"
    return float(command[1])


def test_grace_periods_cover_each_services_shutdown(deployed: list[dict[str, Any]]) -> None:
    """SIGKILL must not cut a shutdown short: the gateway's drain and its wait for sync
    callers, the executor's wait for the runs it holds, the config API's wait for a change to
    propagate, each after the preStop pause that lets the endpoints forget the pod."""
    gateway = only(deployed, "Deployment", "hookflow-gateway")
    executor = only(deployed, "Deployment", "hookflow-executor")
    config_api = only(deployed, "Deployment", "hookflow-config-api")
    shutdowns = {
        "hookflow-gateway": (gateway, DRAIN_SECONDS + GatewaySettings().shutdown_grace_sync),
        "hookflow-config-api": (
            config_api,
            DRAIN_SECONDS + ConfigApiSettings().propagation_timeout,
        ),
    }
    executor_container = executor["spec"]["template"]["spec"]["containers"][0]
    env = {e["name"]: e.get("value") for e in executor_container["env"]}
    shutdown_grace = float(env.get("HOOKFLOW_SHUTDOWN_GRACE", ExecutorSettings().shutdown_grace))
    shutdowns["hookflow-executor"] = (executor, shutdown_grace)
    for name, (deployment, needed) in shutdowns.items():
        pod = deployment["spec"]["template"]["spec"]
        pause = pre_stop_seconds(pod["containers"][0])
        assert pod["terminationGracePeriodSeconds"] > pause + needed, name
    # The services behind a Service pause before SIGTERM; the executor has no endpoints.
    assert pre_stop_seconds(gateway["spec"]["template"]["spec"]["containers"][0]) > 0
    assert pre_stop_seconds(executor_container) == 0


def test_scaling(deployed: list[dict[str, Any]]) -> None:
    hpa = only(deployed, "HorizontalPodAutoscaler", "hookflow-gateway")
    assert hpa["apiVersion"] == "autoscaling/v2"
    assert hpa["spec"]["scaleTargetRef"]["name"] == "hookflow-gateway"
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2  # a PDB with minAvailable 1 still lets nodes drain

    config = only(deployed, "ConfigMap", "hookflow")["data"]
    scaled = only(deployed, "ScaledObject", "hookflow-executor")
    assert scaled["spec"]["scaleTargetRef"]["name"] == "hookflow-executor"
    [trigger] = scaled["spec"]["triggers"]
    assert trigger["type"] == "rabbitmq"
    runs_queue = Topology(namespace=config["HOOKFLOW_NAMESPACE"]).runs_queue
    assert trigger["metadata"]["queueName"] == runs_queue
    auth = only(deployed, "TriggerAuthentication", trigger["authenticationRef"]["name"])
    secret = only(deployed, "Secret", "hookflow")
    assert auth["spec"]["secretTargetRef"] == [
        {"parameter": "host", "name": secret["metadata"]["name"], "key": "HOOKFLOW_BROKER_URL"}
    ]
    # Neither autoscaler's count is reset by re-applying the Deployment.
    for name in ("hookflow-gateway", "hookflow-executor"):
        assert "replicas" not in only(deployed, "Deployment", name)["spec"]


def test_secrets_come_from_the_secret_only(deployed: list[dict[str, Any]]) -> None:
    secret = only(deployed, "Secret", "hookflow")
    assert set(secret["data"]) == SECRET_KEYS
    example = (SECRET_COMPONENT / "secret.env.example").read_text().splitlines()
    keys = {line.split("=", 1)[0] for line in example if line and not line.startswith("#")}
    assert keys == SECRET_KEYS
    for name, container in containers(deployed):
        for env in container["env"]:
            if env["name"] in SECRET_KEYS:
                ref = env["valueFrom"]["secretKeyRef"]
                assert ref == {"name": secret["metadata"]["name"], "key": env["name"]}, name
        for source in container.get("envFrom", []):
            assert "secretRef" not in source
    config = only(deployed, "ConfigMap", "hookflow")["data"]
    assert not SECRET_KEYS & set(config)


def test_no_secret_file_can_be_committed() -> None:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    for path in (SECRET_COMPONENT / "secret.env", KUBERNETES / "secret.env"):
        ignored = subprocess.run(
            ["git", "-C", str(ROOT), "check-ignore", "-q", str(path)], check=False
        )
        assert ignored.returncode == 0, path


# Alert rules.


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text())
    assert document["kind"] == "PrometheusRule"
    return [rule for group in document["spec"]["groups"] for rule in group["rules"]]


def expression_problems(expr: str) -> list[str]:
    """Why an alert expression is wrong: not PromQL, a series the services (or RabbitMQ's
    exporter) do not export, a label the series does not have, a value it never takes."""
    try:
        parsed = promql_parser.parse(expr)
    except ValueError as error:
        return [f"not PromQL: {error}"]
    known = exported_series() | RABBITMQ
    problems: list[str] = []

    def visit(node: Any) -> None:
        if not isinstance(node, promql_parser.VectorSelector):
            return
        if node.name not in known:
            problems.append(f"unknown metric {node.name}")
            return
        for matcher in node.matchers.matchers:
            if matcher.name not in known[node.name] | TARGET_LABELS:
                problems.append(f"{node.name} has no label {matcher.name}")
            elif matcher.op == promql_parser.MatchOp.Equal and matcher.value not in (
                LABEL_VALUES.get(matcher.name, {matcher.value})
            ):
                problems.append(f"{node.name}: {matcher.name} is never {matcher.value!r}")

    promql_parser.walk(parsed, visit)
    return problems


def test_alert_rules_are_valid_promql_on_exported_metrics() -> None:
    rules = alert_rules()
    names = [rule["alert"] for rule in rules]
    assert len(names) == len(set(names))
    for rule in rules:
        assert expression_problems(rule["expr"]) == [], rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}
        assert rule["annotations"]["summary"]


def test_alert_rules_cover_what_operators_must_know() -> None:
    exprs = " ".join(rule["expr"] for rule in alert_rules())
    for needed in (
        'outcome="broker_unavailable"',
        'outcome="sync_timeout"',
        'status="failed"',
        "hookflow_runs_dead_lettered_total",
        "hookflow_storage_up",
        "rabbitmq_queue_messages_ready",
        "histogram_quantile(0.99",
    ):
        assert needed in exprs
    queue = Topology().runs_queue
    assert f'queue="{queue}"' in exprs


@pytest.mark.parametrize(
    "expr",
    [
        "sum(rate(hookflow_webhooks_total[5m])",
        "rate(hookflow_webhook_total[5m]) > 0",
        'rate(hookflow_webhooks_total{reason="broker_unavailable"}[5m]) > 0',
        'rate(hookflow_webhooks_total{outcome="broker_down"}[5m]) > 0',
        "hookflow_storage_up{instance=~'.+'} == 0 or hookflow_storage_down == 1",
    ],
)
def test_a_broken_alert_expression_is_caught(expr: str) -> None:
    assert expression_problems(expr)


def test_the_metric_list_matches_the_services_code() -> None:
    """Once the services export metrics, the names here are exactly the ones they declare."""
    declared = {
        match[1]
        for path in ROOT.glob("services/*/hookflow_*/metrics.py")
        for match in re.finditer(
            r"(?:Counter|Histogram|Gauge)\(\s*\"(hookflow_\w+)\"", path.read_text()
        )
    }
    if not declared:
        pytest.skip("the services declare no Prometheus metrics in this checkout yet")
    assert declared == set(COUNTERS) | set(HISTOGRAMS) | set(GAUGES)
