"""The deployment files: deploy/compose.yaml against the Compose Specification, and the image."""

import copy
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "deploy" / "compose.yaml"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
DOCKERIGNORE = ROOT / ".dockerignore"
SCHEMA = Path(__file__).parent / "data" / "compose-spec.json"

TEST_ENV = {
    "RABBITMQ_PASSWORD": "test-password",
    "HOOKFLOW_ADMIN_TOKEN": "test-token",
    "HOOKFLOW_SECRET_KEY": "test-key",
}
HOOKFLOW_PORTS = {"gateway": 8080, "config-api": 8081, "executor": 8082}
INFRA = ("rabbitmq", "mongodb")

_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


class MissingVariable(Exception):
    """A `${NAME:?message}` or `${NAME?message}` variable is unset."""


def interpolate(value: Any, env: dict[str, str]) -> Any:
    """Substitute `$NAME`, `${NAME}`, `${NAME:-default}`, `${NAME:?msg}` (and the forms without
    the colon) in every string value, the way Compose does before it validates."""
    if isinstance(value, dict):
        return {key: interpolate(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [interpolate(item, env) for item in value]
    if not isinstance(value, str):
        return value

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["name"] or match["bare"]
        op, arg = match["op"], match["arg"]
        current = env.get(name)
        missing = current is None or (current == "" and op is not None and op.startswith(":"))
        if op is not None and op.endswith("-") and missing:
            return arg
        if op is not None and op.endswith("?") and missing:
            raise MissingVariable(f"{name}: {arg}")
        return current or ""

    return _VARIABLE.sub(replace, value)


def compose_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    """A validator for the draft the schema declares: draft 7, under a `$schema` URL that
    jsonschema does not know (no trailing '#'), hence the explicit default."""
    assert "draft-07" in schema["$schema"]
    cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft7Validator)
    return cls(schema)


def validation_errors(document: dict[str, Any], schema: dict[str, Any]) -> list[str]:
    errors = compose_validator(schema).iter_errors(document)
    return [f"{'/'.join(map(str, error.absolute_path))}: {error.message}" for error in errors]


def target_of(service: dict[str, Any]) -> str | None:
    """Which Hookflow service a compose service is: its image's target in deploy/Dockerfile."""
    build = service.get("build")
    return build.get("target") if isinstance(build, dict) else None


def duration_seconds(text: str) -> float:
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(us|ms|h|m|s)", text)
    assert parts and "".join(n + u for n, u in parts) == text, f"not a duration: {text!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with continuation lines joined and comments dropped."""
    joined = re.sub(r"\\\n", " ", text)
    instructions = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), rest.strip()))
    return instructions


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(SCHEMA.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def raw_compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def compose(raw_compose: dict[str, Any]) -> dict[str, Any]:
    return interpolate(raw_compose, TEST_ENV)


@pytest.fixture(scope="module")
def hookflow_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    services = {
        name: service
        for name, service in compose["services"].items()
        if target_of(service) in HOOKFLOW_PORTS
    }
    assert services
    return services


def test_vendored_schema_is_a_draft7_schema(schema: dict[str, Any]) -> None:
    assert schema["title"] == "Compose Specification"
    validator = compose_validator(schema)
    assert isinstance(validator, jsonschema.Draft7Validator)
    validator.check_schema(schema)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("${A}", "a"),
        ("x$A-$$B", "xa-$B"),
        ("${UNSET}", ""),
        ("${UNSET:-fallback}", "fallback"),
        ("${EMPTY:-fallback}", "fallback"),
        ("${EMPTY-fallback}", ""),
        ("${A:?needed}", "a"),
    ],
)
def test_interpolate(text: str, expected: str) -> None:
    assert interpolate(text, {"A": "a", "EMPTY": ""}) == expected


@pytest.mark.parametrize("missing", sorted(TEST_ENV))
def test_required_variables_are_enforced(raw_compose: dict[str, Any], missing: str) -> None:
    env = {name: value for name, value in TEST_ENV.items() if name != missing}
    with pytest.raises(MissingVariable, match=missing):
        interpolate(raw_compose, env)


def test_compose_file_matches_the_compose_specification(
    compose: dict[str, Any], schema: dict[str, Any]
) -> None:
    assert validation_errors(compose, schema) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("services", "gateway", "depends_on", "rabbitmq", "condition"), "service_ready"),
        (("services", "gateway", "healthcheck", "interval"), 10),
        (("services", "executor", "replicas"), 2),
        (("services", "mongodb", "volumes"), "mongodb-data:/data/db"),
        (("service",), {}),
    ],
)
def test_broken_compose_file_fails_validation(
    compose: dict[str, Any], schema: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    broken = copy.deepcopy(compose)
    target = broken
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    assert validation_errors(broken, schema)


def test_expected_services(compose: dict[str, Any]) -> None:
    assert {"rabbitmq", "mongodb", "config-api", "gateway"} <= compose["services"].keys()
    assert compose["services"]["rabbitmq"]["image"].startswith("rabbitmq:3.13-management")
    assert compose["services"]["mongodb"]["image"].startswith("mongo:8")
    assert target_of(compose["services"]["gateway"]) == "gateway"
    assert target_of(compose["services"]["config-api"]) == "config-api"


def test_infrastructure_has_healthchecks_and_volumes(compose: dict[str, Any]) -> None:
    for name in INFRA:
        service = compose["services"][name]
        assert service["healthcheck"]["test"][0] == "CMD", name
        assert not service["healthcheck"].get("disable", False), name
        volumes = [volume.split(":")[0] for volume in service["volumes"]]
        assert all(volume in compose["volumes"] for volume in volumes), name
    assert "rabbitmq-diagnostics" in compose["services"]["rabbitmq"]["healthcheck"]["test"]
    assert "mongosh" in compose["services"]["mongodb"]["healthcheck"]["test"]


def test_at_least_two_executors(hookflow_services: dict[str, dict[str, Any]]) -> None:
    executors = [s for s in hookflow_services.values() if target_of(s) == "executor"]
    replicas = sum(
        int((s.get("deploy") or {}).get("replicas", s.get("scale", 1))) for s in executors
    )
    assert replicas >= 2
    for executor in executors:
        assert "ports" not in executor, "a fixed host port would stop executors from scaling"
        assert duration_seconds(executor["stop_grace_period"]) > 30


def test_hookflow_services_are_healthchecked_and_wait_for_their_dependencies(
    hookflow_services: dict[str, dict[str, Any]],
) -> None:
    for name, service in hookflow_services.items():
        port = HOOKFLOW_PORTS[target_of(service)]
        test = service["healthcheck"]["test"]
        assert test[:3] == ["CMD", "python", "-c"], name
        assert f"http://127.0.0.1:{port}/healthz" in test[3], name
        assert not service["healthcheck"].get("disable", False), name
        for dependency in INFRA:
            assert service["depends_on"][dependency]["condition"] == "service_healthy", name
        assert service["restart"] == "unless-stopped", name
        assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
        assert (COMPOSE.parent / service["build"]["context"] / "deploy" / "Dockerfile").is_file()


def test_hookflow_environment(compose: dict[str, Any], hookflow_services: dict[str, Any]) -> None:
    password = compose["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_PASS"]
    user = compose["services"]["rabbitmq"]["environment"]["RABBITMQ_DEFAULT_USER"]
    for name, service in hookflow_services.items():
        env = service["environment"]
        assert env["HOOKFLOW_BROKER_URL"] == f"amqp://{user}:{password}@rabbitmq:5672/", name
        assert env["HOOKFLOW_MONGODB_URL"] == "mongodb://mongodb:27017/", name
        assert env["HOOKFLOW_BIND"] == "0.0.0.0", name
        assert env["HOOKFLOW_LOG_FORMAT"] == "json", name
    config_api = compose["services"]["config-api"]["environment"]
    assert config_api["HOOKFLOW_ADMIN_TOKEN"] == TEST_ENV["HOOKFLOW_ADMIN_TOKEN"]
    assert config_api["HOOKFLOW_PUBLIC_URL"] == "http://127.0.0.1:8080"
    assert "8080:8080" in compose["services"]["gateway"]["ports"]
    assert "8081:8081" in compose["services"]["config-api"]["ports"]


def dockerfile_stages(text: str) -> dict[str, list[tuple[str, str]]]:
    """The instructions of each stage, by its name (`FROM image AS name`)."""
    stages: dict[str, list[tuple[str, str]]] = {}
    current: list[tuple[str, str]] = []
    for keyword, arguments in dockerfile_instructions(text):
        if keyword == "FROM":
            current = stages.setdefault(arguments.split()[-1], [])
        current.append((keyword, arguments))
    return stages


DISTRIBUTION_OF = {
    "gateway": "services/gateway",
    "executor": "services/executor",
    "config-api": "services/config-api",
}


def test_each_service_has_an_image_of_its_own() -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    base = stages["python"]
    assert base[0] == ("FROM", "python:3.13-slim AS python")
    assert ("COPY", "shared/ shared/") in base
    for service, folder in DISTRIBUTION_OF.items():
        stage = stages[service]
        assert stage[0] == ("FROM", f"python AS {service}")
        copied = [arguments for keyword, arguments in stage if keyword == "COPY"]
        assert copied == [f"{folder}/ {folder}/"], "only its own service's code"
        install = next(arguments for keyword, arguments in stage if keyword == "RUN")
        assert "pip install --no-cache-dir" in install and "-e " not in install
        assert f"./{folder}" in install
        others = set(DISTRIBUTION_OF.values()) - {folder}
        assert not any(other in install for other in others)
        entry = json.loads(next(a for k, a in stage if k == "ENTRYPOINT"))
        pyproject = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
        assert entry == [f"hookflow-{service}"]
        assert entry[0] in pyproject["project"]["scripts"], "an entry point the image installs"
        user = next(a for k, a in stage if k == "USER")
        assert user.split(":")[0] not in {"root", "0"}
    ignored = DOCKERIGNORE.read_text(encoding="utf-8").split()
    for pattern in (".venv", ".git", "data", ".pytest_cache"):
        assert pattern in ignored


def test_compose_builds_each_service_from_its_own_target(compose: dict[str, Any]) -> None:
    stages = dockerfile_stages(DOCKERFILE.read_text(encoding="utf-8"))
    targets = {target_of(service) for service in compose["services"].values()} - {None}
    assert targets == set(HOOKFLOW_PORTS) == set(DISTRIBUTION_OF)
    assert targets <= stages.keys()
